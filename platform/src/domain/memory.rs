//! A memory as stored and returned, and the inputs that create, change and find memories.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::Category;

/// A stored memory as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Memory {
    pub memory_id: Uuid,
    pub content: String,
    pub category: Category,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// How sure the platform is of the category, 0..1 (1 when the caller set it).
    pub confidence_score: f64,
    pub access_count: i64,
    pub user_id: Uuid,
    pub is_deleted: bool,
}

/// A memory about to be written, already validated and embedded.
#[derive(Debug, Clone)]
pub struct NewMemory {
    pub memory_id: Uuid,
    pub content: String,
    pub category: Category,
    pub confidence_score: f64,
    pub metadata: serde_json::Value,
    pub embedding: Vec<f32>,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// A validated change to a memory. `embedding` is set whenever `content` is.
#[derive(Debug, Clone, Default)]
pub struct MemoryPatch {
    pub content: Option<String>,
    pub embedding: Option<Vec<f32>>,
    pub category: Option<(Category, f64)>,
    pub metadata: Option<serde_json::Value>,
}

/// Filters that narrow a listing or a search. All of them combine with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryFilter {
    pub category: Option<Category>,
    pub user_id: Option<Uuid>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Top-level metadata key that must equal the given JSON value.
    pub metadata: Option<(String, serde_json::Value)>,
}

impl MemoryFilter {
    /// Whether a memory passes every filter. Used to post-filter vector candidates.
    pub fn matches(&self, memory: &Memory) -> bool {
        if memory.is_deleted {
            return false;
        }
        if self.category.is_some_and(|c| c != memory.category) {
            return false;
        }
        if self.user_id.is_some_and(|u| u != memory.user_id) {
            return false;
        }
        if self.created_after.is_some_and(|t| memory.created_at < t) {
            return false;
        }
        if self.created_before.is_some_and(|t| memory.created_at > t) {
            return false;
        }
        if let Some((key, value)) = &self.metadata
            && memory.metadata.get(key) != Some(value)
        {
            return false;
        }
        true
    }

    /// True when some filter cannot be pushed down to the vector store.
    pub fn needs_post_filter(&self) -> bool {
        self.created_after.is_some() || self.created_before.is_some() || self.metadata.is_some()
    }
}
