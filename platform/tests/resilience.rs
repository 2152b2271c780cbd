//! No lost writes: the vector store going away delays indexing but loses nothing, and the
//! relational store going away is reported as 503.

mod test_support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use memoryc_crds::layout::{Isolation, TenantName};
use memoryc_platform::stores::vector::milvus::MilvusVectorStore;
use memoryc_platform::stores::vector::{VectorSpace, VectorStore};
use reqwest::{Method, StatusCode};
use serde_json::json;
use test_support::proxy::SwitchableProxy;
use test_support::{Backends, TestPlatform, eventually};

fn socket_of(url: &str) -> SocketAddr {
    let host_port = url
        .trim_start_matches("http://")
        .trim_start_matches("postgres://");
    let host_port = host_port.rsplit('@').next().unwrap_or(host_port);
    let host_port = host_port.split('/').next().unwrap_or(host_port);
    host_port.parse().expect("host:port of a local backend")
}

#[tokio::test]
async fn memories_written_while_milvus_is_down_become_searchable_once_it_returns() {
    let proxy = SwitchableProxy::start(socket_of(&test_support::milvus_url())).await;
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config =
        test_support::test_config(Backends::PostgresMilvus, data_dir.path().to_path_buf());
    config.storage.milvus_url = format!("http://{}", proxy.address);
    let platform = TestPlatform::start_with(config, data_dir).await;
    let tenant = platform.create_tenant("Dedicated").await;
    let key = tenant.api_key.as_str();
    let before = platform
        .create_memory(key, json!({"content": "Indexed before the outage."}))
        .await;
    assert_eq!(before["indexing"], "indexed");

    proxy.disable();
    let mut written = HashSet::new();
    for i in 0..8 {
        let memory = platform
            .create_memory(
                key,
                json!({"content": format!("Outage note {i}: the vector store was unreachable.")}),
            )
            .await;
        assert_eq!(memory["indexing"], "pending", "{memory}");
        written.insert(memory["memory_id"].as_str().expect("id").to_string());
    }
    let (status, health) = platform
        .call(Method::GET, "/api/v1/monitoring/health", None, None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health["vector"]["status"], "down");
    assert_eq!(health["relational"]["status"], "up");
    assert!(
        health["outbox_backlog"].as_u64().is_some_and(|n| n >= 8),
        "{health}"
    );
    // The rows are there already: listing and exact search do not need vectors.
    assert_eq!(platform.search(key, "limit=100").await.len(), 9);

    proxy.enable();
    let searchable = eventually(Duration::from_secs(60), || async {
        let results = platform
            .search(key, "query=outage%20note%20vector%20store&limit=100")
            .await;
        let found: HashSet<String> = results
            .iter()
            .filter_map(|r| r["memory_id"].as_str().map(String::from))
            .collect();
        written.is_subset(&found)
    })
    .await;
    assert!(
        searchable,
        "every memory written during the outage becomes searchable"
    );
    let (_, health) = platform
        .call(Method::GET, "/api/v1/monitoring/health", None, None)
        .await;
    assert_eq!(health["outbox_backlog"], 0, "{health}");

    // Exactly one vector per memory: none lost, none duplicated.
    let milvus = MilvusVectorStore::connect(&test_support::milvus_url()).expect("milvus");
    let space = VectorSpace {
        tenant: TenantName::parse(&tenant.name).expect("name"),
        isolation: Isolation::Dedicated,
    };
    assert_eq!(milvus.count(&space).await.expect("count"), 9);
    milvus.drop_space(&space).await.expect("drop");
    platform.shutdown().await;
}

#[tokio::test]
async fn a_postgres_outage_answers_503_and_recovers() {
    let proxy = SwitchableProxy::start(socket_of(&test_support::postgres_url())).await;
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config =
        test_support::test_config(Backends::PostgresMilvus, data_dir.path().to_path_buf());
    let database = test_support::postgres_url();
    let database = database
        .rsplit('/')
        .next()
        .unwrap_or("postgres")
        .to_string();
    config.storage.database_url = format!("postgres://postgres@{}/{database}", proxy.address);
    config.storage.database_acquire_timeout = std::time::Duration::from_secs(1);
    let platform = TestPlatform::start_with(config, data_dir).await;
    let tenant = platform.create_tenant("Shared").await;
    let key = tenant.api_key.as_str();
    platform
        .create_memory(key, json!({"content": "Written while PostgreSQL is up."}))
        .await;

    proxy.disable();
    let (status, error) = platform
        .call(
            Method::POST,
            "/api/v1/memories",
            Some(key),
            Some(json!({"content": "Refused during the outage."})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{error}");
    assert_eq!(error["error_code"], "BACKEND_UNAVAILABLE");
    let (status, health) = platform
        .call(Method::GET, "/api/v1/monitoring/health", None, None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health["relational"]["status"], "down");
    // The public answer gives a reference into the log, never the backend's own words.
    let detail = health["relational"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("unreachable; see the platform log for reference")
            || detail == "timed out",
        "{health}"
    );
    assert!(!error.to_string().contains("127.0.0.1"), "{error}");

    proxy.enable();
    let recovered = eventually(Duration::from_secs(30), || async {
        platform
            .call(
                Method::POST,
                "/api/v1/memories",
                Some(key),
                Some(json!({"content": "Written after the outage."})),
            )
            .await
            .0
            == StatusCode::CREATED
    })
    .await;
    assert!(recovered, "writes succeed again once PostgreSQL is back");
    let all = platform.search(key, "limit=100").await;
    assert!(
        all.iter()
            .all(|m| m["content"] != "Refused during the outage.")
    );
    platform.shutdown().await;
}
