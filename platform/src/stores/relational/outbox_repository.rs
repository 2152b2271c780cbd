//! [`OutboxRepository`] on the control tables.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memoryc_crds::layout::TenantName;
use sea_orm::sea_query::{ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::Databases;
use super::entities::outbox::{self, Column, Entity as Outbox};
use crate::stores::group_write::GroupWriter;
use crate::stores::{OutboxEntry, OutboxRepository, StoreError};

/// Longest error text kept per entry; the rest is in the logs.
const MAX_ERROR_CHARS: usize = 500;

/// Most entries enqueued or completed in one statement.
const MAX_ENTRIES_PER_WRITE: usize = 64;

/// A memory whose vector must follow its row, and from when a worker may sync it.
struct Intent {
    tenant: TenantName,
    memory_id: Uuid,
    due: DateTime<Utc>,
}

/// Enqueues and completions of requests that run at the same time share one statement each
/// (see [`GroupWriter`]); every caller still waits for its own entry.
#[derive(Clone)]
pub struct SqlOutboxRepository {
    databases: Databases,
    enqueues: Arc<GroupWriter<Intent>>,
    completions: Arc<GroupWriter<(TenantName, Uuid)>>,
}

impl SqlOutboxRepository {
    /// Starts the group writers on the current tokio runtime.
    pub fn new(databases: Databases) -> Self {
        let control = databases.clone();
        let enqueues = GroupWriter::start(MAX_ENTRIES_PER_WRITE, move |intents| {
            let control = control.clone();
            async move { enqueue_all(&control, intents).await }
        });
        let control = databases.clone();
        let completions = GroupWriter::start(MAX_ENTRIES_PER_WRITE, move |done| {
            let control = control.clone();
            async move { complete_all(&control, done).await }
        });
        Self {
            databases,
            enqueues: Arc::new(enqueues),
            completions: Arc::new(completions),
        }
    }
}

/// One upsert for every intent. A memory named twice gets the due time of the later call, as
/// two statements one after the other would leave it (one statement may not upsert a row twice).
async fn enqueue_all(databases: &Databases, intents: Vec<Intent>) -> Result<(), StoreError> {
    let mut latest: HashMap<(TenantName, Uuid), DateTime<Utc>> = HashMap::new();
    for intent in intents {
        latest.insert((intent.tenant, intent.memory_id), intent.due);
    }
    let now = Utc::now();
    let rows = latest
        .into_iter()
        .map(|((tenant, memory_id), due)| outbox::ActiveModel {
            outbox_id: Set(Uuid::now_v7()),
            tenant_name: Set(tenant.to_string()),
            memory_id: Set(memory_id),
            attempts: Set(0),
            next_attempt_at: Set(due),
            last_error: Set(None),
            created_at: Set(now),
        });
    Outbox::insert_many(rows)
        .on_conflict(
            OnConflict::columns([Column::TenantName, Column::MemoryId])
                .update_column(Column::NextAttemptAt)
                .to_owned(),
        )
        .exec_without_returning(databases.control())
        .await?;
    Ok(())
}

/// One delete for every completed entry, the memories of each tenant in one `IN` list.
async fn complete_all(
    databases: &Databases,
    done: Vec<(TenantName, Uuid)>,
) -> Result<(), StoreError> {
    let mut by_tenant: HashMap<TenantName, Vec<Uuid>> = HashMap::new();
    for (tenant, memory_id) in done {
        by_tenant.entry(tenant).or_default().push(memory_id);
    }
    let mut condition = Condition::any();
    for (tenant, memory_ids) in by_tenant {
        condition = condition.add(
            Column::TenantName
                .eq(tenant.as_str())
                .and(Column::MemoryId.is_in(memory_ids)),
        );
    }
    Outbox::delete_many()
        .filter(condition)
        .exec(databases.control())
        .await?;
    Ok(())
}

#[async_trait]
impl OutboxRepository for SqlOutboxRepository {
    async fn enqueue(
        &self,
        tenant: &TenantName,
        memory_id: Uuid,
        due: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.enqueues
            .write(Intent {
                tenant: tenant.clone(),
                memory_id,
                due,
            })
            .await
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
        self.completions.write((tenant.clone(), memory_id)).await
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
