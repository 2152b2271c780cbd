//! `/api/v1/memories`: store, search, read, change and erase memories.

use std::time::Instant;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::guard::AuditDetail;
use super::state::AppState;
use crate::auth::scope::TenantScope;
use crate::domain::limits::DEFAULT_SEARCH_LIMIT;
use crate::domain::validation::validate_metadata_key;
use crate::domain::{Category, Memory, MemoryFilter};
use crate::metrics::search::SearchKind;
use crate::services::memory_service::{
    CreateMemory, SearchHit, SearchMode, SearchRequest, UpdateMemory,
};
use crate::services::vector_sync::IndexingState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMemoryRequest {
    /// The memory's text: not blank, at most 50 000 characters.
    #[schema(min_length = 1, max_length = 50000, pattern = "\\S")]
    pub content: String,
    /// Omit to have the platform categorise the memory (with a confidence_score).
    pub category: Option<Category>,
    /// A JSON object of at most 5 000 bytes.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// Let the tenant's LLM provider extract the content's facts and decide, against the
    /// nearest memories, which to add, update or delete (`422` when the tenant has no
    /// provider). The answer lists what happened instead of one memory.
    #[serde(default)]
    pub infer: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMemoryRequest {
    pub content: Option<String>,
    pub category: Option<Category>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// A memory plus whether its vector is already searchable.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemoryWithIndexing {
    #[serde(flatten)]
    pub memory: Memory,
    pub indexing: IndexingState,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum SearchModeParam {
    #[default]
    Semantic,
    Exact,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Text to search for; omit to list newest first.
    pub query: Option<String>,
    /// `semantic` (default, by meaning) or `exact` (content contains the text).
    pub mode: Option<SearchModeParam>,
    pub category: Option<Category>,
    /// 1..100, default 10.
    pub limit: Option<u64>,
    pub user_id: Option<Uuid>,
    /// RFC 3339 lower bound of created_at (inclusive).
    pub created_after: Option<DateTime<Utc>>,
    /// RFC 3339 upper bound of created_at (inclusive).
    pub created_before: Option<DateTime<Utc>>,
    /// Metadata key that must equal `metadata_value`.
    pub metadata_key: Option<String>,
    /// JSON scalar (`3`, `true`, `"x"`) or bare text, compared with `metadata[metadata_key]`.
    pub metadata_value: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    #[serde(flatten)]
    pub memory: Memory,
    /// Cosine similarity to the query (semantic searches only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    pub results: Vec<SearchResult>,
    pub count: usize,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Erase the memory everywhere (relational row, vector, events) instead of soft-deleting.
    pub purge: Option<bool>,
}

/// Store a memory.
#[utoipa::path(post, path = "/api/v1/memories", tag = "memories",
    request_body = CreateMemoryRequest,
    responses(
        (status = 201, body = MemoryWithIndexing, description = "Stored; `indexing` says whether it is searchable yet. With `infer`: an `Inferred` (facts, what happened to which memory), `200` when nothing was added"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn create_memory(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiJson(request): ApiJson<CreateMemoryRequest>,
) -> Result<axum::response::Response, ApiError> {
    let input = CreateMemory {
        content: request.content,
        category: request.category,
        metadata: request.metadata,
    };
    if request.infer {
        let inferred = state.inference.add(&scope, input).await?;
        let changed: Vec<_> = inferred
            .results
            .iter()
            .filter(|change| change.event != "NONE")
            .map(|change| serde_json::json!({"event": change.event, "memory_id": change.memory_id}))
            .collect();
        let detail = AuditDetail(serde_json::json!({ "inferred": changed }));
        let added = inferred.results.iter().any(|change| change.event == "ADD");
        let status = if added {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        return Ok((status, Extension(detail), axum::Json(inferred)).into_response());
    }
    let (memory, indexing) = state.memories.create(&scope, input).await?;
    let detail = AuditDetail(serde_json::json!({ "memory_id": memory.memory_id }));
    Ok((
        StatusCode::CREATED,
        Extension(detail),
        axum::Json(MemoryWithIndexing { memory, indexing }),
    )
        .into_response())
}

/// Search memories by meaning or text, or list the newest.
#[utoipa::path(get, path = "/api/v1/memories", tag = "memories", params(SearchParams),
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn search_memories(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<axum::Json<SearchResponse>, ApiError> {
    let request = search_request(params)?;
    let kind = SearchKind::of(&request);
    let started = Instant::now();
    let hits = state.memories.search(&scope, request).await;
    state.metrics.record_search(kind, started.elapsed());
    let hits = hits?;
    let results: Vec<SearchResult> = hits
        .into_iter()
        .map(|SearchHit { memory, score }| SearchResult { memory, score })
        .collect();
    Ok(axum::Json(SearchResponse {
        count: results.len(),
        results,
    }))
}

/// Read one memory (counts as an access).
#[utoipa::path(get, path = "/api/v1/memories/{id}", tag = "memories",
    params(("id" = Uuid, Path, description = "memory_id")),
    responses((status = 200, body = Memory), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn get_memory(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Memory>, ApiError> {
    Ok(axum::Json(state.memories.get(&scope, id).await?))
}

/// Change a memory; new content is embedded again.
#[utoipa::path(patch, path = "/api/v1/memories/{id}", tag = "memories",
    params(("id" = Uuid, Path, description = "memory_id")),
    request_body = UpdateMemoryRequest,
    responses((status = 200, body = MemoryWithIndexing), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn update_memory(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<UpdateMemoryRequest>,
) -> Result<axum::Json<MemoryWithIndexing>, ApiError> {
    let input = UpdateMemory {
        content: request.content,
        category: request.category,
        metadata: request.metadata,
    };
    let (memory, indexing) = state.memories.update(&scope, id, input).await?;
    Ok(axum::Json(MemoryWithIndexing { memory, indexing }))
}

/// Delete a memory: soft by default, everywhere with `purge=true`.
#[utoipa::path(delete, path = "/api/v1/memories/{id}", tag = "memories",
    params(("id" = Uuid, Path, description = "memory_id"), DeleteParams),
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn delete_memory(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    state
        .memories
        .delete(&scope, id, params.purge.unwrap_or(false))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn search_request(params: SearchParams) -> Result<SearchRequest, ApiError> {
    let metadata = match (params.metadata_key, params.metadata_value) {
        (Some(key), Some(value)) => {
            validate_metadata_key(&key)?;
            Some((key, metadata_value(&value)))
        }
        (None, None) => None,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_QUERY",
                "metadata_key and metadata_value must be given together",
            ));
        }
    };
    let mode = match params.mode.unwrap_or_default() {
        SearchModeParam::Semantic => SearchMode::Semantic,
        SearchModeParam::Exact => SearchMode::Exact,
    };
    Ok(SearchRequest {
        query: params.query,
        mode,
        limit: params.limit.unwrap_or(DEFAULT_SEARCH_LIMIT),
        filter: MemoryFilter {
            category: params.category,
            user_id: params.user_id,
            created_after: params.created_after,
            created_before: params.created_before,
            metadata,
        },
    })
}

/// A JSON scalar when the text is one (`3`, `true`, `"3"`), otherwise the text itself.
fn metadata_value(text: &str) -> serde_json::Value {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) if !value.is_object() && !value.is_array() && !value.is_null() => value,
        _ => serde_json::Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_values_are_json_scalars_or_text() {
        assert_eq!(metadata_value("3"), serde_json::json!(3));
        assert_eq!(metadata_value("true"), serde_json::json!(true));
        assert_eq!(metadata_value("\"3\""), serde_json::json!("3"));
        assert_eq!(metadata_value("apollo"), serde_json::json!("apollo"));
        assert_eq!(metadata_value("{\"a\":1}"), serde_json::json!("{\"a\":1}"));
    }
}
