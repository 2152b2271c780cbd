//! Outbound webhooks end to end: a platform on its embedded defaults delivers a tenant's events
//! to a receiver that verifies every signature with the Standard Webhooks reference library
//! (`tests/fixtures/webhook_receiver.py`, PyPI `standardwebhooks`), through outages, restarts and
//! dead letters; destinations outside the allowed networks are refused.

mod test_support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::{Backends, TestPlatform, TestTenant, eventually, test_config};
use tokio::io::AsyncBufReadExt;

const WAIT: Duration = Duration::from_secs(30);

/// The Python of the test virtualenv (`MEMORYC_VENV`, else the checkout's `.venv`), which
/// `scripts/test` gives the `standardwebhooks` package.
fn python() -> PathBuf {
    let venv = std::env::var_os("MEMORYC_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv")));
    venv.join("bin").join("python")
}

/// A receiver process verifying with `secret`.
struct Receiver {
    process: tokio::process::Child,
    base: String,
    client: reqwest::Client,
}

impl Receiver {
    async fn start(secret: &str) -> Self {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/webhook_receiver.py"
        );
        let mut process = tokio::process::Command::new(python())
            .arg(script)
            .arg(secret)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "the webhook receiver needs the test virtualenv's Python ({}): {error}",
                    python().display()
                )
            });
        let stdout = process.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let port = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("the receiver starts (is standardwebhooks installed? scripts/test installs it)")
            .expect("read")
            .expect("the receiver prints its port");
        Self {
            process,
            base: format!("http://127.0.0.1:{}", port.trim()),
            client: reqwest::Client::new(),
        }
    }

    fn url(&self) -> String {
        format!("{}/hook", self.base)
    }

    async fn set_down(&self, down: bool) {
        let path = if down { "down" } else { "up" };
        let status = self
            .client
            .post(format!("{}/control/{path}", self.base))
            .send()
            .await
            .expect("control")
            .status();
        assert_eq!(status, StatusCode::NO_CONTENT);
    }

    async fn received(&self) -> Vec<Value> {
        self.client
            .get(format!("{}/received", self.base))
            .send()
            .await
            .expect("received")
            .json()
            .await
            .expect("json")
    }

    /// Verified deliveries of `event_type`.
    async fn verified(&self, event_type: &str) -> Vec<Value> {
        self.received()
            .await
            .into_iter()
            .filter(|record| record["verified"] == true && record["body"]["type"] == event_type)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.process.start_kill();
    }
}

fn signing_secret() -> String {
    memoryc_crds::contract::webhook_signing::generate()
}

/// A platform that may deliver to loopback, retrying quickly.
async fn platform_delivering_to_loopback(max_attempts: u32) -> TestPlatform {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = loopback_config(data_dir.path().to_path_buf(), max_attempts);
    TestPlatform::start_with(config, data_dir).await
}

fn loopback_config(data_dir: PathBuf, max_attempts: u32) -> memoryc_platform::config::Config {
    let mut config = test_config(Backends::Embedded, data_dir);
    config.integrations.allowed_networks = vec!["127.0.0.1/32".to_string()];
    config.integrations.webhook_retry_min = Duration::from_millis(100);
    config.integrations.webhook_retry_max = Duration::from_millis(400);
    config.integrations.webhook_max_attempts = max_attempts;
    config.integrations.poll_interval = Duration::from_millis(100);
    config
}

async fn add_webhook(
    platform: &TestPlatform,
    tenant: &TestTenant,
    name: &str,
    url: &str,
    events: Value,
    secret: &str,
) -> Value {
    let (status, body) = platform
        .call(
            Method::POST,
            "/api/v1/integrations",
            Some(&tenant.api_key),
            Some(json!({"name": name, "kind": "Webhook",
                        "webhook": {"url": url, "events": events}, "secret": secret})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body.get("secret").is_none(), "a given secret is not echoed");
    body
}

async fn deliveries(
    platform: &TestPlatform,
    tenant: &TestTenant,
    name: &str,
    query: &str,
) -> Vec<Value> {
    let (status, body) = platform
        .call(
            Method::GET,
            &format!("/api/v1/integrations/{name}/deliveries{query}"),
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["deliveries"].as_array().cloned().unwrap_or_default()
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
        .and_then(|all| all.iter().find(|each| each["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

/// A tenant of `platform` with a webhook `hook` (every event) to a receiver that is down, and a
/// memory with `content` added: its delivery waits for the receiver.
async fn hook_to_a_receiver_down(platform: &TestPlatform, content: &str) -> (TestTenant, Receiver) {
    let tenant = platform.create_tenant("Shared").await;
    let secret = signing_secret();
    let receiver = Receiver::start(&secret).await;
    add_webhook(
        platform,
        &tenant,
        "hook",
        &receiver.url(),
        json!([]),
        &secret,
    )
    .await;
    receiver.set_down(true).await;
    platform
        .create_memory(&tenant.api_key, json!({"content": content}))
        .await;
    (tenant, receiver)
}

/// Whether `count` deliveries of `hook` match `query` within the wait.
async fn deliveries_come_to(
    platform: &TestPlatform,
    tenant: &TestTenant,
    query: &str,
    count: usize,
) -> bool {
    eventually(WAIT, || async {
        deliveries(platform, tenant, "hook", query).await.len() == count
    })
    .await
}

#[tokio::test]
async fn subscribed_events_arrive_signed_per_standard_webhooks() {
    let platform = platform_delivering_to_loopback(5).await;
    let tenant = platform.create_tenant("Shared").await;
    let secret = signing_secret();
    let receiver = Receiver::start(&secret).await;
    add_webhook(
        &platform,
        &tenant,
        "ops-hook",
        &receiver.url(),
        json!(["memory.created", "memory.deleted"]),
        &secret,
    )
    .await;
    // Signed with another key: the receiver's library must refuse these.
    add_webhook(
        &platform,
        &tenant,
        "wrong-key",
        &receiver.url(),
        json!(["memory.created"]),
        &signing_secret(),
    )
    .await;

    let memory = platform
        .create_memory(
            &tenant.api_key,
            json!({"content": "The payments API moves to the new region on Monday"}),
        )
        .await;
    let id = memory["memory_id"].as_str().expect("id").to_string();
    assert!(
        eventually(WAIT, || async {
            !receiver.verified("memory.created").await.is_empty()
        })
        .await,
        "memory.created arrives: {:?}",
        receiver.received().await
    );
    let created = receiver.verified("memory.created").await;
    let body = &created[0]["body"];
    assert_eq!(body["data"]["memory"]["memory_id"], id.as_str());
    assert_eq!(
        body["data"]["memory"]["content"],
        "The payments API moves to the new region on Monday"
    );
    assert_eq!(body["data"]["tenant"], tenant.name.as_str());

    let (status, _) = platform
        .call(
            Method::PATCH,
            &format!("/api/v1/memories/{id}"),
            Some(&tenant.api_key),
            Some(json!({"content": "The payments API moves on Tuesday"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = platform
        .call(
            Method::DELETE,
            &format!("/api/v1/memories/{id}"),
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        eventually(WAIT, || async {
            !receiver.verified("memory.deleted").await.is_empty()
        })
        .await,
        "memory.deleted arrives"
    );
    assert!(
        receiver.verified("memory.updated").await.is_empty(),
        "memory.updated is not subscribed"
    );

    // The other key's delivery was refused by the verifier, and the platform says so.
    assert!(
        eventually(WAIT, || async {
            deliveries(&platform, &tenant, "wrong-key", "?status=failed")
                .await
                .iter()
                .any(|delivery| delivery["last_response_status"] == 400)
        })
        .await,
        "a wrongly signed delivery is refused and recorded as failed"
    );
    let unverified = receiver
        .received()
        .await
        .into_iter()
        .filter(|record| record["verified"] == false)
        .count();
    assert!(unverified >= 1);

    let delivered = deliveries(&platform, &tenant, "ops-hook", "?status=delivered").await;
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    let ids: Vec<&str> = delivered
        .iter()
        .filter_map(|delivery| delivery["delivery_id"].as_str())
        .collect();
    for record in receiver.verified("memory.created").await {
        assert!(ids.contains(&record["id"].as_str().unwrap_or_default()));
    }
    let state = integration(&platform, &tenant, "ops-hook").await;
    assert_eq!(state["state"]["connected"], true, "{state}");
    assert_eq!(state["state"]["items_synced"], 2);
    assert_eq!(state["managed_by"], "api");
    assert!(
        !state.to_string().contains(&secret),
        "the secret is never shown"
    );
    let wrong = integration(&platform, &tenant, "wrong-key").await;
    assert_eq!(wrong["state"]["connected"], false, "{wrong}");
    platform.shutdown().await;
}

#[tokio::test]
async fn events_wait_out_an_outage_and_each_arrives_once() {
    let platform = platform_delivering_to_loopback(50).await;
    let (tenant, receiver) = hook_to_a_receiver_down(&platform, "Outage note number 0").await;
    for n in 1..3 {
        platform
            .create_memory(
                &tenant.api_key,
                json!({"content": format!("Outage note number {n}")}),
            )
            .await;
    }
    assert!(
        eventually(WAIT, || async {
            let failed = deliveries(&platform, &tenant, "hook", "?status=failed").await;
            failed.len() == 3
                && failed
                    .iter()
                    .all(|delivery| delivery["last_response_status"] == 503)
        })
        .await,
        "attempts fail while the receiver is down: {:?}",
        deliveries(&platform, &tenant, "hook", "").await
    );
    assert_eq!(
        integration(&platform, &tenant, "hook").await["state"]["connected"],
        false
    );
    receiver.set_down(false).await;
    assert!(
        deliveries_come_to(&platform, &tenant, "?status=delivered", 3).await,
        "every event arrives once the receiver is back"
    );
    // Give a duplicate the chance to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let created = receiver.verified("memory.created").await;
    let mut ids: Vec<String> = created
        .iter()
        .filter_map(|record| record["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 3, "{created:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "no webhook-id twice");
    platform.shutdown().await;
}

#[tokio::test]
async fn a_delivery_out_of_attempts_is_dead_until_retried() {
    let platform = platform_delivering_to_loopback(2).await;
    let (tenant, receiver) =
        hook_to_a_receiver_down(&platform, "A memory whose webhook dies").await;
    assert!(
        deliveries_come_to(&platform, &tenant, "?status=dead", 1).await,
        "dead-lettered after two attempts"
    );
    let dead = deliveries(&platform, &tenant, "hook", "?status=dead").await;
    assert_eq!(dead[0]["attempts"], 2);
    let state = integration(&platform, &tenant, "hook").await;
    assert!(
        state["state"]["last_error"]
            .as_str()
            .is_some_and(|error| error.contains("503")),
        "{state}"
    );
    // A dead delivery stays dead.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        deliveries(&platform, &tenant, "hook", "?status=dead")
            .await
            .len(),
        1
    );

    receiver.set_down(false).await;
    let id = dead[0]["delivery_id"].as_str().expect("id");
    let path = format!("/api/v1/integrations/hook/deliveries/{id}/retry");
    let (status, body) = platform
        .call(Method::POST, &path, Some(&tenant.api_key), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(
        deliveries_come_to(&platform, &tenant, "?status=delivered", 1).await,
        "delivered once retried"
    );
    let (status, body) = platform
        .call(Method::POST, &path, Some(&tenant.api_key), None)
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a delivered one is not retried: {body}"
    );
    assert_eq!(receiver.verified("memory.created").await.len(), 1);
    platform.shutdown().await;
}

#[tokio::test]
async fn a_queued_delivery_survives_a_restart() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = loopback_config(data_dir.path().to_path_buf(), 50);
    let mut platform = TestPlatform::start_with(config.clone(), data_dir).await;
    let (tenant, receiver) =
        hook_to_a_receiver_down(&platform, "Written just before a restart").await;
    assert!(deliveries_come_to(&platform, &tenant, "?status=failed", 1).await);
    platform.stop_server().await;
    receiver.set_down(false).await;
    let restarted = TestPlatform::start_with(config, platform.data_dir).await;
    assert!(
        eventually(WAIT, || async {
            receiver.verified("memory.created").await.len() == 1
        })
        .await,
        "the restarted platform delivers what was queued"
    );
    restarted.shutdown().await;
}

#[tokio::test]
async fn erasing_a_memory_erases_the_deliveries_that_show_it() {
    let platform = platform_delivering_to_loopback(50).await;
    let (tenant, _receiver) =
        hook_to_a_receiver_down(&platform, "A note to be erased, with its webhooks").await;
    assert!(deliveries_come_to(&platform, &tenant, "?status=failed", 1).await);
    let waiting = deliveries(&platform, &tenant, "hook", "").await;
    let id = waiting[0]["payload"]["data"]["memory_id"]
        .as_str()
        .expect("memory id")
        .to_string();
    let (status, _) = platform
        .call(
            Method::DELETE,
            &format!("/api/v1/memories/{id}?purge=true"),
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let left = deliveries(&platform, &tenant, "hook", "").await;
    assert!(
        !Value::from(left.clone())
            .to_string()
            .contains("to be erased"),
        "no delivery shows the erased memory: {left:?}"
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn destinations_off_the_public_internet_are_refused_unless_allowed() {
    let platform = TestPlatform::start(Backends::Embedded).await;
    let tenant = platform.create_tenant("Shared").await;
    for (url, expected) in [
        ("http://127.0.0.1:9/hook", "https"),
        ("https://127.0.0.1/hook", "not a public address"),
        (
            "https://169.254.169.254/latest/meta-data",
            "not a public address",
        ),
        ("https://[::1]/hook", "not a public address"),
        ("http://hooks.example/hook", "https"),
    ] {
        let (status, body) = platform
            .call(
                Method::POST,
                "/api/v1/integrations",
                Some(&tenant.api_key),
                Some(json!({"name": "hook", "kind": "Webhook", "webhook": {"url": url}})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert!(body.to_string().contains(expected), "{url}: {body}");
    }
    // A public https URL is taken, with a generated secret shown once.
    let (status, body) = platform
        .call(
            Method::POST,
            "/api/v1/integrations",
            Some(&tenant.api_key),
            Some(json!({"name": "hook", "kind": "Webhook", "webhook": {"url": "https://hooks.example/m"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let secret = body["secret"].as_str().expect("generated secret");
    assert!(memoryc_crds::contract::webhook_signing::signing_key(secret).is_ok());
    let (status, listed) = platform
        .call(
            Method::GET,
            "/api/v1/integrations",
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!listed.to_string().contains(secret), "never shown again");
    let (status, _) = platform
        .call(
            Method::POST,
            "/api/v1/integrations",
            Some(&tenant.api_key),
            Some(json!({"name": "hook", "kind": "Webhook", "webhook": {"url": "https://hooks.example/n"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    for (body, field) in [
        (
            json!({"name": "Bad Name", "kind": "Webhook", "webhook": {"url": "https://hooks.example/"}}),
            "name",
        ),
        (
            json!({"name": "hook2", "kind": "Webhook", "github": {"owner": "o", "projectNumber": 1}}),
            "webhook",
        ),
        (json!({"name": "hook2", "kind": "Webhook"}), "webhook"),
        (
            json!({"name": "hook2", "kind": "Webhook", "webhook": {"url": "https://hooks.example/"}, "secret": "hunter2"}),
            "secret",
        ),
    ] {
        let (status, answer) = platform
            .call(
                Method::POST,
                "/api/v1/integrations",
                Some(&tenant.api_key),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(answer.to_string().contains(field), "{field}: {answer}");
    }
    let (status, answer) = platform
        .call(
            Method::POST,
            "/api/v1/integrations",
            Some(&tenant.api_key),
            Some(json!({"name": "hook3", "kind": "Webhook", "webhook": {"url": "https://hooks.example/", "events": ["memory.exploded"]}})),
        )
        .await;
    assert!(
        status.is_client_error(),
        "an unknown event is refused: {answer}"
    );
    let (status, _) = platform
        .call(
            Method::DELETE,
            "/api/v1/integrations/hook",
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // One the operator registered from an IntegrationBinding goes with its binding only.
    let control = platform.databases().await.control();
    memoryc_control::integrations::register(
        control,
        &tenant.name,
        &memoryc_control::integrations::IntegrationRecord {
            name: "from-binding".into(),
            kind: "Webhook".into(),
            settings: json!({"url": "https://hooks.example/binding"}),
            secret_name: "hook-signing".into(),
            secret: Some(signing_secret()),
            inbound_secret: None,
            sync_schedule: None,
            paused: false,
        },
    )
    .await
    .expect("registered")
    .expect("tenant exists");
    assert_eq!(
        integration(&platform, &tenant, "from-binding").await["managed_by"],
        "operator"
    );
    let (status, body) = platform
        .call(
            Method::DELETE,
            "/api/v1/integrations/from-binding",
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        !integration(&platform, &tenant, "from-binding")
            .await
            .is_null()
    );
    let (status, _) = platform
        .call(
            Method::DELETE,
            "/api/v1/integrations/hook",
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    platform.shutdown().await;
}

#[tokio::test]
async fn one_tenants_webhooks_are_invisible_to_another_and_get_none_of_its_events() {
    let platform = platform_delivering_to_loopback(5).await;
    let alpha = platform.create_tenant("Shared").await;
    let beta = platform.create_tenant("Shared").await;
    let secret = signing_secret();
    let receiver = Receiver::start(&secret).await;
    add_webhook(
        &platform,
        &alpha,
        "alpha-hook",
        &receiver.url(),
        json!([]),
        &secret,
    )
    .await;
    platform
        .create_memory(&beta.api_key, json!({"content": "Beta's private plan"}))
        .await;
    platform
        .create_memory(&alpha.api_key, json!({"content": "Alpha's own note"}))
        .await;
    assert!(
        eventually(WAIT, || async {
            !receiver.verified("memory.created").await.is_empty()
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let contents: Vec<String> = receiver
        .verified("memory.created")
        .await
        .iter()
        .map(|record| record["body"]["data"]["memory"]["content"].to_string())
        .collect();
    assert_eq!(contents, vec!["\"Alpha's own note\"".to_string()]);

    let (status, listed) = platform
        .call(
            Method::GET,
            "/api/v1/integrations",
            Some(&beta.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["integrations"], json!([]));
    let alpha_delivery = deliveries(&platform, &alpha, "alpha-hook", "").await[0]["delivery_id"]
        .as_str()
        .expect("id")
        .to_string();
    for (method, path) in [
        (
            Method::GET,
            "/api/v1/integrations/alpha-hook/deliveries".to_string(),
        ),
        (
            Method::POST,
            format!("/api/v1/integrations/alpha-hook/deliveries/{alpha_delivery}/retry"),
        ),
        (
            Method::DELETE,
            "/api/v1/integrations/alpha-hook".to_string(),
        ),
    ] {
        let (status, body) = platform
            .call(method, &path, Some(&beta.api_key), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    assert!(!integration(&platform, &alpha, "alpha-hook").await.is_null());
    platform.shutdown().await;
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let landed = Arc::new(AtomicUsize::new(0));
    let counter = landed.clone();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(|| async {
                (
                    axum::http::StatusCode::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, "/landed")],
                )
            }),
        )
        .route(
            "/landed",
            axum::routing::post(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { axum::http::StatusCode::NO_CONTENT }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let platform = platform_delivering_to_loopback(50).await;
    let tenant = platform.create_tenant("Shared").await;
    add_webhook(
        &platform,
        &tenant,
        "hook",
        &url,
        json!([]),
        &signing_secret(),
    )
    .await;
    platform
        .create_memory(
            &tenant.api_key,
            json!({"content": "A note sent to a redirect"}),
        )
        .await;
    assert!(
        eventually(WAIT, || async {
            deliveries(&platform, &tenant, "hook", "?status=failed")
                .await
                .iter()
                .any(|delivery| delivery["last_response_status"] == 307)
        })
        .await,
        "a redirect is a failed attempt"
    );
    assert_eq!(
        landed.load(Ordering::SeqCst),
        0,
        "the redirect was not followed"
    );
    platform.shutdown().await;
}
