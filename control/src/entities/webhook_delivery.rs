//! The control schema's `webhook_deliveries` table: one row per event a Webhook integration is
//! to receive, written before it is sent.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    /// Sent as `webhook-id`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub delivery_id: Uuid,
    pub tenant_id: Uuid,
    pub integration_id: Uuid,
    pub event_id: Uuid,
    /// The memory the payload shows, if any.
    pub memory_id: Option<Uuid>,
    pub event_type: String,
    /// The body, exactly as signed and sent.
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub last_attempt_at: Option<DateTimeUtc>,
    pub last_response_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
