//! Events, history, usage summary and insights through the HTTP API, on embedded defaults
//! (in-process events) and on PostgreSQL + Milvus + Redis Streams.

mod test_support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::{Backends, TestPlatform, eventually, production_config};

async fn start(production: bool) -> TestPlatform {
    if production {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config = production_config(data_dir.path().to_path_buf());
        TestPlatform::start_with(config, data_dir).await
    } else {
        TestPlatform::start(Backends::Embedded).await
    }
}

/// GET with an optional session header.
async fn get_with_session(
    platform: &TestPlatform,
    key: &str,
    path: &str,
    session: &str,
) -> (StatusCode, Value) {
    let response = platform
        .client
        .get(format!("{}{path}", platform.base_url))
        .header("X-API-Key", key)
        .header("X-Session-Id", session)
        .send()
        .await
        .expect("sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn history_records_every_change_with_who_and_what(backends: Backends) {
    // Production: PostgreSQL, Milvus and Redis; otherwise the embedded defaults.
    let production = backends == Backends::PostgresMilvus;
    let platform = start(production).await;
    let tenant = platform.create_tenant("Shared").await;
    let key = tenant.api_key.as_str();
    let created = platform
        .create_memory(
            key,
            json!({"content": "The release train leaves on Tuesdays", "category": "WORKFLOW"}),
        )
        .await;
    let id = created["memory_id"].as_str().expect("id").to_string();
    let (status, _) = platform
        .call(
            Method::PATCH,
            &format!("/api/v1/memories/{id}"),
            Some(key),
            Some(json!({"content": "The release train leaves on Thursdays"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = platform
        .call(
            Method::DELETE,
            &format!("/api/v1/memories/{id}"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, body) = platform
        .call(
            Method::GET,
            &format!("/api/v1/memories/{id}/history"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let history = body["history"].as_array().expect("history");
    let actions: Vec<&str> = history
        .iter()
        .map(|h| h["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(actions, ["CREATED", "UPDATED", "DELETED"]);
    let user = tenant.user_id.to_string();
    assert!(history.iter().all(|h| h["changed_by"] == user.as_str()));
    assert_eq!(history[0]["old_value"], Value::Null);
    assert_eq!(
        history[0]["new_value"]["content"],
        "The release train leaves on Tuesdays"
    );
    // Only what changed, before and after.
    assert_eq!(
        history[1]["old_value"],
        json!({"content": "The release train leaves on Tuesdays"})
    );
    assert_eq!(
        history[1]["new_value"],
        json!({"content": "The release train leaves on Thursdays"})
    );
    assert_eq!(
        history[2]["old_value"]["content"],
        "The release train leaves on Thursdays"
    );
    assert_eq!(history[2]["new_value"], Value::Null);

    // Purging erases the history with the memory.
    let (status, _) = platform
        .call(
            Method::DELETE,
            &format!("/api/v1/memories/{id}?purge=true"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = platform
        .call(
            Method::GET,
            &format!("/api/v1/memories/{id}/history"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    platform.shutdown().await;
}

/// A long history comes a page at a time: at most `limit` entries and about 1 MiB, with a
/// cursor to the next page; every entry comes once, in order.
async fn history_is_paged_by_count_and_bytes(backends: Backends) {
    // Production: PostgreSQL, Milvus and Redis; otherwise the embedded defaults.
    let production = backends == Backends::PostgresMilvus;
    let platform = start(production).await;
    let tenant = platform.create_tenant("Shared").await;
    let key = tenant.api_key.as_str();
    let long = |n: usize| {
        format!(
            "Revision {n}: {}",
            "the runbook grows longer. ".repeat(1_500)
        )
    };
    let created = platform
        .create_memory(key, json!({"content": long(0), "category": "WORKFLOW"}))
        .await;
    let id = created["memory_id"].as_str().expect("id").to_string();
    let revisions = 30;
    for n in 1..=revisions {
        let (status, body) = platform
            .call(
                Method::PATCH,
                &format!("/api/v1/memories/{id}"),
                Some(key),
                Some(json!({ "content": long(n) })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for (bad, expected) in [
        ("limit=0", StatusCode::UNPROCESSABLE_ENTITY),
        ("limit=101", StatusCode::UNPROCESSABLE_ENTITY),
        ("after=yesterday", StatusCode::BAD_REQUEST),
        ("cursor=1", StatusCode::BAD_REQUEST),
    ] {
        let (status, body) = platform
            .call(
                Method::GET,
                &format!("/api/v1/memories/{id}/history?{bad}"),
                Some(key),
                None,
            )
            .await;
        assert_eq!(status, expected, "{bad}: {body}");
    }
    let mut seen: Vec<String> = Vec::new();
    let mut pages = 0;
    let mut after: Option<String> = None;
    loop {
        let query = match &after {
            Some(after) => format!("?limit=100&after={after}"),
            None => "?limit=100".to_string(),
        };
        let (status, body) = platform
            .call(
                Method::GET,
                &format!("/api/v1/memories/{id}/history{query}"),
                Some(key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        pages += 1;
        let entries = body["history"].as_array().expect("history");
        assert!(!entries.is_empty());
        assert!(
            body.to_string().len() < 1_300_000,
            "a page stays near 1 MiB: {} bytes",
            body.to_string().len()
        );
        seen.extend(
            entries
                .iter()
                .map(|e| e["history_id"].as_str().expect("id").to_string()),
        );
        match body["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    assert!(pages > 1, "about 2.4 MB of history takes several pages");
    assert_eq!(seen.len(), revisions + 1, "every entry once");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "oldest first, none twice");
    // A count limit pages too.
    let (_, first) = platform
        .call(
            Method::GET,
            &format!("/api/v1/memories/{id}/history?limit=2"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(first["history"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["next"].as_str(), Some(seen[1].as_str()));
    platform.shutdown().await;
}

test_support::on_each_backend!(history_is_paged_by_count_and_bytes);

/// Runs asked for through the API: a second within the minimum interval is refused with 409
/// and runs nothing.
#[tokio::test]
async fn on_demand_runs_are_limited_per_tenant() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_support::test_config(Backends::Embedded, data_dir.path().to_path_buf());
    config.analytics.min_interval = std::time::Duration::from_secs(3600);
    let platform = TestPlatform::start_with(config, data_dir).await;
    let first = platform.create_tenant("Shared").await;
    let second = platform.create_tenant("Shared").await;
    let run = |key: String| {
        let platform = &platform;
        async move {
            platform
                .call(Method::POST, "/api/v1/analytics/run", Some(&key), None)
                .await
        }
    };
    let (status, body) = run(first.api_key.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = run(first.api_key.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("ran less than 3600 s ago")),
        "{body}"
    );
    // Another tenant is not held back by the first.
    let (status, body) = run(second.api_key.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    platform.shutdown().await;
}

test_support::on_each_backend!(history_records_every_change_with_who_and_what);

async fn events_are_recorded_with_the_session_and_paginated(backends: Backends) {
    // Production: PostgreSQL, Milvus and Redis; otherwise the embedded defaults.
    let production = backends == Backends::PostgresMilvus;
    let platform = start(production).await;
    let tenant = platform.create_tenant("Shared").await;
    let key = tenant.api_key.as_str();
    let response = platform
        .client
        .post(format!("{}/api/v1/memories", platform.base_url))
        .header("X-API-Key", key)
        .header("X-Session-Id", "session-42")
        .json(&json!({"content": "Deployments go through the staging cluster first"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.expect("json");
    let id = created["memory_id"].as_str().expect("id").to_string();
    let (status, _) = get_with_session(
        &platform,
        key,
        &format!("/api/v1/memories/{id}"),
        "session-42",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get_with_session(
        &platform,
        key,
        "/api/v1/memories?query=how%20do%20we%20deploy",
        "session-42",
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The write path does not wait for analytics: the events arrive shortly after.
    let seen = std::sync::Mutex::new(Value::Null);
    let arrived = eventually(Duration::from_secs(20), || async {
        let (_, body) = platform
            .call(
                Method::GET,
                "/api/v1/analytics/events?session_id=session-42",
                Some(key),
                None,
            )
            .await;
        let complete = body["events"].as_array().map(Vec::len) == Some(3);
        *seen.lock().expect("lock") = body;
        complete
    })
    .await;
    let seen = seen.into_inner().expect("lock");
    assert!(arrived, "events: {seen}");
    let events = seen["events"].as_array().expect("events");
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or_default())
        .collect();
    // Newest first.
    assert_eq!(
        types,
        ["SEARCH_PERFORMED", "MEMORY_ACCESSED", "MEMORY_CREATED"]
    );
    assert!(events.iter().all(|e| e["session_id"] == "session-42"));
    assert_eq!(events[2]["memory_id"], id.as_str());
    assert_eq!(events[0]["event_data"]["query"], "how do we deploy");
    assert_eq!(events[0]["event_data"]["result_count"], 1);

    // Filters and pages.
    let (_, only_created) = platform
        .call(
            Method::GET,
            "/api/v1/analytics/events?event_type=MEMORY_CREATED",
            Some(key),
            None,
        )
        .await;
    assert_eq!(only_created["events"].as_array().map(Vec::len), Some(1));
    let (_, first) = platform
        .call(
            Method::GET,
            "/api/v1/analytics/events?session_id=session-42&limit=2",
            Some(key),
            None,
        )
        .await;
    assert_eq!(first["events"].as_array().map(Vec::len), Some(2));
    let next = first["next"].as_str().expect("a next page");
    let (_, second) = platform
        .call(
            Method::GET,
            &format!("/api/v1/analytics/events?session_id=session-42&limit=2&before={next}"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(second["events"][0]["event_type"], "MEMORY_CREATED");
    assert_eq!(second["events"].as_array().map(Vec::len), Some(1));
    assert!(second.get("next").is_none(), "{second}");

    // Bad input is refused with a structured error: values out of range 422, unparsable 400.
    for (path, expected) in [
        (
            "/api/v1/analytics/events?limit=0",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/analytics/events?limit=101",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/analytics/events?event_type=NOT_A_TYPE",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/analytics/events?before=not-an-id",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/analytics/insights?confidence_threshold=1.5",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/analytics/insights?type=HUNCH",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/analytics/summary?days=0",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/analytics/summary?days=91",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, body) = platform.call(Method::GET, path, Some(key), None).await;
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body["error_code"].is_string(), "{path}: {body}");
    }
    let (status, body) =
        get_with_session(&platform, key, "/api/v1/memories", &"s".repeat(129)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error_code"], "VALIDATION_FAILED");

    // Usage summary: today has one memory and one search.
    let (status, summary) = platform
        .call(
            Method::GET,
            "/api/v1/analytics/summary?days=7",
            Some(key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["growth"].as_array().map(Vec::len), Some(7));
    assert_eq!(summary["memories_created"], 1);
    assert_eq!(summary["searches"], 1);
    assert_eq!(summary["live_memories"], 1);
    assert_eq!(summary["growth"][6]["memories_created"], 1);
    assert_eq!(summary["top_categories"].as_array().map(Vec::len), Some(1));
    platform.shutdown().await;
}

test_support::on_each_backend!(events_are_recorded_with_the_session_and_paginated);

#[tokio::test]
async fn a_tenant_sets_its_own_analytics_schedule() {
    let platform = start(false).await;
    let tenant = platform.create_tenant("Shared").await;
    let key = Some(tenant.api_key.as_str());
    let (status, body) = platform
        .call(Method::GET, "/api/v1/settings/analytics", key, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["schedule"], Value::Null);
    assert_eq!(body["effective_schedule"], "0 0 * * * *");
    for bad in [
        json!({"schedule": "every hour"}),
        json!({"schedule": "*/5 * * * * *"}),
        json!({"schedule": "x".repeat(129)}),
    ] {
        let (status, body) = platform
            .call(Method::PUT, "/api/v1/settings/analytics", key, Some(bad))
            .await;
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::PAYLOAD_TOO_LARGE,
            "{status} {body}"
        );
    }
    let (status, body) = platform
        .call(
            Method::PUT,
            "/api/v1/settings/analytics",
            key,
            Some(json!({"schedule": "0 30 2 * * *"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = platform
        .call(Method::GET, "/api/v1/settings/analytics", key, None)
        .await;
    assert_eq!(body["schedule"], "0 30 2 * * *");
    assert_eq!(body["effective_schedule"], "0 30 2 * * *");
    platform.shutdown().await;
}

async fn create(platform: &TestPlatform, key: &str, content: &str) -> String {
    let memory = platform
        .create_memory(key, json!({"content": content, "category": "TECHNICAL"}))
        .await;
    memory["memory_id"].as_str().expect("id").to_string()
}

/// The relationships of `id` once `derived` holds for them (the write path does not wait, and
/// another memory's event may list some of them before `id`'s own event is processed), or as
/// they stand after 20 s.
async fn relationships(
    platform: &TestPlatform,
    key: &str,
    id: &str,
    derived: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let found = std::sync::Mutex::new(Vec::new());
    eventually(Duration::from_secs(20), || async {
        let (status, body) = platform
            .call(
                Method::GET,
                &format!("/api/v1/memories/{id}/relationships"),
                Some(key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let list = body["relationships"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let done = derived(&list);
        *found.lock().expect("lock") = list;
        done
    })
    .await;
    found.into_inner().expect("lock")
}

/// Whether `list` relates `source` to `target` by `kind`. SIMILAR and CONTRADICTS read the same
/// both ways, and which memory is the subject depends on whose event was related first (with
/// both vectors already written, the earlier memory finds the later one too).
fn has(list: &[Value], kind: &str, source: &str, target: &str) -> bool {
    let symmetric = kind == "SIMILAR" || kind == "CONTRADICTS";
    list.iter().any(|r| {
        let forward = r["source_memory_id"] == source && r["target_memory_id"] == target;
        let backward = r["source_memory_id"] == target && r["target_memory_id"] == source;
        r["relationship_type"] == kind
            && (forward || (symmetric && backward))
            && r["context"].as_str().is_some_and(|c| !c.is_empty())
            && r["strength"]
                .as_f64()
                .is_some_and(|s| (0.0..=1.0).contains(&s))
    })
}

async fn relationships_are_derived_from_meaning_and_content(backends: Backends) {
    // Production: PostgreSQL, Milvus and Redis; otherwise the embedded defaults.
    let production = backends == Backends::PostgresMilvus;
    let platform = start(production).await;
    let tenant = platform.create_tenant("Shared").await;
    let key = tenant.api_key.as_str();
    let pipeline = create(
        &platform,
        key,
        "The deploy pipeline runs the integration tests before every release.",
    )
    .await;
    let paraphrase = create(
        &platform,
        key,
        "Before each release, the deployment pipeline runs the integration test suite.",
    )
    .await;
    let tabs = create(
        &platform,
        key,
        "We use tabs for indentation in all Python files.",
    )
    .await;
    let no_tabs = create(
        &platform,
        key,
        "We never use tabs for indentation in Python files.",
    )
    .await;
    let staging = create(
        &platform,
        key,
        "The staging database is PostgreSQL 16 on the shared cluster.",
    )
    .await;
    // BUILDS_ON is found when the later memory's event finds the earlier one among its
    // neighbours, so the earlier one must be searchable first (Milvus makes a write visible
    // within its consistency window, not at once).
    assert!(
        eventually(Duration::from_secs(20), || async {
            let (status, body) = platform
                .call(
                    Method::GET,
                    "/api/v1/memories?query=staging%20database%20PostgreSQL%2016&limit=10",
                    Some(key),
                    None,
                )
                .await;
            status == StatusCode::OK
                && body["results"]
                    .as_array()
                    .is_some_and(|results| results.iter().any(|r| r["memory_id"] == staging))
        })
        .await,
        "the staging memory became searchable"
    );
    let more = create(
        &platform,
        key,
        "The staging database is PostgreSQL 16 on the shared cluster; nightly backups go to an S3 bucket and are kept for thirty days.",
    )
    .await;
    let follow_up = create(
        &platform,
        key,
        &format!("Follow-up to {pipeline}: the release checklist now links the test report."),
    )
    .await;
    let unrelated = create(
        &platform,
        key,
        "I like short answers and dark mode in every editor.",
    )
    .await;

    let of_paraphrase = relationships(&platform, key, &paraphrase, |l| {
        has(l, "SIMILAR", &paraphrase, &pipeline)
    })
    .await;
    assert!(
        has(&of_paraphrase, "SIMILAR", &paraphrase, &pipeline),
        "{of_paraphrase:?}"
    );
    let of_no_tabs = relationships(&platform, key, &no_tabs, |l| {
        has(l, "CONTRADICTS", &no_tabs, &tabs)
    })
    .await;
    assert!(
        has(&of_no_tabs, "CONTRADICTS", &no_tabs, &tabs),
        "{of_no_tabs:?}"
    );
    assert!(
        !has(&of_no_tabs, "BUILDS_ON", &no_tabs, &tabs),
        "{of_no_tabs:?}"
    );
    let of_more = relationships(&platform, key, &more, |l| {
        has(l, "BUILDS_ON", &more, &staging)
    })
    .await;
    assert!(has(&of_more, "BUILDS_ON", &more, &staging), "{of_more:?}");
    let of_follow_up = relationships(&platform, key, &follow_up, |l| {
        has(l, "REFERENCES", &follow_up, &pipeline)
    })
    .await;
    assert!(
        has(&of_follow_up, "REFERENCES", &follow_up, &pipeline),
        "{of_follow_up:?}"
    );
    // Both directions are listed for a memory: the pipeline note is the target of two.
    let of_pipeline = relationships(&platform, key, &pipeline, |l| {
        has(l, "SIMILAR", &paraphrase, &pipeline) && has(l, "REFERENCES", &follow_up, &pipeline)
    })
    .await;
    assert!(
        has(&of_pipeline, "SIMILAR", &paraphrase, &pipeline),
        "{of_pipeline:?}"
    );
    assert!(
        has(&of_pipeline, "REFERENCES", &follow_up, &pipeline),
        "{of_pipeline:?}"
    );
    // The unrelated note relates to nothing of its own. A later note naming it is processed
    // after it, so once that one's REFERENCES is there, the unrelated note has been looked at.
    let sentinel = create(&platform, key, &format!("Filed under {unrelated}.")).await;
    let of_sentinel = relationships(&platform, key, &sentinel, |l| {
        has(l, "REFERENCES", &sentinel, &unrelated)
    })
    .await;
    assert!(
        has(&of_sentinel, "REFERENCES", &sentinel, &unrelated),
        "{of_sentinel:?}"
    );
    let of_unrelated = relationships(&platform, key, &unrelated, |l| !l.is_empty()).await;
    assert!(
        of_unrelated
            .iter()
            .all(|r| r["source_memory_id"] != unrelated.as_str()),
        "{of_unrelated:?}"
    );

    // A deleted memory's relationships are not shown from the other side.
    let (status, _) = platform
        .call(
            Method::DELETE,
            &format!("/api/v1/memories/{paraphrase}"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = platform
        .call(
            Method::GET,
            &format!("/api/v1/memories/{pipeline}/relationships"),
            Some(key),
            None,
        )
        .await;
    let listed = body["relationships"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !has(&listed, "SIMILAR", &paraphrase, &pipeline),
        "{listed:?}"
    );
    let (status, _) = platform
        .call(
            Method::GET,
            &format!("/api/v1/memories/{paraphrase}/relationships"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    platform.shutdown().await;
}

test_support::on_each_backend!(relationships_are_derived_from_meaning_and_content);
