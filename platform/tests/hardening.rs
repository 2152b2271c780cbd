//! Hardening over HTTP: security headers on every answer, CORS only for configured origins,
//! the body cap, the JSON nesting limit and the content type.

mod test_support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::{Backends, TestPlatform};

const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("cache-control", "no-store"),
];

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_no_cors_by_default() {
    let platform = TestPlatform::start(Backends::Embedded).await;
    let tenant = platform.create_tenant("Shared").await;
    let requests = [
        (
            "/api/v1/memories",
            Some(tenant.api_key.as_str()),
            StatusCode::OK,
        ),
        ("/api/v1/memories", None, StatusCode::UNAUTHORIZED),
        (
            "/api/v1/admin/tenants",
            Some(tenant.api_key.as_str()),
            StatusCode::FORBIDDEN,
        ),
        ("/no/such/route", None, StatusCode::NOT_FOUND),
        ("/api/v1/openapi.json", None, StatusCode::OK),
        ("/healthz", None, StatusCode::OK),
    ];
    for (path, key, status) in requests {
        let mut request = platform
            .client
            .get(format!("{}{path}", platform.base_url))
            .header("origin", "https://evil.example");
        if let Some(key) = key {
            request = request.header("X-API-Key", key);
        }
        let response = request.send().await.expect("sent");
        assert_eq!(response.status(), status, "{path}");
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(
                response.headers().get(name).and_then(|v| v.to_str().ok()),
                Some(value),
                "{name} on {path}"
            );
        }
        assert!(
            response
                .headers()
                .get("strict-transport-security")
                .is_some(),
            "{path}"
        );
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "CORS by default on {path}"
        );
    }
    platform.shutdown().await;
}

#[tokio::test]
async fn cors_answers_only_the_configured_origins() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_support::test_config(Backends::Embedded, data_dir.path().to_path_buf());
    config.security.cors_allowed_origins = vec!["https://console.example".to_string()];
    let platform = TestPlatform::start_with(config, data_dir).await;
    for (origin, allowed) in [
        ("https://console.example", true),
        ("https://evil.example", false),
    ] {
        let preflight = platform
            .client
            .request(
                Method::OPTIONS,
                format!("{}/api/v1/memories", platform.base_url),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "x-api-key, content-type")
            .send()
            .await
            .expect("sent");
        let allow_origin = preflight
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if allowed {
            assert_eq!(allow_origin.as_deref(), Some(origin));
            let methods = preflight.headers()["access-control-allow-methods"]
                .to_str()
                .unwrap_or_default()
                .to_string();
            assert!(methods.contains("POST"), "{methods}");
        } else {
            assert_eq!(allow_origin, None, "{origin} was allowed");
        }
    }
    platform.shutdown().await;
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!({ "n": inner }))
}

#[tokio::test]
async fn bodies_are_capped_in_size_depth_and_type() {
    let platform = TestPlatform::start(Backends::Embedded).await;
    let tenant = platform.create_tenant("Shared").await;
    let key = Some(tenant.api_key.as_str());
    // Every JSON route shares the cap, not only memories.
    let (status, body) = platform
        .call(
            Method::POST,
            "/api/v1/keys",
            key,
            Some(json!({"name": "x".repeat(300_000), "role": "reader"})),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error_code"], "PAYLOAD_TOO_LARGE");

    let (status, body) = platform
        .call(
            Method::POST,
            "/api/v1/memories",
            key,
            Some(json!({"content": "deep", "metadata": nested(40)})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["context"]["max_depth"], 32);
    let raw_deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let response = platform
        .client
        .post(format!("{}/api/v1/memories", platform.base_url))
        .header("X-API-Key", tenant.api_key.as_str())
        .header("content-type", "application/json")
        .body(raw_deep)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let shallow = platform
        .create_memory(
            &tenant.api_key,
            json!({"content": "shallow enough", "metadata": nested(10)}),
        )
        .await;
    assert_eq!(shallow["metadata"], nested(10));

    // A known path with a method it does not have: 405 with Allow, whoever asks.
    for key in [Some(tenant.api_key.as_str()), None] {
        let (status, body) = platform
            .call(Method::PUT, "/api/v1/keys", key, Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    }
    let response = platform
        .client
        .request(
            Method::TRACE,
            format!("{}/api/v1/memories", platform.base_url),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET, POST");

    let response = platform
        .client
        .post(format!("{}/api/v1/memories", platform.base_url))
        .header("X-API-Key", tenant.api_key.as_str())
        .header("content-type", "text/plain")
        .body(r#"{"content": "x"}"#)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    platform.shutdown().await;
}

#[tokio::test]
async fn nul_characters_are_refused_and_nothing_is_stored_in_postgres() {
    // PostgreSQL cannot hold U+0000 in text: the refusal must come before the database.
    let platform = TestPlatform::start(Backends::PostgresMilvus).await;
    let tenant = platform.create_tenant("Shared").await;
    let key = Some(tenant.api_key.as_str());
    for body in [
        json!({"content": "before\u{0}after"}),
        json!({"content": "fine", "metadata": {"k": "v\u{0}"}}),
        json!({"content": "fine", "metadata": {"k\u{0}": 1}}),
    ] {
        let (status, answer) = platform
            .call(Method::POST, "/api/v1/memories", key, Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error_code"], "MALFORMED_REQUEST");
    }
    for query in ["query=a%00b", "mode=exact&query=%00", "metadata_key=k%00"] {
        let (status, answer) = platform
            .call(Method::GET, &format!("/api/v1/memories?{query}"), key, None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
        assert_eq!(answer["error_code"], "MALFORMED_REQUEST");
    }
    // An escaped backslash before "u0000" is ordinary text and is kept as written.
    let kept = platform
        .create_memory(&tenant.api_key, json!({"content": "path C:\\u0000x"}))
        .await;
    assert_eq!(kept["content"], "path C:\\u0000x");
    let (status, listed) = platform
        .call(Method::GET, "/api/v1/memories", key, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["results"].as_array().map(Vec::len), Some(1));
    platform.shutdown().await;
}
