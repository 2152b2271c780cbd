//! What the platform holds, as gauges: live memories per tenant and vector syncs waiting in the
//! outbox. Counting is a query per tenant, so it runs on an interval in the background rather
//! than on every scrape.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use super::labels::TenantLabels;
use super::{MetricsError, PlatformMetrics, gauge_value};
use crate::services::vector_sync::VectorSync;
use crate::stores::{MemoryRepository, TenantRegistry};

/// Shortest refresh interval accepted; counting every tenant more often would load the database.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

impl PlatformMetrics {
    /// Sets the number of vector syncs waiting in the outbox.
    pub fn set_outbox_pending(&self, pending: u64) {
        self.families.outbox_pending.set(gauge_value(pending));
    }

    /// Sets the number of live memories of `tenant`.
    pub fn set_tenant_memories(&self, tenant: &str, live: u64) {
        self.families
            .memories
            .get_or_create(&tenant_labels(tenant))
            .set(gauge_value(live));
    }

    /// Drops the series of a tenant that no longer exists, so it disappears instead of going
    /// stale.
    pub fn forget_tenant(&self, tenant: &str) {
        self.families.memories.remove(&tenant_labels(tenant));
    }
}

fn tenant_labels(tenant: &str) -> TenantLabels {
    TenantLabels {
        tenant: tenant.to_string(),
    }
}

/// Reads the counts from the stores and writes them into the gauges.
pub struct InventoryRefresher {
    metrics: PlatformMetrics,
    tenants: Arc<dyn TenantRegistry>,
    memories: Arc<dyn MemoryRepository>,
    vector_sync: Arc<VectorSync>,
    /// Tenants with a series, so those removed since the last refresh can be dropped.
    known: Mutex<HashSet<String>>,
    /// Whether series labelled with a tenant are kept at all.
    tenant_series: bool,
}

impl InventoryRefresher {
    pub fn new(
        metrics: PlatformMetrics,
        tenants: Arc<dyn TenantRegistry>,
        memories: Arc<dyn MemoryRepository>,
        vector_sync: Arc<VectorSync>,
    ) -> Self {
        Self {
            metrics,
            tenants,
            memories,
            vector_sync,
            known: Mutex::new(HashSet::new()),
            tenant_series: true,
        }
    }

    /// Keeps no series labelled with a tenant (and counts no tenant's memories): for metrics
    /// anyone may scrape.
    pub fn without_tenant_series(mut self) -> Self {
        self.tenant_series = false;
        self
    }

    /// Refreshes every gauge once. A tenant whose count fails keeps its last value; the error
    /// is logged and the others are still refreshed.
    pub async fn refresh(&self) -> Result<(), MetricsError> {
        let backlog = self.vector_sync.backlog().await;
        if !self.tenant_series {
            self.metrics.set_outbox_pending(backlog?);
            return Ok(());
        }
        let tenants = self.tenants.list().await?;
        let mut present = HashSet::with_capacity(tenants.len());
        for tenant in tenants {
            let name = tenant.name.as_str().to_string();
            match self.memories.count_live(&tenant.name).await {
                Ok(live) => self.metrics.set_tenant_memories(&name, live),
                Err(error) => {
                    tracing::warn!(tenant = %name, %error, "could not count the tenant's memories");
                }
            }
            present.insert(name);
        }
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        for gone in known.difference(&present) {
            self.metrics.forget_tenant(gone);
        }
        *known = present;
        drop(known);
        self.metrics.set_outbox_pending(backlog?);
        Ok(())
    }

    /// Refreshes every `every` (at least one second) until `stop` turns true.
    pub fn spawn(
        self: Arc<Self>,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every.max(MIN_INTERVAL));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate; start-up already refreshed once.
            ticks.tick().await;
            loop {
                tokio::select! {
                    _ = ticks.tick() => self.refresh_logged().await,
                    _ = stop.changed() => break,
                }
            }
        })
    }

    /// Refreshes once, logging a failure instead of returning it: stale gauges are better than
    /// none, and the next tick tries again.
    pub async fn refresh_logged(&self) {
        if let Err(error) = self.refresh().await {
            tracing::warn!(%error, "could not refresh the inventory metrics; keeping the last values");
        }
    }
}

#[cfg(test)]
mod tests {
    use memoryc_crds::contract::platform_metrics::{MEMORIES, OUTBOX_PENDING};

    use super::super::test_support::sample;
    use super::*;

    #[test]
    fn gauges_follow_the_latest_counts_and_forgotten_tenants_disappear() {
        let metrics = PlatformMetrics::new();
        metrics.set_tenant_memories("acme", 3);
        metrics.set_tenant_memories("acme", 5);
        metrics.set_tenant_memories("globex", 1);
        metrics.set_outbox_pending(12);
        metrics.forget_tenant("globex");
        let text = metrics.render().expect("renders");
        assert_eq!(
            sample(&text, MEMORIES, &[("tenant", "acme")]),
            Some(5.0),
            "{text}"
        );
        assert_eq!(sample(&text, MEMORIES, &[("tenant", "globex")]), None);
        assert_eq!(sample(&text, OUTBOX_PENDING, &[]), Some(12.0));
    }
}
