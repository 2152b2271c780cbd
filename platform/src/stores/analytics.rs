//! What analytics keep per tenant: events, relationships, insights and memory history.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use memoryc_crds::layout::TenantName;
use uuid::Uuid;

use super::StoreError;
use crate::domain::analytics::{
    AnalyticsEvent, EventType, HistoryEntry, InsightType, MemoryRelationship, PredictiveInsight,
    RelationshipType,
};
use crate::domain::{Category, Memory};

/// Which events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub event_type: Option<EventType>,
    pub user_id: Option<Uuid>,
    pub memory_id: Option<Uuid>,
    pub session_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only events older than this one (the previous page's last `event_id`).
    pub before: Option<Uuid>,
    pub limit: u64,
}

/// Which insights to list: unexpired at `now`, at least `min_confidence`.
#[derive(Debug, Clone)]
pub struct InsightQuery {
    pub insight_type: Option<InsightType>,
    pub min_confidence: f64,
    pub now: DateTime<Utc>,
    pub limit: u64,
}

/// A relationship as found, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundRelationship {
    pub target_memory_id: Uuid,
    pub relationship_type: RelationshipType,
    pub strength: f64,
    pub context: String,
}

/// Everything found for one memory: its relationships replace those stored for it.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationshipsOf {
    pub source: Uuid,
    pub found: Vec<FoundRelationship>,
}

/// Counts for one day.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DailyUsage {
    pub day: Option<NaiveDate>,
    pub memories_created: u64,
    pub searches: u64,
}

/// Usage counts of a tenant.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UsageCounts {
    /// One entry per day that had activity, oldest first.
    pub days: Vec<DailyUsage>,
    /// Live memories per category, largest first.
    pub categories: Vec<(Category, u64)>,
}

/// A live memory with its stored embedding, for analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct MemorySnapshot {
    pub memory: Memory,
    pub embedding: Vec<f32>,
}

/// A tenant's analytics tables. Every call names the tenant explicitly.
#[async_trait]
pub trait AnalyticsRepository: Send + Sync + 'static {
    /// Stores events; an event already stored (same `event_id`) is skipped, so a redelivered
    /// event counts once. Returns how many were new. Events of memories that no longer exist
    /// are stored too (they describe the past).
    async fn record_events(
        &self,
        tenant: &TenantName,
        events: &[AnalyticsEvent],
    ) -> Result<u64, StoreError>;

    async fn events(
        &self,
        tenant: &TenantName,
        query: &EventQuery,
    ) -> Result<Vec<AnalyticsEvent>, StoreError>;

    /// Memories created and searches made per day since `since`, and live memories per category.
    async fn usage(
        &self,
        tenant: &TenantName,
        since: DateTime<Utc>,
    ) -> Result<UsageCounts, StoreError>;

    /// Replaces, for each source memory, the relationships stored for it with those found, in
    /// one transaction (targets or sources that no longer exist are skipped).
    async fn replace_relationships(
        &self,
        tenant: &TenantName,
        found: &[RelationshipsOf],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Relationships from or to `memory`, strongest first.
    async fn relationships_of(
        &self,
        tenant: &TenantName,
        memory: Uuid,
    ) -> Result<Vec<MemoryRelationship>, StoreError>;

    /// The newest relationships of one type.
    async fn relationships_of_type(
        &self,
        tenant: &TenantName,
        relationship_type: RelationshipType,
        limit: u64,
    ) -> Result<Vec<MemoryRelationship>, StoreError>;

    async fn save_insights(
        &self,
        tenant: &TenantName,
        insights: &[PredictiveInsight],
    ) -> Result<(), StoreError>;

    async fn insights(
        &self,
        tenant: &TenantName,
        query: &InsightQuery,
    ) -> Result<Vec<PredictiveInsight>, StoreError>;

    /// Marks an unexpired insight acted upon (or not); `None` when there is no such insight.
    async fn set_action_taken(
        &self,
        tenant: &TenantName,
        insight: Uuid,
        taken: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<PredictiveInsight>, StoreError>;

    /// Deletes insights expired at `now`; returns how many.
    async fn prune_insights(
        &self,
        tenant: &TenantName,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Up to `limit` entries of a memory's history after the entry `after` (from the first
    /// when `None`), oldest first.
    async fn history(
        &self,
        tenant: &TenantName,
        memory: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Live memories created since `since` with their embeddings, newest first.
    async fn recent_memories(
        &self,
        tenant: &TenantName,
        since: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<MemorySnapshot>, StoreError>;

    /// Live memories never read and created before `before`, oldest first.
    async fn unread_memories(
        &self,
        tenant: &TenantName,
        before: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<MemorySnapshot>, StoreError>;
}
