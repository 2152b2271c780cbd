//! One tenant's loaded index: the usearch HNSW graph and its catalog, and their snapshots.
//!
//! Writes change memory only: the index is a cache of its source (see `catch_up`), so what a
//! crash loses since the last snapshot is fetched again when the tenant next opens. Snapshots
//! only bound that work; they are written when [`TenantIndex::snapshot_due`] says so, on flush
//! and when the store is dropped.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use memoryc_crds::layout::{HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, VECTOR_DIMENSION};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};
use uuid::Uuid;

use super::super::{ScoredId, VectorFilter, VectorPoint, VectorStoreError};
use super::catalog::{Catalog, Selection, Subset};
use super::codec::EntryRecord;
use super::{Settings, index_error, snapshot, storage_error};

/// First reservation; later ones double, so a growing tenant reserves O(log n) times.
const MIN_CAPACITY: usize = 1024;
/// A broad filter first walks the graph unfiltered for this many times the hits it needs, scaled
/// by the filter's selectivity, and keeps the passing ones.
const OVERSAMPLING: usize = 2;

pub(super) struct TenantIndex {
    dir: PathBuf,
    settings: Settings,
    index: Index,
    catalog: Catalog,
    /// Behind a mutex so a snapshot can run under the tenant's read lock while searches continue.
    snapshots: Mutex<SnapshotState>,
}

struct SnapshotState {
    /// Generation of the last snapshot loaded or written; the next one is written as the one after.
    generation: u64,
    /// Points added, replaced or removed since that snapshot: the work a crash leaves to catch up.
    changes: usize,
}

/// Where one point of an upsert goes.
struct Placement {
    key: u64,
    /// The memory was indexed under `key` already, and its old vector has left the graph.
    replaced: bool,
}

impl TenantIndex {
    /// An index with no points, whose first snapshot is `generation + 1`. Creates nothing on disk.
    pub(super) fn empty(
        dir: &Path,
        settings: Settings,
        generation: u64,
    ) -> Result<Self, VectorStoreError> {
        Ok(Self::new(
            dir,
            settings,
            new_index(settings)?,
            Catalog::default(),
            generation,
        ))
    }

    /// The snapshot in `dir`, loaded; `None` when none was ever committed there. An error means
    /// the snapshot is there but cannot be used.
    pub(super) fn from_snapshot(
        dir: &Path,
        settings: Settings,
    ) -> Result<Option<Self>, VectorStoreError> {
        let Some(snap) = snapshot::read(dir)? else {
            return Ok(None);
        };
        let index = new_index(settings)?;
        load_index(&index, &snapshot::index_path(dir, snap.generation))?;
        check_consistent(&index, &snap.catalog)?;
        Ok(Some(Self::new(
            dir,
            settings,
            index,
            snap.catalog,
            snap.generation,
        )))
    }

    fn new(
        dir: &Path,
        settings: Settings,
        index: Index,
        catalog: Catalog,
        generation: u64,
    ) -> Self {
        Self {
            dir: dir.to_path_buf(),
            settings,
            index,
            catalog,
            snapshots: Mutex::new(SnapshotState {
                generation,
                changes: 0,
            }),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.catalog.len()
    }

    /// The version of the memory's point, if it is indexed.
    pub(super) fn version_of(&self, memory_id: &Uuid) -> Option<i64> {
        self.catalog.version_of(memory_id)
    }

    /// Every indexed memory, in no particular order.
    pub(super) fn memory_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.catalog.memory_ids()
    }

    /// Creates the tenant's directory, so the tenant shows up on disk before its first snapshot.
    pub(super) fn create_on_disk(&self) -> Result<(), VectorStoreError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(storage_error("create the tenant index directory"))
    }

    /// Inserts or replaces points by memory id. A memory named twice keeps its last point, as two
    /// upserts one after the other would leave it. Replacing a point with itself is harmless,
    /// which is what lets a write reach the index both by catching up and by its own sync.
    pub(super) fn upsert(&mut self, points: &[VectorPoint]) -> Result<(), VectorStoreError> {
        for point in points {
            check_point(point)?;
        }
        let points = last_point_per_memory(points);
        // usearch adds only into reserved slots; reserve before anything changes.
        self.reserve_for(points.len())?;
        let mut placements: Vec<Placement> = Vec::with_capacity(points.len());
        for point in &points {
            match self.place(point) {
                Ok(placement) => placements.push(placement),
                Err(error) => {
                    self.abandon(&placements);
                    return Err(error);
                }
            }
        }
        let adds: Vec<(u64, &[f32])> = placements
            .iter()
            .zip(&points)
            .map(|(placement, point)| (placement.key, point.vector.as_slice()))
            .collect();
        let outcomes = self.add_vectors(&adds);
        let mut first_error = None;
        let mut applied = 0;
        for ((placement, point), outcome) in placements.iter().zip(&points).zip(outcomes) {
            let recorded =
                outcome.and_then(|()| self.catalog.insert(&record(placement.key, point)));
            match recorded {
                Ok(()) => applied += 1,
                Err(error) => {
                    self.abandon(std::slice::from_ref(placement));
                    first_error.get_or_insert(error);
                }
            }
        }
        self.note_changes(applied);
        first_error.map_or(Ok(()), Err)
    }

    /// The key a point goes under. A replaced memory keeps its key, so only its payload and
    /// vector change; its old vector leaves the graph here.
    fn place(&mut self, point: &VectorPoint) -> Result<Placement, VectorStoreError> {
        match self.catalog.key_of(&point.memory_id) {
            Some(key) => {
                self.index
                    .remove(key)
                    .map_err(index_error("remove a replaced vector"))?;
                Ok(Placement {
                    key,
                    replaced: true,
                })
            }
            None => Ok(Placement {
                key: self.catalog.allocate_key()?,
                replaced: false,
            }),
        }
    }

    /// Undoes placements whose points did not make it: a replaced point is gone from the graph,
    /// so it leaves the catalog too; a new key goes back. The graph forgets the key in case the
    /// add got that far.
    fn abandon(&mut self, placements: &[Placement]) {
        for placement in placements {
            if let Err(error) = self.index.remove(placement.key) {
                tracing::warn!(key = placement.key, %error, "could not remove a vector after a failed write");
            }
            if placement.replaced {
                self.catalog.remove(placement.key);
                self.note_changes(1);
            } else {
                self.catalog.release(placement.key);
            }
        }
    }

    /// Adds vectors under their keys and returns each add's outcome, in order. The graph takes
    /// concurrent adds, one search context each, so a large batch (a tenant rebuilt from its
    /// source) uses every core the tenant may search with. Callers hold the tenant exclusively.
    /// Adds one after another: usearch's concurrent insertion gave graphs in which some
    /// points no longer found themselves.
    fn add_vectors(&self, adds: &[(u64, &[f32])]) -> Vec<Result<(), VectorStoreError>> {
        adds.iter()
            .map(|(key, vector)| self.add_vector(*key, vector))
            .collect()
    }

    fn add_vector(&self, key: u64, vector: &[f32]) -> Result<(), VectorStoreError> {
        self.index
            .add(key, vector)
            .map_err(index_error("add a vector"))
    }

    /// Removes points; unknown ids are ignored.
    pub(super) fn delete(&mut self, ids: &[Uuid]) -> Result<(), VectorStoreError> {
        let mut removed = 0;
        let mut result = Ok(());
        for id in ids {
            let Some(key) = self.catalog.key_of(id) else {
                continue;
            };
            // Index first: the catalog frees the key for reuse, which must not happen while
            // usearch still holds it.
            if let Err(error) = self.index.remove(key) {
                result = Err(index_error("remove a vector")(error));
                break;
            }
            self.catalog.remove(key);
            removed += 1;
        }
        self.note_changes(removed);
        result
    }

    fn note_changes(&mut self, changes: usize) {
        // A poisoned lock only means a snapshot panicked; the count is still right.
        let state = self
            .snapshots
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.changes = state.changes.saturating_add(changes);
    }

    /// usearch adds only into reserved slots. Removed slots are reused before new ones are taken,
    /// so `size() + extra` bounds the slots a batch of `extra` upserts can occupy.
    fn reserve_for(&mut self, extra: usize) -> Result<(), VectorStoreError> {
        let required = self.index.size().saturating_add(extra);
        let capacity = self.index.capacity();
        if required <= capacity {
            return Ok(());
        }
        let target = required.max(capacity.saturating_mul(2)).max(MIN_CAPACITY);
        self.index
            .reserve_capacity_and_threads(target, self.settings.search_threads)
            .map_err(index_error("reserve index capacity"))
    }

    /// The `limit` nearest points passing `filter`, closest first.
    pub(super) fn search(
        &self,
        query: &[f32],
        limit: usize,
        filter: &VectorFilter,
    ) -> Result<Vec<ScoredId>, VectorStoreError> {
        // usearch allocates result buffers of `limit`; never ask for more than exists.
        let limit = limit.min(self.catalog.len());
        if limit == 0 {
            return Ok(Vec::new());
        }
        match self.catalog.select(filter) {
            Selection::Nothing => Ok(Vec::new()),
            Selection::Everything => self.graph_search(query, limit, None),
            Selection::Subset(subset)
                if subset.candidates.len() <= self.settings.exact_scan_max =>
            {
                self.exact_search(query, limit, &subset)
            }
            Selection::Subset(subset) => match self.oversampled_search(query, limit, &subset)? {
                Some(hits) => Ok(hits),
                None => self.graph_search(query, limit, Some(&subset)),
            },
        }
    }

    /// HNSW walk. With a filter, usearch keeps walking until it holds `limit` passing points, so a
    /// filtered search still fills its limit when enough points match.
    fn graph_search(
        &self,
        query: &[f32],
        limit: usize,
        subset: Option<&Subset<'_>>,
    ) -> Result<Vec<ScoredId>, VectorStoreError> {
        let matches = match subset {
            None => self.index.search(query, limit),
            Some(subset) => self
                .index
                .filtered_search(query, limit, |key| self.catalog.accepts(key, subset)),
        }
        .map_err(index_error("search"))?;
        Ok(self
            .hits(&matches.keys, &matches.distances)
            .map(|(_, hit)| hit)
            .collect())
    }

    /// For broad filters: the passing share of an unfiltered walk sized to hold `limit` of them
    /// twice over. usearch's filtered walk skips non-matching nodes one by one and costs about
    /// 1/selectivity unfiltered walks (measured at 100k points: 3× at 1/3, 10–25× at 1/12); this
    /// costs one walk with a wider beam. `None` when the filter is too narrow for that or the walk
    /// came back short, and the filtered walk has to answer.
    fn oversampled_search(
        &self,
        query: &[f32],
        limit: usize,
        subset: &Subset<'_>,
    ) -> Result<Option<Vec<ScoredId>>, VectorStoreError> {
        let total = self.catalog.len();
        let wanted = limit.saturating_mul(OVERSAMPLING).saturating_mul(total)
            / subset.estimated_matches.max(1);
        if wanted > self.settings.max_oversampled {
            return Ok(None);
        }
        let matches = self
            .index
            .search(query, wanted.clamp(limit, total))
            .map_err(index_error("search"))?;
        let hits: Vec<_> = self
            .hits(&matches.keys, &matches.distances)
            .filter(|(key, _)| self.catalog.accepts(*key, subset))
            .map(|(_, hit)| hit)
            .take(limit)
            .collect();
        Ok((hits.len() == limit).then_some(hits))
    }

    /// usearch matches as keyed, scored memories, in usearch's (closest first) order.
    fn hits<'a>(
        &'a self,
        keys: &'a [u64],
        distances: &'a [f32],
    ) -> impl Iterator<Item = (u64, ScoredId)> + 'a {
        keys.iter().zip(distances).filter_map(|(key, distance)| {
            let memory_id = self.catalog.memory_id(*key)?;
            let score = 1.0 - distance;
            Some((*key, ScoredId { memory_id, score }))
        })
    }

    /// Brute force over a small filter's candidates: exact, and far cheaper than a graph walk that
    /// must skip past almost every node to find the few that pass.
    fn exact_search(
        &self,
        query: &[f32],
        limit: usize,
        subset: &Subset<'_>,
    ) -> Result<Vec<ScoredId>, VectorStoreError> {
        let query_norm = dot(query, query).sqrt();
        let mut vector = vec![0.0f32; VECTOR_DIMENSION];
        let mut scored = Vec::with_capacity(subset.candidates.len());
        for key in subset.candidates {
            if !self.catalog.accepts(*key, subset) {
                continue;
            }
            let Some(memory_id) = self.catalog.memory_id(*key) else {
                continue;
            };
            let found = self
                .index
                .get(*key, &mut vector)
                .map_err(index_error("read a vector"))?;
            if found == 0 {
                continue;
            }
            scored.push(ScoredId {
                memory_id,
                score: cosine(query, query_norm, &vector),
            });
        }
        scored.sort_by(|a, b| b.score.total_cmp(&a.score));
        scored.truncate(limit);
        Ok(scored)
    }

    /// Whether enough has changed since the last snapshot that a crash would leave a long catch-up.
    pub(super) fn snapshot_due(&self) -> Result<bool, VectorStoreError> {
        Ok(self.snapshot_state()?.changes >= self.settings.snapshot_after_changes)
    }

    /// Writes a snapshot if anything changed since the last one. Needs only shared access:
    /// writers are excluded by the caller's read lock, and concurrent snapshots by the mutex.
    pub(super) fn snapshot(&self) -> Result<(), VectorStoreError> {
        let mut state = self.snapshot_state()?;
        if state.changes == 0 {
            return Ok(());
        }
        let generation = state.generation + 1;
        snapshot::write(&self.dir, generation, &self.index, &self.catalog)?;
        state.generation = generation;
        state.changes = 0;
        snapshot::remove_stale(&self.dir, generation);
        Ok(())
    }

    fn snapshot_state(&self) -> Result<MutexGuard<'_, SnapshotState>, VectorStoreError> {
        self.snapshots.lock().map_err(|_| poisoned())
    }
}

/// The catalog's record of `point` under `key`.
fn record(key: u64, point: &VectorPoint) -> EntryRecord {
    EntryRecord {
        key,
        memory_id: point.memory_id,
        user_id: point.user_id,
        category: point.category.clone(),
        created_at_ms: point.created_at_ms,
        version: point.version,
    }
}

/// The last point of each memory in `points`, in the order of those last points.
fn last_point_per_memory(points: &[VectorPoint]) -> Vec<&VectorPoint> {
    let mut seen = HashSet::with_capacity(points.len());
    let mut last: Vec<&VectorPoint> = points
        .iter()
        .rev()
        .filter(|point| seen.insert(point.memory_id))
        .collect();
    last.reverse();
    last
}

fn poisoned() -> VectorStoreError {
    VectorStoreError::Storage("tenant snapshot lock poisoned by an earlier panic".to_string())
}

fn new_index(settings: Settings) -> Result<Index, VectorStoreError> {
    let options = IndexOptions {
        dimensions: VECTOR_DIMENSION,
        metric: MetricKind::Cos,
        quantization: ScalarKind::F32,
        connectivity: HNSW_M,
        expansion_add: HNSW_EF_CONSTRUCTION,
        expansion_search: HNSW_EF_SEARCH,
        multi: false,
    };
    let index = Index::new(&options).map_err(index_error("create an index"))?;
    // One search context per permit of the tenant's search semaphore; usearch fails searches
    // that find every context busy instead of waiting.
    index
        .reserve_capacity_and_threads(0, settings.search_threads)
        .map_err(index_error("reserve search contexts"))?;
    Ok(index)
}

fn load_index(index: &Index, path: &Path) -> Result<(), VectorStoreError> {
    index
        .load(snapshot::path_str(path)?)
        .map_err(index_error("load the snapshot index"))?;
    // Pin the tuning to this build's constants rather than whatever the file was written with.
    index.change_expansion_add(HNSW_EF_CONSTRUCTION);
    index.change_expansion_search(HNSW_EF_SEARCH);
    Ok(())
}

fn check_consistent(index: &Index, catalog: &Catalog) -> Result<(), VectorStoreError> {
    if index.dimensions() != VECTOR_DIMENSION {
        return Err(VectorStoreError::Storage(format!(
            "snapshot index has {} dimensions, expected {VECTOR_DIMENSION}",
            index.dimensions()
        )));
    }
    if index.size() != catalog.len() {
        return Err(VectorStoreError::Storage(format!(
            "snapshot index holds {} vectors but its sidecar lists {}",
            index.size(),
            catalog.len()
        )));
    }
    if let Some(key) = catalog.keys().find(|key| !index.contains(*key)) {
        return Err(VectorStoreError::Storage(format!(
            "snapshot sidecar lists key {key}, which its index does not hold"
        )));
    }
    Ok(())
}

/// Rejects what would corrupt the index or could not be snapshotted.
pub(super) fn check_point(point: &VectorPoint) -> Result<(), VectorStoreError> {
    check_dimension(&point.vector)?;
    if point.vector.iter().any(|value| !value.is_finite()) {
        return Err(VectorStoreError::Rejected(format!(
            "vector of memory {} contains NaN or infinite values",
            point.memory_id
        )));
    }
    if point.category.len() > usize::from(u16::MAX) {
        return Err(VectorStoreError::Rejected(format!(
            "category of memory {} is longer than {} bytes",
            point.memory_id,
            u16::MAX
        )));
    }
    Ok(())
}

pub(super) fn check_dimension(vector: &[f32]) -> Result<(), VectorStoreError> {
    if vector.len() == VECTOR_DIMENSION {
        Ok(())
    } else {
        Err(VectorStoreError::DimensionMismatch {
            expected: VECTOR_DIMENSION,
            actual: vector.len(),
        })
    }
}

/// Same definition as usearch's cosine metric (1 − distance), so both search paths score alike.
fn cosine(query: &[f32], query_norm: f32, vector: &[f32]) -> f32 {
    let denominator = query_norm * dot(vector, vector).sqrt();
    if denominator > 0.0 {
        dot(query, vector) / denominator
    } else {
        0.0
    }
}

/// Eight independent accumulators let the compiler vectorise the sum it may not reorder itself.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut lanes = [0.0f32; 8];
    for (x, y) in a_chunks.zip(b_chunks) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}
