//! Creates webhook_deliveries: each event a Webhook integration is to receive, written before it
//! is sent (so a restart loses none), with its attempts, when the next one is due and how the
//! last one went. One row per integration and event: an event handled twice is delivered once.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::m20261124_000001_create_control_tables::Tenants;
use super::m20261124_000002_create_integrations::Integrations;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
pub enum WebhookDeliveries {
    Table,
    DeliveryId,
    TenantId,
    IntegrationId,
    EventId,
    MemoryId,
    EventType,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LastAttemptAt,
    LastResponseStatus,
    LastError,
    CreatedAt,
    DeliveredAt,
}

/// `pending`: waiting for its first attempt (or a retry asked for); `failed`: the last attempt
/// failed and another is due; `delivered`; `dead`: out of attempts.
const STATUSES: [&str; 4] = ["pending", "failed", "delivered", "dead"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .if_not_exists()
                    // Sent as `webhook-id`: receivers deduplicate on it.
                    .col(uuid(WebhookDeliveries::DeliveryId).primary_key())
                    .col(uuid(WebhookDeliveries::TenantId))
                    .col(uuid(WebhookDeliveries::IntegrationId))
                    .col(uuid(WebhookDeliveries::EventId))
                    // The memory the payload shows, so erasing a memory erases its deliveries.
                    .col(uuid_null(WebhookDeliveries::MemoryId))
                    .col(string_len(WebhookDeliveries::EventType, 64))
                    // The exact body sent (and signed), so every attempt sends the same bytes.
                    .col(text(WebhookDeliveries::Payload))
                    .col(
                        string_len(WebhookDeliveries::Status, 16)
                            .check(Expr::col(WebhookDeliveries::Status).is_in(STATUSES)),
                    )
                    .col(integer(WebhookDeliveries::Attempts).default(0))
                    .col(timestamp_with_time_zone(WebhookDeliveries::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::LastAttemptAt,
                    ))
                    .col(integer_null(WebhookDeliveries::LastResponseStatus))
                    .col(text_null(WebhookDeliveries::LastError))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::DeliveredAt,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_deliveries_tenant")
                            .from(WebhookDeliveries::Table, WebhookDeliveries::TenantId)
                            .to(Tenants::Table, Tenants::TenantId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_deliveries_integration")
                            .from(WebhookDeliveries::Table, WebhookDeliveries::IntegrationId)
                            .to(Integrations::Table, Integrations::IntegrationId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .index(
                        Index::create()
                            .name("uq_webhook_deliveries_integration_event")
                            .col(WebhookDeliveries::IntegrationId)
                            .col(WebhookDeliveries::EventId)
                            .unique(),
                    )
                    .to_owned(),
            )
            .await?;
        // The dispatcher's query: what is due, soonest first.
        manager
            .create_index(
                Index::create()
                    .name("ix_webhook_deliveries_due")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        // Erasing a memory finds its deliveries.
        manager
            .create_index(
                Index::create()
                    .name("ix_webhook_deliveries_memory")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::MemoryId)
                    .to_owned(),
            )
            .await?;
        // The deliveries API: one integration's, newest first.
        manager
            .create_index(
                Index::create()
                    .name("ix_webhook_deliveries_integration_created")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::IntegrationId)
                    .col(WebhookDeliveries::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_table(manager, WebhookDeliveries::Table).await
    }
}
