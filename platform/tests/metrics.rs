//! `/metrics` over HTTP: requests move exactly the counters they should, labelled by the matched
//! route template (never the raw path), histograms carry buckets, the inventory gauges follow
//! the stores, and a configured metrics token guards both metric paths.

mod test_support;

use std::collections::BTreeMap;
use std::time::Duration;

use memoryc_crds::contract::platform_metrics as names;
use memoryc_platform::auth::secret::Secret;
use reqwest::{Method, StatusCode};
use serde_json::json;
use test_support::{Backends, TestPlatform, eventually, test_config, unique};
use uuid::Uuid;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const METRICS_TOKEN: &str = "scrape-token-of-the-metrics-test";

/// One sample line of the exposition.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the sample lines of an OpenMetrics text; label values may hold `{`, `}` and escapes.
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| parse_line(line).unwrap_or_else(|| panic!("unparsable sample {line:?}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let consumed = loop {
            let (start, c) = chars.next()?;
            if c == '}' {
                break start + 1;
            }
            if c == ',' {
                continue;
            }
            let mut key = String::from(c);
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '\\' => value.push(chars.next()?.1),
                    '"' => break,
                    c => value.push(c),
                }
            }
            labels.insert(key, value);
        };
        rest = &inner[consumed..];
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// The value of the series `name{labels}` (labels in any order); `None` when absent.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == wanted)
        .map(|s| s.value)
}

/// How much a series grew between two scrapes (an absent series counts as 0).
fn delta(before: &[Sample], after: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    value(after, name, labels).unwrap_or(0.0) - value(before, name, labels).unwrap_or(0.0)
}

async fn scrape_at(platform: &TestPlatform, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = platform.client.get(format!("{}{path}", platform.base_url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("scrape sent")
}

/// Scrapes `/metrics` and checks the answer is the OpenMetrics exposition.
async fn scrape(platform: &TestPlatform, token: Option<&str>) -> Vec<Sample> {
    let response = scrape_at(platform, "/metrics", token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some(OPENMETRICS)
    );
    let text = response.text().await.expect("body");
    assert!(text.ends_with("# EOF\n"), "{text}");
    parse(&text)
}

fn requests(route: &str, method: &str, status: &str) -> [(&'static str, String); 3] {
    [
        ("route", route.to_string()),
        ("method", method.to_string()),
        ("status", status.to_string()),
    ]
}

fn as_refs<'a>(labels: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    labels.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn platform_with(token: Option<&str>) -> TestPlatform {
    platform_with_series(token, true).await
}

async fn platform_with_series(token: Option<&str>, tenant_series: bool) -> TestPlatform {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(Backends::Embedded, data_dir.path().to_path_buf());
    config.metrics.refresh = std::time::Duration::from_secs(1);
    config.metrics.token = token.map(Secret::new);
    config.metrics.tenant_series = tenant_series;
    TestPlatform::start_with(config, data_dir).await
}

/// Without a metrics token (and unless asked for), anyone may scrape, so no series names a
/// tenant; the platform-wide ones are there.
#[tokio::test]
async fn anonymous_metrics_name_no_tenant() {
    let platform = platform_with_series(None, false).await;
    let tenant = platform.create_tenant("Shared").await;
    platform
        .create_memory(
            &tenant.api_key,
            serde_json::json!({"content": "A memory to count."}),
        )
        .await;
    // Two refreshes' time.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let text = scrape_at(&platform, "/metrics", None)
        .await
        .text()
        .await
        .expect("body");
    assert!(!text.contains(&tenant.name), "a tenant's name is exposed");
    assert!(
        !text.contains("tenant=\""),
        "a series labelled with a tenant"
    );
    assert!(
        text.contains(names::OUTBOX_PENDING),
        "the platform-wide gauges stay"
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn requests_move_exactly_their_counters_labelled_by_route_template() {
    let platform = platform_with(None).await;
    let tenant = platform.create_tenant("Shared").await;
    let key = Some(tenant.api_key.as_str());
    let before = scrape(&platform, None).await;

    let content = format!(
        "Metrics probe {}: the deploy runbook lives in the wiki.",
        unique("")
    );
    let (status, created) = platform
        .call(
            Method::POST,
            "/api/v1/memories",
            key,
            Some(json!({"content": content, "category": "WORKFLOW"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let results = platform
        .search(&tenant.api_key, "query=deploy%20runbook")
        .await;
    assert!(!results.is_empty());
    let missing = Uuid::now_v7().to_string();
    let (status, _) = platform
        .call(
            Method::GET,
            &format!("/api/v1/memories/{missing}"),
            key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = platform
        .call(Method::GET, "/no/such/route-for-metrics", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = platform
        .call(Method::GET, "/api/v1/memories", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let after = scrape(&platform, None).await;
    let http = names::HTTP_REQUESTS;
    for (route, method, status) in [
        ("/api/v1/memories", "POST", "201"),
        ("/api/v1/memories", "GET", "200"),
        ("/api/v1/memories/{id}", "GET", "404"),
        ("unmatched", "GET", "404"),
        ("/api/v1/memories", "GET", "401"),
        // The first scrape is counted once it has been answered.
        ("/metrics", "GET", "200"),
    ] {
        let labels = requests(route, method, status);
        assert_eq!(
            delta(&before, &after, http, &as_refs(&labels)),
            1.0,
            "{method} {route} {status}"
        );
    }
    for sample in after.iter().filter(|s| s.name == http) {
        let route = &sample.labels["route"];
        assert!(
            !route.contains(&missing) && !route.contains("no/such"),
            "raw path in a route label: {route}"
        );
    }

    // Histograms: cumulative buckets up to +Inf, whose count equals `_count`.
    let duration = names::HTTP_REQUEST_DURATION;
    let create = [("route", "/api/v1/memories"), ("method", "POST")];
    let buckets: Vec<&Sample> = after
        .iter()
        .filter(|s| {
            s.name == format!("{duration}_bucket")
                && s.labels.get("route").map(String::as_str) == Some("/api/v1/memories")
                && s.labels.get("method").map(String::as_str) == Some("POST")
        })
        .collect();
    assert!(buckets.len() >= 10, "too few buckets: {buckets:?}");
    let bounds: Vec<f64> = buckets
        .iter()
        .map(|s| match s.labels["le"].as_str() {
            "+Inf" => f64::INFINITY,
            le => le.parse().expect("numeric le"),
        })
        .collect();
    assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{bounds:?}");
    assert_eq!(bounds.first(), Some(&0.001));
    assert_eq!(bounds.last(), Some(&f64::INFINITY));
    assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value));
    let count = value(&after, &format!("{duration}_count"), &create).expect("count");
    assert_eq!(buckets.last().map(|s| s.value), Some(count));
    assert_eq!(
        delta(&before, &after, &format!("{duration}_count"), &create),
        1.0
    );

    let searches = format!("{}_count", names::SEARCH_DURATION);
    assert_eq!(
        delta(&before, &after, &searches, &[("mode", "semantic")]),
        1.0
    );
    assert!(
        after
            .iter()
            .any(|s| s.name == format!("{}_bucket", names::SEARCH_DURATION))
    );
    // The new memory's text and the search query were new to the cache, so the model ran.
    assert!(delta(&before, &after, names::EMBEDDED_TEXTS, &[]) >= 2.0);
    let batches = format!("{}_count", names::EMBEDDING_DURATION);
    assert!(delta(&before, &after, &batches, &[]) >= 1.0);
    assert!(value(&after, names::OUTBOX_PENDING, &[]).is_some());

    // The gauge follows the store on the next refresh.
    let gauge = [("tenant", tenant.name.as_str())];
    let counted = eventually(Duration::from_secs(10), || async {
        value(&scrape(&platform, None).await, names::MEMORIES, &gauge) == Some(1.0)
    })
    .await;
    assert!(
        counted,
        "the memories gauge of {} never reached 1",
        tenant.name
    );

    // Both paths serve the same exposition.
    let response = scrape_at(&platform, "/api/v1/metrics", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("body");
    assert!(value(&parse(&text), names::MEMORIES, &gauge).is_some());
    platform.shutdown().await;
}

#[tokio::test]
async fn a_configured_token_guards_both_metric_paths() {
    let platform = platform_with(Some(METRICS_TOKEN)).await;
    let tenant = platform.create_tenant("Shared").await;
    for path in ["/metrics", "/api/v1/metrics"] {
        let refused = scrape_at(&platform, path, None).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            refused
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
        let wrong = scrape_at(&platform, path, Some("not-the-token")).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
        // A tenant credential is not a scrape credential.
        let (status, _) = platform
            .call(Method::GET, path, Some(&tenant.api_key), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        let allowed = scrape_at(&platform, path, Some(METRICS_TOKEN)).await;
        assert_eq!(allowed.status(), StatusCode::OK, "{path}");
    }
    let samples = scrape(&platform, Some(METRICS_TOKEN)).await;
    let refusals = requests("/api/v1/metrics", "GET", "401");
    assert_eq!(
        value(&samples, names::HTTP_REQUESTS, &as_refs(&refusals)),
        Some(3.0)
    );
    platform.shutdown().await;
}

#[test]
fn the_parser_reads_braces_inside_label_values() {
    let samples = parse(concat!(
        "# TYPE x counter\n",
        "x_total{route=\"/api/v1/memories/{id}\",method=\"GET\",status=\"404\"} 3\n",
        "y 1.5\n",
        "z{a=\"q\\\"uote\"} 2 1700000000\n",
    ));
    assert_eq!(
        value(
            &samples,
            "x_total",
            &[
                ("method", "GET"),
                ("route", "/api/v1/memories/{id}"),
                ("status", "404")
            ]
        ),
        Some(3.0)
    );
    assert_eq!(value(&samples, "y", &[]), Some(1.5));
    assert_eq!(value(&samples, "z", &[("a", "q\"uote")]), Some(2.0));
}

/// Events, the cache and analytics runs are counted too.
#[tokio::test]
async fn events_cache_and_analytics_runs_are_counted() {
    let platform = platform_with(None).await;
    let tenant = platform.create_tenant("Shared").await;
    let key = tenant.api_key.as_str();
    let before = scrape(&platform, None).await;
    let memory = platform
        .create_memory(
            key,
            json!({"content": "Metrics count what the platform does."}),
        )
        .await;
    let id = memory["memory_id"].as_str().expect("id").to_string();
    for _ in 0..2 {
        let (status, _) = platform
            .call(
                Method::GET,
                &format!("/api/v1/memories/{id}"),
                Some(key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = platform
        .call(Method::POST, "/api/v1/analytics/run", Some(key), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let created = [("event_type", "MEMORY_CREATED")];
    let processed = eventually(Duration::from_secs(20), || async {
        let now = scrape(&platform, None).await;
        delta(
            &before,
            &now,
            "memoryc_platform_events_processed_total",
            &created,
        ) >= 1.0
    })
    .await;
    assert!(processed, "the consumer's work is counted");
    let after = scrape(&platform, None).await;
    assert_eq!(
        delta(
            &before,
            &after,
            "memoryc_platform_events_published_total",
            &created
        ),
        1.0
    );
    assert_eq!(
        delta(
            &before,
            &after,
            "memoryc_platform_events_published_total",
            &[("event_type", "MEMORY_ACCESSED")]
        ),
        2.0
    );
    assert!(
        value(&after, "memoryc_platform_event_lag_seconds_count", &[]).is_some_and(|n| n >= 1.0)
    );
    // The second read of the memory was served from the cache.
    assert_eq!(
        delta(
            &before,
            &after,
            "memoryc_platform_cache_requests_total",
            &[("cache", "memory"), ("result", "hit")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            &before,
            &after,
            "memoryc_platform_analytics_runs_total",
            &[("job", "on_demand"), ("outcome", "succeeded")]
        ),
        1.0
    );
    platform.shutdown().await;
}
