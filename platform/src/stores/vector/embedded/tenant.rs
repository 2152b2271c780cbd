//! One tenant's loaded index: the usearch HNSW graph, its catalog and its journal.
//!
//! Writes go to the journal first and to memory second, so whatever a caller saw acknowledged is
//! replayed after a crash. Replaying an operation twice is harmless (upsert replaces by memory id,
//! delete ignores unknown ids), which is what lets a crash between committing a snapshot and
//! truncating the journal go unnoticed.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use memoryc_crds::layout::{HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, VECTOR_DIMENSION};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};
use uuid::Uuid;

use super::super::{ScoredId, VectorFilter, VectorPoint, VectorStoreError};
use super::catalog::{Catalog, Selection, Subset};
use super::codec::{self, EntryRecord, JournalOp};
use super::journal::Journal;
use super::{Settings, index_error, snapshot};

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
    durable: Mutex<Durable>,
}

/// The on-disk half of the tenant; only writers (exclusive) and snapshots (serialised here) touch it.
struct Durable {
    journal: Journal,
    /// Generation of the snapshot the journal extends; 0 when there is none.
    generation: u64,
}

impl TenantIndex {
    /// Loads the snapshot in `dir` if there is one and replays the journal over it. Creates nothing
    /// on disk: a tenant that is only searched leaves no trace.
    pub(super) fn open(dir: &Path, settings: Settings) -> Result<Self, VectorStoreError> {
        let index = new_index(settings)?;
        let (catalog, generation) = match snapshot::read(dir)? {
            Some(snap) => {
                load_index(&index, &snapshot::index_path(dir, snap.generation))?;
                (snap.catalog, snap.generation)
            }
            None => (Catalog::default(), 0),
        };
        check_consistent(&index, &catalog)?;
        let (journal, ops) = Journal::open(dir, settings.sync_journal)?;
        let mut tenant = Self {
            dir: dir.to_path_buf(),
            settings,
            index,
            catalog,
            durable: Mutex::new(Durable {
                journal,
                generation,
            }),
        };
        tenant.replay(ops)?;
        Ok(tenant)
    }

    fn replay(&mut self, ops: Vec<JournalOp>) -> Result<(), VectorStoreError> {
        for op in ops {
            match op {
                JournalOp::Upsert(point) => {
                    check_point(&point)?;
                    self.reserve_for(1)?;
                    self.apply_upsert(&point)?;
                }
                JournalOp::Delete(memory_id) => self.apply_delete(&memory_id)?,
            }
        }
        Ok(())
    }

    pub(super) fn len(&self) -> usize {
        self.catalog.len()
    }

    /// Creates the tenant's directory and journal so it exists on disk.
    pub(super) fn create_on_disk(&mut self) -> Result<(), VectorStoreError> {
        self.durable_mut()?.journal.create()
    }

    pub(super) fn upsert(&mut self, points: &[VectorPoint]) -> Result<(), VectorStoreError> {
        for point in points {
            check_point(point)?;
        }
        // Reserve before journalling: a failed reservation must not leave an operation behind.
        self.reserve_for(points.len())?;
        let mut frames = Vec::with_capacity(points.len() * (64 + 4 * VECTOR_DIMENSION));
        for point in points {
            codec::push_upsert(&mut frames, point);
        }
        self.durable_mut()?.journal.append(&frames, points.len())?;
        for point in points {
            self.apply_upsert(point)?;
        }
        Ok(())
    }

    pub(super) fn delete(&mut self, ids: &[Uuid]) -> Result<(), VectorStoreError> {
        let mut frames = Vec::new();
        let mut ops = 0;
        for id in ids.iter().filter(|id| self.catalog.key_of(id).is_some()) {
            codec::push_delete(&mut frames, *id);
            ops += 1;
        }
        if ops == 0 {
            return Ok(());
        }
        self.durable_mut()?.journal.append(&frames, ops)?;
        for id in ids {
            self.apply_delete(id)?;
        }
        Ok(())
    }

    /// Replaces in place: the memory keeps its usearch key, so only its payload changes.
    fn apply_upsert(&mut self, point: &VectorPoint) -> Result<(), VectorStoreError> {
        let key = match self.catalog.key_of(&point.memory_id) {
            Some(key) => {
                self.index
                    .remove(key)
                    .map_err(index_error("remove a replaced vector"))?;
                key
            }
            None => self.catalog.allocate_key()?,
        };
        if let Err(error) = self.index.add(key, &point.vector) {
            // Keep the catalog in step with the index: a replaced point is gone from both.
            self.catalog.remove(key);
            return Err(index_error("add a vector")(error));
        }
        self.catalog.insert(&EntryRecord {
            key,
            memory_id: point.memory_id,
            user_id: point.user_id,
            category: point.category.clone(),
            created_at_ms: point.created_at_ms,
        })
    }

    fn apply_delete(&mut self, memory_id: &Uuid) -> Result<(), VectorStoreError> {
        let Some(key) = self.catalog.key_of(memory_id) else {
            return Ok(());
        };
        // Index first: the catalog frees the key for reuse, which must not happen while usearch
        // still holds it.
        self.index
            .remove(key)
            .map_err(index_error("remove a vector"))?;
        self.catalog.remove(key);
        Ok(())
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

    pub(super) fn compaction_due(&self) -> Result<bool, VectorStoreError> {
        Ok(self.durable()?.journal.pending_ops() >= self.settings.compact_after_ops)
    }

    /// Writes a snapshot and empties the journal if anything was written since the last one.
    /// Needs only shared access: writers are excluded by the caller's read lock, and concurrent
    /// snapshots by the `durable` mutex.
    pub(super) fn snapshot(&self) -> Result<(), VectorStoreError> {
        let mut durable = self.durable()?;
        if durable.journal.pending_ops() == 0 {
            return Ok(());
        }
        let generation = durable.generation + 1;
        snapshot::write(&self.dir, generation, &self.index, &self.catalog)?;
        durable.generation = generation;
        durable.journal.truncate()?;
        snapshot::remove_stale(&self.dir, generation);
        Ok(())
    }

    fn durable(&self) -> Result<MutexGuard<'_, Durable>, VectorStoreError> {
        self.durable.lock().map_err(|_| poisoned())
    }

    fn durable_mut(&mut self) -> Result<&mut Durable, VectorStoreError> {
        self.durable.get_mut().map_err(|_| poisoned())
    }
}

fn poisoned() -> VectorStoreError {
    VectorStoreError::Storage("tenant journal lock poisoned by an earlier panic".to_string())
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
    Ok(())
}

/// Rejects what would corrupt the index or could not be journalled.
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
