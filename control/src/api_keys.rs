//! API keys in the control table `api_keys`: only a hash of each secret is stored (the key
//! format is `memoryc_crds::api_key`). Every change names the tenant, so a key id of another
//! tenant changes nothing.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder,
};
use uuid::Uuid;

use crate::entities::api_key::{self, Column, Entity as ApiKeys};

pub async fn insert<C: ConnectionTrait>(db: &C, key: api_key::Model) -> Result<(), DbErr> {
    key.into_active_model().insert(db).await?;
    Ok(())
}

pub async fn find_by_prefix<C: ConnectionTrait>(
    db: &C,
    prefix: &str,
) -> Result<Option<api_key::Model>, DbErr> {
    ApiKeys::find()
        .filter(Column::Prefix.eq(prefix))
        .one(db)
        .await
}

/// The tenant's keys, newest first.
pub async fn list_of<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
) -> Result<Vec<api_key::Model>, DbErr> {
    ApiKeys::find()
        .filter(Column::TenantId.eq(tenant_id))
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::KeyId)
        .all(db)
        .await
}

/// Whether the tenant holds an unrevoked, unexpired key with this prefix and hash.
pub async fn is_live<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    prefix: &str,
    key_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    Ok(ApiKeys::find()
        .filter(Column::TenantId.eq(tenant_id))
        .filter(Column::Prefix.eq(prefix))
        .filter(Column::KeyHash.eq(key_hash))
        .filter(Column::RevokedAt.is_null())
        .filter(
            Condition::any()
                .add(Column::ExpiresAt.is_null())
                .add(Column::ExpiresAt.gt(now)),
        )
        .one(db)
        .await?
        .is_some())
}

/// Revokes one key of the tenant; whether it was live.
pub async fn revoke<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    key_id: Uuid,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    revoke_where(db, tenant_id, Some(Column::KeyId.eq(key_id)), at)
        .await
        .map(|revoked| revoked > 0)
}

/// Revokes the tenant's live keys called `name`; how many.
pub async fn revoke_named<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    name: &str,
    at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    revoke_where(db, tenant_id, Some(Column::Name.eq(name)), at).await
}

/// Revokes every live key of the tenant; how many.
pub async fn revoke_all<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    revoke_where(db, tenant_id, None, at).await
}

async fn revoke_where<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    condition: Option<sea_orm::sea_query::SimpleExpr>,
    at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut update = ApiKeys::update_many()
        .col_expr(Column::RevokedAt, Expr::value(Some(at)))
        .filter(Column::TenantId.eq(tenant_id))
        .filter(Column::RevokedAt.is_null());
    if let Some(condition) = condition {
        update = update.filter(condition);
    }
    Ok(update.exec(db).await?.rows_affected)
}
