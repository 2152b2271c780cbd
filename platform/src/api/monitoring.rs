//! `/api/v1/monitoring/health`: each backend's state; also served as `/readyz`.

use axum::extract::State;
use axum::http::StatusCode;

use super::state::AppState;
use crate::services::health::HealthReport;

/// The state of every backend; 503 when any is down.
#[utoipa::path(get, path = "/api/v1/monitoring/health", tag = "monitoring",
    responses((status = 200, body = HealthReport), (status = 503, body = HealthReport)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, axum::Json<HealthReport>) {
    let report = state.health.report().await;
    let status = if report.is_healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report))
}

/// Liveness: the process answers.
pub async fn live() -> &'static str {
    "ok"
}
