//! Webhook deliveries: attempts by outcome, and how long a new delivery takes to be answered.

use std::time::Duration;

use super::PlatformMetrics;
use super::labels::OutcomeLabels;

impl PlatformMetrics {
    /// Counts one attempt; `since_written` (first attempts only) is observed as the latency.
    pub fn record_webhook_attempt(&self, delivered: bool, since_written: Option<Duration>) {
        let outcome = if delivered { "delivered" } else { "failed" };
        self.families
            .webhook_attempts
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
        if let Some(latency) = since_written {
            self.families.webhook_latency.observe(latency.as_secs_f64());
        }
    }
}

/// The dispatcher reports every attempt here.
impl crate::services::integrations::webhook::dispatcher::DeliveryObserver for PlatformMetrics {
    fn attempted(&self, delivered: bool, since_written: Option<Duration>) {
        self.record_webhook_attempt(delivered, since_written);
    }
}

#[cfg(test)]
mod tests {
    use memoryc_crds::contract::platform_metrics::{WEBHOOK_ATTEMPTS, WEBHOOK_DELIVERY_LATENCY};

    use super::super::test_support::sample;
    use super::*;

    #[test]
    fn attempts_are_counted_by_outcome_and_first_attempts_timed() {
        let metrics = PlatformMetrics::new();
        metrics.record_webhook_attempt(true, Some(Duration::from_millis(20)));
        metrics.record_webhook_attempt(false, Some(Duration::from_millis(30)));
        metrics.record_webhook_attempt(true, None);
        let text = metrics.render().expect("renders");
        assert_eq!(
            sample(&text, WEBHOOK_ATTEMPTS, &[("outcome", "delivered")]),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, WEBHOOK_ATTEMPTS, &[("outcome", "failed")]),
            Some(1.0)
        );
        let count = format!("{WEBHOOK_DELIVERY_LATENCY}_count");
        assert_eq!(sample(&text, &count, &[]), Some(2.0));
    }
}
