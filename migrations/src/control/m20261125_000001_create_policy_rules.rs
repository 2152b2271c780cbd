//! Creates policy_rules: the tenant-specific Casbin rules (role grants, extra permissions).
//! The built-in roles live in `policies/policy.csv`; only what tenants add is stored here.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
pub enum PolicyRules {
    Table,
    RuleId,
    Ptype,
    V0,
    V1,
    V2,
    V3,
    V4,
    V5,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let value = |column: PolicyRules| string_len(column, 128).default("").to_owned();
        manager
            .create_table(
                Table::create()
                    .table(PolicyRules::Table)
                    .if_not_exists()
                    .col(uuid(PolicyRules::RuleId).primary_key())
                    // `p` (permission) or `g` (role grant), as in Casbin's model.
                    .col(string_len(PolicyRules::Ptype, 8))
                    .col(value(PolicyRules::V0))
                    .col(value(PolicyRules::V1))
                    .col(value(PolicyRules::V2))
                    .col(value(PolicyRules::V3))
                    .col(value(PolicyRules::V4))
                    .col(value(PolicyRules::V5))
                    .col(timestamp_with_time_zone(PolicyRules::CreatedAt))
                    .index(
                        Index::create()
                            .name("uq_policy_rule")
                            .col(PolicyRules::Ptype)
                            .col(PolicyRules::V0)
                            .col(PolicyRules::V1)
                            .col(PolicyRules::V2)
                            .col(PolicyRules::V3)
                            .col(PolicyRules::V4)
                            .col(PolicyRules::V5)
                            .unique(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_table(manager, PolicyRules::Table).await
    }
}
