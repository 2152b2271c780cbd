use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use memoryc_crds::layout::{Isolation, TenantName, VECTOR_DIMENSION};
use uuid::Uuid;

use super::{EmbeddedOptions, EmbeddedVectorStore, journal, snapshot};
use crate::stores::vector::{
    Nearest, ScoredId, VectorFilter, VectorPoint, VectorSpace, VectorStore, VectorStoreError,
};

const CATEGORIES: [&str; 3] = ["TECHNICAL", "WORKFLOW", "PROJECT"];

/// Deterministic pseudo-random numbers (Knuth's MMIX LCG): reproducible without a dependency.
struct Lcg(u64);

impl Lcg {
    fn next_f32(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // The top 24 bits are the well-mixed ones; map them onto [-1, 1).
        ((self.0 >> 40) as f32 / (1u64 << 23) as f32) - 1.0
    }

    fn unit_vector(&mut self) -> Vec<f32> {
        normalized((0..VECTOR_DIMENSION).map(|_| self.next_f32()).collect())
    }
}

fn normalized(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    vector.iter_mut().for_each(|x| *x /= norm);
    vector
}

fn axis(i: usize) -> Vec<f32> {
    let mut vector = vec![0.0; VECTOR_DIMENSION];
    vector[i] = 1.0;
    vector
}

fn space(name: &str) -> VectorSpace {
    VectorSpace {
        tenant: TenantName::parse(name).expect("valid tenant name"),
        isolation: Isolation::Dedicated,
    }
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn user(n: u128) -> Uuid {
    Uuid::from_u128(0xAAAA_0000 + n)
}

fn point(memory: u128, vector: Vec<f32>, category: &str, user_n: u128) -> VectorPoint {
    VectorPoint {
        memory_id: id(memory),
        vector,
        category: category.to_string(),
        user_id: user(user_n),
        created_at_ms: 1_700_000_000_000 + memory as i64,
    }
}

/// `count` random points; category and user cycle so every filter has plenty of matches.
fn random_points(rng: &mut Lcg, first: u128, count: u128) -> Vec<VectorPoint> {
    (first..first + count)
        .map(|n| {
            let category = CATEGORIES[(n % 3) as usize];
            point(n, rng.unit_vector(), category, n % 4)
        })
        .collect()
}

fn ids(hits: &[ScoredId]) -> Vec<Uuid> {
    hits.iter().map(|hit| hit.memory_id).collect()
}

fn no_filter() -> VectorFilter {
    VectorFilter::default()
}

fn fast_options() -> EmbeddedOptions {
    EmbeddedOptions {
        sync_journal: false,
        ..EmbeddedOptions::default()
    }
}

fn open(dir: &Path) -> EmbeddedVectorStore {
    EmbeddedVectorStore::open(dir.to_path_buf()).expect("open store")
}

/// Simulates a crash: no drop, hence no snapshot; only the journal survives.
fn crash(store: EmbeddedVectorStore) {
    std::mem::forget(store);
}

fn tenant_dir(root: &Path, name: &str) -> std::path::PathBuf {
    root.join(name)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms =
        a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / norms
}

/// Exact top-`k` of `points` passing `keep`, best first.
fn brute_force(
    points: &[VectorPoint],
    query: &[f32],
    k: usize,
    keep: impl Fn(&VectorPoint) -> bool,
) -> Vec<Uuid> {
    let mut scored: Vec<(f32, Uuid)> = points
        .iter()
        .filter(|p| keep(p))
        .map(|p| (cosine(query, &p.vector), p.memory_id))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(k).map(|(_, id)| id).collect()
}

fn assert_sorted(hits: &[ScoredId]) {
    assert!(
        hits.windows(2).all(|w| w[0].score >= w[1].score),
        "hits not closest first: {hits:?}"
    );
}

fn assert_same_hits(before: &[ScoredId], after: &[ScoredId]) {
    assert_eq!(ids(before), ids(after));
    for (a, b) in before.iter().zip(after) {
        assert!((a.score - b.score).abs() < 1e-5, "{a:?} vs {b:?}");
    }
}

async fn snapshot_of_results(
    store: &EmbeddedVectorStore,
    space: &VectorSpace,
    queries: &[Vec<f32>],
) -> (u64, Vec<Vec<ScoredId>>) {
    let count = store.count(space).await.expect("count");
    let mut results = Vec::new();
    for query in queries {
        results.push(
            store
                .nearest(space, query, 10, &no_filter())
                .await
                .expect("search"),
        );
    }
    (count, results)
}

#[tokio::test]
async fn search_returns_the_nearest_first_with_identical_vector_scoring_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let acme = space("acme");
    store.ensure_space(&acme).await.expect("ensure");
    let mut near = axis(0);
    near[1] = 1.0;
    let points = vec![
        point(1, axis(1), "TECHNICAL", 1),
        point(2, normalized(near), "TECHNICAL", 1),
        point(3, axis(0), "TECHNICAL", 1),
    ];
    store.upsert(&acme, &points).await.expect("upsert");

    let hits = store
        .nearest(&acme, &axis(0), 10, &no_filter())
        .await
        .expect("search");

    assert_eq!(ids(&hits), vec![id(3), id(2), id(1)]);
    assert!((hits[0].score - 1.0).abs() < 1e-5, "{hits:?}");
    assert!((hits[1].score - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-4);
    assert!(hits[2].score.abs() < 1e-5);
    let top_one = store
        .nearest(&acme, &axis(0), 1, &no_filter())
        .await
        .expect("search");
    assert_eq!(ids(&top_one), vec![id(3)]);
}

#[tokio::test]
async fn upserting_an_existing_id_replaces_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let acme = space("acme");
    store
        .upsert(
            &acme,
            &[
                point(1, axis(0), "TECHNICAL", 1),
                point(2, axis(5), "TECHNICAL", 1),
            ],
        )
        .await
        .expect("upsert");

    store
        .upsert(&acme, &[point(1, axis(2), "PROJECT", 2)])
        .await
        .expect("re-upsert");

    assert_eq!(store.count(&acme).await.expect("count"), 2);
    let hits = store
        .nearest(&acme, &axis(2), 10, &no_filter())
        .await
        .expect("search");
    assert_eq!(ids(&hits)[0], id(1));
    assert!((hits[0].score - 1.0).abs() < 1e-5);
    assert_eq!(ids(&hits).iter().filter(|m| **m == id(1)).count(), 1);
    let at_old_place = store
        .nearest(&acme, &axis(0), 10, &no_filter())
        .await
        .expect("search");
    assert!(
        at_old_place.iter().all(|hit| hit.score < 0.5),
        "{at_old_place:?}"
    );
    let old_category = VectorFilter {
        category: Some("TECHNICAL".into()),
        user_id: None,
    };
    let technical = store
        .nearest(&acme, &axis(2), 10, &old_category)
        .await
        .expect("search");
    assert_eq!(ids(&technical), vec![id(2)]);
    let new_user = VectorFilter {
        category: None,
        user_id: Some(user(2)),
    };
    let of_user = store
        .nearest(&acme, &axis(2), 10, &new_user)
        .await
        .expect("search");
    assert_eq!(ids(&of_user), vec![id(1)]);
}

#[tokio::test]
async fn delete_removes_points_and_ignores_unknown_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let acme = space("acme");
    let points: Vec<_> = (0..3)
        .map(|n| point(n, axis(n as usize), "TECHNICAL", 1))
        .collect();
    store.upsert(&acme, &points).await.expect("upsert");

    store.delete(&acme, &[id(0), id(99)]).await.expect("delete");

    assert_eq!(store.count(&acme).await.expect("count"), 2);
    let hits = store
        .nearest(&acme, &axis(0), 10, &no_filter())
        .await
        .expect("search");
    assert_eq!(
        ids(&hits).into_iter().collect::<HashSet<_>>(),
        HashSet::from([id(1), id(2)])
    );
    store.delete(&acme, &[id(1), id(2)]).await.expect("delete");
    assert_eq!(store.count(&acme).await.expect("count"), 0);
    assert!(
        store
            .nearest(&acme, &axis(0), 10, &no_filter())
            .await
            .expect("search")
            .is_empty()
    );
    // A deleted id can come back.
    store
        .upsert(&acme, &[point(0, axis(0), "TECHNICAL", 1)])
        .await
        .expect("upsert");
    assert_eq!(store.count(&acme).await.expect("count"), 1);
}

#[tokio::test]
async fn filters_return_only_matches_and_still_fill_the_limit() {
    let mut rng = Lcg(7);
    let points = random_points(&mut rng, 0, 600);
    let queries: Vec<_> = (0..5).map(|_| rng.unit_vector()).collect();
    let filters = [
        VectorFilter {
            category: Some("WORKFLOW".into()),
            user_id: None,
        },
        VectorFilter {
            category: None,
            user_id: Some(user(2)),
        },
        VectorFilter {
            category: Some("PROJECT".into()),
            user_id: Some(user(1)),
        },
    ];
    let passes = |filter: &VectorFilter, p: &VectorPoint| {
        filter.category.as_ref().is_none_or(|c| *c == p.category)
            && filter.user_id.is_none_or(|u| u == p.user_id)
    };
    // Default options answer these small filters by exact scan; without it they oversample an
    // unfiltered walk; without that too they take usearch's filtered walk.
    for path in SearchPath::ALL {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = path.open(dir.path());
        let acme = space("acme");
        store.upsert(&acme, &points).await.expect("upsert");

        let mut found = 0;
        for filter in &filters {
            for query in &queries {
                let hits = store
                    .nearest(&acme, query, 10, filter)
                    .await
                    .expect("search");
                assert_eq!(hits.len(), 10, "filter {filter:?} did not fill the limit");
                assert_sorted(&hits);
                for hit in &hits {
                    let p = points
                        .iter()
                        .find(|p| p.memory_id == hit.memory_id)
                        .expect("known id");
                    assert!(passes(filter, p), "{p:?} does not pass {filter:?}");
                }
                let exact = brute_force(&points, query, 10, |p| passes(filter, p));
                found += ids(&hits).iter().filter(|m| exact.contains(m)).count();
            }
        }
        let recall = found as f64 / (10 * filters.len() * queries.len()) as f64;
        assert!(recall >= 0.95, "filtered recall {recall} on {path:?}");

        // 600 points / 12 (category, user) pairs: exactly 50 match.
        let narrow = &filters[2];
        let all = store
            .nearest(&acme, &queries[0], 500, narrow)
            .await
            .expect("search");
        assert_eq!(all.len(), 50);
        let unknown_category = VectorFilter {
            category: Some("NOPE".into()),
            user_id: None,
        };
        let unknown_user = VectorFilter {
            category: None,
            user_id: Some(user(99)),
        };
        assert!(
            store
                .nearest(&acme, &queries[0], 10, &unknown_category)
                .await
                .expect("search")
                .is_empty()
        );
        assert!(
            store
                .nearest(&acme, &queries[0], 10, &unknown_user)
                .await
                .expect("search")
                .is_empty()
        );
    }
}

/// The three ways a filtered search can be answered.
#[derive(Debug, Clone, Copy)]
enum SearchPath {
    ExactScan,
    Oversampled,
    FilteredWalk,
}

impl SearchPath {
    const ALL: [SearchPath; 3] = [Self::ExactScan, Self::Oversampled, Self::FilteredWalk];

    fn open(self, dir: &Path) -> EmbeddedVectorStore {
        let exact_scan_max = match self {
            Self::ExactScan => EmbeddedOptions::default().exact_scan_max,
            Self::Oversampled | Self::FilteredWalk => 0,
        };
        let options = EmbeddedOptions {
            exact_scan_max,
            ..fast_options()
        };
        let store = EmbeddedVectorStore::open_with(dir.to_path_buf(), options).expect("open");
        match self {
            Self::FilteredWalk => store.without_oversampling(),
            Self::ExactScan | Self::Oversampled => store,
        }
    }
}

/// When user and category are correlated the oversampled walk finds too few matches and the
/// filtered walk has to take over.
#[tokio::test]
async fn a_short_oversampled_search_falls_back_to_the_filtered_walk() {
    let mut rng = Lcg(17);
    let mut points = Vec::new();
    for n in 0..600u128 {
        let (category, user_n) = match n {
            0..290 => ("TECHNICAL", 1),
            290..300 => ("PROJECT", 1),
            _ => ("PROJECT", 2),
        };
        points.push(point(n, rng.unit_vector(), category, user_n));
    }
    let rare = VectorFilter {
        category: Some("PROJECT".into()),
        user_id: Some(user(1)),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SearchPath::Oversampled.open(dir.path());
    let acme = space("acme");
    store.upsert(&acme, &points).await.expect("upsert");

    for _ in 0..5 {
        let hits = store
            .nearest(&acme, &rng.unit_vector(), 10, &rare)
            .await
            .expect("search");
        assert_eq!(
            ids(&hits).into_iter().collect::<HashSet<_>>(),
            (290..300).map(id).collect::<HashSet<_>>()
        );
        assert_sorted(&hits);
    }
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let (acme, globex) = (space("acme"), space("globex"));
    let shared_vectors = |offset: u128| -> Vec<VectorPoint> {
        (0..3)
            .map(|n| point(offset + n, axis(n as usize), "TECHNICAL", 1))
            .collect()
    };
    store
        .upsert(&acme, &shared_vectors(0))
        .await
        .expect("upsert");
    store
        .upsert(&globex, &shared_vectors(100))
        .await
        .expect("upsert");
    store
        .upsert(&globex, &[point(200, axis(9), "TECHNICAL", 1)])
        .await
        .expect("upsert");

    let acme_hits = store
        .nearest(&acme, &axis(0), 10, &no_filter())
        .await
        .expect("search");
    let globex_hits = store
        .nearest(&globex, &axis(0), 10, &no_filter())
        .await
        .expect("search");

    assert_eq!(
        ids(&acme_hits).into_iter().collect::<HashSet<_>>(),
        HashSet::from([id(0), id(1), id(2)])
    );
    assert_eq!(globex_hits.len(), 4);
    assert!(ids(&globex_hits).iter().all(|m| m.as_u128() >= 100));
    assert_eq!(store.count(&acme).await.expect("count"), 3);
    assert_eq!(store.count(&globex).await.expect("count"), 4);
    store
        .delete(&acme, &[id(100)])
        .await
        .expect("cross-tenant delete is a no-op");
    assert_eq!(store.count(&globex).await.expect("count"), 4);
    store.drop_space(&acme).await.expect("drop");
    assert_eq!(store.count(&globex).await.expect("count"), 4);
}

/// A store that has seen upserts, replacements and deletes; returns probe queries.
async fn write_history(
    store: &EmbeddedVectorStore,
    acme: &VectorSpace,
    rng: &mut Lcg,
) -> Vec<Vec<f32>> {
    let points = random_points(rng, 0, 300);
    for batch in points.chunks(100) {
        store.upsert(acme, batch).await.expect("upsert");
    }
    let replaced = random_points(rng, 0, 20);
    store.upsert(acme, &replaced).await.expect("re-upsert");
    let gone: Vec<_> = (20..40).map(id).collect();
    store.delete(acme, &gone).await.expect("delete");
    let mut queries: Vec<_> = (0..4).map(|_| rng.unit_vector()).collect();
    queries.push(replaced[3].vector.clone());
    queries.push(points[25].vector.clone());
    queries
}

#[tokio::test]
async fn journal_replay_restores_everything_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let store = open(dir.path());
    let queries = write_history(&store, &acme, &mut Lcg(11)).await;
    let before = snapshot_of_results(&store, &acme, &queries).await;
    crash(store);
    assert!(
        !tenant_dir(dir.path(), "acme")
            .join(snapshot::SIDECAR)
            .exists()
    );

    let reopened = open(dir.path());
    let after = snapshot_of_results(&reopened, &acme, &queries).await;

    assert_eq!(before.0, 280);
    assert_eq!(before.0, after.0);
    for (b, a) in before.1.iter().zip(&after.1) {
        assert_same_hits(b, a);
    }
    // The deleted point stays deleted, the replaced one answers at its new place.
    assert!((after.1[4][0].score - 1.0).abs() < 1e-5);
    assert_ne!(after.1[5].first().map(|hit| hit.memory_id), Some(id(25)));
}

#[tokio::test]
async fn snapshot_plus_journal_restores_everything_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let journal_path = tenant_dir(dir.path(), "acme").join(journal::FILE_NAME);
    let mut rng = Lcg(12);
    let store = open(dir.path());
    store
        .upsert(&acme, &random_points(&mut rng, 1000, 150))
        .await
        .expect("upsert");
    store.flush().await.expect("flush");
    assert!(
        tenant_dir(dir.path(), "acme")
            .join(snapshot::SIDECAR)
            .exists()
    );
    assert_eq!(std::fs::metadata(&journal_path).expect("journal").len(), 8);
    let queries = write_history(&store, &acme, &mut rng).await;
    store
        .delete(&acme, &[id(1000), id(1001)])
        .await
        .expect("delete from snapshot");
    let before = snapshot_of_results(&store, &acme, &queries).await;
    assert!(std::fs::metadata(&journal_path).expect("journal").len() > 8);
    crash(store);

    let reopened = open(dir.path());
    let after = snapshot_of_results(&reopened, &acme, &queries).await;

    assert_eq!(before.0, 150 + 280 - 2);
    assert_eq!(before.0, after.0);
    for (b, a) in before.1.iter().zip(&after.1) {
        assert_same_hits(b, a);
    }
}

#[tokio::test]
async fn dropping_the_store_snapshots_and_empties_the_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let store = open(dir.path());
    let queries = write_history(&store, &acme, &mut Lcg(13)).await;
    let before = snapshot_of_results(&store, &acme, &queries).await;
    drop(store);

    let tenant = tenant_dir(dir.path(), "acme");
    assert!(tenant.join(snapshot::SIDECAR).exists());
    assert!(tenant.join("index-1.usearch").exists());
    assert_eq!(
        std::fs::metadata(tenant.join(journal::FILE_NAME))
            .expect("journal")
            .len(),
        8
    );
    let reopened = open(dir.path());
    let after = snapshot_of_results(&reopened, &acme, &queries).await;
    assert_eq!(before.0, after.0);
    for (b, a) in before.1.iter().zip(&after.1) {
        assert_same_hits(b, a);
    }
}

#[tokio::test]
async fn the_journal_is_compacted_after_the_threshold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let options = EmbeddedOptions {
        compact_after_ops: 50,
        ..fast_options()
    };
    let store = EmbeddedVectorStore::open_with(dir.path().to_path_buf(), options).expect("open");
    let mut rng = Lcg(14);
    let points = random_points(&mut rng, 0, 120);
    for p in &points {
        store
            .upsert(&acme, std::slice::from_ref(p))
            .await
            .expect("upsert");
    }
    let queries: Vec<_> = (0..3).map(|_| rng.unit_vector()).collect();
    let before = snapshot_of_results(&store, &acme, &queries).await;
    crash(store);

    let tenant = tenant_dir(dir.path(), "acme");
    assert!(tenant.join("index-2.usearch").exists());
    assert!(
        !tenant.join("index-1.usearch").exists(),
        "superseded snapshot left behind"
    );
    let journal_len = std::fs::metadata(tenant.join(journal::FILE_NAME))
        .expect("journal")
        .len();
    let record_len =
        (8 + 1 + 16 + 16 + 8 + 2 + "TECHNICAL".len() + 4 + 4 * VECTOR_DIMENSION) as u64;
    assert!(
        journal_len <= 8 + 20 * record_len,
        "journal not compacted: {journal_len} bytes"
    );
    let reopened = EmbeddedVectorStore::open_with(dir.path().to_path_buf(), options).expect("open");
    let after = snapshot_of_results(&reopened, &acme, &queries).await;
    assert_eq!(after.0, 120);
    for (b, a) in before.1.iter().zip(&after.1) {
        assert_same_hits(b, a);
    }
}

/// Every live point answers a search for its own vector; deleted ones never appear.
async fn assert_each_point_finds_itself(
    store: &EmbeddedVectorStore,
    acme: &VectorSpace,
    live: &[VectorPoint],
    deleted: &HashSet<Uuid>,
) {
    assert_eq!(store.count(acme).await.expect("count"), live.len() as u64);
    for p in live {
        let hits = store
            .nearest(acme, &p.vector, 3, &no_filter())
            .await
            .expect("search");
        assert_eq!(hits[0].memory_id, p.memory_id);
        assert!((hits[0].score - 1.0).abs() < 1e-5);
        assert!(hits.iter().all(|hit| !deleted.contains(&hit.memory_id)));
        let own_user = VectorFilter {
            category: None,
            user_id: Some(p.user_id),
        };
        let of_user = store
            .nearest(acme, &p.vector, 1, &own_user)
            .await
            .expect("search");
        assert_eq!(ids(&of_user), vec![p.memory_id]);
    }
}

#[tokio::test]
async fn churn_reuses_keys_without_mixing_up_memories() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let mut rng = Lcg(16);
    let store = open(dir.path());
    let first = random_points(&mut rng, 0, 200);
    store.upsert(&acme, &first).await.expect("upsert");
    let deleted: HashSet<Uuid> = (0..200).step_by(2).map(id).collect();
    store
        .delete(&acme, &deleted.iter().copied().collect::<Vec<_>>())
        .await
        .expect("delete");
    // New memories take the freed keys; replacements keep theirs.
    let mut live: Vec<_> = first
        .into_iter()
        .filter(|p| !deleted.contains(&p.memory_id))
        .collect();
    let newcomers = random_points(&mut rng, 500, 100);
    store
        .upsert(&acme, &newcomers)
        .await
        .expect("upsert newcomers");
    let moved: Vec<_> = random_points(&mut rng, 1, 10)
        .into_iter()
        .filter(|p| !deleted.contains(&p.memory_id))
        .collect();
    store.upsert(&acme, &moved).await.expect("move");
    live.retain(|p| moved.iter().all(|m| m.memory_id != p.memory_id));
    live.extend(newcomers);
    live.extend(moved);
    assert_each_point_finds_itself(&store, &acme, &live, &deleted).await;

    crash(store);
    let replayed = open(dir.path());
    assert_each_point_finds_itself(&replayed, &acme, &live, &deleted).await;
    drop(replayed);
    let from_snapshot = open(dir.path());
    assert_each_point_finds_itself(&from_snapshot, &acme, &live, &deleted).await;
    // Keys freed before the snapshot are reused after loading it.
    let late = random_points(&mut rng, 900, 5);
    from_snapshot
        .upsert(&acme, &late)
        .await
        .expect("upsert after load");
    live.extend(late);
    assert_each_point_finds_itself(&from_snapshot, &acme, &live, &deleted).await;
}

#[tokio::test]
async fn a_torn_journal_tail_is_ignored_and_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let journal_path = tenant_dir(dir.path(), "acme").join(journal::FILE_NAME);
    let store = open(dir.path());
    let points: Vec<_> = (0..3)
        .map(|n| point(n, axis(n as usize), "TECHNICAL", 1))
        .collect();
    store.upsert(&acme, &points).await.expect("upsert");
    crash(store);
    let intact = std::fs::read(&journal_path).expect("journal");

    // A crash mid-append: a frame header promising more than was written.
    let mut torn = intact.clone();
    torn.extend_from_slice(&1_000u32.to_le_bytes());
    torn.extend_from_slice(&[0xAB; 30]);
    std::fs::write(&journal_path, &torn).expect("tear");
    let store = open(dir.path());
    assert_eq!(store.count(&acme).await.expect("count"), 3);
    store
        .upsert(&acme, &[point(3, axis(3), "TECHNICAL", 1)])
        .await
        .expect("upsert after tear");
    crash(store);
    let store = open(dir.path());
    assert_eq!(store.count(&acme).await.expect("count"), 4);
    let hits = store
        .nearest(&acme, &axis(3), 1, &no_filter())
        .await
        .expect("search");
    assert_eq!(ids(&hits), vec![id(3)]);
    crash(store);

    // A tail of zeros, as a filesystem may leave after extending a file it never wrote.
    let mut zeroed = std::fs::read(&journal_path).expect("journal");
    zeroed.extend_from_slice(&[0; 64]);
    std::fs::write(&journal_path, &zeroed).expect("zero tail");
    let store = open(dir.path());
    assert_eq!(store.count(&acme).await.expect("count"), 4);
}

#[tokio::test]
async fn drop_space_removes_the_tenant_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let store = open(dir.path());
    store.ensure_space(&acme).await.expect("ensure");
    store
        .upsert(&acme, &[point(1, axis(1), "TECHNICAL", 1)])
        .await
        .expect("upsert");

    store.drop_space(&acme).await.expect("drop");

    assert!(!tenant_dir(dir.path(), "acme").exists());
    assert_eq!(store.count(&acme).await.expect("count"), 0);
    assert!(
        store
            .nearest(&acme, &axis(1), 10, &no_filter())
            .await
            .expect("search")
            .is_empty()
    );
    assert!(
        !tenant_dir(dir.path(), "acme").exists(),
        "a read recreated the tenant"
    );
    store.drop_space(&acme).await.expect("second drop");
    store
        .upsert(&acme, &[point(2, axis(2), "TECHNICAL", 1)])
        .await
        .expect("upsert after drop");
    drop(store);
    let reopened = open(dir.path());
    assert_eq!(reopened.count(&acme).await.expect("count"), 1);
}

#[tokio::test]
async fn ensure_space_creates_the_tenant_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let store = open(dir.path());
    store.ensure_space(&acme).await.expect("ensure");
    store
        .upsert(&acme, &[point(1, axis(1), "TECHNICAL", 1)])
        .await
        .expect("upsert");
    store.ensure_space(&acme).await.expect("ensure again");
    assert!(
        tenant_dir(dir.path(), "acme")
            .join(journal::FILE_NAME)
            .exists()
    );
    assert_eq!(store.count(&acme).await.expect("count"), 1);
    assert_eq!(store.backend_name(), "embedded");
}

#[tokio::test]
async fn wrong_dimensions_and_non_finite_values_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = space("acme");
    let store = open(dir.path());
    let short = point(1, vec![1.0, 0.0, 0.0], "TECHNICAL", 1);
    let mut nan = axis(0);
    nan[3] = f32::NAN;

    let upsert = store.upsert(&acme, &[short]).await;
    let search = store.nearest(&acme, &[1.0; 10], 5, &no_filter()).await;
    let not_finite = store.upsert(&acme, &[point(2, nan, "TECHNICAL", 1)]).await;

    assert!(matches!(
        upsert,
        Err(VectorStoreError::DimensionMismatch {
            expected: VECTOR_DIMENSION,
            actual: 3
        })
    ));
    assert!(matches!(
        search,
        Err(VectorStoreError::DimensionMismatch { actual: 10, .. })
    ));
    assert!(matches!(not_finite, Err(VectorStoreError::Rejected(_))));
    assert_eq!(store.count(&acme).await.expect("count"), 0);
}

#[tokio::test]
async fn health_reports_whether_the_root_is_writable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("vectors");
    let store = EmbeddedVectorStore::open(root.clone()).expect("open");
    store.health().await.expect("healthy");
    assert_eq!(
        std::fs::read_dir(&root).expect("root").count(),
        0,
        "probe left behind"
    );
    std::fs::remove_dir_all(&root).expect("remove root");
    assert!(matches!(
        store.health().await,
        Err(VectorStoreError::Storage(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_searches_and_writes_do_not_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(
        EmbeddedVectorStore::open_with(dir.path().to_path_buf(), fast_options()).expect("open"),
    );
    let acme = space("acme");
    let mut rng = Lcg(15);
    store
        .upsert(&acme, &random_points(&mut rng, 0, 500))
        .await
        .expect("upsert");
    let mut tasks = Vec::new();
    for task in 0..32u128 {
        let store = std::sync::Arc::clone(&store);
        let acme = acme.clone();
        let query = rng.unit_vector();
        let extra = random_points(&mut rng, 10_000 + task * 10, 10);
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let hits = store.nearest(&acme, &query, 10, &no_filter()).await?;
                assert_eq!(hits.len(), 10);
            }
            if task % 4 == 0 {
                store.upsert(&acme, &extra).await?;
            }
            Ok::<_, VectorStoreError>(())
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("no store errors");
    }
    assert_eq!(store.count(&acme).await.expect("count"), 500 + 8 * 10);
}

/// Mean recall@10 of the store's unfiltered search against brute force.
async fn recall_at_10(points: &[VectorPoint], queries: &[Vec<f32>]) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        EmbeddedVectorStore::open_with(dir.path().to_path_buf(), fast_options()).expect("open");
    let acme = space("acme");
    for batch in points.chunks(500) {
        store.upsert(&acme, batch).await.expect("upsert");
    }
    let mut found = 0;
    for query in queries {
        let hits = store
            .nearest(&acme, query, 10, &no_filter())
            .await
            .expect("search");
        assert_sorted(&hits);
        let exact = brute_force(points, query, 10, |_| true);
        found += ids(&hits).iter().filter(|m| exact.contains(m)).count();
    }
    found as f64 / (10 * queries.len()) as f64
}

/// Random unit vectors around random topic directions, with neighbours about as close
/// (cosine ≈ 0.55) as related sentences under MiniLM: structured like the embeddings the store
/// really holds, unlike uniform noise.
struct Topics(Vec<Vec<f32>>);

impl Topics {
    fn new(rng: &mut Lcg, count: usize) -> Self {
        Self((0..count).map(|_| rng.unit_vector()).collect())
    }

    /// A vector around topic `n` (modulo the topic count).
    fn around(&self, rng: &mut Lcg, n: usize) -> Vec<f32> {
        let topic = &self.0[n % self.0.len()];
        let noise = rng.unit_vector();
        normalized(topic.iter().zip(&noise).map(|(t, e)| t + e).collect())
    }

    /// Points `first..first + count`; categories and users cycle as in [`random_points`].
    fn points(&self, rng: &mut Lcg, first: u128, count: u128) -> Vec<VectorPoint> {
        (first..first + count)
            .map(|n| {
                let category = CATEGORIES[(n % 3) as usize];
                point(n, self.around(rng, n as usize * 7), category, n % 4)
            })
            .collect()
    }
}

#[tokio::test]
async fn recall_at_10_on_clustered_random_unit_vectors() {
    let mut rng = Lcg(42);
    let topics = Topics::new(&mut rng, 100);
    let points = topics.points(&mut rng, 0, 5_000);
    let queries: Vec<_> = (0..50).map(|n| topics.around(&mut rng, n * 13)).collect();

    let recall = recall_at_10(&points, &queries).await;

    println!("recall@10, 5000 clustered random unit vectors: {recall:.3}");
    assert!(recall >= 0.95, "recall@10 = {recall}");
}

/// Uniform random unit vectors in 384 dimensions are HNSW's worst case: every point is nearly
/// orthogonal to every other, so the true top 10 barely stand out. With the shared tuning
/// (M 16, ef_search 100) usearch reaches 0.73 here; ef_search 200 gives 0.89, 400 gives 0.99.
/// The bound guards against regressions, not a quality target.
#[tokio::test]
async fn recall_at_10_on_uniform_random_unit_vectors() {
    let mut rng = Lcg(42);
    let points = random_points(&mut rng, 0, 5_000);
    let queries: Vec<_> = (0..50).map(|_| rng.unit_vector()).collect();

    let recall = recall_at_10(&points, &queries).await;

    println!("recall@10, 5000 uniform random unit vectors: {recall:.3}");
    assert!(recall >= 0.65, "recall@10 = {recall}");
}

/// `cargo test -p memoryc-platform --lib latency_at_100k -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "builds a 100 000-vector index (minutes); run by hand to measure latency"]
async fn latency_at_100k() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        EmbeddedVectorStore::open_with(dir.path().to_path_buf(), fast_options()).expect("open");
    let acme = space("acme");
    let mut rng = Lcg(100);
    // A prime topic count keeps users and categories independent of topics.
    let topics = Topics::new(&mut rng, 1_009);
    let started = Instant::now();
    for first in (0..100_000u128).step_by(1_000) {
        let batch = topics.points(&mut rng, first, 1_000);
        store.upsert(&acme, &batch).await.expect("upsert");
    }
    println!("built 100k in {:?}", started.elapsed());
    store
        .upsert(&acme, &topics.points(&mut rng, 0, 1))
        .await
        .expect("dirty the tenant");
    let started = Instant::now();
    store.flush().await.expect("flush");
    println!("snapshot of 100k in {:?}", started.elapsed());

    let filters = [
        ("unfiltered", no_filter()),
        (
            "category (1/3)",
            VectorFilter {
                category: Some("WORKFLOW".into()),
                user_id: None,
            },
        ),
        (
            "user (1/4)",
            VectorFilter {
                category: None,
                user_id: Some(user(1)),
            },
        ),
        (
            "category+user (1/12)",
            VectorFilter {
                category: Some("PROJECT".into()),
                user_id: Some(user(1)),
            },
        ),
    ];
    for (name, filter) in &filters {
        let mut timings = Vec::new();
        for n in 0..300 {
            let query = topics.around(&mut rng, n * 13);
            let started = Instant::now();
            let hits = store
                .nearest(&acme, &query, 10, filter)
                .await
                .expect("search");
            timings.push(started.elapsed());
            assert_eq!(hits.len(), 10);
        }
        timings.sort();
        println!(
            "{name}: p50 {:?}, p90 {:?}, p99 {:?}",
            timings[150], timings[270], timings[297]
        );
        if filter.category.is_none() && filter.user_id.is_none() {
            assert!(
                timings[150].as_micros() < 2_000,
                "unfiltered p50 {:?}",
                timings[150]
            );
        }
    }
    drop(store);
    let started = Instant::now();
    let reopened =
        EmbeddedVectorStore::open_with(dir.path().to_path_buf(), fast_options()).expect("open");
    assert_eq!(reopened.count(&acme).await.expect("count"), 100_000);
    println!(
        "reopened (snapshot + journal replay) in {:?}",
        started.elapsed()
    );
}

/// The behaviour every vector store shares, run against the embedded index.
mod conformance_suite {
    use super::*;
    use crate::stores::vector::conformance;

    fn two_spaces() -> (VectorSpace, VectorSpace) {
        let space = |name: String| VectorSpace {
            tenant: TenantName::parse(&name).expect("valid tenant name"),
            isolation: Isolation::Shared,
        };
        let unique = || format!("t-{}", &Uuid::new_v4().simple().to_string()[..12]);
        (space(unique()), space(unique()))
    }

    macro_rules! conformance_tests {
        ($($check:ident),* $(,)?) => {
            $(
                #[tokio::test]
                async fn $check() {
                    let root = tempfile::tempdir().expect("temp dir");
                    let store =
                        EmbeddedVectorStore::open(root.path().to_path_buf()).expect("store opens");
                    let (a, b) = two_spaces();
                    conformance::$check(&store, &a, &b).await;
                }
            )*
        };
    }

    conformance_tests!(
        ensure_space_is_idempotent,
        search_returns_nearest_first,
        search_many_answers_each_query,
        upsert_replaces_existing_point,
        delete_removes_points,
        filters_by_category_and_user,
        tenants_are_isolated,
        drop_space_removes_everything,
        dimension_mismatch_is_rejected,
    );
}
