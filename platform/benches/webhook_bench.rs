//! Webhook delivery latency on loopback: a platform on its embedded defaults (events in
//! process, deliveries in SQLite) and a receiver in this process. Memories are added over HTTP
//! one after another, then by concurrent writers; each delivery's latency is the time from the
//! add's answer to the receiver getting its `memory.created`.
//!
//! `cargo bench -p memoryc-platform --bench webhook_bench`. Environment: `BENCH_WEBHOOKS`
//! (sequential adds, default 300), `BENCH_WEBHOOK_BURST` (adds by 32 concurrent writers, default
//! 1000), plus `MEMORYC_MODEL_DIR`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use futures::StreamExt;
use memoryc_crds::layout::Isolation;
use memoryc_platform::app::Platform;
use memoryc_platform::config::{Config, LogFormat};
use serde_json::{Value, json};

/// When each memory's `memory.created` arrived, by memory id.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

const WRITERS: usize = 32;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sequential = env_usize("BENCH_WEBHOOKS", 300);
    let burst = env_usize("BENCH_WEBHOOK_BURST", 1000);
    let arrivals: Arrivals = Arc::default();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_url = format!("http://{}/hook", receiver.local_addr()?);
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(arrivals.clone());
    tokio::spawn(async move { axum::serve(receiver, app).await });

    let data_dir = tempfile::tempdir()?;
    let mut config = Config::default();
    config.server.data_dir = data_dir.path().to_path_buf();
    config.server.demo_tenant = false;
    config.server.log_format = LogFormat::Text;
    config.embedding.model_dir = model_dir();
    config.limits.rate_limit_per_minute = 0;
    config.integrations.allowed_networks = vec!["127.0.0.1/32".to_string()];
    let platform = Platform::build(config).await?;
    let created = platform
        .state
        .tenants
        .create("bench-webhooks", None, Isolation::Shared)
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(platform.serve(listener, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let key = created.api_key;
    let answer = client
        .post(format!("{base}/api/v1/integrations"))
        .header("X-API-Key", &key)
        .json(&json!({"name": "bench", "kind": "Webhook",
                      "webhook": {"url": hook_url, "events": ["memory.created"]}}))
        .send()
        .await?;
    if answer.status() != StatusCode::CREATED {
        return Err(format!("integration not created: {}", answer.text().await?).into());
    }

    let mut answered = HashMap::new();
    let mut add = |n: usize| {
        let client = client.clone();
        let base = base.clone();
        let key = key.clone();
        async move {
            let memory: Value = client
                .post(format!("{base}/api/v1/memories"))
                .header("X-API-Key", key)
                .json(&json!({"content": format!("Webhook bench note {n}: the deploy of service {} finished", n % 17)}))
                .send()
                .await?
                .json()
                .await?;
            let id = memory["memory_id"].as_str().unwrap_or_default().to_string();
            Ok::<_, reqwest::Error>((id, Instant::now()))
        }
    };
    for n in 0..sequential {
        let (id, at) = add(n).await?;
        answered.insert(id, at);
    }
    report("one add at a time", &answered, &arrivals, sequential).await;

    let mut burst_answered = HashMap::new();
    let started = Instant::now();
    let mut adds = futures::stream::iter(sequential..sequential + burst)
        .map(&mut add)
        .buffer_unordered(WRITERS);
    while let Some(result) = adds.next().await {
        let (id, at) = result?;
        burst_answered.insert(id, at);
    }
    drop(adds);
    report(
        &format!("{WRITERS} concurrent writers"),
        &burst_answered,
        &arrivals,
        burst,
    )
    .await;
    println!(
        "{burst} adds and their deliveries in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}

async fn receive(State(arrivals): State<Arrivals>, body: String) -> StatusCode {
    let at = Instant::now();
    let id = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|body| body["data"]["memory_id"].as_str().map(str::to_string));
    if let (Some(id), Ok(mut arrivals)) = (id, arrivals.lock()) {
        arrivals.insert(id, at);
    }
    StatusCode::NO_CONTENT
}

/// Waits for every delivery of `answered` (at most a minute) and prints the latencies.
async fn report(
    label: &str,
    answered: &HashMap<String, Instant>,
    arrivals: &Arrivals,
    expected: usize,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut latencies: Vec<Duration> = Vec::new();
    while Instant::now() < deadline {
        latencies = match arrivals.lock() {
            Ok(arrivals) => answered
                .iter()
                .filter_map(|(id, at)| {
                    arrivals
                        .get(id)
                        .map(|arrived| arrived.saturating_duration_since(*at))
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        if latencies.len() == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    latencies.sort();
    println!(
        "{label}: {} of {expected} delivered; latency from the add's answer p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// `MEMORYC_MODEL_DIR`, else the package in the virtualenv `MEMORYC_VENV` names or in the
/// checkout's `.venv`.
fn model_dir() -> std::path::PathBuf {
    let checkout = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    memoryc_platform::embedding::model_location::for_checkout(checkout).unwrap_or_default()
}
