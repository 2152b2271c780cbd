//! [`AnalyticsRepository`] on sea-orm, for PostgreSQL and SQLite alike.

use std::collections::{BTreeSet, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use memoryc_crds::layout::TenantName;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::Databases;
use super::codec::{clip, decode_embedding};
use super::entities::analytics_event::{self, Entity as Events};
use super::entities::history::{self, Entity as History};
use super::entities::insight::{self, Entity as Insights};
use super::entities::memory::{self, Entity as Memories};
use super::entities::relationship::{self, Entity as Relationships};
use super::memory_repository::{placeholders, to_memory};
use crate::domain::Category;
use crate::domain::analytics::{
    AnalyticsEvent, EventType, HistoryAction, HistoryEntry, InsightType, MemoryRelationship,
    PredictiveInsight, RelationshipType,
};
use crate::stores::StoreError;
use crate::stores::analytics::{
    AnalyticsRepository, DailyUsage, EventQuery, InsightQuery, MemorySnapshot, RelationshipsOf,
    UsageCounts,
};

/// Relationship rows per INSERT: 7 values each stays well under SQLite's 32 766 and
/// PostgreSQL's 65 535 bound parameters.
const RELATIONSHIP_INSERT_ROWS: usize = 1_000;

#[derive(Clone)]
pub struct SqlAnalyticsRepository {
    databases: Databases,
}

impl SqlAnalyticsRepository {
    pub fn new(databases: Databases) -> Self {
        Self { databases }
    }
}

#[async_trait]
impl AnalyticsRepository for SqlAnalyticsRepository {
    async fn record_events(
        &self,
        tenant: &TenantName,
        events: &[AnalyticsEvent],
    ) -> Result<u64, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        let mut seen = std::collections::HashSet::with_capacity(events.len());
        let unique = events.iter().filter(|event| seen.insert(event.event_id));
        let rows = unique.map(|event| analytics_event::ActiveModel {
            event_id: Set(event.event_id),
            event_type: Set(event.event_type.as_str().to_string()),
            user_id: Set(event.user_id),
            memory_id: Set(event.memory_id),
            event_data: Set(event.event_data.clone()),
            timestamp: Set(event.timestamp),
            session_id: Set(event.session_id.clone()),
        });
        let transaction = self.databases.tenant_write_transaction(tenant).await?;
        let inserted = Events::insert_many(rows)
            .on_conflict(
                OnConflict::column(analytics_event::Column::EventId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&transaction)
            .await?;
        transaction.commit().await?;
        Ok(inserted)
    }

    async fn events(
        &self,
        tenant: &TenantName,
        query: &EventQuery,
    ) -> Result<Vec<AnalyticsEvent>, StoreError> {
        use analytics_event::Column;
        let mut condition = Condition::all();
        if let Some(event_type) = query.event_type {
            condition = condition.add(Column::EventType.eq(event_type.as_str()));
        }
        if let Some(user_id) = query.user_id {
            condition = condition.add(Column::UserId.eq(user_id));
        }
        if let Some(memory_id) = query.memory_id {
            condition = condition.add(Column::MemoryId.eq(memory_id));
        }
        if let Some(session_id) = &query.session_id {
            condition = condition.add(Column::SessionId.eq(session_id.as_str()));
        }
        if let Some(since) = query.since {
            condition = condition.add(Column::Timestamp.gte(since));
        }
        if let Some(until) = query.until {
            condition = condition.add(Column::Timestamp.lte(until));
        }
        if let Some(before) = query.before {
            condition = condition.add(Column::EventId.lt(before));
        }
        let transaction = self.databases.tenant_transaction(tenant).await?;
        // Event ids are time-ordered (UUIDv7), so id order is time order and a stable cursor.
        let rows = Events::find()
            .filter(condition)
            .order_by_desc(Column::EventId)
            .limit(query.limit)
            .all(&transaction)
            .await?;
        transaction.commit().await?;
        rows.into_iter().map(to_event).collect()
    }

    async fn usage(
        &self,
        tenant: &TenantName,
        since: DateTime<Utc>,
    ) -> Result<UsageCounts, StoreError> {
        let transaction = self.databases.tenant_transaction(tenant).await?;
        let backend = transaction.get_database_backend();
        let day = match backend {
            DbBackend::Postgres => "to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            _ => "substr(timestamp, 1, 10)",
        };
        let sql = format!(
            "SELECT event_type, {day} AS day, COUNT(*) AS n FROM analytics_events \
             WHERE timestamp >= ? AND event_type IN ('MEMORY_CREATED', 'SEARCH_PERFORMED') \
             GROUP BY event_type, {day} ORDER BY 2"
        );
        let rows = transaction
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                placeholders(backend, &sql),
                [since.into()],
            ))
            .await?;
        let mut days: Vec<DailyUsage> = Vec::new();
        for row in rows {
            let event_type: String = row.try_get("", "event_type")?;
            let day: String = row.try_get("", "day")?;
            let count = u64::try_from(row.try_get::<i64>("", "n")?).unwrap_or(0);
            let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .map_err(|e| StoreError::Corrupt(format!("event day {day:?}: {e}")))?;
            let entry = match days.iter_mut().find(|d| d.day == Some(day)) {
                Some(entry) => entry,
                None => {
                    days.push(DailyUsage {
                        day: Some(day),
                        ..DailyUsage::default()
                    });
                    days.last_mut()
                        .ok_or_else(|| StoreError::Corrupt("no day".into()))?
                }
            };
            match EventType::parse(&event_type) {
                Some(EventType::MemoryCreated) => entry.memories_created += count,
                Some(EventType::SearchPerformed) => entry.searches += count,
                _ => {}
            }
        }
        let categories = transaction
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT category, COUNT(*) AS n FROM memories WHERE is_deleted = false \
                 GROUP BY category ORDER BY 2 DESC, 1",
            ))
            .await?;
        transaction.commit().await?;
        let mut per_category = Vec::new();
        for row in categories {
            let name: String = row.try_get("", "category")?;
            let count = u64::try_from(row.try_get::<i64>("", "n")?).unwrap_or(0);
            let category = Category::parse(&name)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown category {name:?}")))?;
            per_category.push((category, count));
        }
        Ok(UsageCounts {
            days,
            categories: per_category,
        })
    }

    async fn replace_relationships(
        &self,
        tenant: &TenantName,
        found: &[RelationshipsOf],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use relationship::Column;
        if found.is_empty() {
            return Ok(());
        }
        let sources: Vec<Uuid> = found.iter().map(|of| of.source).collect();
        let transaction = self.databases.tenant_write_transaction(tenant).await?;
        Relationships::delete_many()
            .filter(Column::SourceMemoryId.is_in(sources.iter().copied()))
            .exec(&transaction)
            .await?;
        let mentioned: BTreeSet<Uuid> = found
            .iter()
            .flat_map(|of| {
                of.found
                    .iter()
                    .map(|f| f.target_memory_id)
                    .chain([of.source])
            })
            .collect();
        // Only memories that still exist: one may have been erased since it was found.
        let existing: HashSet<Uuid> = Memories::find()
            .select_only()
            .column(memory::Column::MemoryId)
            .filter(memory::Column::MemoryId.is_in(mentioned))
            .into_tuple::<Uuid>()
            .all(&transaction)
            .await?
            .into_iter()
            .collect();
        let rows: Vec<relationship::ActiveModel> = found
            .iter()
            .filter(|of| existing.contains(&of.source))
            .flat_map(|of| {
                of.found
                    .iter()
                    .filter(|f| f.target_memory_id != of.source)
                    .filter(|f| existing.contains(&f.target_memory_id))
                    .map(|f| relationship::ActiveModel {
                        relationship_id: Set(Uuid::now_v7()),
                        source_memory_id: Set(of.source),
                        target_memory_id: Set(f.target_memory_id),
                        relationship_type: Set(f.relationship_type.as_str().to_string()),
                        strength: Set(f.strength.clamp(0.0, 1.0)),
                        context: Set(Some(clip(&f.context, 500))),
                        created_at: Set(now),
                    })
            })
            .collect();
        // Inserted in slices so a large batch stays under the databases' bound-parameter limits.
        for slice in rows.chunks(RELATIONSHIP_INSERT_ROWS) {
            Relationships::insert_many(slice.to_vec())
                .on_conflict(
                    OnConflict::columns([
                        Column::SourceMemoryId,
                        Column::TargetMemoryId,
                        Column::RelationshipType,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn relationships_of(
        &self,
        tenant: &TenantName,
        memory: Uuid,
    ) -> Result<Vec<MemoryRelationship>, StoreError> {
        use relationship::Column;
        let transaction = self.databases.tenant_transaction(tenant).await?;
        let rows = Relationships::find()
            .filter(
                Condition::any()
                    .add(Column::SourceMemoryId.eq(memory))
                    .add(Column::TargetMemoryId.eq(memory)),
            )
            .order_by_desc(Column::Strength)
            .order_by_asc(Column::RelationshipId)
            .all(&transaction)
            .await?;
        transaction.commit().await?;
        rows.into_iter().map(to_relationship).collect()
    }

    async fn relationships_of_type(
        &self,
        tenant: &TenantName,
        relationship_type: RelationshipType,
        limit: u64,
    ) -> Result<Vec<MemoryRelationship>, StoreError> {
        use relationship::Column;
        let transaction = self.databases.tenant_transaction(tenant).await?;
        let rows = Relationships::find()
            .filter(Column::RelationshipType.eq(relationship_type.as_str()))
            .order_by_desc(Column::CreatedAt)
            .limit(limit)
            .all(&transaction)
            .await?;
        transaction.commit().await?;
        rows.into_iter().map(to_relationship).collect()
    }

    async fn save_insights(
        &self,
        tenant: &TenantName,
        insights: &[PredictiveInsight],
    ) -> Result<(), StoreError> {
        if insights.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(insights.len());
        for insight in insights {
            let expires_at = insight
                .expires_at
                .ok_or_else(|| StoreError::Corrupt("an insight must have an expiry".to_string()))?;
            rows.push(insight::ActiveModel {
                insight_id: Set(insight.insight_id),
                insight_type: Set(insight.insight_type.as_str().to_string()),
                content: Set(insight.content.clone()),
                confidence: Set(insight.confidence.clamp(0.0, 1.0)),
                supporting_memories: Set(serde_json::json!(insight.supporting_memories)),
                created_at: Set(insight.created_at),
                expires_at: Set(expires_at),
                action_taken: Set(insight.action_taken),
                user_id: Set(insight.user_id),
            });
        }
        let transaction = self.databases.tenant_write_transaction(tenant).await?;
        Insights::insert_many(rows)
            .exec_without_returning(&transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn insights(
        &self,
        tenant: &TenantName,
        query: &InsightQuery,
    ) -> Result<Vec<PredictiveInsight>, StoreError> {
        use insight::Column;
        let mut select = Insights::find()
            .filter(Column::ExpiresAt.gt(query.now))
            .filter(Column::Confidence.gte(query.min_confidence));
        if let Some(insight_type) = query.insight_type {
            select = select.filter(Column::InsightType.eq(insight_type.as_str()));
        }
        let transaction = self.databases.tenant_transaction(tenant).await?;
        let rows = select
            .order_by_desc(Column::Confidence)
            .order_by_desc(Column::CreatedAt)
            .order_by_asc(Column::InsightId)
            .limit(query.limit)
            .all(&transaction)
            .await?;
        transaction.commit().await?;
        rows.into_iter().map(to_insight).collect()
    }

    async fn set_action_taken(
        &self,
        tenant: &TenantName,
        insight_id: Uuid,
        taken: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<PredictiveInsight>, StoreError> {
        use insight::Column;
        let transaction = self.databases.tenant_write_transaction(tenant).await?;
        let updated = Insights::update_many()
            .col_expr(Column::ActionTaken, taken.into())
            .filter(Column::InsightId.eq(insight_id))
            .filter(Column::ExpiresAt.gt(now))
            .exec(&transaction)
            .await?;
        let row = if updated.rows_affected > 0 {
            Insights::find_by_id(insight_id).one(&transaction).await?
        } else {
            None
        };
        transaction.commit().await?;
        row.map(to_insight).transpose()
    }

    async fn prune_insights(
        &self,
        tenant: &TenantName,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let transaction = self.databases.tenant_write_transaction(tenant).await?;
        let deleted = Insights::delete_many()
            .filter(insight::Column::ExpiresAt.lte(now))
            .exec(&transaction)
            .await?;
        transaction.commit().await?;
        Ok(deleted.rows_affected)
    }

    async fn history(
        &self,
        tenant: &TenantName,
        memory: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        use history::Column;
        let transaction = self.databases.tenant_transaction(tenant).await?;
        // Entry ids are UUIDv7, made when the change is recorded: their order is the history's.
        let mut select = History::find().filter(Column::MemoryId.eq(memory));
        if let Some(after) = after {
            select = select.filter(Column::HistoryId.gt(after));
        }
        let rows = select
            .order_by_asc(Column::HistoryId)
            .limit(limit)
            .all(&transaction)
            .await?;
        transaction.commit().await?;
        rows.into_iter().map(to_history).collect()
    }

    async fn recent_memories(
        &self,
        tenant: &TenantName,
        since: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<MemorySnapshot>, StoreError> {
        use memory::Column;
        let transaction = self.databases.tenant_transaction(tenant).await?;
        let rows = Memories::find()
            .filter(Column::IsDeleted.eq(false))
            .filter(Column::CreatedAt.gte(since))
            .order_by_desc(Column::CreatedAt)
            .limit(limit)
            .all(&transaction)
            .await?;
        transaction.commit().await?;
        snapshots(rows)
    }

    async fn unread_memories(
        &self,
        tenant: &TenantName,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<MemorySnapshot>, StoreError> {
        use memory::Column;
        let transaction = self.databases.tenant_transaction(tenant).await?;
        let rows = Memories::find()
            .filter(Column::IsDeleted.eq(false))
            .filter(Column::AccessCount.eq(0))
            .filter(Column::CreatedAt.lt(before))
            .order_by_asc(Column::CreatedAt)
            .limit(limit)
            .all(&transaction)
            .await?;
        transaction.commit().await?;
        snapshots(rows)
    }
}

/// Rows with their embeddings; rows without one (deleted) are skipped.
fn snapshots(rows: Vec<memory::Model>) -> Result<Vec<MemorySnapshot>, StoreError> {
    let mut snapshots = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(bytes) = row.embedding.clone() else {
            continue;
        };
        snapshots.push(MemorySnapshot {
            embedding: decode_embedding(&bytes)?,
            memory: to_memory(row)?,
        });
    }
    Ok(snapshots)
}

fn to_event(row: analytics_event::Model) -> Result<AnalyticsEvent, StoreError> {
    Ok(AnalyticsEvent {
        event_type: EventType::parse(&row.event_type)
            .ok_or_else(|| StoreError::Corrupt(format!("event type {:?}", row.event_type)))?,
        event_id: row.event_id,
        user_id: row.user_id,
        memory_id: row.memory_id,
        event_data: row.event_data,
        timestamp: row.timestamp,
        session_id: row.session_id,
    })
}

fn to_relationship(row: relationship::Model) -> Result<MemoryRelationship, StoreError> {
    Ok(MemoryRelationship {
        relationship_type: RelationshipType::parse(&row.relationship_type).ok_or_else(|| {
            StoreError::Corrupt(format!("relationship type {:?}", row.relationship_type))
        })?,
        relationship_id: row.relationship_id,
        source_memory_id: row.source_memory_id,
        target_memory_id: row.target_memory_id,
        strength: row.strength,
        context: row.context,
        created_at: row.created_at,
    })
}

fn to_insight(row: insight::Model) -> Result<PredictiveInsight, StoreError> {
    let supporting_memories: Vec<Uuid> = serde_json::from_value(row.supporting_memories)
        .map_err(|e| StoreError::Corrupt(format!("supporting memories: {e}")))?;
    Ok(PredictiveInsight {
        insight_type: InsightType::parse(&row.insight_type)
            .ok_or_else(|| StoreError::Corrupt(format!("insight type {:?}", row.insight_type)))?,
        insight_id: row.insight_id,
        content: row.content,
        confidence: row.confidence,
        supporting_memories,
        created_at: row.created_at,
        expires_at: Some(row.expires_at),
        action_taken: row.action_taken,
        user_id: row.user_id,
    })
}

fn to_history(row: history::Model) -> Result<HistoryEntry, StoreError> {
    Ok(HistoryEntry {
        action: HistoryAction::parse(&row.action)
            .ok_or_else(|| StoreError::Corrupt(format!("history action {:?}", row.action)))?,
        history_id: row.history_id,
        memory_id: row.memory_id,
        old_value: row.old_value,
        new_value: row.new_value,
        changed_by: row.changed_by,
        changed_at: row.changed_at,
    })
}
