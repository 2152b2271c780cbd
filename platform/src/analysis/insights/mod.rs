//! Insights drawn from memories, searches and relationships: PATTERN (recurring topics),
//! RECOMMENDATION (what to consolidate, review or write down) and RISK_ASSESSMENT (what may be
//! wrong or sensitive). Each draft carries a stable key so a rerun can skip what it already
//! stored.

mod recommendations;
mod risks;

use std::collections::BTreeSet;

use chrono::Duration;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::MemoryView;
use super::patterns::PatternCluster;
use crate::domain::analytics::InsightType;
use crate::domain::pii;

pub use recommendations::{normalise_query, recommendations};
pub use risks::risks;

/// An insight ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct InsightDraft {
    pub insight_type: InsightType,
    /// What to tell the user. Never holds personal data or secrets found in memories.
    pub content: String,
    /// 0..1.
    pub confidence: f64,
    /// Sorted, without repeats.
    pub supporting_memories: Vec<Uuid>,
    /// `TYPE:kind:digest`, the digest over the sorted supporting ids (or the query of a missed
    /// search): the same finding gets the same key on every run.
    pub key: String,
    /// The one user every supporting memory belongs to, if there is one.
    pub user_id: Option<Uuid>,
}

impl InsightDraft {
    /// A draft whose key is made from `kind` and the sorted supporting ids.
    fn about_memories(
        insight_type: InsightType,
        kind: &str,
        content: String,
        confidence: f64,
        supporting: impl IntoIterator<Item = Uuid>,
        user_id: Option<Uuid>,
    ) -> Self {
        let supporting_memories: Vec<Uuid> = supporting
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let parts: Vec<String> = supporting_memories.iter().map(Uuid::to_string).collect();
        Self {
            key: fingerprint(insight_type, kind, &parts),
            insight_type,
            content,
            confidence: clamp_unit(confidence),
            supporting_memories,
            user_id,
        }
    }
}

/// Thresholds of the insight generators.
#[derive(Debug, Clone, PartialEq)]
pub struct InsightConfig {
    /// Memories at or above this similarity say the same thing (RECOMMENDATION: consolidate).
    pub duplicate_similarity: f32,
    /// Memories older than this and never read are stale (RECOMMENDATION: review).
    pub stale_after: Duration,
    /// Times a query must miss before it is worth a memory (RECOMMENDATION: write it down).
    pub missed_min_count: usize,
    /// A search whose best result scores below this missed, as does one with no results.
    pub missed_score: f32,
    /// Categorisation confidence below this is doubtful (RISK_ASSESSMENT).
    pub low_confidence: f64,
    /// Doubtful memories in one category before it is reported.
    pub low_confidence_min_count: usize,
    /// Confidence given to a reported contradiction.
    pub contradiction_confidence: f64,
}

impl Default for InsightConfig {
    fn default() -> Self {
        Self {
            duplicate_similarity: 0.95,
            stale_after: Duration::days(90),
            missed_min_count: 3,
            missed_score: 0.4,
            low_confidence: 0.5,
            low_confidence_min_count: 2,
            contradiction_confidence: 0.8,
        }
    }
}

/// One PATTERN insight per cluster. Confidence is the cluster's cohesion scaled by n/(n+1):
/// two memories make a weaker pattern than ten equally close ones.
pub fn pattern_insights(clusters: &[PatternCluster]) -> Vec<InsightDraft> {
    clusters
        .iter()
        .filter(|c| !c.members.is_empty())
        .map(|cluster| {
            let size = cluster.members.len();
            let content = if cluster.topic.is_empty() {
                format!("{size} closely related memories")
            } else {
                format!("{size} memories about {}", cluster.topic)
            };
            let confidence = cluster.cohesion * size as f64 / (size as f64 + 1.0);
            InsightDraft::about_memories(
                InsightType::Pattern,
                "cluster",
                content,
                confidence,
                cluster.members.iter().copied(),
                None,
            )
        })
        .collect()
}

/// `TYPE:kind:` and the first 128 bits of a SHA-256 over the parts, one per line. A digest
/// keeps keys short for large clusters and keeps search queries out of the key.
fn fingerprint(insight_type: InsightType, kind: &str, parts: &[String]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{insight_type}:{kind}:{hex}")
}

/// The one user all `memories` belong to, if they share one.
fn single_owner<'a>(memories: impl IntoIterator<Item = &'a MemoryView<'a>>) -> Option<Uuid> {
    let mut owners = memories.into_iter().map(|m| m.user_id);
    let first = owners.next()?;
    owners.all(|o| o == first).then_some(first)
}

/// `text` with personal data and secrets replaced by markers such as `[EMAIL]`.
fn masked(text: &str) -> String {
    pii::mask(text, &pii::detect(text))
}

fn clamp_unit(value: f64) -> f64 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
pub(super) mod fixtures {
    use chrono::{DateTime, TimeZone, Utc};
    use uuid::Uuid;

    use crate::analysis::MemoryView;
    use crate::domain::Category;

    pub fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0)
            .single()
            .unwrap_or_default()
    }

    pub fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// A memory `days_old` days before [`now`].
    pub fn memory<'a>(
        n: u128,
        days_old: i64,
        content: &'a str,
        embedding: &'a [f32],
    ) -> MemoryView<'a> {
        MemoryView {
            memory_id: id(n),
            user_id: id(100),
            content,
            category: Category::Technical,
            confidence_score: 0.9,
            created_at: now() - chrono::Duration::days(days_old),
            access_count: 1,
            embedding,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::id;
    use super::*;

    fn cluster(members: &[u128], topic: &str, cohesion: f64) -> PatternCluster {
        PatternCluster {
            members: members.iter().map(|&n| id(n)).collect(),
            topic: topic.to_string(),
            cohesion,
        }
    }

    #[test]
    fn patterns_become_insights_with_size_weighted_confidence() {
        let drafts = pattern_insights(&[
            cluster(&[5, 3, 1, 2, 4], "deploy pipeline rollback", 0.9),
            cluster(&[7, 6], "", 0.9),
        ]);
        assert_eq!(drafts.len(), 2);
        assert_eq!(drafts[0].insight_type, InsightType::Pattern);
        assert_eq!(
            drafts[0].content,
            "5 memories about deploy pipeline rollback"
        );
        assert_eq!(
            drafts[0].supporting_memories,
            vec![id(1), id(2), id(3), id(4), id(5)]
        );
        assert!((drafts[0].confidence - 0.75).abs() < 1e-9);
        assert_eq!(drafts[1].content, "2 closely related memories");
        assert!((drafts[1].confidence - 0.6).abs() < 1e-9);
        assert!(drafts[0].confidence > drafts[1].confidence);
        assert!(pattern_insights(&[]).is_empty());
    }

    #[test]
    fn keys_depend_on_type_kind_and_members_not_their_order() {
        let a = pattern_insights(&[cluster(&[1, 2, 3], "x", 0.8)]);
        let b = pattern_insights(&[cluster(&[3, 1, 2], "y", 0.5)]);
        let c = pattern_insights(&[cluster(&[1, 2, 4], "x", 0.8)]);
        assert_eq!(a[0].key, b[0].key);
        assert_ne!(a[0].key, c[0].key);
        assert!(a[0].key.starts_with("PATTERN:cluster:"));
        assert_eq!(a[0].key.len(), "PATTERN:cluster:".len() + 32);
        assert_ne!(
            fingerprint(InsightType::Pattern, "a", &["1".into()]),
            fingerprint(InsightType::RiskAssessment, "a", &["1".into()])
        );
    }
}
