//! Scheduled analytics runs: how many ended in each outcome, and how long each job takes.

use super::labels::{AnalyticsJobLabels, AnalyticsRunLabels};
use super::{PlatformMetrics, non_negative_seconds};

impl PlatformMetrics {
    /// Counts one run of `job` (e.g. `pattern_recognition`) that ended with `outcome`
    /// (e.g. `success`, `failure`, `skipped`) and observes the `seconds` it took.
    pub fn record_analytics_run(&self, job: &str, outcome: &str, seconds: f64) {
        self.families
            .analytics_runs
            .get_or_create(&AnalyticsRunLabels {
                job: job.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.families
            .analytics_duration
            .get_or_create(&AnalyticsJobLabels {
                job: job.to_string(),
            })
            .observe(non_negative_seconds(seconds));
    }
}

/// The analytics scheduler reports every scheduled run here (job `scheduled`).
impl crate::services::analytics::scheduler::RunObserver for PlatformMetrics {
    fn finished(&self, outcome: &str, seconds: f64) {
        self.record_analytics_run("scheduled", outcome, seconds);
    }
}

#[cfg(test)]
mod tests {
    use memoryc_crds::contract::platform_metrics::{ANALYTICS_RUN_DURATION, ANALYTICS_RUNS};

    use super::super::test_support::sample;
    use super::*;

    #[test]
    fn runs_are_counted_by_outcome_and_timed_by_job() {
        let metrics = PlatformMetrics::new();
        metrics.record_analytics_run("pattern_recognition", "success", 2.0);
        metrics.record_analytics_run("pattern_recognition", "failure", 0.5);
        metrics.record_analytics_run("insight_generation", "success", 40.0);
        let text = metrics.render().expect("renders");
        let runs =
            |job, outcome| sample(&text, ANALYTICS_RUNS, &[("job", job), ("outcome", outcome)]);
        assert_eq!(runs("pattern_recognition", "success"), Some(1.0), "{text}");
        assert_eq!(runs("pattern_recognition", "failure"), Some(1.0));
        assert_eq!(runs("insight_generation", "success"), Some(1.0));
        let count = format!("{ANALYTICS_RUN_DURATION}_count");
        let sum = format!("{ANALYTICS_RUN_DURATION}_sum");
        let pattern = [("job", "pattern_recognition")];
        assert_eq!(sample(&text, &count, &pattern), Some(2.0));
        assert_eq!(sample(&text, &sum, &pattern), Some(2.5));
    }
}
