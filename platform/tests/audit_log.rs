//! The audit log over HTTP: every write, every denied request and every key change is recorded
//! with principal, route, outcome and time; tenant admins page through their own tenant's log.

mod test_support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::{Backends, TestPlatform};

async fn all_entries(platform: &TestPlatform, admin: &str, limit: u64) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..100 {
        let path = match &before {
            Some(cursor) => format!("/api/v1/audit?limit={limit}&before={cursor}"),
            None => format!("/api/v1/audit?limit={limit}"),
        };
        let (status, page) = platform.call(Method::GET, &path, Some(admin), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let batch = page["entries"].as_array().cloned().expect("entries");
        assert!(batch.len() as u64 <= limit);
        entries.extend(batch);
        match page["next_before"].as_str() {
            Some(cursor) => before = Some(cursor.to_string()),
            None => return entries,
        }
    }
    panic!("pagination never ended");
}

async fn records_writes_denials_and_key_changes(backends: Backends) {
    let platform = TestPlatform::start(backends).await;
    let tenant = platform.create_tenant("Shared").await;
    let other = platform.create_tenant("Shared").await;
    let admin = tenant.api_key.as_str();

    let memory = platform
        .create_memory(
            admin,
            json!({"content": "Audited write.", "category": "PROJECT"}),
        )
        .await;
    let (status, _) = platform
        .call(
            Method::POST,
            "/api/v1/memories",
            Some(admin),
            Some(json!({"content": " "})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let reader = platform.issue_key(admin, "reader").await;
    let (status, _) = platform
        .call(
            Method::DELETE,
            &format!(
                "/api/v1/memories/{}",
                memory["memory_id"].as_str().expect("id")
            ),
            Some(&reader.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = platform
        .call(
            Method::DELETE,
            &format!("/api/v1/keys/{}", reader.key_id),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Reads are not audited.
    platform.search(admin, "").await;

    let entries = all_entries(&platform, admin, 2).await;
    let text = serde_json::to_string(&entries).expect("json");
    assert!(
        !text.contains(&reader.api_key),
        "a key's secret reached the audit log"
    );
    assert!(
        !text.contains(admin),
        "a key's secret reached the audit log"
    );
    let find = |method: &str, route: &str, outcome: &str| {
        entries
            .iter()
            .find(|e| e["method"] == method && e["route"] == route && e["outcome"] == outcome)
            .cloned()
            .unwrap_or_else(|| panic!("no {outcome} {method} {route} in {text}"))
    };
    let created = find("POST", "/api/v1/memories", "allowed");
    assert_eq!(created["status"], 201);
    assert_eq!(created["detail"]["memory_id"], memory["memory_id"]);
    assert_eq!(created["user_id"], tenant.user_id.to_string());
    assert!(
        created["subject"]
            .as_str()
            .is_some_and(|s| s.starts_with("key:"))
    );
    assert_eq!(created["roles"], json!(["tenant-admin"]));
    assert!(created["occurred_at"].as_str().is_some());
    assert_eq!(find("POST", "/api/v1/memories", "failed")["status"], 422);
    let denied = find("DELETE", "/api/v1/memories/{id}", "denied");
    assert_eq!(denied["status"], 403);
    assert_eq!(denied["subject"], format!("key:{}", reader.prefix));
    let issued = find("POST", "/api/v1/keys", "allowed");
    assert_eq!(issued["detail"]["prefix"], reader.prefix.as_str());
    assert_eq!(issued["detail"]["role"], "reader");
    let revoked = find("DELETE", "/api/v1/keys/{key_id}", "allowed");
    assert_eq!(revoked["detail"]["key_id"], reader.key_id.as_str());
    assert!(
        entries.iter().all(|e| e["method"] != "GET"),
        "reads were audited: {text}"
    );

    // Newest first, no entry twice across pages.
    let ids: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["audit_id"].as_str())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted);
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len());
    assert_eq!(
        all_entries(&platform, admin, 500).await.len(),
        entries.len()
    );

    // The log is the tenant's own and its admins' only.
    assert!(
        all_entries(&platform, &other.api_key, 50)
            .await
            .iter()
            .all(|e| e["user_id"] != tenant.user_id.to_string())
    );
    let service = platform.issue_key(admin, "service").await;
    let (status, _) = platform
        .call(Method::GET, "/api/v1/audit", Some(&service.api_key), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for bad in ["limit=0", "limit=501", "before=nope"] {
        let (status, body) = platform
            .call(
                Method::GET,
                &format!("/api/v1/audit?{bad}"),
                Some(admin),
                None,
            )
            .await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {status} {body}"
        );
    }
    platform.shutdown().await;
}

test_support::on_each_backend!(records_writes_denials_and_key_changes);
