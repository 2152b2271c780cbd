//! Adds a tenant's own insight lifetime and confidence floor (`spec.analytics.insightTtl`,
//! `spec.analytics.confidenceThreshold`) and its burst limit (`spec.rateLimits.burst`, requests
//! per credential, route and second) to tenant_settings; null means the platform's default.
//! No CHECK constraints, as for search_ef: SQLite must be able to drop the columns again.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::m20261125_000003_create_tenant_settings::TenantSettings;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Added {
    InsightTtlHours,
    InsightMinConfidence,
    RateLimitBurst,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        for column in [
            integer_null(Added::InsightTtlHours),
            double_null(Added::InsightMinConfidence),
            integer_null(Added::RateLimitBurst),
        ] {
            crate::add_column(manager, TenantSettings::Table, column).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Added::RateLimitBurst,
            Added::InsightMinConfidence,
            Added::InsightTtlHours,
        ] {
            crate::drop_column(manager, TenantSettings::Table, column).await?;
        }
        Ok(())
    }
}
