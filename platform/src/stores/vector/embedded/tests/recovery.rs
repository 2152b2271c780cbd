//! The index as a cache of its source: what survives a crash, how a tenant opens from its
//! snapshot and the source, and when snapshots are written.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::super::snapshot;
use super::*;
use crate::stores::vector::{IndexSource, PointVersion};

/// What the relational store would hold, in memory, with a record of what opening tenants asked.
#[derive(Default)]
struct MemorySource {
    rows: Mutex<HashMap<TenantName, HashMap<Uuid, VectorPoint>>>,
    /// Rows `points` does not return even though `versions` lists them: deleted in between.
    vanishing: Mutex<HashSet<Uuid>>,
    /// While set, the source answers nothing, like a database that is down.
    failing: AtomicBool,
    listings: AtomicUsize,
    fetches: AtomicUsize,
    fetched: Mutex<Vec<Uuid>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("test source lock")
}

impl MemorySource {
    fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn put(&self, space: &VectorSpace, points: &[VectorPoint]) {
        let mut rows = locked(&self.rows);
        let tenant = rows.entry(space.tenant.clone()).or_default();
        for point in points {
            tenant.insert(point.memory_id, point.clone());
        }
    }

    fn remove(&self, space: &VectorSpace, ids: &[Uuid]) {
        if let Some(tenant) = locked(&self.rows).get_mut(&space.tenant) {
            for id in ids {
                tenant.remove(id);
            }
        }
    }

    /// Every point the source holds for the tenant.
    fn points_of(&self, space: &VectorSpace) -> Vec<VectorPoint> {
        locked(&self.rows)
            .get(&space.tenant)
            .map(|points| points.values().cloned().collect())
            .unwrap_or_default()
    }

    fn listings(&self) -> usize {
        self.listings.load(Ordering::SeqCst)
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn fetched(&self) -> HashSet<Uuid> {
        locked(&self.fetched).iter().copied().collect()
    }

    fn forget_requests(&self) {
        self.listings.store(0, Ordering::SeqCst);
        self.fetches.store(0, Ordering::SeqCst);
        locked(&self.fetched).clear();
    }

    fn unavailable(&self) -> Result<(), VectorStoreError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(VectorStoreError::Source(
                "the test source is down".to_string(),
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl IndexSource for MemorySource {
    async fn versions(&self, tenant: &TenantName) -> Result<Vec<PointVersion>, VectorStoreError> {
        self.unavailable()?;
        self.listings.fetch_add(1, Ordering::SeqCst);
        let rows = locked(&self.rows);
        Ok(rows
            .get(tenant)
            .map(|points| {
                points
                    .values()
                    .map(|point| PointVersion {
                        memory_id: point.memory_id,
                        version: point.version,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn points(
        &self,
        tenant: &TenantName,
        ids: &[Uuid],
    ) -> Result<Vec<VectorPoint>, VectorStoreError> {
        self.unavailable()?;
        self.fetches.fetch_add(1, Ordering::SeqCst);
        locked(&self.fetched).extend_from_slice(ids);
        let vanishing = locked(&self.vanishing);
        let rows = locked(&self.rows);
        let Some(points) = rows.get(tenant) else {
            return Ok(Vec::new());
        };
        Ok(ids
            .iter()
            .filter(|id| !vanishing.contains(*id))
            .filter_map(|id| points.get(id).cloned())
            .collect())
    }
}

/// A store over `root` whose index is a cache of `source`.
fn cached(root: &Path, source: &Arc<MemorySource>) -> EmbeddedVectorStore {
    open(root).with_source(source.clone())
}

fn cached_with(
    root: &Path,
    source: &Arc<MemorySource>,
    options: EmbeddedOptions,
) -> EmbeddedVectorStore {
    EmbeddedVectorStore::open_with(root.to_path_buf(), options)
        .expect("open store")
        .with_source(source.clone())
}

/// A write as the platform makes it: the source commits, then the index follows.
async fn write(
    store: &EmbeddedVectorStore,
    source: &MemorySource,
    space: &VectorSpace,
    points: &[VectorPoint],
) {
    source.put(space, points);
    store.upsert(space, points).await.expect("upsert");
}

async fn erase(
    store: &EmbeddedVectorStore,
    source: &MemorySource,
    space: &VectorSpace,
    ids: &[Uuid],
) {
    source.remove(space, ids);
    store.delete(space, ids).await.expect("delete");
}

/// `points` as a later write of the same memories leaves them: other vectors, a new version.
fn revised(rng: &mut Lcg, points: &[VectorPoint], version: i64) -> Vec<VectorPoint> {
    points
        .iter()
        .map(|point| VectorPoint {
            vector: rng.unit_vector(),
            version,
            ..point.clone()
        })
        .collect()
}

/// Upserts of 300 points, replacements of the first 20, deletes of the next 20, mirrored in
/// `source`; returns probe queries, among them a replaced point's new vector and a deleted
/// point's vector.
async fn write_history(
    store: &EmbeddedVectorStore,
    source: &MemorySource,
    acme: &VectorSpace,
    rng: &mut Lcg,
) -> Vec<Vec<f32>> {
    let points = random_points(rng, 0, 300);
    for batch in points.chunks(100) {
        write(store, source, acme, batch).await;
    }
    let replaced = revised(rng, &points[..20], 2);
    write(store, source, acme, &replaced).await;
    let gone: Vec<_> = (20..40).map(id).collect();
    erase(store, source, acme, &gone).await;
    let mut queries: Vec<_> = (0..4).map(|_| rng.unit_vector()).collect();
    queries.push(replaced[3].vector.clone());
    queries.push(points[25].vector.clone());
    queries
}

fn sidecar(root: &Path) -> std::path::PathBuf {
    tenant_dir(root, "acme").join(snapshot::SIDECAR)
}

/// The ids `write_history` deletes.
fn history_deletes() -> HashSet<Uuid> {
    (20..40).map(id).collect()
}

/// A reopened index is built in another order than the one it replaces, so its approximate
/// answers to arbitrary queries may differ; what must not differ is which points it holds and
/// that each of them is found by its own vector (with its own payload).
async fn assert_holds_the_source(
    store: &EmbeddedVectorStore,
    source: &MemorySource,
    space: &VectorSpace,
    deleted: &HashSet<Uuid>,
) {
    let live = source.points_of(space);
    assert_each_point_finds_itself(store, space, &live, deleted).await;
}

#[tokio::test]
async fn a_crash_before_any_snapshot_is_recovered_from_the_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let source = MemorySource::new();
    let store = cached(dir.path(), &source);
    let queries = write_history(&store, &source, &acme, &mut Lcg(11)).await;
    assert_eq!(store.count(&acme).await.expect("count"), 280);
    crash(store);
    assert!(!sidecar(dir.path()).exists());

    let reopened = cached(dir.path(), &source);
    let after = snapshot_of_results(&reopened, &acme, &queries).await;

    assert_eq!(after.0, 280);
    assert_holds_the_source(&reopened, &source, &acme, &history_deletes()).await;
    // The deleted point stays deleted, the replaced one answers at its new place.
    assert!((after.1[4][0].score - 1.0).abs() < 1e-5);
    assert_ne!(after.1[5].first().map(|hit| hit.memory_id), Some(id(25)));
}

#[tokio::test]
async fn writes_since_the_last_snapshot_are_recovered_from_the_source_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let source = MemorySource::new();
    let mut rng = Lcg(12);
    let store = cached(dir.path(), &source);
    write(&store, &source, &acme, &random_points(&mut rng, 1000, 150)).await;
    store.flush().await.expect("flush");
    assert!(sidecar(dir.path()).exists());
    let queries = write_history(&store, &source, &acme, &mut rng).await;
    erase(&store, &source, &acme, &[id(1000), id(1001)]).await;
    assert_eq!(store.count(&acme).await.expect("count"), 150 + 280 - 2);
    crash(store);
    source.forget_requests();

    let reopened = cached(dir.path(), &source);
    let after = snapshot_of_results(&reopened, &acme, &queries).await;

    assert_eq!(after.0, 150 + 280 - 2);
    let mut deleted = history_deletes();
    deleted.extend([id(1000), id(1001)]);
    assert_holds_the_source(&reopened, &source, &acme, &deleted).await;
    assert!((after.1[4][0].score - 1.0).abs() < 1e-5);
    // Exactly what the snapshot lacked was fetched: the history, less its deletes.
    let written_since: HashSet<Uuid> = (0..20).chain(40..300).map(id).collect();
    assert_eq!(source.fetched(), written_since);
    assert_eq!(source.listings(), 1);
}

#[tokio::test]
async fn a_stale_snapshot_is_corrected_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let source = MemorySource::new();
    let mut rng = Lcg(21);
    let points = random_points(&mut rng, 0, 200);
    let store = cached(dir.path(), &source);
    write(&store, &source, &acme, &points).await;
    drop(store);
    // Writes the source committed and the index never saw.
    let mut updated = revised(&mut rng, &points[..10], 7);
    for point in &mut updated {
        point.category = "PREFERENCE".to_string();
    }
    source.put(&acme, &updated);
    let removed: Vec<Uuid> = points[10..20].iter().map(|p| p.memory_id).collect();
    source.remove(&acme, &removed);
    let added = random_points(&mut rng, 500, 5);
    source.put(&acme, &added);
    source.forget_requests();

    let reopened = cached(dir.path(), &source);
    let mut live: Vec<VectorPoint> = points[20..].to_vec();
    live.extend(updated.iter().cloned());
    live.extend(added.iter().cloned());
    let gone: HashSet<Uuid> = removed.iter().copied().collect();
    assert_each_point_finds_itself(&reopened, &acme, &live, &gone).await;

    let preference = VectorFilter {
        category: Some("PREFERENCE".to_string()),
        user_id: None,
    };
    let by_new_category = reopened
        .nearest(&acme, &updated[0].vector, 20, &preference)
        .await
        .expect("search");
    assert_eq!(
        ids(&by_new_category).into_iter().collect::<HashSet<_>>(),
        updated.iter().map(|p| p.memory_id).collect::<HashSet<_>>()
    );
    let at_old_place = reopened
        .nearest(&acme, &points[0].vector, 1, &no_filter())
        .await
        .expect("search");
    assert!(at_old_place[0].score < 0.5, "{at_old_place:?}");
    let changed: HashSet<Uuid> = updated.iter().chain(&added).map(|p| p.memory_id).collect();
    assert_eq!(source.fetched(), changed);
}

#[tokio::test]
async fn a_current_snapshot_opens_without_fetching_a_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let source = MemorySource::new();
    let mut rng = Lcg(22);
    let points = random_points(&mut rng, 0, 300);
    let store = cached(dir.path(), &source);
    write(&store, &source, &acme, &points).await;
    drop(store);
    let tenant = tenant_dir(dir.path(), "acme");
    assert!(tenant.join("index-1.usearch").exists());
    source.forget_requests();

    let reopened = cached(dir.path(), &source);
    assert_eq!(reopened.count(&acme).await.expect("count"), 300);
    let hits = reopened
        .nearest(&acme, &points[7].vector, 1, &no_filter())
        .await
        .expect("search");

    assert_eq!(ids(&hits), vec![points[7].memory_id]);
    assert_eq!(source.listings(), 1);
    assert_eq!(source.fetches(), 0);
    drop(reopened);
    assert!(
        !tenant.join("index-2.usearch").exists(),
        "nothing changed, so nothing was written"
    );
}

/// Ways a snapshot can be unusable.
#[derive(Debug, Clone, Copy)]
enum Damage {
    SidecarMissing,
    SidecarFlippedByte,
    IndexTruncated,
    FirstLayoutSidecar,
}

impl Damage {
    const ALL: [Damage; 4] = [
        Self::SidecarMissing,
        Self::SidecarFlippedByte,
        Self::IndexTruncated,
        Self::FirstLayoutSidecar,
    ];

    fn apply(self, tenant: &Path) {
        let sidecar = tenant.join(snapshot::SIDECAR);
        let index = tenant.join("index-1.usearch");
        match self {
            Self::SidecarMissing => std::fs::remove_file(&sidecar).expect("remove sidecar"),
            Self::SidecarFlippedByte => {
                let mut bytes = std::fs::read(&sidecar).expect("sidecar");
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0x40;
                std::fs::write(&sidecar, &bytes).expect("damage sidecar");
            }
            Self::IndexTruncated => {
                let len = std::fs::metadata(&index).expect("index").len();
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&index)
                    .expect("open index");
                file.set_len(len / 2).expect("truncate index");
            }
            Self::FirstLayoutSidecar => {
                let mut bytes = std::fs::read(&sidecar).expect("sidecar");
                bytes[..8].copy_from_slice(b"MCVSNAP1");
                std::fs::write(&sidecar, &bytes).expect("rewrite sidecar");
            }
        }
    }
}

#[tokio::test]
async fn a_missing_or_damaged_snapshot_is_rebuilt_from_the_source() {
    for damage in Damage::ALL {
        let dir = tempfile::tempdir().expect("tempdir");
        let acme = space("acme");
        let source = MemorySource::new();
        let mut rng = Lcg(23);
        let points = random_points(&mut rng, 0, 200);
        let store = cached(dir.path(), &source);
        write(&store, &source, &acme, &points).await;
        drop(store);
        damage.apply(&tenant_dir(dir.path(), "acme"));
        source.forget_requests();

        let rebuilt = cached(dir.path(), &source);
        assert_eq!(
            rebuilt.count(&acme).await.expect("count"),
            200,
            "{damage:?}"
        );
        assert_eq!(
            source.fetched(),
            points.iter().map(|p| p.memory_id).collect::<HashSet<_>>(),
            "{damage:?}"
        );
        assert_each_point_finds_itself(&rebuilt, &acme, &points, &HashSet::new()).await;
        drop(rebuilt);

        // The rebuild was snapshotted anew, and that snapshot is current.
        source.forget_requests();
        let reopened = cached(dir.path(), &source);
        assert_eq!(
            reopened.count(&acme).await.expect("count"),
            200,
            "{damage:?}"
        );
        assert_eq!(source.fetches(), 0, "{damage:?}");
    }
}

#[tokio::test]
async fn a_tenant_without_rows_or_snapshot_leaves_no_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let source = MemorySource::new();
    let store = cached(dir.path(), &source);

    assert_eq!(store.count(&acme).await.expect("count"), 0);
    assert!(
        store
            .nearest(&acme, &axis(0), 10, &no_filter())
            .await
            .expect("search")
            .is_empty()
    );
    store.flush().await.expect("flush");
    drop(store);

    assert!(!tenant_dir(dir.path(), "acme").exists());
    assert_eq!(source.listings(), 1);
}

/// A write that reached the source but not the index is caught up on open, and its sync (the
/// outbox) then applies it again: harmless. A delete synced after the catch-up still removes.
#[tokio::test]
async fn a_sync_applied_after_the_catch_up_is_harmless_and_still_deletes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let source = MemorySource::new();
    let mut rng = Lcg(24);
    let points = random_points(&mut rng, 0, 50);
    let store = cached(dir.path(), &source);
    write(&store, &source, &acme, &points).await;
    drop(store);
    let added = random_points(&mut rng, 100, 1);
    let updated = revised(&mut rng, &points[..1], 2);
    source.put(&acme, &added);
    source.put(&acme, &updated);
    source.remove(&acme, &[points[1].memory_id]);

    let reopened = cached(dir.path(), &source);
    assert_eq!(reopened.count(&acme).await.expect("count"), 50);
    // The outbox delivers the same three writes.
    reopened.upsert(&acme, &added).await.expect("re-upsert");
    reopened.upsert(&acme, &updated).await.expect("re-upsert");
    reopened
        .delete(&acme, &[points[1].memory_id])
        .await
        .expect("re-delete");

    let mut live: Vec<VectorPoint> = points[2..].to_vec();
    live.extend(added.iter().cloned());
    live.extend(updated.iter().cloned());
    let mut gone = HashSet::from([points[1].memory_id]);
    assert_each_point_finds_itself(&reopened, &acme, &live, &gone).await;

    // A memory deleted after the catch-up: its sync removes the caught-up point.
    erase(&reopened, &source, &acme, &[added[0].memory_id]).await;
    live.retain(|p| p.memory_id != added[0].memory_id);
    gone.insert(added[0].memory_id);
    assert_each_point_finds_itself(&reopened, &acme, &live, &gone).await;
    crash(reopened);
    let after_crash = cached(dir.path(), &source);
    assert_each_point_finds_itself(&after_crash, &acme, &live, &gone).await;
}

#[tokio::test]
async fn a_point_deleted_between_listing_and_fetch_leaves_the_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let source = MemorySource::new();
    let mut rng = Lcg(25);
    let points = random_points(&mut rng, 0, 30);
    let store = cached(dir.path(), &source);
    write(&store, &source, &acme, &points).await;
    drop(store);
    let updated = revised(&mut rng, &points[..1], 2);
    source.put(&acme, &updated);
    locked(&source.vanishing).insert(points[0].memory_id);

    let reopened = cached(dir.path(), &source);

    assert_eq!(reopened.count(&acme).await.expect("count"), 29);
    for probe in [&points[0].vector, &updated[0].vector] {
        let hits = reopened
            .nearest(&acme, probe, 30, &no_filter())
            .await
            .expect("search");
        assert!(
            ids(&hits).iter().all(|m| *m != points[0].memory_id),
            "the old version lingers"
        );
    }
}

#[tokio::test]
async fn a_source_that_cannot_answer_fails_the_open_and_the_next_use_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let source = MemorySource::new();
    let mut rng = Lcg(26);
    source.put(&acme, &random_points(&mut rng, 0, 10));
    source.failing.store(true, Ordering::SeqCst);
    let store = cached(dir.path(), &source);

    let failed = store.count(&acme).await;
    source.failing.store(false, Ordering::SeqCst);
    let retried = store.count(&acme).await;

    assert!(
        matches!(failed, Err(VectorStoreError::Source(_))),
        "{failed:?}"
    );
    assert_eq!(retried.expect("count"), 10);
}

#[tokio::test]
async fn a_snapshot_is_written_after_the_threshold_and_bounds_the_catch_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let source = MemorySource::new();
    let options = EmbeddedOptions {
        snapshot_after_changes: 50,
        ..EmbeddedOptions::default()
    };
    let store = cached_with(dir.path(), &source, options);
    let points = random_points(&mut Lcg(14), 0, 120);
    for p in &points {
        write(&store, &source, &acme, std::slice::from_ref(p)).await;
    }
    crash(store);

    let tenant = tenant_dir(dir.path(), "acme");
    assert!(tenant.join("index-2.usearch").exists());
    assert!(
        !tenant.join("index-1.usearch").exists(),
        "superseded snapshot left behind"
    );
    source.forget_requests();
    let reopened = cached_with(dir.path(), &source, options);
    assert_each_point_finds_itself(&reopened, &acme, &points, &HashSet::new()).await;
    // The first write opened the tenant, whose catch-up already found that write's point in
    // the source: one change more than the writes, so snapshots followed writes 49 and 99.
    assert_eq!(
        source.fetched(),
        points[99..]
            .iter()
            .map(|p| p.memory_id)
            .collect::<HashSet<_>>()
    );
}

#[tokio::test]
async fn a_long_catch_up_is_snapshotted_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let source = MemorySource::new();
    let options = EmbeddedOptions {
        snapshot_after_changes: 100,
        ..EmbeddedOptions::default()
    };
    source.put(&acme, &random_points(&mut Lcg(27), 0, 150));

    let store = cached_with(dir.path(), &source, options);
    assert_eq!(store.count(&acme).await.expect("count"), 150);
    assert!(
        sidecar(dir.path()).exists(),
        "no snapshot after the rebuild"
    );
    crash(store);
    source.forget_requests();
    let reopened = cached_with(dir.path(), &source, options);

    assert_eq!(reopened.count(&acme).await.expect("count"), 150);
    assert_eq!(source.fetches(), 0);
}

#[tokio::test]
async fn without_a_source_only_the_snapshot_survives_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let mut rng = Lcg(28);
    let store = open(dir.path());
    store
        .upsert(&acme, &random_points(&mut rng, 0, 10))
        .await
        .expect("upsert");
    store.flush().await.expect("flush");
    store
        .upsert(&acme, &random_points(&mut rng, 10, 5))
        .await
        .expect("upsert");
    crash(store);

    let reopened = open(dir.path());
    assert_eq!(reopened.count(&acme).await.expect("count"), 10);
    drop(reopened);

    // With nothing to rebuild from, a damaged snapshot is an error, not an empty tenant.
    Damage::SidecarFlippedByte.apply(&tenant_dir(dir.path(), "acme"));
    let damaged = open(dir.path());
    assert!(matches!(
        damaged.count(&acme).await,
        Err(VectorStoreError::Storage(_))
    ));
}

#[tokio::test]
async fn dropping_the_store_writes_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let source = MemorySource::new();
    let store = cached(dir.path(), &source);
    let queries = write_history(&store, &source, &acme, &mut Lcg(13)).await;
    let before = snapshot_of_results(&store, &acme, &queries).await;
    drop(store);

    let tenant = tenant_dir(dir.path(), "acme");
    assert!(tenant.join(snapshot::SIDECAR).exists());
    assert!(tenant.join("index-1.usearch").exists());
    // Without its source, the store has only the snapshot to go on: it holds everything.
    let reopened = open(dir.path());
    let after = snapshot_of_results(&reopened, &acme, &queries).await;
    assert_eq!(before.0, after.0);
    for (b, a) in before.1.iter().zip(&after.1) {
        assert_same_hits(b, a);
    }
}

#[tokio::test]
async fn churn_reuses_keys_without_mixing_up_memories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let source = MemorySource::new();
    let mut rng = Lcg(16);
    let store = cached(dir.path(), &source);
    let first = random_points(&mut rng, 0, 200);
    write(&store, &source, &acme, &first).await;
    let deleted: HashSet<Uuid> = (0..200).step_by(2).map(id).collect();
    erase(
        &store,
        &source,
        &acme,
        &deleted.iter().copied().collect::<Vec<_>>(),
    )
    .await;
    // New memories take the freed keys; replacements keep theirs.
    let mut live: Vec<_> = first
        .into_iter()
        .filter(|p| !deleted.contains(&p.memory_id))
        .collect();
    let newcomers = random_points(&mut rng, 500, 100);
    write(&store, &source, &acme, &newcomers).await;
    let moved: Vec<_> = random_points(&mut rng, 1, 10)
        .into_iter()
        .map(|p| VectorPoint { version: 2, ..p })
        .filter(|p| !deleted.contains(&p.memory_id))
        .collect();
    write(&store, &source, &acme, &moved).await;
    live.retain(|p| moved.iter().all(|m| m.memory_id != p.memory_id));
    live.extend(newcomers);
    live.extend(moved);
    assert_each_point_finds_itself(&store, &acme, &live, &deleted).await;

    drop(store);
    let from_snapshot = cached(dir.path(), &source);
    assert_each_point_finds_itself(&from_snapshot, &acme, &live, &deleted).await;
    // Keys freed before the snapshot are reused after loading it.
    let late = random_points(&mut rng, 900, 5);
    write(&from_snapshot, &source, &acme, &late).await;
    live.extend(late);
    assert_each_point_finds_itself(&from_snapshot, &acme, &live, &deleted).await;

    // The late points never reached a snapshot: the source brings them back.
    crash(from_snapshot);
    let caught_up = cached(dir.path(), &source);
    assert_each_point_finds_itself(&caught_up, &acme, &live, &deleted).await;
}
