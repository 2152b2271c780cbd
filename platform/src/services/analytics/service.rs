//! Reads of a tenant's analytics (insights, events, usage, a memory's relationships and
//! history) and the analytics run itself.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::RunReport;
use super::scheduler::AnalyticsRunner;
use crate::domain::Category;
use crate::domain::analytics::{
    AnalyticsEvent, HistoryEntry, InsightType, MemoryRelationship, PredictiveInsight,
};
use crate::domain::validation::InputError;
use crate::services::ServiceError;
use crate::services::events::EventPublisher;
use crate::services::memory_service::TenantScope;
use crate::stores::analytics::{AnalyticsRepository, EventQuery, InsightQuery};
use crate::stores::{MemoryRepository, Tenant};

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
    /// Most recent memories one run looks at.
    pub max_memories: u64,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        Self {
            insight_ttl: Duration::hours(168),
            window: Duration::days(30),
            max_memories: 5_000,
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
        }
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

    pub fn events_publisher(&self) -> Option<&EventPublisher> {
        self.events.as_ref()
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
    pub async fn history(
        &self,
        scope: &TenantScope,
        memory: Uuid,
    ) -> Result<Vec<HistoryEntry>, ServiceError> {
        let tenant = &scope.tenant.name;
        match self.memories.find(tenant, memory).await? {
            Some(found) if scope.sees(&found) => {}
            _ => return Err(ServiceError::NotFound(format!("memory {memory}"))),
        }
        Ok(self.analytics.history(tenant, memory).await?)
    }

    /// Removes expired insights; the rest of a run is in `generate`.
    async fn prune(&self, tenant: &Tenant, now: DateTime<Utc>) -> Result<u64, ServiceError> {
        Ok(self.analytics.prune_insights(&tenant.name, now).await?)
    }
}

#[async_trait]
impl AnalyticsRunner for AnalyticsService {
    async fn run(&self, tenant: &Tenant, now: DateTime<Utc>) -> Result<RunReport, ServiceError> {
        let pruned = self.prune(tenant, now).await?;
        Ok(RunReport {
            pruned,
            ..RunReport::default()
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
