//! Counting in this process: the embedded default. Each replica counts on its own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{RateCounter, RateLimitError, window_of};

/// Past this many keys, counts of finished windows are dropped.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Default)]
pub struct InProcessCounter {
    counts: Mutex<HashMap<String, (u64, u64)>>,
}

#[async_trait]
impl RateCounter for InProcessCounter {
    async fn hit(&self, key: &str, window: Duration, now: Duration) -> Result<u64, RateLimitError> {
        let (index, _) = window_of(now, window);
        let mut counts = self
            .counts
            .lock()
            .map_err(|_| RateLimitError::Unavailable("counter lock poisoned".to_string()))?;
        if counts.len() > PRUNE_ABOVE {
            counts.retain(|_, (seen, _)| *seen == index);
        }
        let entry = counts.entry(key.to_string()).or_insert((index, 0));
        if entry.0 != index {
            *entry = (index, 0);
        }
        entry.1 += 1;
        Ok(entry.1)
    }

    async fn peek(
        &self,
        key: &str,
        window: Duration,
        now: Duration,
    ) -> Result<u64, RateLimitError> {
        let (index, _) = window_of(now, window);
        let counts = self
            .counts
            .lock()
            .map_err(|_| RateLimitError::Unavailable("counter lock poisoned".to_string()))?;
        Ok(counts
            .get(key)
            .filter(|(seen, _)| *seen == index)
            .map_or(0, |(_, count)| *count))
    }
}
