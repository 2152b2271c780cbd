//! What it costs to bring the embedded vector index of one large tenant back after a restart, and
//! why the index keeps its own journal rather than being rebuilt from the relational store.
//!
//! `cargo bench -p memoryc-platform --bench embedded_index_open`. Environment: `BENCH_POINTS`
//! (memories in the tenant, default 100000), `BENCH_EDITS` (writes made after the last snapshot
//! and before a crash, default 1000).
//!
//! It prints:
//! * **building the index** from every point, one after another, as a rebuild from the memory
//!   rows would (SQLite hands the 100 000 rows back in about a second; inserting them into the
//!   HNSW graph is the cost);
//! * **snapshot**: writing the graph and its sidecar, as on shutdown;
//! * **open from the snapshot**: a clean restart;
//! * **open after a crash**: the snapshot plus a journal of `BENCH_EDITS` writes (memories whose
//!   vectors changed, some deleted, some new), replayed;
//! * **after the crash**, each edited memory searched by its new vector must come first, each
//!   deleted one must be gone: the figure is only worth printing when the index is right.
//!
//! Figures on the development machine (2 cores, 100 000 points of 384 dimensions, dev profile
//! with usearch optimised): building 445 s (225 points/s; 510 s in a release build), snapshot
//! 1.1 s, open from the snapshot 1.0 s, open after a crash 1 000 writes past the snapshot 4.7 s.
//! A rebuild from the memory rows on every unclean start would keep such a tenant unsearchable
//! for over seven minutes; replaying the journal takes seconds. That is why the journal stays
//! (`docs/decisions/0002-embedded-index-keeps-its-journal.md`).

use std::time::{Duration, Instant};

use memoryc_crds::layout::{Isolation, TenantName};
use memoryc_platform::stores::vector::embedded::{EmbeddedOptions, EmbeddedVectorStore};
use memoryc_platform::stores::vector::{
    VectorFilter, VectorPoint, VectorQuery, VectorSpace, VectorStore, first,
};
use uuid::Uuid;

const DIMENSION: usize = 384;
/// Points handed to one `upsert`, as the platform's batched ingest does.
const BATCH: usize = 256;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let points = env_usize("BENCH_POINTS", 100_000);
    let edits = env_usize("BENCH_EDITS", 1_000).min(points);
    let root = tempfile::tempdir()?;
    let space = VectorSpace {
        tenant: TenantName::parse("bench")?,
        isolation: Isolation::Dedicated,
    };
    // No compaction during the measured phases: the build measures the graph alone, and the
    // crash leaves every edit in the journal.
    let options = EmbeddedOptions {
        sync_journal: false,
        compact_after_ops: usize::MAX,
        ..EmbeddedOptions::default()
    };
    let mut random = SplitMix64(0x5eed);
    let ids: Vec<Uuid> = (0..points).map(|_| random.uuid()).collect();

    println!("embedded index of {points} points ({DIMENSION} dimensions), {edits} edits");
    let store = EmbeddedVectorStore::open_with(root.path().to_path_buf(), options)?;
    store.ensure_space(&space).await?;
    // Memories no edit touches, kept to search for after the crash as a baseline.
    let mut untouched: Vec<VectorPoint> = Vec::new();
    let started = Instant::now();
    for (number, chunk) in ids.chunks(BATCH).enumerate() {
        let batch: Vec<VectorPoint> = chunk.iter().map(|id| random.point(*id)).collect();
        store.upsert(&space, &batch).await?;
        let first = number * BATCH;
        untouched.extend(
            batch
                .iter()
                .enumerate()
                .filter(|(offset, _)| (edits..2 * edits).contains(&(first + offset)))
                .map(|(_, point)| point.clone()),
        );
    }
    let build = started.elapsed();
    println!(
        "building the index: {} ({:.0} points/s)",
        seconds(build),
        points as f64 / build.as_secs_f64()
    );

    let started = Instant::now();
    store.flush().await?;
    println!("snapshot: {}", seconds(started.elapsed()));
    drop(store);

    let store = EmbeddedVectorStore::open_with(root.path().to_path_buf(), options)?;
    let started = Instant::now();
    let count = store.count(&space).await?;
    println!(
        "open from the snapshot: {} ({count} points)",
        seconds(started.elapsed())
    );

    // Edits since the snapshot: a third change vectors, a third are deleted, a third are new.
    let mut changed = Vec::new();
    let mut deleted = Vec::new();
    for (index, id) in ids.iter().take(edits).enumerate() {
        match index % 3 {
            0 => changed.push(random.point(*id)),
            1 => deleted.push(*id),
            _ => {
                let new_id = random.uuid();
                changed.push(random.point(new_id));
            }
        }
    }
    store.upsert(&space, &changed).await?;
    store.delete(&space, &deleted).await?;
    // A crash: nothing is snapshotted on the way down, the journal holds the edits.
    std::mem::forget(store);

    let store = EmbeddedVectorStore::open_with(root.path().to_path_buf(), options)?;
    let started = Instant::now();
    let count = store.count(&space).await?;
    println!(
        "open after a crash: {} (snapshot plus {edits} journalled edits; {count} points)",
        seconds(started.elapsed())
    );

    // Checked with a wide search (ef 1 000), so HNSW's approximation does not pass for a lost
    // write; untouched memories searched the same way are the baseline.
    let filter = VectorFilter::default();
    let misplaced_edited = misplaced(&store, &space, &filter, &changed).await?;
    let misplaced_untouched = misplaced(&store, &space, &filter, &untouched).await?;
    let expected = (points - deleted.len() + changed.len() / 2) as u64;
    println!(
        "after the crash, searching with ef {CHECK_EF}: {misplaced_edited} of {} edited memories not found first by their new vector ({misplaced_untouched} of {} untouched ones by theirs); {count} points where {expected} are expected",
        changed.len(),
        untouched.len()
    );
    if misplaced_edited > misplaced_untouched || count != expected {
        return Err("the index after the crash does not hold what was written".into());
    }
    Ok(())
}

/// ef of the verification searches.
const CHECK_EF: usize = 1_000;

/// How many of `points` are not the first hit of a search for their own vector.
async fn misplaced(
    store: &EmbeddedVectorStore,
    space: &VectorSpace,
    filter: &VectorFilter,
    points: &[VectorPoint],
) -> Result<usize, Box<dyn std::error::Error>> {
    let mut misplaced = 0;
    for point in points {
        let query = [point.vector.as_slice()];
        let hits = first(
            store
                .search(
                    space,
                    VectorQuery::new(&query, 1, filter).with_ef(Some(CHECK_EF)),
                )
                .await?,
        );
        if hits.first().map(|hit| hit.memory_id) != Some(point.memory_id) {
            misplaced += 1;
        }
    }
    Ok(misplaced)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

/// A small deterministic generator, so every run measures the same points.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uuid(&mut self) -> Uuid {
        Uuid::from_u64_pair(self.next(), self.next())
    }

    /// A unit vector with components uniform in [-1, 1) before normalising.
    fn point(&mut self, memory_id: Uuid) -> VectorPoint {
        let mut vector: Vec<f32> = (0..DIMENSION)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
            .collect();
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        vector.iter_mut().for_each(|x| *x /= norm);
        VectorPoint {
            memory_id,
            vector,
            category: "TECHNICAL".to_owned(),
            user_id: Uuid::nil(),
            created_at_ms: 0,
        }
    }
}
