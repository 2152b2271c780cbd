//! Adds the history of every memory: each create, update and delete with the values before and
//! after and who made the change. Written in the same transaction as the change itself.

use sea_orm_migration::prelude::*;

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
                    .col(
                        ColumnDef::new(MemoryHistory::HistoryId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    // No foreign key: the history of a soft-deleted memory stays; erasing a
                    // memory (purge) erases its history explicitly.
                    .col(ColumnDef::new(MemoryHistory::MemoryId).uuid().not_null())
                    .col(
                        ColumnDef::new(MemoryHistory::Action)
                            .string_len(16)
                            .not_null()
                            .check(Expr::col(MemoryHistory::Action).is_in(ACTIONS)),
                    )
                    .col(ColumnDef::new(MemoryHistory::OldValue).json_binary().null())
                    .col(ColumnDef::new(MemoryHistory::NewValue).json_binary().null())
                    .col(ColumnDef::new(MemoryHistory::ChangedBy).uuid().not_null())
                    .col(
                        ColumnDef::new(MemoryHistory::ChangedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
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
        manager
            .drop_table(Table::drop().table(MemoryHistory::Table).to_owned())
            .await
    }
}
