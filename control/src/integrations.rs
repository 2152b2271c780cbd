//! A tenant's integrations in the control table `integrations`, one row per
//! IntegrationBinding. Credentials stay in the Kubernetes Secret; the row names it.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter,
};
use uuid::Uuid;

use crate::entities::integration::{self, Column, Entity as Integrations};
use crate::tenants;

/// One integration as the platform stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationRecord {
    pub name: String,
    pub kind: String,
    pub settings: serde_json::Value,
    pub secret_name: String,
    pub sync_schedule: Option<String>,
    pub paused: bool,
}

/// Inserts or updates the tenant's integration, writing only what differs; its id. `None` when
/// the tenant is not registered (yet).
pub async fn register<C: ConnectionTrait>(
    db: &C,
    tenant: &str,
    record: &IntegrationRecord,
) -> Result<Option<Uuid>, DbErr> {
    let Some(registered) = tenants::find_by_name(db, tenant).await? else {
        return Ok(None);
    };
    let existing = Integrations::find()
        .filter(Column::TenantId.eq(registered.tenant_id))
        .filter(Column::Name.eq(record.name.as_str()))
        .one(db)
        .await?;
    let now = Utc::now();
    let Some(existing) = existing else {
        let id = Uuid::now_v7();
        integration::ActiveModel {
            integration_id: Set(id),
            tenant_id: Set(registered.tenant_id),
            name: Set(record.name.clone()),
            kind: Set(record.kind.clone()),
            settings: Set(record.settings.clone()),
            secret_name: Set(record.secret_name.clone()),
            sync_schedule: Set(record.sync_schedule.clone()),
            paused: Set(record.paused),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(db)
        .await?;
        return Ok(Some(id));
    };
    let id = existing.integration_id;
    let current = IntegrationRecord {
        name: existing.name.clone(),
        kind: existing.kind.clone(),
        settings: existing.settings.clone(),
        secret_name: existing.secret_name.clone(),
        sync_schedule: existing.sync_schedule.clone(),
        paused: existing.paused,
    };
    if &current != record {
        let mut row = existing.into_active_model();
        row.kind = Set(record.kind.clone());
        row.settings = Set(record.settings.clone());
        row.secret_name = Set(record.secret_name.clone());
        row.sync_schedule = Set(record.sync_schedule.clone());
        row.paused = Set(record.paused);
        row.updated_at = Set(now);
        row.update(db).await?;
    }
    Ok(Some(id))
}

/// Removes the tenant's integration; nothing to do when it or the tenant is gone.
pub async fn unregister<C: ConnectionTrait>(db: &C, tenant: &str, name: &str) -> Result<(), DbErr> {
    let Some(registered) = tenants::find_by_name(db, tenant).await? else {
        return Ok(());
    };
    Integrations::delete_many()
        .filter(Column::TenantId.eq(registered.tenant_id))
        .filter(Column::Name.eq(name))
        .exec(db)
        .await?;
    Ok(())
}
