//! A tenant's integrations in the control table `integrations`: one row per IntegrationBinding
//! (written by the operator, which reads the credential from the binding's Secret) or per
//! integration created through the platform's API on installations without the operator. The
//! platform reads them to act (deliver webhooks) and records how each fares.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use crate::entities::integration::{self, Column, Entity as Integrations};
use crate::tenants;

/// What defines an integration: written by whoever manages it, compared to skip empty updates.
#[derive(Clone, PartialEq)]
pub struct IntegrationRecord {
    pub name: String,
    pub kind: String,
    pub settings: serde_json::Value,
    /// The Kubernetes Secret the credential came from; empty when it came through the API.
    pub secret_name: String,
    /// The credential itself (token, API key or signing secret).
    pub secret: Option<String>,
    /// The secret the outside system signs what it sends with (GitHub's webhook secret).
    pub inbound_secret: Option<String>,
    pub sync_schedule: Option<String>,
    pub paused: bool,
}

impl std::fmt::Debug for IntegrationRecord {
    /// Everything but the credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationRecord")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("settings", &self.settings)
            .field("secret_name", &self.secret_name)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field(
                "inbound_secret",
                &self.inbound_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("sync_schedule", &self.sync_schedule)
            .field("paused", &self.paused)
            .finish()
    }
}

/// How an integration fares, as the platform last recorded it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IntegrationState {
    /// `None` until the platform has tried it.
    pub connected: Option<bool>,
    pub last_error: Option<String>,
    pub last_sync_at: Option<DateTime<Utc>>,
    /// Items synchronised or, for a webhook, events delivered.
    pub items_synced: i64,
    pub next_run_at: Option<DateTime<Utc>>,
    /// The outside object synchronised (a GitHub project's node id), once read.
    pub external_id: Option<String>,
    /// Passes of the synchronisation over the outside item list so far.
    pub sync_pass: i64,
}

/// One stored integration.
#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    pub integration_id: Uuid,
    pub tenant_id: Uuid,
    pub record: IntegrationRecord,
    pub state: IntegrationState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<integration::Model> for Integration {
    fn from(row: integration::Model) -> Self {
        Self {
            integration_id: row.integration_id,
            tenant_id: row.tenant_id,
            record: IntegrationRecord {
                name: row.name,
                kind: row.kind,
                settings: row.settings,
                secret_name: row.secret_name,
                secret: row.secret,
                inbound_secret: row.inbound_secret,
                sync_schedule: row.sync_schedule,
                paused: row.paused,
            },
            state: IntegrationState {
                connected: row.connected,
                last_error: row.last_error,
                last_sync_at: row.last_sync_at,
                items_synced: row.items_synced,
                next_run_at: row.next_run_at,
                external_id: row.external_id,
                sync_pass: row.sync_pass,
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
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
    let now = Utc::now();
    let Some(existing) = find_row(db, registered.tenant_id, &record.name).await? else {
        return insert(db, registered.tenant_id, record, now)
            .await
            .map(Some);
    };
    let id = existing.integration_id;
    if Integration::from(existing.clone()).record != *record {
        let retarget = existing.settings != record.settings;
        let mut row = existing.into_active_model();
        if retarget {
            // Another project (or URL): a sync starts over, and runs soon.
            row.sync_cursor = Set(None);
            row.external_id = Set(None);
            row.next_run_at = Set(None);
        }
        row.kind = Set(record.kind.clone());
        row.settings = Set(record.settings.clone());
        row.secret_name = Set(record.secret_name.clone());
        row.secret = Set(record.secret.clone());
        row.inbound_secret = Set(record.inbound_secret.clone());
        row.sync_schedule = Set(record.sync_schedule.clone());
        row.paused = Set(record.paused);
        row.updated_at = Set(now);
        row.update(db).await?;
    }
    Ok(Some(id))
}

/// Creates an integration of the tenant; `None` when one of that name exists already.
pub async fn create<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    record: &IntegrationRecord,
) -> Result<Option<Integration>, DbErr> {
    if find_row(db, tenant_id, &record.name).await?.is_some() {
        return Ok(None);
    }
    let id = insert(db, tenant_id, record, Utc::now()).await?;
    Ok(Integrations::find_by_id(id)
        .one(db)
        .await?
        .map(Integration::from))
}

async fn insert<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    record: &IntegrationRecord,
    now: DateTime<Utc>,
) -> Result<Uuid, DbErr> {
    let id = Uuid::now_v7();
    integration::ActiveModel {
        integration_id: Set(id),
        tenant_id: Set(tenant_id),
        name: Set(record.name.clone()),
        kind: Set(record.kind.clone()),
        settings: Set(record.settings.clone()),
        secret_name: Set(record.secret_name.clone()),
        secret: Set(record.secret.clone()),
        sync_schedule: Set(record.sync_schedule.clone()),
        paused: Set(record.paused),
        created_at: Set(now),
        updated_at: Set(now),
        connected: Set(None),
        last_error: Set(None),
        last_sync_at: Set(None),
        items_synced: Set(0),
        next_run_at: Set(None),
        inbound_secret: Set(record.inbound_secret.clone()),
        external_id: Set(None),
        sync_cursor: Set(None),
        sync_pass: Set(0),
        sync_lease_until: Set(None),
    }
    .insert(db)
    .await?;
    Ok(id)
}

/// Removes the tenant's integration; nothing to do when it or the tenant is gone.
pub async fn unregister<C: ConnectionTrait>(db: &C, tenant: &str, name: &str) -> Result<(), DbErr> {
    let Some(registered) = tenants::find_by_name(db, tenant).await? else {
        return Ok(());
    };
    remove(db, registered.tenant_id, name).await.map(|_| ())
}

/// Removes the tenant's integration (and its deliveries); false when there was none.
pub async fn remove<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    name: &str,
) -> Result<bool, DbErr> {
    let removed = Integrations::delete_many()
        .filter(Column::TenantId.eq(tenant_id))
        .filter(Column::Name.eq(name))
        .exec(db)
        .await?;
    Ok(removed.rows_affected > 0)
}

/// The tenant's integrations, by name.
pub async fn list<C: ConnectionTrait>(db: &C, tenant_id: Uuid) -> Result<Vec<Integration>, DbErr> {
    Ok(Integrations::find()
        .filter(Column::TenantId.eq(tenant_id))
        .order_by_asc(Column::Name)
        .all(db)
        .await?
        .into_iter()
        .map(Integration::from)
        .collect())
}

/// The tenant's integration called `name`.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    name: &str,
) -> Result<Option<Integration>, DbErr> {
    Ok(find_row(db, tenant_id, name).await?.map(Integration::from))
}

/// The integration with this id, whichever tenant it belongs to.
pub async fn find_by_id<C: ConnectionTrait>(
    db: &C,
    integration_id: Uuid,
) -> Result<Option<Integration>, DbErr> {
    Ok(Integrations::find_by_id(integration_id)
        .one(db)
        .await?
        .map(Integration::from))
}

async fn find_row<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    name: &str,
) -> Result<Option<integration::Model>, DbErr> {
    Integrations::find()
        .filter(Column::TenantId.eq(tenant_id))
        .filter(Column::Name.eq(name))
        .one(db)
        .await
}

/// What one attempt to reach an integration's outside system came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It answered as expected; `items` more items were synchronised or delivered.
    Reached { items: i64 },
    /// It could not be reached or refused; the reason a user can act on.
    Failed { error: String },
}

/// Records an attempt's outcome in the integration's state. Counting happens in the database,
/// so concurrent recorders (several replicas) never lose an item.
pub async fn record_outcome<C: ConnectionTrait>(
    db: &C,
    integration_id: Uuid,
    outcome: &Outcome,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let update = Integrations::update_many().filter(Column::IntegrationId.eq(integration_id));
    let update = match outcome {
        Outcome::Reached { items } => update
            .col_expr(Column::Connected, Expr::value(true))
            .col_expr(Column::LastError, Expr::value(Option::<String>::None))
            .col_expr(Column::LastSyncAt, Expr::value(at))
            .col_expr(
                Column::ItemsSynced,
                Expr::col(Column::ItemsSynced).add(*items),
            ),
        Outcome::Failed { error } => update
            .col_expr(Column::Connected, Expr::value(false))
            .col_expr(Column::LastError, Expr::value(error.clone())),
    };
    update.exec(db).await?;
    Ok(())
}
