//! What every reconcile gets: the Kubernetes client, the event recorder, the provisioning
//! backends, the installation settings, metrics and the per-object retry backoff.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::provision::Provisioner;
use crate::settings::Settings;
use crate::telemetry::metrics::Metrics;

/// Name under which the operator reports events.
pub const REPORTER: &str = "memoryc-operator";

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub settings: Settings,
    /// Storage and registration outside Kubernetes.
    pub provisioner: Arc<dyn Provisioner>,
    pub metrics: Arc<Metrics>,
    pub backoff: RetryBackoff,
    /// Tenants (by uid) this process has swept for orphaned children.
    pub swept: SweptTenants,
}

impl Context {
    pub fn new(
        client: Client,
        settings: Settings,
        provisioner: Arc<dyn Provisioner>,
        metrics: Arc<Metrics>,
        instance: Option<String>,
    ) -> Self {
        let reporter = Reporter {
            controller: REPORTER.to_string(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            provisioner,
            metrics,
            backoff: RetryBackoff::default(),
            swept: SweptTenants::default(),
        }
    }
}

/// The tenants whose orphan sweep this process has done (see `tenant::orphans`).
#[derive(Default)]
pub struct SweptTenants {
    uids: Mutex<HashSet<String>>,
}

impl SweptTenants {
    pub fn is_due(&self, uid: &str) -> bool {
        self.uids.lock().map_or(true, |uids| !uids.contains(uid))
    }

    pub fn done(&self, uid: &str) {
        if let Ok(mut uids) = self.uids.lock() {
            uids.insert(uid.to_string());
        }
    }

    pub fn forget(&self, uid: &str) {
        if let Ok(mut uids) = self.uids.lock() {
            uids.remove(uid);
        }
    }
}

/// Exponential backoff per object: each consecutive failure of the same object waits longer
/// (with jitter), a success starts over.
pub struct RetryBackoff {
    builder: ExponentialBuilder,
    failures: Mutex<HashMap<String, usize>>,
}

impl Default for RetryBackoff {
    fn default() -> Self {
        Self::new(Duration::from_secs(2), Duration::from_secs(300))
    }
}

impl RetryBackoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            builder: ExponentialBuilder::default()
                .with_min_delay(min)
                .with_max_delay(max)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times(),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The delay before retrying `key` after one more failure.
    pub fn next_delay(&self, key: &str) -> Duration {
        let attempt = match self.failures.lock() {
            Ok(mut failures) => {
                let count = failures.entry(key.to_string()).or_default();
                *count += 1;
                *count
            }
            Err(_) => 1,
        };
        self.builder
            .build()
            .nth(attempt.saturating_sub(1))
            .unwrap_or(Duration::from_secs(300))
    }

    pub fn reset(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_per_object_and_reset_on_success() {
        let backoff = RetryBackoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let first = backoff.next_delay("a");
        let _ = backoff.next_delay("a");
        let third = backoff.next_delay("a");
        // Jitter adds up to one more delay: 1..2 s first, 4..8 s third.
        assert!(
            first >= Duration::from_secs(1) && first < Duration::from_secs(2),
            "{first:?}"
        );
        assert!(
            third >= Duration::from_secs(4) && third < Duration::from_secs(8),
            "{third:?}"
        );
        let other = backoff.next_delay("b");
        assert!(
            other < Duration::from_secs(2),
            "other objects start over: {other:?}"
        );
        backoff.reset("a");
        assert!(backoff.next_delay("a") < Duration::from_secs(2));
        for _ in 0..20 {
            assert!(backoff.next_delay("c") <= Duration::from_secs(120));
        }
    }
}
