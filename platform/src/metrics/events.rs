//! Analytics events on their way from the memory service to the analytics jobs: how many are
//! published and processed per type, and how long they wait in between.

use super::labels::EventLabels;
use super::{PlatformMetrics, non_negative_seconds};

impl PlatformMetrics {
    /// Counts one published event of `event_type` (e.g. `MEMORY_CREATED`).
    pub fn record_event_published(&self, event_type: &str) {
        self.families
            .events_published
            .get_or_create(&labels(event_type))
            .inc();
    }

    /// Counts one processed event of `event_type` and observes how many seconds passed since it
    /// was published (a negative lag from clock skew counts as zero).
    pub fn record_event_processed(&self, event_type: &str, lag_seconds: f64) {
        self.families
            .events_processed
            .get_or_create(&labels(event_type))
            .inc();
        self.families
            .event_lag
            .observe(non_negative_seconds(lag_seconds));
    }
}

fn labels(event_type: &str) -> EventLabels {
    EventLabels {
        event_type: event_type.to_string(),
    }
}

/// The event consumer reports every processed event here.
impl crate::services::events::processor::EventObserver for PlatformMetrics {
    fn processed(&self, event: &crate::domain::analytics::AnalyticsEvent, lag_seconds: f64) {
        self.record_event_processed(event.event_type.as_str(), lag_seconds);
    }
}

/// The memory service's publisher reports every published event here.
impl crate::services::events::publisher::PublishObserver for PlatformMetrics {
    fn published(&self, event_type: &str) {
        self.record_event_published(event_type);
    }
}

#[cfg(test)]
mod tests {
    use memoryc_crds::contract::platform_metrics::{EVENT_LAG, EVENTS_PROCESSED, EVENTS_PUBLISHED};

    use super::super::test_support::sample;
    use super::*;

    #[test]
    fn published_and_processed_events_are_counted_and_their_lag_observed() {
        let metrics = PlatformMetrics::new();
        metrics.record_event_published("MEMORY_CREATED");
        metrics.record_event_published("MEMORY_CREATED");
        metrics.record_event_published("SEARCH_PERFORMED");
        metrics.record_event_processed("MEMORY_CREATED", 0.5);
        metrics.record_event_processed("MEMORY_CREATED", -2.0);
        let text = metrics.render().expect("renders");
        let created = [("event_type", "MEMORY_CREATED")];
        let searched = [("event_type", "SEARCH_PERFORMED")];
        assert_eq!(
            sample(&text, EVENTS_PUBLISHED, &created),
            Some(2.0),
            "{text}"
        );
        assert_eq!(sample(&text, EVENTS_PUBLISHED, &searched), Some(1.0));
        assert_eq!(sample(&text, EVENTS_PROCESSED, &created), Some(2.0));
        assert_eq!(sample(&text, EVENTS_PROCESSED, &searched), None);
        let lag_count = format!("{EVENT_LAG}_count");
        let lag_sum = format!("{EVENT_LAG}_sum");
        assert_eq!(sample(&text, &lag_count, &[]), Some(2.0));
        assert_eq!(sample(&text, &lag_sum, &[]), Some(0.5));
    }
}
