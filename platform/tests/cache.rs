//! The read cache: a read after a write always sees the write (in process, in Redis, across
//! replicas sharing Redis), hits are really served from the cache yet still count accesses,
//! tenants never share entries, and Redis going away never fails a request.

mod test_support;

use std::net::SocketAddr;

use memoryc_platform::config::Config;
use memoryc_platform::services::cache::CacheStats;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::proxy::SwitchableProxy;
use test_support::{Backends, TestPlatform, unique};

fn redis_url() -> String {
    std::env::var("MEMORYC_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
}

fn redis_socket() -> SocketAddr {
    let url = redis_url();
    let host_port = url.trim_start_matches("redis://");
    let host_port = host_port.rsplit('@').next().unwrap_or(host_port);
    let host_port = host_port.split('/').next().unwrap_or(host_port);
    host_port.parse().expect("host:port of the test Redis")
}

/// Where a test platform caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CacheAt {
    InProcess,
    Redis,
}

fn config_with_cache(backends: Backends, cache: CacheAt, data_dir: &tempfile::TempDir) -> Config {
    let mut config = test_support::test_config(backends, data_dir.path().to_path_buf());
    if cache == CacheAt::Redis {
        config.storage.redis_url = Some(redis_url());
        // Its own key space, so tests running side by side never meet in Redis.
        config.cache.key_prefix = format!("{}:", unique("memoryc-test-cache-"));
    }
    config
}

async fn start(backends: Backends, cache: CacheAt) -> TestPlatform {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = config_with_cache(backends, cache, &data_dir);
    TestPlatform::start_with(config, data_dir).await
}

fn stats(platform: &TestPlatform) -> CacheStats {
    platform.state.cache.stats()
}

fn ids(results: &[Value]) -> Vec<String> {
    results
        .iter()
        .map(|r| r["memory_id"].as_str().expect("memory_id").to_string())
        .collect()
}

async fn get(platform: &TestPlatform, key: &str, id: &str) -> (StatusCode, Value) {
    platform
        .call(
            Method::GET,
            &format!("/api/v1/memories/{id}"),
            Some(key),
            None,
        )
        .await
}

async fn patch(platform: &TestPlatform, key: &str, id: &str, body: Value) {
    let (status, json) = platform
        .call(
            Method::PATCH,
            &format!("/api/v1/memories/{id}"),
            Some(key),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "update failed: {json}");
}

async fn delete(platform: &TestPlatform, key: &str, id: &str, purge: bool) {
    let (status, json) = platform
        .call(
            Method::DELETE,
            &format!("/api/v1/memories/{id}?purge={purge}"),
            Some(key),
            None,
        )
        .await;
    assert!(status.is_success(), "delete failed: {status} {json}");
}

/// Read, write, read again — for every kind of write — and the second read sees the write.
async fn reads_after_writes_see_the_writes(cache: CacheAt) {
    let platform = start(Backends::Embedded, cache).await;
    let tenant = platform.create_tenant("Shared").await;
    let key = tenant.api_key.as_str();
    let first = platform
        .create_memory(key, json!({"content": "Alpha deploys run on Fridays."}))
        .await;
    let first_id = first["memory_id"].as_str().expect("id").to_string();

    // Warm both kinds of entry, and make sure they are being served.
    for _ in 0..2 {
        assert_eq!(get(&platform, key, &first_id).await.0, StatusCode::OK);
        assert_eq!(
            ids(&platform.search(key, "query=alpha&mode=exact").await),
            vec![first_id.clone()]
        );
        assert_eq!(platform.search(key, "").await.len(), 1);
    }
    let warm = stats(&platform);
    assert!(warm.memory.hits >= 1 && warm.search.hits >= 2, "{warm:?}");

    // Update.
    patch(
        &platform,
        key,
        &first_id,
        json!({"content": "Beta deploys run on Mondays."}),
    )
    .await;
    let (status, read) = get(&platform, key, &first_id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["content"], "Beta deploys run on Mondays.");
    assert!(
        platform
            .search(key, "query=alpha&mode=exact")
            .await
            .is_empty()
    );
    assert_eq!(
        ids(&platform.search(key, "query=beta&mode=exact").await),
        vec![first_id.clone()]
    );
    let listed = platform.search(key, "").await;
    assert_eq!(listed[0]["content"], "Beta deploys run on Mondays.");

    // Create.
    let second = platform
        .create_memory(key, json!({"content": "Alpha rollbacks need a ticket."}))
        .await;
    let second_id = second["memory_id"].as_str().expect("id").to_string();
    assert_eq!(
        ids(&platform.search(key, "query=alpha&mode=exact").await),
        vec![second_id.clone()]
    );
    assert_eq!(platform.search(key, "").await.len(), 2);
    let semantic = platform
        .search(key, "query=rollbacks%20and%20tickets")
        .await;
    assert!(ids(&semantic).contains(&second_id));
    assert_eq!(get(&platform, key, &second_id).await.0, StatusCode::OK);

    // Soft delete.
    delete(&platform, key, &second_id, false).await;
    assert_eq!(
        get(&platform, key, &second_id).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(
        platform
            .search(key, "query=alpha&mode=exact")
            .await
            .is_empty()
    );
    assert!(
        !ids(&platform
            .search(key, "query=rollbacks%20and%20tickets")
            .await)
        .contains(&second_id)
    );
    assert_eq!(platform.search(key, "").await.len(), 1);

    // Purge.
    delete(&platform, key, &first_id, true).await;
    assert_eq!(
        get(&platform, key, &first_id).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(platform.search(key, "").await.is_empty());
    assert_eq!(stats(&platform).errors, 0);
    platform.shutdown().await;
}

#[tokio::test]
async fn in_process_reads_after_writes_see_the_writes() {
    reads_after_writes_see_the_writes(CacheAt::InProcess).await;
}

#[tokio::test]
async fn redis_reads_after_writes_see_the_writes() {
    reads_after_writes_see_the_writes(CacheAt::Redis).await;
}

/// Two replicas share one Redis and one database: what A cached is not served once B wrote.
#[tokio::test]
async fn replicas_sharing_redis_never_serve_what_another_changed() {
    let dir_a = tempfile::tempdir().expect("temp dir");
    let dir_b = tempfile::tempdir().expect("temp dir");
    let config_a = config_with_cache(Backends::PostgresMilvus, CacheAt::Redis, &dir_a);
    let mut config_b = config_a.clone();
    config_b.server.data_dir = dir_b.path().to_path_buf();
    let a = TestPlatform::start_with(config_a, dir_a).await;
    let b = TestPlatform::start_with(config_b, dir_b).await;
    let tenant = a.create_tenant("Shared").await;
    let key = tenant.api_key.as_str();

    let original = a
        .create_memory(
            key,
            json!({"content": "The original runbook for replicas."}),
        )
        .await;
    let id = original["memory_id"].as_str().expect("id").to_string();
    // A vector that lands later (a slow Milvus under load defers it to the outbox) rightly
    // invalidates the tenant when it lands; warm the cache only after that.
    let settled = test_support::eventually(std::time::Duration::from_secs(30), || async {
        let (_, health) = a
            .call(Method::GET, "/api/v1/monitoring/health", None, None)
            .await;
        health["outbox_backlog"] == 0
    })
    .await;
    assert!(settled, "the outbox never emptied");
    for _ in 0..2 {
        assert_eq!(
            ids(&a.search(key, "query=original&mode=exact").await),
            vec![id.clone()]
        );
        assert_eq!(get(&a, key, &id).await.0, StatusCode::OK);
        assert!(ids(&a.search(key, "query=runbook%20for%20replicas").await).contains(&id));
    }
    let warm = stats(&a);
    assert!(warm.search.hits >= 2 && warm.memory.hits >= 1, "{warm:?}");

    // B changes the memory: A reads the change.
    patch(
        &b,
        key,
        &id,
        json!({"content": "The revised runbook for replicas."}),
    )
    .await;
    assert!(a.search(key, "query=original&mode=exact").await.is_empty());
    assert_eq!(
        get(&a, key, &id).await.1["content"],
        "The revised runbook for replicas."
    );

    // B creates one: A finds it, by text and by meaning.
    let added = b
        .create_memory(
            key,
            json!({"content": "Another original note on replicas."}),
        )
        .await;
    let added_id = added["memory_id"].as_str().expect("id").to_string();
    assert_eq!(
        ids(&a.search(key, "query=original&mode=exact").await),
        vec![added_id.clone()]
    );
    assert!(ids(&a.search(key, "query=runbook%20for%20replicas").await).contains(&added_id));

    // B deletes both: A sees neither.
    delete(&b, key, &added_id, false).await;
    delete(&b, key, &id, true).await;
    assert!(a.search(key, "query=original&mode=exact").await.is_empty());
    assert_eq!(get(&a, key, &id).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&a, key, &added_id).await.0, StatusCode::NOT_FOUND);
    assert!(a.search(key, "").await.is_empty());
    assert_eq!(stats(&a).errors, 0);

    b.shutdown_keeping_data().await;
    a.shutdown().await;
}

/// A hit moves the counters and skips the read, but every GET still counts one access.
async fn hits_are_served_from_the_cache_and_still_count(cache: CacheAt) {
    let platform = start(Backends::Embedded, cache).await;
    let tenant = platform.create_tenant("Shared").await;
    let key = tenant.api_key.as_str();
    let created = platform
        .create_memory(key, json!({"content": "Counted on every read."}))
        .await;
    let id = created["memory_id"].as_str().expect("id").to_string();

    let before = stats(&platform);
    for expected in 1..=4 {
        let (status, read) = get(&platform, key, &id).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(read["access_count"], expected, "read {expected}: {read}");
    }
    let after = stats(&platform);
    assert_eq!(after.memory.misses - before.memory.misses, 1);
    assert_eq!(after.memory.hits - before.memory.hits, 3);

    let before = stats(&platform);
    platform.search(key, "query=counted&mode=exact").await;
    platform.search(key, "query=counted&mode=exact").await;
    let after = stats(&platform);
    assert_eq!(after.search.misses - before.search.misses, 1);
    assert_eq!(after.search.hits - before.search.hits, 1);

    // A write between reads: the next read misses and shows both the write and the count.
    patch(&platform, key, &id, json!({"metadata": {"seen": true}})).await;
    let before = stats(&platform);
    let (_, read) = get(&platform, key, &id).await;
    assert_eq!(read["metadata"]["seen"], true);
    assert!(read["access_count"].as_i64().expect("count") >= 5);
    assert_eq!(stats(&platform).memory.misses - before.memory.misses, 1);
    platform.shutdown().await;
}

#[tokio::test]
async fn in_process_hits_are_served_from_the_cache_and_still_count() {
    hits_are_served_from_the_cache_and_still_count(CacheAt::InProcess).await;
}

#[tokio::test]
async fn redis_hits_are_served_from_the_cache_and_still_count() {
    hits_are_served_from_the_cache_and_still_count(CacheAt::Redis).await;
}

/// Tenants sharing a cache never read each other's entries, and a member limited to its own
/// memories never reads an entry cached for its admin.
async fn tenants_and_members_never_share_entries(cache: CacheAt) {
    let platform = start(Backends::Embedded, cache).await;
    let first = platform.create_tenant("Shared").await;
    let second = platform.create_tenant("Shared").await;
    let mine = platform
        .create_memory(
            &first.api_key,
            json!({"content": "Isolation note of the first."}),
        )
        .await;
    let mine_id = mine["memory_id"].as_str().expect("id").to_string();
    for _ in 0..2 {
        assert_eq!(
            get(&platform, &first.api_key, &mine_id).await.0,
            StatusCode::OK
        );
        assert_eq!(
            platform
                .search(&first.api_key, "query=isolation&mode=exact")
                .await
                .len(),
            1
        );
        assert_eq!(platform.search(&first.api_key, "").await.len(), 1);
    }

    // The same requests from the other tenant never reach the first one's entries.
    assert_eq!(
        get(&platform, &second.api_key, &mine_id).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(
        platform
            .search(&second.api_key, "query=isolation&mode=exact")
            .await
            .is_empty()
    );
    assert!(platform.search(&second.api_key, "").await.is_empty());
    let theirs = platform
        .create_memory(
            &second.api_key,
            json!({"content": "Isolation note of the second."}),
        )
        .await;
    assert_eq!(
        ids(&platform
            .search(&second.api_key, "query=isolation&mode=exact")
            .await),
        vec![theirs["memory_id"].as_str().expect("id").to_string()]
    );
    assert_eq!(
        ids(&platform
            .search(&first.api_key, "query=isolation&mode=exact")
            .await),
        vec![mine_id.clone()]
    );

    // A member sees only its own memories, even where the admin's reads are cached.
    let member = platform.issue_key(&first.api_key, "member").await;
    assert!(
        platform
            .search(&member.api_key, "query=isolation&mode=exact")
            .await
            .is_empty()
    );
    assert!(platform.search(&member.api_key, "").await.is_empty());
    assert_eq!(
        get(&platform, &member.api_key, &mine_id).await.0,
        StatusCode::NOT_FOUND
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn in_process_tenants_and_members_never_share_entries() {
    tenants_and_members_never_share_entries(CacheAt::InProcess).await;
}

#[tokio::test]
async fn redis_tenants_and_members_never_share_entries() {
    tenants_and_members_never_share_entries(CacheAt::Redis).await;
}

/// Redis going away costs the cache, never a request; reads after writes stay fresh.
#[tokio::test]
async fn requests_succeed_while_redis_is_down() {
    let proxy = SwitchableProxy::start(redis_socket()).await;
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = config_with_cache(Backends::Embedded, CacheAt::Redis, &data_dir);
    config.storage.redis_url = Some(format!("redis://{}", proxy.address));
    let platform = TestPlatform::start_with(config, data_dir).await;
    let tenant = platform.create_tenant("Shared").await;
    let key = tenant.api_key.as_str();
    let created = platform
        .create_memory(key, json!({"content": "Written while Redis was up."}))
        .await;
    let id = created["memory_id"].as_str().expect("id").to_string();
    for _ in 0..2 {
        assert_eq!(get(&platform, key, &id).await.0, StatusCode::OK);
        platform.search(key, "query=redis&mode=exact").await;
    }
    assert!(stats(&platform).memory.hits >= 1);

    proxy.disable();
    let (status, read) = get(&platform, key, &id).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    // Two GETs before, plus the searches' own counted accesses.
    assert!(read["access_count"].as_i64().expect("count") >= 3, "{read}");
    assert_eq!(
        platform.search(key, "query=redis&mode=exact").await.len(),
        1
    );
    patch(
        &platform,
        key,
        &id,
        json!({"content": "Changed while Redis was down."}),
    )
    .await;
    assert_eq!(
        get(&platform, key, &id).await.1["content"],
        "Changed while Redis was down."
    );
    assert!(platform.search(key, "query=up&mode=exact").await.is_empty());
    let during = platform
        .create_memory(
            key,
            json!({"content": "Also written while Redis was down."}),
        )
        .await;
    assert_eq!(
        platform.search(key, "query=redis&mode=exact").await.len(),
        2
    );
    delete(
        &platform,
        key,
        during["memory_id"].as_str().expect("id"),
        false,
    )
    .await;
    let down = stats(&platform);
    assert!(down.errors > 0 && down.failed_invalidations > 0, "{down:?}");

    // Back up: what was cached before the outage is not served (the writes during it could
    // not invalidate it), and reads still see every write.
    proxy.enable();
    assert_eq!(
        get(&platform, key, &id).await.1["content"],
        "Changed while Redis was down."
    );
    assert_eq!(
        platform.search(key, "query=redis&mode=exact").await.len(),
        1
    );
    platform.shutdown().await;
}
