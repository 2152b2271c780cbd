//! Runs every tenant's analytics on its schedule. A tokio-cron-scheduler job ticks every few
//! seconds; each tick reads the clock, finds the tenants with a schedule slot since the last
//! tick, and runs each slot once across all replicas (a run lock keyed by tenant and slot).
//! Failed runs are retried with backoff and reported.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use memoryc_crds::layout::TenantName;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use super::RunReport;
use super::clock::Clock;
use super::schedule::Schedule;
use crate::services::ServiceError;
use crate::services::tenant_service::TenantService;
use crate::services::tenant_settings::TenantSettingsService;
use crate::stores::Tenant;
use crate::stores::run_lock::RunLock;

/// What runs for one tenant at one slot.
#[async_trait]
pub trait AnalyticsRunner: Send + Sync + 'static {
    async fn run(&self, tenant: &Tenant, now: DateTime<Utc>) -> Result<RunReport, ServiceError>;
}

/// Sees every run (metrics); the default does nothing.
pub trait RunObserver: Send + Sync + 'static {
    fn finished(&self, _outcome: &str, _seconds: f64) {}
}

struct NoObserver;
impl RunObserver for NoObserver {}

/// What one tick did.
#[derive(Debug, Default)]
pub struct TickReport {
    pub ran: Vec<(TenantName, RunReport)>,
    /// Due, but another replica had claimed the slot.
    pub claimed_elsewhere: Vec<TenantName>,
    pub failed: Vec<(TenantName, String)>,
}

/// How long a claimed slot stays claimed: longer than any run, shorter than any sane schedule.
const SLOT_CLAIM: Duration = Duration::from_secs(6 * 3600);

pub struct AnalyticsScheduler {
    clock: Arc<dyn Clock>,
    lock: Arc<dyn RunLock>,
    tenants: Arc<TenantService>,
    runner: Arc<dyn AnalyticsRunner>,
    settings: Arc<TenantSettingsService>,
    /// Schedule of tenants that set none.
    schedule: Schedule,
    last_tick: Mutex<DateTime<Utc>>,
    retry: ExponentialBuilder,
    observer: Arc<dyn RunObserver>,
}

impl AnalyticsScheduler {
    /// Slots before the clock's current time are not run: a replica that starts does not
    /// replay the past.
    pub fn new(
        clock: Arc<dyn Clock>,
        lock: Arc<dyn RunLock>,
        tenants: Arc<TenantService>,
        runner: Arc<dyn AnalyticsRunner>,
        settings: Arc<TenantSettingsService>,
        schedule: Schedule,
    ) -> Self {
        let started = clock.now();
        Self {
            clock,
            lock,
            tenants,
            runner,
            settings,
            schedule,
            last_tick: Mutex::new(started),
            retry: ExponentialBuilder::default()
                .with_min_delay(Duration::from_secs(1))
                .with_max_delay(Duration::from_secs(30))
                .with_max_times(3),
            observer: Arc::new(NoObserver),
        }
    }

    pub fn with_observer(mut self, observer: Arc<dyn RunObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Runs what became due since the previous tick.
    pub async fn tick(&self) -> TickReport {
        let now = self.clock.now();
        let previous = {
            let mut last = self
                .last_tick
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            std::mem::replace(&mut *last, now)
        };
        let mut report = TickReport::default();
        let tenants = match self.tenants.list().await {
            Ok(tenants) => tenants,
            Err(error) => {
                tracing::warn!(%error, "cannot list tenants for scheduled analytics");
                return report;
            }
        };
        for tenant in tenants {
            let Some(slot) = self.schedule_of(&tenant).await.latest_slot(previous, now) else {
                continue;
            };
            let key = format!("analytics:{}:{}", tenant.name, slot.timestamp());
            match self.lock.claim(&key, SLOT_CLAIM).await {
                Ok(true) => {}
                Ok(false) => {
                    report.claimed_elsewhere.push(tenant.name.clone());
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, tenant = %tenant.name, "cannot claim the analytics slot; skipping it");
                    report.failed.push((tenant.name.clone(), error.to_string()));
                    continue;
                }
            }
            match self.run_with_retries(&tenant, now).await {
                Ok(run) => report.ran.push((tenant.name.clone(), run)),
                Err(error) => report.failed.push((tenant.name.clone(), error.to_string())),
            }
        }
        report
    }

    /// The tenant's own schedule, or the default when it set none (or one that no longer
    /// parses).
    async fn schedule_of(&self, tenant: &Tenant) -> Schedule {
        match self.settings.analytics_schedule(tenant.tenant_id).await {
            Ok(Some(expression)) => Schedule::parse(&expression).unwrap_or_else(|error| {
                tracing::warn!(%error, tenant = %tenant.name, "using the default analytics schedule");
                self.schedule.clone()
            }),
            Ok(None) => self.schedule.clone(),
            Err(error) => {
                tracing::warn!(%error, tenant = %tenant.name, "cannot read the analytics schedule; using the default");
                self.schedule.clone()
            }
        }
    }

    /// Runs one tenant now, retrying failures.
    pub async fn run_with_retries(
        &self,
        tenant: &Tenant,
        now: DateTime<Utc>,
    ) -> Result<RunReport, ServiceError> {
        run_retrying(
            self.runner.as_ref(),
            self.retry,
            self.observer.as_ref(),
            tenant,
            now,
        )
        .await
    }

    /// Ticks every `every` on a tokio-cron-scheduler job until the returned scheduler is shut
    /// down.
    pub async fn start(
        self: Arc<Self>,
        every: Duration,
    ) -> Result<JobScheduler, JobSchedulerError> {
        let scheduler = JobScheduler::new().await?;
        let this = self.clone();
        let job = Job::new_repeated_async(every.max(Duration::from_secs(1)), move |_id, _jobs| {
            let this = this.clone();
            Box::pin(async move {
                let report = this.tick().await;
                if !report.ran.is_empty() || !report.failed.is_empty() {
                    tracing::info!(
                        ran = report.ran.len(),
                        failed = report.failed.len(),
                        elsewhere = report.claimed_elsewhere.len(),
                        "scheduled analytics"
                    );
                }
            })
        })?;
        scheduler.add(job).await?;
        scheduler.start().await?;
        Ok(scheduler)
    }
}

/// Runs `runner` for `tenant`, retrying failures with `retry`; reports the outcome (after
/// retries) and its duration to `observer`.
pub async fn run_retrying(
    runner: &dyn AnalyticsRunner,
    retry: ExponentialBuilder,
    observer: &dyn RunObserver,
    tenant: &Tenant,
    now: DateTime<Utc>,
) -> Result<RunReport, ServiceError> {
    let started = Instant::now();
    let attempt = || runner.run(tenant, now);
    let outcome = attempt
        .retry(retry)
        .notify(|error, delay| {
            tracing::warn!(%error, tenant = %tenant.name, ?delay, "analytics run failed; retrying");
        })
        .await;
    let label = if outcome.is_ok() {
        "succeeded"
    } else {
        "failed"
    };
    observer.finished(label, started.elapsed().as_secs_f64());
    if let Err(error) = &outcome {
        tracing::error!(%error, tenant = %tenant.name, "analytics run failed");
    }
    outcome
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use memoryc_crds::layout::Isolation;

    use super::*;
    use crate::stores::StoreError;

    /// Fails its first `failures` runs, then succeeds.
    struct Flaky {
        failures: usize,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl AnalyticsRunner for Flaky {
        async fn run(&self, _: &Tenant, _: DateTime<Utc>) -> Result<RunReport, ServiceError> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            if call < self.failures {
                Err(StoreError::Unavailable(format!("attempt {call}")).into())
            } else {
                Ok(RunReport::default())
            }
        }
    }

    #[derive(Default)]
    struct Outcomes(Mutex<Vec<String>>);

    impl RunObserver for Outcomes {
        fn finished(&self, outcome: &str, _seconds: f64) {
            self.0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(outcome.to_string());
        }
    }

    fn tenant() -> Tenant {
        Tenant {
            tenant_id: uuid::Uuid::new_v4(),
            name: TenantName::parse("retries").expect("name"),
            display_name: "Retries".to_string(),
            isolation: Isolation::Shared,
            created_at: Utc::now(),
        }
    }

    fn quick() -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(1))
            .with_max_delay(Duration::from_millis(2))
            .with_max_times(3)
    }

    #[tokio::test]
    async fn failed_runs_are_retried_and_the_outcome_counted_once() {
        let runner = Flaky {
            failures: 2,
            calls: AtomicUsize::new(0),
        };
        let outcomes = Outcomes::default();
        let result = run_retrying(&runner, quick(), &outcomes, &tenant(), Utc::now()).await;
        assert!(result.is_ok());
        assert_eq!(runner.calls.load(Ordering::SeqCst), 3);
        assert_eq!(*outcomes.0.lock().expect("lock"), vec!["succeeded"]);

        let hopeless = Flaky {
            failures: usize::MAX,
            calls: AtomicUsize::new(0),
        };
        let outcomes = Outcomes::default();
        let result = run_retrying(&hopeless, quick(), &outcomes, &tenant(), Utc::now()).await;
        assert!(result.is_err());
        assert_eq!(
            hopeless.calls.load(Ordering::SeqCst),
            4,
            "first try and three retries"
        );
        assert_eq!(*outcomes.0.lock().expect("lock"), vec!["failed"]);
    }
}
