//! HTTP benchmark of the platform: ingest throughput, adds made one after another, search
//! latency percentiles, recall@10 of the vector path against exact search, the embedding
//! model's own throughput, and ingest with analytics on versus off; on the embedded defaults and
//! on PostgreSQL + Milvus with a Shared tenant (the default layout) and with a Dedicated one.
//! README's "Capacity" section keeps the figures.
//!
//! `cargo bench -p memoryc-platform --bench http_bench`. Environment:
//! `BENCH_SIZES` (default `10000,100000`), `BENCH_BACKENDS` (default
//! `embedded,postgres-milvus-shared,postgres-milvus-dedicated`), `BENCH_SEQUENTIAL` (adds made
//! one after another over HTTP before the concurrent ingest, as an agent adding memories one at
//! a time does, default 300), `BENCH_QUERIES` (default 300), `BENCH_CONCURRENCY` (concurrent
//! ingest requests), `BENCH_ANALYTICS_SIZE` (memories ingested with analytics off and on,
//! default 2000; 0 skips), `BENCH_SEARCH_PAUSE_MS` (idles between queries, to see the latency of
//! a search that arrives after a quiet spell, when the model's weights are colder in the
//! caches), `BENCH_TENANTS` (on the Shared layout, that many more tenants, each with
//! `BENCH_TENANT_MEMORIES` memories, default 20: provisioning time per tenant, resident memory
//! per tenant, a cold tenant's first search and the measured tenant's search among them; default
//! 0 skips), plus the test variables `MEMORYC_MODEL_DIR`, `MEMORYC_TEST_DATABASE_URL`,
//! `MEMORYC_TEST_MILVUS_URL`.
//!
//! How it measures:
//! * The model's own batched figure runs as many batches of 32 at once as the platform does
//!   (`embedding_passes`).
//! * Ingest runs with two concurrent writers per text the model computes at once by default
//!   (128 with two passes): writers come back in two waves, one being embedded while the other
//!   writes, so that load fills the model's batches as its own batched figure does (the bench
//!   prints the average batch).
//! * Search latency is measured one query at a time once the ingest's background work (events,
//!   relationships, the vector store's index building) has settled; the bench prints how long
//!   that took, and where a search's time goes: the mean at the client, in the server's HTTP
//!   layer, in the search service and in the query's embedding, from the platform's own metrics.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use memoryc_crds::layout::{Isolation, TenantName};
use memoryc_platform::app::Platform;
use memoryc_platform::config::{Config, LogFormat, RelationalBackend, VectorBackend};
use memoryc_platform::embedding::Embedder;
use memoryc_platform::embedding::batching::DEFAULT_MAX_BATCH;
use memoryc_platform::embedding::minilm::MiniLmEmbedder;
use memoryc_platform::embedding::threads::InferencePlan;
use memoryc_platform::services::tenant_service::TenantService;
use memoryc_platform::stores::relational::Databases;
use memoryc_platform::stores::vector::{
    VectorFilter, VectorQuery, VectorSpace, VectorStore, first,
};
use sea_orm::{ConnectionTrait, Statement};
use uuid::Uuid;

const SUBJECTS: [&str; 24] = [
    "The billing service",
    "Our staging cluster",
    "The mobile app",
    "The data pipeline",
    "Alice's team",
    "The search index",
    "The payments API",
    "The onboarding flow",
    "The nightly backup job",
    "The customer portal",
    "The auth gateway",
    "The recommendation model",
    "The CI runners",
    "The analytics dashboard",
    "The support bot",
    "The release train",
    "The observability stack",
    "The feature flag service",
    "The email worker",
    "The invoice generator",
    "The GraphQL layer",
    "The Kafka consumers",
    "The design system",
    "The edge cache",
];
const FACTS: [&str; 24] = [
    "moved to PostgreSQL 16",
    "needs a manual approval before deploys",
    "times out under heavy load",
    "is owned by the platform group",
    "was rewritten in Rust",
    "runs every night at two",
    "prefers short status updates",
    "is due for review next quarter",
    "leaks memory after upgrades",
    "uses dark mode by default",
    "ships behind a feature flag",
    "pages on-call when errors spike",
    "keeps logs for thirty days",
    "is blocked on a security review",
    "doubled its traffic this month",
    "is deployed on Fridays only",
    "caches responses for five minutes",
    "retries failed jobs three times",
    "was migrated to Kubernetes",
    "is tracked in the Apollo project",
    "needs more integration tests",
    "has a new product owner",
    "writes metrics to Prometheus",
    "depends on the legacy queue",
];
const DETAILS: [&str; 16] = [
    "according to the last retrospective",
    "since the March incident",
    "as agreed in the planning meeting",
    "per the architecture review",
    "after customer complaints",
    "to cut cloud costs",
    "while the budget is frozen",
    "because of the audit",
    "until the migration finishes",
    "as the runbook says",
    "following the outage postmortem",
    "for the enterprise customers",
    "in the EU region",
    "during the holiday freeze",
    "on the new hardware",
    "for the beta users",
];

/// The n-th distinct synthetic memory.
fn memory_text(n: usize) -> String {
    let s = SUBJECTS[n % SUBJECTS.len()];
    let f = FACTS[(n / SUBJECTS.len()) % FACTS.len()];
    let d = DETAILS[(n / (SUBJECTS.len() * FACTS.len())) % DETAILS.len()];
    format!("{s} {f} {d} (note {n}).")
}

/// The n-th distinct query: a question phrased differently from the memories.
fn query_text(n: usize) -> String {
    let s = SUBJECTS[(n * 7) % SUBJECTS.len()].to_lowercase();
    let f = FACTS[(n * 11) % FACTS.len()];
    format!("what do we know about {s}: does it say that it {f}? ({n})")
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A platform on embedded defaults in `data_dir`, listening on a free port, unthrottled.
fn bench_config(data_dir: &std::path::Path) -> Result<Config, Box<dyn std::error::Error>> {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse()?;
    config.server.data_dir = data_dir.to_path_buf();
    config.server.demo_tenant = false;
    config.server.log_format = LogFormat::Text;
    config.embedding.model_dir = model_dir();
    // Throughput is measured, not limited.
    config.limits.rate_limit_per_minute = 0;
    Ok(config)
}

/// `MEMORYC_MODEL_DIR`, else the package in the virtualenv `MEMORYC_VENV` names or in the
/// checkout's `.venv`.
fn model_dir() -> std::path::PathBuf {
    let checkout = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    memoryc_platform::embedding::model_location::for_checkout(checkout).unwrap_or_default()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The platform's default plan, applied as the binary does: SAFETY, no other thread has
    // started yet.
    let plan = InferencePlan::for_this_process(Config::default().embedding.passes);
    unsafe { plan.apply_to_process() };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(plan))
}

async fn run(plan: InferencePlan) -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let sizes: Vec<usize> = env_list("BENCH_SIZES", "10000,100000")
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let backends = env_list(
        "BENCH_BACKENDS",
        "embedded,postgres-milvus-shared,postgres-milvus-dedicated",
    );
    let sequential = env_number("BENCH_SEQUENTIAL", 300);
    let queries = env_number("BENCH_QUERIES", 300);
    // Two writers per text the model computes at once: one wave is embedded while the other
    // writes, so load fills every pass's batch as the model's own figure does.
    let concurrency = env_number("BENCH_CONCURRENCY", 2 * plan.passes * DEFAULT_MAX_BATCH);
    println!(
        "model plan: {} batches at once, {} threads each",
        plan.passes, plan.threads_per_pass
    );

    let model = ModelAlone::load(plan.passes)?;
    let single = model.single_latency().await?;
    let batched = model.batched_throughput(&sample_of(0..2048)).await?;
    println!(
        "model: single sentence p50 {:.1} ms p99 {:.1} ms mean {:.1} ms; batched ({DEFAULT_MAX_BATCH} texts, {} at once) {batched:.0} sentences/s",
        single.p50, single.p99, single.mean, plan.passes
    );
    let analytics_size = env_number("BENCH_ANALYTICS_SIZE", 2000);
    if analytics_size > 0 {
        analytics_overhead(analytics_size, concurrency).await?;
    }
    for backend in &backends {
        run_backend(backend, &sizes, queries, sequential, concurrency, &model).await?;
    }
    Ok(())
}

/// Percentiles and mean of sorted durations, in ms.
struct Latency {
    p50: f64,
    p99: f64,
    mean: f64,
}

impl Latency {
    fn of(sorted: &[Duration]) -> Self {
        let total: f64 = sorted.iter().map(Duration::as_secs_f64).sum();
        Self {
            p50: percentile(sorted, 0.5),
            p99: percentile(sorted, 0.99),
            mean: 1_000.0 * total / sorted.len().max(1) as f64,
        }
    }
}

/// The model alone, with as many batches at once as the platform computes.
struct ModelAlone {
    model: Arc<MiniLmEmbedder>,
    passes: usize,
}

impl ModelAlone {
    fn load(passes: usize) -> Result<Self, Box<dyn std::error::Error>> {
        let model = MiniLmEmbedder::load(&model_dir())?.with_concurrent_passes(passes);
        Ok(Self {
            model: Arc::new(model),
            passes,
        })
    }

    /// Single sentences, one at a time.
    async fn single_latency(&self) -> Result<Latency, Box<dyn std::error::Error>> {
        let mut single = Vec::new();
        for n in 0..50 {
            let started = Instant::now();
            self.model.embed(vec![query_text(n)]).await?;
            single.push(started.elapsed());
        }
        single.sort();
        Ok(Latency::of(&single))
    }

    /// Sentences per second over `texts`, in batches of the platform's size, `passes` at once.
    async fn batched_throughput(
        &self,
        texts: &[String],
    ) -> Result<f64, Box<dyn std::error::Error>> {
        let batches: Arc<Vec<Vec<String>>> = Arc::new(
            texts
                .chunks(DEFAULT_MAX_BATCH)
                .map(<[String]>::to_vec)
                .collect(),
        );
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let streams: Vec<_> = (0..self.passes)
            .map(|_| {
                let (model, next, batches) = (
                    Arc::clone(&self.model),
                    Arc::clone(&next),
                    Arc::clone(&batches),
                );
                tokio::spawn(async move {
                    while let Some(batch) =
                        batches.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                    {
                        model.embed(batch.clone()).await?;
                    }
                    Ok::<(), memoryc_platform::embedding::EmbeddingError>(())
                })
            })
            .collect();
        for stream in streams {
            stream.await??;
        }
        Ok(texts.len() as f64 / started.elapsed().as_secs_f64())
    }
}

/// About ten seconds of the model's work, spread evenly over the memories `range` ingests: the
/// texts differ in length (later ones carry longer note numbers, and the details rotate
/// slowly), so the model is measured on texts like the ones it will embed.
fn sample_of(range: std::ops::Range<usize>) -> Vec<String> {
    const SAMPLE: usize = 2048;
    let len = range.len().max(1);
    (0..SAMPLE.min(len))
        .map(|i| memory_text(range.start + i * len / SAMPLE.min(len)))
        .collect()
}

async fn run_backend(
    backend: &str,
    sizes: &[usize],
    queries: usize,
    sequential: usize,
    concurrency: usize,
    model: &ModelAlone,
) -> Result<(), Box<dyn std::error::Error>> {
    let passes = model.passes;
    let data_dir = tempfile::tempdir()?;
    let mut config = bench_config(data_dir.path())?;
    let isolation = match backend {
        "embedded" => Isolation::Shared,
        "postgres-milvus-shared" | "postgres-milvus-dedicated" | "postgres-milvus" => {
            config.storage.relational_backend = RelationalBackend::Postgres;
            config.storage.vector_backend = VectorBackend::Milvus;
            config.storage.database_url = std::env::var("MEMORYC_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
            config.storage.milvus_url = std::env::var("MEMORYC_TEST_MILVUS_URL")
                .unwrap_or_else(|_| "http://127.0.0.1:19530".to_string());
            config.storage.control_schema = format!(
                "memoryc_bench_{}",
                &Uuid::new_v4().simple().to_string()[..8]
            );
            if backend == "postgres-milvus-shared" {
                Isolation::Shared
            } else {
                Isolation::Dedicated
            }
        }
        other => return Err(format!("unknown backend {other}").into()),
    };
    let platform = Platform::build(config.clone()).await?;
    let tenant_name = format!("bench-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let created = platform
        .state
        .tenants
        .create(&tenant_name, None, isolation)
        .await?;
    let vectors = platform.vector_store();
    let databases = platform.databases.clone();
    let analytics = platform.state.analytics.clone();
    let tenant_service = platform.state.tenants.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(platform.serve(listener, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let key = created.api_key;

    let mut stored = 0usize;
    let mut alone = Vec::new();
    for &size in sizes {
        let model_throughput = model.batched_throughput(&sample_of(stored..size)).await?;
        println!(
            "{backend} @ {size}: the model alone embeds these memories' texts at {model_throughput:.0} sentences/s"
        );
        let before = server_metrics(&client, &base).await?;
        let started = Instant::now();
        let inserted = ingest(&client, &base, &key, stored..size, concurrency).await?;
        let elapsed = started.elapsed().as_secs_f64();
        let after = server_metrics(&client, &base).await?;
        stored = size;
        let rate = inserted as f64 / elapsed;
        println!(
            "{backend} @ {size}: ingest {rate:.0} memories/s ({:.0}% of the model's batched throughput)",
            100.0 * rate / model_throughput
        );
        let (batches, texts) = (after.batches - before.batches, after.texts - before.texts);
        println!(
            "  model during ingest: {:.2} of its {passes} passes busy on average, {batches:.0} batches of {:.1} texts on average",
            (after.seconds - before.seconds) / elapsed,
            texts / batches.max(1.0)
        );
        let settle = settle(&analytics, &tenant_name, size).await?;
        println!(
            "{backend} @ {size}: settled {:.1} s after ingest (events related, machine {:.0}% idle)",
            settle.waited.as_secs_f64(),
            100.0 * settle.idle
        );
        if sequential > 0 {
            let adds = sequential_adds(&client, &base, &key, size..size + sequential).await?;
            let total: f64 = adds.iter().map(Duration::as_secs_f64).sum();
            println!(
                "{backend} @ {size}: {sequential} adds one after another over HTTP: p50 {:.1} ms p99 {:.1} ms ({:.1} adds/s)",
                percentile(&adds, 0.5),
                percentile(&adds, 0.99),
                adds.len() as f64 / total
            );
            stored = size + sequential;
        }
        let before = server_metrics(&client, &base).await?;
        let latencies = search_latencies(&client, &base, &key, queries, size).await?;
        let after = server_metrics(&client, &base).await?;
        println!(
            "{backend} @ {size}: search over HTTP incl. query embedding p50 {:.1} ms p95 {:.1} ms p99 {:.1} ms ({} distinct queries)",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.95),
            percentile(&latencies, 0.99),
            latencies.len()
        );
        let client_mean = Latency::of(&latencies).mean;
        alone = latencies.clone();
        let (request, service, embedding) = before.search_means(&after);
        println!(
            "  means per search: {client_mean:.1} ms at the client, {request:.1} ms in the server's HTTP layer, {service:.1} ms in the search service, {embedding:.1} ms embedding the query"
        );
        let recall = recall_at_10(
            &databases,
            vectors.as_ref(),
            &tenant_name,
            isolation,
            queries.min(100),
        )
        .await?;
        println!("{backend} @ {size}: recall@10 of the vector path vs exact search {recall:.3}");
    }
    let tenant_count = env_number("BENCH_TENANTS", 0);
    let mut others = Vec::new();
    if tenant_count > 0 && backend == "postgres-milvus-shared" {
        others = many_tenants(
            &tenant_service,
            &client,
            &base,
            &key,
            tenant_count,
            env_number("BENCH_TENANT_MEMORIES", 20),
            stored,
            queries,
            &alone,
        )
        .await?;
    }
    for name in &others {
        vectors
            .drop_space(&VectorSpace {
                tenant: name.clone(),
                isolation: Isolation::Shared,
            })
            .await?;
        databases.drop_tenant(name).await?;
    }
    if backend.starts_with("postgres-milvus") {
        let name = TenantName::parse(&tenant_name)?;
        vectors
            .drop_space(&VectorSpace {
                tenant: name.clone(),
                isolation,
            })
            .await?;
        databases.drop_tenant(&name).await?;
        databases
            .control()
            .execute_unprepared(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                config.storage.control_schema
            ))
            .await?;
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// Ingest throughput on embedded defaults with analytics (events, relationships) off and on.
/// With them on, the write path is timed, and separately the time until every event has been
/// recorded and every relationship derived.
async fn analytics_overhead(
    size: usize,
    concurrency: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut rates = Vec::new();
    for enabled in [false, true] {
        let data_dir = tempfile::tempdir()?;
        let mut config = bench_config(data_dir.path())?;
        config.analytics.enabled = enabled;
        let platform = Platform::build(config).await?;
        let created = platform
            .state
            .tenants
            .create("bench-analytics", None, Isolation::Shared)
            .await?;
        let analytics = platform.state.analytics.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(platform.serve(listener, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()?;
        let started = Instant::now();
        let inserted = ingest(&client, &base, &created.api_key, 0..size, concurrency).await?;
        let written = started.elapsed().as_secs_f64();
        let label = if enabled { "on" } else { "off" };
        let rate = inserted as f64 / written;
        rates.push(rate);
        if enabled {
            events_recorded(&analytics, "bench-analytics", inserted, SETTLE_LIMIT).await?;
            let drained = started.elapsed().as_secs_f64();
            println!(
                "analytics {label}: ingest {rate:.0} memories/s on the write path; {:.0} memories/s until every event is recorded and related",
                inserted as f64 / drained
            );
        } else {
            println!("analytics {label}: ingest {rate:.0} memories/s");
        }
        let _ = stop.send(());
        server.await??;
    }
    if let [off, on] = rates[..] {
        println!(
            "analytics overhead: ingest with analytics on is {:.0}% of off ({size} memories, embedded)",
            100.0 * on / off
        );
    }
    Ok(())
}

/// The platform's own timings and counters, as it exports them at one moment.
struct ServerMetrics {
    /// Batches the model computed, their summed seconds, and the texts in them.
    batches: f64,
    seconds: f64,
    texts: f64,
    /// Search requests as the HTTP layer timed them (count, summed seconds).
    search_requests: f64,
    search_request_seconds: f64,
    /// Semantic searches as the service timed them: embedding, vector search, rows.
    searches: f64,
    search_seconds: f64,
}

impl ServerMetrics {
    /// Mean milliseconds per search of (HTTP request, service call, query embedding) between
    /// `self` and a later snapshot, when only searches ran in between.
    fn search_means(&self, later: &Self) -> (f64, f64, f64) {
        let mean = |seconds: f64, count: f64| 1_000.0 * seconds / count.max(1.0);
        (
            mean(
                later.search_request_seconds - self.search_request_seconds,
                later.search_requests - self.search_requests,
            ),
            mean(
                later.search_seconds - self.search_seconds,
                later.searches - self.searches,
            ),
            mean(later.seconds - self.seconds, later.batches - self.batches),
        )
    }
}

async fn server_metrics(
    client: &reqwest::Client,
    base: &str,
) -> Result<ServerMetrics, Box<dyn std::error::Error>> {
    use memoryc_crds::contract::platform_metrics::{
        EMBEDDED_TEXTS, EMBEDDING_DURATION, HTTP_REQUEST_DURATION, SEARCH_DURATION,
    };
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    // Summed over the family's label sets that contain every one of `labels`.
    let sample = |name: &str, labels: &[&str]| -> f64 {
        text.lines()
            .filter_map(|line| {
                let (metric, value) = line.rsplit_once(' ')?;
                let (family, set) = metric.split_once('{').unwrap_or((metric, ""));
                let wanted = family == name && labels.iter().all(|label| set.contains(label));
                wanted.then(|| value.trim().parse::<f64>().ok())?
            })
            .sum()
    };
    let search_route = ["route=\"/api/v1/memories\"", "method=\"GET\""];
    Ok(ServerMetrics {
        batches: sample(&format!("{EMBEDDING_DURATION}_count"), &[]),
        seconds: sample(&format!("{EMBEDDING_DURATION}_sum"), &[]),
        texts: sample(EMBEDDED_TEXTS, &[]),
        search_requests: sample(&format!("{HTTP_REQUEST_DURATION}_count"), &search_route),
        search_request_seconds: sample(&format!("{HTTP_REQUEST_DURATION}_sum"), &search_route),
        searches: sample(&format!("{SEARCH_DURATION}_count"), &["mode=\"semantic\""]),
        search_seconds: sample(&format!("{SEARCH_DURATION}_sum"), &["mode=\"semantic\""]),
    })
}

/// How long [`settle`] waited, and how idle the machine was at the end.
struct Settled {
    waited: Duration,
    idle: f64,
}

/// Most time given to the backends to finish the ingest's background work.
const SETTLE_LIMIT: Duration = Duration::from_secs(600);
/// The machine counts as quiet when at least this share of its CPU time is idle over a second.
const QUIET_IDLE: f64 = 0.85;

/// Waits until every ingested memory's events are processed (relationships found) and the
/// backends' own background work after a bulk load (Milvus builds the index of sealed segments
/// and compacts them) has quietened, so search latency is measured in steady state, not while
/// the same two cores still digest the ingest. Gives up after [`SETTLE_LIMIT`].
async fn settle(
    analytics: &memoryc_platform::services::analytics::AnalyticsService,
    tenant: &str,
    stored: usize,
) -> Result<Settled, Box<dyn std::error::Error>> {
    let started = Instant::now();
    events_recorded(analytics, tenant, stored, SETTLE_LIMIT).await?;
    let mut idle = idle_share(Duration::from_secs(1)).await;
    while idle.is_some_and(|share| share < QUIET_IDLE) && started.elapsed() < SETTLE_LIMIT {
        idle = idle_share(Duration::from_secs(1)).await;
    }
    Ok(Settled {
        waited: started.elapsed(),
        idle: idle.unwrap_or(f64::NAN),
    })
}

/// Waits until the tenant's MEMORY_CREATED events number `expected` (their relationships are
/// derived in the same pass), at most `limit`. Events dropped by a full queue are never
/// recorded, so it also stops once the count has not moved for a few seconds.
async fn events_recorded(
    analytics: &memoryc_platform::services::analytics::AnalyticsService,
    tenant: &str,
    expected: usize,
    limit: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let tenant = TenantName::parse(tenant)?;
    let since = chrono::Utc::now() - chrono::Duration::days(1);
    let (mut last, mut moved) = (0u64, Instant::now());
    while started.elapsed() < limit && moved.elapsed() < Duration::from_secs(5) {
        let usage = analytics.repository().usage(&tenant, since).await?;
        let recorded: u64 = usage.days.iter().map(|d| d.memories_created).sum();
        if recorded >= expected as u64 {
            break;
        }
        if recorded != last {
            (last, moved) = (recorded, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Share of all CPUs' time spent idle over `window`, from `/proc/stat` (`None` elsewhere).
async fn idle_share(window: Duration) -> Option<f64> {
    fn totals() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...
        let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
        Some((idle, fields.iter().sum()))
    }
    let (idle_before, total_before) = totals()?;
    tokio::time::sleep(window).await;
    let (idle_after, total_after) = totals()?;
    let total = total_after.saturating_sub(total_before).max(1);
    Some(idle_after.saturating_sub(idle_before) as f64 / total as f64)
}

async fn ingest(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> Result<usize, Box<dyn std::error::Error>> {
    let url = format!("{base}/api/v1/memories");
    let results: Vec<Result<(), String>> = futures::stream::iter(range)
        .map(|n| {
            let request = client
                .post(&url)
                .header("X-API-Key", key)
                .json(&serde_json::json!({ "content": memory_text(n) }));
            async move {
                let response = request.send().await.map_err(|e| e.to_string())?;
                if response.status() != 201 {
                    return Err(format!("ingest answered {}", response.status()));
                }
                Ok(())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    if let Some(first) = failures.first() {
        return Err(format!("{} ingest requests failed; first: {first}", failures.len()).into());
    }
    Ok(results.len())
}

/// Adds made one after another, each waiting for the last; their latencies, sorted.
async fn sequential_adds(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    range: std::ops::Range<usize>,
) -> Result<Vec<Duration>, Box<dyn std::error::Error>> {
    let url = format!("{base}/api/v1/memories");
    let mut latencies = Vec::with_capacity(range.len());
    for n in range {
        let started = Instant::now();
        let response = client
            .post(&url)
            .header("X-API-Key", key)
            .json(&serde_json::json!({ "content": memory_text(n) }))
            .send()
            .await?;
        if response.status() != 201 {
            return Err(format!("an add answered {}", response.status()).into());
        }
        response.bytes().await?;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    Ok(latencies)
}

/// One query at a time, each distinct, so no cache can help.
async fn search_latencies(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    queries: usize,
    offset: usize,
) -> Result<Vec<Duration>, Box<dyn std::error::Error>> {
    let url = format!("{base}/api/v1/memories");
    // Idle time before each query: a search after a quiet spell finds less of the model's
    // weights in the CPU's caches than one right after another.
    let pause = Duration::from_millis(env_number("BENCH_SEARCH_PAUSE_MS", 0) as u64);
    let mut latencies = Vec::with_capacity(queries);
    for n in 0..queries {
        let query = query_text(offset + n);
        let started = Instant::now();
        let response = client
            .get(&url)
            .header("X-API-Key", key)
            .query(&[("query", query.as_str()), ("limit", "10")])
            .send()
            .await?;
        let status = response.status();
        let _ = response.bytes().await?;
        latencies.push(started.elapsed());
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        if status != 200 {
            return Err(format!("search answered {status}").into());
        }
    }
    latencies.sort();
    Ok(latencies)
}

/// Compares the vector store's top 10 with exact cosine search over the stored embeddings.
async fn recall_at_10(
    databases: &Databases,
    vectors: &dyn VectorStore,
    tenant: &str,
    isolation: Isolation,
    queries: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let name = TenantName::parse(tenant)?;
    let transaction = databases.tenant_transaction(&name).await?;
    let rows = transaction
        .query_all_raw(Statement::from_string(
            transaction.get_database_backend(),
            "SELECT memory_id, embedding FROM memories WHERE is_deleted = false",
        ))
        .await?;
    let mut corpus: Vec<(Uuid, Vec<f32>)> = Vec::with_capacity(rows.len());
    for row in rows {
        let id: Uuid = row.try_get("", "memory_id")?;
        let bytes: Vec<u8> = row.try_get("", "embedding")?;
        let vector = memoryc_platform::stores::relational::codec::decode_embedding(&bytes)?;
        corpus.push((id, vector));
    }
    let model = MiniLmEmbedder::load(&model_dir())?;
    let texts: Vec<String> = (0..queries).map(|n| query_text(1_000_000 + n)).collect();
    let query_vectors = model.embed(texts).await?;
    let space = VectorSpace {
        tenant: name,
        isolation,
    };
    let mut hits = 0usize;
    let mut store_latencies = Vec::with_capacity(query_vectors.len());
    for query in &query_vectors {
        let mut exact: Vec<(f32, Uuid)> = corpus
            .iter()
            .map(|(id, v)| (v.iter().zip(query).map(|(a, b)| a * b).sum::<f32>(), *id))
            .collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        let truth: HashSet<Uuid> = exact.iter().take(10).map(|(_, id)| *id).collect();
        let started = Instant::now();
        let filter = VectorFilter::default();
        let found = first(
            vectors
                .search(&space, VectorQuery::new(&[query.as_slice()], 10, &filter))
                .await?,
        );
        store_latencies.push(started.elapsed());
        hits += found
            .iter()
            .filter(|s| truth.contains(&s.memory_id))
            .count();
    }
    store_latencies.sort();
    println!(
        "  vector store alone (no HTTP, no embedding): p50 {:.2} ms p99 {:.2} ms",
        percentile(&store_latencies, 0.5),
        percentile(&store_latencies, 0.99)
    );
    Ok(hits as f64 / (10 * query_vectors.len()) as f64)
}

/// Many Shared tenants beside the measured one, each with a few memories: provisioning time per
/// tenant through the platform, resident memory per tenant, the first search of a tenant whose
/// connections were closed (its pool made room for others) against its second, and the measured
/// tenant's search among them against alone. Returns the tenants made, for cleanup.
#[allow(clippy::too_many_arguments)]
async fn many_tenants(
    tenants: &TenantService,
    client: &reqwest::Client,
    base: &str,
    key: &str,
    count: usize,
    memories_each: usize,
    size: usize,
    queries: usize,
    alone: &[Duration],
) -> Result<Vec<TenantName>, Box<dyn std::error::Error>> {
    let suffix = &Uuid::new_v4().simple().to_string()[..6];
    let resident_before = resident_kib();
    let mut provisioning = Vec::with_capacity(count);
    let mut made = Vec::with_capacity(count);
    for n in 0..count {
        let name = format!("bench-{suffix}-{n}");
        let started = Instant::now();
        let created = tenants.create(&name, None, Isolation::Shared).await?;
        provisioning.push(started.elapsed());
        made.push((TenantName::parse(&name)?, created.api_key));
    }
    provisioning.sort();
    println!(
        "{count} more Shared tenants: provisioning through the platform p50 {:.0} ms p99 {:.0} ms per tenant",
        percentile(&provisioning, 0.5),
        percentile(&provisioning, 0.99)
    );
    for (_, tenant_key) in &made {
        ingest(
            client,
            base,
            tenant_key,
            0..memories_each,
            memories_each.max(1),
        )
        .await?;
    }
    let resident_loaded = resident_kib();
    // Idle: every tenant's connections close after 30 s unused.
    tokio::time::sleep(Duration::from_secs(35)).await;
    let resident_idle = resident_kib();
    if let (Some(before), Some(loaded), Some(idle)) =
        (resident_before, resident_loaded, resident_idle)
    {
        println!(
            "  resident memory: {:+.1} KiB per tenant with {memories_each} memories each just written, {:+.1} KiB per tenant once idle",
            (loaded as f64 - before as f64) / count as f64,
            (idle as f64 - before as f64) / count as f64
        );
    }
    let mut first = Vec::new();
    let mut second = Vec::new();
    let url = format!("{base}/api/v1/memories");
    for (n, (_, tenant_key)) in made.iter().take(50).enumerate() {
        // Two distinct queries: the second is neither cold nor answered from the cache.
        for (latencies, query) in [(&mut first, n), (&mut second, n + 1_000)] {
            let query = query_text(query);
            let started = Instant::now();
            let response = client
                .get(&url)
                .header("X-API-Key", tenant_key)
                .query(&[("query", query.as_str()), ("limit", "10")])
                .send()
                .await?;
            let status = response.status();
            response.bytes().await?;
            if status != 200 {
                return Err(format!("search answered {status}").into());
            }
            latencies.push(started.elapsed());
        }
    }
    first.sort();
    second.sort();
    println!(
        "  a tenant idle for 35 s: first search p50 {:.1} ms p99 {:.1} ms, its next (another query) p50 {:.1} ms",
        percentile(&first, 0.5),
        percentile(&first, 0.99),
        percentile(&second, 0.5)
    );
    let among = search_latencies(client, base, key, queries, size + 7_919).await?;
    println!(
        "  the measured tenant among {} tenants: search p50 {:.1} ms p99 {:.1} ms; alone p50 {:.1} ms p99 {:.1} ms ({:.2}x at p50)",
        count + 1,
        percentile(&among, 0.5),
        percentile(&among, 0.99),
        percentile(alone, 0.5),
        percentile(alone, 0.99),
        percentile(&among, 0.5) / percentile(alone, 0.5)
    );
    Ok(made.into_iter().map(|(name, _)| name).collect())
}

/// This process's resident memory (Linux), in KiB.
fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}
