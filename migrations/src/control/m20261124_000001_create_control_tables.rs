//! Creates tenants, api_keys and outbox.

use sea_orm_migration::prelude::*;

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
        .col(
            ColumnDef::new(Tenants::TenantId)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new(Tenants::Name)
                .string_len(64)
                .not_null()
                .unique_key(),
        )
        .col(
            ColumnDef::new(Tenants::DisplayName)
                .string_len(256)
                .not_null(),
        )
        .col(
            ColumnDef::new(Tenants::Isolation)
                .string_len(16)
                .not_null()
                .check(Expr::col(Tenants::Isolation).is_in(["Shared", "Dedicated"])),
        )
        .col(
            ColumnDef::new(Tenants::SchemaName)
                .string_len(64)
                .not_null(),
        )
        .col(
            ColumnDef::new(Tenants::CollectionName)
                .string_len(128)
                .not_null(),
        )
        .col(
            ColumnDef::new(Tenants::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .to_owned()
}

fn api_keys_table() -> TableCreateStatement {
    Table::create()
        .table(ApiKeys::Table)
        .if_not_exists()
        .col(
            ColumnDef::new(ApiKeys::KeyId)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(ApiKeys::TenantId).uuid().not_null())
        .col(ColumnDef::new(ApiKeys::UserId).uuid().not_null())
        .col(ColumnDef::new(ApiKeys::Name).string_len(128).not_null())
        // The public part of the key, used to find the row; the secret part is only hashed.
        .col(
            ColumnDef::new(ApiKeys::Prefix)
                .string_len(32)
                .not_null()
                .unique_key(),
        )
        .col(ColumnDef::new(ApiKeys::KeyHash).string_len(64).not_null())
        .col(ColumnDef::new(ApiKeys::Role).string_len(32).not_null())
        .col(
            ColumnDef::new(ApiKeys::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(ApiKeys::ExpiresAt)
                .timestamp_with_time_zone()
                .null(),
        )
        .col(
            ColumnDef::new(ApiKeys::RevokedAt)
                .timestamp_with_time_zone()
                .null(),
        )
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
        .col(
            ColumnDef::new(Outbox::OutboxId)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(Outbox::TenantName).string_len(64).not_null())
        .col(ColumnDef::new(Outbox::MemoryId).uuid().not_null())
        .col(
            ColumnDef::new(Outbox::Attempts)
                .integer()
                .not_null()
                .default(0),
        )
        .col(
            ColumnDef::new(Outbox::NextAttemptAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(ColumnDef::new(Outbox::LastError).text().null())
        .col(
            ColumnDef::new(Outbox::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
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
