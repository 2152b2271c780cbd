//! Keeps the vector store in step with the relational store, which is the source of truth.
//!
//! Every write enqueues an outbox entry before touching the memory row, then tries to sync at
//! once. When the vector store is down the entry stays and the worker retries it with
//! exponential backoff until it lands. A sync reads the memory's *current* row, so replaying an
//! entry twice, or after later changes, converges to the same state.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::Utc;
use memoryc_crds::layout::TenantName;
use tokio::sync::watch;
use uuid::Uuid;

use crate::stores::vector::{VectorPoint, VectorSpace, VectorStore};
use crate::stores::{MemoryRepository, OutboxRepository, TenantRegistry, VectorSource};

use super::ServiceError;
use super::cache::ReadCache;

/// Whether a memory's vector reached the vector store before the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IndexingState {
    /// Searchable now.
    Indexed,
    /// Stored; the vector is queued and will become searchable when the vector store is back.
    Pending,
}

/// How long inline syncs are skipped after one failed, so an outage does not slow every write.
const INLINE_COOL_DOWN: Duration = Duration::from_secs(5);
/// How long an intended sync is left to the request that intends it before workers take it.
const INLINE_GRACE: Duration = Duration::from_secs(30);
/// Entries handled per worker pass.
const BATCH: u64 = 256;

pub struct VectorSync {
    memories: Arc<dyn MemoryRepository>,
    vectors: Arc<dyn VectorStore>,
    outbox: Arc<dyn OutboxRepository>,
    tenants: Arc<dyn TenantRegistry>,
    backoff: ExponentialBuilder,
    inline_paused_until_ms: AtomicI64,
    cache: Option<Arc<ReadCache>>,
}

impl VectorSync {
    pub fn new(
        memories: Arc<dyn MemoryRepository>,
        vectors: Arc<dyn VectorStore>,
        outbox: Arc<dyn OutboxRepository>,
        tenants: Arc<dyn TenantRegistry>,
        min_retry_delay: Duration,
        max_retry_delay: Duration,
    ) -> Self {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(min_retry_delay)
            .with_max_delay(max_retry_delay)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Self {
            memories,
            vectors,
            outbox,
            tenants,
            backoff,
            inline_paused_until_ms: AtomicI64::new(0),
            cache: None,
        }
    }

    /// Invalidates a tenant's cached reads whenever a deferred sync lands, so a search cached
    /// while the vector was missing is not served after it arrived.
    pub fn with_cache(mut self, cache: Arc<ReadCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Records that the memory's vector must follow its row. Call before changing the row.
    pub async fn intend(&self, tenant: &TenantName, memory_id: Uuid) -> Result<(), ServiceError> {
        // Due only after a grace period: the request syncs inline right after, and a worker
        // (of any replica) picking the entry up meanwhile would sync it twice. The entry is
        // for the case where the request never gets there (a crash).
        let due = Utc::now() + chrono::Duration::from_std(INLINE_GRACE).unwrap_or_default();
        Ok(self.outbox.enqueue(tenant, memory_id, due).await?)
    }

    /// Syncs now when the vector store is reachable; otherwise leaves the entry to the worker.
    pub async fn sync_or_defer(&self, space: &VectorSpace, memory_id: Uuid) -> IndexingState {
        let now_ms = Utc::now().timestamp_millis();
        if self.inline_paused_until_ms.load(Ordering::Relaxed) > now_ms {
            // Not tried here: hand it to the worker at once.
            if let Err(error) = self
                .outbox
                .reschedule(&space.tenant, memory_id, Utc::now(), "inline sync paused")
                .await
            {
                tracing::error!(tenant = %space.tenant, %memory_id, %error, "could not hand the vector sync to the worker");
            }
            return IndexingState::Pending;
        }
        match self.sync(space, memory_id).await {
            Ok(()) => IndexingState::Indexed,
            Err(error) => {
                let until = now_ms + INLINE_COOL_DOWN.as_millis() as i64;
                self.inline_paused_until_ms.store(until, Ordering::Relaxed);
                self.defer(&space.tenant, memory_id, 0, &error).await;
                IndexingState::Pending
            }
        }
    }

    /// Makes the vector store match the memory's current row, then clears its outbox entry.
    pub async fn sync(&self, space: &VectorSpace, memory_id: Uuid) -> Result<(), ServiceError> {
        let source = self
            .memories
            .vector_source(&space.tenant, memory_id)
            .await?;
        match source {
            Some(VectorSource {
                memory,
                embedding: Some(vector),
            }) if !memory.is_deleted => {
                let point = VectorPoint {
                    memory_id,
                    vector,
                    category: memory.category.as_str().to_string(),
                    user_id: memory.user_id,
                    created_at_ms: memory.created_at.timestamp_millis(),
                };
                self.vectors.upsert(space, &[point]).await?;
            }
            // Gone, deleted, or never embedded: the vector store must not return it.
            _ => self.vectors.delete(space, &[memory_id]).await?,
        }
        self.outbox.complete(&space.tenant, memory_id).await?;
        Ok(())
    }

    /// Handles every entry that is due; returns how many landed.
    pub async fn drain_due(&self) -> Result<usize, ServiceError> {
        let entries = self.outbox.due(Utc::now(), BATCH).await?;
        let mut landed = 0;
        for entry in entries {
            let Some(tenant) = self.tenants.find_by_name(&entry.tenant).await? else {
                // The tenant is gone, and its vectors with it.
                self.outbox.complete(&entry.tenant, entry.memory_id).await?;
                continue;
            };
            let space = VectorSpace {
                tenant: tenant.name,
                isolation: tenant.isolation,
            };
            match self.sync(&space, entry.memory_id).await {
                Ok(()) => {
                    landed += 1;
                    if let Some(cache) = &self.cache {
                        cache.invalidate(tenant.tenant_id).await;
                    }
                }
                Err(error) => {
                    self.defer(&space.tenant, entry.memory_id, entry.attempts, &error)
                        .await;
                }
            }
        }
        if landed > 0 {
            self.inline_paused_until_ms.store(0, Ordering::Relaxed);
        }
        Ok(landed)
    }

    /// Entries still waiting for the vector store.
    pub async fn backlog(&self) -> Result<u64, ServiceError> {
        Ok(self.outbox.backlog().await?)
    }

    /// Runs `drain_due` every `interval` until `shutdown` turns true.
    pub fn spawn_worker(
        self: Arc<Self>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(error) = self.drain_due().await {
                    tracing::warn!(%error, "outbox pass failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.changed() => break,
                }
            }
        })
    }

    async fn defer(
        &self,
        tenant: &TenantName,
        memory_id: Uuid,
        attempts: i32,
        error: &ServiceError,
    ) {
        let attempt = usize::try_from(attempts).unwrap_or(0);
        let delay = self
            .backoff
            .build()
            .nth(attempt)
            .unwrap_or(Duration::from_secs(60));
        let next =
            Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
        tracing::warn!(%tenant, %memory_id, attempts, %error, retry_in_ms = delay.as_millis() as u64, "vector sync deferred");
        if let Err(store_error) = self
            .outbox
            .reschedule(tenant, memory_id, next, &error.to_string())
            .await
        {
            tracing::error!(%tenant, %memory_id, error = %store_error, "could not reschedule vector sync");
        }
    }
}
