//! [`OutboxRepository`] on the control tables.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memoryc_crds::layout::TenantName;
use sea_orm::sea_query::{ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::Databases;
use super::entities::outbox::{self, Column, Entity as Outbox};
use crate::stores::{OutboxEntry, OutboxRepository, StoreError};

/// Longest error text kept per entry; the rest is in the logs.
const MAX_ERROR_CHARS: usize = 500;

#[derive(Clone)]
pub struct SqlOutboxRepository {
    databases: Databases,
}

impl SqlOutboxRepository {
    pub fn new(databases: Databases) -> Self {
        Self { databases }
    }
}

#[async_trait]
impl OutboxRepository for SqlOutboxRepository {
    async fn enqueue(
        &self,
        tenant: &TenantName,
        memory_id: Uuid,
        due: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let entry = outbox::ActiveModel {
            outbox_id: Set(Uuid::now_v7()),
            tenant_name: Set(tenant.to_string()),
            memory_id: Set(memory_id),
            attempts: Set(0),
            next_attempt_at: Set(due),
            last_error: Set(None),
            created_at: Set(now),
        };
        Outbox::insert(entry)
            .on_conflict(
                OnConflict::columns([Column::TenantName, Column::MemoryId])
                    .update_column(Column::NextAttemptAt)
                    .to_owned(),
            )
            .exec_without_returning(self.databases.control())
            .await?;
        Ok(())
    }

    async fn due(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = Outbox::find()
            .filter(Column::NextAttemptAt.lte(now))
            .order_by_asc(Column::NextAttemptAt)
            .limit(limit)
            .all(self.databases.control())
            .await?;
        rows.into_iter()
            .map(|row| {
                let tenant = TenantName::parse(&row.tenant_name)
                    .map_err(|e| StoreError::Corrupt(format!("outbox entry: {e}")))?;
                Ok(OutboxEntry {
                    tenant,
                    memory_id: row.memory_id,
                    attempts: row.attempts,
                })
            })
            .collect()
    }

    async fn complete(&self, tenant: &TenantName, memory_id: Uuid) -> Result<(), StoreError> {
        Outbox::delete_many()
            .filter(Column::TenantName.eq(tenant.as_str()))
            .filter(Column::MemoryId.eq(memory_id))
            .exec(self.databases.control())
            .await?;
        Ok(())
    }

    async fn reschedule(
        &self,
        tenant: &TenantName,
        memory_id: Uuid,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        Outbox::update_many()
            .col_expr(
                Column::Attempts,
                sea_orm::sea_query::Expr::col(Column::Attempts).add(1),
            )
            .col_expr(
                Column::NextAttemptAt,
                sea_orm::sea_query::Expr::value(next_attempt_at),
            )
            .col_expr(
                Column::LastError,
                sea_orm::sea_query::Expr::value(Some(error)),
            )
            .filter(Column::TenantName.eq(tenant.as_str()))
            .filter(Column::MemoryId.eq(memory_id))
            .exec(self.databases.control())
            .await?;
        Ok(())
    }

    async fn backlog(&self) -> Result<u64, StoreError> {
        Ok(Outbox::find().count(self.databases.control()).await?)
    }

    async fn forget_tenant(&self, tenant: &TenantName) -> Result<(), StoreError> {
        Outbox::delete_many()
            .filter(Column::TenantName.eq(tenant.as_str()))
            .exec(self.databases.control())
            .await?;
        Ok(())
    }
}
