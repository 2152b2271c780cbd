//! Search results count as accesses of the memories they return. Writing each search's counts
//! at once would put one write transaction per search on the database, competing with the next
//! search for the same CPU. Counts gather in memory instead and are written per tenant, one
//! transaction each, every interval and once more at shutdown. Counts that could not be written
//! stay for the next flush.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use memoryc_crds::layout::TenantName;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::stores::{MemoryRepository, StoreError};

/// Accesses counted and not yet written, per tenant and memory.
type Pending = HashMap<TenantName, HashMap<Uuid, u32>>;

pub struct AccessCounts {
    memories: Arc<dyn MemoryRepository>,
    pending: Mutex<Pending>,
}

/// What one flush did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Memories whose counts were written.
    pub written: usize,
    /// Memories whose counts are kept for the next flush (the write failed).
    pub kept: usize,
}

impl AccessCounts {
    pub fn new(memories: Arc<dyn MemoryRepository>) -> Self {
        Self {
            memories,
            pending: Mutex::new(Pending::new()),
        }
    }

    /// Counts one access of each of `ids`; written by the next flush.
    pub fn add(&self, tenant: &TenantName, ids: impl IntoIterator<Item = Uuid>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let counts = pending.entry(tenant.clone()).or_default();
        for id in ids {
            *counts.entry(id).or_default() += 1;
        }
    }

    /// Writes every tenant's pending counts, one transaction per tenant. Counts of a tenant that
    /// no longer exists are dropped; other failures keep the counts for the next flush.
    pub async fn flush(&self) -> Flushed {
        let taken =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let mut flushed = Flushed::default();
        for (tenant, counts) in taken {
            let counts: Vec<(Uuid, u32)> = counts.into_iter().collect();
            match self.memories.record_accesses(&tenant, &counts).await {
                Ok(()) => flushed.written += counts.len(),
                Err(StoreError::UnknownTenant(_)) => {
                    tracing::debug!(%tenant, "dropping access counts of a tenant that no longer exists");
                }
                Err(error) => {
                    tracing::warn!(%tenant, %error, memories = counts.len(), "could not write access counts; keeping them for the next flush");
                    flushed.kept += counts.len();
                    self.restore(tenant, counts);
                }
            }
        }
        flushed
    }

    /// Puts counts that could not be written back, adding to any counted since.
    fn restore(&self, tenant: TenantName, counts: Vec<(Uuid, u32)>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let kept = pending.entry(tenant).or_default();
        for (id, count) in counts {
            *kept.entry(id).or_default() += count;
        }
    }

    /// Flushes every `every` until `stop` turns true, then once more.
    pub fn spawn(
        self: Arc<Self>,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {
                        self.flush().await;
                    }
                    changed = stop.changed() => {
                        if changed.is_err() || *stop.borrow() {
                            break;
                        }
                    }
                }
            }
            let flushed = self.flush().await;
            if flushed.kept > 0 {
                tracing::warn!(
                    memories = flushed.kept,
                    "access counts not written at shutdown"
                );
            }
        })
    }
}
