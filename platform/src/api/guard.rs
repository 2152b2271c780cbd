//! The one gate in front of every `/api/v1` route: find the route's permission, authenticate
//! the caller, ask the policy, hand the decision to the handler, and audit every write and
//! every refusal. Deny is the default: a route without a row in [`super::permissions`] is
//! refused.

use std::time::Duration;

use axum::extract::{MatchedPath, OriginalUri, Request, State};
use axum::http::header::{ALLOW, AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use uuid::Uuid;

use super::client_address;
use super::error::ApiError;
use super::permissions;
use super::state::AppState;
use crate::auth::Principal;
use crate::auth::access;
use crate::auth::permission::Requirement;
use crate::services::authentication::AuthFailure;
use crate::services::rate_limit::{self, RateDecision};
use crate::stores::{AuditEntry, AuditOutcome};

/// Header carrying an API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// Extra facts a handler adds to the audit record of its request (e.g. which key it issued).
/// Handlers put it in the response's extensions; the guard takes it out.
#[derive(Debug, Clone)]
pub struct AuditDetail(pub serde_json::Value);

pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let method = request.method().clone();
    // Inside the nested `/api/v1` router the URI lost its prefix; the original has it.
    let path = request
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| request.uri().path(), |original| original.path())
        .to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|matched| permissions::lookup(&method, matched.as_str()));
    let mut audit = AuditDraft {
        method: method.to_string(),
        route: route.map_or_else(|| path.clone(), |r| r.path.to_string()),
        path,
        principal: None,
    };
    let Some(route) = route else {
        // A known path with another method: the method is not allowed, whatever the caller.
        let allowed = request
            .extensions()
            .get::<MatchedPath>()
            .map(|matched| permissions::methods_of(matched.as_str()))
            .unwrap_or_default();
        if !allowed.is_empty() {
            return method_not_allowed(&allowed);
        }
        tracing::error!(%method, path = %audit.path,
            "route has no row in the permission table; denying");
        return audit
            .finish(
                &state,
                AuditOutcome::Denied,
                ApiError::forbidden().into_response(),
            )
            .await;
    };
    if route.requirement == Requirement::Public {
        return next.run(request).await;
    }
    if route.requirement == Requirement::Signed {
        return signed(&state, request, next).await;
    }
    // A client that keeps failing authentication is refused before its credentials are looked
    // up, and only its first failure of a minute is audited: an anonymous flood neither reaches
    // the database per request nor grows the audit log without bound.
    let client = client_address::of(&request, &state.trusted_proxies);
    if let Some(client) = client
        && let Some(retry_after) = state.rate_limits.client_locked_out(client).await
    {
        return locked_out(retry_after);
    }
    let principal = match authenticate(&state, request.headers()).await {
        Ok(principal) => principal,
        Err(error) if error.status == StatusCode::UNAUTHORIZED => {
            let failures = match client {
                Some(client) => state.rate_limits.record_failure(client).await,
                None => 0,
            };
            if failures > 1 {
                return error.into_response();
            }
            return audit
                .finish(&state, AuditOutcome::Unauthenticated, error.into_response())
                .await;
        }
        Err(error) => return error.into_response(),
    };
    audit.principal = Some(principal.clone());
    let (limit, remaining) = match state
        .rate_limits
        .check(&principal, method.as_str(), route.path)
        .await
    {
        RateDecision::Allowed { limit, remaining } => (limit, remaining),
        RateDecision::Limited {
            limit,
            retry_after,
            window,
        } => {
            return audit
                .finish(
                    &state,
                    AuditOutcome::RateLimited,
                    rate_limited(limit, retry_after, window),
                )
                .await;
        }
    };
    let access = match access::decide(&state.policy, &principal, route.requirement) {
        Ok(access) => access,
        Err(denial) => {
            tracing::info!(%denial, credential = %principal.credential_label(),
                route = route.path, %method, "request denied");
            return audit
                .finish(
                    &state,
                    AuditOutcome::Denied,
                    ApiError::forbidden().into_response(),
                )
                .await;
        }
    };
    request.extensions_mut().insert(access);
    let mut response = next.run(request).await;
    if limit > 0 {
        let headers = response.headers_mut();
        headers.insert(RATE_LIMIT_LIMIT, HeaderValue::from(limit));
        headers.insert(RATE_LIMIT_REMAINING, HeaderValue::from(remaining));
    }
    if route.requirement.is_write() {
        let outcome = if response.status().is_success() {
            AuditOutcome::Allowed
        } else {
            AuditOutcome::Failed
        };
        return audit.finish(&state, outcome, response).await;
    }
    response
}

fn method_not_allowed(allowed: &[&Method]) -> Response {
    let list = allowed
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("this route answers {list}"),
    )
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&list) {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

const RATE_LIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const RATE_LIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");

/// 429 with `Retry-After` in whole seconds (rounded up, so a client that waits is let in).
fn whole_seconds(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0))
        .max(1)
}

/// 429 for a client address that failed authentication too often this minute.
fn locked_out(retry_after: Duration) -> Response {
    too_many_requests(
        "too many failed authentications from this address; retry after the given seconds",
        None,
        retry_after,
        rate_limit::WINDOW,
    )
}

fn rate_limited(limit: u32, retry_after: Duration, window: Duration) -> Response {
    too_many_requests(
        "too many requests for this credential and route; retry after the given seconds",
        Some(limit),
        retry_after,
        window,
    )
}

/// 429 with `Retry-After` and the window in the body's context (and the limit, when one
/// was exceeded: `limit` requests per `window_seconds`).
fn too_many_requests(
    message: &'static str,
    limit: Option<u32>,
    retry_after: Duration,
    window: Duration,
) -> Response {
    let seconds = whole_seconds(retry_after);
    let mut context = serde_json::json!({
        "window_seconds": window.as_secs(),
        "retry_after_seconds": seconds,
    });
    if let Some(limit) = limit {
        context["limit"] = limit.into();
    }
    let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", message)
        .with_context(context)
        .into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// What the guard knows of a request so far, for its audit record.
struct AuditDraft {
    method: String,
    route: String,
    path: String,
    principal: Option<Principal>,
}

impl AuditDraft {
    async fn finish(self, state: &AppState, outcome: AuditOutcome, response: Response) -> Response {
        let detail = response
            .extensions()
            .get::<AuditDetail>()
            .map(|detail| detail.0.clone());
        let principal = self.principal.as_ref();
        state
            .audit
            .record(AuditEntry {
                audit_id: Uuid::now_v7(),
                tenant_id: principal
                    .and_then(|p| p.tenant.as_ref())
                    .map(|t| t.tenant_id),
                subject: principal.map(Principal::credential_label),
                user_id: principal.map(|p| p.user_id),
                roles: principal.map(|p| p.roles.clone()).unwrap_or_default(),
                method: self.method,
                route: self.route,
                path: self.path,
                outcome,
                status: response.status().as_u16(),
                detail,
                occurred_at: Utc::now(),
            })
            .await;
        response
    }
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let api_key = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok());
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let result = match (api_key, bearer) {
        (Some(key), _) => state.authenticator.api_key(key.trim()).await,
        (None, Some(token)) => state.authenticator.bearer(token.trim()).await,
        (None, None) => Err(AuthFailure::Missing),
    };
    result.map_err(|failure| match failure {
        AuthFailure::Service(error) => error.into(),
        AuthFailure::Missing | AuthFailure::Invalid => ApiError::unauthorized(),
    })
}

/// A route whose sender signs the body: no credential is looked up; a client whose signatures
/// keep failing is locked out as one whose credentials do.
async fn signed(state: &AppState, request: Request, next: Next) -> Response {
    let client = client_address::of(&request, &state.trusted_proxies);
    if let Some(client) = client
        && let Some(retry_after) = state.rate_limits.client_locked_out(client).await
    {
        return locked_out(retry_after);
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED
        && let Some(client) = client
    {
        state.rate_limits.record_failure(client).await;
    }
    response
}
