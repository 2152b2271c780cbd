//! A circuit breaker per LLM provider (failsafe's state machine): open after `failures`
//! consecutive failures, for `open_for`; then half-open, letting one call probe the provider,
//! closed again when it answers. What state each breaker is in is kept for the metrics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use failsafe::backoff::{self, Constant};
use failsafe::failure_policy::{self, ConsecutiveFailures};
use failsafe::{Config, Instrument, StateMachine};
use uuid::Uuid;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }
}

/// Follows a breaker's transitions.
#[derive(Clone, Default)]
struct Tracker(Arc<AtomicU8>);

impl Instrument for Tracker {
    fn on_call_rejected(&self) {}
    fn on_open(&self) {
        self.0.store(1, Ordering::Relaxed);
    }
    fn on_half_open(&self) {
        self.0.store(2, Ordering::Relaxed);
    }
    fn on_closed(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

type Machine = StateMachine<ConsecutiveFailures<Constant>, Tracker>;

/// The breakers of every provider this process has called, by integration id.
pub struct Breakers {
    failures: u32,
    open_for: Duration,
    machines: Mutex<HashMap<Uuid, (Machine, Tracker)>>,
}

impl Breakers {
    pub fn new(failures: u32, open_for: Duration) -> Self {
        Self {
            failures: failures.max(1),
            open_for,
            machines: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, (Machine, Tracker)>> {
        self.machines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn machine(&self, provider: Uuid) -> Machine {
        let mut machines = self.lock();
        machines
            .entry(provider)
            .or_insert_with(|| {
                let tracker = Tracker::default();
                let policy = failure_policy::consecutive_failures(
                    self.failures,
                    backoff::constant(self.open_for),
                );
                let machine = Config::new()
                    .failure_policy(policy)
                    .instrument(tracker.clone())
                    .build();
                (machine, tracker)
            })
            .0
            .clone()
    }

    /// Whether the provider may be called now (closed, or half-open for a probe).
    pub fn permits(&self, provider: Uuid) -> bool {
        self.machine(provider).is_call_permitted()
    }

    pub fn succeeded(&self, provider: Uuid) {
        self.machine(provider).on_success();
    }

    pub fn failed(&self, provider: Uuid) {
        self.machine(provider).on_error();
    }

    pub fn state(&self, provider: Uuid) -> BreakerState {
        self.lock()
            .get(&provider)
            .map_or(BreakerState::Closed, |(_, tracker)| {
                BreakerState::from_u8(tracker.0.load(Ordering::Relaxed))
            })
    }

    /// Every known breaker's state.
    pub fn states(&self) -> Vec<(Uuid, BreakerState)> {
        self.lock()
            .iter()
            .map(|(id, (_, tracker))| {
                (
                    *id,
                    BreakerState::from_u8(tracker.0.load(Ordering::Relaxed)),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_failures_probes_when_the_time_is_up_and_closes_on_success() {
        let breakers = Breakers::new(3, Duration::from_millis(50));
        let provider = Uuid::now_v7();
        assert!(breakers.permits(provider));
        for _ in 0..2 {
            breakers.failed(provider);
        }
        assert!(breakers.permits(provider), "two failures do not open it");
        breakers.failed(provider);
        assert!(!breakers.permits(provider), "the third does");
        assert_eq!(breakers.state(provider), BreakerState::Open);
        std::thread::sleep(Duration::from_millis(80));
        assert!(breakers.permits(provider), "half-open: one probe");
        assert_eq!(breakers.state(provider), BreakerState::HalfOpen);
        breakers.succeeded(provider);
        assert_eq!(breakers.state(provider), BreakerState::Closed);
        assert!(breakers.permits(provider));
    }
}
