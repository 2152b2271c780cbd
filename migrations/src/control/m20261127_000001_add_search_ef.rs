//! Adds the tenant's HNSW search-time candidate list size (`ef`) to tenant_settings; null means
//! the platform's default. The operator writes it from `spec.vectors.index.ef` (bounded by the
//! CRD's schema); the platform clamps it to what Milvus accepts. No CHECK constraint: SQLite
//! cannot drop a column a constraint names, and the migration must roll back there too.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::m20261125_000003_create_tenant_settings::TenantSettings;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Added {
    SearchEf,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::add_column(
            manager,
            TenantSettings::Table,
            integer_null(Added::SearchEf),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_column(manager, TenantSettings::Table, Added::SearchEf).await
    }
}
