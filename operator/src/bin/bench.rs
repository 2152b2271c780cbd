//! Scale benchmark: provisions many tenants with the operator's own reconcile against the real
//! PostgreSQL and Milvus, and prints the time per tenant and the process's peak memory.
//!
//! No API server can run here, so Kubernetes is an in-process stand-in that accepts every call
//! (applies are answered with the applied object, reads with "not found"); everything else —
//! validation, desired objects, provisioning, status and events — is the real code path.
//!
//! `cargo run -p memoryc-operator --bin memoryc-operator-bench -- --tenants 200`

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::api::ObjectMeta;
use kube::client::Body;
use memoryc_crds::layout::Isolation;
use memoryc_crds::resources::{DeletionPolicy, MemoryTenant, MemoryTenantSpec};
use memoryc_operator::context::Context;
use memoryc_operator::provision::Backends;
use memoryc_operator::provision::milvus::Milvus;
use memoryc_operator::provision::postgres::{Postgres, ident};
use memoryc_operator::settings::Settings;
use memoryc_operator::telemetry::metrics::Metrics;
use memoryc_operator::tenant::controller::{FINALIZER, reconcile};
use memoryc_operator::tenant::plan::TenantPlan;
use sea_orm::ConnectionTrait;

#[derive(Parser)]
#[command(about = "Provision many tenants against real PostgreSQL and Milvus")]
struct Args {
    /// Tenants to provision.
    #[arg(long, default_value_t = 200)]
    tenants: usize,
    /// How many of them are Dedicated (a Milvus collection each); the rest are Shared.
    #[arg(long, default_value_t = 10)]
    dedicated: usize,
    /// Reconciles running at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    #[arg(
        long,
        env = "MEMORYC_TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    #[arg(
        long,
        env = "MEMORYC_TEST_MILVUS_URL",
        default_value = "http://127.0.0.1:19530"
    )]
    milvus_url: String,
    /// Leave the tenants in place instead of erasing them afterwards.
    #[arg(long)]
    keep: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
    let control = format!("memoryc_control_bench_{run}");
    let postgres = Postgres::connect(&args.database_url, 8).await?;
    let settings = Settings {
        shared_control_schema: control.clone(),
        platform_milvus_url: args.milvus_url.clone(),
        database: postgres.address().clone(),
        ..Settings::local()
    };
    let backends = Arc::new(Backends {
        postgres: postgres.clone(),
        milvus: Milvus::new(args.milvus_url.clone()),
    });
    let ctx = Arc::new(Context::new(
        stand_in_client(),
        settings.clone(),
        backends.clone(),
        Arc::new(Metrics::default()),
        None,
    ));
    let tenants: Vec<MemoryTenant> = (0..args.tenants)
        .map(|i| {
            let isolation = if i < args.dedicated {
                Isolation::Dedicated
            } else {
                Isolation::Shared
            };
            tenant(&format!("bench-{run}-{i}"), isolation)
        })
        .collect();

    println!(
        "provisioning {} tenants ({} dedicated, {} shared), {} at a time",
        args.tenants,
        args.dedicated.min(args.tenants),
        args.tenants.saturating_sub(args.dedicated),
        args.concurrency
    );
    let started = Instant::now();
    let timings: Vec<(Isolation, Duration, bool)> = futures::stream::iter(tenants.iter().cloned())
        .map(|tenant| {
            let ctx = ctx.clone();
            async move {
                let isolation = tenant.spec.isolation;
                let began = Instant::now();
                let result = reconcile(Arc::new(tenant), ctx).await;
                if let Err(error) = &result {
                    eprintln!("reconcile failed: {error}");
                }
                (isolation, began.elapsed(), result.is_ok())
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let total = started.elapsed();

    let failed = timings.iter().filter(|(_, _, ok)| !ok).count();
    println!(
        "total {:.1} s, {:.1} tenants/s, {failed} failed",
        total.as_secs_f64(),
        args.tenants as f64 / total.as_secs_f64()
    );
    for isolation in [Isolation::Shared, Isolation::Dedicated] {
        let mut durations: Vec<Duration> = timings
            .iter()
            .filter(|(i, _, _)| *i == isolation)
            .map(|(_, d, _)| *d)
            .collect();
        if durations.is_empty() {
            continue;
        }
        durations.sort();
        let mean = durations.iter().sum::<Duration>() / durations.len() as u32;
        let at = |q: f64| durations[((durations.len() - 1) as f64 * q).round() as usize];
        println!(
            "{:<9} n={:<4} mean {:>6.0} ms  p50 {:>6.0} ms  p95 {:>6.0} ms  max {:>6.0} ms (one reconcile, wall time)",
            isolation.as_str(),
            durations.len(),
            ms(mean),
            ms(at(0.5)),
            ms(at(0.95)),
            ms(at(1.0))
        );
    }
    println!(
        "amortised {:.0} ms per tenant",
        ms(total) / args.tenants as f64
    );
    println!(
        "peak memory (VmHWM) {}",
        peak_memory().unwrap_or_else(|| "unknown".into())
    );

    // A second pass over a sample: reconciling provisioned tenants is the steady state.
    let sample: Vec<MemoryTenant> = tenants.iter().take(20).cloned().collect();
    let began = Instant::now();
    for tenant in &sample {
        let _ = reconcile(Arc::new(tenant.clone()), ctx.clone()).await;
    }
    println!(
        "re-reconcile of a provisioned tenant: {:.0} ms",
        ms(began.elapsed()) / sample.len().max(1) as f64
    );

    if !args.keep {
        let began = Instant::now();
        for tenant in &tenants {
            let mut doomed = tenant.clone();
            doomed.spec.deletion_policy = DeletionPolicy::Delete;
            let plan = TenantPlan::for_tenant(&doomed, &settings)?;
            postgres.erase(&plan).await?;
            if plan.is_dedicated() {
                backends.milvus.drop_collection(&plan.collection).await?;
            } else {
                let collection = memoryc_operator::provision::milvus::CollectionPlan {
                    collection: plan.collection.clone(),
                    tenant: plan.tenant.to_string(),
                    isolation: plan.isolation,
                    vectors: plan.vectors,
                };
                backends.milvus.erase(&collection).await?;
            }
        }
        postgres
            .connection()
            .execute_unprepared(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                ident(&control)
            ))
            .await?;
        println!("erased all in {:.1} s", began.elapsed().as_secs_f64());
    }
    Ok(())
}

fn tenant(name: &str, isolation: Isolation) -> MemoryTenant {
    let spec = MemoryTenantSpec {
        isolation,
        ..MemoryTenantSpec::default()
    };
    let mut tenant = MemoryTenant::new(name, spec);
    tenant.metadata = ObjectMeta {
        name: Some(name.to_string()),
        uid: Some(uuid::Uuid::new_v4().to_string()),
        generation: Some(1),
        finalizers: Some(vec![FINALIZER.to_string()]),
        ..ObjectMeta::default()
    };
    tenant
}

/// A Kubernetes client whose "server" accepts everything: reads find nothing, writes return what
/// was written (with a Deployment reported available), status writes return a tenant.
fn stand_in_client() -> Client {
    let service = tower::service_fn(|request: Request<Body>| async move {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let bytes = request
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_default();
        let mut body: serde_json::Value =
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        let (status, answer) = if method == Method::GET {
            (
                StatusCode::NOT_FOUND,
                serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                   "reason": "NotFound", "code": 404, "metadata": {}}),
            )
        } else {
            if path.ends_with("/status") {
                let name = path
                    .trim_end_matches("/status")
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                body["metadata"] = serde_json::json!({"name": name});
                body["spec"] = serde_json::json!({});
            }
            if path.contains("/deployments/") {
                body["status"] = serde_json::json!({"availableReplicas": 2});
            }
            (StatusCode::OK, body)
        };
        let response = Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&answer).unwrap_or_default()))
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(response)
    });
    Client::new(service, "default")
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The process's peak resident memory, from /proc.
fn peak_memory() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .map(|line| line.trim_start_matches("VmHWM:").trim().to_string())
}
