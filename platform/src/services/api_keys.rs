//! API keys of a tenant: issuing them with a role and an optional expiry, listing them (public
//! prefix only), revoking them, and resolving a presented key to its [`Principal`].

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::RwLock;
use uuid::Uuid;

use super::ServiceError;
use crate::auth::{Credential, Principal, Role, api_key};
use crate::domain::validation::InputError;
use crate::stores::{StoredApiKey, Tenant, TenantRegistry};

/// Longest key name.
const MAX_KEY_NAME_CHARS: usize = 128;

/// A key to issue.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub user_id: Uuid,
    pub name: String,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A freshly issued key: the only time its plaintext exists outside the caller.
#[derive(Debug, Clone)]
pub struct IssuedApiKey {
    pub key: StoredApiKey,
    pub plaintext: String,
}

pub struct ApiKeyService {
    registry: Arc<dyn TenantRegistry>,
    tenants_by_id: RwLock<HashMap<Uuid, Tenant>>,
}

impl ApiKeyService {
    pub fn new(registry: Arc<dyn TenantRegistry>) -> Self {
        Self {
            registry,
            tenants_by_id: RwLock::new(HashMap::new()),
        }
    }

    pub async fn issue(
        &self,
        tenant: &Tenant,
        new: NewApiKey,
    ) -> Result<IssuedApiKey, ServiceError> {
        let name = new.name.trim();
        if name.is_empty() {
            return Err(InputError::Blank { field: "name" }.into());
        }
        if name.chars().count() > MAX_KEY_NAME_CHARS {
            return Err(InputError::TooLarge {
                field: "name",
                actual: name.chars().count(),
                limit: MAX_KEY_NAME_CHARS,
                unit: "characters",
            }
            .into());
        }
        if !new.role.is_tenant_role() {
            return Err(InputError::Invalid {
                field: "role",
                reason: format!("{} cannot be given to a tenant's key", new.role),
            }
            .into());
        }
        let now = Utc::now();
        if new.expires_at.is_some_and(|at| at <= now) {
            return Err(InputError::Invalid {
                field: "expires_at",
                reason: "must be in the future".to_string(),
            }
            .into());
        }
        let issued = api_key::generate();
        let key = StoredApiKey {
            key_id: Uuid::now_v7(),
            tenant_id: tenant.tenant_id,
            user_id: new.user_id,
            name: name.to_string(),
            prefix: issued.prefix,
            key_hash: issued.hash,
            role: new.role.as_str().to_string(),
            created_at: now,
            expires_at: new.expires_at,
            revoked_at: None,
        };
        self.registry.insert_api_key(&key).await?;
        Ok(IssuedApiKey {
            key,
            plaintext: issued.plaintext,
        })
    }

    /// The tenant's keys, newest first, revoked and expired ones included.
    pub async fn list(&self, tenant: &Tenant) -> Result<Vec<StoredApiKey>, ServiceError> {
        Ok(self.registry.list_api_keys(tenant.tenant_id).await?)
    }

    /// Revokes one of the tenant's keys; keys of other tenants are "not found".
    pub async fn revoke(&self, tenant: &Tenant, key_id: Uuid) -> Result<(), ServiceError> {
        if self
            .registry
            .revoke_api_key(tenant.tenant_id, key_id, Utc::now())
            .await?
        {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("API key {key_id}")))
        }
    }

    /// The principal behind a presented API key, or `None` when the key is not valid.
    /// Revocation and expiry are read from the database on every call, so they apply at once
    /// on every replica.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Principal>, ServiceError> {
        let Some(prefix) = api_key::prefix_of(presented) else {
            return Ok(None);
        };
        let Some(key) = self.registry.find_api_key(prefix).await? else {
            return Ok(None);
        };
        if !api_key::verify(
            presented,
            &key.key_hash,
            key.expires_at,
            key.revoked_at,
            Utc::now(),
        ) {
            return Ok(None);
        }
        let Some(tenant) = self.tenant_by_id(key.tenant_id).await? else {
            return Ok(None);
        };
        Ok(Some(Principal {
            user_id: key.user_id,
            tenant: Some(tenant),
            roles: vec![key.role],
            credential: Credential::ApiKey {
                key_id: key.key_id,
                prefix: key.prefix,
            },
        }))
    }

    /// Tenants rarely change; keep them in memory once seen.
    async fn tenant_by_id(&self, tenant_id: Uuid) -> Result<Option<Tenant>, ServiceError> {
        if let Some(tenant) = self.tenants_by_id.read().await.get(&tenant_id) {
            return Ok(Some(tenant.clone()));
        }
        let tenant = self.registry.find_by_id(tenant_id).await?;
        if let Some(tenant) = &tenant {
            self.tenants_by_id
                .write()
                .await
                .insert(tenant_id, tenant.clone());
        }
        Ok(tenant)
    }
}
