//! A GitHub Projects sync of a 1 000-item board: a platform on its embedded defaults (or on
//! PostgreSQL + Milvus with `BENCH_BACKEND=postgres-milvus`) reads the board from a local
//! GitHub in this process that answers in GitHub's wire format (the tests' fake, built from the
//! schema-checked fixtures). Prints the time and the GitHub requests of the first sync (every
//! item becomes a memory), of a sync with nothing changed, of one after 10 items changed, and
//! the points GitHub's rate limit has left.
//!
//! `cargo bench -p memoryc-platform --bench github_sync_bench`. Environment: `BENCH_ITEMS`
//! (default 1000), `BENCH_BACKEND`, `MEMORYC_MODEL_DIR`; for PostgreSQL + Milvus also
//! `MEMORYC_TEST_DATABASE_URL` and `MEMORYC_TEST_MILVUS_URL` (defaults on 127.0.0.1).

#[path = "../tests/test_support/fake_github.rs"]
mod fake_github;

use std::time::Instant;

use fake_github::{FakeGitHub, FakeItem, Kind};
use memoryc_crds::layout::Isolation;
use memoryc_platform::app::Platform;
use memoryc_platform::config::{Config, LogFormat, RelationalBackend, VectorBackend};
use serde_json::{Value, json};

const TOKEN: &str = "ghp_benchtoken";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let items = std::env::var("BENCH_ITEMS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1000u64);
    let backend = std::env::var("BENCH_BACKEND").unwrap_or_else(|_| "embedded".to_string());
    let github = FakeGitHub::start(TOKEN).await;
    github.set_items(
        (1..=items)
            .map(|n| {
                let mut item = FakeItem::issue(n, &format!("Task {n}: calibrate gripper finger {n}"));
                item.body = format!(
                    "Finger {n} drifts by {} mm after a firmware update; measure it on the test block and store the offset.",
                    n % 9
                );
                if n % 4 == 0 {
                    item.kind = Kind::PullRequest;
                    item.state = "MERGED".into();
                }
                item
            })
            .collect(),
    );

    let data_dir = tempfile::tempdir()?;
    let mut config = Config::default();
    config.server.data_dir = data_dir.path().to_path_buf();
    config.server.demo_tenant = false;
    config.server.log_format = LogFormat::Text;
    config.embedding.model_dir = model_dir();
    config.limits.rate_limit_per_minute = 0;
    // Each sync answers with its report, however long it takes.
    config.limits.request_timeout = std::time::Duration::from_secs(3600);
    config.integrations.github_api_url = github.url.clone();
    if std::env::var("BENCH_ANALYTICS").as_deref() == Ok("off") {
        config.analytics.enabled = false;
    }
    if backend == "postgres-milvus" {
        config.storage.relational_backend = RelationalBackend::Postgres;
        config.storage.vector_backend = VectorBackend::Milvus;
        config.storage.database_url = env_or(
            "MEMORYC_TEST_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/postgres",
        );
        config.storage.milvus_url = env_or("MEMORYC_TEST_MILVUS_URL", "http://127.0.0.1:19530");
        config.storage.control_schema = format!("memoryc_bench_{}", std::process::id());
    }
    let platform = Platform::build(config).await?;
    let tenant = format!("bench-github-{}", std::process::id());
    let created = platform
        .state
        .tenants
        .create(&tenant, None, Isolation::Shared)
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(platform.serve(listener, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3600))
        .build()?;
    let key = created.api_key;
    let answer = client
        .post(format!("{base}/api/v1/integrations"))
        .header("X-API-Key", &key)
        .json(
            &json!({"name": "board", "kind": "GitHubProjects", "paused": true,
                      "github": {"owner": "acme-robotics", "projectNumber": 7}, "secret": TOKEN}),
        )
        .send()
        .await?;
    if !answer.status().is_success() {
        return Err(format!("integration not created: {}", answer.text().await?).into());
    }
    let sync = || async {
        let started = Instant::now();
        let report: Value = client
            .post(format!("{base}/api/v1/integrations/board/sync"))
            .header("X-API-Key", &key)
            .send()
            .await?
            .json()
            .await?;
        Ok::<_, reqwest::Error>((started.elapsed(), report))
    };
    println!(
        "GitHub Projects sync, {items} items, {backend}, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let (took, first) = sync().await?;
    print_run("first sync (every item new)", took, &first, items);
    let (took, unchanged) = sync().await?;
    print_run("nothing changed", took, &unchanged, items);
    for item in github.items().iter().take(10) {
        github.edit(&item.id, |item| item.status = "Done".into());
    }
    let (took, changed) = sync().await?;
    print_run("10 items changed", took, &changed, items);
    let _ = stop.send(());
    server.await??;
    Ok(())
}

fn print_run(label: &str, took: std::time::Duration, report: &Value, items: u64) {
    println!(
        "{label}: {:.2} s ({:.0} items/s), {} GitHub requests, created {} updated {} unchanged {} removed {}, rate limit left {}",
        took.as_secs_f64(),
        items as f64 / took.as_secs_f64(),
        report["requests"],
        report["created"],
        report["updated"],
        report["unchanged"],
        report["removed"],
        report["rate_limit_remaining"],
    );
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// `MEMORYC_MODEL_DIR`, else the package in the virtualenv `MEMORYC_VENV` names or in the
/// checkout's `.venv`.
fn model_dir() -> std::path::PathBuf {
    let checkout = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    memoryc_platform::embedding::model_location::for_checkout(checkout).unwrap_or_default()
}
