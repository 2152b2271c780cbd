//! Creates integrations: the outside systems each tenant is connected to (IntegrationBindings).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

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
                    .col(uuid(Integrations::IntegrationId).primary_key())
                    .col(uuid(Integrations::TenantId))
                    // The binding's name; unique per tenant because bindings live in the
                    // tenant's namespace.
                    .col(string_len(Integrations::Name, 253))
                    .col(
                        string_len(Integrations::Kind, 32)
                            .check(Expr::col(Integrations::Kind).is_in(KINDS)),
                    )
                    .col(json_binary(Integrations::Settings))
                    // Credentials stay in the Kubernetes Secret; only its name is recorded.
                    .col(string_len(Integrations::SecretName, 253))
                    .col(string_len_null(Integrations::SyncSchedule, 64))
                    .col(boolean(Integrations::Paused).default(false))
                    .col(timestamp_with_time_zone(Integrations::CreatedAt))
                    .col(timestamp_with_time_zone(Integrations::UpdatedAt))
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
        crate::drop_table(manager, Integrations::Table).await
    }
}
