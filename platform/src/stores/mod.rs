//! Storage behind traits: relational (the source of truth) and vector backends.
//!
//! Services talk to these traits only; which database sits behind them is configuration.

pub mod analytics;
pub mod cache;
pub mod error;
pub mod event_stream;
pub mod group_write;
pub mod rate_counter;
pub mod relational;
pub mod run_lock;
pub mod sync_state;
pub mod vector;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memoryc_crds::layout::{Isolation, TenantName};
use uuid::Uuid;

pub use error::StoreError;

use crate::domain::{Memory, MemoryFilter, MemoryPatch, NewMemory};

/// What the vector store needs to mirror one memory.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSource {
    pub memory: Memory,
    pub embedding: Option<Vec<f32>>,
}

/// A tenant's memories in the relational store. Every call names the tenant explicitly.
#[async_trait]
pub trait MemoryRepository: Send + Sync + 'static {
    /// Stores a new memory and the first entry of its history (made by its owner).
    async fn insert(&self, tenant: &TenantName, memory: &NewMemory) -> Result<Memory, StoreError>;

    /// The memory, deleted or not.
    async fn find(&self, tenant: &TenantName, id: Uuid) -> Result<Option<Memory>, StoreError>;

    /// The live memories among `ids`, in no particular order.
    async fn find_live(&self, tenant: &TenantName, ids: &[Uuid])
    -> Result<Vec<Memory>, StoreError>;

    /// Live memories passing `filter`, newest first.
    async fn list(
        &self,
        tenant: &TenantName,
        filter: &MemoryFilter,
        limit: u64,
    ) -> Result<Vec<Memory>, StoreError>;

    /// Live memories whose content contains `text` (case-insensitive), newest first.
    async fn search_text(
        &self,
        tenant: &TenantName,
        text: &str,
        filter: &MemoryFilter,
        limit: u64,
    ) -> Result<Vec<Memory>, StoreError>;

    /// Applies `patch` to a live memory and records the change in its history, made by
    /// `actor`; `None` when there is no such live memory.
    async fn update(
        &self,
        tenant: &TenantName,
        id: Uuid,
        patch: &MemoryPatch,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<Memory>, StoreError>;

    /// Marks a live memory deleted, drops its embedding and records the deletion in its
    /// history, made by `actor`; false when there was none.
    async fn soft_delete(
        &self,
        tenant: &TenantName,
        id: Uuid,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Erases the memory and everything that mentions it (events, relationships, insights,
    /// history); false when it did not exist.
    async fn purge(&self, tenant: &TenantName, id: Uuid) -> Result<bool, StoreError>;

    /// Adds each count to its memory's access count, in one transaction; unknown ids are
    /// ignored.
    async fn record_accesses(
        &self,
        tenant: &TenantName,
        counts: &[(Uuid, u32)],
    ) -> Result<(), StoreError>;

    /// Adds one to the access count of a live memory and returns the new count, in one
    /// statement (`UPDATE … RETURNING`), so a read served from the cache still counts and
    /// shows the right count; `None` when there is no such live memory.
    async fn record_one_access(
        &self,
        tenant: &TenantName,
        id: Uuid,
    ) -> Result<Option<i64>, StoreError>;

    /// The memory with its stored embedding, for syncing the vector store.
    async fn vector_source(
        &self,
        tenant: &TenantName,
        id: Uuid,
    ) -> Result<Option<VectorSource>, StoreError>;

    /// [`vector_source`](Self::vector_source) of several memories in one read; ids that do not
    /// exist are left out, and the order is not that of `ids`.
    async fn vector_sources(
        &self,
        tenant: &TenantName,
        ids: &[Uuid],
    ) -> Result<Vec<VectorSource>, StoreError>;

    /// Number of live memories.
    async fn count_live(&self, tenant: &TenantName) -> Result<u64, StoreError>;

    /// Number of stored memories, soft-deleted ones included (they count against a quota until
    /// they are purged).
    async fn count_stored(&self, tenant: &TenantName) -> Result<u64, StoreError>;
}

/// A registered tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub tenant_id: Uuid,
    pub name: TenantName,
    pub display_name: String,
    pub isolation: Isolation,
    pub created_at: DateTime<Utc>,
}

/// A user inside a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantUser {
    pub user_id: Uuid,
    pub username: String,
    pub email: Option<String>,
}

/// An API key row as stored: only the hash of the secret.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredApiKey {
    pub key_id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The platform's registry of tenants, their users and API keys.
#[async_trait]
pub trait TenantRegistry: Send + Sync + 'static {
    async fn register(&self, tenant: &Tenant) -> Result<(), StoreError>;
    async fn find_by_name(&self, name: &TenantName) -> Result<Option<Tenant>, StoreError>;
    async fn find_by_id(&self, tenant_id: Uuid) -> Result<Option<Tenant>, StoreError>;
    async fn list(&self) -> Result<Vec<Tenant>, StoreError>;
    async fn remove(&self, tenant_id: Uuid) -> Result<(), StoreError>;

    /// Creates the user in the tenant's own tables.
    async fn create_user(&self, tenant: &TenantName, user: &TenantUser) -> Result<(), StoreError>;

    /// The user, if the tenant's tables have it.
    async fn find_user(
        &self,
        tenant: &TenantName,
        user_id: Uuid,
    ) -> Result<Option<TenantUser>, StoreError>;

    async fn insert_api_key(&self, key: &StoredApiKey) -> Result<(), StoreError>;
    async fn find_api_key(&self, prefix: &str) -> Result<Option<StoredApiKey>, StoreError>;
    /// The tenant's keys, newest first.
    async fn list_api_keys(&self, tenant_id: Uuid) -> Result<Vec<StoredApiKey>, StoreError>;
    /// Marks the tenant's key revoked at `at`; false when the tenant has no such live key.
    async fn revoke_api_key(
        &self,
        tenant_id: Uuid,
        key_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// How an audited request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// Allowed and answered with success.
    Allowed,
    /// Allowed, but the request itself failed (validation, not found, backend down).
    Failed,
    /// Authenticated, refused by the policy.
    Denied,
    /// No valid credential.
    Unauthenticated,
    /// Over its rate limit.
    RateLimited,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Allowed => "allowed",
            AuditOutcome::Failed => "failed",
            AuditOutcome::Denied => "denied",
            AuditOutcome::Unauthenticated => "unauthenticated",
            AuditOutcome::RateLimited => "rate_limited",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            AuditOutcome::Allowed,
            AuditOutcome::Failed,
            AuditOutcome::Denied,
            AuditOutcome::Unauthenticated,
            AuditOutcome::RateLimited,
        ]
        .into_iter()
        .find(|o| o.as_str() == value)
    }
}

/// One audit record. Never holds a secret: the credential is named by its public prefix or
/// the JWT's subject.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub audit_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub subject: Option<String>,
    pub user_id: Option<Uuid>,
    pub roles: Vec<String>,
    pub method: String,
    pub route: String,
    pub path: String,
    pub outcome: AuditOutcome,
    pub status: u16,
    pub detail: Option<serde_json::Value>,
    pub occurred_at: DateTime<Utc>,
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Stores the entries in one statement: all of them or none.
    async fn append(&self, entries: &[AuditEntry]) -> Result<(), StoreError>;
    /// The tenant's entries older than `before` (all when `None`), newest first.
    async fn page(
        &self,
        tenant_id: Uuid,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}

/// A tenant's own choices; `None` means the platform default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantSettings {
    pub pii_policy: Option<crate::domain::pii::PiiPolicy>,
    pub rate_limit_per_minute: Option<u32>,
    /// Cron expression of the tenant's analytics runs; `None` is the platform default.
    pub analytics_schedule: Option<String>,
    /// HNSW search-time candidate list size of the tenant's Milvus searches.
    pub search_ef: Option<usize>,
    /// Most memories the tenant may store, soft-deleted ones included; `None` is unlimited.
    pub max_memories: Option<u64>,
    /// How long the tenant's insights live, in hours; `None` is the platform's.
    pub insight_ttl_hours: Option<u32>,
    /// Insights below this confidence are not kept; `None` keeps every one.
    pub insight_min_confidence: Option<f64>,
    /// Requests per credential, route and second; `None` is no burst limit.
    pub rate_limit_burst: Option<u32>,
}

/// Per-tenant settings.
#[async_trait]
pub trait TenantSettingsStore: Send + Sync + 'static {
    async fn get(&self, tenant_id: Uuid) -> Result<TenantSettings, StoreError>;
    async fn set_pii_policy(
        &self,
        tenant_id: Uuid,
        policy: Option<crate::domain::pii::PiiPolicy>,
    ) -> Result<(), StoreError>;
    async fn set_rate_limit(
        &self,
        tenant_id: Uuid,
        per_minute: Option<u32>,
    ) -> Result<(), StoreError>;
    async fn set_analytics_schedule(
        &self,
        tenant_id: Uuid,
        schedule: Option<String>,
    ) -> Result<(), StoreError>;
    async fn set_search_ef(&self, tenant_id: Uuid, ef: Option<usize>) -> Result<(), StoreError>;
}

/// Tenant-specific policy rules (Casbin `p` and `g` lines) as stored.
#[async_trait]
pub trait PolicyRuleStore: Send + Sync + 'static {
    /// Every stored rule as `(ptype, values)`, oldest first.
    async fn rules(&self) -> Result<Vec<(String, Vec<String>)>, StoreError>;
    /// Stores a rule; false when it was stored already.
    async fn insert(&self, ptype: &str, values: &[String]) -> Result<bool, StoreError>;
    /// Removes the rule; false when there was none.
    async fn remove(&self, ptype: &str, values: &[String]) -> Result<bool, StoreError>;
}

/// A pending vector sync.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub tenant: TenantName,
    pub memory_id: Uuid,
    pub attempts: i32,
}

/// Memories whose vector has yet to reach the vector store. An entry is written before the
/// memory row, so a crash at any point leaves either nothing to do or an entry to retry.
#[async_trait]
pub trait OutboxRepository: Send + Sync + 'static {
    /// Records that the memory's vector must be synced, due at `due`; a second call keeps
    /// one entry (and moves its due time).
    async fn enqueue(
        &self,
        tenant: &TenantName,
        memory_id: Uuid,
        due: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Entries due at `now`, oldest first.
    async fn due(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<OutboxEntry>, StoreError>;
    /// The sync landed.
    async fn complete(&self, tenant: &TenantName, memory_id: Uuid) -> Result<(), StoreError>;
    /// The sync failed; try again at `next_attempt_at`.
    async fn reschedule(
        &self,
        tenant: &TenantName,
        memory_id: Uuid,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;
    /// Entries still waiting.
    async fn backlog(&self) -> Result<u64, StoreError>;
    /// Removes a tenant's entries (the tenant is gone).
    async fn forget_tenant(&self, tenant: &TenantName) -> Result<(), StoreError>;
}

pub use memoryc_control::integrations::{Integration, IntegrationRecord, Outcome};
pub use memoryc_control::webhook_deliveries::{Attempt, Delivery, DeliveryStatus, NewDelivery};

/// Integrations of tenants (the control plane's registry) and their webhook deliveries.
#[async_trait]
pub trait IntegrationStore: Send + Sync + 'static {
    /// The tenant's integrations, by name.
    async fn list(&self, tenant_id: Uuid) -> Result<Vec<Integration>, StoreError>;
    async fn find(&self, tenant_id: Uuid, name: &str) -> Result<Option<Integration>, StoreError>;
    async fn find_by_id(&self, integration_id: Uuid) -> Result<Option<Integration>, StoreError>;
    /// `None` when the tenant has an integration of that name already.
    async fn create(
        &self,
        tenant_id: Uuid,
        record: &IntegrationRecord,
    ) -> Result<Option<Integration>, StoreError>;
    /// Removes the integration and its deliveries; false when there was none.
    async fn remove(&self, tenant_id: Uuid, name: &str) -> Result<bool, StoreError>;
    async fn record_outcome(
        &self,
        integration_id: Uuid,
        outcome: &Outcome,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Writes deliveries due now; one that exists for the same integration and event stays as
    /// it is. How many were new.
    async fn enqueue_deliveries(
        &self,
        deliveries: &[NewDelivery],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Deliveries due by `now`, soonest first.
    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Takes a due delivery for one attempt until `lease_until`; false when another took it.
    async fn claim_delivery(
        &self,
        delivery_id: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn record_attempt(
        &self,
        delivery_id: Uuid,
        attempt: &Attempt,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// One integration's deliveries, newest first.
    async fn deliveries(
        &self,
        tenant_id: Uuid,
        integration_id: Uuid,
        status: Option<DeliveryStatus>,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Delivery>, StoreError>;
    async fn find_delivery(
        &self,
        tenant_id: Uuid,
        integration_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Option<Delivery>, StoreError>;
    /// Queues a failed or dead delivery again with a fresh budget; false when it is neither.
    async fn requeue_delivery(
        &self,
        delivery_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Erases the deliveries that show the memory (it is being erased).
    async fn erase_memory_deliveries(
        &self,
        tenant_id: Uuid,
        memory_id: Uuid,
    ) -> Result<u64, StoreError>;
    /// Removes delivered and dead deliveries written before `before`.
    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}
