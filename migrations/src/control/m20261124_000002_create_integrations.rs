//! Creates integrations: the outside systems each tenant is connected to (IntegrationBindings).

use sea_orm_migration::prelude::*;

use super::m20261124_000001_create_control_tables::Tenants;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
pub enum Integrations {
    Table,
    IntegrationId,
    TenantId,
    Name,
    Kind,
    Settings,
    SecretName,
    SyncSchedule,
    Paused,
    CreatedAt,
    UpdatedAt,
}

/// Integration kinds, as the IntegrationBinding resource names them.
const KINDS: [&str; 3] = ["GitHubProjects", "Webhook", "LLMProvider"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Integrations::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Integrations::IntegrationId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Integrations::TenantId).uuid().not_null())
                    // The binding's name; unique per tenant because bindings live in the
                    // tenant's namespace.
                    .col(
                        ColumnDef::new(Integrations::Name)
                            .string_len(253)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Integrations::Kind)
                            .string_len(32)
                            .not_null()
                            .check(Expr::col(Integrations::Kind).is_in(KINDS)),
                    )
                    .col(
                        ColumnDef::new(Integrations::Settings)
                            .json_binary()
                            .not_null(),
                    )
                    // Credentials stay in the Kubernetes Secret; only its name is recorded.
                    .col(
                        ColumnDef::new(Integrations::SecretName)
                            .string_len(253)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Integrations::SyncSchedule)
                            .string_len(64)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Integrations::Paused)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Integrations::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Integrations::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_integrations_tenant")
                            .from(Integrations::Table, Integrations::TenantId)
                            .to(Tenants::Table, Tenants::TenantId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .index(
                        Index::create()
                            .name("uq_integrations_tenant_name")
                            .col(Integrations::TenantId)
                            .col(Integrations::Name)
                            .unique(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Integrations::Table).to_owned())
            .await
    }
}
