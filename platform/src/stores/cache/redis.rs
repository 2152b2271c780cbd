//! The cache in Redis, shared by every replica: entries are `SET … PX ttl`, a tenant's
//! generation is a counter moved by `INCR`. Every call has a short deadline, so a slow or
//! unreachable Redis costs a request little before it falls through to the database.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use deadpool_redis::{Config, Connection, Pool, Runtime, redis};
use uuid::Uuid;

use super::{CacheError, CachedValue, EntryKey, MemoryCache};

/// Longest a single cache call may take.
const DEADLINE: Duration = Duration::from_millis(500);

pub struct RedisMemoryCache {
    pool: Pool,
    prefix: String,
}

impl RedisMemoryCache {
    /// A pool for `url`; every key starts with `prefix`.
    pub fn connect(url: &str, prefix: &str) -> Result<Self, CacheError> {
        let pool = Config::from_url(url)
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| CacheError::Unavailable(e.to_string()))?;
        Ok(Self {
            pool,
            prefix: prefix.to_string(),
        })
    }

    fn generation_key(&self, tenant_id: Uuid) -> String {
        format!("{}gen:{}", self.prefix, tenant_id.simple())
    }

    fn entry_key(&self, key: &EntryKey) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn connection(&self) -> Result<Connection, CacheError> {
        within(self.pool.get()).await
    }
}

/// Runs one Redis call under the deadline.
async fn within<T, E: std::fmt::Display>(
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, CacheError> {
    tokio::time::timeout(DEADLINE, call)
        .await
        .map_err(|_| CacheError::Timeout(DEADLINE))?
        .map_err(|e| CacheError::Unavailable(e.to_string()))
}

/// Where a missing generation starts. The key has no TTL, but a Redis evicting keys under
/// memory pressure may drop it; starting again from the clock (in milliseconds) rather than
/// from 0 keeps a new generation above the old ones, so entries stored before the loss stay
/// unreachable.
fn generation_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// Seeds the generation counter at `key` unless it exists, then runs `command` (`GET` or
/// `INCR`) on it, atomically.
async fn seeded_then(
    connection: &mut Connection,
    key: &str,
    command: &str,
) -> Result<u64, CacheError> {
    let (generation,): (u64,) = within(
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(key)
            .arg(generation_seed())
            .arg("NX")
            .ignore()
            .cmd(command)
            .arg(key)
            .query_async(connection),
    )
    .await?;
    Ok(generation)
}

#[async_trait]
impl MemoryCache for RedisMemoryCache {
    async fn generation(&self, tenant_id: Uuid) -> Result<u64, CacheError> {
        let key = self.generation_key(tenant_id);
        let mut connection = self.connection().await?;
        let current: Option<u64> =
            within(redis::cmd("GET").arg(&key).query_async(&mut connection)).await?;
        if let Some(generation) = current {
            return Ok(generation);
        }
        // First reader of this tenant: seed the counter unless a writer got there first.
        seeded_then(&mut connection, &key, "GET").await
    }

    async fn bump(&self, tenant_id: Uuid) -> Result<u64, CacheError> {
        let key = self.generation_key(tenant_id);
        let mut connection = self.connection().await?;
        seeded_then(&mut connection, &key, "INCR").await
    }

    async fn get(&self, key: &EntryKey) -> Result<Option<CachedValue>, CacheError> {
        let mut connection = self.connection().await?;
        let bytes: Option<Vec<u8>> = within(
            redis::cmd("GET")
                .arg(self.entry_key(key))
                .query_async(&mut connection),
        )
        .await?;
        bytes
            .map(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| CacheError::Corrupt(e.to_string()))
            })
            .transpose()
    }

    async fn put(
        &self,
        key: &EntryKey,
        value: CachedValue,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let bytes = serde_json::to_vec(&value).map_err(|e| CacheError::Corrupt(e.to_string()))?;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut connection = self.connection().await?;
        within(
            redis::cmd("SET")
                .arg(self.entry_key(key))
                .arg(bytes)
                .arg("PX")
                .arg(ttl_ms)
                .query_async::<()>(&mut connection),
        )
        .await
    }
}
