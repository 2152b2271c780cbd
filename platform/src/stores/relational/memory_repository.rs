//! [`MemoryRepository`] on sea-orm, for PostgreSQL and SQLite alike.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memoryc_crds::layout::TenantName;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend,
    EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::Databases;
use super::codec::{decode_embedding, encode_embedding};
use super::entities::history;
use super::entities::memory::{self, Column, Entity as Memories};
use crate::domain::analytics::HistoryAction;
use crate::domain::{Category, Memory, MemoryFilter, MemoryPatch, NewMemory};
use crate::stores::{MemoryRepository, StoreError, VectorSource};

/// Ids per access-count UPDATE, far below either database's bound-parameter limit.
const ACCESS_UPDATE_IDS: usize = 1_000;

/// Memories in whichever relational backend `Databases` points at.
#[derive(Clone)]
pub struct SqlMemoryRepository {
    databases: Databases,
}

impl SqlMemoryRepository {
    pub fn new(databases: Databases) -> Self {
        Self { databases }
    }

    /// Live memories passing `filter` (and containing `text`, case-insensitively), newest first.
    async fn newest_live(
        &self,
        tenant: &TenantName,
        filter: &MemoryFilter,
        text: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Memory>, StoreError> {
        let backend = self.databases.backend();
        let mut condition = live_matching(filter, backend);
        if let Some(text) = text {
            let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
            condition = condition.add(
                Expr::expr(Func::lower(Expr::col(Column::Content)))
                    .like(LikeExpr::new(pattern).escape('\\')),
            );
        }
        let select = Memories::find()
            .filter(condition)
            .order_by_desc(Column::CreatedAt)
            .order_by_desc(Column::MemoryId)
            .limit(limit);
        let rows = self.databases.tenant_select(tenant, select).await?;
        rows.into_iter().map(to_memory).collect()
    }

    /// The tenant's rows with these ids, deleted or not, read in one statement.
    async fn rows_by_id(
        &self,
        tenant: &TenantName,
        ids: &[Uuid],
    ) -> Result<Vec<memory::Model>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let select = Memories::find().filter(Column::MemoryId.is_in(ids.iter().copied()));
        self.databases.tenant_select(tenant, select).await
    }
}

#[async_trait]
impl MemoryRepository for SqlMemoryRepository {
    async fn insert(&self, tenant: &TenantName, new: &NewMemory) -> Result<Memory, StoreError> {
        let row = memory::Model {
            memory_id: new.memory_id,
            content: new.content.clone(),
            category: new.category.as_str().to_string(),
            embedding: Some(encode_embedding(&new.embedding)),
            metadata: new.metadata.clone(),
            created_at: new.created_at,
            updated_at: new.created_at,
            confidence_score: new.confidence_score,
            access_count: 0,
            user_id: new.user_id,
            is_deleted: false,
        };
        let created = history_entry(
            new.memory_id,
            HistoryAction::Created,
            None,
            Some(snapshot(&row)),
            new.user_id,
            new.created_at,
        );
        let stored = self
            .databases
            .tenant_insert_pair(tenant, row.into_active_model().reset_all(), created)
            .await?;
        to_memory(stored)
    }

    async fn find(&self, tenant: &TenantName, id: Uuid) -> Result<Option<Memory>, StoreError> {
        let rows = self
            .databases
            .tenant_select(tenant, Memories::find_by_id(id))
            .await?;
        rows.into_iter().next().map(to_memory).transpose()
    }

    async fn find_live(
        &self,
        tenant: &TenantName,
        ids: &[Uuid],
    ) -> Result<Vec<Memory>, StoreError> {
        // Only the primary key in SQL: with `is_deleted = false` beside it, SQLite (which has
        // no statistics) prefers the (is_deleted, created_at) index and scans every live row,
        // which costs ~150 ms per search at 100 000 memories. Deleted rows are dropped here.
        let rows = self.rows_by_id(tenant, ids).await?;
        rows.into_iter()
            .filter(|row| !row.is_deleted)
            .map(to_memory)
            .collect()
    }

    async fn list(
        &self,
        tenant: &TenantName,
        filter: &MemoryFilter,
        limit: u64,
    ) -> Result<Vec<Memory>, StoreError> {
        self.newest_live(tenant, filter, None, limit).await
    }

    async fn search_text(
        &self,
        tenant: &TenantName,
        text: &str,
        filter: &MemoryFilter,
        limit: u64,
    ) -> Result<Vec<Memory>, StoreError> {
        self.newest_live(tenant, filter, Some(text), limit).await
    }

    async fn update(
        &self,
        tenant: &TenantName,
        id: Uuid,
        patch: &MemoryPatch,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<Memory>, StoreError> {
        let transaction = self.databases.tenant_write_transaction(tenant).await?;
        let Some(row) = Memories::find_by_id(id)
            .filter(Column::IsDeleted.eq(false))
            .lock_exclusive_if_supported(transaction.get_database_backend())
            .one(&transaction)
            .await?
        else {
            return Ok(None);
        };
        let before = row.clone();
        let mut active: memory::ActiveModel = row.into();
        if let Some(content) = &patch.content {
            active.content = Set(content.clone());
        }
        if let Some(embedding) = &patch.embedding {
            active.embedding = Set(Some(encode_embedding(embedding)));
        }
        if let Some((category, confidence)) = patch.category {
            active.category = Set(category.as_str().to_string());
            active.confidence_score = Set(confidence);
        }
        if let Some(metadata) = &patch.metadata {
            active.metadata = Set(metadata.clone());
        }
        active.updated_at = Set(now);
        let row = active.update(&transaction).await?;
        let (old_value, new_value) = changed_fields(&before, &row);
        history_entry(
            id,
            HistoryAction::Updated,
            Some(old_value),
            Some(new_value),
            actor,
            now,
        )
        .insert(&transaction)
        .await?;
        transaction.commit().await?;
        to_memory(row).map(Some)
    }

    async fn soft_delete(
        &self,
        tenant: &TenantName,
        id: Uuid,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let transaction = self.databases.tenant_write_transaction(tenant).await?;
        let before = Memories::find_by_id(id)
            .filter(Column::IsDeleted.eq(false))
            .one(&transaction)
            .await?;
        let result = Memories::update_many()
            .col_expr(Column::IsDeleted, Expr::value(true))
            .col_expr(Column::Embedding, Expr::value(Option::<Vec<u8>>::None))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .filter(Column::MemoryId.eq(id))
            .filter(Column::IsDeleted.eq(false))
            .exec(&transaction)
            .await?;
        if let Some(before) = before.filter(|_| result.rows_affected > 0) {
            history_entry(
                id,
                HistoryAction::Deleted,
                Some(snapshot(&before)),
                None,
                actor,
                now,
            )
            .insert(&transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(result.rows_affected > 0)
    }

    async fn purge(&self, tenant: &TenantName, id: Uuid) -> Result<bool, StoreError> {
        let transaction = self.databases.tenant_write_transaction(tenant).await?;
        let backend = transaction.get_database_backend();
        // Events, history and insights mention memories without a foreign key; erase those
        // mentions too (relationships go with the row, by cascade).
        for sql in [
            "DELETE FROM analytics_events WHERE memory_id = ?",
            "DELETE FROM memory_history WHERE memory_id = ?",
        ] {
            transaction
                .execute_raw(sea_orm::Statement::from_sql_and_values(
                    backend,
                    placeholders(backend, sql),
                    [id.into()],
                ))
                .await?;
        }
        transaction
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                placeholders(
                    backend,
                    "DELETE FROM predictive_insights WHERE CAST(supporting_memories AS TEXT) LIKE ?",
                ),
                [format!("%{id}%").into()],
            ))
            .await?;
        let result = Memories::delete_by_id(id).exec(&transaction).await?;
        transaction.commit().await?;
        Ok(result.rows_affected > 0)
    }

    async fn record_accesses(
        &self,
        tenant: &TenantName,
        counts: &[(Uuid, u32)],
    ) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        // One UPDATE per distinct count (nearly always just 1), over the ids sharing it.
        let mut by_count: BTreeMap<u32, Vec<Uuid>> = BTreeMap::new();
        for (id, count) in counts.iter().filter(|(_, count)| *count > 0) {
            by_count.entry(*count).or_default().push(*id);
        }
        let transaction = self.databases.tenant_write_transaction(tenant).await?;
        for (count, ids) in &by_count {
            for slice in ids.chunks(ACCESS_UPDATE_IDS) {
                Memories::update_many()
                    .col_expr(
                        Column::AccessCount,
                        Expr::col(Column::AccessCount).add(i64::from(*count)),
                    )
                    .filter(Column::MemoryId.is_in(slice.iter().copied()))
                    .exec(&transaction)
                    .await?;
            }
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn record_one_access(
        &self,
        tenant: &TenantName,
        id: Uuid,
    ) -> Result<Option<i64>, StoreError> {
        let transaction = self.databases.tenant_write_transaction(tenant).await?;
        let statement = Query::update()
            .table(Memories)
            .value(Column::AccessCount, Expr::col(Column::AccessCount).add(1))
            .and_where(Column::MemoryId.eq(id))
            .and_where(Column::IsDeleted.eq(false))
            .returning_col(Column::AccessCount)
            .to_owned();
        let row = transaction.query_one(&statement).await?;
        transaction.commit().await?;
        row.map(|row| row.try_get::<i64>("", "access_count"))
            .transpose()
            .map_err(StoreError::from)
    }

    async fn vector_source(
        &self,
        tenant: &TenantName,
        id: Uuid,
    ) -> Result<Option<VectorSource>, StoreError> {
        Ok(self.vector_sources(tenant, &[id]).await?.pop())
    }

    async fn vector_sources(
        &self,
        tenant: &TenantName,
        ids: &[Uuid],
    ) -> Result<Vec<VectorSource>, StoreError> {
        let rows = self.rows_by_id(tenant, ids).await?;
        rows.into_iter()
            .map(|row| {
                let embedding = row.embedding.as_deref().map(decode_embedding).transpose()?;
                Ok(VectorSource {
                    memory: to_memory(row)?,
                    embedding,
                })
            })
            .collect()
    }

    async fn count_live(&self, tenant: &TenantName) -> Result<u64, StoreError> {
        let transaction = self.databases.tenant_transaction(tenant).await?;
        let count = Memories::find()
            .filter(Column::IsDeleted.eq(false))
            .count(&transaction)
            .await?;
        transaction.commit().await?;
        Ok(count)
    }

    async fn count_stored(&self, tenant: &TenantName) -> Result<u64, StoreError> {
        let transaction = self.databases.tenant_transaction(tenant).await?;
        let count = Memories::find().count(&transaction).await?;
        transaction.commit().await?;
        Ok(count)
    }
}

/// The fields a caller sees and changes, as recorded in the history.
fn snapshot(row: &memory::Model) -> serde_json::Value {
    serde_json::json!({
        "content": row.content,
        "category": row.category,
        "confidence_score": row.confidence_score,
        "metadata": row.metadata,
    })
}

/// The fields that differ between two versions of a row, before and after.
fn changed_fields(
    before: &memory::Model,
    after: &memory::Model,
) -> (serde_json::Value, serde_json::Value) {
    let (old, new) = (snapshot(before), snapshot(after));
    let mut changed_old = serde_json::Map::new();
    let mut changed_new = serde_json::Map::new();
    if let (Some(old), Some(new)) = (old.as_object(), new.as_object()) {
        for (field, value) in new {
            if old.get(field) != Some(value) {
                changed_old.insert(field.clone(), old.get(field).cloned().unwrap_or_default());
                changed_new.insert(field.clone(), value.clone());
            }
        }
    }
    (changed_old.into(), changed_new.into())
}

/// A history entry of `memory_id`, to insert with the change it records.
fn history_entry(
    memory_id: Uuid,
    action: HistoryAction,
    old_value: Option<serde_json::Value>,
    new_value: Option<serde_json::Value>,
    changed_by: Uuid,
    changed_at: DateTime<Utc>,
) -> history::ActiveModel {
    history::ActiveModel {
        history_id: Set(Uuid::now_v7()),
        memory_id: Set(memory_id),
        action: Set(action.as_str().to_string()),
        old_value: Set(old_value),
        new_value: Set(new_value),
        changed_by: Set(changed_by),
        changed_at: Set(changed_at),
    }
}

trait LockIfSupported {
    fn lock_exclusive_if_supported(self, backend: DbBackend) -> Self;
}

impl LockIfSupported for sea_orm::Select<Memories> {
    /// SQLite serialises writers already and has no `FOR UPDATE`.
    fn lock_exclusive_if_supported(self, backend: DbBackend) -> Self {
        match backend {
            DbBackend::Postgres => self.lock_exclusive(),
            _ => self,
        }
    }
}

/// The condition "live and passing every filter", in SQL.
fn live_matching(filter: &MemoryFilter, backend: DbBackend) -> Condition {
    let mut condition = Condition::all().add(Column::IsDeleted.eq(false));
    if let Some(category) = filter.category {
        condition = condition.add(Column::Category.eq(category.as_str()));
    }
    if let Some(user_id) = filter.user_id {
        condition = condition.add(Column::UserId.eq(user_id));
    }
    if let Some(after) = filter.created_after {
        condition = condition.add(Column::CreatedAt.gte(after));
    }
    if let Some(before) = filter.created_before {
        condition = condition.add(Column::CreatedAt.lte(before));
    }
    if let Some((key, value)) = &filter.metadata {
        condition = condition.add(metadata_equals(key, value, backend));
    }
    condition
}

/// `metadata[key] == value`, with the key and value bound as parameters.
fn metadata_equals(key: &str, value: &serde_json::Value, backend: DbBackend) -> Expr {
    match backend {
        DbBackend::Postgres => {
            let probe = serde_json::json!({ key: value }).to_string();
            Expr::cust_with_values("metadata @> CAST($1 AS jsonb)", [probe])
        }
        _ => {
            // json_extract turns JSON scalars into SQL values; compare like with like.
            let path = format!("$.\"{}\"", key.replace('"', ""));
            let wrapped = serde_json::json!({ "v": value }).to_string();
            Expr::cust_with_values(
                "json_extract(metadata, ?) IS json_extract(?, '$.v')",
                [path, wrapped],
            )
        }
    }
}

fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Rewrites `?` placeholders into PostgreSQL's `$n`.
pub(super) fn placeholders(backend: DbBackend, sql: &str) -> String {
    if backend != DbBackend::Postgres {
        return sql.to_string();
    }
    let mut numbered = String::with_capacity(sql.len() + 4);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            numbered.push_str(&format!("${n}"));
        } else {
            numbered.push(c);
        }
    }
    numbered
}

pub(super) fn to_memory(row: memory::Model) -> Result<Memory, StoreError> {
    let category = Category::parse(&row.category)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown category {:?}", row.category)))?;
    Ok(Memory {
        memory_id: row.memory_id,
        content: row.content,
        category,
        metadata: row.metadata,
        created_at: row.created_at,
        updated_at: row.updated_at,
        confidence_score: row.confidence_score,
        access_count: row.access_count,
        user_id: row.user_id,
        is_deleted: row.is_deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }

    #[test]
    fn postgres_placeholders_are_numbered() {
        assert_eq!(
            placeholders(DbBackend::Postgres, "a = ? AND b = ?"),
            "a = $1 AND b = $2"
        );
        assert_eq!(placeholders(DbBackend::Sqlite, "a = ?"), "a = ?");
    }
}
