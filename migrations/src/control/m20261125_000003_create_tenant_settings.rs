//! Creates tenant_settings: per-tenant choices that override platform defaults (the PII
//! policy, the rate limit). A missing row or a null column means "the platform default".

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::m20261124_000001_create_control_tables::Tenants;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
pub enum TenantSettings {
    Table,
    TenantId,
    PiiPolicy,
    RateLimitPerMinute,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TenantSettings::Table)
                    .if_not_exists()
                    .col(uuid(TenantSettings::TenantId).primary_key())
                    .col(string_len_null(TenantSettings::PiiPolicy, 8).check(
                        Expr::col(TenantSettings::PiiPolicy).is_in(["allow", "mask", "reject"]),
                    ))
                    .col(
                        integer_null(TenantSettings::RateLimitPerMinute)
                            .check(Expr::col(TenantSettings::RateLimitPerMinute).gt(0)),
                    )
                    .col(timestamp_with_time_zone(TenantSettings::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tenant_settings_tenant")
                            .from(TenantSettings::Table, TenantSettings::TenantId)
                            .to(Tenants::Table, Tenants::TenantId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_table(manager, TenantSettings::Table).await
    }
}
