//! Registering tenants: storage, the first admin user and its API key; and their users.

use std::sync::Arc;

use chrono::Utc;
use memoryc_crds::layout::{Isolation, TenantName};
use uuid::Uuid;

use super::ServiceError;
use super::api_keys::{ApiKeyService, NewApiKey};
use crate::auth::Role;
use crate::domain::validation::InputError;
use crate::stores::relational::Databases;
use crate::stores::vector::{VectorSpace, VectorStore};
use crate::stores::{Tenant, TenantRegistry, TenantUser};

/// Role of the first key of a tenant (shared with the operator, which registers tenants too).
pub use memoryc_crds::contract::TENANT_ADMIN_ROLE;
use memoryc_crds::contract::TENANT_ADMIN_USERNAME;

/// A new tenant with the only copy of its first API key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CreatedTenant {
    pub tenant: String,
    pub tenant_id: Uuid,
    pub isolation: &'static str,
    pub user_id: Uuid,
    pub username: String,
    pub role: &'static str,
    pub api_key: String,
}

pub struct TenantService {
    registry: Arc<dyn TenantRegistry>,
    databases: Databases,
    vectors: Arc<dyn VectorStore>,
    keys: Arc<ApiKeyService>,
}

impl TenantService {
    pub fn new(
        registry: Arc<dyn TenantRegistry>,
        databases: Databases,
        vectors: Arc<dyn VectorStore>,
        keys: Arc<ApiKeyService>,
    ) -> Self {
        Self {
            registry,
            databases,
            vectors,
            keys,
        }
    }

    /// Provisions storage for the tenant and registers it with an admin user and key.
    /// Storage steps are idempotent, so a run interrupted part-way can simply be repeated.
    pub async fn create(
        &self,
        name: &str,
        display_name: Option<&str>,
        isolation: Isolation,
    ) -> Result<CreatedTenant, ServiceError> {
        let name = TenantName::parse(name).map_err(|e| InputError::Invalid {
            field: "tenant",
            reason: e.to_string(),
        })?;
        if self.registry.find_by_name(&name).await?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "tenant {name} already exists"
            )));
        }
        self.databases.provision_tenant(&name).await?;
        self.vectors
            .ensure_space(&VectorSpace {
                tenant: name.clone(),
                isolation,
            })
            .await?;
        let tenant = Tenant {
            tenant_id: Uuid::now_v7(),
            name: name.clone(),
            display_name: display_name.unwrap_or(name.as_str()).to_string(),
            isolation,
            created_at: Utc::now(),
        };
        let admin = TenantUser {
            user_id: Uuid::now_v7(),
            username: TENANT_ADMIN_USERNAME.to_string(),
            email: None,
        };
        self.registry.create_user(&name, &admin).await?;
        self.registry.register(&tenant).await?;
        let api_key = self
            .keys
            .issue(
                &tenant,
                NewApiKey {
                    user_id: admin.user_id,
                    name: "initial admin key".to_string(),
                    role: Role::TenantAdmin,
                    expires_at: None,
                },
            )
            .await?
            .plaintext;
        Ok(CreatedTenant {
            tenant: name.to_string(),
            tenant_id: tenant.tenant_id,
            isolation: isolation.as_str(),
            user_id: admin.user_id,
            username: admin.username,
            role: TENANT_ADMIN_ROLE,
            api_key,
        })
    }

    /// Adds a user to the tenant's own tables.
    pub async fn create_user(
        &self,
        tenant: &TenantName,
        user: &TenantUser,
    ) -> Result<(), ServiceError> {
        Ok(self.registry.create_user(tenant, user).await?)
    }

    /// Makes sure a user exists in the tenant's tables (a JWT subject seen for the first time).
    pub async fn ensure_user(
        &self,
        tenant: &TenantName,
        user: &TenantUser,
    ) -> Result<(), ServiceError> {
        if self
            .registry
            .find_user(tenant, user.user_id)
            .await?
            .is_some()
        {
            return Ok(());
        }
        match self.registry.create_user(tenant, user).await {
            // Another request created it in the meantime.
            Ok(()) | Err(crate::stores::StoreError::Conflict(_)) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    pub async fn find_user(
        &self,
        tenant: &TenantName,
        user_id: Uuid,
    ) -> Result<Option<TenantUser>, ServiceError> {
        Ok(self.registry.find_user(tenant, user_id).await?)
    }

    pub async fn find(&self, name: &TenantName) -> Result<Option<Tenant>, ServiceError> {
        Ok(self.registry.find_by_name(name).await?)
    }

    pub async fn list(&self) -> Result<Vec<Tenant>, ServiceError> {
        Ok(self.registry.list().await?)
    }

    /// Erases the tenant as the operator's `deletionPolicy: Delete` does: its vectors, its
    /// tables, then its registration with its API keys and policy rules. A tenant created later
    /// under the same name is another tenant.
    pub async fn erase(&self, name: &TenantName) -> Result<(), ServiceError> {
        let tenant = self
            .registry
            .find_by_name(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("tenant {name}")))?;
        self.vectors
            .drop_space(&VectorSpace {
                tenant: name.clone(),
                isolation: tenant.isolation,
            })
            .await?;
        self.databases.drop_tenant(name).await?;
        self.registry.remove(tenant.tenant_id).await?;
        Ok(())
    }
}
