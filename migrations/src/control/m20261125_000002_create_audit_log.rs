//! Creates audit_log: every write, every denied request and every key change, with who, which
//! tenant, which route, the outcome and the time.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

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
                    .col(uuid(AuditLog::AuditId).primary_key())
                    // Null for requests that named no valid tenant (bad credentials).
                    .col(uuid_null(AuditLog::TenantId))
                    .col(string_len_null(AuditLog::Subject, 160))
                    .col(uuid_null(AuditLog::UserId))
                    .col(string_len(AuditLog::Roles, 256).default(""))
                    .col(string_len(AuditLog::Method, 8))
                    .col(string_len(AuditLog::Route, 160))
                    .col(string_len(AuditLog::Path, 512))
                    .col(string_len(AuditLog::Outcome, 24).check(
                        Expr::col(AuditLog::Outcome).is_in([
                            "allowed",
                            "failed",
                            "denied",
                            "unauthenticated",
                            "rate_limited",
                        ]),
                    ))
                    .col(integer(AuditLog::Status))
                    .col(json_binary_null(AuditLog::Detail))
                    .col(timestamp_with_time_zone(AuditLog::OccurredAt))
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
        crate::drop_table(manager, AuditLog::Table).await
    }
}
