//! Adds the tenant's own analytics schedule (a cron expression) to tenant_settings; null means
//! the platform's default schedule.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::m20261125_000003_create_tenant_settings::TenantSettings;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Added {
    AnalyticsSchedule,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::add_column(
            manager,
            TenantSettings::Table,
            string_len_null(Added::AnalyticsSchedule, 128),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_column(manager, TenantSettings::Table, Added::AnalyticsSchedule).await
    }
}
