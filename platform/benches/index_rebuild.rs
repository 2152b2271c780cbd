//! Opening a tenant of the embedded vector index, which is a cache of the memories in SQLite:
//! with no snapshot (every point read from SQLite and inserted into a new HNSW graph), from a
//! current snapshot, and from a snapshot that some edits made in SQLite never reached (what a
//! crash leaves).
//!
//! `cargo bench -p memoryc-platform --bench index_rebuild`. Environment: `BENCH_REBUILD_SIZE`
//! (memories in the tenant, default 100000) and `BENCH_REBUILD_CHANGED` (memories edited in SQLite
//! after the snapshot, default 1000). The memories are random unit vectors written straight into
//! the tenant's SQLite file, a few hundred rows per statement, so setting up takes seconds and
//! needs no model.

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use memoryc_crds::layout::{Isolation, TenantName, VECTOR_DIMENSION};
use memoryc_platform::domain::MemoryPatch;
use memoryc_platform::stores::relational::codec::encode_embedding;
use memoryc_platform::stores::relational::control_repository::SqlTenantRegistry;
use memoryc_platform::stores::relational::entities::memory::{self, Entity as Memories};
use memoryc_platform::stores::relational::index_source::SqlIndexSource;
use memoryc_platform::stores::relational::memory_repository::SqlMemoryRepository;
use memoryc_platform::stores::relational::{Databases, RelationalConfig};
use memoryc_platform::stores::vector::embedded::{EmbeddedOptions, EmbeddedVectorStore};
use memoryc_platform::stores::vector::{
    IndexSource, VectorFilter, VectorQuery, VectorSpace, VectorStore, first,
};
use memoryc_platform::stores::{MemoryRepository, TenantRegistry, TenantUser};
use sea_orm::ActiveValue::Set;
use sea_orm::EntityTrait;
use uuid::Uuid;

/// Rows per INSERT: 11 values each stays well under SQLite's 32 766 bound parameters.
const ROWS_PER_INSERT: usize = 500;
/// Rows per transaction while filling the tenant.
const ROWS_PER_TRANSACTION: usize = 10_000;
/// Ids per fetch when reading the source alone, as opening a tenant fetches them.
const IDS_PER_FETCH: usize = 1_000;
const CATEGORIES: [&str; 4] = ["TECHNICAL", "WORKFLOW", "PREFERENCE", "PROJECT"];

type BenchResult<T> = Result<T, Box<dyn Error>>;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Deterministic pseudo-random unit vectors (Knuth's MMIX LCG).
struct Lcg(u64);

impl Lcg {
    fn next_f32(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32 / (1u64 << 23) as f32) - 1.0
    }

    fn unit_vector(&mut self) -> Vec<f32> {
        let raw: Vec<f32> = (0..VECTOR_DIMENSION).map(|_| self.next_f32()).collect();
        let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
        raw.into_iter().map(|x| x / norm).collect()
    }
}

fn seconds(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64()
}

fn main() -> BenchResult<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> BenchResult<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let size = env_number("BENCH_REBUILD_SIZE", 100_000).max(1);
    let changed = env_number("BENCH_REBUILD_CHANGED", 1_000).min(size);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("embedded index of {size} memories; {cores} cores");

    let dir = tempfile::tempdir()?;
    let databases = Databases::connect(&RelationalConfig::Sqlite {
        dir: dir.path().join("sqlite"),
    })
    .await?;
    let tenant = TenantName::parse("bench")?;
    databases.provision_tenant(&tenant).await?;
    let user = TenantUser {
        user_id: Uuid::now_v7(),
        username: "bench".to_string(),
        email: None,
    };
    SqlTenantRegistry::new(databases.clone())
        .create_user(&tenant, &user)
        .await?;
    let started = Instant::now();
    let ids = fill(&databases, &tenant, user.user_id, size, &mut Lcg(7)).await?;
    println!(
        "stored {size} memories in SQLite in {:.1} s",
        seconds(started.elapsed())
    );

    let source = Arc::new(SqlIndexSource::new(databases.clone()));
    read_source_alone(&source, &tenant).await?;

    let space = VectorSpace {
        tenant: tenant.clone(),
        isolation: Isolation::Dedicated,
    };
    let root = dir.path().join("vectors");
    // No snapshot until asked for, so the rebuild is timed alone.
    let rebuild_only = EmbeddedOptions {
        snapshot_after_changes: usize::MAX,
        ..EmbeddedOptions::default()
    };
    let store =
        EmbeddedVectorStore::open_with(root.clone(), rebuild_only)?.with_source(source.clone());
    let started = Instant::now();
    let count = store.count(&space).await?;
    let rebuild = started.elapsed();
    println!(
        "open with no snapshot: {count} points rebuilt from SQLite in {:.1} s ({:.0} points/s)",
        seconds(rebuild),
        count as f64 / seconds(rebuild).max(f64::EPSILON)
    );
    let started = Instant::now();
    store.flush().await?;
    println!(
        "snapshot of {count} points written in {:.2} s",
        seconds(started.elapsed())
    );
    check_search(&store, &space, &source, &tenant, ids[ids.len() / 2]).await?;
    drop(store);

    let store = EmbeddedVectorStore::open(root.clone())?.with_source(source.clone());
    let started = Instant::now();
    let count = store.count(&space).await?;
    println!(
        "open from a current snapshot: {count} points in {:.2} s",
        seconds(started.elapsed())
    );
    drop(store);

    let started = Instant::now();
    edit(
        &databases,
        &tenant,
        user.user_id,
        &ids[..changed],
        &mut Lcg(11),
    )
    .await?;
    println!(
        "edited {changed} memories in SQLite in {:.1} s",
        seconds(started.elapsed())
    );
    let store = EmbeddedVectorStore::open(root)?.with_source(source.clone());
    let started = Instant::now();
    let count = store.count(&space).await?;
    println!(
        "open from a snapshot {changed} edits behind: {count} points in {:.2} s",
        seconds(started.elapsed())
    );
    check_search(&store, &space, &source, &tenant, ids[0]).await?;
    drop(store);
    databases.close().await?;
    Ok(())
}

/// Writes `size` memories with random unit vectors; returns their ids.
async fn fill(
    databases: &Databases,
    tenant: &TenantName,
    user_id: Uuid,
    size: usize,
    rng: &mut Lcg,
) -> BenchResult<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(size);
    let mut written = 0;
    while written < size {
        let in_transaction = ROWS_PER_TRANSACTION.min(size - written);
        let transaction = databases.tenant_write_transaction(tenant).await?;
        let mut done = 0;
        while done < in_transaction {
            let rows_here = ROWS_PER_INSERT.min(in_transaction - done);
            let now = Utc::now();
            let rows: Vec<memory::ActiveModel> = (0..rows_here)
                .map(|offset| {
                    let n = written + done + offset;
                    let memory_id = Uuid::now_v7();
                    ids.push(memory_id);
                    memory::ActiveModel {
                        memory_id: Set(memory_id),
                        content: Set(format!("bench memory {n}")),
                        category: Set(CATEGORIES[n % CATEGORIES.len()].to_string()),
                        embedding: Set(Some(encode_embedding(&rng.unit_vector()))),
                        metadata: Set(serde_json::json!({})),
                        created_at: Set(now),
                        updated_at: Set(now),
                        confidence_score: Set(1.0),
                        access_count: Set(0),
                        user_id: Set(user_id),
                        is_deleted: Set(false),
                    }
                })
                .collect();
            Memories::insert_many(rows)
                .exec_without_returning(&transaction)
                .await?;
            done += rows_here;
        }
        transaction.commit().await?;
        written += in_transaction;
    }
    Ok(ids)
}

/// The source's part of a rebuild: listing every version, then fetching every point.
async fn read_source_alone(source: &SqlIndexSource, tenant: &TenantName) -> BenchResult<()> {
    let started = Instant::now();
    let versions = source.versions(tenant).await?;
    let listed = started.elapsed();
    let ids: Vec<Uuid> = versions.iter().map(|point| point.memory_id).collect();
    let started = Instant::now();
    let mut fetched = 0;
    for chunk in ids.chunks(IDS_PER_FETCH) {
        fetched += source.points(tenant, chunk).await?.len();
    }
    println!(
        "SQLite alone: listing {} versions {:.2} s, fetching {fetched} points {:.2} s",
        versions.len(),
        seconds(listed),
        seconds(started.elapsed())
    );
    Ok(())
}

/// Gives `ids` new embeddings through the repository, as edits through the API do.
async fn edit(
    databases: &Databases,
    tenant: &TenantName,
    actor: Uuid,
    ids: &[Uuid],
    rng: &mut Lcg,
) -> BenchResult<()> {
    let memories = SqlMemoryRepository::new(databases.clone());
    for id in ids {
        let patch = MemoryPatch {
            content: Some(format!("bench memory {id}, edited")),
            embedding: Some(rng.unit_vector()),
            category: None,
            metadata: None,
        };
        memories
            .update(tenant, *id, &patch, actor, Utc::now())
            .await?;
    }
    Ok(())
}

/// A stored memory's own vector finds it first: the opened index is the real one.
async fn check_search(
    store: &EmbeddedVectorStore,
    space: &VectorSpace,
    source: &SqlIndexSource,
    tenant: &TenantName,
    memory_id: Uuid,
) -> BenchResult<()> {
    let points = source.points(tenant, &[memory_id]).await?;
    let point = points.first().ok_or("the probed memory is not in SQLite")?;
    let filter = VectorFilter::default();
    let vectors = [point.vector.as_slice()];
    let hits = first(
        store
            .search(space, VectorQuery::new(&vectors, 1, &filter))
            .await?,
    );
    if hits.first().map(|hit| hit.memory_id) != Some(memory_id) {
        return Err(format!("searching for memory {memory_id}'s own vector found {hits:?}").into());
    }
    Ok(())
}
