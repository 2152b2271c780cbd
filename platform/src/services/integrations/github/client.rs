//! GitHub's GraphQL API (v4) for a Projects (v2) board: the operations of
//! `platform/graphql/github/project_items.graphql`, sent whole with `operationName`.
//!
//! Limits are honoured as GitHub documents them: a secondary limit (`403`/`429`, with
//! `Retry-After` or without) is waited out when the wait is short and reported otherwise; the
//! primary limit (`x-ratelimit-remaining: 0`, or a GraphQL `RATE_LIMITED` error) is reported with
//! the time it resets (`x-ratelimit-reset`), so the sync can stop and resume from its cursor. A
//! `5xx` or a lost connection is retried with exponential backoff and jitter.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, TimeZone, Utc};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, RETRY_AFTER, USER_AGENT};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::types::{
    ItemNode, ItemOnProject, ProjectItemData, ProjectItemsData, ProjectPage, RateLimit, Response,
    ViewerAndProjectData,
};
use crate::services::integrations::request_error;

/// The operations the platform sends.
const DOCUMENT: &str = include_str!("../../../../graphql/github/project_items.graphql");
const CHECK_DOCUMENT: &str = include_str!("../../../../graphql/github/viewer_and_project.graphql");

/// How the client talks to GitHub.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// `https://api.github.com/graphql`, or a GitHub Enterprise Server's `/api/graphql`.
    pub endpoint: String,
    pub timeout: Duration,
    /// Longest rate-limit wait sat out inside a sync; a longer one pauses the sync.
    pub max_wait: Duration,
    /// First wait before retrying a `5xx` or a lost connection.
    pub retry_min: Duration,
    /// Retries of one request after a `5xx` or a lost connection.
    pub retries: usize,
}

/// Why a request to GitHub did not give an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub refused the token ({status}): {message}; check the token and its access")]
    Unauthorized { status: u16, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("GitHub's rate limit holds until {until}")]
    RateLimited { until: DateTime<Utc> },
    #[error("GitHub answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("GitHub could not be reached: {0}")]
    Unreachable(String),
    #[error("GitHub's answer was not understood: {0}")]
    Malformed(String),
    #[error("GitHub refused the query: {0}")]
    Query(String),
}

/// The client, shared by every sync; a [`Session`] carries one token.
#[derive(Clone)]
pub struct GitHubClient {
    http: reqwest::Client,
    settings: Arc<ClientSettings>,
}

impl GitHubClient {
    pub fn new(settings: ClientSettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()?;
        Ok(Self {
            http,
            settings: Arc::new(settings),
        })
    }

    /// Requests made with `token`, counted.
    pub fn session(&self, token: &str) -> Session {
        Session {
            client: self.clone(),
            token: token.to_string(),
            requests: 0,
            last_rate_limit: None,
        }
    }
}

/// A run of requests with one token.
pub struct Session {
    client: GitHubClient,
    token: String,
    /// Requests sent, retries included.
    pub requests: u64,
    /// GitHub's `rateLimit` of the last answer that had one.
    pub last_rate_limit: Option<RateLimit>,
}

/// What a project owner and number name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRef {
    pub owner: String,
    pub number: i64,
}

impl Session {
    /// One page of the board's items after `cursor`.
    pub async fn project_items(
        &mut self,
        project: &ProjectRef,
        cursor: Option<&str>,
    ) -> Result<ProjectPage, GitHubError> {
        let data: ProjectItemsData = self
            .query(
                DOCUMENT,
                "ProjectItems",
                json!({ "login": project.owner, "number": project.number, "cursor": cursor }),
            )
            .await?;
        self.last_rate_limit = data.rate_limit.or(self.last_rate_limit);
        data.repository_owner
            .and_then(|owner| owner.project)
            .ok_or_else(|| not_found(project))
    }

    /// One item by its node id; `None` when it no longer exists.
    pub async fn project_item(&mut self, id: &str) -> Result<Option<ItemOnProject>, GitHubError> {
        let answer = self
            .query_allowing_not_found::<ProjectItemData>(
                DOCUMENT,
                "ProjectItem",
                json!({ "id": id }),
            )
            .await?;
        let Some(data) = answer else {
            return Ok(None);
        };
        self.last_rate_limit = data.rate_limit.or(self.last_rate_limit);
        Ok(match data.node {
            Some(ItemNode::Item(item)) => Some(*item),
            Some(ItemNode::Other) | None => None,
        })
    }

    /// Who the token belongs to, and the project's title: whether the token can read it.
    pub async fn check(&mut self, project: &ProjectRef) -> Result<(String, String), GitHubError> {
        let data: ViewerAndProjectData = self
            .query(
                CHECK_DOCUMENT,
                "ViewerAndProject",
                json!({ "login": project.owner, "number": project.number }),
            )
            .await?;
        let title = data
            .repository_owner
            .and_then(|owner| owner.project)
            .ok_or_else(|| not_found(project))?
            .title;
        Ok((data.viewer.login, title))
    }

    async fn query<T: DeserializeOwned>(
        &mut self,
        document: &str,
        operation: &str,
        variables: serde_json::Value,
    ) -> Result<T, GitHubError> {
        let response: Response<T> = self.post(document, operation, variables).await?;
        if let Some(error) = response.errors.iter().find(|e| e.is_not_found()) {
            return Err(GitHubError::NotFound(error.message.clone()));
        }
        match response.data {
            Some(data) => Ok(data),
            None => Err(GitHubError::Query(joined(&response.errors))),
        }
    }

    /// Like `query`, but a `NOT_FOUND` error is an answer: `None`.
    async fn query_allowing_not_found<T: DeserializeOwned>(
        &mut self,
        document: &str,
        operation: &str,
        variables: serde_json::Value,
    ) -> Result<Option<T>, GitHubError> {
        let response: Response<T> = self.post(document, operation, variables).await?;
        if response.errors.iter().any(|e| e.is_not_found()) {
            return Ok(None);
        }
        match response.data {
            Some(data) => Ok(Some(data)),
            None => Err(GitHubError::Query(joined(&response.errors))),
        }
    }

    /// Sends the operation until GitHub answers it, waits out short limits, retries failures.
    async fn post<T: DeserializeOwned>(
        &mut self,
        document: &str,
        operation: &str,
        variables: serde_json::Value,
    ) -> Result<Response<T>, GitHubError> {
        let settings = self.client.settings.clone();
        let body = json!({ "query": document, "operationName": operation, "variables": variables });
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(settings.retry_min)
            .with_max_delay(settings.retry_min * 30)
            .with_jitter()
            .with_max_times(settings.retries)
            .build();
        loop {
            self.requests += 1;
            let outcome = self.send_once::<T>(&body).await;
            let wait = match outcome {
                Attempt::Answered(response) => return Ok(response),
                Attempt::Failed(error) => return Err(error),
                Attempt::Limited { until } => {
                    let wait = (until - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                    if wait > settings.max_wait {
                        return Err(GitHubError::RateLimited { until });
                    }
                    tracing::info!(?wait, "waiting out GitHub's secondary rate limit");
                    wait
                }
                Attempt::Transient(error) => match backoff.next() {
                    Some(wait) => {
                        tracing::info!(%error, ?wait, "retrying a GitHub request");
                        wait
                    }
                    None => return Err(error),
                },
            };
            tokio::time::sleep(wait).await;
        }
    }

    async fn send_once<T: DeserializeOwned>(&self, body: &serde_json::Value) -> Attempt<T> {
        let sent = self
            .client
            .http
            .post(&self.client.settings.endpoint)
            .header(AUTHORIZATION, format!("Bearer {}", self.token))
            .header(ACCEPT, "application/json")
            .header(
                USER_AGENT,
                concat!("memoryc-github-sync/", env!("CARGO_PKG_VERSION")),
            )
            .json(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Attempt::Transient(GitHubError::Unreachable(describe(&error))),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let text = match response.text().await {
            Ok(text) => text,
            Err(error) => return Attempt::Transient(GitHubError::Unreachable(describe(&error))),
        };
        classify::<T>(status, &headers, &text, Utc::now())
    }
}

/// What one request came to.
enum Attempt<T> {
    Answered(Response<T>),
    /// Wait until then (a rate limit), then ask again.
    Limited {
        until: DateTime<Utc>,
    },
    /// Worth retrying after a backoff.
    Transient(GitHubError),
    Failed(GitHubError),
}

/// Reads one HTTP answer as GitHub documents its statuses and limits.
fn classify<T: DeserializeOwned>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    now: DateTime<Utc>,
) -> Attempt<T> {
    let message = || error_message(body);
    if status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS {
        if let Some(seconds) = header_number(headers, RETRY_AFTER.as_str()) {
            return Attempt::Limited {
                until: now + chrono::Duration::seconds(seconds),
            };
        }
        if header_number(headers, "x-ratelimit-remaining") == Some(0) {
            return Attempt::Limited {
                until: reset_time(headers).unwrap_or(now + SECONDARY_WAIT),
            };
        }
        if status == StatusCode::TOO_MANY_REQUESTS || mentions_rate_limit(body) {
            // A secondary limit without Retry-After: GitHub asks for at least a minute.
            return Attempt::Limited {
                until: now + SECONDARY_WAIT,
            };
        }
        return Attempt::Failed(GitHubError::Unauthorized {
            status: status.as_u16(),
            message: message(),
        });
    }
    if status == StatusCode::UNAUTHORIZED {
        return Attempt::Failed(GitHubError::Unauthorized {
            status: status.as_u16(),
            message: message(),
        });
    }
    if status.is_server_error() {
        return Attempt::Transient(GitHubError::Status {
            status: status.as_u16(),
            message: message(),
        });
    }
    if !status.is_success() {
        return Attempt::Failed(GitHubError::Status {
            status: status.as_u16(),
            message: message(),
        });
    }
    let response: Response<T> = match serde_json::from_str(body) {
        Ok(response) => response,
        Err(error) => return Attempt::Failed(GitHubError::Malformed(error.to_string())),
    };
    if response.errors.iter().any(|e| e.is_rate_limit()) {
        return Attempt::Limited {
            until: reset_time(headers).unwrap_or(now + SECONDARY_WAIT),
        };
    }
    Attempt::Answered(response)
}

/// GitHub's advice when a secondary limit names no wait.
const SECONDARY_WAIT: chrono::Duration = chrono::Duration::seconds(60);

fn header_number(headers: &HeaderMap, name: &str) -> Option<i64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// `x-ratelimit-reset`: when the hour's points come back (epoch seconds).
fn reset_time(headers: &HeaderMap) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(header_number(headers, "x-ratelimit-reset")?, 0)
        .single()
}

fn mentions_rate_limit(body: &str) -> bool {
    body.to_ascii_lowercase().contains("rate limit")
}

/// The `message` of a REST-style error body, or the start of the body.
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

fn joined(errors: &[super::types::QueryError]) -> String {
    if errors.is_empty() {
        return "no data and no error".to_string();
    }
    errors
        .iter()
        .map(|error| error.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

fn not_found(project: &ProjectRef) -> GitHubError {
    GitHubError::NotFound(format!(
        "project {} of {} was not found, or the token cannot read it",
        project.number, project.owner
    ))
}

fn describe(error: &reqwest::Error) -> String {
    request_error::describe(error, "no answer in time", "the request failed")
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    type Any = Response<serde_json::Value>;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_765_000_000, 0)
            .single()
            .expect("a time")
    }

    #[test]
    fn limits_are_read_as_github_documents_them() {
        let secondary = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/github/rate_limited.json"
        ))
        .expect("fixture");
        let retry_after = headers(&[("retry-after", "30")]);
        assert!(matches!(
            classify::<serde_json::Value>(StatusCode::FORBIDDEN, &retry_after, &secondary, now()),
            Attempt::Limited { until } if until == now() + chrono::Duration::seconds(30)
        ));
        assert!(matches!(
            classify::<serde_json::Value>(StatusCode::FORBIDDEN, &HeaderMap::new(), &secondary, now()),
            Attempt::Limited { until } if until == now() + SECONDARY_WAIT
        ));
        let exhausted = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1765003600"),
        ]);
        assert!(matches!(
            classify::<serde_json::Value>(StatusCode::FORBIDDEN, &exhausted, "{}", now()),
            Attempt::Limited { until } if until.timestamp() == 1_765_003_600
        ));
        let primary = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/github/rate_limit_exhausted.json"
        ))
        .expect("fixture");
        let reset = headers(&[("x-ratelimit-reset", "1765003600")]);
        assert!(matches!(
            classify::<serde_json::Value>(StatusCode::OK, &reset, &primary, now()),
            Attempt::Limited { until } if until.timestamp() == 1_765_003_600
        ));
    }

    #[test]
    fn other_answers_are_retried_refused_or_read() {
        let refused = r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/graphql"}"#;
        assert!(matches!(
            classify::<serde_json::Value>(StatusCode::UNAUTHORIZED, &HeaderMap::new(), refused, now()),
            Attempt::Failed(GitHubError::Unauthorized { status: 401, ref message }) if message == "Bad credentials"
        ));
        assert!(matches!(
            classify::<serde_json::Value>(
                StatusCode::BAD_GATEWAY,
                &HeaderMap::new(),
                "<html>",
                now()
            ),
            Attempt::Transient(GitHubError::Status { status: 502, .. })
        ));
        assert!(matches!(
            classify::<serde_json::Value>(StatusCode::OK, &HeaderMap::new(), "not json", now()),
            Attempt::Failed(GitHubError::Malformed(_))
        ));
        let answered: Attempt<serde_json::Value> = classify(
            StatusCode::OK,
            &HeaderMap::new(),
            r#"{"data":{"a":1}}"#,
            now(),
        );
        assert!(matches!(
            answered,
            Attempt::Answered(Any { data: Some(_), .. })
        ));
    }
}
