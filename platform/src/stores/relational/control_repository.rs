//! [`TenantRegistry`] on sea-orm: tenants and API keys in the control tables, users in the
//! tenant's own tables.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memoryc_crds::layout::{Isolation, TenantName, collection_for};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};
use uuid::Uuid;

use super::Databases;
use super::entities::{api_key, policy_rule, tenant, user};
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
        tenant::ActiveModel {
            tenant_id: Set(new.tenant_id),
            name: Set(new.name.to_string()),
            display_name: Set(new.display_name.clone()),
            isolation: Set(new.isolation.as_str().to_string()),
            schema_name: Set(new.name.schema_name()),
            collection_name: Set(collection_for(&new.name, new.isolation)),
            created_at: Set(new.created_at),
        }
        .insert(self.databases.control())
        .await?;
        Ok(())
    }

    async fn find_by_name(&self, name: &TenantName) -> Result<Option<Tenant>, StoreError> {
        tenant::Entity::find()
            .filter(tenant::Column::Name.eq(name.as_str()))
            .one(self.databases.control())
            .await?
            .map(to_tenant)
            .transpose()
    }

    async fn find_by_id(&self, tenant_id: Uuid) -> Result<Option<Tenant>, StoreError> {
        tenant::Entity::find_by_id(tenant_id)
            .one(self.databases.control())
            .await?
            .map(to_tenant)
            .transpose()
    }

    async fn list(&self) -> Result<Vec<Tenant>, StoreError> {
        tenant::Entity::find()
            .order_by_asc(tenant::Column::Name)
            .all(self.databases.control())
            .await?
            .into_iter()
            .map(to_tenant)
            .collect()
    }

    /// Unregisters the tenant with its policy rules (grants and extra permissions), in one
    /// transaction: a tenant created later under the same name starts with none of them.
    async fn remove(&self, tenant_id: Uuid) -> Result<(), StoreError> {
        use policy_rule::Column;
        let domain = tenant_id.to_string();
        let transaction = self.databases.control().begin().await?;
        policy_rule::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(Column::Ptype.like("g%"))
                            .add(Column::V2.eq(domain.clone())),
                    )
                    .add(
                        Condition::all()
                            .add(Column::Ptype.like("p%"))
                            .add(Column::V1.eq(domain)),
                    ),
            )
            .exec(&transaction)
            .await?;
        tenant::Entity::delete_by_id(tenant_id)
            .exec(&transaction)
            .await?;
        transaction.commit().await?;
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
        api_key::ActiveModel {
            key_id: Set(key.key_id),
            tenant_id: Set(key.tenant_id),
            user_id: Set(key.user_id),
            name: Set(key.name.clone()),
            prefix: Set(key.prefix.clone()),
            key_hash: Set(key.key_hash.clone()),
            role: Set(key.role.clone()),
            created_at: Set(key.created_at),
            expires_at: Set(key.expires_at),
            revoked_at: Set(key.revoked_at),
        }
        .insert(self.databases.control())
        .await?;
        Ok(())
    }

    async fn find_api_key(&self, prefix: &str) -> Result<Option<StoredApiKey>, StoreError> {
        let row = api_key::Entity::find()
            .filter(api_key::Column::Prefix.eq(prefix))
            .one(self.databases.control())
            .await?;
        Ok(row.map(to_api_key))
    }

    async fn list_api_keys(&self, tenant_id: Uuid) -> Result<Vec<StoredApiKey>, StoreError> {
        let rows = api_key::Entity::find()
            .filter(api_key::Column::TenantId.eq(tenant_id))
            .order_by_desc(api_key::Column::CreatedAt)
            .order_by_desc(api_key::Column::KeyId)
            .all(self.databases.control())
            .await?;
        Ok(rows.into_iter().map(to_api_key).collect())
    }

    async fn revoke_api_key(
        &self,
        tenant_id: Uuid,
        key_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // The tenant is part of the condition: a key id of another tenant changes nothing.
        let result = api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(Some(at)))
            .filter(api_key::Column::TenantId.eq(tenant_id))
            .filter(api_key::Column::KeyId.eq(key_id))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(self.databases.control())
            .await?;
        Ok(result.rows_affected > 0)
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
