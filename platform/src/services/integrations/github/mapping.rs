//! How a board item reads as a memory: its text (title, where it lives, its state and status,
//! its URL in the spelling reference discovery links by, then its body), its category and its
//! metadata, and a fingerprint of all three that tells whether anything changed.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::client::ProjectRef;
use super::types::{Draft, ItemContent, ProjectItem, Ticket};
use crate::domain::Category;
use crate::domain::limits::{MAX_CONTENT_CHARS, MAX_METADATA_BYTES};

/// Most characters of an item's body kept (the rest of the memory's text is short).
const MAX_BODY_CHARS: usize = MAX_CONTENT_CHARS - 2_000;
/// Longest label name or field value kept in the metadata.
const MAX_VALUE_CHARS: usize = 100;
/// The field holding an item's status, as GitHub names it on every new board.
const STATUS_FIELD: &str = "Status";
/// Fields repeated elsewhere in the memory.
const SKIPPED_FIELDS: [&str; 5] = ["Title", "Assignees", "Labels", "Repository", "Status"];

/// The memory an item becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemMemory {
    pub content: String,
    pub category: Category,
    pub metadata: Value,
    /// SHA-256 of content, category and metadata (hex).
    pub fingerprint: String,
    /// The issue's or pull request's node id.
    pub content_id: Option<String>,
}

/// The memory of a live item; `None` for an archived item or one whose content the token
/// cannot see (GitHub redacts it): neither is kept.
pub fn memory_of(item: &ProjectItem, project: &ProjectRef) -> Option<ItemMemory> {
    if item.is_archived {
        return None;
    }
    let fields = field_texts(item);
    let status = fields
        .iter()
        .find(|(name, _)| name == STATUS_FIELD)
        .map(|(_, value)| value.clone());
    let (content, category, metadata, content_id) = match item.content.as_ref()? {
        ItemContent::Issue(ticket) => ticket_memory(item, ticket, "Issue", status, &fields),
        ItemContent::PullRequest(ticket) => {
            ticket_memory(item, ticket, "Pull request", status, &fields)
        }
        ItemContent::DraftIssue(draft) => draft_memory(item, draft, project, status, &fields),
        ItemContent::Other => return None,
    };
    let fingerprint = fingerprint(&content, category, &metadata);
    Some(ItemMemory {
        content,
        category,
        metadata,
        fingerprint,
        content_id: Some(content_id),
    })
}

type Parts = (String, Category, Value, String);

fn ticket_memory(
    item: &ProjectItem,
    ticket: &Ticket,
    kind: &str,
    status: Option<String>,
    fields: &[(String, String)],
) -> Parts {
    let repository = &ticket.repository.name_with_owner;
    let state = ticket.state.to_ascii_lowercase();
    let mut heading = format!("{repository}#{} · {kind} · {state}", ticket.number);
    if let Some(status) = &status {
        heading.push_str(&format!(" · Status: {status}"));
    }
    let content = text(&ticket.title, &heading, Some(&ticket.url), &ticket.body);
    let labels: Vec<String> = ticket
        .labels
        .iter()
        .flat_map(|labels| labels.nodes.iter().flatten())
        .map(|label| clipped(&label.name))
        .collect();
    // Pull requests are how work moves; issues and drafts are what the project is about.
    let category = if kind == "Pull request" {
        Category::Workflow
    } else {
        Category::Project
    };
    let metadata = metadata(
        item,
        json!({
            "url": ticket.url,
            "number": ticket.number,
            "repository": repository,
            "state": state,
            "status": status,
            "labels": labels,
        }),
        fields,
    );
    (content, category, metadata, ticket.id.clone())
}

fn draft_memory(
    item: &ProjectItem,
    draft: &Draft,
    project: &ProjectRef,
    status: Option<String>,
    fields: &[(String, String)],
) -> Parts {
    let mut heading = format!("Draft in project {} of {}", project.number, project.owner);
    if let Some(status) = &status {
        heading.push_str(&format!(" · Status: {status}"));
    }
    let content = text(&draft.title, &heading, None, &draft.body);
    let metadata = metadata(
        item,
        json!({
            "url": Value::Null,
            "number": Value::Null,
            "repository": Value::Null,
            "state": "draft",
            "status": status,
            "labels": [],
        }),
        fields,
    );
    (content, Category::Project, metadata, draft.id.clone())
}

fn text(title: &str, heading: &str, url: Option<&str>, body: &str) -> String {
    let mut text = format!("{}\n{heading}", title.trim());
    if let Some(url) = url {
        text.push('\n');
        text.push_str(url);
    }
    let body = body.trim();
    if !body.is_empty() {
        text.push_str("\n\n");
        text.extend(body.chars().take(MAX_BODY_CHARS));
    }
    text
}

/// `{source: "github", url, number, repository, state, status, labels, updated_at, item_id,
/// item_type, fields}`; the custom fields are left out when they would not fit.
fn metadata(item: &ProjectItem, described: Value, fields: &[(String, String)]) -> Value {
    let mut metadata = Map::new();
    metadata.insert("source".into(), json!("github"));
    if let Value::Object(described) = described {
        metadata.extend(described);
    }
    metadata.insert("updated_at".into(), json!(item.updated_at.to_rfc3339()));
    metadata.insert("item_id".into(), json!(item.id));
    metadata.insert("item_type".into(), json!(item.item_type));
    let custom: Map<String, Value> = fields
        .iter()
        .filter(|(name, _)| !SKIPPED_FIELDS.contains(&name.as_str()))
        .map(|(name, value)| (clipped(name), json!(clipped(value))))
        .collect();
    let mut with_fields = metadata.clone();
    with_fields.insert("fields".into(), Value::Object(custom));
    let with_fields = Value::Object(with_fields);
    if with_fields.to_string().len() <= MAX_METADATA_BYTES {
        with_fields
    } else {
        Value::Object(metadata)
    }
}

fn field_texts(item: &ProjectItem) -> Vec<(String, String)> {
    item.field_values
        .nodes
        .iter()
        .flatten()
        .filter_map(|value| value.named_text())
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

fn clipped(text: &str) -> String {
    text.chars().take(MAX_VALUE_CHARS).collect()
}

fn fingerprint(content: &str, category: Category, metadata: &Value) -> String {
    let mut hash = Sha256::new();
    hash.update(content.as_bytes());
    hash.update([0]);
    hash.update(category.as_str().as_bytes());
    hash.update([0]);
    hash.update(metadata.to_string().as_bytes());
    hex::encode(hash.finalize())
}

#[cfg(test)]
mod tests {
    use super::super::types::{ProjectItemsData, Response};
    use super::*;
    use crate::analysis::references::{Reference, extract_references};

    fn page(name: &str) -> Vec<ProjectItem> {
        let path = format!(
            "{}/tests/fixtures/github/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let response: Response<ProjectItemsData> = serde_json::from_str(&text).expect("reads");
        response
            .data
            .and_then(|data| data.repository_owner)
            .and_then(|owner| owner.project)
            .expect("a project")
            .items
            .nodes
            .into_iter()
            .flatten()
            .collect()
    }

    fn project() -> ProjectRef {
        ProjectRef {
            owner: "acme-robotics".into(),
            number: 7,
        }
    }

    #[test]
    fn an_issue_reads_with_where_it_lives_and_its_status() {
        let items = page("project_items_page1.json");
        let memory = memory_of(&items[0], &project()).expect("a live issue");
        assert!(memory.content.starts_with(
            "Gripper loses calibration after a firmware update\nacme-robotics/gripper-firmware#412 · Issue · open · Status: In Progress\nhttps://github.com/acme-robotics/gripper-firmware/issues/412\n\nAfter flashing 2.3.0"
        ), "{}", memory.content);
        assert_eq!(memory.category, Category::Project);
        assert_eq!(memory.metadata["source"], "github");
        assert_eq!(memory.metadata["number"], 412);
        assert_eq!(memory.metadata["status"], "In Progress");
        assert_eq!(memory.metadata["labels"], json!(["bug", "firmware"]));
        assert_eq!(memory.metadata["fields"]["Iteration"], "Sprint 14");
        assert_eq!(memory.content_id.as_deref(), Some("I_kwDOJ8mZ2c6gRk3P"));
        // The spelling other memories are linked by.
        assert!(
            extract_references(&memory.content).contains(&Reference::Issue {
                repository: "acme-robotics/gripper-firmware".into(),
                number: 412
            })
        );
    }

    #[test]
    fn pull_requests_are_workflow_drafts_project_and_archived_items_are_not_kept() {
        let first = page("project_items_page1.json");
        let pull = memory_of(&first[1], &project()).expect("a pull request");
        assert_eq!(pull.category, Category::Workflow);
        assert_eq!(pull.metadata["state"], "merged");
        let draft = memory_of(&first[2], &project()).expect("a draft");
        assert_eq!(draft.category, Category::Project);
        assert_eq!(draft.metadata["state"], "draft");
        let second = page("project_items_page2.json");
        assert!(second[1].is_archived);
        assert_eq!(memory_of(&second[1], &project()), None);
    }

    #[test]
    fn the_fingerprint_changes_with_the_item_and_only_then() {
        let items = page("project_items_page1.json");
        let before = memory_of(&items[0], &project()).expect("an issue");
        assert_eq!(
            before.fingerprint,
            memory_of(&items[0], &project()).expect("again").fingerprint
        );
        let mut edited = items[0].clone();
        if let Some(ItemContent::Issue(ticket)) = edited.content.as_mut() {
            ticket.title.push_str(" (again)");
        }
        assert_ne!(
            before.fingerprint,
            memory_of(&edited, &project()).expect("edited").fingerprint
        );
    }

    #[test]
    fn a_long_body_and_many_fields_stay_within_the_limits() {
        let items = page("project_items_page1.json");
        let mut long = items[0].clone();
        if let Some(ItemContent::Issue(ticket)) = long.content.as_mut() {
            ticket.body = "x".repeat(MAX_CONTENT_CHARS * 2);
        }
        let memory = memory_of(&long, &project()).expect("an issue");
        assert!(memory.content.chars().count() <= MAX_CONTENT_CHARS);
        assert!(memory.metadata.to_string().len() <= MAX_METADATA_BYTES);
    }
}
