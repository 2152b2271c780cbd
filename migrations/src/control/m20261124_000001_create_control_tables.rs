//! Creates tenants, api_keys and outbox.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
pub enum Tenants {
    Table,
    TenantId,
    Name,
    DisplayName,
    Isolation,
    SchemaName,
    CollectionName,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum ApiKeys {
    Table,
    KeyId,
    TenantId,
    UserId,
    Name,
    Prefix,
    KeyHash,
    Role,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum Outbox {
    Table,
    OutboxId,
    TenantName,
    MemoryId,
    Attempts,
    NextAttemptAt,
    LastError,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(tenants_table()).await?;
        manager.create_table(api_keys_table()).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_keys_tenant")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::TenantId)
                    .to_owned(),
            )
            .await?;
        manager.create_table(outbox_table()).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_due")
                    .table(Outbox::Table)
                    .col(Outbox::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ApiKeys::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Tenants::Table).to_owned())
            .await
    }
}

fn tenants_table() -> TableCreateStatement {
    Table::create()
        .table(Tenants::Table)
        .if_not_exists()
        .col(uuid(Tenants::TenantId).primary_key())
        .col(string_len(Tenants::Name, 64).unique_key())
        .col(string_len(Tenants::DisplayName, 256))
        .col(
            string_len(Tenants::Isolation, 16)
                .check(Expr::col(Tenants::Isolation).is_in(["Shared", "Dedicated"])),
        )
        .col(string_len(Tenants::SchemaName, 64))
        .col(string_len(Tenants::CollectionName, 128))
        .col(timestamp_with_time_zone(Tenants::CreatedAt))
        .to_owned()
}

fn api_keys_table() -> TableCreateStatement {
    Table::create()
        .table(ApiKeys::Table)
        .if_not_exists()
        .col(uuid(ApiKeys::KeyId).primary_key())
        .col(uuid(ApiKeys::TenantId))
        .col(uuid(ApiKeys::UserId))
        .col(string_len(ApiKeys::Name, 128))
        // The public part of the key, used to find the row; the secret part is only hashed.
        .col(string_len(ApiKeys::Prefix, 32).unique_key())
        .col(string_len(ApiKeys::KeyHash, 64))
        .col(string_len(ApiKeys::Role, 32))
        .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
        .col(timestamp_with_time_zone_null(ApiKeys::ExpiresAt))
        .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
        .foreign_key(
            ForeignKey::create()
                .name("fk_api_keys_tenant")
                .from(ApiKeys::Table, ApiKeys::TenantId)
                .to(Tenants::Table, Tenants::TenantId)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

fn outbox_table() -> TableCreateStatement {
    Table::create()
        .table(Outbox::Table)
        .if_not_exists()
        .col(uuid(Outbox::OutboxId).primary_key())
        .col(string_len(Outbox::TenantName, 64))
        .col(uuid(Outbox::MemoryId))
        .col(integer(Outbox::Attempts).default(0))
        .col(timestamp_with_time_zone(Outbox::NextAttemptAt))
        .col(text_null(Outbox::LastError))
        .col(timestamp_with_time_zone(Outbox::CreatedAt))
        // One pending sync per memory: the worker syncs the memory's current state, so a
        // second change while the first is pending needs no second entry.
        .index(
            Index::create()
                .name("uq_outbox_memory")
                .col(Outbox::TenantName)
                .col(Outbox::MemoryId)
                .unique(),
        )
        .to_owned()
}
