//! GitHub's GraphQL answers to the operations in `platform/graphql/github/project_items.graphql`,
//! as serde reads them. Union members are picked by `__typename`; members the queries do not
//! select (other field value kinds, redacted content) read as `Other`.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// A GraphQL response: `data`, `errors`, or both.
#[derive(Debug, Deserialize)]
pub struct Response<T> {
    pub data: Option<T>,
    #[serde(default)]
    pub errors: Vec<QueryError>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct QueryError {
    pub message: String,
    /// `NOT_FOUND`, `FORBIDDEN`, `RATE_LIMITED`, …
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `graphql_rate_limit` in some rate-limit answers.
    pub code: Option<String>,
}

impl QueryError {
    pub fn is_rate_limit(&self) -> bool {
        matches!(self.kind.as_deref(), Some("RATE_LIMITED" | "RATE_LIMIT"))
            || self.code.as_deref() == Some("graphql_rate_limit")
    }

    pub fn is_not_found(&self) -> bool {
        self.kind.as_deref() == Some("NOT_FOUND")
    }
}

/// What a query cost and what is left of the hour's points.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    pub cost: i64,
    pub remaining: i64,
    pub reset_at: DateTime<Utc>,
    pub limit: i64,
}

/// `ProjectItems`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectItemsData {
    pub repository_owner: Option<ProjectOwner>,
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Deserialize)]
pub struct ProjectOwner {
    #[serde(rename = "projectV2")]
    pub project: Option<ProjectPage>,
}

#[derive(Debug, Deserialize)]
pub struct ProjectPage {
    pub id: String,
    pub title: String,
    pub items: ItemConnection,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemConnection {
    pub page_info: PageInfo,
    #[serde(default)]
    pub nodes: Vec<Option<ProjectItem>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

/// One item of a board.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectItem {
    pub id: String,
    /// `ISSUE`, `PULL_REQUEST`, `DRAFT_ISSUE` or `REDACTED`.
    #[serde(rename = "type")]
    pub item_type: String,
    pub is_archived: bool,
    pub updated_at: DateTime<Utc>,
    pub content: Option<ItemContent>,
    pub field_values: FieldValues,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "__typename")]
pub enum ItemContent {
    Issue(Ticket),
    PullRequest(Ticket),
    DraftIssue(Draft),
    #[serde(other)]
    Other,
}

/// An issue or a pull request.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub id: String,
    pub number: u64,
    pub title: String,
    #[serde(default)]
    pub body: String,
    pub url: String,
    #[serde(alias = "issueState", alias = "pullRequestState")]
    pub state: String,
    pub repository: Repository,
    pub labels: Option<Labels>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    pub name_with_owner: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Labels {
    #[serde(default)]
    pub nodes: Vec<Option<Label>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Draft {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub body: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FieldValues {
    #[serde(default)]
    pub nodes: Vec<Option<FieldValue>>,
}

/// A field's value on an item; `field.name` says which field.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "__typename")]
pub enum FieldValue {
    #[serde(rename = "ProjectV2ItemFieldSingleSelectValue")]
    SingleSelect {
        name: Option<String>,
        field: FieldName,
    },
    #[serde(rename = "ProjectV2ItemFieldIterationValue")]
    Iteration { title: String, field: FieldName },
    #[serde(rename = "ProjectV2ItemFieldTextValue")]
    Text {
        text: Option<String>,
        field: FieldName,
    },
    #[serde(rename = "ProjectV2ItemFieldDateValue")]
    Date {
        date: Option<String>,
        field: FieldName,
    },
    #[serde(rename = "ProjectV2ItemFieldNumberValue")]
    Number {
        number: Option<f64>,
        field: FieldName,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FieldName {
    pub name: Option<String>,
}

impl FieldValue {
    /// The field's name and its value as text; `None` for kinds not read or empty values.
    pub fn named_text(&self) -> Option<(&str, String)> {
        let (field, value) = match self {
            FieldValue::SingleSelect { name, field } => (field, name.clone()?),
            FieldValue::Iteration { title, field } => (field, title.clone()),
            FieldValue::Text { text, field } => (field, text.clone()?),
            FieldValue::Date { date, field } => (field, date.clone()?),
            FieldValue::Number { number, field } => (field, (*number)?.to_string()),
            FieldValue::Other => return None,
        };
        Some((field.name.as_deref()?, value))
    }
}

/// `ProjectItem`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectItemData {
    pub node: Option<ItemNode>,
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "__typename")]
pub enum ItemNode {
    #[serde(rename = "ProjectV2Item")]
    Item(Box<ItemOnProject>),
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub struct ItemOnProject {
    #[serde(flatten)]
    pub item: ProjectItem,
    pub project: ProjectId,
}

#[derive(Debug, Deserialize)]
pub struct ProjectId {
    pub id: String,
}

/// `ViewerAndProject`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewerAndProjectData {
    pub viewer: Viewer,
    pub repository_owner: Option<TitledOwner>,
}

#[derive(Debug, Deserialize)]
pub struct Viewer {
    pub login: String,
}

#[derive(Debug, Deserialize)]
pub struct TitledOwner {
    #[serde(rename = "projectV2")]
    pub project: Option<ProjectTitle>,
}

#[derive(Debug, Deserialize)]
pub struct ProjectTitle {
    pub title: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/github/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
    }

    #[test]
    fn a_page_of_items_reads_with_every_kind_of_content_and_field() {
        let page: Response<ProjectItemsData> =
            serde_json::from_str(&fixture("project_items_page1.json")).expect("page 1 reads");
        let data = page.data.expect("data");
        let project = data
            .repository_owner
            .and_then(|owner| owner.project)
            .expect("project");
        assert_eq!(project.id, "PVT_kwDOBdk1c84AtQ9x");
        assert!(project.items.page_info.has_next_page);
        assert_eq!(project.items.page_info.end_cursor.as_deref(), Some("Mw"));
        let items: Vec<ProjectItem> = project.items.nodes.into_iter().flatten().collect();
        assert_eq!(items.len(), 3);
        let ItemContent::Issue(issue) = items[0].content.clone().expect("content") else {
            panic!("the first item is an issue");
        };
        assert_eq!(
            (issue.number, issue.state.as_str()),
            (412, "OPEN"),
            "issueState reads as the state"
        );
        let fields: Vec<(String, String)> = items[0]
            .field_values
            .nodes
            .iter()
            .flatten()
            .filter_map(|value| value.named_text())
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        assert!(fields.contains(&("Status".to_string(), "In Progress".to_string())));
        assert!(fields.contains(&("Iteration".to_string(), "Sprint 14".to_string())));
        assert!(matches!(
            items[1].content,
            Some(ItemContent::PullRequest(ref pr)) if pr.state == "MERGED"
        ));
        assert!(matches!(items[2].content, Some(ItemContent::DraftIssue(_))));
        assert!(data.rate_limit.is_some());
    }

    #[test]
    fn one_item_reads_with_its_project_and_a_missing_one_as_an_error() {
        let found: Response<ProjectItemData> =
            serde_json::from_str(&fixture("project_item_node.json")).expect("node reads");
        let Some(ItemNode::Item(item)) = found.data.and_then(|data| data.node) else {
            panic!("a project item");
        };
        assert_eq!(item.project.id, "PVT_kwDOBdk1c84AtQ9x");
        assert_eq!(item.item.id, "PVTI_lADOBdk1c84AtQ9xzgVq3aE");
        let missing: Response<ProjectItemData> =
            serde_json::from_str(&fixture("project_item_missing.json")).expect("missing reads");
        assert!(missing.data.is_some_and(|data| data.node.is_none()));
        assert!(missing.errors.iter().any(QueryError::is_not_found));
        let limited: Response<ProjectItemsData> =
            serde_json::from_str(&fixture("rate_limit_exhausted.json")).expect("limit reads");
        assert!(limited.data.is_none());
        assert!(limited.errors.iter().any(QueryError::is_rate_limit));
    }
}
