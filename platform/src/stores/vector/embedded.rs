//! The embedded vector index: one HNSW index per tenant on local disk, the default when no
//! vector service is configured.
//!
//! This module owns everything under its root directory. Each tenant lives in `<root>/<tenant>/`
//! (whatever its isolation: on a laptop every tenant is dedicated) and holds
//!
//! * `index-<generation>.usearch` and `snapshot.bin`: the last snapshot, i.e. the usearch HNSW
//!   graph (cosine, f32) and a sidecar with the key ↔ memory-id map and filter payloads;
//! * `journal.bin`: every write acknowledged since that snapshot.
//!
//! A write is appended to the journal (and synced, unless [`EmbeddedOptions::sync_journal`] is
//! off) before it touches memory or returns, so acknowledged writes survive a crash: opening a
//! tenant loads the snapshot and replays the journal, ignoring a torn last record. After
//! [`EmbeddedOptions::compact_after_ops`] journalled operations, on [`EmbeddedVectorStore::flush`]
//! and when the store is dropped, dirty tenants are snapshotted atomically and their journals
//! emptied. Byte layouts are documented in `codec`, `journal` and `snapshot`.
//!
//! Tenants load lazily on first use. Searches share a per-tenant read lock and run concurrently;
//! writes take it exclusively. All index and file work runs on tokio's blocking pool.
//!
//! One process per root: two stores over the same directory would interleave their journals.

mod catalog;
mod codec;
mod handle;
mod journal;
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

use super::{ScoredId, VectorPoint, VectorQuery, VectorSpace, VectorStore, VectorStoreError};
use handle::TenantHandle;

/// Tuning of [`EmbeddedVectorStore`]; the defaults suit a laptop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// Sync the journal to disk before a write returns. On, acknowledged writes survive power loss;
    /// off, they survive process crashes only (the bytes are with the OS), and writes are faster.
    pub sync_journal: bool,
    /// Journalled operations after which the writing call snapshots the tenant and empties its
    /// journal; bounds replay time at startup.
    pub compact_after_ops: usize,
    /// Filtered searches whose smallest matching posting list (points of the user or category)
    /// has at most this many entries scan those points exactly instead of walking the graph.
    pub exact_scan_max: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            sync_journal: true,
            compact_after_ops: 10_000,
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
    sync_journal: bool,
    compact_after_ops: usize,
    exact_scan_max: usize,
    /// Widest unfiltered walk tried for a filtered search before usearch's filtered walk.
    max_oversampled: usize,
    /// Concurrent searches per tenant: more than the cores would only queue inside usearch.
    search_threads: usize,
}

/// Per-tenant usearch HNSW indexes under one root directory, with a write-ahead journal.
pub struct EmbeddedVectorStore {
    root: PathBuf,
    settings: Settings,
    tenants: Mutex<HashMap<TenantName, Arc<TenantHandle>>>,
}

impl EmbeddedVectorStore {
    /// Opens (creating if needed) a store rooted at `root` with default options.
    pub fn open(root: PathBuf) -> Result<Self, VectorStoreError> {
        Self::open_with(root, EmbeddedOptions::default())
    }

    /// Opens (creating if needed) a store rooted at `root`. Tenants are read on first use.
    pub fn open_with(root: PathBuf, options: EmbeddedOptions) -> Result<Self, VectorStoreError> {
        std::fs::create_dir_all(&root).map_err(storage_error("create the vector index root"))?;
        let search_threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Ok(Self {
            root,
            settings: Settings {
                sync_journal: options.sync_journal,
                compact_after_ops: options.compact_after_ops.max(1),
                exact_scan_max: options.exact_scan_max,
                max_oversampled: MAX_OVERSAMPLED,
                search_threads,
            },
            tenants: Mutex::new(HashMap::new()),
        })
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

    /// Snapshots every tenant written since its last snapshot and empties its journal, so the next
    /// start loads without replay. Call at shutdown; dropping the store does the same, blocking.
    pub async fn flush(&self) -> Result<(), VectorStoreError> {
        let handles = self.handles()?;
        blocking(move || flush_all(&handles)).await
    }

    fn handle(&self, tenant: &TenantName) -> Result<Arc<TenantHandle>, VectorStoreError> {
        let mut tenants = self.tenants.lock().map_err(|_| registry_poisoned())?;
        let handle = tenants.entry(tenant.clone()).or_insert_with(|| {
            Arc::new(TenantHandle::new(
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
            tracing::warn!(root = %self.root.display(), %error, "could not snapshot vector indexes on drop; the journal still holds every write");
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
        let handle = self.handle(&space.tenant)?;
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
        let handle = self.handle(&space.tenant)?;
        let points = points.to_vec();
        blocking(move || handle.upsert(&points)).await
    }

    async fn delete(&self, space: &VectorSpace, ids: &[Uuid]) -> Result<(), VectorStoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let handle = self.handle(&space.tenant)?;
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
        let handle = self.handle(&space.tenant)?;
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
        let handle = self.handle(&space.tenant)?;
        blocking(move || handle.count()).await
    }

    async fn drop_space(&self, space: &VectorSpace) -> Result<(), VectorStoreError> {
        let handle = self.handle(&space.tenant)?;
        blocking(move || handle.drop_space()).await
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
