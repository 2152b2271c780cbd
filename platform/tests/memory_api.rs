//! The memory API end to end over HTTP, on the embedded defaults and on PostgreSQL + Milvus.

mod test_support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::{Backends, TestPlatform};

async fn with_platform(backends: Backends) -> (TestPlatform, test_support::TestTenant) {
    let platform = TestPlatform::start(backends).await;
    let tenant = platform.create_tenant("Shared").await;
    (platform, tenant)
}

fn ids(results: &[Value]) -> Vec<String> {
    results
        .iter()
        .map(|r| r["memory_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn stores_and_finds_memories_by_meaning(backends: Backends) {
    let (platform, tenant) = with_platform(backends).await;
    let key = tenant.api_key.as_str();
    let bread = platform
        .create_memory(
            key,
            json!({"content": "A man is eating a piece of bread.", "category": "PREFERENCE"}),
        )
        .await;
    assert_eq!(bread["category"], "PREFERENCE");
    assert_eq!(bread["confidence_score"], 1.0);
    assert_eq!(bread["indexing"], "indexed");
    assert_eq!(bread["access_count"], 0);
    assert_eq!(bread["is_deleted"], false);
    assert_eq!(bread["user_id"], tenant.user_id.to_string());
    let cheetah = platform
        .create_memory(
            key,
            json!({"content": "A cheetah is running behind its prey."}),
        )
        .await;
    let rust = platform
        .create_memory(key, json!({"content": "The service is written in Rust and uses PostgreSQL 16 for storage."}))
        .await;
    // Automatic categorisation sets a category and a confidence below certainty.
    let confidence = rust["confidence_score"].as_f64().expect("confidence");
    assert!(
        confidence > 0.0 && confidence < 1.0,
        "confidence {confidence}"
    );
    assert_eq!(rust["category"], "TECHNICAL");

    let results = platform
        .search(key, "query=A%20man%20is%20eating%20food.")
        .await;
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["memory_id"], bread["memory_id"]);
    let scores: Vec<f64> = results
        .iter()
        .map(|r| r["score"].as_f64().expect("score"))
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "ranked by score: {scores:?}"
    );
    assert!(scores[0] > 0.6, "related sentence scores high: {scores:?}");

    let results = platform
        .search(key, "query=which%20database%20do%20we%20use&limit=1")
        .await;
    assert_eq!(
        ids(&results),
        vec![rust["memory_id"].as_str().unwrap_or_default().to_string()]
    );

    // Exact mode matches text, case-insensitively; no query lists newest first.
    let exact = platform.search(key, "query=CHEETAH&mode=exact").await;
    assert_eq!(
        ids(&exact),
        vec![
            cheetah["memory_id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        ]
    );
    assert!(exact[0].get("score").is_none());
    let newest = platform.search(key, "").await;
    assert_eq!(newest[0]["memory_id"], rust["memory_id"]);
    assert_eq!(newest[2]["memory_id"], bread["memory_id"]);
    platform.shutdown().await;
}

/// The access count of a memory as stored, read without counting a read of its own.
async fn stored_access_count(platform: &TestPlatform, tenant: &str, id: &str) -> i64 {
    use memoryc_platform::stores::MemoryRepository;
    use memoryc_platform::stores::relational::memory_repository::SqlMemoryRepository;
    let memories = SqlMemoryRepository::new(platform.databases().await.clone());
    let name = memoryc_crds::layout::TenantName::parse(tenant).expect("tenant name");
    let id = uuid::Uuid::parse_str(id).expect("memory id");
    memories
        .find(&name, id)
        .await
        .expect("read")
        .expect("memory exists")
        .access_count
}

/// Search results count as accesses of the memories they return, written in the background
/// every `storage.access_flush`; counts still pending when the platform stops are written then.
async fn search_results_count_as_accesses(backends: Backends, flush_every_ms: u64) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_support::test_config(backends, data_dir.path().to_path_buf());
    config.storage.access_flush = std::time::Duration::from_millis(flush_every_ms);
    let mut platform = TestPlatform::start_with(config, data_dir).await;
    let tenant = platform.create_tenant("Shared").await;
    let key = tenant.api_key.as_str();
    let found = platform
        .create_memory(
            key,
            json!({"content": "The quarterly report is due on Friday."}),
        )
        .await;
    let found = found["memory_id"].as_str().expect("id").to_string();
    let other = platform
        .create_memory(
            key,
            json!({"content": "Bob waters the office plants on Mondays."}),
        )
        .await;
    let other = other["memory_id"].as_str().expect("id").to_string();
    // The second search is served from the cache and counts all the same.
    for _ in 0..3 {
        let results = platform.search(key, "query=quarterly&mode=exact").await;
        assert_eq!(ids(&results), vec![found.clone()]);
    }
    if flush_every_ms < 60_000 {
        let counted = test_support::eventually(std::time::Duration::from_secs(10), || async {
            stored_access_count(&platform, &tenant.name, &found).await == 3
        })
        .await;
        assert!(counted, "three searches were never counted");
    } else {
        assert_eq!(
            stored_access_count(&platform, &tenant.name, &found).await,
            0,
            "counts wait for the flush"
        );
        platform.stop_server().await;
        assert_eq!(
            stored_access_count(&platform, &tenant.name, &found).await,
            3,
            "counts pending at shutdown are written"
        );
    }
    assert_eq!(
        stored_access_count(&platform, &tenant.name, &other).await,
        0,
        "a memory no search returned is not counted"
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn search_results_count_as_accesses_embedded() {
    search_results_count_as_accesses(Backends::Embedded, 100).await;
}

#[tokio::test]
async fn search_results_count_as_accesses_postgres_milvus() {
    search_results_count_as_accesses(Backends::PostgresMilvus, 100).await;
}

#[tokio::test]
async fn access_counts_pending_at_shutdown_are_written_embedded() {
    search_results_count_as_accesses(Backends::Embedded, 3_600_000).await;
}

#[tokio::test]
async fn access_counts_pending_at_shutdown_are_written_postgres_milvus() {
    search_results_count_as_accesses(Backends::PostgresMilvus, 3_600_000).await;
}

test_support::on_each_backend!(stores_and_finds_memories_by_meaning);

async fn filters_narrow_searches(backends: Backends) {
    let (platform, tenant) = with_platform(backends).await;
    let key = tenant.api_key.as_str();
    let first = platform
        .create_memory(key, json!({"content": "Deploys go out on Fridays after the test suite passes.", "category": "WORKFLOW", "metadata": {"project": "apollo", "priority": 2}}))
        .await;
    let cutoff = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second = platform
        .create_memory(key, json!({"content": "Deploys of the billing service need a manual approval.", "category": "PROJECT", "metadata": {"project": "zeus", "priority": 2}}))
        .await;
    let id = |m: &Value| m["memory_id"].as_str().unwrap_or_default().to_string();
    for query in ["query=deploys&", ""] {
        let by_category = platform
            .search(key, &format!("{query}category=WORKFLOW"))
            .await;
        assert_eq!(ids(&by_category), vec![id(&first)], "{query}");
        let by_metadata = platform
            .search(
                key,
                &format!("{query}metadata_key=project&metadata_value=zeus"),
            )
            .await;
        assert_eq!(ids(&by_metadata), vec![id(&second)], "{query}");
        let by_number = platform
            .search(
                key,
                &format!("{query}metadata_key=priority&metadata_value=2"),
            )
            .await;
        assert_eq!(by_number.len(), 2, "{query}");
        let after = cutoff.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let recent = platform
            .search(
                key,
                &format!("{query}created_after={}", after.replace('+', "%2B")),
            )
            .await;
        assert_eq!(ids(&recent), vec![id(&second)], "{query}");
        let earlier = platform
            .search(
                key,
                &format!("{query}created_before={}", after.replace('+', "%2B")),
            )
            .await;
        assert_eq!(ids(&earlier), vec![id(&first)], "{query}");
        let by_user = platform
            .search(key, &format!("{query}user_id={}", tenant.user_id))
            .await;
        assert_eq!(by_user.len(), 2, "{query}");
        let other_user = platform
            .search(key, &format!("{query}user_id={}", uuid::Uuid::new_v4()))
            .await;
        assert!(other_user.is_empty(), "{query}");
    }
    platform.shutdown().await;
}

test_support::on_each_backend!(filters_narrow_searches);

async fn reads_updates_and_deletes(backends: Backends) {
    let (platform, tenant) = with_platform(backends).await;
    let key = tenant.api_key.as_str();
    let memory = platform
        .create_memory(
            key,
            json!({"content": "The team standup is at 9:30 every morning.", "metadata": {"a": 1}}),
        )
        .await;
    let id = memory["memory_id"].as_str().expect("id").to_string();
    let path = format!("/api/v1/memories/{id}");

    let (status, read) = platform.call(Method::GET, &path, Some(key), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["access_count"], 1);
    let (_, read) = platform.call(Method::GET, &path, Some(key), None).await;
    assert_eq!(read["access_count"], 2);

    // New content is embedded again: the memory is now found by its new meaning.
    let (status, updated) = platform
        .call(Method::PATCH, &path, Some(key), Some(json!({"content": "Kubernetes clusters are upgraded quarterly by the platform team.", "category": "WORKFLOW"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["category"], "WORKFLOW");
    assert_eq!(updated["metadata"], json!({"a": 1}));
    assert!(updated["updated_at"].as_str() > memory["updated_at"].as_str());
    platform
        .create_memory(
            key,
            json!({"content": "Lunch is served at noon in the cafeteria."}),
        )
        .await;
    let results = platform
        .search(key, "query=when%20do%20we%20upgrade%20k8s&limit=1")
        .await;
    assert_eq!(results[0]["memory_id"], id.as_str());

    // Soft delete: gone from reads and searches.
    let (status, _) = platform.call(Method::DELETE, &path, Some(key), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = platform.call(Method::GET, &path, Some(key), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error_code"], "NOT_FOUND");
    let results = platform.search(key, "query=kubernetes%20upgrades").await;
    assert!(!ids(&results).contains(&id));
    let (status, _) = platform.call(Method::DELETE, &path, Some(key), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "second soft delete");
    let (status, _) = platform
        .call(
            Method::PATCH,
            &path,
            Some(key),
            Some(json!({"content": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "patching a deleted memory");

    // Purge erases even a soft-deleted memory; after that nothing is left to purge.
    let (status, _) = platform
        .call(
            Method::DELETE,
            &format!("{path}?purge=true"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = platform
        .call(
            Method::DELETE,
            &format!("{path}?purge=true"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    platform.shutdown().await;
}

test_support::on_each_backend!(reads_updates_and_deletes);

async fn rejects_bad_input_with_structured_errors(backends: Backends) {
    let (platform, tenant) = with_platform(backends).await;
    let key = Some(tenant.api_key.as_str());
    let post = |body: Value| platform.call(Method::POST, "/api/v1/memories", key, Some(body));

    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"content": "   "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            json!({"content": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            json!({"content": "a".repeat(50_001)}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            json!({"content": "ok", "metadata": {"k": "x".repeat(5_000)}}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            json!({"content": "ok", "metadata": [1, 2]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            json!({"content": "ok", "category": "GOSSIP"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            json!({"text": "wrong field"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
        ),
        (
            json!({"content": "x".repeat(300_000)}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
    ];
    for (body, status, code) in cases {
        let (actual, error) = post(body.clone()).await;
        assert_eq!(actual, status, "{error}");
        assert_eq!(error["error_code"], code, "{error}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
        assert!(error["context"].is_object(), "{error}");
    }
    // The limits themselves are accepted.
    let at_limit = platform
        .create_memory(
            tenant.api_key.as_str(),
            json!({"content": "é".repeat(50_000), "metadata": {"k": "x".repeat(4_992)}}),
        )
        .await;
    assert_eq!(
        at_limit["content"].as_str().map(|c| c.chars().count()),
        Some(50_000)
    );
    let (status, error) = post(json!({"content": "a".repeat(50_001)})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error["context"]["limit"], 50_000);

    // Malformed JSON, bad ids, bad limits, unknown ids, missing and wrong keys.
    let response = platform
        .client
        .post(format!("{}/api/v1/memories", platform.base_url))
        .header("X-API-Key", tenant.api_key.as_str())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (status, _) = platform
        .call(Method::GET, "/api/v1/memories/not-a-uuid", key, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for limit in ["0", "101", "-1", "ten"] {
        let (status, body) = platform
            .call(
                Method::GET,
                &format!("/api/v1/memories?limit={limit}"),
                key,
                None,
            )
            .await;
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
            "limit {limit}: {status} {body}"
        );
    }
    let (status, body) = platform
        .call(Method::GET, "/api/v1/memories?limit=100", key, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let unknown = format!("/api/v1/memories/{}", uuid::Uuid::new_v4());
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({"content": "x"}));
        let (status, error) = platform.call(method.clone(), &unknown, key, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(error["error_code"], "NOT_FOUND");
    }
    for bad_key in [
        None,
        Some("nope"),
        Some("mck_000000000000_00000000000000000000000000000000"),
    ] {
        let (status, error) = platform
            .call(Method::GET, "/api/v1/memories", bad_key, None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(error["error_code"], "UNAUTHENTICATED");
    }
    // Nothing of the refused writes was stored.
    let all = platform.search(tenant.api_key.as_str(), "limit=100").await;
    assert_eq!(all.len(), 1);
    platform.shutdown().await;
}

test_support::on_each_backend!(rejects_bad_input_with_structured_errors);

async fn tenants_never_see_each_other(backends: Backends, isolation: &str) {
    let platform = TestPlatform::start(backends).await;
    let alice = platform.create_tenant(isolation).await;
    let bob = platform.create_tenant(isolation).await;
    let secret = platform
        .create_memory(&alice.api_key, json!({"content": "Alice's launch codes are kept in the blue folder.", "metadata": {"owner": "alice"}}))
        .await;
    platform
        .create_memory(
            &bob.api_key,
            json!({"content": "Bob waters the plants on Mondays."}),
        )
        .await;
    let id = secret["memory_id"].as_str().expect("id");
    let path = format!("/api/v1/memories/{id}");
    let bob_key = Some(bob.api_key.as_str());

    for query in [
        "query=launch%20codes%20blue%20folder",
        "query=launch&mode=exact",
        "",
        "metadata_key=owner&metadata_value=alice",
    ] {
        let results = platform.search(&bob.api_key, query).await;
        assert!(
            !ids(&results).contains(&id.to_string()),
            "bob found alice's memory via {query:?}"
        );
        assert!(
            results
                .iter()
                .all(|r| r["user_id"] == bob.user_id.to_string())
        );
    }
    let (status, _) = platform.call(Method::GET, &path, bob_key, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = platform
        .call(
            Method::PATCH,
            &path,
            bob_key,
            Some(json!({"content": "hacked"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = platform
        .call(Method::DELETE, &format!("{path}?purge=true"), bob_key, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Alice's memory is untouched.
    let (status, read) = platform
        .call(Method::GET, &path, Some(alice.api_key.as_str()), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        read["content"],
        "Alice's launch codes are kept in the blue folder."
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn tenants_never_see_each_other_embedded() {
    tenants_never_see_each_other(Backends::Embedded, "Shared").await;
}

#[tokio::test]
async fn tenants_never_see_each_other_postgres_milvus_shared() {
    tenants_never_see_each_other(Backends::PostgresMilvus, "Shared").await;
}

#[tokio::test]
async fn tenants_never_see_each_other_postgres_milvus_dedicated() {
    tenants_never_see_each_other(Backends::PostgresMilvus, "Dedicated").await;
}

#[tokio::test]
async fn health_and_openapi_describe_the_service() {
    let (platform, _tenant) = with_platform(Backends::Embedded).await;
    let (status, health) = platform
        .call(Method::GET, "/api/v1/monitoring/health", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["relational"]["backend"], "sqlite");
    assert_eq!(health["vector"]["backend"], "embedded");
    assert_eq!(health["embedding"]["status"], "up");
    assert_eq!(health["outbox_backlog"], 0);

    let (status, doc) = platform
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/api/v1/memories",
        "/api/v1/memories/{id}",
        "/api/v1/monitoring/health",
    ] {
        assert!(doc["paths"][path].is_object(), "missing {path}");
    }
    assert!(doc["paths"]["/api/v1/memories"]["post"]["responses"]["201"].is_object());
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    assert!(doc["components"]["schemas"]["Memory"]["properties"]["confidence_score"].is_object());
    platform.shutdown().await;
}
