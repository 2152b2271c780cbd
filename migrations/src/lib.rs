//! Memory-C* database migrations.
//!
//! Two independent sets: [`ControlMigrator`] for the platform's own tables (tenants, API keys,
//! outbox, integrations, policy rules, audit log, tenant settings) and [`TenantMigrator`] for
//! one tenant's data. The tenant set uses unqualified table names, so it runs into whatever
//! PostgreSQL schema is first on the `search_path` of the connection it is given, or into a
//! tenant's SQLite file.

pub use sea_orm_migration;
use sea_orm_migration::prelude::*;

pub mod control;
pub mod tenant;

/// Drops `table`: the `down` of a migration that created it.
pub(crate) async fn drop_table(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(table).to_owned())
        .await
}

/// Adds `column` to `table` unless it is there: one column per statement, as SQLite alters.
pub(crate) async fn add_column(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    column: ColumnDef,
) -> Result<(), DbErr> {
    manager
        .alter_table(
            Table::alter()
                .table(table)
                .add_column_if_not_exists(column)
                .to_owned(),
        )
        .await
}

/// Drops `column` of `table`: the `down` of [`add_column`].
pub(crate) async fn drop_column(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    column: impl IntoIden,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).drop_column(column).to_owned())
        .await
}

/// Migrations of the control schema.
pub struct ControlMigrator;

impl MigratorTrait for ControlMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(control::m20261124_000001_create_control_tables::Migration),
            Box::new(control::m20261124_000002_create_integrations::Migration),
            Box::new(control::m20261125_000001_create_policy_rules::Migration),
            Box::new(control::m20261125_000002_create_audit_log::Migration),
            Box::new(control::m20261125_000003_create_tenant_settings::Migration),
            Box::new(control::m20261126_000001_add_analytics_schedule::Migration),
            Box::new(control::m20261127_000001_add_search_ef::Migration),
            Box::new(control::m20261204_000001_add_max_memories::Migration),
            Box::new(control::m20261204_000002_policy_domains_by_tenant_id::Migration),
            Box::new(control::m20261204_000003_add_insight_and_burst_settings::Migration),
            Box::new(control::m20261205_000001_create_tenant_logins::Migration),
            Box::new(control::m20261206_000001_add_integration_secret_and_state::Migration),
            Box::new(control::m20261206_000002_create_webhook_deliveries::Migration),
            Box::new(control::m20261207_000001_create_github_sync_state::Migration),
        ]
    }
}

/// Migrations of one tenant's schema.
pub struct TenantMigrator;

impl MigratorTrait for TenantMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(tenant::m20261124_000001_create_tenant_tables::Migration),
            Box::new(tenant::m20261126_000001_create_memory_history::Migration),
        ]
    }
}
