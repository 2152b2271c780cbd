//! Histogram buckets, chosen per measurement so the interesting quantiles fall between bounds.

use prometheus_client::metrics::histogram::Histogram;

/// Requests and searches: 1 ms … 10 s. The search alert fires on a p99 above 1 s, so the
/// bounds around one second are dense.
const REQUEST_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
];

/// One embedding-model batch: a single short text takes milliseconds on a CPU, a full batch of
/// long texts seconds.
const EMBEDDING_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// From publication to processing of an event: near zero when the consumer keeps up, minutes
/// when it falls behind.
const EVENT_LAG_SECONDS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// A scheduled analytics run: seconds for a small tenant, many minutes for a large one.
const ANALYTICS_RUN_SECONDS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
];

pub fn request() -> Histogram {
    Histogram::new(REQUEST_SECONDS.iter().copied())
}

pub fn embedding() -> Histogram {
    Histogram::new(EMBEDDING_SECONDS.iter().copied())
}

pub fn event_lag() -> Histogram {
    Histogram::new(EVENT_LAG_SECONDS.iter().copied())
}

pub fn analytics_run() -> Histogram {
    Histogram::new(ANALYTICS_RUN_SECONDS.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_increase_strictly() {
        for bounds in [
            REQUEST_SECONDS,
            EMBEDDING_SECONDS,
            EVENT_LAG_SECONDS,
            ANALYTICS_RUN_SECONDS,
        ] {
            assert!(
                bounds.windows(2).all(|pair| pair[0] < pair[1]),
                "{bounds:?}"
            );
        }
        assert_eq!(REQUEST_SECONDS.first(), Some(&0.001));
        assert_eq!(REQUEST_SECONDS.last(), Some(&10.0));
    }
}
