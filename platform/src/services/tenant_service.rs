//! Registering tenants: storage, the first admin user and its API key; and resolving API keys.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use memoryc_crds::layout::{Isolation, TenantName};
use tokio::sync::RwLock;
use uuid::Uuid;

use super::ServiceError;
use crate::auth::{Principal, api_key};
use crate::domain::validation::InputError;
use crate::stores::relational::Databases;
use crate::stores::vector::{VectorSpace, VectorStore};
use crate::stores::{StoredApiKey, Tenant, TenantRegistry, TenantUser};

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
    by_id: RwLock<HashMap<Uuid, Tenant>>,
}

impl TenantService {
    pub fn new(
        registry: Arc<dyn TenantRegistry>,
        databases: Databases,
        vectors: Arc<dyn VectorStore>,
    ) -> Self {
        Self {
            registry,
            databases,
            vectors,
            by_id: RwLock::new(HashMap::new()),
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
            .issue_key(&tenant, admin.user_id, "initial admin key")
            .await?;
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

    /// Issues another tenant-admin key for the tenant's admin user.
    pub async fn issue_key(
        &self,
        tenant: &Tenant,
        user_id: Uuid,
        key_name: &str,
    ) -> Result<String, ServiceError> {
        let issued = api_key::generate();
        self.registry
            .insert_api_key(&StoredApiKey {
                key_id: Uuid::now_v7(),
                tenant_id: tenant.tenant_id,
                user_id,
                name: key_name.to_string(),
                prefix: issued.prefix,
                key_hash: issued.hash,
                role: TENANT_ADMIN_ROLE.to_string(),
                created_at: Utc::now(),
                expires_at: None,
                revoked_at: None,
            })
            .await?;
        Ok(issued.plaintext)
    }

    /// Adds a user to the tenant's own tables.
    pub async fn create_user(
        &self,
        tenant: &TenantName,
        user: &TenantUser,
    ) -> Result<(), ServiceError> {
        Ok(self.registry.create_user(tenant, user).await?)
    }

    pub async fn find(&self, name: &TenantName) -> Result<Option<Tenant>, ServiceError> {
        Ok(self.registry.find_by_name(name).await?)
    }

    pub async fn list(&self) -> Result<Vec<Tenant>, ServiceError> {
        Ok(self.registry.list().await?)
    }

    /// The principal behind a presented API key, or `None` when the key is not valid.
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
            tenant,
            user_id: key.user_id,
            role: key.role,
            key_id: key.key_id,
        }))
    }

    /// Tenants rarely change; keep them in memory once seen.
    async fn tenant_by_id(&self, tenant_id: Uuid) -> Result<Option<Tenant>, ServiceError> {
        if let Some(tenant) = self.by_id.read().await.get(&tenant_id) {
            return Ok(Some(tenant.clone()));
        }
        let tenant = self.registry.find_by_id(tenant_id).await?;
        if let Some(tenant) = &tenant {
            self.by_id.write().await.insert(tenant_id, tenant.clone());
        }
        Ok(tenant)
    }
}
