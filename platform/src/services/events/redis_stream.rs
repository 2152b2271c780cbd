//! Redis Streams transport: every replica appends its events to one stream; a consumer group
//! shares them out, each delivered to one consumer and acknowledged after processing. Entries
//! a consumer took but never acknowledged (it crashed) are claimed by another after a while.

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use deadpool_redis::{Config, Pool, Runtime, redis};
use tokio::sync::{mpsc, watch};

use super::in_process::BATCH;
use super::{EventError, EventProcessor, TenantEvent};

/// How long one read waits for new entries.
const READ_BLOCK: Duration = Duration::from_millis(250);

/// Where the stream lives and who reads it.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub stream_key: String,
    pub group: String,
    /// This replica's name inside the group.
    pub consumer: String,
    /// Entries kept in the stream (approximately).
    pub max_length: u64,
    /// How long an entry may stay unacknowledged before another consumer takes it over.
    pub claim_after: Duration,
}

impl StreamSettings {
    pub fn new(prefix: &str) -> Self {
        Self {
            stream_key: format!("{prefix}events"),
            group: "analytics".to_string(),
            consumer: format!("platform-{}", uuid::Uuid::new_v4().simple()),
            max_length: 1_000_000,
            claim_after: Duration::from_secs(60),
        }
    }
}

#[derive(Clone)]
pub struct RedisEventStream {
    pool: Pool,
    settings: StreamSettings,
}

impl RedisEventStream {
    pub fn connect(url: &str, settings: StreamSettings) -> Result<Self, EventError> {
        let pool = Config::from_url(url)
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| EventError::Unavailable(e.to_string()))?;
        Ok(Self { pool, settings })
    }

    pub fn settings(&self) -> &StreamSettings {
        &self.settings
    }

    /// Creates the stream and the consumer group when missing (reading from the stream's
    /// beginning, so nothing appended before the group existed is lost).
    pub async fn ensure_group(&self) -> Result<(), EventError> {
        let mut connection = self.connection().await?;
        let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.settings.stream_key)
            .arg(&self.settings.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut connection)
            .await;
        match created {
            Ok(()) => Ok(()),
            Err(error) if error.code() == Some("BUSYGROUP") => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Appends events in one round trip.
    pub async fn append(&self, events: &[TenantEvent]) -> Result<(), EventError> {
        let mut pipeline = redis::pipe();
        for event in events {
            pipeline
                .cmd("XADD")
                .arg(&self.settings.stream_key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.settings.max_length)
                .arg("*")
                .arg("event")
                .arg(event.to_json()?)
                .ignore();
        }
        let mut connection = self.connection().await?;
        pipeline
            .query_async::<()>(&mut connection)
            .await
            .map_err(unavailable)
    }

    /// Entries for this consumer: first those abandoned by a dead consumer, then new ones
    /// (waiting up to `block` for some).
    pub async fn read(&self, block: Duration) -> Result<Vec<StreamId>, EventError> {
        let mut connection = self.connection().await?;
        let claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&self.settings.stream_key)
            .arg(&self.settings.group)
            .arg(&self.settings.consumer)
            .arg(u64::try_from(self.settings.claim_after.as_millis()).unwrap_or(u64::MAX))
            .arg("0-0")
            .arg("COUNT")
            .arg(BATCH)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        if !claimed.claimed.is_empty() {
            return Ok(claimed.claimed);
        }
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&self.settings.group)
            .arg(&self.settings.consumer)
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX))
            .arg("STREAMS")
            .arg(&self.settings.stream_key)
            .arg(">")
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(reply
            .map(|reply| reply.keys.into_iter().flat_map(|key| key.ids).collect())
            .unwrap_or_default())
    }

    pub async fn acknowledge(&self, ids: &[String]) -> Result<(), EventError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut connection = self.connection().await?;
        redis::cmd("XACK")
            .arg(&self.settings.stream_key)
            .arg(&self.settings.group)
            .arg(ids)
            .query_async::<u64>(&mut connection)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// Entries delivered to some consumer and not yet acknowledged.
    pub async fn pending(&self) -> Result<u64, EventError> {
        let mut connection = self.connection().await?;
        let summary: (u64, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
            .arg(&self.settings.stream_key)
            .arg(&self.settings.group)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(summary.0)
    }

    async fn connection(&self) -> Result<deadpool_redis::Connection, EventError> {
        self.pool
            .get()
            .await
            .map_err(|e| EventError::Unavailable(e.to_string()))
    }
}

fn unavailable(error: redis::RedisError) -> EventError {
    EventError::Unavailable(error.to_string())
}

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

async fn consume(stream: &RedisEventStream, processor: &EventProcessor, entries: Vec<StreamId>) {
    let mut events = Vec::with_capacity(entries.len());
    let mut ids = Vec::with_capacity(entries.len());
    let mut malformed = Vec::new();
    for entry in entries {
        match entry
            .get::<String>("event")
            .ok_or_else(|| EventError::Malformed("no event field".to_string()))
            .and_then(|text: String| TenantEvent::from_json(&text))
        {
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
