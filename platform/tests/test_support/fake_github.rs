//! A local stand-in for `POST https://api.github.com/graphql`: a Projects (v2) board whose
//! items the test changes, answered in GitHub's wire format. Every answer is built from the
//! checked fixtures in `tests/fixtures/github` (which `scripts/check-graphql` validates against
//! GitHub's published schema): their items are the templates, their keys the keys sent. Pages
//! of 100 with opaque cursors, `x-ratelimit-*` headers and the `rateLimit` object, a token
//! check, and faults on demand: `502`s, secondary limits (`403` with `Retry-After`), an
//! exhausted primary limit.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

/// GitHub's fixed page size for the items connection (`first: 100` in the query).
const PAGE: usize = 100;
/// Points an hour, as GitHub grants a user token.
const LIMIT: i64 = 5_000;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/github/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What an item holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Issue,
    PullRequest,
    Draft,
}

#[derive(Debug, Clone)]
pub struct FakeItem {
    pub id: String,
    pub kind: Kind,
    pub number: u64,
    pub repository: String,
    pub title: String,
    pub body: String,
    /// `OPEN`, `CLOSED`, `MERGED`.
    pub state: String,
    pub status: String,
    pub labels: Vec<String>,
    pub archived: bool,
    pub updated_at: DateTime<Utc>,
}

impl FakeItem {
    pub fn issue(number: u64, title: &str) -> Self {
        Self {
            id: format!("PVTI_lADOBdk1c84AtQ9xzg{number:08}"),
            kind: Kind::Issue,
            number,
            repository: "acme-robotics/gripper-firmware".into(),
            title: title.into(),
            body: format!("What issue {number} is about."),
            state: "OPEN".into(),
            status: "Todo".into(),
            labels: vec!["bug".into()],
            archived: false,
            updated_at: Utc::now(),
        }
    }

    pub fn content_id(&self) -> String {
        match self.kind {
            Kind::Issue => format!("I_kwDOJ8mZ2c{:08}", self.number),
            Kind::PullRequest => format!("PR_kwDOJ8mZ2c{:08}", self.number),
            Kind::Draft => format!("DI_lADOBdk1c84AtQ9x{:08}", self.number),
        }
    }

    pub fn url(&self) -> String {
        let path = if self.kind == Kind::PullRequest {
            "pull"
        } else {
            "issues"
        };
        format!(
            "https://github.com/{}/{path}/{}",
            self.repository, self.number
        )
    }
}

/// An answer the board gives instead of the next real one.
#[derive(Debug, Clone)]
pub enum Fault {
    /// `502 Bad Gateway` with GitHub's HTML page.
    BadGateway,
    /// A secondary limit: `403` with `Retry-After: seconds`.
    Secondary { retry_after: u64 },
    /// The primary limit is used up: `200` with a `RATE_LIMITED` error, reset in `reset_in`.
    Exhausted { reset_in: Duration },
}

struct Board {
    token: String,
    login: String,
    number: i64,
    project_id: String,
    items: Vec<FakeItem>,
    faults: VecDeque<Fault>,
    /// Points left this hour; each request costs 1.
    remaining: i64,
    reset_at: DateTime<Utc>,
    requests: Vec<String>,
}

#[derive(Clone)]
pub struct FakeGitHub {
    board: Arc<Mutex<Board>>,
    pub url: String,
    pub token: String,
}

impl FakeGitHub {
    /// A board `acme-robotics`'s project 7, readable with `token`, served on a free port.
    pub async fn start(token: &str) -> Self {
        let page = fixture("project_items_page1.json");
        let board = Arc::new(Mutex::new(Board {
            token: token.to_string(),
            login: "acme-robotics".into(),
            number: 7,
            project_id: page["data"]["repositoryOwner"]["projectV2"]["id"]
                .as_str()
                .expect("project id")
                .to_string(),
            items: Vec::new(),
            faults: VecDeque::new(),
            remaining: LIMIT,
            reset_at: Utc::now() + Duration::hours(1),
            requests: Vec::new(),
        }));
        let app = Router::new()
            .route("/graphql", post(graphql))
            .with_state(board.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            board,
            url: format!("http://{address}/graphql"),
            token: token.to_string(),
        }
    }

    fn board(&self) -> MutexGuard<'_, Board> {
        self.board
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn project_id(&self) -> String {
        self.board().project_id.clone()
    }

    pub fn set_items(&self, items: Vec<FakeItem>) {
        self.board().items = items;
    }

    pub fn items(&self) -> Vec<FakeItem> {
        self.board().items.clone()
    }

    /// Changes one item (and its `updatedAt`).
    pub fn edit(&self, id: &str, change: impl FnOnce(&mut FakeItem)) {
        let mut board = self.board();
        let item = board
            .items
            .iter_mut()
            .find(|item| item.id == id)
            .expect("item");
        change(item);
        item.updated_at = Utc::now();
    }

    pub fn remove(&self, id: &str) {
        self.board().items.retain(|item| item.id != id);
    }

    pub fn push_fault(&self, fault: Fault) {
        self.board().faults.push_back(fault);
    }

    /// Leaves `points` of the hour's budget.
    pub fn set_remaining(&self, points: i64, reset_at: DateTime<Utc>) {
        let mut board = self.board();
        board.remaining = points;
        board.reset_at = reset_at;
    }

    /// Operation names of the requests received so far.
    pub fn requests(&self) -> Vec<String> {
        self.board().requests.clone()
    }
}

async fn graphql(
    State(board): State<Arc<Mutex<Board>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut board = board
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let operation = request["operationName"].as_str().unwrap_or("").to_string();
    board.requests.push(operation.clone());
    let authorised = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        == Some(format!("Bearer {}", board.token).as_str());
    if !authorised {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/graphql"})),
        )
            .into_response();
    }
    if let Some(fault) = board.faults.pop_front() {
        return fault_answer(&board, fault);
    }
    if board.remaining <= 0 {
        return fault_answer(
            &board,
            Fault::Exhausted {
                reset_in: board.reset_at - Utc::now(),
            },
        );
    }
    board.remaining -= 1;
    let variables = &request["variables"];
    let data = match operation.as_str() {
        "ProjectItems" => items_page(&board, variables),
        "ProjectItem" => one_item(&board, variables),
        "ViewerAndProject" => json!({"data": {"viewer": {"login": "sync-bot"},
            "repositoryOwner": {"projectV2": {"title": "Gripper roadmap"}}}}),
        other => json!({"errors": [{"message": format!("unknown operation {other}")}]}),
    };
    let mut response = axum::Json(data).into_response();
    rate_headers(&board, response.headers_mut());
    response
}

fn fault_answer(board: &Board, fault: Fault) -> Response {
    match fault {
        Fault::BadGateway => (
            StatusCode::BAD_GATEWAY,
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        )
            .into_response(),
        Fault::Secondary { retry_after } => {
            let mut response = (
                StatusCode::FORBIDDEN,
                axum::Json(fixture("rate_limited.json")),
            )
                .into_response();
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(retry_after));
            rate_headers(board, response.headers_mut());
            response
        }
        Fault::Exhausted { reset_in } => {
            let mut response = axum::Json(fixture("rate_limit_exhausted.json")).into_response();
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-remaining", HeaderValue::from(0));
            headers.insert(
                "x-ratelimit-reset",
                HeaderValue::from((Utc::now() + reset_in).timestamp()),
            );
            response
        }
    }
}

fn rate_headers(board: &Board, headers: &mut HeaderMap) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(LIMIT));
    headers.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(board.remaining.max(0)),
    );
    headers.insert(
        "x-ratelimit-used",
        HeaderValue::from(LIMIT - board.remaining.max(0)),
    );
    headers.insert(
        "x-ratelimit-reset",
        HeaderValue::from(board.reset_at.timestamp()),
    );
    headers.insert("x-ratelimit-resource", HeaderValue::from_static("graphql"));
}

fn rate_limit(board: &Board) -> Value {
    json!({"cost": 1, "remaining": board.remaining.max(0),
        "resetAt": board.reset_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "limit": LIMIT})
}

fn cursor_of(index: usize) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(index.to_string())
}

fn index_of(cursor: &str) -> usize {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.parse().ok())
        .unwrap_or(0)
}

fn items_page(board: &Board, variables: &Value) -> Value {
    if variables["login"] != json!(board.login) || variables["number"] != json!(board.number) {
        let mut missing = fixture("errors_not_found.json");
        missing["errors"][0]["message"] = json!(format!(
            "Could not resolve to a ProjectV2 with the number {}.",
            variables["number"]
        ));
        return missing;
    }
    let start = variables["cursor"].as_str().map_or(0, index_of);
    let end = (start + PAGE).min(board.items.len());
    let nodes: Vec<Value> = board.items[start.min(end)..end].iter().map(node).collect();
    let mut page = fixture("project_items_page1.json");
    let project = &mut page["data"]["repositoryOwner"]["projectV2"];
    project["id"] = json!(board.project_id);
    project["items"]["nodes"] = Value::Array(nodes);
    project["items"]["pageInfo"] = json!({"hasNextPage": end < board.items.len(),
        "endCursor": (end > start).then(|| cursor_of(end))});
    page["data"]["rateLimit"] = rate_limit(board);
    page
}

fn one_item(board: &Board, variables: &Value) -> Value {
    let id = variables["id"].as_str().unwrap_or_default();
    let Some(item) = board.items.iter().find(|item| item.id == id) else {
        let mut missing = fixture("project_item_missing.json");
        missing["errors"][0]["message"] = json!(format!(
            "Could not resolve to a node with the global id of '{id}'"
        ));
        missing["data"]["rateLimit"] = rate_limit(board);
        return missing;
    };
    let mut found = fixture("project_item_node.json");
    let mut item_node = node(item);
    item_node["__typename"] = json!("ProjectV2Item");
    item_node["project"] = json!({"id": board.project_id});
    found["data"]["node"] = item_node;
    found["data"]["rateLimit"] = rate_limit(board);
    found
}

/// The item in the shape of the fixture's item of the same kind.
fn node(item: &FakeItem) -> Value {
    let page = fixture("project_items_page1.json");
    let templates = &page["data"]["repositoryOwner"]["projectV2"]["items"]["nodes"];
    let position = match item.kind {
        Kind::Issue => 0,
        Kind::PullRequest => 1,
        Kind::Draft => 2,
    };
    let mut node = templates[position].clone();
    let updated = item
        .updated_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    node["id"] = json!(item.id);
    node["isArchived"] = json!(item.archived);
    node["updatedAt"] = json!(updated);
    let content = &mut node["content"];
    content["id"] = json!(item.content_id());
    content["title"] = json!(item.title);
    content["body"] = json!(item.body);
    content["updatedAt"] = json!(updated);
    match item.kind {
        Kind::Issue | Kind::PullRequest => {
            content["number"] = json!(item.number);
            content["url"] = json!(item.url());
            content["repository"]["nameWithOwner"] = json!(item.repository);
            let state_key = if item.kind == Kind::Issue {
                "issueState"
            } else {
                "pullRequestState"
            };
            content[state_key] = json!(item.state);
            content["labels"]["nodes"] = Value::Array(
                item.labels
                    .iter()
                    .map(|name| json!({"name": name}))
                    .collect(),
            );
        }
        Kind::Draft => {}
    }
    if let Some(values) = node["fieldValues"]["nodes"].as_array_mut() {
        for value in values.iter_mut() {
            if value["__typename"] == "ProjectV2ItemFieldSingleSelectValue"
                && value["field"]["name"] == "Status"
            {
                value["name"] = json!(item.status);
            }
            if value["__typename"] == "ProjectV2ItemFieldTextValue"
                && value["field"]["name"] == "Title"
            {
                value["text"] = json!(item.title);
            }
        }
    }
    node
}
