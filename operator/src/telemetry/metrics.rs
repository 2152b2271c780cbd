//! Prometheus metrics of the operator: reconciles, failures by cause, reconcile duration per
//! kind, and tenants by phase.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::encoding::{EncodeLabelSet, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Kind label values.
pub const TENANT_KIND: &str = "MemoryTenant";
pub const BINDING_KIND: &str = "IntegrationBinding";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub kind: String,
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

type HistogramFamily = Family<KindLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 10 ms … ~40 s: provisioning a collection takes seconds, a no-op reconcile milliseconds.
    Histogram::new(exponential_buckets(0.01, 2.0, 13))
}

/// The registry and every metric in it.
pub struct Metrics {
    registry: Registry,
    runs: Family<KindLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: HistogramFamily,
    tenants: Family<PhaseLabels, Gauge>,
    /// Last phase seen per tenant, so the per-phase gauge can be recomputed on change.
    phases: Mutex<HashMap<String, String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("memoryc_operator");
        let runs = Family::<KindLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let duration: HistogramFamily = Family::new_with_constructor(duration_histogram);
        let tenants = Family::<PhaseLabels, Gauge>::default();
        registry.register("reconcile_runs", "Reconciliations started", runs.clone());
        registry.register(
            "reconcile_failures",
            "Reconciliations that failed, by cause",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long a reconciliation took",
            duration.clone(),
        );
        registry.register("tenants", "MemoryTenants by phase", tenants.clone());
        Self {
            registry,
            runs,
            failures,
            duration,
            tenants,
            phases: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    /// Counts a reconcile of `kind` and times it until the returned guard drops.
    pub fn reconcile(&self, kind: &str) -> ReconcileTimer<'_> {
        let labels = KindLabels {
            kind: kind.to_string(),
        };
        self.runs.get_or_create(&labels).inc();
        ReconcileTimer {
            metrics: self,
            labels,
            started: Instant::now(),
        }
    }

    pub fn failure(&self, kind: &str, error: &str) {
        self.failures
            .get_or_create(&FailureLabels {
                kind: kind.to_string(),
                error: error.to_string(),
            })
            .inc();
    }

    /// Records the tenant's phase (`None` once it is gone).
    pub fn tenant_phase(&self, tenant: &str, phase: Option<&str>) {
        let Ok(mut phases) = self.phases.lock() else {
            return;
        };
        match phase {
            Some(phase) => {
                phases.insert(tenant.to_string(), phase.to_string());
            }
            None => {
                phases.remove(tenant);
            }
        }
        let mut counts: HashMap<&str, i64> = HashMap::new();
        for phase in phases.values() {
            *counts.entry(phase.as_str()).or_default() += 1;
        }
        // Reset every phase ever seen, so a phase that emptied reads 0 rather than going stale.
        self.tenants.clear();
        for phase in [
            "Pending",
            "Provisioning",
            "Ready",
            "Failed",
            "Paused",
            "Deleting",
        ] {
            let value = counts.get(phase).copied().unwrap_or(0);
            self.tenants
                .get_or_create(&PhaseLabels {
                    phase: phase.to_string(),
                })
                .set(value);
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// Observes the reconcile's duration when dropped, on every return path.
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    labels: KindLabels,
    started: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .duration
            .get_or_create(&self.labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_runs_failures_durations_and_phases() {
        let metrics = Metrics::default();
        drop(metrics.reconcile(TENANT_KIND));
        drop(metrics.reconcile(TENANT_KIND));
        metrics.failure(TENANT_KIND, "database");
        metrics.tenant_phase("a", Some("Ready"));
        metrics.tenant_phase("b", Some("Ready"));
        metrics.tenant_phase("b", Some("Failed"));
        metrics.tenant_phase("c", Some("Ready"));
        metrics.tenant_phase("c", None);
        let text = metrics.render();
        assert!(
            text.contains(r#"memoryc_operator_reconcile_runs_total{kind="MemoryTenant"} 2"#),
            "{text}"
        );
        assert!(text.contains(
            r#"memoryc_operator_reconcile_failures_total{kind="MemoryTenant",error="database"} 1"#
        ));
        assert!(text.contains(
            r#"memoryc_operator_reconcile_duration_seconds_count{kind="MemoryTenant"} 2"#
        ));
        assert!(text.contains(r#"memoryc_operator_tenants{phase="Ready"} 1"#));
        assert!(text.contains(r#"memoryc_operator_tenants{phase="Failed"} 1"#));
        assert!(text.contains(r#"memoryc_operator_tenants{phase="Paused"} 0"#));
    }
}
