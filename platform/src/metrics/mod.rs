//! Prometheus metrics of the platform: one registry per running platform, its families named by
//! `memoryc_crds::contract::platform_metrics` (the names the chart's alerts read), recorded by
//! the HTTP middleware, the search handler, the embedder wrapper and the inventory refresher.

pub mod analytics;
mod buckets;
pub mod cache;
pub mod embedder;
pub mod events;
pub mod http;
pub mod inventory;
pub mod labels;
pub mod llm;
pub mod search;
pub mod token;
pub mod webhooks;

use std::sync::Arc;

use memoryc_crds::contract::platform_metrics as names;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::services::ServiceError;
use crate::stores::StoreError;
use labels::{
    AnalyticsJobLabels, AnalyticsRunLabels, CacheLabels, EventLabels, IntegrationLabels,
    OutcomeLabels, RequestLabels, RouteLabels, SearchLabels, TenantLabels, TokenLabels,
};

/// Content type of the exposition, as Prometheus negotiates it for OpenMetrics.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("the metrics could not be encoded: {0}")]
    Encode(#[from] std::fmt::Error),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Service(#[from] ServiceError),
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The registry and every family in it. Clones share them, so every part of the platform
/// records into the one registry `/metrics` exposes.
#[derive(Clone)]
pub struct PlatformMetrics {
    families: Arc<Families>,
}

/// Fields are visible to the recording modules beside this one, each owning its families.
struct Families {
    registry: Registry,
    http_requests: Family<RequestLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    search_duration: HistogramFamily<SearchLabels>,
    embedding_duration: Histogram,
    embedded_texts: Counter,
    memories: Family<TenantLabels, Gauge>,
    outbox_pending: Gauge,
    cache_requests: Family<CacheLabels, Counter>,
    events_published: Family<EventLabels, Counter>,
    events_processed: Family<EventLabels, Counter>,
    event_lag: Histogram,
    webhook_attempts: Family<OutcomeLabels, Counter>,
    webhook_latency: Histogram,
    llm_calls: Family<OutcomeLabels, Counter>,
    llm_tokens: Family<TokenLabels, Counter>,
    llm_breakers: Family<IntegrationLabels, Gauge>,
    analytics_runs: Family<AnalyticsRunLabels, Counter>,
    analytics_duration: HistogramFamily<AnalyticsJobLabels>,
}

impl Default for PlatformMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl PlatformMetrics {
    /// A fresh registry with every family registered. Families without labels are exported at
    /// zero from the start; labelled ones from their first recorded series.
    pub fn new() -> Self {
        let families = Families {
            registry: Registry::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(buckets::request),
            search_duration: Family::new_with_constructor(buckets::request),
            embedding_duration: buckets::embedding(),
            embedded_texts: Counter::default(),
            memories: Family::default(),
            outbox_pending: Gauge::default(),
            cache_requests: Family::default(),
            events_published: Family::default(),
            events_processed: Family::default(),
            event_lag: buckets::event_lag(),
            webhook_attempts: Family::default(),
            webhook_latency: buckets::request(),
            llm_calls: Family::default(),
            llm_tokens: Family::default(),
            llm_breakers: Family::default(),
            analytics_runs: Family::default(),
            analytics_duration: Family::new_with_constructor(buckets::analytics_run),
        };
        Self {
            families: Arc::new(families.registered()),
        }
    }

    /// The OpenMetrics text exposition of every family.
    pub fn render(&self) -> Result<String, MetricsError> {
        let mut text = String::new();
        encode(&mut text, &self.families.registry)?;
        Ok(text)
    }
}

impl Families {
    fn registered(mut self) -> Self {
        let registry = &mut self.registry;
        registry.register(
            counter_name(names::HTTP_REQUESTS),
            "Answered HTTP requests by matched route, method and status",
            self.http_requests.clone(),
        );
        registry.register(
            names::HTTP_REQUEST_DURATION,
            "Seconds from receiving a request to sending its response head",
            self.http_duration.clone(),
        );
        registry.register(
            names::SEARCH_DURATION,
            "Seconds a memory search took, by mode",
            self.search_duration.clone(),
        );
        registry.register(
            names::EMBEDDING_DURATION,
            "Seconds one batch took in the embedding model",
            self.embedding_duration.clone(),
        );
        registry.register(
            counter_name(names::EMBEDDED_TEXTS),
            "Texts the embedding model turned into vectors",
            self.embedded_texts.clone(),
        );
        registry.register(
            names::MEMORIES,
            "Live memories per tenant, as of the last refresh",
            self.memories.clone(),
        );
        registry.register(
            names::OUTBOX_PENDING,
            "Vector syncs waiting in the outbox, as of the last refresh",
            self.outbox_pending.clone(),
        );
        registry.register(
            counter_name(names::CACHE_REQUESTS),
            "Cache lookups by cache and result",
            self.cache_requests.clone(),
        );
        registry.register(
            counter_name(names::EVENTS_PUBLISHED),
            "Analytics events published, by type",
            self.events_published.clone(),
        );
        registry.register(
            counter_name(names::EVENTS_PROCESSED),
            "Analytics events processed, by type",
            self.events_processed.clone(),
        );
        registry.register(
            names::EVENT_LAG,
            "Seconds between an event's publication and its processing",
            self.event_lag.clone(),
        );
        registry.register(
            counter_name(names::WEBHOOK_ATTEMPTS),
            "Webhook delivery attempts by outcome",
            self.webhook_attempts.clone(),
        );
        registry.register(
            names::WEBHOOK_DELIVERY_LATENCY,
            "Seconds from a webhook delivery being written to its first attempt's answer",
            self.webhook_latency.clone(),
        );
        registry.register(
            counter_name(names::LLM_CALLS),
            "Calls to LLM providers by outcome",
            self.llm_calls.clone(),
        );
        registry.register(
            counter_name(names::LLM_TOKENS),
            "Tokens LLM providers used, by tenant and kind",
            self.llm_tokens.clone(),
        );
        registry.register(
            names::LLM_BREAKER_STATE,
            "Circuit breaker of each LLM provider: 0 closed, 1 open, 2 half-open",
            self.llm_breakers.clone(),
        );
        registry.register(
            counter_name(names::ANALYTICS_RUNS),
            "Scheduled analytics runs by job and outcome",
            self.analytics_runs.clone(),
        );
        registry.register(
            names::ANALYTICS_RUN_DURATION,
            "Seconds a scheduled analytics run took, by job",
            self.analytics_duration.clone(),
        );
        self
    }
}

/// The registry appends `_total` to counters itself; the contract names the exported series.
fn counter_name(exported: &'static str) -> &'static str {
    exported.strip_suffix("_total").unwrap_or(exported)
}

/// Gauges hold `i64`; counts beyond it cannot occur, but saturate rather than wrap.
fn gauge_value(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Observations in seconds; a negative or NaN value (clock skew) counts as zero.
fn non_negative_seconds(value: f64) -> f64 {
    value.max(0.0)
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::test_support::{sample, series};
    use super::*;

    #[test]
    fn families_without_labels_are_exported_from_the_start() {
        let text = PlatformMetrics::new().render().expect("renders");
        let embedding_count = format!("{}_count", names::EMBEDDING_DURATION);
        for name in [
            names::OUTBOX_PENDING,
            names::EMBEDDED_TEXTS,
            embedding_count.as_str(),
        ] {
            assert!(
                series(&text, name).next().is_some(),
                "{name} missing:\n{text}"
            );
        }
        assert_eq!(sample(&text, names::OUTBOX_PENDING, &[]), Some(0.0));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn every_contract_name_is_exported_once_recorded() {
        let metrics = PlatformMetrics::new();
        metrics.record_request(
            "/healthz",
            &axum::http::Method::GET,
            axum::http::StatusCode::OK,
            std::time::Duration::from_millis(1),
        );
        metrics.record_search(
            search::SearchKind::List,
            std::time::Duration::from_millis(1),
        );
        metrics.record_embedding(std::time::Duration::from_millis(1), 1);
        metrics.set_tenant_memories("acme", 1);
        metrics.set_outbox_pending(1);
        metrics.record_cache("embedding", true);
        metrics.record_event_published("MEMORY_CREATED");
        metrics.record_event_processed("MEMORY_CREATED", 0.1);
        metrics.record_analytics_run("pattern_recognition", "success", 1.0);
        let text = metrics.render().expect("renders");
        for name in [
            names::HTTP_REQUESTS,
            names::HTTP_REQUEST_DURATION,
            names::SEARCH_DURATION,
            names::EMBEDDING_DURATION,
            names::EMBEDDED_TEXTS,
            names::MEMORIES,
            names::OUTBOX_PENDING,
            names::CACHE_REQUESTS,
            names::EVENTS_PUBLISHED,
            names::EVENTS_PROCESSED,
            names::EVENT_LAG,
            names::ANALYTICS_RUNS,
            names::ANALYTICS_RUN_DURATION,
        ] {
            let family = counter_name(name);
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} not declared:\n{text}"
            );
            let exported = text
                .lines()
                .filter(|line| !line.starts_with('#'))
                .any(|line| line.starts_with(name));
            assert!(exported, "no series of {name}:\n{text}");
        }
    }

    #[test]
    fn counters_are_registered_without_their_suffix() {
        assert_eq!(
            counter_name(names::HTTP_REQUESTS),
            "memoryc_platform_http_requests"
        );
        assert_eq!(counter_name(names::OUTBOX_PENDING), names::OUTBOX_PENDING);
    }

    #[test]
    fn clones_share_one_registry() {
        let metrics = PlatformMetrics::new();
        metrics.clone().set_outbox_pending(7);
        let text = metrics.render().expect("renders");
        assert_eq!(sample(&text, names::OUTBOX_PENDING, &[]), Some(7.0));
    }

    #[test]
    fn odd_values_are_clamped() {
        assert_eq!(gauge_value(u64::MAX), i64::MAX);
        assert_eq!(non_negative_seconds(-3.0), 0.0);
        assert_eq!(non_negative_seconds(f64::NAN), 0.0);
        assert_eq!(non_negative_seconds(1.5), 1.5);
    }
}
