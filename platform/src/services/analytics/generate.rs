//! One analytics run of a tenant: read recent memories, searches and contradictions, turn
//! them into insights with [`crate::analysis`], keep those not already known.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::analysis::{
    InsightConfig, InsightDraft, MemoryView, SearchRecord, find_patterns, pattern_insights,
    recommendations, risks,
};
use crate::domain::analytics::{AnalyticsEvent, PredictiveInsight};
use crate::stores::analytics::MemorySnapshot;

/// Memories in one PATTERN at least.
pub const MIN_PATTERN_SIZE: usize = 3;
/// Similarity to a cluster from which a memory joins it.
pub const PATTERN_SIMILARITY: f32 = 0.55;

/// Every insight the inputs support, before de-duplication. Patterns and risks come from the
/// recent memories; recommendations also consider old memories nobody ever read.
pub fn drafts(
    recent: &[MemorySnapshot],
    unread: &[MemorySnapshot],
    searches: &[SearchRecord],
    contradictions: &[(Uuid, Uuid, String)],
    now: DateTime<Utc>,
    config: &InsightConfig,
) -> Vec<InsightDraft> {
    let views = views(recent);
    let clusters = find_patterns(&views, MIN_PATTERN_SIZE, PATTERN_SIMILARITY);
    let mut drafts = pattern_insights(&clusters);
    let mut with_unread = views.clone();
    for view in self::views(unread) {
        if !with_unread.iter().any(|v| v.memory_id == view.memory_id) {
            with_unread.push(view);
        }
    }
    drafts.extend(recommendations(&with_unread, searches, now, config));
    drafts.extend(risks(&views, contradictions, now, config));
    drafts
}

fn views(snapshots: &[MemorySnapshot]) -> Vec<MemoryView<'_>> {
    snapshots
        .iter()
        .map(|s| MemoryView {
            memory_id: s.memory.memory_id,
            user_id: s.memory.user_id,
            content: &s.memory.content,
            category: s.memory.category,
            confidence_score: s.memory.confidence_score,
            created_at: s.memory.created_at,
            access_count: s.memory.access_count,
            embedding: &s.embedding,
        })
        .collect()
}

/// A search as the recommendation rules read it, from its SEARCH_PERFORMED event.
pub fn search_record(event: &AnalyticsEvent) -> Option<SearchRecord> {
    let data = &event.event_data;
    let query = data.get("query")?.as_str()?.to_string();
    Some(SearchRecord {
        query,
        result_count: data
            .get("result_count")
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0),
        top_score: data
            .get("top_score")
            .and_then(serde_json::Value::as_f64)
            .map(|s| s as f32),
        at: event.timestamp,
    })
}

/// Whether an unexpired insight already says what `draft` says.
pub fn already_known(draft: &InsightDraft, known: &[PredictiveInsight]) -> bool {
    known.iter().any(|insight| {
        insight.insight_type == draft.insight_type
            && insight.content == draft.content
            && sorted(&insight.supporting_memories) == sorted(&draft.supporting_memories)
    })
}

fn sorted(ids: &[Uuid]) -> Vec<Uuid> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids
}

/// The insight a draft becomes, valid from `now` for `ttl`.
pub fn insight(
    draft: InsightDraft,
    now: DateTime<Utc>,
    ttl: chrono::Duration,
) -> PredictiveInsight {
    PredictiveInsight {
        insight_id: Uuid::now_v7(),
        insight_type: draft.insight_type,
        content: draft.content,
        confidence: draft.confidence.clamp(0.0, 1.0),
        supporting_memories: sorted(&draft.supporting_memories),
        created_at: now,
        expires_at: Some(now + ttl),
        action_taken: false,
        user_id: draft.user_id,
    }
}
