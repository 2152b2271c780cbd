//! GitHub Projects sync end to end: a platform reads a board from a local GitHub that answers in
//! GitHub's wire format (`test_support::fake_github`, built from the schema-checked fixtures),
//! turns its items into memories, keeps them up to date, removes what left the board, links
//! memories that mention an item, waits out or resumes after rate limits, and applies GitHub's
//! signed webhooks once per delivery.

mod test_support;

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use test_support::fake_github::{FakeGitHub, FakeItem, Fault, Kind};
use test_support::{Backends, TestPlatform, TestTenant, eventually, test_config, unique};

const TOKEN: &str = "ghp_testtoken0123456789";
const WEBHOOK_SECRET: &str = "a-github-webhook-secret";
const WAIT: Duration = Duration::from_secs(30);

async fn platform_with(github: &FakeGitHub, backends: Backends) -> TestPlatform {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(backends, data_dir.path().to_path_buf());
    config.integrations.github_api_url = github.url.clone();
    // Syncs of a few hundred items answer within the request here (unoptimised builds on two
    // cores); `a_long_sync_answers_at_once_and_goes_on_in_the_background` shortens it.
    config.limits.request_timeout = Duration::from_secs(300);
    TestPlatform::start_with(config, data_dir).await
}

/// `count` items: issues, every third a pull request, every seventh a draft.
fn board(count: u64) -> Vec<FakeItem> {
    (1..=count)
        .map(|n| {
            let mut item = FakeItem::issue(n, &format!("Gripper task {n}: tune the finger torque"));
            if n % 3 == 0 {
                item.kind = Kind::PullRequest;
                item.title = format!("Pull request {n}: store the calibration offset");
                item.state = "MERGED".into();
            } else if n % 7 == 0 {
                item.kind = Kind::Draft;
                item.title = format!("Draft {n}: try a softer finger pad");
            }
            item
        })
        .collect()
}

/// Creates a GitHubProjects integration through the API; paused ones run on demand only.
async fn bind(platform: &TestPlatform, tenant: &TestTenant, name: &str, token: &str, paused: bool) {
    let (status, body) = platform
        .call(
            Method::POST,
            "/api/v1/integrations",
            Some(&tenant.api_key),
            Some(json!({"name": name, "kind": "GitHubProjects",
                "github": {"owner": "acme-robotics", "projectNumber": 7},
                "secret": token, "webhookSecret": WEBHOOK_SECRET,
                "syncSchedule": "*/30 * * * *", "paused": paused})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        body.get("secret").is_none(),
        "a given token is never echoed: {body}"
    );
}

async fn sync(platform: &TestPlatform, tenant: &TestTenant, name: &str) -> (StatusCode, Value) {
    platform
        .call(
            Method::POST,
            &format!("/api/v1/integrations/{name}/sync"),
            Some(&tenant.api_key),
            None,
        )
        .await
}

async fn integration(platform: &TestPlatform, tenant: &TestTenant, name: &str) -> Value {
    let (status, body) = platform
        .call(
            Method::GET,
            "/api/v1/integrations",
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["integrations"]
        .as_array()
        .and_then(|all| all.iter().find(|i| i["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("{name} listed: {body}"))
}

/// The live memory of the item with `number`, found by its reference.
async fn memory_of_item(
    platform: &TestPlatform,
    tenant: &TestTenant,
    number: u64,
) -> Option<Value> {
    let query = format!("acme-robotics/gripper-firmware%23{number}%20%C2%B7");
    let (status, body) = platform
        .call(
            Method::GET,
            &format!("/api/v1/memories?query={query}&mode=exact&limit=5"),
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["results"].as_array()?.first().cloned()
}

fn counts(report: &Value) -> [u64; 5] {
    ["created", "updated", "unchanged", "removed", "refused"].map(|key| {
        report[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} in {report}"))
    })
}

async fn a_board_becomes_memories_kept_up_to_date(backends: Backends) {
    let github = FakeGitHub::start(TOKEN).await;
    github.set_items(board(250));
    let platform = platform_with(&github, backends).await;
    let tenant = platform.create_tenant("Shared").await;
    bind(&platform, &tenant, "roadmap", TOKEN, true).await;

    let (status, report) = sync(&platform, &tenant, "roadmap").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(counts(&report), [250, 0, 0, 0, 0], "{report}");
    assert_eq!(report["requests"], 3, "three pages of 100: {report}");
    assert_eq!(report["complete"], true);
    let state = &integration(&platform, &tenant, "roadmap").await["state"];
    assert_eq!(state["connected"], true, "{state}");
    assert_eq!(state["items_synced"], 250, "{state}");
    assert!(
        state["last_sync_at"].is_string() && state["next_run_at"].is_string(),
        "{state}"
    );

    // Searchable by meaning, with the item's metadata.
    let (status, found) = platform
        .call(
            Method::GET,
            "/api/v1/memories?query=store%20the%20calibration%20offset&limit=3",
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let best = &found["results"][0];
    assert_eq!(best["metadata"]["source"], "github", "{found}");
    assert_eq!(best["category"], "WORKFLOW", "a pull request: {best}");
    assert_eq!(best["metadata"]["state"], "merged");
    let issue = memory_of_item(&platform, &tenant, 4)
        .await
        .expect("issue 4");
    assert_eq!(issue["category"], "PROJECT");
    assert_eq!(issue["metadata"]["number"], 4);
    assert_eq!(issue["metadata"]["status"], "Todo");
    assert_eq!(
        issue["metadata"]["url"],
        "https://github.com/acme-robotics/gripper-firmware/issues/4"
    );
    assert_eq!(issue["metadata"]["labels"], json!(["bug"]));

    // Nothing changed: nothing is written.
    let (_, again) = sync(&platform, &tenant, "roadmap").await;
    assert_eq!(counts(&again), [0, 0, 250, 0, 0], "{again}");

    // An edit updates the memory in place, with history; removed and archived items go.
    let edited_id = github.items()[3].id.clone();
    github.edit(&edited_id, |item| {
        item.title = "Gripper task 4: tune the finger torque for glass".into();
        item.status = "Done".into();
        item.state = "CLOSED".into();
    });
    let (gone, archived) = (github.items()[4].id.clone(), github.items()[5].id.clone());
    github.remove(&gone);
    github.edit(&archived, |item| item.archived = true);
    let (_, changed) = sync(&platform, &tenant, "roadmap").await;
    assert_eq!(counts(&changed), [0, 1, 247, 2, 0], "{changed}");
    let updated = memory_of_item(&platform, &tenant, 4)
        .await
        .expect("issue 4");
    assert_eq!(updated["memory_id"], issue["memory_id"], "updated in place");
    assert!(
        updated["content"]
            .as_str()
            .is_some_and(|c| c.contains("for glass"))
    );
    assert_eq!(updated["metadata"]["status"], "Done");
    assert_eq!(updated["metadata"]["state"], "closed");
    let memory_id = updated["memory_id"].as_str().expect("id");
    let (status, history) = platform
        .call(
            Method::GET,
            &format!("/api/v1/memories/{memory_id}/history"),
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert!(
        history.to_string().contains("tune the finger torque\\n")
            || history.to_string().contains("Status: Todo"),
        "the history keeps what it was: {history}"
    );
    assert_eq!(
        memory_of_item(&platform, &tenant, 5).await,
        None,
        "removed from the board"
    );
    assert_eq!(
        memory_of_item(&platform, &tenant, 6).await,
        None,
        "archived"
    );
    assert_eq!(
        integration(&platform, &tenant, "roadmap").await["state"]["items_synced"],
        248
    );
    platform.shutdown().await;
}

test_support::on_each_backend!(a_board_becomes_memories_kept_up_to_date);

#[tokio::test]
async fn a_new_board_is_synchronised_without_being_asked_and_memories_mentioning_it_are_linked() {
    let github = FakeGitHub::start(TOKEN).await;
    github.set_items(board(3));
    let platform = platform_with(&github, Backends::Embedded).await;
    let tenant = platform.create_tenant("Shared").await;
    let (status, mention) = platform
        .call(
            Method::POST,
            "/api/v1/memories",
            Some(&tenant.api_key),
            Some(json!({"content": "Customer call: the torque fix in acme-robotics/gripper-firmware#2 must ship before the trade fair."})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{mention}");
    bind(&platform, &tenant, "roadmap", TOKEN, false).await;
    assert!(
        eventually(WAIT, || async {
            integration(&platform, &tenant, "roadmap").await["state"]["items_synced"] == 3
        })
        .await,
        "the scheduler syncs a new board at once"
    );
    let item = memory_of_item(&platform, &tenant, 2)
        .await
        .expect("issue 2");
    let mention_id = mention["memory_id"].as_str().expect("id").to_string();
    let item_id = item["memory_id"].as_str().expect("id").to_string();
    let linked = eventually(WAIT, || async {
        let (_, related) = platform
            .call(
                Method::GET,
                &format!("/api/v1/memories/{item_id}/relationships"),
                Some(&tenant.api_key),
                None,
            )
            .await;
        related.to_string().contains(&mention_id) && related.to_string().contains("REFERENCES")
    })
    .await;
    assert!(
        linked,
        "the item's memory REFERENCES the memory that mentions it"
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn faults_are_retried_limits_waited_out_or_resumed_from_the_cursor() {
    let github = FakeGitHub::start(TOKEN).await;
    github.set_items(board(250));
    let platform = platform_with(&github, Backends::Embedded).await;
    let tenant = platform.create_tenant("Shared").await;
    bind(&platform, &tenant, "roadmap", TOKEN, true).await;

    // A 502 and a secondary limit of a second are sat out within the run.
    github.push_fault(Fault::BadGateway);
    github.push_fault(Fault::Secondary { retry_after: 1 });
    let (status, report) = sync(&platform, &tenant, "roadmap").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(
        report["requests"], 5,
        "three pages and two refused requests: {report}"
    );
    assert_eq!(counts(&report)[0], 250);

    // The hour's points run out after one page: the run stops there and says when it goes on.
    for item in github.items() {
        github.edit(&item.id, |item| item.body.push_str(" Edited."));
    }
    let reset = chrono::Utc::now() + chrono::Duration::minutes(40);
    github.set_remaining(1, reset);
    let (status, paused) = sync(&platform, &tenant, "roadmap").await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["complete"], false, "{paused}");
    assert_eq!(counts(&paused)[1], 100, "one page updated: {paused}");
    let resumes = paused["resumes_at"].as_str().expect("resumes_at");
    let resumes: chrono::DateTime<chrono::Utc> = resumes.parse().expect("a time");
    assert_eq!(resumes.timestamp(), reset.timestamp());
    let state = &integration(&platform, &tenant, "roadmap").await["state"];
    assert_eq!(
        state["connected"], true,
        "a limit is not a failure: {state}"
    );
    assert!(
        state["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("rate limit")),
        "{state}"
    );
    let next: chrono::DateTime<chrono::Utc> = state["next_run_at"]
        .as_str()
        .expect("next run")
        .parse()
        .expect("time");
    assert_eq!(
        next.timestamp(),
        reset.timestamp(),
        "the next run is when the limit resets"
    );

    // Once points are back, the run goes on from its cursor: two pages, not three.
    github.set_remaining(5_000, reset);
    let before = github.requests().len();
    let (_, resumed) = sync(&platform, &tenant, "roadmap").await;
    assert_eq!(resumed["complete"], true, "{resumed}");
    assert_eq!(github.requests().len() - before, 2, "{resumed}");
    assert_eq!(counts(&resumed), [0, 150, 0, 0, 0], "{resumed}");

    // A used-up primary limit announced by GitHub pauses the run the same way.
    github.push_fault(Fault::Exhausted {
        reset_in: chrono::Duration::minutes(10),
    });
    let (_, limited) = sync(&platform, &tenant, "roadmap").await;
    assert_eq!(limited["complete"], false, "{limited}");
    assert!(limited["resumes_at"].is_string(), "{limited}");
    platform.shutdown().await;
}

#[tokio::test]
async fn a_long_sync_answers_at_once_and_goes_on_in_the_background() {
    let github = FakeGitHub::start(TOKEN).await;
    github.set_items(board(120));
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(Backends::Embedded, data_dir.path().to_path_buf());
    config.integrations.github_api_url = github.url.clone();
    // An on-demand sync waits one second (the timeout less five) before answering.
    config.limits.request_timeout = Duration::from_secs(6);
    let platform = TestPlatform::start_with(config, data_dir).await;
    let tenant = platform.create_tenant("Shared").await;
    bind(&platform, &tenant, "roadmap", TOKEN, true).await;
    let (status, started) = sync(&platform, &tenant, "roadmap").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["status"], "running");
    assert!(
        eventually(Duration::from_secs(120), || async {
            integration(&platform, &tenant, "roadmap").await["state"]["items_synced"] == 120
        })
        .await,
        "the sync finishes in the background"
    );
    assert!(memory_of_item(&platform, &tenant, 120).await.is_some());
    platform.shutdown().await;
}

#[tokio::test]
async fn a_refused_token_or_a_missing_project_is_reported_and_stores_nothing() {
    let github = FakeGitHub::start(TOKEN).await;
    github.set_items(board(5));
    let platform = platform_with(&github, Backends::Embedded).await;
    let tenant = platform.create_tenant("Shared").await;
    bind(&platform, &tenant, "stolen", "ghp_notthetoken", true).await;
    let (status, refused) = sync(&platform, &tenant, "stolen").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{refused}");
    assert_eq!(refused["error_code"], "GITHUB_FAILED");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("token") && m.contains("401")),
        "{refused}"
    );
    let state = &integration(&platform, &tenant, "stolen").await["state"];
    assert_eq!(state["connected"], false, "{state}");
    assert!(
        state["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("Bad credentials")),
        "{state}"
    );
    assert_eq!(memory_of_item(&platform, &tenant, 1).await, None);

    let (status, body) = platform
        .call(
            Method::POST,
            "/api/v1/integrations",
            Some(&tenant.api_key),
            Some(json!({"name": "elsewhere", "kind": "GitHubProjects",
                "github": {"owner": "acme-robotics", "projectNumber": 99},
                "secret": TOKEN, "paused": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, missing) = sync(&platform, &tenant, "elsewhere").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{missing}");
    assert!(
        missing["message"]
            .as_str()
            .is_some_and(|m| m.contains("number 99")),
        "{missing}"
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn the_api_checks_a_board_before_keeping_it_and_never_shows_its_secrets() {
    let github = FakeGitHub::start(TOKEN).await;
    let platform = platform_with(&github, Backends::Embedded).await;
    let tenant = platform.create_tenant("Shared").await;
    let create = |body: Value| {
        let platform = &platform;
        let key = tenant.api_key.clone();
        async move {
            platform
                .call(Method::POST, "/api/v1/integrations", Some(&key), Some(body))
                .await
        }
    };
    let board = json!({"owner": "acme-robotics", "projectNumber": 7});
    for (body, field) in [
        (
            json!({"name": "a", "kind": "GitHubProjects", "github": board}),
            "secret",
        ),
        (
            json!({"name": "a", "kind": "GitHubProjects", "secret": TOKEN}),
            "github",
        ),
        (
            json!({"name": "a", "kind": "GitHubProjects", "secret": TOKEN,
            "github": {"owner": "-acme", "projectNumber": 7}}),
            "github.owner",
        ),
        (
            json!({"name": "a", "kind": "GitHubProjects", "secret": TOKEN,
            "github": {"owner": "acme", "projectNumber": 0}}),
            "github.projectNumber",
        ),
        (
            json!({"name": "a", "kind": "GitHubProjects", "secret": TOKEN, "github": board,
            "syncSchedule": "every hour"}),
            "syncSchedule",
        ),
        (
            json!({"name": "a", "kind": "GitHubProjects", "secret": TOKEN, "github": board,
            "webhookSecret": "short"}),
            "webhookSecret",
        ),
        (
            json!({"name": "a", "kind": "LLMProvider", "secret": "k"}),
            "llmProvider",
        ),
    ] {
        let (status, refused) = create(body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {refused}"
        );
        assert_eq!(refused["context"]["field"], field, "{body}: {refused}");
    }
    bind(&platform, &tenant, "roadmap", TOKEN, true).await;
    let listed = integration(&platform, &tenant, "roadmap").await;
    assert_eq!(listed["settings"], board);
    assert_eq!(listed["managed_by"], "api");
    let (_, all) = platform
        .call(
            Method::GET,
            "/api/v1/integrations",
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert!(!all.to_string().contains(TOKEN) && !all.to_string().contains(WEBHOOK_SECRET));
    // Only boards are synchronised.
    let (status, _) = platform
        .call(
            Method::POST,
            "/api/v1/integrations",
            Some(&tenant.api_key),
            Some(json!({"name": "hook", "kind": "Webhook",
                "webhook": {"url": "https://hooks.example/m"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, refused) = sync(&platform, &tenant, "hook").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let (status, _) = sync(&platform, &tenant, "nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    platform.shutdown().await;
}

/// Sends one GitHub webhook delivery signed with `secret` for `tenant`'s integration `name`.
async fn deliver(
    platform: &TestPlatform,
    tenant: &str,
    name: &str,
    event: &str,
    delivery: &str,
    payload: &Value,
    secret: &str,
) -> (StatusCode, Value) {
    let body = payload.to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let response = platform
        .client
        .post(format!(
            "{}/api/v1/integrations/{name}/github?tenant={tenant}",
            platform.base_url
        ))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", signature)
        .header("user-agent", "GitHub-Hookshot/8f7c2a1")
        .body(body)
        .send()
        .await
        .expect("sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn item_event(action: &str, item_id: &str, project_id: &str) -> Value {
    json!({"action": action, "projects_v2_item": {"id": 1, "node_id": item_id,
        "project_node_id": project_id, "content_node_id": "I_kwDOJ8mZ2c00000001",
        "content_type": "Issue"}, "organization": {"login": "acme-robotics"},
        "sender": {"login": "octocat"}})
}

#[tokio::test]
async fn github_webhooks_are_verified_applied_once_and_tenant_bound() {
    let github = FakeGitHub::start(TOKEN).await;
    github.set_items(board(3));
    let platform = platform_with(&github, Backends::Embedded).await;
    let tenant = platform.create_tenant("Shared").await;
    let other = platform.create_tenant("Shared").await;
    bind(&platform, &tenant, "roadmap", TOKEN, true).await;
    let (status, _) = sync(&platform, &tenant, "roadmap").await;
    assert_eq!(status, StatusCode::OK);
    let project = github.project_id();
    let first = github.items()[0].id.clone();
    let send = |event: &'static str, delivery: String, payload: Value, secret: &'static str| {
        let (platform, tenant) = (&platform, tenant.name.clone());
        async move {
            deliver(
                platform, &tenant, "roadmap", event, &delivery, &payload, secret,
            )
            .await
        }
    };

    let (status, pong) = send(
        "ping",
        unique("d-"),
        json!({"zen": "Design for failure."}),
        WEBHOOK_SECRET,
    )
    .await;
    assert_eq!(
        (status, pong["outcome"].as_str()),
        (StatusCode::OK, Some("pong"))
    );

    // An edit on the board arrives as projects_v2_item "edited": applied at once.
    github.edit(&first, |item| {
        item.title = "Gripper task 1: retuned over the webhook".into()
    });
    let delivery = unique("d-");
    let (status, applied) = send(
        "projects_v2_item",
        delivery.clone(),
        item_event("edited", &first, &project),
        WEBHOOK_SECRET,
    )
    .await;
    assert_eq!(
        (status, applied["outcome"].as_str()),
        (StatusCode::OK, Some("updated")),
        "{applied}"
    );
    let memory = memory_of_item(&platform, &tenant, 1)
        .await
        .expect("issue 1");
    assert!(
        memory["content"]
            .as_str()
            .is_some_and(|c| c.contains("retuned over the webhook"))
    );
    // GitHub redelivers it: nothing happens again.
    let (status, again) = send(
        "projects_v2_item",
        delivery,
        item_event("edited", &first, &project),
        WEBHOOK_SECRET,
    )
    .await;
    assert_eq!(
        (status, again["outcome"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );

    // A bad signature is 401 and changes nothing, nor does a signature for another tenant.
    github.edit(&first, |item| item.title = "Gripper task 1: forged".into());
    let (status, refused) = send(
        "projects_v2_item",
        unique("d-"),
        item_event("edited", &first, &project),
        "not-the-secret",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(refused["error_code"], "BAD_SIGNATURE");
    let (status, _) = deliver(
        &platform,
        &other.name,
        "roadmap",
        "projects_v2_item",
        &unique("d-"),
        &item_event("edited", &first, &project),
        WEBHOOK_SECRET,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "another tenant's name does not verify"
    );
    let (status, _) = deliver(
        &platform,
        "no-such-tenant",
        "roadmap",
        "ping",
        &unique("d-"),
        &json!({}),
        WEBHOOK_SECRET,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let memory = memory_of_item(&platform, &tenant, 1)
        .await
        .expect("issue 1");
    assert!(
        !memory["content"]
            .as_str()
            .is_some_and(|c| c.contains("forged")),
        "{memory}"
    );

    // An issue edited on GitHub refreshes the board's item showing it.
    let second = github.items()[1].clone();
    github.edit(&second.id, |item| {
        item.title = "Gripper task 2: renamed on the issue".into()
    });
    let (status, refreshed) = send(
        "issues",
        unique("d-"),
        json!({"action": "edited", "issue": {"node_id": second.content_id(), "number": 2}}),
        WEBHOOK_SECRET,
    )
    .await;
    assert_eq!(
        (status, refreshed["outcome"].as_str()),
        (StatusCode::OK, Some("updated")),
        "{refreshed}"
    );
    let memory = memory_of_item(&platform, &tenant, 2)
        .await
        .expect("issue 2");
    assert!(
        memory["content"]
            .as_str()
            .is_some_and(|c| c.contains("renamed on the issue"))
    );

    // GitHub cannot be asked about the item: 502, and GitHub's redelivery of it is handled.
    github.edit(&second.id, |item| {
        item.title = "Gripper task 2: after an outage".into()
    });
    for _ in 0..5 {
        github.push_fault(Fault::BadGateway);
    }
    let delivery = unique("d-");
    let (status, failed) = send(
        "projects_v2_item",
        delivery.clone(),
        item_event("edited", &second.id, &project),
        WEBHOOK_SECRET,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{failed}");
    let (status, redelivered) = send(
        "projects_v2_item",
        delivery,
        item_event("edited", &second.id, &project),
        WEBHOOK_SECRET,
    )
    .await;
    assert_eq!(
        (status, redelivered["outcome"].as_str()),
        (StatusCode::OK, Some("updated")),
        "{redelivered}"
    );

    // Deleted from the board: the memory goes; another board's items are not ours.
    let (status, removed) = send(
        "projects_v2_item",
        unique("d-"),
        item_event("deleted", &first, &project),
        WEBHOOK_SECRET,
    )
    .await;
    assert_eq!(
        (status, removed["outcome"].as_str()),
        (StatusCode::OK, Some("removed")),
        "{removed}"
    );
    assert_eq!(memory_of_item(&platform, &tenant, 1).await, None);
    let (status, ignored) = send(
        "projects_v2_item",
        unique("d-"),
        item_event("edited", &second.id, "PVT_kwDOanotherboard"),
        WEBHOOK_SECRET,
    )
    .await;
    assert_eq!(
        (status, ignored["outcome"].as_str()),
        (StatusCode::OK, Some("ignored"))
    );
    platform.shutdown().await;
}
