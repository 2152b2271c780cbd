//! `/api/v1/monitoring/health`: each backend's state; also served as `/readyz`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use super::state::AppState;
use crate::services::health::HealthReport;

pub fn routes() -> Router<AppState> {
    Router::new().route("/monitoring/health", get(health))
}

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
