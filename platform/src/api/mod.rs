//! The HTTP API: routes built from one table (`permissions::ROUTES`), middleware applied in one
//! place.

pub mod admin;
pub mod analytics;
pub mod audit;
pub mod client_address;
pub mod error;
pub mod extract;
pub mod grants;
pub mod guard;
pub mod hardening;
pub mod integrations;
pub mod keys;
pub mod memories;
pub mod metrics;
pub mod monitoring;
pub mod openapi;
pub mod permissions;
pub mod settings;
pub mod state;

use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::permission::Requirement;
use crate::domain::limits::MAX_REQUEST_BODY_BYTES;
pub use state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP surface; `request_timeout` bounds every request; `cors` answers browsers of
/// the configured origins.
/// Liveness probe, outside `/api/v1`.
pub const LIVENESS_PATH: &str = "/healthz";
/// Readiness probe, outside `/api/v1`.
pub const READINESS_PATH: &str = "/readyz";
/// Prometheus metrics, outside `/api/v1`.
pub const METRICS_PATH: &str = "/metrics";

/// Every path served without a credential: the probes and metrics, and the public routes of
/// `/api/v1` (what probes and scrapers may be pointed at).
pub fn unauthenticated_paths() -> Vec<&'static str> {
    let mut paths = vec![LIVENESS_PATH, READINESS_PATH, METRICS_PATH];
    paths.extend(
        permissions::ROUTES
            .iter()
            .filter(|route| matches!(route.requirement, Requirement::Public | Requirement::Signed))
            .map(|route| route.path),
    );
    paths.sort_unstable();
    paths.dedup();
    paths
}

pub fn router(
    state: AppState,
    request_timeout: Duration,
    cors: Option<tower_http::cors::CorsLayer>,
) -> Router {
    let api = permissions::ROUTES
        .iter()
        .fold(Router::new(), |router, route| {
            router.route(route.path, (route.serve)())
        })
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ));
    let routes = api
        .route(LIVENESS_PATH, get(monitoring::live))
        .route(READINESS_PATH, get(monitoring::health))
        .route(METRICS_PATH, get(metrics::metrics))
        .fallback(not_found);
    let router = hardening::with_security_headers(routes)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY_BYTES))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(request_timed_out))
                .timeout(request_timeout),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let request_id = request
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), request_id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid));
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    // Outermost, so answers of every other layer (guard, timeout, fallback, CORS) are counted.
    router
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::http::record_requests,
        ))
        .with_state(state)
}

async fn request_timed_out(_: tower::BoxError) -> error::ApiError {
    error::ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "TIMEOUT",
        "the request took too long; retry later",
    )
}

async fn not_found() -> error::ApiError {
    error::ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "no such route",
    )
}
