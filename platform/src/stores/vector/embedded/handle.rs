//! A tenant's slot in the store: loads the tenant on first use and hands out shared access to
//! searches and exclusive access to writes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockWriteGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::super::{ScoredId, VectorFilter, VectorPoint, VectorStoreError};
use super::Settings;
use super::tenant::TenantIndex;

pub(super) struct TenantHandle {
    dir: PathBuf,
    settings: Settings,
    /// `None` until first use, and again after the space is dropped.
    state: RwLock<Option<TenantIndex>>,
    /// Bounds concurrent searches by the search contexts reserved in the index.
    search_permits: Arc<Semaphore>,
}

impl TenantHandle {
    pub(super) fn new(dir: PathBuf, settings: Settings) -> Self {
        Self {
            dir,
            settings,
            state: RwLock::new(None),
            search_permits: Arc::new(Semaphore::new(settings.search_threads)),
        }
    }

    pub(super) async fn search_permit(&self) -> Result<OwnedSemaphorePermit, VectorStoreError> {
        Arc::clone(&self.search_permits)
            .acquire_owned()
            .await
            .map_err(|_| VectorStoreError::Unavailable("vector store is shutting down".to_string()))
    }

    pub(super) fn ensure(&self) -> Result<(), VectorStoreError> {
        self.write(TenantIndex::create_on_disk)
    }

    pub(super) fn upsert(&self, points: &[VectorPoint]) -> Result<(), VectorStoreError> {
        self.write(|tenant| tenant.upsert(points))?;
        self.compact_if_due();
        Ok(())
    }

    pub(super) fn delete(&self, ids: &[Uuid]) -> Result<(), VectorStoreError> {
        self.write(|tenant| tenant.delete(ids))?;
        self.compact_if_due();
        Ok(())
    }

    pub(super) fn search(
        &self,
        query: &[f32],
        limit: usize,
        filter: &VectorFilter,
    ) -> Result<Vec<ScoredId>, VectorStoreError> {
        self.read(|tenant| tenant.search(query, limit, filter))
    }

    pub(super) fn count(&self) -> Result<u64, VectorStoreError> {
        self.read(|tenant| Ok(tenant.len() as u64))
    }

    /// Unloads the tenant and deletes its directory. The handle stays registered, so a later use
    /// starts from an empty index rather than racing a second handle over the same directory.
    pub(super) fn drop_space(&self) -> Result<(), VectorStoreError> {
        let mut state = self.state.write().map_err(poisoned)?;
        *state = None;
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(super::storage_error("remove the tenant index directory")(
                error,
            )),
        }
    }

    /// Snapshots the tenant if it is loaded and has journalled writes since its last snapshot.
    pub(super) fn flush(&self) -> Result<(), VectorStoreError> {
        let state = self.state.read().map_err(poisoned)?;
        match state.as_ref() {
            Some(tenant) => tenant.snapshot(),
            None => Ok(()),
        }
    }

    /// The write that crossed the threshold is already durable in the journal, so a failed
    /// compaction is only logged; the next write retries it.
    fn compact_if_due(&self) {
        let result = self
            .state
            .read()
            .map_err(poisoned)
            .and_then(|state| match state.as_ref() {
                Some(tenant) if tenant.compaction_due()? => tenant.snapshot(),
                _ => Ok(()),
            });
        if let Err(error) = result {
            tracing::warn!(dir = %self.dir.display(), %error, "vector index compaction failed");
        }
    }

    fn read<R>(
        &self,
        op: impl FnOnce(&TenantIndex) -> Result<R, VectorStoreError>,
    ) -> Result<R, VectorStoreError> {
        {
            let state = self.state.read().map_err(poisoned)?;
            if let Some(tenant) = state.as_ref() {
                return op(tenant);
            }
        }
        // First use: load under the write lock so only one caller reads the files.
        let mut state = self.loaded()?;
        op(load(&mut state, &self.dir, self.settings)?)
    }

    fn write<R>(
        &self,
        op: impl FnOnce(&mut TenantIndex) -> Result<R, VectorStoreError>,
    ) -> Result<R, VectorStoreError> {
        let mut state = self.loaded()?;
        op(load(&mut state, &self.dir, self.settings)?)
    }

    fn loaded(&self) -> Result<RwLockWriteGuard<'_, Option<TenantIndex>>, VectorStoreError> {
        self.state.write().map_err(poisoned)
    }
}

fn load<'a>(
    state: &'a mut Option<TenantIndex>,
    dir: &Path,
    settings: Settings,
) -> Result<&'a mut TenantIndex, VectorStoreError> {
    if state.is_none() {
        *state = Some(TenantIndex::open(dir, settings)?);
    }
    state
        .as_mut()
        .ok_or_else(|| VectorStoreError::Storage("tenant index failed to load".to_string()))
}

fn poisoned<T>(_: PoisonError<T>) -> VectorStoreError {
    VectorStoreError::Storage("tenant index lock poisoned by an earlier panic".to_string())
}
