//! Rate limits over HTTP: per credential and route, 429 with `Retry-After`, per-tenant limits
//! set by operators, counted in process on embedded defaults and in the real Redis shared by
//! two replicas.

mod test_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::json;
use test_support::{Backends, Caller, TestPlatform, platform_admin_token};

fn redis_url() -> String {
    std::env::var("MEMORYC_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
}

/// Limits count per minute; start a burst early in a minute so it stays inside one window.
async fn at_start_of_a_window() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let into_minute = now.as_millis() % 60_000;
    if into_minute > 45_000 {
        tokio::time::sleep(Duration::from_millis(
            u64::try_from(60_100 - into_minute).unwrap_or(0),
        ))
        .await;
    }
}

async fn get(platform: &TestPlatform, key: &str, path: &str) -> reqwest::Response {
    platform
        .client
        .get(format!("{}{path}", platform.base_url))
        .header("X-API-Key", key)
        .send()
        .await
        .expect("sent")
}

async fn start(backends: Backends, per_minute: u32, redis: bool) -> TestPlatform {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_support::test_config(backends, data_dir.path().to_path_buf());
    config.limits.rate_limit_per_minute = per_minute;
    if redis {
        config.storage.redis_url = Some(redis_url());
    }
    TestPlatform::start_with(config, data_dir).await
}

#[tokio::test]
async fn each_credential_and_route_has_its_own_budget_in_process() {
    let platform = start(Backends::Embedded, 3, false).await;
    let tenant = platform.create_tenant("Shared").await;
    let admin = tenant.api_key.as_str();
    let service = platform.issue_key(admin, "service").await;
    at_start_of_a_window().await;
    for remaining in ["2", "1", "0"] {
        let response = get(&platform, &service.api_key, "/api/v1/memories").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-ratelimit-limit"], "3");
        assert_eq!(response.headers()["x-ratelimit-remaining"], remaining);
    }
    let refused = get(&platform, &service.api_key, "/api/v1/memories").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(body["error_code"], "RATE_LIMITED");
    assert_eq!(body["context"]["limit"], 3);
    // Another route and another credential have their own budgets.
    assert_eq!(
        get(
            &platform,
            &service.api_key,
            &format!("/api/v1/memories/{}", uuid::Uuid::new_v4())
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&platform, admin, "/api/v1/memories").await.status(),
        StatusCode::OK
    );
    // The refusal is audited.
    let (_, audit) = platform
        .call(Method::GET, "/api/v1/audit", Some(admin), None)
        .await;
    assert!(
        audit["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["outcome"] == "rate_limited"
                && e["status"] == 429
                && e["subject"] == format!("key:{}", service.prefix)),
        "{audit}"
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn operators_set_a_tenants_own_limit() {
    let platform = start(Backends::Embedded, 3, false).await;
    let strict = platform.create_tenant("Shared").await;
    let relaxed = platform.create_tenant("Shared").await;
    let operator = Caller::Bearer(platform_admin_token());
    let path = format!("/api/v1/admin/tenants/{}/rate-limit", strict.name);
    let (status, info) = platform.call_as(&operator, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["per_minute"], 3);
    assert_eq!(info["tenant_override"], serde_json::Value::Null);
    let (status, info) = platform
        .call_as(
            &operator,
            Method::PUT,
            &path,
            Some(json!({"per_minute": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["per_minute"], 1);
    // Each operator credential has its own budget of 3 on this route; use fresh ones.
    let fresh_operator = |n: u32| {
        Caller::Bearer(test_support::hs256_token(
            json!({"sub": format!("operator-{n}"), "roles": ["platform-admin"]}),
        ))
    };
    for (n, bad) in [
        json!({"per_minute": 0}),
        json!({"per_minute": 2_000_000}),
        json!({"per_minute": "many"}),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, _) = platform
            .call_as(
                &fresh_operator(n as u32 + 10),
                Method::PUT,
                &path,
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let (status, _) = platform
        .call_as(
            &fresh_operator(20),
            Method::PUT,
            "/api/v1/admin/tenants/no-such-tenant/rate-limit",
            Some(json!({"per_minute": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    at_start_of_a_window().await;
    assert_eq!(
        get(&platform, &strict.api_key, "/api/v1/memories")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&platform, &strict.api_key, "/api/v1/memories")
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    for _ in 0..3 {
        assert_eq!(
            get(&platform, &relaxed.api_key, "/api/v1/memories")
                .await
                .status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        get(&platform, &relaxed.api_key, "/api/v1/memories")
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Back to the default.
    let (_, info) = platform
        .call_as(
            &operator,
            Method::PUT,
            &path,
            Some(json!({"per_minute": null})),
        )
        .await;
    assert_eq!(info["per_minute"], 3);
    platform.shutdown().await;
}

#[tokio::test]
async fn replicas_share_the_budget_through_redis() {
    let first = start(Backends::PostgresMilvus, 4, true).await;
    // A second replica on the same databases and the same Redis.
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = first.config.clone();
    config.server.data_dir = data_dir.path().to_path_buf();
    let second = TestPlatform::start_with(config, data_dir).await;
    let tenant = first.create_tenant("Shared").await;
    at_start_of_a_window().await;
    let replicas = [&first, &second, &first, &second];
    for replica in replicas {
        assert_eq!(
            get(replica, &tenant.api_key, "/api/v1/memories")
                .await
                .status(),
            StatusCode::OK
        );
    }
    for replica in [&first, &second] {
        let refused = get(replica, &tenant.api_key, "/api/v1/memories").await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.headers().contains_key("retry-after"));
    }
    second.shutdown_keeping_data().await;
    first.shutdown().await;
}

#[tokio::test]
async fn a_wrong_redis_url_stops_the_start() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_support::test_config(Backends::Embedded, data_dir.path().to_path_buf());
    config.storage.redis_url = Some("redis://127.0.0.1:1".to_string());
    let result = memoryc_platform::app::Platform::build(config).await;
    assert!(
        result.is_err(),
        "a platform without its Redis must not start"
    );
}

/// A client address that keeps failing authentication is refused (429) before its credentials
/// are looked up, until the minute ends; only its first failure of the minute is audited. A
/// client behind a trusted proxy is told apart by `X-Forwarded-For`; anyone else's header is
/// ignored.
#[tokio::test]
async fn failed_authentications_lock_out_the_client_address() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_support::test_config(Backends::Embedded, data_dir.path().to_path_buf());
    config.limits.auth_failures_per_minute = 3;
    config.security.trusted_proxies = vec!["127.0.0.1".to_string()];
    let platform = TestPlatform::start_with(config, data_dir).await;
    let tenant = platform.create_tenant("Shared").await;
    at_start_of_a_window().await;
    let attempt = |key: &'static str, forwarded: &'static str| {
        let platform = &platform;
        async move {
            platform
                .client
                .get(format!("{}/api/v1/memories", platform.base_url))
                .header("X-API-Key", key)
                .header("X-Forwarded-For", forwarded)
                .send()
                .await
                .expect("sent")
                .status()
        }
    };
    let bad = "mck_000000000000_00000000000000000000000000000000";
    for _ in 0..3 {
        assert_eq!(attempt(bad, "198.51.100.7").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        attempt(bad, "198.51.100.7").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Locked out: even a good key from that address waits for the next minute.
    let good: &'static str = Box::leak(tenant.api_key.clone().into_boxed_str());
    let response = platform
        .client
        .get(format!("{}/api/v1/memories", platform.base_url))
        .header("X-API-Key", good)
        .header("X-Forwarded-For", "198.51.100.7")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    // Another client behind the same proxy is not held back.
    assert_eq!(attempt(good, "198.51.100.8").await, StatusCode::OK);
    // One audit entry for the address's failures of the minute, not one per request.
    let count = || async {
        use sea_orm::{ConnectionTrait, DbBackend, Statement};
        platform
            .databases()
            .await
            .control()
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT count(*) FROM audit_log WHERE outcome = 'unauthenticated'".to_string(),
            ))
            .await
            .expect("count")
            .expect("row")
            .try_get_by_index::<i64>(0)
            .expect("number")
    };
    assert!(
        test_support::eventually(Duration::from_secs(10), || async { count().await >= 1 }).await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count().await, 1);
    platform.shutdown().await;
}

/// All of a tenant's credentials together stay within the tenant-wide bucket (here twice the
/// per-credential limit), so minting keys does not multiply its limit.
#[tokio::test]
async fn minting_keys_does_not_multiply_a_tenants_limit() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_support::test_config(Backends::Embedded, data_dir.path().to_path_buf());
    config.limits.rate_limit_per_minute = 50;
    config.limits.rate_limit_tenant_multiple = 2;
    let platform = TestPlatform::start_with(config, data_dir).await;
    let tenant = platform.create_tenant("Shared").await;
    let mut keys = Vec::new();
    for _ in 0..3 {
        keys.push(platform.issue_key(&tenant.api_key, "service").await.api_key);
    }
    // The tenant's own limit: 2 per credential, so 4 for the whole tenant.
    let (status, info) = platform
        .call_as(
            &Caller::Bearer(platform_admin_token()),
            Method::PUT,
            &format!("/api/v1/admin/tenants/{}/rate-limit", tenant.name),
            Some(json!({"per_minute": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    at_start_of_a_window().await;
    let mut statuses = Vec::new();
    for key in &keys {
        for _ in 0..2 {
            statuses.push(get(&platform, key, "/api/v1/memories").await.status());
        }
    }
    let allowed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((allowed, limited), (4, 2), "{statuses:?}");
    // Another tenant has a bucket of its own.
    let other = platform.create_tenant("Shared").await;
    let key = platform.issue_key(&other.api_key, "service").await.api_key;
    assert_eq!(
        get(&platform, &key, "/api/v1/memories").await.status(),
        StatusCode::OK
    );
    platform.shutdown().await;
}

/// A tenant's burst limit (`spec.rateLimits.burst`, written to its settings by the operator)
/// caps one credential's requests per second on a route, below its per-minute limit.
#[tokio::test]
async fn a_tenants_burst_limit_caps_requests_per_second() {
    use memoryc_crds::layout::TenantName;
    use memoryc_platform::stores::relational::entities::tenant_setting;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};

    let platform = start(Backends::Embedded, 100, false).await;
    let tenant = platform.create_tenant("Shared").await;
    let registered = platform
        .state
        .tenants
        .find(&TenantName::parse(&tenant.name).expect("name"))
        .await
        .expect("lookup")
        .expect("tenant");
    tenant_setting::ActiveModel {
        tenant_id: Set(registered.tenant_id),
        rate_limit_burst: Set(Some(2)),
        updated_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(platform.databases().await.control())
    .await
    .expect("settings");
    at_start_of_a_window().await;
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    let mut refusal = None;
    for _ in 0..5 {
        let response = get(&platform, &tenant.api_key, "/api/v1/memories").await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS && refusal.is_none() {
            refusal = Some(response.json::<serde_json::Value>().await.expect("json"));
        }
    }
    // Five requests within a second span at most two one-second windows of two each.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the burst took too long"
    );
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_eq!(statuses[0], StatusCode::OK);
    // The refusal names the burst: two requests per one-second window.
    let refusal = refusal.expect("a 429 body");
    assert_eq!(refusal["context"]["limit"], 2, "{refusal}");
    assert_eq!(refusal["context"]["window_seconds"], 1, "{refusal}");
    platform.shutdown().await;
}
