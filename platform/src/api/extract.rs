//! Extractors that turn every malformed request into an [`ApiError`], and find the caller.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::auth::Principal;
use crate::auth::access::Access;
use crate::auth::scope::TenantScope;
use crate::domain::limits::MAX_JSON_DEPTH;

/// `axum::Json` with structured rejections and a nesting limit: a deeply nested document is
/// refused before the parser recurses into it.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "expected a body with content-type application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(ApiError::from)?;
        let depth = json_depth(&bytes);
        if depth > MAX_JSON_DEPTH {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "MALFORMED_REQUEST",
                format!("JSON nests {depth} levels deep; at most {MAX_JSON_DEPTH} are allowed"),
            )
            .with_context(serde_json::json!({ "max_depth": MAX_JSON_DEPTH })));
        }
        if has_escaped_nul(&bytes) {
            return Err(nul_refused("body"));
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(ApiJson(value))
    }
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The deepest nesting of objects and arrays, ignoring brackets inside strings. Invalid JSON
/// gets some number; the parser reports what is wrong with it.
pub fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in bytes {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Whether a JSON document has a `\u0000` escape inside a string. Text with NUL characters
/// cannot be stored by PostgreSQL and is never meaningful memory content, so it is refused
/// before anything is parsed. (Raw NUL bytes are invalid JSON; the parser refuses those.)
pub fn has_escaped_nul(bytes: &[u8]) -> bool {
    let mut in_string = false;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if !in_string {
            in_string = byte == b'"';
        } else if byte == b'"' {
            in_string = false;
        } else if byte == b'\\' {
            let escape = bytes.get(index + 1..index + 6);
            if escape == Some(b"u0000".as_slice()) {
                return true;
            }
            // Skip the escaped character so `\\` followed by `u0000` stays plain text.
            index += 1;
        }
        index += 1;
    }
    false
}

fn nul_refused(place: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "MALFORMED_REQUEST",
        format!("the request {place} contains a NUL character (U+0000), which text may not hold"),
    )
}

/// `axum::extract::Query` with structured rejections.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        if query
            .as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"%00"))
        {
            return Err(nul_refused("query"));
        }
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}

/// `axum::extract::Path` with structured rejections.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

/// The caller, as the guard authenticated it.
impl<S> FromRequestParts<S> for Principal
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(access_of(parts)?.principal)
    }
}

/// The guard's decision for this request.
impl<S> FromRequestParts<S> for Access
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        access_of(parts)
    }
}

/// The tenant scope memory operations run in; only for callers inside a tenant.
impl<S> FromRequestParts<S> for TenantScope
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut scope = access_of(parts)?.scope().ok_or_else(ApiError::forbidden)?;
        scope.session_id = session_id(&parts.headers)?;
        Ok(scope)
    }
}

/// Header naming the caller's session; recorded with the analytics events of the request.
pub const SESSION_HEADER: &str = "x-session-id";
/// Longest session id accepted (the width of `analytics_events.session_id`).
pub const MAX_SESSION_ID_CHARS: usize = 128;

/// The session id, when the caller sent one: 1-128 visible ASCII characters.
fn session_id(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(SESSION_HEADER) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    let valid = !text.is_empty()
        && text.len() <= MAX_SESSION_ID_CHARS
        && text.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "VALIDATION_FAILED",
            format!(
                "X-Session-Id must be 1-{MAX_SESSION_ID_CHARS} visible ASCII characters without spaces"
            ),
        )
        .with_context(serde_json::json!({ "field": "X-Session-Id", "max_length": MAX_SESSION_ID_CHARS })));
    }
    Ok(Some(text.to_string()))
}

/// A handler reached without the guard's decision is refused rather than served.
fn access_of(parts: &Parts) -> Result<Access, ApiError> {
    parts
        .extensions
        .get::<Access>()
        .cloned()
        .ok_or_else(ApiError::unauthorized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_nesting_outside_strings() {
        assert_eq!(json_depth(br#"{"a": 1}"#), 1);
        assert_eq!(json_depth(br#"{"a": [[{"b": 2}]]}"#), 4);
        assert_eq!(json_depth(br#"{"a": "[[[[{{{{"}"#), 1);
        assert_eq!(json_depth(br#"{"a": "\"[[[["}"#), 1);
        assert_eq!(json_depth(b"3"), 0);
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(json_depth(deep.as_bytes()), 100);
    }

    #[test]
    fn escaped_nul_is_found_only_inside_strings_and_only_as_an_escape() {
        assert!(has_escaped_nul(br#"{"content": "a\u0000b"}"#));
        assert!(has_escaped_nul(br#"{"metadata": {"k\u0000": 1}}"#));
        assert!(!has_escaped_nul(br#"{"content": "a\\u0000b"}"#));
        assert!(!has_escaped_nul(br#"{"content": "u0000"}"#));
        assert!(has_escaped_nul(br#"{"content": "\u00001"}"#));
        assert!(!has_escaped_nul(br#"{"content": "\u0001"}"#));
    }
}
