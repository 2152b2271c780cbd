//! [`TenantRegistry`]: tenants and API keys through the control plane (`memoryc_control`), users
//! in the tenant's own tables.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memoryc_control::api_keys;
use memoryc_control::tenants::{self, Registration};
use memoryc_crds::layout::{Isolation, TenantName, collection_for};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use uuid::Uuid;

use super::Databases;
use super::entities::{api_key, tenant, user};
use crate::stores::{StoreError, StoredApiKey, Tenant, TenantRegistry, TenantUser};

#[derive(Clone)]
pub struct SqlTenantRegistry {
    databases: Databases,
}

impl SqlTenantRegistry {
    pub fn new(databases: Databases) -> Self {
        Self { databases }
    }
}

#[async_trait]
impl TenantRegistry for SqlTenantRegistry {
    async fn register(&self, new: &Tenant) -> Result<(), StoreError> {
        let schema_name = new.name.schema_name();
        let collection_name = collection_for(&new.name, new.isolation);
        let registration = Registration {
            name: &new.name,
            display_name: &new.display_name,
            isolation: new.isolation,
            schema_name: &schema_name,
            collection_name: &collection_name,
        };
        tenants::insert(
            self.databases.control(),
            new.tenant_id,
            &registration,
            new.created_at,
        )
        .await?;
        Ok(())
    }

    async fn find_by_name(&self, name: &TenantName) -> Result<Option<Tenant>, StoreError> {
        tenants::find_by_name(self.databases.control(), name.as_str())
            .await?
            .map(to_tenant)
            .transpose()
    }

    async fn find_by_id(&self, tenant_id: Uuid) -> Result<Option<Tenant>, StoreError> {
        tenants::find_by_id(self.databases.control(), tenant_id)
            .await?
            .map(to_tenant)
            .transpose()
    }

    async fn list(&self) -> Result<Vec<Tenant>, StoreError> {
        tenants::list(self.databases.control())
            .await?
            .into_iter()
            .map(to_tenant)
            .collect()
    }

    /// Unregisters the tenant with its policy rules (grants and extra permissions): a tenant
    /// created later under the same name starts with none of them.
    async fn remove(&self, tenant_id: Uuid) -> Result<(), StoreError> {
        let control = self.databases.control();
        if let Some(registered) = tenants::find_by_id(control, tenant_id).await? {
            tenants::unregister(control, &registered).await?;
        }
        Ok(())
    }

    async fn create_user(&self, tenant: &TenantName, new: &TenantUser) -> Result<(), StoreError> {
        let transaction = self.databases.tenant_write_transaction(tenant).await?;
        user::ActiveModel {
            user_id: Set(new.user_id),
            username: Set(new.username.clone()),
            email: Set(new.email.clone()),
            created_at: Set(chrono::Utc::now()),
            last_active: Set(None),
            preferences: Set(serde_json::json!({})),
        }
        .insert(&transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn insert_api_key(&self, key: &StoredApiKey) -> Result<(), StoreError> {
        let row = api_key::Model {
            key_id: key.key_id,
            tenant_id: key.tenant_id,
            user_id: key.user_id,
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            key_hash: key.key_hash.clone(),
            role: key.role.clone(),
            created_at: key.created_at,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
        };
        api_keys::insert(self.databases.control(), row).await?;
        Ok(())
    }

    async fn find_api_key(&self, prefix: &str) -> Result<Option<StoredApiKey>, StoreError> {
        let row = api_keys::find_by_prefix(self.databases.control(), prefix).await?;
        Ok(row.map(to_api_key))
    }

    async fn list_api_keys(&self, tenant_id: Uuid) -> Result<Vec<StoredApiKey>, StoreError> {
        let rows = api_keys::list_of(self.databases.control(), tenant_id).await?;
        Ok(rows.into_iter().map(to_api_key).collect())
    }

    async fn revoke_api_key(
        &self,
        tenant_id: Uuid,
        key_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(api_keys::revoke(self.databases.control(), tenant_id, key_id, at).await?)
    }

    async fn find_user(
        &self,
        tenant: &TenantName,
        user_id: Uuid,
    ) -> Result<Option<TenantUser>, StoreError> {
        let transaction = self.databases.tenant_transaction(tenant).await?;
        let row = user::Entity::find_by_id(user_id).one(&transaction).await?;
        transaction.commit().await?;
        Ok(row.map(|row| TenantUser {
            user_id: row.user_id,
            username: row.username,
            email: row.email,
        }))
    }
}

fn to_api_key(row: api_key::Model) -> StoredApiKey {
    StoredApiKey {
        key_id: row.key_id,
        tenant_id: row.tenant_id,
        user_id: row.user_id,
        name: row.name,
        prefix: row.prefix,
        key_hash: row.key_hash,
        role: row.role,
        created_at: row.created_at,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
    }
}

fn to_tenant(row: tenant::Model) -> Result<Tenant, StoreError> {
    let name = TenantName::parse(&row.name)
        .map_err(|e| StoreError::Corrupt(format!("tenant row {}: {e}", row.tenant_id)))?;
    let isolation = Isolation::parse(&row.isolation).ok_or_else(|| {
        StoreError::Corrupt(format!("tenant {name}: isolation {:?}", row.isolation))
    })?;
    Ok(Tenant {
        tenant_id: row.tenant_id,
        name,
        display_name: row.display_name,
        isolation,
        created_at: row.created_at,
    })
}
