//! Synchronises a GitHub Projects (v2) board into a tenant's memories. A sync reads the board
//! page by page (100 items a request) and writes only what changed: a new item becomes a
//! memory, a changed one updates its memory in place (history keeps the change), an unchanged
//! one is only marked seen. When a pass has read the last page, the memories of items it did
//! not see (removed or archived on the board) are soft-deleted. The pass's cursor is saved after
//! every page: a rate limit or a crash stops a sync, the next run goes on from there.
//!
//! The memories are written through the memory service (PII policy, quota, events, cache), as
//! the integration's own user: `user_id` is the integration's id. Memories that name an item's
//! `owner/repo#N` or URL are linked to it by REFERENCES when the tenant's events are analysed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Deserialize;
use uuid::Uuid;

use super::client::{GitHubClient, GitHubError, ProjectRef};
use super::mapping::{ItemMemory, memory_of};
use super::types::ProjectItem;
use crate::auth::scope::TenantScope;
use crate::services::ServiceError;
use crate::services::analytics::schedule::Schedule;
use crate::services::known_tenants::KnownTenants;
use crate::services::memory_service::{CreateMemory, MemoryService, UpdateMemory};
use crate::services::tenant_service::TenantService;
use crate::stores::sync_state::{SyncProgress, SyncStore, SyncedItem};
use crate::stores::{Integration, IntegrationStore, Outcome, StoreError, TenantUser};

/// The integration kind this module synchronises.
pub const GITHUB_KIND: &str = "GitHubProjects";
/// When a binding gives no `syncSchedule`: every hour, on the hour.
pub const DEFAULT_SCHEDULE: &str = "0 * * * *";
/// How long a sync holds its lease without saving progress.
const LEASE: Duration = Duration::from_secs(300);

/// A GitHubProjects integration's settings, as the IntegrationBinding spells them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GitHubSettings {
    pub owner: String,
    pub project_number: i64,
}

impl GitHubSettings {
    pub fn project(&self) -> ProjectRef {
        ProjectRef {
            owner: self.owner.clone(),
            number: self.project_number,
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct SyncReport {
    /// Items read from the board in this run.
    pub items_seen: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Memories soft-deleted because their item left the board (or was archived).
    pub removed: u64,
    /// Items the tenant's policies refused (PII policy, quota); retried on the next pass.
    pub refused: u64,
    /// Requests sent to GitHub, retries included.
    pub requests: u64,
    /// Whether the run read the board to its end; a paused run goes on from its cursor.
    pub complete: bool,
    /// When a paused run goes on (GitHub's rate limit resets).
    pub resumes_at: Option<DateTime<Utc>>,
    /// GitHub's points left this hour after the run.
    pub rate_limit_remaining: Option<i64>,
    /// Why items were refused, one line per item (the first few).
    pub refusals: Vec<String>,
}

/// Why a sync did not run or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("a sync of this integration is running")]
    Busy,
    #[error("only GitHubProjects integrations are synchronised")]
    NotSynchronised,
    #[error("the integration's settings: {0}")]
    Settings(String),
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for SyncError {
    fn from(error: StoreError) -> Self {
        SyncError::Service(error.into())
    }
}

/// Items of a page written at once.
const ITEMS_AT_ONCE: usize = 32;
/// Most refusal reasons a report lists.
const MAX_REFUSALS: usize = 20;

pub struct GitHubSync {
    client: GitHubClient,
    store: Arc<dyn SyncStore>,
    integrations: Arc<dyn IntegrationStore>,
    memories: Arc<MemoryService>,
    tenants: Arc<KnownTenants>,
    /// Where the integration's own user is added.
    users: Arc<TenantService>,
}

impl GitHubSync {
    pub fn new(
        client: GitHubClient,
        store: Arc<dyn SyncStore>,
        integrations: Arc<dyn IntegrationStore>,
        memories: Arc<MemoryService>,
        tenants: Arc<KnownTenants>,
        users: Arc<TenantService>,
    ) -> Self {
        Self {
            client,
            store,
            integrations,
            memories,
            tenants,
            users,
        }
    }

    pub fn store(&self) -> &Arc<dyn SyncStore> {
        &self.store
    }

    /// Runs (or goes on with) the integration's sync; records the outcome in its state.
    pub async fn run(&self, integration: &Integration) -> Result<SyncReport, SyncError> {
        if integration.record.kind != GITHUB_KIND {
            return Err(SyncError::NotSynchronised);
        }
        let now = Utc::now();
        let Some(progress) = self
            .store
            .claim_sync(integration.integration_id, now, now + lease())
            .await?
        else {
            return Err(SyncError::Busy);
        };
        let mut report = SyncReport::default();
        let result = self.run_claimed(integration, progress, &mut report).await;
        let at = Utc::now();
        let id = integration.integration_id;
        let next_run = match &result {
            Ok(()) if !report.complete => report.resumes_at,
            _ => next_scheduled(integration, at),
        };
        match &result {
            Ok(()) => {
                self.integrations
                    .record_outcome(id, &Outcome::Reached { items: 0 }, at)
                    .await?;
                let live = self.store.count_live_items(id).await?;
                self.store
                    .set_items_synced(id, i64::try_from(live).unwrap_or(i64::MAX))
                    .await?;
                if let Some(until) = report.resumes_at {
                    let message = format!(
                        "paused by GitHub's rate limit until {until}; the sync goes on from where it stopped"
                    );
                    self.store.note(id, &message).await?;
                } else if let Some(first) = report.refusals.first() {
                    let message = format!("{} item(s) refused: {first}", report.refused);
                    self.store.note(id, &message).await?;
                }
            }
            Err(error) => {
                let outcome = Outcome::Failed {
                    error: error.to_string(),
                };
                self.integrations.record_outcome(id, &outcome, at).await?;
            }
        }
        self.store.release_sync(id, next_run).await?;
        tracing::info!(
            integration = %integration.record.name,
            ?report,
            error = result.as_ref().err().map(|e| e.to_string()),
            "GitHub sync ran"
        );
        result.map(|()| report)
    }

    async fn run_claimed(
        &self,
        integration: &Integration,
        mut progress: SyncProgress,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let settings = settings_of(integration)?;
        let project = settings.project();
        let scope = self.scope(integration).await?;
        let token = integration
            .record
            .secret
            .as_deref()
            .ok_or_else(|| SyncError::Settings("no GitHub token".to_string()))?;
        let mut session = self.client.session(token);
        if progress.cursor.is_none() {
            progress.pass += 1;
        }
        let id = integration.integration_id;
        loop {
            let page = session
                .project_items(&project, progress.cursor.as_deref())
                .await;
            report.requests = session.requests;
            report.rate_limit_remaining = session.last_rate_limit.map(|limit| limit.remaining);
            let page = match page {
                Ok(page) => page,
                Err(GitHubError::RateLimited { until }) => {
                    report.resumes_at = Some(until);
                    return Ok(());
                }
                Err(error) => return Err(error.into()),
            };
            progress.external_id = Some(page.id.clone());
            let items: Vec<ProjectItem> = page.items.nodes.into_iter().flatten().collect();
            self.apply_page(&scope, id, &project, progress.pass, &items, report)
                .await?;
            let info = page.items.page_info;
            progress.cursor = info.end_cursor.filter(|_| info.has_next_page);
            let more = progress.cursor.is_some();
            self.store
                .save_progress(id, &progress, Utc::now() + lease())
                .await?;
            if !more {
                break;
            }
            // The next page would cost what this one did: stop before GitHub refuses it.
            if let Some(limit) = session.last_rate_limit
                && limit.remaining < limit.cost.max(1)
            {
                report.resumes_at = Some(limit.reset_at);
                return Ok(());
            }
        }
        report.removed += self.remove_unseen(&scope, id, progress.pass).await?;
        report.complete = true;
        Ok(())
    }

    /// Writes a page's items: creates, updates or only marks seen.
    async fn apply_page(
        &self,
        scope: &TenantScope,
        integration_id: Uuid,
        project: &ProjectRef,
        pass: i64,
        items: &[ProjectItem],
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let ids: Vec<String> = items.iter().map(|item| item.id.clone()).collect();
        let known = self.store.synced_items(integration_id, &ids).await?;
        let mut unchanged = Vec::new();
        // Several items at once: their texts are embedded in batches, their writes overlap.
        let mut pending = Vec::with_capacity(items.len());
        for item in items {
            let record = known.iter().find(|record| record.item_id == item.id);
            pending.push(self.apply_item(scope, integration_id, project, pass, item, record));
        }
        let applied: Vec<Result<Applied, ServiceError>> = futures::stream::iter(pending)
            .buffered(ITEMS_AT_ONCE)
            .collect()
            .await;
        for (item, applied) in items.iter().zip(applied) {
            report.items_seen += 1;
            match applied {
                Ok(Applied::Unchanged) => {
                    report.unchanged += 1;
                    unchanged.push(item.id.clone());
                }
                Ok(Applied::Created) => report.created += 1,
                Ok(Applied::Updated) => report.updated += 1,
                Ok(Applied::Removed) => report.removed += 1,
                Ok(Applied::Skipped) => {}
                Err(refusal) if is_refusal(&refusal) => {
                    report.refused += 1;
                    if report.refusals.len() < MAX_REFUSALS {
                        report.refusals.push(format!("item {}: {refusal}", item.id));
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
        self.store
            .mark_items_seen(integration_id, &unchanged, pass)
            .await?;
        Ok(())
    }

    /// Brings one item's memory up to date.
    async fn apply_item(
        &self,
        scope: &TenantScope,
        integration_id: Uuid,
        project: &ProjectRef,
        pass: i64,
        item: &ProjectItem,
        record: Option<&SyncedItem>,
    ) -> Result<Applied, ServiceError> {
        let live = record.filter(|record| !record.removed);
        let Some(wanted) = memory_of(item, project) else {
            // Archived, or content the token cannot see: not kept.
            return match live {
                Some(record) => {
                    self.remove(scope, record).await?;
                    Ok(Applied::Removed)
                }
                None => Ok(Applied::Skipped),
            };
        };
        if let Some(record) = live
            && record.fingerprint == wanted.fingerprint
        {
            return Ok(Applied::Unchanged);
        }
        let (memory_id, applied) = match live {
            Some(record) => match self.update(scope, record.memory_id, &wanted).await {
                Ok(()) => (record.memory_id, Applied::Updated),
                // Deleted or erased by someone since: the item comes back as a new memory.
                Err(ServiceError::NotFound(_)) => {
                    (self.create(scope, &wanted).await?, Applied::Created)
                }
                Err(error) => return Err(error),
            },
            None => (self.create(scope, &wanted).await?, Applied::Created),
        };
        let now = Utc::now();
        self.store
            .save_synced_item(&SyncedItem {
                integration_id,
                item_id: item.id.clone(),
                content_id: wanted.content_id.clone(),
                memory_id,
                fingerprint: wanted.fingerprint.clone(),
                item_updated_at: item.updated_at,
                seen_pass: pass,
                removed: false,
                updated_at: now,
            })
            .await?;
        Ok(applied)
    }

    async fn create(&self, scope: &TenantScope, wanted: &ItemMemory) -> Result<Uuid, ServiceError> {
        let (memory, _) = self
            .memories
            .create(
                scope,
                CreateMemory {
                    content: wanted.content.clone(),
                    category: Some(wanted.category),
                    metadata: Some(wanted.metadata.clone()),
                },
            )
            .await?;
        Ok(memory.memory_id)
    }

    async fn update(
        &self,
        scope: &TenantScope,
        memory_id: Uuid,
        wanted: &ItemMemory,
    ) -> Result<(), ServiceError> {
        self.memories
            .update(
                scope,
                memory_id,
                UpdateMemory {
                    content: Some(wanted.content.clone()),
                    category: Some(wanted.category),
                    metadata: Some(wanted.metadata.clone()),
                },
            )
            .await
            .map(|_| ())
    }

    /// Soft-deletes an item's memory (gone already is fine) and marks the item removed.
    async fn remove(&self, scope: &TenantScope, record: &SyncedItem) -> Result<(), ServiceError> {
        match self.memories.delete(scope, record.memory_id, false).await {
            Ok(()) | Err(ServiceError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
        self.store
            .mark_item_removed(record.integration_id, &record.item_id, Utc::now())
            .await?;
        Ok(())
    }

    /// Removes the memories of items the finished pass did not see.
    async fn remove_unseen(
        &self,
        scope: &TenantScope,
        integration_id: Uuid,
        pass: i64,
    ) -> Result<u64, SyncError> {
        let unseen = self.store.unseen_items(integration_id, pass).await?;
        for record in &unseen {
            self.remove(scope, record).await?;
        }
        Ok(unseen.len() as u64)
    }

    /// The tenant, acted in as the integration's own user.
    async fn scope(&self, integration: &Integration) -> Result<TenantScope, SyncError> {
        let tenant = self
            .tenants
            .by_id(integration.tenant_id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("tenant {}", integration.tenant_id)))?;
        let user = TenantUser {
            user_id: integration.integration_id,
            username: format!("integration-{}", integration.integration_id.simple()),
            email: None,
        };
        self.users.ensure_user(&tenant.name, &user).await?;
        Ok(TenantScope {
            tenant,
            user_id: integration.integration_id,
            owner_only: None,
            session_id: None,
        })
    }

    /// Brings one item up to date at once (GitHub reported a change to it): fetched again, or
    /// its memory removed when GitHub no longer has it. What happened, for the sender.
    pub async fn refresh_item(
        &self,
        integration: &Integration,
        item_id: &str,
    ) -> Result<&'static str, SyncError> {
        let settings = settings_of(integration)?;
        let project = settings.project();
        let scope = self.scope(integration).await?;
        let token = integration
            .record
            .secret
            .as_deref()
            .ok_or_else(|| SyncError::Settings("no GitHub token".to_string()))?;
        let id = integration.integration_id;
        let record = self
            .store
            .synced_items(id, &[item_id.to_string()])
            .await?
            .into_iter()
            .next();
        let mut session = self.client.session(token);
        let found = session.project_item(item_id).await?;
        let Some(found) = found else {
            return Ok(match record.filter(|record| !record.removed) {
                Some(record) => {
                    self.remove(&scope, &record).await?;
                    "removed"
                }
                None => "ignored",
            });
        };
        if integration.state.external_id.as_deref() != Some(found.project.id.as_str()) {
            return Ok("ignored");
        }
        let pass = self.current_pass(integration);
        let applied = self
            .apply_item(&scope, id, &project, pass, &found.item, record.as_ref())
            .await?;
        let live = self.store.count_live_items(id).await?;
        self.store
            .set_items_synced(id, i64::try_from(live).unwrap_or(i64::MAX))
            .await?;
        Ok(applied.as_str())
    }

    /// Removes an item's memory at once (GitHub reported it deleted or archived).
    pub async fn remove_item(
        &self,
        integration: &Integration,
        item_id: &str,
    ) -> Result<&'static str, SyncError> {
        let scope = self.scope(integration).await?;
        let id = integration.integration_id;
        let record = self
            .store
            .synced_items(id, &[item_id.to_string()])
            .await?
            .into_iter()
            .find(|record| !record.removed);
        match record {
            Some(record) => {
                self.remove(&scope, &record).await?;
                Ok("removed")
            }
            None => Ok("ignored"),
        }
    }

    /// The pass items refreshed between syncs count as seen by: the running one, which has
    /// not been saved as a new pass yet when no cursor is kept.
    fn current_pass(&self, integration: &Integration) -> i64 {
        integration.state.sync_pass.max(1)
    }
}

/// What became of one item.
enum Applied {
    Created,
    Updated,
    Unchanged,
    Removed,
    Skipped,
}

impl Applied {
    fn as_str(&self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Updated => "updated",
            Applied::Unchanged => "unchanged",
            Applied::Removed => "removed",
            Applied::Skipped => "ignored",
        }
    }
}

/// Refusals of one item by the tenant's own rules; the sync goes on without it.
fn is_refusal(error: &ServiceError) -> bool {
    matches!(
        error,
        ServiceError::Input(_)
            | ServiceError::PiiRejected { .. }
            | ServiceError::QuotaExceeded { .. }
    )
}

pub fn settings_of(integration: &Integration) -> Result<GitHubSettings, SyncError> {
    serde_json::from_value(integration.record.settings.clone())
        .map_err(|error| SyncError::Settings(error.to_string()))
}

/// When the integration's schedule next runs it after `now`.
pub fn next_scheduled(integration: &Integration, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let expression = integration
        .record
        .sync_schedule
        .as_deref()
        .unwrap_or(DEFAULT_SCHEDULE);
    match Schedule::parse(expression) {
        Ok(schedule) => schedule.next_after(now),
        Err(error) => {
            tracing::warn!(%error, integration = %integration.record.name, "unusable sync schedule; hourly instead");
            Schedule::parse(DEFAULT_SCHEDULE)
                .ok()
                .and_then(|schedule| schedule.next_after(now))
        }
    }
}

fn lease() -> chrono::Duration {
    chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::MAX)
}
