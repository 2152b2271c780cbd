//! The side the memory service sees: hand over an event and go on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::TenantEvent;

/// Events waiting for the transport; beyond this the newest are dropped (and counted) rather
/// than making a write wait.
pub const QUEUE_CAPACITY: usize = 65_536;

/// Observes published events (metrics).
pub trait PublishObserver: Send + Sync + 'static {
    /// One event of `event_type` (e.g. `MEMORY_CREATED`) handed to the transport.
    fn published(&self, event_type: &str);
}

#[derive(Clone)]
pub struct EventPublisher {
    queue: mpsc::Sender<TenantEvent>,
    dropped: Arc<AtomicU64>,
    metrics: Option<Arc<dyn PublishObserver>>,
}

impl EventPublisher {
    /// A publisher and the receiving end the transport drains.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<TenantEvent>) {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        (
            Self {
                queue,
                dropped: Arc::new(AtomicU64::new(0)),
                metrics: None,
            },
            receiver,
        )
    }

    /// Counts published events in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn PublishObserver>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Queues the event without waiting. A full or closed queue drops it with a warning:
    /// analytics are never worth failing or slowing a write.
    pub fn publish(&self, event: TenantEvent) {
        let event_type = event.event.event_type;
        match self.queue.try_send(event) {
            Ok(()) => {
                if let Some(metrics) = &self.metrics {
                    metrics.published(event_type.as_str());
                }
            }
            Err(error) => self.drop_event(error),
        }
    }

    fn drop_event(&self, error: mpsc::error::TrySendError<TenantEvent>) {
        let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let reason = match error {
            mpsc::error::TrySendError::Full(_) => "queue full",
            mpsc::error::TrySendError::Closed(_) => "transport stopped",
        };
        tracing::warn!(reason, dropped, "analytics event dropped");
    }

    /// Events dropped since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
