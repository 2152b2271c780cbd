//! A tenant's slot in the store: opens the tenant once, then hands out shared access to searches
//! and exclusive access to writes.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use memoryc_crds::layout::TenantName;
use tokio::sync::{Mutex, MutexGuard, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::super::{IndexSource, ScoredId, VectorFilter, VectorPoint, VectorStoreError};
use super::tenant::TenantIndex;
use super::{Settings, catch_up, storage_error};

pub(super) struct TenantHandle {
    tenant: TenantName,
    dir: PathBuf,
    settings: Settings,
    /// `None` until the tenant is opened; from then on always a loaded index.
    state: RwLock<Option<TenantIndex>>,
    /// Held while the tenant is opened or dropped: it is opened once, and a drop never races
    /// an opening that would bring the old points back.
    lifecycle: Mutex<()>,
    /// Bounds concurrent searches by the search contexts reserved in the index.
    search_permits: Arc<Semaphore>,
}

impl TenantHandle {
    pub(super) fn new(tenant: TenantName, dir: PathBuf, settings: Settings) -> Self {
        Self {
            tenant,
            dir,
            settings,
            state: RwLock::new(None),
            lifecycle: Mutex::new(()),
            search_permits: Arc::new(Semaphore::new(settings.search_threads)),
        }
    }

    pub(super) fn is_open(&self) -> Result<bool, VectorStoreError> {
        Ok(self.state.read().map_err(poisoned)?.is_some())
    }

    /// Opens the tenant unless it is open: loads its snapshot and catches up with `source`
    /// (see `catch_up`). Callers wait for one opening rather than each starting their own.
    pub(super) async fn open(
        &self,
        source: Option<Arc<dyn IndexSource>>,
    ) -> Result<(), VectorStoreError> {
        if self.is_open()? {
            return Ok(());
        }
        let _lifecycle = self.lifecycle.lock().await;
        if self.is_open()? {
            return Ok(());
        }
        let index = catch_up::open(
            self.dir.clone(),
            self.settings,
            &self.tenant,
            source.as_deref(),
        )
        .await?;
        *self.state.write().map_err(poisoned)? = Some(index);
        Ok(())
    }

    /// Waits until no opening or drop of the tenant is under way and holds further ones back.
    pub(super) async fn lifecycle(&self) -> MutexGuard<'_, ()> {
        self.lifecycle.lock().await
    }

    pub(super) async fn search_permit(&self) -> Result<OwnedSemaphorePermit, VectorStoreError> {
        Arc::clone(&self.search_permits)
            .acquire_owned()
            .await
            .map_err(|_| VectorStoreError::Unavailable("vector store is shutting down".to_string()))
    }

    pub(super) fn ensure(&self) -> Result<(), VectorStoreError> {
        self.read(TenantIndex::create_on_disk)
    }

    pub(super) fn upsert(&self, points: &[VectorPoint]) -> Result<(), VectorStoreError> {
        self.write(|tenant| tenant.upsert(points))?;
        self.snapshot_if_due();
        Ok(())
    }

    pub(super) fn delete(&self, ids: &[Uuid]) -> Result<(), VectorStoreError> {
        self.write(|tenant| tenant.delete(ids))?;
        self.snapshot_if_due();
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

    /// Deletes the tenant's directory and leaves it open with no points. The handle stays
    /// registered, so a later use goes on from the empty index rather than racing a second handle
    /// over the same directory, or catching up with rows that are about to be erased too.
    /// Call while holding [`Self::lifecycle`].
    pub(super) fn drop_space(&self) -> Result<(), VectorStoreError> {
        let empty = TenantIndex::empty(&self.dir, self.settings, 0)?;
        // Under the write lock: no snapshot may write into the directory while it goes.
        let mut state = self.state.write().map_err(poisoned)?;
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(storage_error("remove the tenant index directory")(error)),
        }
        *state = Some(empty);
        Ok(())
    }

    /// Snapshots the tenant if it is open and has changed since its last snapshot.
    pub(super) fn flush(&self) -> Result<(), VectorStoreError> {
        let state = self.state.read().map_err(poisoned)?;
        match state.as_ref() {
            Some(tenant) => tenant.snapshot(),
            None => Ok(()),
        }
    }

    /// The write that crossed the threshold is in the index and in the source, so a failed
    /// snapshot is only logged; the next write retries it.
    fn snapshot_if_due(&self) {
        let result = self
            .state
            .read()
            .map_err(poisoned)
            .and_then(|state| match state.as_ref() {
                Some(tenant) if tenant.snapshot_due()? => tenant.snapshot(),
                _ => Ok(()),
            });
        if let Err(error) = result {
            tracing::warn!(dir = %self.dir.display(), %error, "vector index snapshot failed");
        }
    }

    fn read<R>(
        &self,
        op: impl FnOnce(&TenantIndex) -> Result<R, VectorStoreError>,
    ) -> Result<R, VectorStoreError> {
        let state = self.state.read().map_err(poisoned)?;
        op(state.as_ref().ok_or_else(not_open)?)
    }

    fn write<R>(
        &self,
        op: impl FnOnce(&mut TenantIndex) -> Result<R, VectorStoreError>,
    ) -> Result<R, VectorStoreError> {
        let mut state = self.state.write().map_err(poisoned)?;
        op(state.as_mut().ok_or_else(not_open)?)
    }
}

/// The store opens a tenant before using it, and nothing closes one; this would be a bug.
fn not_open() -> VectorStoreError {
    VectorStoreError::Storage("tenant index used before it was opened".to_string())
}

fn poisoned<T>(_: PoisonError<T>) -> VectorStoreError {
    VectorStoreError::Storage("tenant index lock poisoned by an earlier panic".to_string())
}
