//! `/api/v1/analytics`: insights, events, a usage summary and running the analytics now; and
//! a memory's relationships and history under `/api/v1/memories/{id}`.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::state::AppState;
use crate::auth::scope::TenantScope;
use crate::domain::analytics::{
    AnalyticsEvent, EventType, HistoryEntry, InsightType, MemoryRelationship, PredictiveInsight,
};
use crate::services::analytics::RunReport;
use crate::services::analytics::service::UsageSummary;
use crate::stores::analytics::EventQuery;

#[derive(Debug, Serialize, ToSchema)]
pub struct RelationshipsResponse {
    pub memory_id: Uuid,
    pub relationships: Vec<MemoryRelationship>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryResponse {
    pub memory_id: Uuid,
    pub history: Vec<HistoryEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// The `next` of the previous page.
    pub after: Option<Uuid>,
    /// 1..100, default 50. A page also stops at about 1 MiB of entries.
    pub limit: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InsightParams {
    /// PATTERN, RECOMMENDATION or RISK_ASSESSMENT.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub insight_type: Option<InsightType>,
    /// Lowest confidence listed, 0..1 (default 0.7).
    pub confidence_threshold: Option<f64>,
    /// 1..100, default 50.
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InsightsResponse {
    pub insights: Vec<PredictiveInsight>,
    pub count: usize,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkInsightRequest {
    /// Whether the insight was acted upon.
    pub action_taken: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    pub event_type: Option<EventType>,
    pub user_id: Option<Uuid>,
    pub memory_id: Option<Uuid>,
    pub session_id: Option<String>,
    /// RFC 3339 lower bound of the event time (inclusive).
    pub since: Option<DateTime<Utc>>,
    /// RFC 3339 upper bound of the event time (inclusive).
    pub until: Option<DateTime<Utc>>,
    /// The `next` of the previous page.
    pub before: Option<Uuid>,
    /// 1..100, default 50.
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventsResponse {
    pub events: Vec<AnalyticsEvent>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Uuid>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// How many days back, 1..90 (default 30).
    pub days: Option<u32>,
}

/// How a memory relates to others.
#[utoipa::path(get, path = "/api/v1/memories/{id}/relationships", tag = "memories",
    params(("id" = Uuid, Path, description = "memory_id")),
    responses((status = 200, body = RelationshipsResponse), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn memory_relationships(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<RelationshipsResponse>, ApiError> {
    let relationships = state.analytics.relationships(&scope, id).await?;
    Ok(axum::Json(RelationshipsResponse {
        memory_id: id,
        relationships,
    }))
}

/// Every create, update and delete of a memory, with the values before and after, oldest
/// first, a page at a time.
#[utoipa::path(get, path = "/api/v1/memories/{id}/history", tag = "memories",
    params(("id" = Uuid, Path, description = "memory_id"), HistoryParams),
    responses((status = 200, body = HistoryResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn memory_history(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> Result<axum::Json<HistoryResponse>, ApiError> {
    let (history, next) = state
        .analytics
        .history(&scope, id, params.after, params.limit)
        .await?;
    Ok(axum::Json(HistoryResponse {
        memory_id: id,
        history,
        next,
    }))
}

/// Insights generated for the tenant (unexpired, most confident first).
#[utoipa::path(get, path = "/api/v1/analytics/insights", tag = "analytics",
    params(InsightParams),
    responses((status = 200, body = InsightsResponse), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_insights(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiQuery(params): ApiQuery<InsightParams>,
) -> Result<axum::Json<InsightsResponse>, ApiError> {
    let insights = state
        .analytics
        .insights(
            &scope,
            params.insight_type,
            params.confidence_threshold,
            params.limit,
        )
        .await?;
    Ok(axum::Json(InsightsResponse {
        count: insights.len(),
        insights,
    }))
}

/// Mark an insight acted upon (or not).
#[utoipa::path(patch, path = "/api/v1/analytics/insights/{insight_id}", tag = "analytics",
    params(("insight_id" = Uuid, Path, description = "insight_id")),
    request_body = MarkInsightRequest,
    responses((status = 200, body = PredictiveInsight), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn mark_insight(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(request): ApiJson<MarkInsightRequest>,
) -> Result<axum::Json<PredictiveInsight>, ApiError> {
    Ok(axum::Json(
        state
            .analytics
            .set_action_taken(&scope, id, request.action_taken)
            .await?,
    ))
}

/// Recorded events, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/analytics/events", tag = "analytics",
    params(EventParams),
    responses((status = 200, body = EventsResponse), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_events(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiQuery(params): ApiQuery<EventParams>,
) -> Result<axum::Json<EventsResponse>, ApiError> {
    let limit = params.limit.unwrap_or(50);
    let query = EventQuery {
        event_type: params.event_type,
        user_id: params.user_id,
        memory_id: params.memory_id,
        session_id: params.session_id,
        since: params.since,
        until: params.until,
        before: params.before,
        limit,
    };
    let events = state.analytics.events(&scope, query).await?;
    let full_page = u64::try_from(events.len()).is_ok_and(|n| n == limit);
    let next = if full_page {
        events.last().map(|e| e.event_id)
    } else {
        None
    };
    Ok(axum::Json(EventsResponse { events, next }))
}

/// Usage over the last days: growth per day, searches, top categories.
#[utoipa::path(get, path = "/api/v1/analytics/summary", tag = "analytics",
    params(SummaryParams),
    responses((status = 200, body = UsageSummary), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn usage_summary(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiQuery(params): ApiQuery<SummaryParams>,
) -> Result<axum::Json<UsageSummary>, ApiError> {
    Ok(axum::Json(
        state.analytics.summary(&scope, params.days).await?,
    ))
}

/// Run the tenant's analytics now; answers when done, with what was produced.
#[utoipa::path(post, path = "/api/v1/analytics/run", tag = "analytics",
    responses((status = 200, body = RunReport), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "a run of the tenant is in progress, or the last ran less than analytics.min_interval ago"),
        (status = 503, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn run_analytics(
    State(state): State<AppState>,
    scope: TenantScope,
) -> Result<axum::Json<RunReport>, ApiError> {
    let started = std::time::Instant::now();
    let outcome = state.analytics.run_on_demand(&scope.tenant).await;
    let label = if outcome.is_ok() {
        "succeeded"
    } else {
        "failed"
    };
    state
        .metrics
        .record_analytics_run("on_demand", label, started.elapsed().as_secs_f64());
    Ok(axum::Json(outcome?))
}
