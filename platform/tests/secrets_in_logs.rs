//! Secrets never reach the logs: runs the real binary with verbose logging, drives a full
//! session (keys issued, used, revoked and forged; JWTs good and bad; personal data in content
//! and queries), stops it, and searches everything it logged.

mod test_support;

use std::process::Stdio;
use std::time::Duration;

use memoryc_platform::auth::api_key;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const JWT_SECRET: &str = "log-test-hs256-secret-that-must-never-be-logged";
const EMAIL: &str = "leak.me@example.com";
const CARD: &str = "4111 1111 1111 1111";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn jwt(claims: Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("token signs")
}

#[tokio::test]
async fn a_full_run_on_postgres_milvus_and_redis_logs_no_secret() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let log_path = data_dir.path().join("platform.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_memoryc-platform"));
    // The platform refuses MEMORYC_* variables it does not know (the tests' own among them).
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("MEMORYC_")) {
        command.env_remove(name);
    }
    let mut child = command
        .arg("serve")
        .env("MEMORYC_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("MEMORYC_SERVER__DATA_DIR", data_dir.path())
        .env("MEMORYC_MODEL_DIR", test_support::model_dir())
        .env("MEMORYC_SERVER__LOG_FORMAT", "json")
        .env("MEMORYC_SECURITY__JWT_HS256_SECRET", JWT_SECRET)
        .env(
            "MEMORYC_STORAGE__REDIS_URL",
            std::env::var("MEMORYC_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string()),
        )
        .env(
            "RUST_LOG",
            "debug,memoryc_platform=trace,tower_http=trace,hyper=info,h2=info",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("the platform binary starts");
    let client = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let mut ready = false;
    for _ in 0..300 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        ready,
        "the platform did not come up; see {}",
        log_path.display()
    );
    let demo_key = std::fs::read_to_string(data_dir.path().join("demo-api-key"))
        .expect("demo key file")
        .trim()
        .to_string();

    let call =
        |method: reqwest::Method, path: &str, auth: Option<(&str, String)>, body: Option<Value>| {
            let mut request = client.request(method, format!("{base}{path}"));
            if let Some((header, value)) = auth {
                request = request.header(header, value);
            }
            if let Some(body) = body {
                request = request.json(&body);
            }
            request.send()
        };
    let as_key = |key: &str| Some(("X-API-Key", key.to_string()));
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;

    let created = call(
        post.clone(),
        "/api/v1/memories",
        as_key(&demo_key),
        Some(json!({"content": format!("Mail {EMAIL}, card {CARD}."), "category": "PREFERENCE"})),
    )
    .await
    .expect("sent");
    assert_eq!(created.status(), StatusCode::CREATED);
    let issued: Value = call(
        post.clone(),
        "/api/v1/keys",
        as_key(&demo_key),
        Some(json!({"name": "log test", "role": "service"})),
    )
    .await
    .expect("sent")
    .json()
    .await
    .expect("json");
    let issued_key = issued["api_key"].as_str().expect("key").to_string();
    let searched = call(
        get.clone(),
        &format!(
            "/api/v1/memories?query={}&mode=exact",
            EMAIL.replace('@', "%40")
        ),
        as_key(&issued_key),
        None,
    )
    .await
    .expect("sent");
    assert_eq!(searched.status(), StatusCode::OK);
    let revoked = call(
        reqwest::Method::DELETE,
        &format!("/api/v1/keys/{}", issued["key_id"].as_str().expect("id")),
        as_key(&demo_key),
        None,
    )
    .await
    .expect("sent");
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let after = call(get.clone(), "/api/v1/memories", as_key(&issued_key), None)
        .await
        .expect("sent");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    let forged_key = "mck_0123456789ab_fedcba9876543210fedcba9876543210";
    assert_eq!(
        call(get.clone(), "/api/v1/memories", as_key(forged_key), None)
            .await
            .expect("sent")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let good_jwt = jwt(
        json!({"sub": "log-agent", "tenant": "demo", "roles": ["service"], "exp": chrono::Utc::now().timestamp() + 600}),
        JWT_SECRET,
    );
    let bad_jwt = jwt(
        json!({"sub": "log-agent", "tenant": "demo", "roles": ["service"], "exp": chrono::Utc::now().timestamp() + 600}),
        "a-forged-secret-that-is-long-enough-to-sign",
    );
    assert_eq!(
        call(
            get.clone(),
            "/api/v1/memories",
            Some(("Authorization", format!("Bearer {good_jwt}"))),
            None
        )
        .await
        .expect("sent")
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        call(
            get.clone(),
            "/api/v1/memories",
            Some(("Authorization", format!("Bearer {bad_jwt}"))),
            None
        )
        .await
        .expect("sent")
        .status(),
        StatusCode::UNAUTHORIZED
    );
    // A denied request is logged with the key's public prefix.
    assert_eq!(
        call(
            get.clone(),
            "/api/v1/admin/tenants",
            as_key(&demo_key),
            None
        )
        .await
        .expect("sent")
        .status(),
        StatusCode::FORBIDDEN
    );

    let pid = child.id().expect("pid");
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let exited = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    assert!(exited.is_ok(), "the platform did not stop on SIGTERM");
    let logged = std::fs::read_to_string(&log_path).expect("log");

    // The log is real: it saw the start, the requests and the denial.
    assert!(logged.contains("memoryc platform listening"), "{logged}");
    assert!(logged.contains("/api/v1/keys"), "requests were not logged");
    let prefix = api_key::prefix_of(&demo_key).expect("prefix");
    assert!(
        logged.contains(&format!("key:{prefix}")),
        "the denial was not logged"
    );
    let secrets = [
        ("the demo key", demo_key.clone()),
        ("the demo key's hash", api_key::hash(&demo_key)),
        ("an issued key", issued_key.clone()),
        ("a forged key", forged_key.to_string()),
        ("the JWT secret", JWT_SECRET.to_string()),
        ("a JWT", good_jwt.clone()),
        ("a forged JWT", bad_jwt.clone()),
        (
            "the JWT's signature",
            good_jwt.rsplit('.').next().unwrap_or_default().to_string(),
        ),
        ("an e-mail address from content", EMAIL.to_string()),
        ("a card number from content", CARD.to_string()),
    ];
    for (what, secret) in secrets {
        assert!(!secret.is_empty());
        if let Some(line) = logged.lines().find(|line| line.contains(&secret)) {
            panic!("{what} was logged: {line}");
        }
    }
}
