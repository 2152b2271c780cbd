//! The control schema's `integrations` table: one row per integration of a tenant (an
//! IntegrationBinding, or one created through the API), with its credential and its state.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "integrations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub integration_id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub kind: String,
    pub settings: Json,
    /// The Kubernetes Secret the credential came from; empty when it came through the API.
    pub secret_name: String,
    pub sync_schedule: Option<String>,
    pub paused: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The credential: a GitHub token, an LLM API key or a webhook signing secret.
    pub secret: Option<String>,
    pub connected: Option<bool>,
    pub last_error: Option<String>,
    pub last_sync_at: Option<DateTimeUtc>,
    pub items_synced: i64,
    pub next_run_at: Option<DateTimeUtc>,
    /// The secret an outside system signs what it sends with (GitHub's webhooks).
    pub inbound_secret: Option<String>,
    /// The outside object synchronised (a GitHub project's node id), once known.
    pub external_id: Option<String>,
    /// Where the running sync pass goes on; `None` between passes.
    pub sync_cursor: Option<String>,
    pub sync_pass: i64,
    /// Until when a replica holds the sync.
    pub sync_lease_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
