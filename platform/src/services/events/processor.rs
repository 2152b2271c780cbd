//! What a consumer does with events: store them (idempotently) and derive relationships for
//! memories that were created or changed.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use memoryc_crds::layout::{Isolation, TenantName};
use uuid::Uuid;

use super::TenantEvent;
use crate::domain::analytics::{AnalyticsEvent, EventType};
use crate::services::ServiceError;
use crate::services::integrations::webhook::fanout::WebhookFanout;
use crate::stores::analytics::{AnalyticsRepository, RelationshipsOf};
use crate::stores::{StoreError, TenantRegistry};

/// Finds the relationships of memories (nearest neighbours and content).
#[async_trait]
pub trait RelationshipFinder: Send + Sync + 'static {
    /// What each of `memory_ids` relates to, for those that still exist and are live; a memory
    /// that is gone or deleted has nothing to relate and is left out.
    async fn find(
        &self,
        tenant: &TenantName,
        isolation: Isolation,
        memory_ids: &[Uuid],
    ) -> Result<Vec<RelationshipsOf>, ServiceError>;
}

/// Observes processed events (metrics); the default does nothing.
pub trait EventObserver: Send + Sync + 'static {
    fn processed(&self, _event: &AnalyticsEvent, _lag_seconds: f64) {}
}

struct NoObserver;
impl EventObserver for NoObserver {}

pub struct EventProcessor {
    analytics: Arc<dyn AnalyticsRepository>,
    tenants: Arc<dyn TenantRegistry>,
    relationships: Option<Arc<dyn RelationshipFinder>>,
    observer: Arc<dyn EventObserver>,
    /// Records events in the analytics tables (off when analytics are, and events flow only
    /// for webhooks).
    records: bool,
    webhooks: Option<Arc<WebhookFanout>>,
}

impl EventProcessor {
    /// Without a finder, events are only recorded (relationships switched off).
    pub fn new(
        analytics: Arc<dyn AnalyticsRepository>,
        tenants: Arc<dyn TenantRegistry>,
        relationships: Option<Arc<dyn RelationshipFinder>>,
    ) -> Self {
        Self {
            analytics,
            tenants,
            relationships,
            observer: Arc::new(NoObserver),
            records: true,
            webhooks: None,
        }
    }

    /// Events are handed to webhooks only: nothing is recorded, no relationship derived.
    pub fn without_analytics(mut self) -> Self {
        self.records = false;
        self.relationships = None;
        self
    }

    /// Turns events into webhook deliveries for the tenants' Webhook integrations.
    pub fn with_webhooks(mut self, webhooks: Arc<WebhookFanout>) -> Self {
        self.webhooks = Some(webhooks);
        self
    }

    pub fn with_observer(mut self, observer: Arc<dyn EventObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// Handles a batch. Safe to call again with the same events: stored events are skipped,
    /// relationships replaced. An error means some of the batch may not be done; the caller
    /// redelivers it.
    pub async fn handle(&self, events: &[TenantEvent]) -> Result<(), ServiceError> {
        let mut per_tenant: BTreeMap<&TenantName, Vec<&TenantEvent>> = BTreeMap::new();
        for event in events {
            per_tenant.entry(&event.tenant).or_default().push(event);
        }
        let mut failure = None;
        for (tenant, events) in per_tenant {
            let events = match self.of_current_tenant(tenant, events).await {
                Ok(events) => events,
                Err(error) => {
                    failure = Some(error);
                    continue;
                }
            };
            if events.is_empty() {
                continue;
            }
            // One tenant's trouble must not hold back the others' events.
            match self.handle_tenant(tenant, &events).await {
                Ok(()) => {}
                Err(ServiceError::Store(StoreError::UnknownTenant(_))) => {
                    tracing::warn!(%tenant, events = events.len(), "dropping events of a tenant that no longer exists");
                }
                // A deleted tenant's tables are gone (on PostgreSQL that is an error like any
                // other); its events could never be stored, so they must not come back forever.
                Err(error) if self.is_deleted(tenant).await => {
                    tracing::warn!(%tenant, events = events.len(), %error, "dropping events of a tenant that no longer exists");
                }
                Err(error) => failure = Some(error),
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// The events that belong to the tenant registered under `tenant` now: those of a deleted
    /// tenant whose name was taken again are dropped, never written into the new one's tables.
    async fn of_current_tenant<'a>(
        &self,
        tenant: &TenantName,
        events: Vec<&'a TenantEvent>,
    ) -> Result<Vec<&'a TenantEvent>, ServiceError> {
        if events.iter().all(|event| event.tenant_id.is_none()) {
            return Ok(events);
        }
        let current = self
            .tenants
            .find_by_name(tenant)
            .await?
            .map(|registered| registered.tenant_id);
        let (kept, dropped): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|event| event.tenant_id.is_none() || event.tenant_id == current);
        if !dropped.is_empty() {
            tracing::warn!(%tenant, events = dropped.len(), "dropping events of a deleted tenant whose name was taken again");
        }
        Ok(kept)
    }

    /// True only when the registry answers that the tenant is gone; when it cannot answer,
    /// the events are kept.
    async fn is_deleted(&self, tenant: &TenantName) -> bool {
        matches!(self.tenants.find_by_name(tenant).await, Ok(None))
    }

    async fn handle_tenant(
        &self,
        tenant: &TenantName,
        events: &[&TenantEvent],
    ) -> Result<(), ServiceError> {
        if let Some(webhooks) = &self.webhooks {
            let tenant_id = match events.iter().find_map(|event| event.tenant_id) {
                Some(id) => Some(id),
                None => self
                    .tenants
                    .find_by_name(tenant)
                    .await?
                    .map(|registered| registered.tenant_id),
            };
            if let Some(tenant_id) = tenant_id {
                webhooks.enqueue(tenant, tenant_id, events).await?;
            }
        }
        if self.records {
            let rows: Vec<AnalyticsEvent> = events.iter().map(|e| e.event.clone()).collect();
            self.analytics.record_events(tenant, &rows).await?;
            if let Some(finder) = &self.relationships {
                // Each changed memory once per batch, whatever the number of its events, and
                // all of them in one search and one write per isolation layout.
                let mut changed: Vec<(Isolation, Vec<Uuid>)> = Vec::new();
                let mut seen: HashSet<Uuid> = HashSet::new();
                for event in events {
                    let relevant = matches!(
                        event.event.event_type,
                        EventType::MemoryCreated | EventType::MemoryUpdated
                    );
                    if let (true, Some(id)) = (relevant, event.event.memory_id)
                        && seen.insert(id)
                    {
                        match changed
                            .iter_mut()
                            .find(|(layout, _)| *layout == event.isolation)
                        {
                            Some((_, ids)) => ids.push(id),
                            None => changed.push((event.isolation, vec![id])),
                        }
                    }
                }
                for (isolation, memory_ids) in changed {
                    let found = finder.find(tenant, isolation, &memory_ids).await?;
                    self.analytics
                        .replace_relationships(tenant, &found, Utc::now())
                        .await?;
                }
            }
            let now = Utc::now();
            for event in events {
                let lag = (now - event.event.timestamp).num_milliseconds().max(0) as f64 / 1e3;
                self.observer.processed(&event.event, lag);
            }
        }
        Ok(())
    }
}
