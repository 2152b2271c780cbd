//! The analytics vocabulary of the original design: events, relationships, insights and the
//! history of a memory. Wire names are fixed; other tools read them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Declares a wire enum: SCREAMING_SNAKE_CASE names, `as_str`, `parse`, `ALL` and `Display`.
/// The wire name given for each variant must be its SCREAMING_SNAKE_CASE form (a test checks
/// that serde and `as_str` agree).
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            pub fn parse(value: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == value)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// What happened, as recorded in `analytics_events.event_type`.
    EventType {
        MemoryCreated => "MEMORY_CREATED",
        MemoryUpdated => "MEMORY_UPDATED",
        MemoryDeleted => "MEMORY_DELETED",
        MemoryAccessed => "MEMORY_ACCESSED",
        SearchPerformed => "SEARCH_PERFORMED",
        PatternDetected => "PATTERN_DETECTED",
        InsightGenerated => "INSIGHT_GENERATED",
    }
);

wire_enum!(
    /// How two memories relate (`memory_relationships.relationship_type`).
    RelationshipType {
        Similar => "SIMILAR",
        Contradicts => "CONTRADICTS",
        BuildsOn => "BUILDS_ON",
        References => "REFERENCES",
    }
);

wire_enum!(
    /// Kind of generated insight (`predictive_insights.insight_type`).
    InsightType {
        Pattern => "PATTERN",
        Recommendation => "RECOMMENDATION",
        RiskAssessment => "RISK_ASSESSMENT",
    }
);

wire_enum!(
    /// What a history entry records.
    HistoryAction {
        Created => "CREATED",
        Updated => "UPDATED",
        Deleted => "DELETED",
    }
);

/// One recorded event. `event_id` makes recording idempotent: the same event delivered twice
/// is stored once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnalyticsEvent {
    pub event_id: Uuid,
    pub event_type: EventType,
    pub user_id: Option<Uuid>,
    pub memory_id: Option<Uuid>,
    #[schema(value_type = Object)]
    pub event_data: serde_json::Value,
    pub timestamp: DateTime<Utc>,
    pub session_id: Option<String>,
}

/// A directed relationship from `source_memory_id` to `target_memory_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MemoryRelationship {
    pub relationship_id: Uuid,
    pub source_memory_id: Uuid,
    pub target_memory_id: Uuid,
    pub relationship_type: RelationshipType,
    /// 0..1; for SIMILAR the cosine similarity.
    pub strength: f64,
    /// Why the platform thinks so, in a few words.
    pub context: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A generated insight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PredictiveInsight {
    pub insight_id: Uuid,
    pub insight_type: InsightType,
    pub content: String,
    /// 0..1.
    pub confidence: f64,
    pub supporting_memories: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub action_taken: bool,
    pub user_id: Option<Uuid>,
}

/// One change of a memory: who did what, with the values before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    pub history_id: Uuid,
    pub memory_id: Uuid,
    pub action: HistoryAction,
    /// The fields that changed, as they were (null on create).
    #[schema(value_type = Object)]
    pub old_value: Option<serde_json::Value>,
    /// The fields that changed, as they became (null on delete).
    #[schema(value_type = Object)]
    pub new_value: Option<serde_json::Value>,
    /// The user who made the change.
    pub changed_by: Uuid,
    pub changed_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for value in EventType::ALL {
            assert_eq!(EventType::parse(value.as_str()), Some(*value));
            let json = serde_json::to_string(value).expect("serialise");
            assert_eq!(json, format!("\"{value}\""));
        }
        for value in RelationshipType::ALL {
            assert_eq!(RelationshipType::parse(value.as_str()), Some(*value));
            let json = serde_json::to_string(value).expect("serialise");
            assert_eq!(json, format!("\"{value}\""));
        }
        for value in InsightType::ALL {
            assert_eq!(InsightType::parse(value.as_str()), Some(*value));
            let json = serde_json::to_string(value).expect("serialise");
            assert_eq!(json, format!("\"{value}\""));
        }
        for value in HistoryAction::ALL {
            let json = serde_json::to_string(value).expect("serialise");
            assert_eq!(json, format!("\"{value}\""));
        }
        assert_eq!(EventType::parse("memory_created"), None);
        assert_eq!(EventType::ALL.len(), 7);
    }
}
