//! Creates audit_log: every write, every denied request and every key change, with who, which
//! tenant, which route, the outcome and the time.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
pub enum AuditLog {
    Table,
    AuditId,
    TenantId,
    Subject,
    UserId,
    Roles,
    Method,
    Route,
    Path,
    Outcome,
    Status,
    Detail,
    OccurredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .if_not_exists()
                    // UUIDv7: ordering by id is ordering by time, which keyset pagination uses.
                    .col(
                        ColumnDef::new(AuditLog::AuditId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    // Null for requests that named no valid tenant (bad credentials).
                    .col(ColumnDef::new(AuditLog::TenantId).uuid().null())
                    .col(ColumnDef::new(AuditLog::Subject).string_len(160).null())
                    .col(ColumnDef::new(AuditLog::UserId).uuid().null())
                    .col(
                        ColumnDef::new(AuditLog::Roles)
                            .string_len(256)
                            .not_null()
                            .default(""),
                    )
                    .col(ColumnDef::new(AuditLog::Method).string_len(8).not_null())
                    .col(ColumnDef::new(AuditLog::Route).string_len(160).not_null())
                    .col(ColumnDef::new(AuditLog::Path).string_len(512).not_null())
                    .col(
                        ColumnDef::new(AuditLog::Outcome)
                            .string_len(24)
                            .not_null()
                            .check(Expr::col(AuditLog::Outcome).is_in([
                                "allowed",
                                "failed",
                                "denied",
                                "unauthenticated",
                                "rate_limited",
                            ])),
                    )
                    .col(ColumnDef::new(AuditLog::Status).integer().not_null())
                    .col(ColumnDef::new(AuditLog::Detail).json_binary().null())
                    .col(
                        ColumnDef::new(AuditLog::OccurredAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_tenant")
                    .table(AuditLog::Table)
                    .col(AuditLog::TenantId)
                    .col(AuditLog::AuditId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditLog::Table).to_owned())
            .await
    }
}
