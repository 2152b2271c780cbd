//! Two members of one tenant: neither reaches anything of the other's through any read route,
//! derived data included (relationships, history, events, insights, summaries). Bodies are
//! checked, not only status codes.

mod test_support;

use memoryc_platform::api::permissions::ROUTES;
use memoryc_platform::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;
use test_support::matrix::{Outcome, expected};
use test_support::{Backends, TestPlatform, eventually};

/// A word only the second member's memories and searches contain.
const MARKER: &str = "okapiquill";

async fn members_see_nothing_of_each_other(backends: Backends) {
    let platform = TestPlatform::start(backends).await;
    let tenant = platform.create_tenant("Shared").await;
    let first = platform.issue_key(&tenant.api_key, "member").await;
    let second = platform.issue_key(&tenant.api_key, "member").await;

    let mine = platform
        .create_memory(
            &first.api_key,
            json!({"content": "The first member prefers tea in the morning.", "category": "PREFERENCE"}),
        )
        .await;
    let mine = mine["memory_id"].as_str().expect("id").to_string();
    let mut theirs = Vec::new();
    for content in [
        format!("The {MARKER} rollout plan goes out on Friday."),
        format!("The {MARKER} rollout plan goes out on Friday, after review."),
        format!("Email {MARKER}@example.com about the {MARKER} budget."),
    ] {
        let memory = platform
            .create_memory(&second.api_key, json!({"content": content}))
            .await;
        theirs.push(memory["memory_id"].as_str().expect("id").to_string());
    }
    for _ in 0..3 {
        platform
            .search(
                &second.api_key,
                &format!("query={MARKER}%20missing%20launch%20codes"),
            )
            .await;
    }
    let (status, _) = platform
        .call(
            Method::PATCH,
            &format!("/api/v1/memories/{}", theirs[0]),
            Some(&second.api_key),
            Some(json!({"content": format!("The {MARKER} rollout plan moved to Monday.")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Analytics over the whole tenant, and an insight quoting the second member's memory.
    let (status, run) = platform
        .call(
            Method::POST,
            "/api/v1/analytics/run",
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    let insight = platform
        .seed_insight(&tenant.name, &format!("{MARKER} insight"), &theirs[0])
        .await;

    // The first member's own data answers (it is there to be leaked, and its routes work).
    let own_events = eventually(Duration::from_secs(20), || async {
        let (_, events) = platform
            .call(
                Method::GET,
                "/api/v1/analytics/events?limit=100",
                Some(&first.api_key),
                None,
            )
            .await;
        events.to_string().contains(&mine)
    })
    .await;
    assert!(own_events, "the first member reads its own events");
    let (status, own) = platform
        .call(
            Method::GET,
            &format!("/api/v1/memories/{mine}/history"),
            Some(&first.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{own}");

    let forbidden_words: Vec<String> = theirs
        .iter()
        .cloned()
        .chain([
            MARKER.to_string(),
            second.user_id.to_string(),
            insight.to_string(),
        ])
        .collect();
    let mut checked = 0;
    for route in ROUTES.iter().filter(|route| route.method == Method::GET) {
        let path = route
            .path
            .replace("{id}", &theirs[0])
            .replace("{insight_id}", &insight.to_string())
            .replace("{key_id}", &second.key_id)
            .replace("{user_id}", &second.user_id.to_string())
            .replace("{role}", "member")
            .replace("{tenant}", &tenant.name);
        let full = format!(
            "{path}{}",
            if path.ends_with("/events") {
                "?limit=100"
            } else {
                ""
            }
        );
        let (status, body) = platform
            .call(Method::GET, &full, Some(&first.api_key), None)
            .await;
        match expected("GET", route.path, Role::Member) {
            Some(Outcome::Denied) => {
                assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
            }
            _ if route.path.contains("{id}") => {
                assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
            }
            _ => assert!(status.is_success(), "{path}: {status} {body}"),
        }
        let text = body.to_string();
        // An error may name what the caller asked for; nothing else of the other member's.
        for word in forbidden_words
            .iter()
            .filter(|word| !path.contains(word.as_str()))
        {
            assert!(!text.contains(word.as_str()), "{path} shows {word}: {text}");
        }
        checked += 1;
    }
    assert!(checked >= 10, "every read route was tried ({checked})");
    platform.shutdown().await;
}

test_support::on_each_backend!(members_see_nothing_of_each_other);
