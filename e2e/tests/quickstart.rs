//! The quick start as a newcomer runs it: the binary on embedded defaults, a demo tenant whose
//! key is written to the data directory, memories stored and found by meaning over HTTP,
//! and a restart that keeps everything.

use std::time::Duration;

use memoryc_e2e::{free_port, run_platform, spawn_platform, wait_until_ready};
use serde_json::{Value, json};

use memoryc_e2e::model_dir;

#[tokio::test]
async fn embedded_quickstart_serves_the_demo_tenant_and_survives_a_restart() {
    let data = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let env = [
        ("MEMORYC_SERVER__LISTEN", format!("127.0.0.1:{port}")),
        (
            "MEMORYC_SERVER__DATA_DIR",
            data.path().display().to_string(),
        ),
        ("MEMORYC_EMBEDDING__MODEL_DIR", model_dir()),
    ];
    let client = reqwest::Client::new();
    let memory_id;
    {
        let _server = spawn_platform(&["serve"], &env).expect("platform starts");
        assert!(wait_until_ready(&format!("{base}/readyz"), Duration::from_secs(60)).await);
        let key = std::fs::read_to_string(data.path().join("demo-api-key")).expect("demo key file");
        let key = key.trim();
        assert!(key.starts_with("mck_"), "{key}");

        let created: Value = client
            .post(format!("{base}/api/v1/memories"))
            .header("X-API-Key", key)
            .json(&json!({"content": "User prefers dark mode in every editor and terminal."}))
            .send()
            .await
            .expect("post")
            .json()
            .await
            .expect("json");
        assert_eq!(created["category"], "PREFERENCE", "{created}");
        memory_id = created["memory_id"].as_str().expect("id").to_string();
        client
            .post(format!("{base}/api/v1/memories"))
            .header("X-API-Key", key)
            .json(&json!({"content": "The deploy pipeline runs cargo test before every release."}))
            .send()
            .await
            .expect("post");
    }
    // Restart on the same data directory: same key, same memories, still found by meaning.
    let _server = spawn_platform(&["serve"], &env).expect("platform restarts");
    assert!(wait_until_ready(&format!("{base}/readyz"), Duration::from_secs(60)).await);
    let key = std::fs::read_to_string(data.path().join("demo-api-key")).expect("demo key file");
    let found: Value = client
        .get(format!("{base}/api/v1/memories"))
        .query(&[
            ("query", "which colour theme does the user like?"),
            ("limit", "1"),
        ])
        .header("X-API-Key", key.trim())
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("json");
    assert_eq!(
        found["results"][0]["memory_id"],
        memory_id.as_str(),
        "{found}"
    );
}

#[tokio::test]
async fn tenant_create_prints_a_working_admin_key_as_json() {
    let data = tempfile::tempdir().expect("temp dir");
    // Managing tenants loads no model: these commands work where its files are not.
    let env = [
        (
            "MEMORYC_SERVER__DATA_DIR",
            data.path().display().to_string(),
        ),
        (
            "MEMORYC_EMBEDDING__MODEL_DIR",
            "/nonexistent/model".to_string(),
        ),
    ];
    let output = run_platform(
        &["tenant", "create", "acme", "--isolation", "Dedicated"],
        &env,
    )
    .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(created["tenant"], "acme");
    assert_eq!(created["isolation"], "Dedicated");
    assert_eq!(created["role"], "tenant-admin");
    let key = created["api_key"].as_str().expect("key").to_string();

    let again = run_platform(&["tenant", "create", "acme"], &env).expect("runs");
    assert!(
        !again.status.success(),
        "a second tenant with the same name is refused"
    );
    let invalid = run_platform(&["tenant", "create", "Not_Valid"], &env).expect("runs");
    assert!(!invalid.status.success());

    let port = free_port();
    let mut serve_env = env.to_vec();
    serve_env.retain(|(name, _)| *name != "MEMORYC_EMBEDDING__MODEL_DIR");
    serve_env.push(("MEMORYC_EMBEDDING__MODEL_DIR", model_dir()));
    serve_env.push(("MEMORYC_SERVER__LISTEN", format!("127.0.0.1:{port}")));
    serve_env.push(("MEMORYC_SERVER__DEMO_TENANT", "false".to_string()));
    let _server = spawn_platform(&["serve"], &serve_env).expect("serves");
    let base = format!("http://127.0.0.1:{port}");
    assert!(wait_until_ready(&format!("{base}/readyz"), Duration::from_secs(60)).await);
    let response = reqwest::Client::new()
        .get(format!("{base}/api/v1/memories"))
        .header("X-API-Key", key)
        .send()
        .await
        .expect("list");
    assert_eq!(response.status(), 200);
    assert!(!data.path().join("demo-api-key").exists());
}

/// A setting under its previous release's name still applies, and the binary says what to use
/// instead.
#[test]
fn an_old_setting_name_applies_with_a_warning_naming_the_new_one() {
    let data = tempfile::tempdir().expect("temp dir");
    let env = [("MEMORYC_DATA_DIR", data.path().display().to_string())];
    let output = run_platform(&["tenant", "create", "legacy"], &env).expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        data.path().join("sqlite").is_dir(),
        "the old name's data directory is used"
    );
    assert!(
        stderr.lines().any(|line| line
            .contains("MEMORYC_DATA_DIR is a name of the previous release")
            && line.contains("MEMORYC_SERVER__DATA_DIR")),
        "{stderr}"
    );
}
