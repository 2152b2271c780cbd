//! What a GitHub Projects sync keeps between runs: on the integration, its place in the board's
//! item list (a cursor, kept after every page so a sync resumes after a rate limit or a crash),
//! which pass it is in, who runs it (a lease, so one replica syncs at a time), the project's
//! node id and the secret GitHub signs its webhooks with; `integration_items`, which item became
//! which memory and what it looked like; `inbound_deliveries`, the GitHub webhook deliveries
//! already handled, so a redelivery changes nothing.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::m20261124_000002_create_integrations::Integrations;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Added {
    InboundSecret,
    ExternalId,
    SyncCursor,
    SyncPass,
    SyncLeaseUntil,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum IntegrationItems {
    Table,
    IntegrationId,
    ItemId,
    ContentId,
    MemoryId,
    Fingerprint,
    ItemUpdatedAt,
    SeenPass,
    Removed,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum InboundDeliveries {
    Table,
    IntegrationId,
    DeliveryId,
    ReceivedAt,
}

/// Longest outside id kept (GitHub node ids are about 30 characters, delivery ids 36).
const EXTERNAL_ID_LEN: u32 = 128;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            text_null(Added::InboundSecret),
            string_len_null(Added::ExternalId, EXTERNAL_ID_LEN),
            text_null(Added::SyncCursor),
            big_integer(Added::SyncPass).default(0).to_owned(),
            timestamp_with_time_zone_null(Added::SyncLeaseUntil),
        ] {
            crate::add_column(manager, Integrations::Table, column).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(IntegrationItems::Table)
                    .if_not_exists()
                    .col(uuid(IntegrationItems::IntegrationId))
                    .col(string_len(IntegrationItems::ItemId, EXTERNAL_ID_LEN))
                    // The issue or pull request on the board, which GitHub's issue events name.
                    .col(string_len_null(
                        IntegrationItems::ContentId,
                        EXTERNAL_ID_LEN,
                    ))
                    .col(uuid(IntegrationItems::MemoryId))
                    // Hash of the memory written for the item: an unchanged item writes nothing.
                    .col(string_len(IntegrationItems::Fingerprint, 64))
                    .col(timestamp_with_time_zone(IntegrationItems::ItemUpdatedAt))
                    // The last pass that saw the item; one that ends without seeing it removes it.
                    .col(big_integer(IntegrationItems::SeenPass))
                    .col(boolean(IntegrationItems::Removed).default(false))
                    .col(timestamp_with_time_zone(IntegrationItems::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(IntegrationItems::IntegrationId)
                            .col(IntegrationItems::ItemId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_integration_items_integration")
                            .from(IntegrationItems::Table, IntegrationItems::IntegrationId)
                            .to(Integrations::Table, Integrations::IntegrationId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_integration_items_content")
                    .table(IntegrationItems::Table)
                    .col(IntegrationItems::IntegrationId)
                    .col(IntegrationItems::ContentId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(InboundDeliveries::Table)
                    .if_not_exists()
                    .col(uuid(InboundDeliveries::IntegrationId))
                    .col(string_len(InboundDeliveries::DeliveryId, EXTERNAL_ID_LEN))
                    .col(timestamp_with_time_zone(InboundDeliveries::ReceivedAt))
                    .primary_key(
                        Index::create()
                            .col(InboundDeliveries::IntegrationId)
                            .col(InboundDeliveries::DeliveryId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_inbound_deliveries_integration")
                            .from(InboundDeliveries::Table, InboundDeliveries::IntegrationId)
                            .to(Integrations::Table, Integrations::IntegrationId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_inbound_deliveries_received")
                    .table(InboundDeliveries::Table)
                    .col(InboundDeliveries::ReceivedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_table(manager, InboundDeliveries::Table).await?;
        crate::drop_table(manager, IntegrationItems::Table).await?;
        for column in [
            Added::SyncLeaseUntil,
            Added::SyncPass,
            Added::SyncCursor,
            Added::ExternalId,
            Added::InboundSecret,
        ] {
            crate::drop_column(manager, Integrations::Table, column).await?;
        }
        Ok(())
    }
}
