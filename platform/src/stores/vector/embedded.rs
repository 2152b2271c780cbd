//! The embedded vector index: one HNSW index per tenant on local disk, the default when no
//! vector service is configured.
//!
//! The index is a cache. Every point it holds is also in its [`IndexSource`], the relational
//! store, which keeps each memory's embedding; nothing is written ahead of a change, and a
//! crash loses only work that opening the tenant redoes.
//!
//! This module owns everything under its root directory. Each tenant lives in `<root>/<tenant>/`
//! (whatever its isolation: on a laptop every tenant is dedicated) and holds at most its last
//! snapshot: `index-<generation>.usearch`, the usearch HNSW graph (cosine, f32), and
//! `snapshot.bin`, a sidecar with the key ↔ memory-id map, filter payloads and each point's
//! version (its memory's `updated_at`). Byte layouts are documented in `codec` and `snapshot`.
//!
//! Writes change the in-memory index only and count as changes since the snapshot. A tenant is
//! snapshotted atomically after [`EmbeddedOptions::snapshot_after_changes`] changes, on
//! [`EmbeddedVectorStore::flush`] and when the store is dropped, and only if it changed.
//!
//! A tenant opens on first use: its snapshot is loaded if there is a usable one, then the
//! source lists every point the tenant must hold with its version; points that are missing or
//! at another version are fetched and points no longer listed are removed (see `catch_up`).
//! A current snapshot thus opens without fetching a point; no snapshot, or a damaged one, means
//! fetching and inserting every point; a tenant with neither points nor snapshot stays empty and
//! creates no file. Opening runs on its own task, so a request that gives up waiting does not
//! make the next one start over. A store opened without a source only has its snapshots: what
//! was written after the last one is lost in a crash.
//!
//! Searches share a per-tenant read lock and run concurrently; writes take it exclusively. All
//! index and file work runs on tokio's blocking pool.
//!
//! One process per root: two stores over the same directory would overwrite each other's
//! snapshots.

mod catalog;
mod catch_up;
mod codec;
mod handle;
mod snapshot;
mod tenant;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt::Display;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use memoryc_crds::layout::{HNSW_EF_SEARCH, TenantName};
use uuid::Uuid;

use super::{
    IndexSource, ScoredId, VectorPoint, VectorQuery, VectorSpace, VectorStore, VectorStoreError,
};
use handle::TenantHandle;

/// Tuning of [`EmbeddedVectorStore`]; the defaults suit a laptop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// Points added, replaced or removed after which the writing call snapshots the tenant:
    /// bounds what opening it after a crash has to fetch from the source again.
    pub snapshot_after_changes: usize,
    /// Filtered searches whose smallest matching posting list (points of the user or category)
    /// has at most this many entries scan those points exactly instead of walking the graph.
    pub exact_scan_max: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            snapshot_after_changes: 10_000,
            exact_scan_max: 4_096,
        }
    }
}

/// Beyond this many candidates an unfiltered walk costs about as much as usearch's filtered one.
const MAX_OVERSAMPLED: usize = 10 * HNSW_EF_SEARCH;
/// Queries of a batched search answered per blocking task (and search context).
const SEARCH_CHUNK: usize = 32;

/// Options plus what the store derives from the machine; shared by every tenant.
#[derive(Debug, Clone, Copy)]
struct Settings {
    snapshot_after_changes: usize,
    exact_scan_max: usize,
    /// Widest unfiltered walk tried for a filtered search before usearch's filtered walk.
    max_oversampled: usize,
    /// Concurrent searches per tenant (more than the cores would only queue inside usearch).
    search_threads: usize,
}

/// Per-tenant usearch HNSW indexes under one root directory, kept as a cache of an
/// [`IndexSource`].
pub struct EmbeddedVectorStore {
    root: PathBuf,
    settings: Settings,
    source: Option<Arc<dyn IndexSource>>,
    tenants: Mutex<HashMap<TenantName, Arc<TenantHandle>>>,
}

impl EmbeddedVectorStore {
    /// Opens (creating if needed) a store rooted at `root` with default options and no source.
    pub fn open(root: PathBuf) -> Result<Self, VectorStoreError> {
        Self::open_with(root, EmbeddedOptions::default())
    }

    /// Opens (creating if needed) a store rooted at `root`, with no source until
    /// [`Self::with_source`] gives it one. Tenants are read on first use.
    pub fn open_with(root: PathBuf, options: EmbeddedOptions) -> Result<Self, VectorStoreError> {
        std::fs::create_dir_all(&root).map_err(storage_error("create the vector index root"))?;
        let search_threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Ok(Self {
            root,
            settings: Settings {
                snapshot_after_changes: options.snapshot_after_changes.max(1),
                exact_scan_max: options.exact_scan_max,
                max_oversampled: MAX_OVERSAMPLED,
                search_threads,
            },
            source: None,
            tenants: Mutex::new(HashMap::new()),
        })
    }

    /// Makes the index a cache of `source`: opening a tenant catches up with it, so writes that
    /// never reached a snapshot are recovered from it.
    #[must_use]
    pub fn with_source(mut self, source: Arc<dyn IndexSource>) -> Self {
        self.source = Some(source);
        self
    }

    /// Sends every broad filtered search down usearch's filtered walk, to test that path.
    #[cfg(test)]
    fn without_oversampling(mut self) -> Self {
        self.settings.max_oversampled = 0;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Snapshots every tenant changed since its last snapshot, so the next start opens it without
    /// fetching from the source. Call at shutdown; dropping the store does the same, blocking.
    pub async fn flush(&self) -> Result<(), VectorStoreError> {
        let handles = self.handles()?;
        blocking(move || flush_all(&handles)).await
    }

    /// The tenant's handle, its index open (and caught up with the source).
    async fn opened(&self, tenant: &TenantName) -> Result<Arc<TenantHandle>, VectorStoreError> {
        let handle = self.handle(tenant)?;
        if handle.is_open()? {
            return Ok(handle);
        }
        let opener = Arc::clone(&handle);
        let source = self.source.clone();
        // On a task of its own: a large tenant may take longer to rebuild than a request waits,
        // and the request giving up must not throw the work away.
        tokio::spawn(async move { opener.open(source).await })
            .await
            .map_err(|error| {
                VectorStoreError::Storage(format!("opening the tenant index failed: {error}"))
            })??;
        Ok(handle)
    }

    fn handle(&self, tenant: &TenantName) -> Result<Arc<TenantHandle>, VectorStoreError> {
        let mut tenants = self.tenants.lock().map_err(|_| registry_poisoned())?;
        let handle = tenants.entry(tenant.clone()).or_insert_with(|| {
            Arc::new(TenantHandle::new(
                tenant.clone(),
                self.root.join(tenant.as_str()),
                self.settings,
            ))
        });
        Ok(Arc::clone(handle))
    }

    fn handles(&self) -> Result<Vec<Arc<TenantHandle>>, VectorStoreError> {
        let tenants = self.tenants.lock().map_err(|_| registry_poisoned())?;
        Ok(tenants.values().cloned().collect())
    }
}

impl Drop for EmbeddedVectorStore {
    fn drop(&mut self) {
        let handles = match self.tenants.get_mut() {
            Ok(tenants) => tenants.values().cloned().collect::<Vec<_>>(),
            Err(_) => return,
        };
        if let Err(error) = flush_all(&handles) {
            tracing::warn!(root = %self.root.display(), %error, "could not snapshot vector indexes on drop; opening them will catch up with their source");
        }
    }
}

/// Flushes every tenant, reporting the first failure after trying them all.
fn flush_all(handles: &[Arc<TenantHandle>]) -> Result<(), VectorStoreError> {
    let mut first_error = None;
    for handle in handles {
        if let Err(error) = handle.flush() {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[async_trait]
impl VectorStore for EmbeddedVectorStore {
    fn backend_name(&self) -> &'static str {
        "embedded"
    }

    async fn ensure_space(&self, space: &VectorSpace) -> Result<(), VectorStoreError> {
        let handle = self.opened(&space.tenant).await?;
        blocking(move || handle.ensure()).await
    }

    async fn upsert(
        &self,
        space: &VectorSpace,
        points: &[VectorPoint],
    ) -> Result<(), VectorStoreError> {
        if points.is_empty() {
            return Ok(());
        }
        for point in points {
            tenant::check_point(point)?;
        }
        let handle = self.opened(&space.tenant).await?;
        let points = points.to_vec();
        blocking(move || handle.upsert(&points)).await
    }

    async fn delete(&self, space: &VectorSpace, ids: &[Uuid]) -> Result<(), VectorStoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let handle = self.opened(&space.tenant).await?;
        let ids = ids.to_vec();
        blocking(move || handle.delete(&ids)).await
    }

    async fn search(
        &self,
        space: &VectorSpace,
        query: VectorQuery<'_>,
    ) -> Result<Vec<Vec<ScoredId>>, VectorStoreError> {
        let VectorQuery {
            vectors: queries,
            limit,
            filter,
            // The tenant's index answers with the ef it was built with.
            ef: _,
        } = query;
        for query in queries {
            tenant::check_dimension(query)?;
        }
        if let Some(category) = &filter.category {
            super::validate_category(category)?;
        }
        if limit == 0 || queries.is_empty() {
            return Ok(vec![Vec::new(); queries.len()]);
        }
        let handle = self.opened(&space.tenant).await?;
        let mut results = Vec::with_capacity(queries.len());
        // One blocking task and one search context per chunk; between chunks, the permit goes
        // back so a batch never holds a search context for long.
        for chunk in queries.chunks(SEARCH_CHUNK) {
            let permit = handle.search_permit().await?;
            let handle = Arc::clone(&handle);
            let chunk: Vec<Vec<f32>> = chunk.iter().map(|query| query.to_vec()).collect();
            let filter = filter.clone();
            let answered: Vec<Vec<ScoredId>> = blocking(move || {
                let _permit = permit;
                chunk
                    .iter()
                    .map(|query| handle.search(query, limit, &filter))
                    .collect()
            })
            .await?;
            results.extend(answered);
        }
        Ok(results)
    }

    async fn count(&self, space: &VectorSpace) -> Result<u64, VectorStoreError> {
        let handle = self.opened(&space.tenant).await?;
        blocking(move || handle.count()).await
    }

    /// Needs no opening: whatever the tenant held goes, and it stays open with no points.
    async fn drop_space(&self, space: &VectorSpace) -> Result<(), VectorStoreError> {
        let handle = self.handle(&space.tenant)?;
        let _lifecycle = handle.lifecycle().await;
        let dropper = Arc::clone(&handle);
        blocking(move || dropper.drop_space()).await
    }

    async fn health(&self) -> Result<(), VectorStoreError> {
        let probe = self.root.join(format!(".health-{}", Uuid::new_v4()));
        blocking(move || {
            std::fs::write(&probe, b"ok")
                .map_err(storage_error("write to the vector index root"))?;
            std::fs::remove_file(&probe).map_err(storage_error("clean up the health probe"))
        })
        .await
    }
}

/// Runs index and file work off the async workers.
async fn blocking<R: Send + 'static>(
    op: impl FnOnce() -> Result<R, VectorStoreError> + Send + 'static,
) -> Result<R, VectorStoreError> {
    tokio::task::spawn_blocking(op).await.map_err(|error| {
        VectorStoreError::Storage(format!("embedded vector task failed: {error}"))
    })?
}

fn registry_poisoned() -> VectorStoreError {
    VectorStoreError::Storage("tenant registry lock poisoned by an earlier panic".to_string())
}

/// Maps an IO failure to [`VectorStoreError::Storage`], saying what was being attempted.
fn storage_error(action: &'static str) -> impl FnOnce(std::io::Error) -> VectorStoreError {
    move |error| VectorStoreError::Storage(format!("could not {action}: {error}"))
}

/// Maps a usearch failure to [`VectorStoreError::Storage`].
fn index_error<E: Display>(action: &'static str) -> impl FnOnce(E) -> VectorStoreError {
    move |error| VectorStoreError::Storage(format!("usearch could not {action}: {error}"))
}
