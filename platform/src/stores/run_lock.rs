//! "Run this slot once": the first replica to claim a (tenant, slot) key runs it; the others
//! see the claim and skip. Redis `SET NX` across replicas, a set in memory for one process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_redis::{Config, Pool, Runtime, redis};

#[derive(Debug, thiserror::Error)]
#[error("run lock unavailable: {0}")]
pub struct LockError(pub String);

#[async_trait]
pub trait RunLock: Send + Sync + 'static {
    /// True for the first caller with `key` within `ttl`.
    async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, LockError>;
}

#[derive(Default)]
pub struct InProcessLock {
    claimed: Mutex<HashMap<String, Instant>>,
}

#[async_trait]
impl RunLock for InProcessLock {
    async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, LockError> {
        let now = Instant::now();
        let mut claimed = self
            .claimed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        claimed.retain(|_, until| *until > now);
        if claimed.contains_key(key) {
            return Ok(false);
        }
        claimed.insert(key.to_string(), now + ttl);
        Ok(true)
    }
}

pub struct RedisRunLock {
    pool: Pool,
    prefix: String,
}

impl RedisRunLock {
    pub fn connect(url: &str, prefix: &str) -> Result<Self, LockError> {
        let pool = Config::from_url(url)
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| LockError(e.to_string()))?;
        Ok(Self {
            pool,
            prefix: format!("{prefix}lock:"),
        })
    }
}

#[async_trait]
impl RunLock for RedisRunLock {
    async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, LockError> {
        let mut connection = self
            .pool
            .get()
            .await
            .map_err(|e| LockError(e.to_string()))?;
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("{}{key}", self.prefix))
            .arg(std::process::id())
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .query_async(&mut connection)
            .await
            .map_err(|e| LockError(e.to_string()))?;
        Ok(set.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_claims_once_until_expiry() {
        let lock = InProcessLock::default();
        assert!(
            lock.claim("a", Duration::from_secs(60))
                .await
                .expect("claim")
        );
        assert!(
            !lock
                .claim("a", Duration::from_secs(60))
                .await
                .expect("claim")
        );
        assert!(
            lock.claim("b", Duration::from_secs(60))
                .await
                .expect("claim")
        );
        assert!(lock.claim("c", Duration::ZERO).await.expect("claim"));
        assert!(lock.claim("c", Duration::ZERO).await.expect("claim"));
    }

    #[tokio::test]
    async fn redis_claims_once_across_connections() {
        let url = std::env::var("MEMORYC_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
        let prefix = format!("memoryc-test-{}:", uuid::Uuid::new_v4().simple());
        let first = RedisRunLock::connect(&url, &prefix).expect("pool");
        let second = RedisRunLock::connect(&url, &prefix).expect("pool");
        assert!(
            first
                .claim("slot", Duration::from_secs(30))
                .await
                .expect("claim")
        );
        assert!(
            !second
                .claim("slot", Duration::from_secs(30))
                .await
                .expect("claim")
        );
        assert!(
            second
                .claim("other", Duration::from_secs(30))
                .await
                .expect("claim")
        );
    }
}
