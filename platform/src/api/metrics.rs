//! `/metrics` and `/api/v1/metrics`: the Prometheus exposition. Public unless `metrics.token`
//! is configured; then only `Authorization: Bearer <metrics_token>` may scrape. The check is
//! this handler's own (the route is `Public` to the guard), because a scraper holds no tenant
//! credential.

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ErrorBody};
use super::state::AppState;
use crate::metrics::OPENMETRICS_CONTENT_TYPE;

/// The platform's metrics in the OpenMetrics text format.
#[utoipa::path(get, path = "/api/v1/metrics", tag = "monitoring",
    responses(
        (status = 200, description = "Every metric family", body = String,
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 401, body = ErrorBody, description = "metrics_token is set and was not presented")),
    security((), ("metrics_token" = [])))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.metrics_token
        && !token.permits(headers.get(AUTHORIZATION))
    {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "the metrics token (Authorization: Bearer) is required",
        )
        .into_response();
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    match state.metrics.render() {
        Ok(text) => (
            [(
                CONTENT_TYPE,
                HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
            )],
            text,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "metrics could not be rendered");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "the metrics could not be rendered",
            )
            .into_response()
        }
    }
}
