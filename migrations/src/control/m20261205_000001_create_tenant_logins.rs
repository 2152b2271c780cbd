//! Adds `tenant_logins`: per Shared tenant, the PostgreSQL login the shared platform uses for
//! that tenant's statements (see `memoryc_control::roles::ensure_platform_login`). Keyed by tenant name because a
//! tenant's tables are used before its registration row exists (its first user is created
//! first); whoever erases the tenant removes the row.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
pub enum TenantLogins {
    Table,
    TenantName,
    RoleName,
    Password,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TenantLogins::Table)
                    .if_not_exists()
                    .col(string_len(TenantLogins::TenantName, 64).primary_key())
                    .col(string_len(TenantLogins::RoleName, 63))
                    .col(string_len(TenantLogins::Password, 128))
                    .col(timestamp_with_time_zone(TenantLogins::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_table(manager, TenantLogins::Table).await
    }
}
