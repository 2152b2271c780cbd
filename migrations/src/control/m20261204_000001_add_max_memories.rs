//! Adds the tenant's memory quota to tenant_settings: the most memories (soft-deleted ones
//! included, until purged) the tenant may store; null means unlimited. The operator writes it
//! from `spec.storage.maxMemories`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::m20261125_000003_create_tenant_settings::TenantSettings;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Added {
    MaxMemories,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::add_column(
            manager,
            TenantSettings::Table,
            big_integer_null(Added::MaxMemories),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_column(manager, TenantSettings::Table, Added::MaxMemories).await
    }
}
