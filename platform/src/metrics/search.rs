//! How long memory searches take, by mode. Recorded by the search handler around the service
//! call, so the time covers embedding the query, the vector search and reading the rows.

use std::time::Duration;

use super::PlatformMetrics;
use super::labels::SearchLabels;
use crate::services::memory_service::{SearchMode, SearchRequest};

/// The `mode` label: what kind of search a request runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKind {
    /// By meaning (the query is embedded).
    Semantic,
    /// Content contains the query text.
    Exact,
    /// No query: the newest memories.
    List,
}

impl SearchKind {
    /// The kind the service will run for `request`: a blank query lists, as the service does.
    pub fn of(request: &SearchRequest) -> Self {
        let has_query = request
            .query
            .as_deref()
            .is_some_and(|query| !query.trim().is_empty());
        match (has_query, request.mode) {
            (false, _) => Self::List,
            (true, SearchMode::Exact) => Self::Exact,
            (true, SearchMode::Semantic) => Self::Semantic,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Semantic => "semantic",
            Self::Exact => "exact",
            Self::List => "list",
        }
    }
}

impl PlatformMetrics {
    /// Observes one search of `kind` that took `elapsed`, whether it succeeded or not.
    pub fn record_search(&self, kind: SearchKind, elapsed: Duration) {
        self.families
            .search_duration
            .get_or_create(&SearchLabels {
                mode: kind.as_str().to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use memoryc_crds::contract::platform_metrics::SEARCH_DURATION;

    use super::super::test_support::sample;
    use super::*;
    use crate::domain::MemoryFilter;

    fn request(query: Option<&str>, mode: SearchMode) -> SearchRequest {
        SearchRequest {
            query: query.map(str::to_string),
            mode,
            filter: MemoryFilter::default(),
            limit: 10,
        }
    }

    #[test]
    fn the_kind_follows_the_query_and_the_mode() {
        assert_eq!(
            SearchKind::of(&request(Some("plans"), SearchMode::Semantic)),
            SearchKind::Semantic
        );
        assert_eq!(
            SearchKind::of(&request(Some("plans"), SearchMode::Exact)),
            SearchKind::Exact
        );
        assert_eq!(
            SearchKind::of(&request(Some("  "), SearchMode::Exact)),
            SearchKind::List
        );
        assert_eq!(
            SearchKind::of(&request(None, SearchMode::Semantic)),
            SearchKind::List
        );
    }

    #[test]
    fn searches_are_timed_by_mode() {
        let metrics = PlatformMetrics::new();
        metrics.record_search(SearchKind::Semantic, Duration::from_millis(20));
        metrics.record_search(SearchKind::Semantic, Duration::from_millis(30));
        metrics.record_search(SearchKind::List, Duration::from_millis(1));
        let text = metrics.render().expect("renders");
        let count = format!("{SEARCH_DURATION}_count");
        let sum = format!("{SEARCH_DURATION}_sum");
        assert_eq!(sample(&text, &count, &[("mode", "semantic")]), Some(2.0));
        assert_eq!(sample(&text, &count, &[("mode", "list")]), Some(1.0));
        assert_eq!(sample(&text, &count, &[("mode", "exact")]), None);
        let total = sample(&text, &sum, &[("mode", "semantic")]).expect("sum");
        assert!((total - 0.05).abs() < 1e-9, "{total}");
    }
}
