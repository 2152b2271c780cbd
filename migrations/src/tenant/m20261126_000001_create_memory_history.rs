//! Adds the history of every memory: each create, update and delete with the values before and
//! after and who made the change. Written in the same transaction as the change itself.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
pub enum MemoryHistory {
    Table,
    HistoryId,
    MemoryId,
    Action,
    OldValue,
    NewValue,
    ChangedBy,
    ChangedAt,
}

const ACTIONS: [&str; 3] = ["CREATED", "UPDATED", "DELETED"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MemoryHistory::Table)
                    .if_not_exists()
                    .col(uuid(MemoryHistory::HistoryId).primary_key())
                    // No foreign key: the history of a soft-deleted memory stays; erasing a
                    // memory (purge) erases its history explicitly.
                    .col(uuid(MemoryHistory::MemoryId))
                    .col(
                        string_len(MemoryHistory::Action, 16)
                            .check(Expr::col(MemoryHistory::Action).is_in(ACTIONS)),
                    )
                    .col(json_binary_null(MemoryHistory::OldValue))
                    .col(json_binary_null(MemoryHistory::NewValue))
                    .col(uuid(MemoryHistory::ChangedBy))
                    .col(timestamp_with_time_zone(MemoryHistory::ChangedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_history_memory_time")
                    .if_not_exists()
                    .table(MemoryHistory::Table)
                    .col(MemoryHistory::MemoryId)
                    .col(MemoryHistory::ChangedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::drop_table(manager, MemoryHistory::Table).await
    }
}
