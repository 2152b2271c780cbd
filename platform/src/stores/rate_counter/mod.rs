//! Where rate-limit hits are counted: in Redis when one is configured (every replica shares
//! the count), in process otherwise. Counts are per key and fixed window.

pub mod in_process;
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("rate limit store unavailable: {0}")]
    Unavailable(String),
}

/// A counter of hits per key and window.
#[async_trait]
pub trait RateCounter: Send + Sync + 'static {
    /// Counts one hit of `key` in the window that holds `now` and returns the count so far.
    async fn hit(&self, key: &str, window: Duration, now: Duration) -> Result<u64, RateLimitError>;

    /// The hits of `key` so far in the window that holds `now`, without counting one.
    async fn peek(&self, key: &str, window: Duration, now: Duration)
    -> Result<u64, RateLimitError>;
}

/// The window that holds `now` (time since the epoch) and the time left in it.
pub fn window_of(now: Duration, window: Duration) -> (u64, Duration) {
    let length = window.as_millis().max(1);
    let index = now.as_millis() / length;
    let left = length - now.as_millis() % length;
    (
        u64::try_from(index).unwrap_or(u64::MAX),
        Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX)),
    )
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::in_process::InProcessCounter;
    use super::redis::RedisCounter;
    use super::*;

    fn redis_url() -> String {
        std::env::var("MEMORYC_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
    }

    /// Counts within a window, starts again in the next, keeps keys apart.
    async fn counts_per_window(counter: &dyn RateCounter) {
        let key = format!("test-{}", uuid::Uuid::new_v4());
        let window = Duration::from_secs(1);
        let start = Duration::from_millis(1_000_000);
        for expected in 1..=3 {
            assert_eq!(
                counter.hit(&key, window, start).await.expect("hit"),
                expected
            );
        }
        let other = format!("{key}-other");
        assert_eq!(counter.hit(&other, window, start).await.expect("hit"), 1);
        let next = start + window;
        assert_eq!(counter.hit(&key, window, next).await.expect("hit"), 1);
    }

    #[tokio::test]
    async fn the_in_process_counter_counts_per_window() {
        counts_per_window(&InProcessCounter::default()).await;
    }

    #[tokio::test]
    async fn the_redis_counter_counts_per_window() {
        let counter = RedisCounter::connect(&redis_url()).expect("pool");
        counter.ping().await.expect("Redis answers on the test URL");
        counts_per_window(&counter).await;
    }

    #[tokio::test]
    async fn redis_keys_expire_with_their_window() {
        let counter = RedisCounter::connect(&redis_url()).expect("pool");
        let key = format!("test-{}", uuid::Uuid::new_v4());
        let window = Duration::from_millis(200);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        counter.hit(&key, window, now).await.expect("hit");
        let mut connection = counter.pool.get().await.expect("connection");
        let (index, _) = window_of(now, window);
        let ttl: i64 = deadpool_redis::redis::cmd("PTTL")
            .arg(format!("memoryc:rate:{key}|{index}"))
            .query_async(&mut connection)
            .await
            .expect("PTTL");
        assert!(ttl > 0 && ttl <= 1_200, "ttl {ttl}");
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_an_error_not_a_hang() {
        let counter = RedisCounter::connect("redis://127.0.0.1:1").expect("pool");
        assert!(counter.ping().await.is_err());
        assert!(
            counter
                .hit("k", Duration::from_secs(1), Duration::from_secs(5))
                .await
                .is_err()
        );
    }

    #[test]
    fn windows_split_time_and_say_what_is_left() {
        let minute = Duration::from_secs(60);
        assert_eq!(window_of(Duration::from_secs(0), minute), (0, minute));
        assert_eq!(
            window_of(Duration::from_millis(61_500), minute),
            (1, Duration::from_millis(58_500))
        );
        assert_eq!(
            window_of(Duration::from_millis(119_999), minute),
            (1, Duration::from_millis(1))
        );
    }
}
