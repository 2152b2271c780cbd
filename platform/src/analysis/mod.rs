//! What the platform learns from memories on its own: references between them, contradictions,
//! relationships, recurring topics and the insights drawn from them. Plain functions over plain
//! inputs; the analytics jobs load the inputs and store the results.

pub mod conflicts;
pub mod insights;
pub mod patterns;
pub mod polarity;
pub mod references;
pub mod relationships;
pub mod text;

#[cfg(test)]
mod model_tests;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::Category;

pub use conflicts::contradiction;
pub use insights::{InsightConfig, InsightDraft, pattern_insights, recommendations, risks};
pub use patterns::{PatternCluster, find_patterns};
pub use references::{Reference, extract_references};
pub use relationships::{RelationshipFinding, RelationshipThresholds, classify};

/// A memory as the analysis reads it, borrowed from wherever the job loaded it.
#[derive(Debug, Clone, Copy)]
pub struct MemoryView<'a> {
    pub memory_id: Uuid,
    pub user_id: Uuid,
    pub content: &'a str,
    pub category: Category,
    pub confidence_score: f64,
    pub created_at: DateTime<Utc>,
    pub access_count: i64,
    /// L2-normalised, 384 dimensions for the default model.
    pub embedding: &'a [f32],
}

/// One search a user ran, from the SEARCH_PERFORMED events.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRecord {
    pub query: String,
    pub result_count: usize,
    /// Similarity of the best result; `None` for exact searches or when nothing was found.
    pub top_score: Option<f32>,
    pub at: DateTime<Utc>,
}

/// Cosine similarity of two L2-normalised vectors (their dot product); 0 when the lengths
/// differ, so a vector from another model never looks similar.
pub fn similarity(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
