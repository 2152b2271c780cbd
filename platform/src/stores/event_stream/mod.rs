//! Redis Streams: every replica appends its events to one stream; a consumer group shares
//! them out, each delivered to one consumer and acknowledged after processing. Entries a
//! consumer took but never acknowledged (it crashed) are claimed by another after a while.

pub mod message;

use std::time::Duration;

use deadpool_redis::redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use deadpool_redis::{Config, Pool, Runtime, redis};

pub use message::TenantEvent;

/// Entries one read takes at most.
const ENTRIES_PER_READ: usize = 256;

/// One entry read from the stream: its id (to acknowledge it by) and its event, or why the
/// entry holds none.
#[derive(Debug)]
pub struct StreamEntry {
    pub id: String,
    pub event: Result<TenantEvent, EventError>,
}

impl StreamEntry {
    fn decode(entry: StreamId) -> Self {
        let event = entry
            .get::<String>("event")
            .ok_or_else(|| EventError::Malformed("no event field".to_string()))
            .and_then(|text| TenantEvent::from_json(&text));
        Self {
            id: entry.id,
            event,
        }
    }
}

/// Why the event transport failed.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("event stream unavailable: {0}")]
    Unavailable(String),
    #[error("malformed event message: {0}")]
    Malformed(String),
}

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
    /// Entries for this consumer: first any that another consumer took and left
    /// unacknowledged for `claim_after`, else new ones, waiting up to `block` for them.
    pub async fn read(&self, block: Duration) -> Result<Vec<StreamEntry>, EventError> {
        let mut connection = self.connection().await?;
        let claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&self.settings.stream_key)
            .arg(&self.settings.group)
            .arg(&self.settings.consumer)
            .arg(u64::try_from(self.settings.claim_after.as_millis()).unwrap_or(u64::MAX))
            .arg("0-0")
            .arg("COUNT")
            .arg(ENTRIES_PER_READ)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        if !claimed.claimed.is_empty() {
            return Ok(claimed
                .claimed
                .into_iter()
                .map(StreamEntry::decode)
                .collect());
        }
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&self.settings.group)
            .arg(&self.settings.consumer)
            .arg("COUNT")
            .arg(ENTRIES_PER_READ)
            .arg("BLOCK")
            .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX))
            .arg("STREAMS")
            .arg(&self.settings.stream_key)
            .arg(">")
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(reply
            .map(|reply| {
                reply
                    .keys
                    .into_iter()
                    .flat_map(|key| key.ids)
                    .map(StreamEntry::decode)
                    .collect()
            })
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
