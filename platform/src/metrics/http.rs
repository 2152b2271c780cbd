//! Every answered request, counted by matched route, method and status and timed by route and
//! method. The middleware sits outside the guard, the timeout and the fallback, so refusals,
//! timeouts and unknown paths are counted too.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::PlatformMetrics;
use super::labels::{RequestLabels, RouteLabels};

/// Route label of requests no route matched (404 fallbacks): raw paths would let any client
/// create series without bound.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Method label of methods outside the standard set, for the same reason.
pub const OTHER_METHOD: &str = "OTHER";

impl PlatformMetrics {
    /// Counts one answered request and observes its duration. `route` is a route template
    /// (`/api/v1/memories/{id}`) or [`UNMATCHED_ROUTE`].
    pub fn record_request(
        &self,
        route: &str,
        method: &Method,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        self.families
            .http_requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status: status.as_str().to_string(),
            })
            .inc();
        self.families
            .http_duration
            .get_or_create(&RouteLabels {
                route: route.to_string(),
                method: method.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

/// The middleware: `axum::middleware::from_fn_with_state(metrics, record_requests)`.
pub async fn record_requests(
    State(metrics): State<PlatformMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_string();
    let method = request.method().clone();
    let response = next.run(request).await;
    metrics.record_request(&route, &method, response.status(), started.elapsed());
    response
}

fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::CONNECT,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or(OTHER_METHOD, |known| known.as_str())
}

#[cfg(test)]
mod tests {
    use memoryc_crds::contract::platform_metrics::{HTTP_REQUEST_DURATION, HTTP_REQUESTS};

    use super::super::test_support::sample;
    use super::*;

    #[test]
    fn counts_by_route_method_and_status_and_times_by_route_and_method() {
        let metrics = PlatformMetrics::new();
        let route = "/api/v1/memories/{id}";
        metrics.record_request(
            route,
            &Method::GET,
            StatusCode::OK,
            Duration::from_millis(3),
        );
        metrics.record_request(
            route,
            &Method::GET,
            StatusCode::OK,
            Duration::from_millis(40),
        );
        metrics.record_request(
            route,
            &Method::GET,
            StatusCode::NOT_FOUND,
            Duration::from_millis(2),
        );
        let text = metrics.render().expect("renders");
        let ok = [("route", route), ("method", "GET"), ("status", "200")];
        let missing = [("route", route), ("method", "GET"), ("status", "404")];
        assert_eq!(sample(&text, HTTP_REQUESTS, &ok), Some(2.0), "{text}");
        assert_eq!(sample(&text, HTTP_REQUESTS, &missing), Some(1.0));
        let count = format!("{HTTP_REQUEST_DURATION}_count");
        let by_route = [("route", route), ("method", "GET")];
        assert_eq!(sample(&text, &count, &by_route), Some(3.0));
        let bucket = format!("{HTTP_REQUEST_DURATION}_bucket");
        let fast = [("le", "0.005"), ("route", route), ("method", "GET")];
        assert_eq!(sample(&text, &bucket, &fast), Some(2.0), "{text}");
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let custom = Method::from_bytes(b"BREW").expect("a valid token");
        assert_eq!(method_label(&custom), OTHER_METHOD);
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }
}
