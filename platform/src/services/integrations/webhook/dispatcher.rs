//! Sends webhook deliveries: takes what is due, signs each body per Standard Webhooks, POSTs it
//! to the integration's URL and records the attempt. A failed attempt (no answer, a non-2xx
//! answer) is retried with exponential backoff and jitter, at least as late as a `Retry-After`
//! asks, until `max_attempts`, after which the delivery is dead-lettered. Each replica runs one
//! dispatcher; a delivery is claimed by one of them per attempt.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER, USER_AGENT};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use super::destination::DestinationPolicy;
use super::fanout::WEBHOOK_KIND;
use super::payload::WebhookSettings;
use super::signature::{ID_HEADER, SIGNATURE_HEADER, SigningKey, TIMESTAMP_HEADER};
use crate::services::ServiceError;
use crate::services::integrations::request_error;
use crate::stores::{Attempt, Delivery, Integration, IntegrationStore, Outcome, StoreError};

/// Deliveries read per pass.
const PER_PASS: u64 = 64;
/// Longest error text kept with an attempt.
const MAX_ERROR_CHARS: usize = 500;

/// How deliveries are sent and retried.
#[derive(Debug, Clone, Copy)]
pub struct DispatchSettings {
    /// Longest wait for a receiver's answer.
    pub timeout: Duration,
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// Deliveries sent at once.
    pub concurrency: usize,
    /// How often the dispatcher looks for due deliveries when nothing wakes it (retries, and
    /// deliveries written by other replicas).
    pub poll_interval: Duration,
    /// How long delivered and dead deliveries are kept.
    pub retention: Duration,
}

/// How often old deliveries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Observes attempts (metrics); the default does nothing.
pub trait DeliveryObserver: Send + Sync + 'static {
    /// An attempt ended, `delivered` or not; for a first attempt, the time from the delivery
    /// being written to the receiver's answer (`None` for retries).
    fn attempted(&self, _delivered: bool, _since_written: Option<Duration>) {}
}

struct NoObserver;
impl DeliveryObserver for NoObserver {}

pub struct WebhookDispatcher {
    store: Arc<dyn IntegrationStore>,
    policy: Arc<DestinationPolicy>,
    client: reqwest::Client,
    settings: DispatchSettings,
    backoff: ExponentialBuilder,
    wake: Arc<Notify>,
    observer: Arc<dyn DeliveryObserver>,
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("could not build the webhook client: {0}")]
    Client(#[source] reqwest::Error),
}

impl WebhookDispatcher {
    pub fn new(
        store: Arc<dyn IntegrationStore>,
        policy: Arc<DestinationPolicy>,
        settings: DispatchSettings,
        wake: Arc<Notify>,
    ) -> Result<Self, DispatchError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(policy.resolver())
            .build()
            .map_err(DispatchError::Client)?;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(settings.retry_min)
            .with_max_delay(settings.retry_max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Ok(Self {
            store,
            policy,
            client,
            settings,
            backoff,
            wake,
            observer: Arc::new(NoObserver),
        })
    }

    pub fn with_observer(mut self, observer: Arc<dyn DeliveryObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Runs until `stop` turns true: a pass whenever woken or every poll interval.
    pub fn spawn(self: Arc<Self>, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut next_prune = tokio::time::Instant::now();
            loop {
                if tokio::time::Instant::now() >= next_prune {
                    self.prune().await;
                    next_prune = tokio::time::Instant::now() + PRUNE_EVERY;
                }
                let busy = match self.run_once().await {
                    Ok(attempted) => attempted > 0,
                    Err(error) => {
                        tracing::warn!(%error, "webhook delivery pass failed");
                        false
                    }
                };
                if busy {
                    continue;
                }
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(self.settings.poll_interval) => {}
                    _ = stop.changed() => break,
                }
            }
        })
    }

    /// Removes delivered and dead deliveries older than the retention.
    async fn prune(&self) {
        let before = Utc::now() - chrono_duration(self.settings.retention);
        match self.store.prune_deliveries(before).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "old webhook deliveries removed"),
            Err(error) => tracing::warn!(%error, "could not remove old webhook deliveries"),
        }
    }

    /// One pass over what is due now; how many attempts were made.
    pub async fn run_once(&self) -> Result<usize, ServiceError> {
        let now = Utc::now();
        let due = self.store.due_deliveries(now, PER_PASS).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut integrations: HashMap<Uuid, Option<Integration>> = HashMap::new();
        for delivery in &due {
            if let std::collections::hash_map::Entry::Vacant(entry) =
                integrations.entry(delivery.integration_id)
            {
                entry.insert(self.store.find_by_id(delivery.integration_id).await?);
            }
        }
        let attempts = futures::stream::iter(due.into_iter().filter_map(|delivery| {
            let integration = integrations.get(&delivery.integration_id)?.clone()?;
            Some((delivery, integration))
        }))
        .map(|(delivery, integration)| self.attempt(delivery, integration, now))
        .buffer_unordered(self.settings.concurrency.max(1))
        .collect::<Vec<Result<bool, StoreError>>>()
        .await;
        let mut attempted = 0;
        for result in attempts {
            match result {
                Ok(true) => attempted += 1,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "could not record a webhook delivery"),
            }
        }
        Ok(attempted)
    }

    /// Claims and sends one delivery; false when there was nothing to send (another replica
    /// took it, or its integration is paused).
    async fn attempt(
        &self,
        delivery: Delivery,
        integration: Integration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let lease = now + chrono_duration(self.settings.timeout * 2 + Duration::from_secs(30));
        if !self
            .store
            .claim_delivery(delivery.delivery_id, now, lease)
            .await?
        {
            return Ok(false);
        }
        if integration.record.paused || integration.record.kind != WEBHOOK_KIND {
            // Left claimed: looked at again once the lease ends.
            return Ok(false);
        }
        let result = self.send(&delivery, &integration).await;
        let at = Utc::now();
        let first_attempt = delivery.attempts == 0;
        let since_written = first_attempt
            .then(|| (at - delivery.created_at).to_std().ok())
            .flatten();
        let (attempt, outcome) = match result {
            Ok(status) => (
                Attempt::Delivered {
                    response_status: i32::from(status),
                },
                Outcome::Reached { items: 1 },
            ),
            Err(failure) => {
                let attempts_made = u32::try_from(delivery.attempts).unwrap_or(0) + 1;
                let retry_at = (attempts_made < self.settings.max_attempts)
                    .then(|| at + chrono_duration(self.delay(attempts_made, failure.retry_after)));
                tracing::info!(
                    delivery = %delivery.delivery_id,
                    integration = %integration.record.name,
                    attempts = attempts_made,
                    dead = retry_at.is_none(),
                    error = %failure.error,
                    "webhook delivery failed"
                );
                (
                    Attempt::Failed {
                        response_status: failure.status.map(i32::from),
                        error: failure.error.clone(),
                        retry_at,
                    },
                    Outcome::Failed {
                        error: failure.error,
                    },
                )
            }
        };
        self.observer
            .attempted(matches!(attempt, Attempt::Delivered { .. }), since_written);
        self.store
            .record_attempt(delivery.delivery_id, &attempt, at)
            .await?;
        self.store
            .record_outcome(integration.integration_id, &outcome, at)
            .await?;
        Ok(true)
    }

    /// The wait before attempt `attempts_made + 1`: the backoff's, or longer when the receiver
    /// asked for more (within `retry_max`).
    fn delay(&self, attempts_made: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self
            .backoff
            .build()
            .nth(attempts_made.saturating_sub(1) as usize)
            .unwrap_or(self.settings.retry_max);
        honouring_retry_after(backoff, retry_after, self.settings.retry_max)
    }

    /// POSTs the delivery; the receiver's status when it answered 2xx.
    async fn send(&self, delivery: &Delivery, integration: &Integration) -> Result<u16, Failure> {
        let settings: WebhookSettings = serde_json::from_value(integration.record.settings.clone())
            .map_err(|error| {
                Failure::local(format!("the webhook's settings are unreadable: {error}"))
            })?;
        let url = self
            .policy
            .check_url(&settings.url)
            .map_err(|error| Failure::local(error.to_string()))?;
        let key = integration
            .record
            .secret
            .as_deref()
            .ok_or_else(|| Failure::local("the webhook has no signing secret".to_string()))
            .and_then(|secret| {
                SigningKey::from_secret(secret)
                    .map_err(|error| Failure::local(format!("the signing secret: {error}")))
            })?;
        let id = delivery.delivery_id.to_string();
        let timestamp = Utc::now().timestamp();
        let signature = key.sign(&id, timestamp, delivery.payload.as_bytes());
        let response = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(
                USER_AGENT,
                concat!("memoryc-webhooks/", env!("CARGO_PKG_VERSION")),
            )
            .header(ID_HEADER, &id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(|error| Failure::local(describe(&error)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(status.as_u16());
        }
        Err(Failure {
            status: Some(status.as_u16()),
            error: format!("the receiver answered {status}"),
            retry_after: retry_after(response.headers()),
        })
    }
}

/// Why an attempt failed.
struct Failure {
    status: Option<u16>,
    error: String,
    retry_after: Option<Duration>,
}

impl Failure {
    fn local(error: String) -> Self {
        Self {
            status: None,
            error: error.chars().take(MAX_ERROR_CHARS).collect(),
            retry_after: None,
        }
    }
}

fn describe(error: &reqwest::Error) -> String {
    request_error::describe(
        error,
        "the receiver did not answer in time",
        "the receiver could not be reached",
    )
}

/// The backoff's wait, or the receiver's `Retry-After` when that is longer, within `ceiling`.
fn honouring_retry_after(
    backoff: Duration,
    retry_after: Option<Duration>,
    ceiling: Duration,
) -> Duration {
    match retry_after {
        Some(asked) => backoff.max(asked.min(ceiling)),
        None => backoff,
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from webhook receivers and ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn a_receivers_retry_after_lengthens_the_wait_up_to_the_ceiling() {
        let (backoff, ceiling) = (Duration::from_secs(5), Duration::from_secs(3600));
        assert_eq!(honouring_retry_after(backoff, None, ceiling), backoff);
        assert_eq!(
            honouring_retry_after(backoff, Some(Duration::from_secs(120)), ceiling),
            Duration::from_secs(120)
        );
        assert_eq!(
            honouring_retry_after(backoff, Some(Duration::from_secs(1)), ceiling),
            backoff,
            "never sooner than the backoff"
        );
        assert_eq!(
            honouring_retry_after(backoff, Some(Duration::from_secs(86_400)), ceiling),
            ceiling
        );
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static(" 30 "));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(30)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
