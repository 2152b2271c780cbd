//! The embedded transport: one task drains the publisher's queue into the processor.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::sync::{mpsc, watch};

use super::{EventProcessor, TenantEvent};

/// Most events handled in one batch.
pub const BATCH: usize = 256;

/// Consumes until `stop` turns true, then handles what is still queued and returns.
pub fn spawn_consumer(
    mut queue: mpsc::Receiver<TenantEvent>,
    processor: Arc<EventProcessor>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                received = queue.recv_many(&mut batch, BATCH) => {
                    if received == 0 {
                        break;
                    }
                    handle(&processor, &batch).await;
                    batch.clear();
                }
                _ = stop.changed() => {
                    queue.close();
                    while queue.recv_many(&mut batch, BATCH).await > 0 {
                        handle(&processor, &batch).await;
                        batch.clear();
                    }
                    break;
                }
            }
        }
    })
}

async fn handle(processor: &EventProcessor, batch: &[TenantEvent]) {
    let attempt = || processor.handle(batch);
    let outcome = attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(50))
                .with_max_delay(Duration::from_secs(2))
                .with_max_times(4),
        )
        .await;
    if let Err(error) = outcome {
        tracing::warn!(%error, events = batch.len(), "analytics events could not be processed");
    }
}
