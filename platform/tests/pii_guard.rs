//! The PII guard over HTTP: each tenant chooses allow, mask or reject; detected kinds are
//! masked or reported, ordinary notes pass untouched, and one tenant's choice is its own.

mod test_support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use test_support::{Backends, TestPlatform};

const SENSITIVE: &str = "Refund jane.doe@example.com to card 4111 1111 1111 1111, \
    IBAN DE89 3704 0044 0532 0130 00; call +1 (555) 123-4567; key AKIAIOSFODNN7EXAMPLE.";
const ORDINARY: &str = "The 2026-11-24 release of build 20261124 moved port 8080 to PostgreSQL 16.";

async fn set_policy(platform: &TestPlatform, key: &str, policy: &str) {
    let (status, body) = platform
        .call(
            Method::PUT,
            "/api/v1/settings/pii-policy",
            Some(key),
            Some(json!({"policy": policy})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, read) = platform
        .call(Method::GET, "/api/v1/settings/pii-policy", Some(key), None)
        .await;
    assert_eq!(read["policy"], policy);
}

#[tokio::test]
async fn each_tenant_allows_masks_or_rejects_sensitive_content() {
    let platform = TestPlatform::start(Backends::Embedded).await;
    let tenant = platform.create_tenant("Shared").await;
    let other = platform.create_tenant("Shared").await;
    let key = tenant.api_key.as_str();

    // Masking is the default.
    let (_, policy) = platform
        .call(Method::GET, "/api/v1/settings/pii-policy", Some(key), None)
        .await;
    assert_eq!(policy["policy"], "mask");
    let masked = platform
        .create_memory(key, json!({"content": SENSITIVE}))
        .await;
    assert_eq!(
        masked["content"],
        "Refund [EMAIL] to card [CARD_NUMBER], IBAN [IBAN]; call [PHONE]; key [SECRET]."
    );
    let id = masked["memory_id"].as_str().expect("id");
    let (_, stored) = platform
        .call(
            Method::GET,
            &format!("/api/v1/memories/{id}"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(
        stored["content"], masked["content"],
        "the stored row is masked too"
    );
    let ordinary = platform
        .create_memory(key, json!({"content": ORDINARY}))
        .await;
    assert_eq!(
        ordinary["content"], ORDINARY,
        "ordinary notes pass untouched"
    );

    // Reject: 422 with the kinds found, for new content and for changes.
    set_policy(&platform, key, "reject").await;
    let (status, error) = platform
        .call(
            Method::POST,
            "/api/v1/memories",
            Some(key),
            Some(json!({"content": SENSITIVE})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error_code"], "PII_DETECTED");
    assert_eq!(
        error["context"]["kinds"],
        json!(["email", "phone", "card_number", "iban", "secret"])
    );
    assert!(
        !error.to_string().contains("jane.doe"),
        "the error repeats the data: {error}"
    );
    let path = format!(
        "/api/v1/memories/{}",
        ordinary["memory_id"].as_str().expect("id")
    );
    let (status, error) = platform
        .call(
            Method::PATCH,
            &path,
            Some(key),
            Some(json!({"content": "mail me: bob@example.org"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["context"]["kinds"], json!(["email"]));
    let (_, unchanged) = platform.call(Method::GET, &path, Some(key), None).await;
    assert_eq!(unchanged["content"], ORDINARY);
    platform
        .create_memory(key, json!({"content": ORDINARY}))
        .await;

    // Allow: stored as written.
    set_policy(&platform, key, "allow").await;
    let allowed = platform
        .create_memory(key, json!({"content": SENSITIVE}))
        .await;
    assert_eq!(allowed["content"], SENSITIVE);

    // Another tenant keeps the default.
    let theirs = platform
        .create_memory(&other.api_key, json!({"content": "ping ops@example.net"}))
        .await;
    assert_eq!(theirs["content"], "ping [EMAIL]");

    // Only valid policies, only tenant admins.
    let (status, _) = platform
        .call(
            Method::PUT,
            "/api/v1/settings/pii-policy",
            Some(key),
            Some(json!({"policy": "shred"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let service = platform.issue_key(key, "service").await;
    let (status, _) = platform
        .call(
            Method::PUT,
            "/api/v1/settings/pii-policy",
            Some(&service.api_key),
            Some(json!({"policy": "allow"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    platform.shutdown().await;
}

/// The policy reaches every string in a memory's metadata and the search queries kept in
/// events, not only the content.
#[tokio::test]
async fn metadata_and_stored_search_queries_follow_the_policy() {
    let platform = TestPlatform::start(Backends::Embedded).await;
    let masking = platform.create_tenant("Shared").await;
    set_policy(&platform, &masking.api_key, "mask").await;
    let memory = platform
        .create_memory(
            &masking.api_key,
            json!({"content": "A call about the refund.",
                   "metadata": {"contact": "jane.doe@example.com", "tags": ["vip", "+1 (555) 123-4567"], "count": 3}}),
        )
        .await;
    assert_eq!(memory["metadata"]["contact"], "[EMAIL]", "{memory}");
    assert_eq!(memory["metadata"]["tags"], json!(["vip", "[PHONE]"]));
    assert_eq!(memory["metadata"]["count"], 3);
    let id = memory["memory_id"].as_str().expect("id");
    let (status, patched) = platform
        .call(
            Method::PATCH,
            &format!("/api/v1/memories/{id}"),
            Some(&masking.api_key),
            Some(json!({"metadata": {"card": "4111 1111 1111 1111"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["metadata"]["card"], "[CARD_NUMBER]");
    platform
        .search(
            &masking.api_key,
            "query=refund%20for%20jane.doe%40example.com",
        )
        .await;
    let kept = test_support::eventually(std::time::Duration::from_secs(10), || async {
        let (_, events) = platform
            .call(
                Method::GET,
                "/api/v1/analytics/events?event_type=SEARCH_PERFORMED",
                Some(&masking.api_key),
                None,
            )
            .await;
        events["events"]
            .as_array()
            .and_then(|events| events.first())
            .and_then(|event| event["event_data"]["query"].as_str())
            .map(str::to_string)
            .is_some_and(|query| query == "refund for [EMAIL]")
    })
    .await;
    assert!(kept, "the stored query is masked");

    let rejecting = platform.create_tenant("Shared").await;
    set_policy(&platform, &rejecting.api_key, "reject").await;
    let (status, refused) = platform
        .call(
            Method::POST,
            "/api/v1/memories",
            Some(&rejecting.api_key),
            Some(
                json!({"content": "A plain note.", "metadata": {"owner": "jane.doe@example.com"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["context"]["field"], "metadata");
    assert_eq!(refused["context"]["kinds"], json!(["email"]));
    platform.shutdown().await;
}
