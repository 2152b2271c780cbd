//! Role grants inside a tenant: a tenant admin gives one of its users a role (a Casbin `g`
//! rule in the tenant's domain). Stored in the database and applied to the shared enforcer at
//! once; other replicas pick it up on their next policy refresh.

use std::sync::Arc;

use uuid::Uuid;

use super::ServiceError;
use crate::auth::Role;
use crate::auth::policy::PolicyEnforcer;
use crate::auth::principal::policy_subject;
use crate::domain::validation::InputError;
use crate::stores::{PolicyRuleStore, Tenant, TenantRegistry};

/// A role a user holds in a tenant through the database (not through its credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub user_id: Uuid,
    pub role: String,
}

pub struct GrantService {
    rules: Arc<dyn PolicyRuleStore>,
    registry: Arc<dyn TenantRegistry>,
    policy: Arc<PolicyEnforcer>,
}

impl GrantService {
    pub fn new(
        rules: Arc<dyn PolicyRuleStore>,
        registry: Arc<dyn TenantRegistry>,
        policy: Arc<PolicyEnforcer>,
    ) -> Self {
        Self {
            rules,
            registry,
            policy,
        }
    }

    /// The grants of the tenant.
    pub async fn list(&self, tenant: &Tenant) -> Result<Vec<Grant>, ServiceError> {
        let domain = tenant.tenant_id.to_string();
        Ok(self
            .rules
            .rules()
            .await?
            .into_iter()
            .filter_map(
                |(ptype, values)| match (ptype.as_str(), values.as_slice()) {
                    ("g", [subject, role, rule_domain]) if *rule_domain == domain => subject
                        .strip_prefix("user:")
                        .and_then(|id| Uuid::parse_str(id).ok())
                        .map(|user_id| Grant {
                            user_id,
                            role: role.clone(),
                        }),
                    _ => None,
                },
            )
            .collect())
    }

    /// Gives `user_id` (a user of the tenant) the role in this tenant only.
    pub async fn grant(&self, tenant: &Tenant, grant: &Grant) -> Result<bool, ServiceError> {
        check_role(&grant.role)?;
        if self
            .registry
            .find_user(&tenant.name, grant.user_id)
            .await?
            .is_none()
        {
            return Err(ServiceError::NotFound(format!("user {}", grant.user_id)));
        }
        let added = self.rules.insert("g", &rule(tenant, grant)).await?;
        self.apply().await?;
        Ok(added)
    }

    pub async fn revoke(&self, tenant: &Tenant, grant: &Grant) -> Result<(), ServiceError> {
        if !self.rules.remove("g", &rule(tenant, grant)).await? {
            return Err(ServiceError::NotFound("grant".to_string()));
        }
        self.apply().await
    }

    async fn apply(&self) -> Result<(), ServiceError> {
        self.policy.reload().await.map_err(|error| {
            tracing::error!(%error, "policy reload after a grant change failed");
            ServiceError::Conflict(
                "the grant is stored but the policy could not be reloaded; it applies at the next refresh"
                    .to_string(),
            )
        })
    }
}

fn check_role(role: &str) -> Result<(), ServiceError> {
    match Role::parse(role) {
        Some(role) if role.is_tenant_role() => Ok(()),
        _ => Err(InputError::Invalid {
            field: "role",
            reason: "must be one of tenant-admin, member, reader, service".to_string(),
        }
        .into()),
    }
}

fn rule(tenant: &Tenant, grant: &Grant) -> Vec<String> {
    vec![
        policy_subject(grant.user_id),
        grant.role.clone(),
        // The tenant's id, never its reusable name: a tenant created again under the name of a
        // deleted one inherits none of its grants.
        tenant.tenant_id.to_string(),
    ]
}
