//! Cache lookups by cache and result, so hit ratios can be graphed per cache.

use super::PlatformMetrics;
use super::labels::CacheLabels;

impl PlatformMetrics {
    /// Counts one lookup in `cache` (a fixed name such as `embedding` or `memory`, never a key)
    /// as a hit or a miss.
    pub fn record_cache(&self, cache: &str, hit: bool) {
        self.families
            .cache_requests
            .get_or_create(&CacheLabels {
                cache: cache.to_string(),
                result: if hit { "hit" } else { "miss" }.to_string(),
            })
            .inc();
    }
}

/// The read cache reports every lookup here.
impl crate::services::cache::read_cache::CacheObserver for PlatformMetrics {
    fn looked_up(&self, cache: &str, hit: bool) {
        self.record_cache(cache, hit);
    }
}

#[cfg(test)]
mod tests {
    use memoryc_crds::contract::platform_metrics::CACHE_REQUESTS;

    use super::super::test_support::sample;
    use super::*;

    #[test]
    fn hits_and_misses_are_counted_per_cache() {
        let metrics = PlatformMetrics::new();
        metrics.record_cache("embedding", true);
        metrics.record_cache("embedding", true);
        metrics.record_cache("embedding", false);
        metrics.record_cache("memory", false);
        let text = metrics.render().expect("renders");
        let count = |cache, result| {
            sample(
                &text,
                CACHE_REQUESTS,
                &[("cache", cache), ("result", result)],
            )
        };
        assert_eq!(count("embedding", "hit"), Some(2.0), "{text}");
        assert_eq!(count("embedding", "miss"), Some(1.0));
        assert_eq!(count("memory", "miss"), Some(1.0));
        assert_eq!(count("memory", "hit"), None);
    }
}
