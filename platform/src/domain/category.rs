//! The four memory categories of the original design.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    Technical,
    Workflow,
    Preference,
    Project,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Technical,
        Category::Workflow,
        Category::Preference,
        Category::Project,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Technical => "TECHNICAL",
            Category::Workflow => "WORKFLOW",
            Category::Preference => "PREFERENCE",
            Category::Project => "PROJECT",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Category::ALL.into_iter().find(|c| c.as_str() == value)
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_category_through_its_wire_name() {
        for category in Category::ALL {
            assert_eq!(Category::parse(category.as_str()), Some(category));
            let json = serde_json::to_string(&category).expect("serialise");
            assert_eq!(json, format!("\"{}\"", category.as_str()));
        }
        assert_eq!(Category::parse("technical"), None);
    }
}
