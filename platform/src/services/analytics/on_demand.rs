//! Runs asked for through the API (`POST /analytics/run`): one at a time per tenant and no
//! more often than a minimum interval, so a caller cannot keep the platform busy with them.
//!
//! The interval is a claim in the run lock (Redis across replicas, in memory otherwise) that
//! lives for the interval; a tenant's run in progress on this replica also refuses a second.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use uuid::Uuid;

use crate::services::ServiceError;
use crate::stores::StoreError;
use crate::stores::run_lock::RunLock;

pub struct OnDemandRuns {
    lock: Arc<dyn RunLock>,
    min_interval: Duration,
    running: Mutex<HashSet<Uuid>>,
}

/// A tenant's admitted run; dropping it ends the run.
pub struct Admitted<'a> {
    runs: &'a OnDemandRuns,
    tenant_id: Uuid,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.runs.running().remove(&self.tenant_id);
    }
}

impl OnDemandRuns {
    pub fn new(lock: Arc<dyn RunLock>, min_interval: Duration) -> Self {
        Self {
            lock,
            min_interval,
            running: Mutex::new(HashSet::new()),
        }
    }

    /// Admits a run of the tenant, or says why not (409).
    pub async fn admit(&self, tenant_id: Uuid) -> Result<Admitted<'_>, ServiceError> {
        if !self.running().insert(tenant_id) {
            return Err(ServiceError::Conflict(
                "an analytics run of this tenant is in progress".to_string(),
            ));
        }
        let admitted = Admitted {
            runs: self,
            tenant_id,
        };
        if self.min_interval.is_zero() {
            return Ok(admitted);
        }
        let claimed = self
            .lock
            .claim(&format!("on-demand:{tenant_id}"), self.min_interval)
            .await
            .map_err(|error| ServiceError::Store(StoreError::Unavailable(error.to_string())))?;
        if !claimed {
            return Err(ServiceError::Conflict(format!(
                "this tenant's analytics ran less than {} s ago; run again later",
                self.min_interval.as_secs()
            )));
        }
        Ok(admitted)
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
