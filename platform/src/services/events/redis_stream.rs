//! The Redis Streams transport's loops: a forwarder appends the events the memory service
//! publishes to the stream; a consumer reads the group's entries, processes them and
//! acknowledges them. The stream itself is `stores::event_stream`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::in_process::BATCH;
use super::{EventProcessor, TenantEvent};
use crate::stores::event_stream::{RedisEventStream, StreamEntry};

/// How long one read waits for new entries.
const READ_BLOCK: Duration = Duration::from_millis(250);

/// Moves events from the publisher's queue onto the stream; keeps a batch and retries while
/// Redis is away. On stop, appends what is queued and returns.
pub fn spawn_forwarder(
    stream: RedisEventStream,
    mut queue: mpsc::Receiver<TenantEvent>,
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
                    append_until_done(&stream, &mut batch, &mut stop).await;
                }
                _ = stop.changed() => {
                    queue.close();
                    while queue.recv_many(&mut batch, BATCH).await > 0 {
                        if let Err(error) = stream.append(&batch).await {
                            tracing::warn!(%error, events = batch.len(), "events lost at shutdown");
                        }
                        batch.clear();
                    }
                    break;
                }
            }
        }
    })
}

async fn append_until_done(
    stream: &RedisEventStream,
    batch: &mut Vec<TenantEvent>,
    stop: &mut watch::Receiver<bool>,
) {
    let mut delay = Duration::from_millis(100);
    loop {
        match stream.append(batch).await {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(%error, events = batch.len(), "cannot append events; retrying");
                if *stop.borrow() {
                    break;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    batch.clear();
}

/// Reads the group's entries and processes them until `stop`; acknowledges what was
/// processed. A failed batch stays pending and is claimed again after `claim_after`.
pub fn spawn_consumer(
    stream: RedisEventStream,
    processor: Arc<EventProcessor>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(error) = stream.ensure_group().await {
            tracing::warn!(%error, "cannot create the event consumer group yet");
        }
        loop {
            if *stop.borrow() {
                break;
            }
            let read = tokio::select! {
                // Shorter than the client's response timeout (500 ms), so a quiet stream is
                // not mistaken for a dead server.
                read = stream.read(READ_BLOCK) => read,
                _ = stop.changed() => break,
            };
            match read {
                Ok(entries) if entries.is_empty() => {}
                Ok(entries) => consume(&stream, &processor, entries).await,
                Err(error) => {
                    tracing::warn!(%error, "cannot read events; retrying");
                    let _ = stream.ensure_group().await;
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => break,
                    }
                }
            }
        }
    })
}

async fn consume(stream: &RedisEventStream, processor: &EventProcessor, entries: Vec<StreamEntry>) {
    let mut events = Vec::with_capacity(entries.len());
    let mut ids = Vec::with_capacity(entries.len());
    let mut malformed = Vec::new();
    for entry in entries {
        match entry.event {
            Ok(event) => {
                events.push(event);
                ids.push(entry.id);
            }
            Err(error) => {
                // Never processable: acknowledge so it does not come back forever.
                tracing::warn!(%error, id = %entry.id, "dropping a malformed event");
                malformed.push(entry.id);
            }
        }
    }
    if let Err(error) = stream.acknowledge(&malformed).await {
        tracing::warn!(%error, "cannot acknowledge malformed events");
    }
    match processor.handle(&events).await {
        Ok(()) => {
            if let Err(error) = stream.acknowledge(&ids).await {
                tracing::warn!(%error, "cannot acknowledge events; they will be processed again");
            }
        }
        Err(error) => {
            tracing::warn!(%error, events = events.len(), "events not processed; they stay pending");
        }
    }
}
