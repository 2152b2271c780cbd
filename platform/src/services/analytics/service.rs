//! Reads of a tenant's analytics (insights, events, usage, a memory's relationships and
//! history) and the analytics run itself.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::on_demand::OnDemandRuns;
use super::scheduler::AnalyticsRunner;
use super::{RunReport, generate};
use crate::analysis::InsightConfig;
use crate::auth::scope::TenantScope;
use crate::domain::Category;
use crate::domain::analytics::{
    AnalyticsEvent, EventType, HistoryEntry, InsightType, MemoryRelationship, PredictiveInsight,
    RelationshipType,
};
use crate::domain::limits::MAX_HISTORY_PAGE_BYTES;
use crate::domain::validation::InputError;
use crate::services::ServiceError;
use crate::services::events::{EventPublisher, TenantEvent};
use crate::services::tenant_settings::TenantSettingsService;
use crate::stores::analytics::{AnalyticsRepository, EventQuery, InsightQuery};
use crate::stores::run_lock::RunLock;
use crate::stores::{MemoryRepository, StoreError, Tenant};

/// Confidence below which insights are not listed unless asked for.
pub const DEFAULT_CONFIDENCE_THRESHOLD: f64 = 0.7;
/// Most insights or events in one answer.
pub const MAX_PAGE: u64 = 100;
/// Longest usage summary, in days.
pub const MAX_SUMMARY_DAYS: u32 = 90;

/// Tunables of the analytics run.
#[derive(Debug, Clone)]
pub struct AnalyticsSettings {
    pub insight_ttl: Duration,
    pub window: Duration,
    /// Most recent memories one run looks at (near-duplicate detection compares pairs).
    pub max_memories: u64,
    /// Thresholds of the insight rules.
    pub insights: InsightConfig,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        Self {
            insight_ttl: Duration::hours(168),
            window: Duration::days(30),
            max_memories: 2_000,
            insights: InsightConfig::default(),
        }
    }
}

/// Usage of a tenant over the last days.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UsageSummary {
    pub days: u32,
    /// Memories created and searches made per day, oldest first; days without activity are
    /// included with zeros.
    pub growth: Vec<DailyGrowth>,
    pub memories_created: u64,
    pub searches: u64,
    pub live_memories: u64,
    /// Live memories per category, largest first.
    pub top_categories: Vec<CategoryCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DailyGrowth {
    pub day: NaiveDate,
    pub memories_created: u64,
    pub searches: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CategoryCount {
    pub category: Category,
    pub count: u64,
}

pub struct AnalyticsService {
    analytics: Arc<dyn AnalyticsRepository>,
    memories: Arc<dyn MemoryRepository>,
    settings: AnalyticsSettings,
    events: Option<EventPublisher>,
    /// Guards runs asked for through the API; `None` runs them unguarded.
    on_demand: Option<OnDemandRuns>,
    /// Each tenant's own insight lifetime and confidence floor, when it sets them.
    tenant_settings: Option<Arc<TenantSettingsService>>,
}

impl AnalyticsService {
    pub fn new(
        analytics: Arc<dyn AnalyticsRepository>,
        memories: Arc<dyn MemoryRepository>,
        settings: AnalyticsSettings,
    ) -> Self {
        Self {
            analytics,
            memories,
            settings,
            events: None,
            on_demand: None,
            tenant_settings: None,
        }
    }

    /// Runs follow each tenant's own insight lifetime and confidence floor from its settings
    /// (`spec.analytics.insightTtl`, `spec.analytics.confidenceThreshold`).
    pub fn with_tenant_settings(mut self, settings: Arc<TenantSettingsService>) -> Self {
        self.tenant_settings = Some(settings);
        self
    }

    /// Runs asked for through the API go one at a time per tenant and at most once per
    /// `min_interval` (claimed in `lock`, shared by the replicas when it is Redis).
    pub fn with_on_demand_runs(
        mut self,
        lock: Arc<dyn RunLock>,
        min_interval: StdDuration,
    ) -> Self {
        self.on_demand = Some(OnDemandRuns::new(lock, min_interval));
        self
    }

    /// A run asked for through the API: refused (409) while one of the tenant's runs is in
    /// progress or within the minimum interval of the last.
    pub async fn run_on_demand(&self, tenant: &Tenant) -> Result<RunReport, ServiceError> {
        let _admitted = match &self.on_demand {
            Some(runs) => Some(runs.admit(tenant.tenant_id).await?),
            None => None,
        };
        self.run(tenant, Utc::now()).await
    }

    /// Records PATTERN_DETECTED and INSIGHT_GENERATED events of runs.
    pub fn with_events(mut self, events: EventPublisher) -> Self {
        self.events = Some(events);
        self
    }

    pub fn repository(&self) -> &Arc<dyn AnalyticsRepository> {
        &self.analytics
    }

    pub fn settings(&self) -> &AnalyticsSettings {
        &self.settings
    }

    /// Unexpired insights at or above `confidence_threshold` (default 0.7), most confident
    /// first.
    pub async fn insights(
        &self,
        scope: &TenantScope,
        insight_type: Option<InsightType>,
        confidence_threshold: Option<f64>,
        limit: Option<u64>,
    ) -> Result<Vec<PredictiveInsight>, ServiceError> {
        let threshold = confidence_threshold.unwrap_or(DEFAULT_CONFIDENCE_THRESHOLD);
        if !(0.0..=1.0).contains(&threshold) {
            return Err(InputError::Invalid {
                field: "confidence_threshold",
                reason: "must be between 0 and 1".to_string(),
            }
            .into());
        }
        let query = InsightQuery {
            insight_type,
            min_confidence: threshold,
            now: Utc::now(),
            limit: page_limit(limit, 50)?,
        };
        Ok(self.analytics.insights(&scope.tenant.name, &query).await?)
    }

    pub async fn set_action_taken(
        &self,
        scope: &TenantScope,
        insight: Uuid,
        taken: bool,
    ) -> Result<PredictiveInsight, ServiceError> {
        self.analytics
            .set_action_taken(&scope.tenant.name, insight, taken, Utc::now())
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("insight {insight}")))
    }

    /// Events, newest first. A caller limited to its own memories sees only its own events.
    pub async fn events(
        &self,
        scope: &TenantScope,
        mut query: EventQuery,
    ) -> Result<Vec<AnalyticsEvent>, ServiceError> {
        query.limit = page_limit(Some(query.limit), 50)?;
        if let Some(owner) = scope.owner_only {
            match query.user_id {
                Some(asked) if asked != owner => return Ok(Vec::new()),
                _ => query.user_id = Some(owner),
            }
        }
        Ok(self.analytics.events(&scope.tenant.name, &query).await?)
    }

    pub async fn summary(
        &self,
        scope: &TenantScope,
        days: Option<u32>,
    ) -> Result<UsageSummary, ServiceError> {
        let days = days.unwrap_or(30);
        if days == 0 || days > MAX_SUMMARY_DAYS {
            return Err(InputError::Invalid {
                field: "days",
                reason: format!("must be between 1 and {MAX_SUMMARY_DAYS}"),
            }
            .into());
        }
        let today = Utc::now().date_naive();
        let first = today - Duration::days(i64::from(days) - 1);
        let since = first
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or_else(Utc::now);
        let tenant = &scope.tenant.name;
        let usage = self.analytics.usage(tenant, since).await?;
        let live_memories = self.memories.count_live(tenant).await?;
        let growth: Vec<DailyGrowth> = first
            .iter_days()
            .take_while(|day| *day <= today)
            .map(|day| {
                let found = usage.days.iter().find(|d| d.day == Some(day));
                DailyGrowth {
                    day,
                    memories_created: found.map_or(0, |d| d.memories_created),
                    searches: found.map_or(0, |d| d.searches),
                }
            })
            .collect();
        Ok(UsageSummary {
            days,
            memories_created: growth.iter().map(|d| d.memories_created).sum(),
            searches: growth.iter().map(|d| d.searches).sum(),
            growth,
            live_memories,
            top_categories: usage
                .categories
                .into_iter()
                .map(|(category, count)| CategoryCount { category, count })
                .collect(),
        })
    }

    /// Relationships of a live memory the caller may see, to memories it may also see.
    pub async fn relationships(
        &self,
        scope: &TenantScope,
        memory: Uuid,
    ) -> Result<Vec<MemoryRelationship>, ServiceError> {
        let tenant = &scope.tenant.name;
        match self.memories.find(tenant, memory).await? {
            Some(found) if !found.is_deleted && scope.sees(&found) => {}
            _ => return Err(ServiceError::NotFound(format!("memory {memory}"))),
        }
        let relationships = self.analytics.relationships_of(tenant, memory).await?;
        let others: Vec<Uuid> = relationships
            .iter()
            .map(|r| {
                if r.source_memory_id == memory {
                    r.target_memory_id
                } else {
                    r.source_memory_id
                }
            })
            .collect();
        let visible: Vec<Uuid> = self
            .memories
            .find_live(tenant, &others)
            .await?
            .into_iter()
            .filter(|m| scope.sees(m))
            .map(|m| m.memory_id)
            .collect();
        Ok(relationships
            .into_iter()
            .zip(others)
            .filter(|(_, other)| visible.contains(other))
            .map(|(relationship, _)| relationship)
            .collect())
    }

    /// Every change of a memory the caller may see, deleted or not, oldest first.
    /// One page of a memory's history, oldest first: at most `limit` entries (1..100, default
    /// 50) and about [`MAX_HISTORY_PAGE_BYTES`] of them, after the entry `after`. The second
    /// value is the cursor of the next page, `None` on the last.
    pub async fn history(
        &self,
        scope: &TenantScope,
        memory: Uuid,
        after: Option<Uuid>,
        limit: Option<u64>,
    ) -> Result<(Vec<HistoryEntry>, Option<Uuid>), ServiceError> {
        let limit = page_limit(limit, 50)?;
        let tenant = &scope.tenant.name;
        match self.memories.find(tenant, memory).await? {
            Some(found) if scope.sees(&found) => {}
            _ => return Err(ServiceError::NotFound(format!("memory {memory}"))),
        }
        // One more than asked says whether another page follows.
        let mut entries = self
            .analytics
            .history(tenant, memory, after, limit + 1)
            .await?;
        let mut more = entries.len() as u64 > limit;
        entries.truncate(limit as usize);
        let mut bytes = 0;
        let fits = entries
            .iter()
            .position(|entry| {
                bytes += serde_json::to_vec(entry).map_or(0, |json| json.len());
                bytes > MAX_HISTORY_PAGE_BYTES
            })
            .unwrap_or(entries.len())
            .max(1);
        if fits < entries.len() {
            entries.truncate(fits);
            more = true;
        }
        let next = more
            .then(|| entries.last().map(|entry| entry.history_id))
            .flatten();
        Ok((entries, next))
    }

    /// Announces what a run produced: PATTERN_DETECTED per pattern, INSIGHT_GENERATED per
    /// insight.
    fn publish_run(&self, tenant: &Tenant, insights: &[PredictiveInsight], now: DateTime<Utc>) {
        let Some(events) = &self.events else { return };
        for insight in insights {
            let mut types = vec![EventType::InsightGenerated];
            if insight.insight_type == InsightType::Pattern {
                types.push(EventType::PatternDetected);
            }
            for event_type in types {
                events.publish(TenantEvent {
                    tenant: tenant.name.clone(),
                    tenant_id: Some(tenant.tenant_id),
                    isolation: tenant.isolation,
                    event: AnalyticsEvent {
                        event_id: Uuid::now_v7(),
                        event_type,
                        user_id: insight.user_id,
                        memory_id: None,
                        event_data: serde_json::json!({
                            "insight_id": insight.insight_id,
                            "insight_type": insight.insight_type,
                            "confidence": insight.confidence,
                            "supporting_memories": insight.supporting_memories.len(),
                        }),
                        timestamp: now,
                        session_id: None,
                    },
                });
            }
        }
    }
}

/// Most searches one run reads.
const MAX_SEARCHES: u64 = 10_000;
/// Most never-read old memories one run reads.
const MAX_UNREAD: u64 = 500;
/// Most contradictions one run reads.
const MAX_CONTRADICTIONS: u64 = 500;
/// Most unexpired insights compared against, to skip repeating them.
const MAX_KNOWN_INSIGHTS: u64 = 10_000;

#[async_trait]
impl AnalyticsRunner for AnalyticsService {
    /// Prunes expired insights, then draws new ones from the recent window: patterns,
    /// recommendations and risks. Insights still valid and saying the same are not repeated.
    async fn run(&self, tenant: &Tenant, now: DateTime<Utc>) -> Result<RunReport, ServiceError> {
        let name = &tenant.name;
        let pruned = self.analytics.prune_insights(name, now).await?;
        let since = now - self.settings.window;
        let snapshots = self
            .analytics
            .recent_memories(name, since, self.settings.max_memories)
            .await?;
        let unread = self
            .analytics
            .unread_memories(name, now - self.settings.insights.stale_after, MAX_UNREAD)
            .await?;
        let search_events = self
            .analytics
            .events(
                name,
                &EventQuery {
                    event_type: Some(EventType::SearchPerformed),
                    since: Some(since),
                    limit: MAX_SEARCHES,
                    ..EventQuery::default()
                },
            )
            .await?;
        let searches: Vec<_> = search_events
            .iter()
            .filter_map(generate::search_record)
            .collect();
        let contradictions: Vec<(Uuid, Uuid, String)> = self
            .analytics
            .relationships_of_type(name, RelationshipType::Contradicts, MAX_CONTRADICTIONS)
            .await?
            .into_iter()
            .map(|r| {
                (
                    r.source_memory_id,
                    r.target_memory_id,
                    r.context.unwrap_or_default(),
                )
            })
            .collect();
        let known = self
            .analytics
            .insights(
                name,
                &InsightQuery {
                    insight_type: None,
                    min_confidence: 0.0,
                    now,
                    limit: MAX_KNOWN_INSIGHTS,
                },
            )
            .await?;
        // Comparing memories pairwise is CPU work: it runs on a blocking thread, not on the
        // runtime that serves requests.
        let config = self.settings.insights.clone();
        let own = match &self.tenant_settings {
            Some(settings) => Some(settings.settings(tenant.tenant_id).await?),
            None => None,
        };
        let ttl = own
            .as_ref()
            .and_then(|own| own.insight_ttl_hours)
            .map_or(self.settings.insight_ttl, |hours| {
                Duration::hours(i64::from(hours))
            });
        let min_confidence = own
            .as_ref()
            .and_then(|own| own.insight_min_confidence)
            .unwrap_or(0.0);
        let memories_analysed = snapshots.len();
        let fresh = tokio::task::spawn_blocking(move || {
            let mut fresh: Vec<PredictiveInsight> = Vec::new();
            let mut keys = std::collections::HashSet::new();
            for draft in generate::drafts(
                &snapshots,
                &unread,
                &searches,
                &contradictions,
                now,
                &config,
            ) {
                if generate::already_known(&draft, &known) || !keys.insert(draft.key.clone()) {
                    continue;
                }
                let insight = generate::insight(draft, now, ttl);
                if insight.confidence >= min_confidence {
                    fresh.push(insight);
                }
            }
            fresh
        })
        .await
        .map_err(|error| {
            ServiceError::Store(StoreError::Unavailable(format!(
                "the analytics run stopped: {error}"
            )))
        })?;
        self.analytics.save_insights(name, &fresh).await?;
        self.publish_run(tenant, &fresh, now);
        Ok(RunReport {
            insights: fresh,
            pruned,
            memories_analysed,
        })
    }
}

fn page_limit(limit: Option<u64>, default: u64) -> Result<u64, ServiceError> {
    let limit = limit.unwrap_or(default);
    if limit == 0 || limit > MAX_PAGE {
        return Err(InputError::Invalid {
            field: "limit",
            reason: format!("must be between 1 and {MAX_PAGE}"),
        }
        .into());
    }
    Ok(limit)
}
