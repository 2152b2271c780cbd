//! A tenant's memory quota (`spec.storage.maxMemories`): the most memories it may store,
//! soft-deleted ones included until they are purged.
//!
//! Counting a tenant's rows on every add would cost a scan per write, so each tenant's count is
//! read from the database once, kept in memory with this replica's own adds, and read again
//! after `recount_after`. A tenant can overshoot by the adds in flight when its count is read
//! again, and across replicas by what the others add within `recount_after`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::ServiceError;
use crate::stores::MemoryRepository;
use memoryc_crds::layout::TenantName;

struct Counted {
    stored: u64,
    read_at: Instant,
}

pub struct MemoryQuota {
    memories: Arc<dyn MemoryRepository>,
    recount_after: Duration,
    counts: Mutex<HashMap<Uuid, Counted>>,
}

impl MemoryQuota {
    pub fn new(memories: Arc<dyn MemoryRepository>, recount_after: Duration) -> Self {
        Self {
            memories,
            recount_after,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses an add to a tenant that already stores `max` memories; otherwise counts the add
    /// at once (so concurrent adds cannot all pass), to be given back with
    /// [`MemoryQuota::released`] if it is not stored.
    pub async fn admit(
        &self,
        tenant_id: Uuid,
        tenant: &TenantName,
        max: u64,
    ) -> Result<(), ServiceError> {
        let fresh = self
            .lock()
            .get(&tenant_id)
            .is_some_and(|counted| counted.read_at.elapsed() < self.recount_after);
        if !fresh {
            let asked_at = Instant::now();
            let stored = self.memories.count_stored(tenant).await?;
            // A recount that started later, or ran alongside and finished first, already
            // holds the adds admitted since: an older count never replaces it.
            let mut counts = self.lock();
            let newer = counts
                .get(&tenant_id)
                .is_some_and(|counted| counted.read_at >= asked_at);
            if !newer {
                counts.insert(
                    tenant_id,
                    Counted {
                        stored,
                        read_at: asked_at,
                    },
                );
            }
        }
        let mut counts = self.lock();
        let counted = counts.entry(tenant_id).or_insert(Counted {
            stored: 0,
            read_at: Instant::now(),
        });
        if counted.stored >= max {
            return Err(ServiceError::QuotaExceeded {
                max,
                stored: counted.stored,
            });
        }
        counted.stored += 1;
        Ok(())
    }

    /// Gives back an admitted add that was not stored, or counts a purge (a soft-deleted
    /// memory still counts).
    pub fn released(&self, tenant_id: Uuid) {
        if let Some(counted) = self.lock().get_mut(&tenant_id) {
            counted.stored = counted.stored.saturating_sub(1);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Counted>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
