//! Counting in Redis, shared by every replica: `INCR` of a key per window, which expires with
//! its window, in one atomic `MULTI`.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_redis::{Config, Pool, Runtime, redis};

use super::{RateCounter, RateLimitError, window_of};

const KEY_PREFIX: &str = "memoryc:rate:";

pub struct RedisCounter {
    pub(super) pool: Pool,
}

impl RedisCounter {
    pub fn connect(url: &str) -> Result<Self, RateLimitError> {
        let pool = Config::from_url(url)
            .create_pool(Some(Runtime::Tokio1))
            .map_err(unavailable)?;
        Ok(Self { pool })
    }

    /// Whether Redis answers; used at start-up so a wrong URL is noticed at once.
    pub async fn ping(&self) -> Result<(), RateLimitError> {
        let mut connection = self.connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn connection(&self) -> Result<deadpool_redis::Connection, RateLimitError> {
        self.pool.get().await.map_err(unavailable)
    }
}

fn unavailable(error: impl std::fmt::Display) -> RateLimitError {
    RateLimitError::Unavailable(error.to_string())
}

/// The Redis key counting `key` in the window `index`.
fn window_key(key: &str, index: u64) -> String {
    format!("{KEY_PREFIX}{key}|{index}")
}

#[async_trait]
impl RateCounter for RedisCounter {
    async fn hit(&self, key: &str, window: Duration, now: Duration) -> Result<u64, RateLimitError> {
        let (index, left) = window_of(now, window);
        let key = window_key(key, index);
        let mut connection = self.connection().await?;
        // The key outlives its window a little so a slow clock on another replica still counts.
        let ttl_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX) + 1_000;
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&key)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl_ms)
            .ignore()
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(count)
    }

    async fn peek(
        &self,
        key: &str,
        window: Duration,
        now: Duration,
    ) -> Result<u64, RateLimitError> {
        let (index, _) = window_of(now, window);
        let key = window_key(key, index);
        let mut connection = self.connection().await?;
        let count: Option<u64> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok(count.unwrap_or(0))
    }
}
