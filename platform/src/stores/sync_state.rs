//! What an integration's synchronisation keeps between runs (the control plane's tables): its
//! place in the outside item list, which item became which memory, and the inbound deliveries
//! already handled.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Integration, StoreError};

pub use memoryc_control::sync_state::SyncProgress;
pub use memoryc_control::synced_items::SyncedItem;

#[async_trait]
pub trait SyncStore: Send + Sync + 'static {
    /// Integrations of `kind` due for a run at `now`, not paused, not held by a running sync.
    async fn due_syncs(
        &self,
        kind: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Integration>, StoreError>;
    /// Takes the sync until `lease_until`, with its progress; `None` when a sync holds it.
    async fn claim_sync(
        &self,
        integration_id: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<SyncProgress>, StoreError>;
    async fn save_progress(
        &self,
        integration_id: Uuid,
        progress: &SyncProgress,
        lease_until: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Lets go of the sync and plans the next run.
    async fn release_sync(
        &self,
        integration_id: Uuid,
        next_run_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
    /// Records why a connected integration waits (a rate limit).
    async fn note(&self, integration_id: Uuid, message: &str) -> Result<(), StoreError>;
    /// Sets how many items the integration holds.
    async fn set_items_synced(&self, integration_id: Uuid, items: i64) -> Result<(), StoreError>;

    async fn synced_items(
        &self,
        integration_id: Uuid,
        item_ids: &[String],
    ) -> Result<Vec<SyncedItem>, StoreError>;
    async fn synced_items_of_content(
        &self,
        integration_id: Uuid,
        content_id: &str,
    ) -> Result<Vec<SyncedItem>, StoreError>;
    async fn save_synced_item(&self, item: &SyncedItem) -> Result<(), StoreError>;
    async fn mark_items_seen(
        &self,
        integration_id: Uuid,
        item_ids: &[String],
        pass: i64,
    ) -> Result<(), StoreError>;
    /// Live items the pass did not see.
    async fn unseen_items(
        &self,
        integration_id: Uuid,
        pass: i64,
    ) -> Result<Vec<SyncedItem>, StoreError>;
    async fn mark_item_removed(
        &self,
        integration_id: Uuid,
        item_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn count_live_items(&self, integration_id: Uuid) -> Result<u64, StoreError>;

    /// Records an inbound delivery; false when it was recorded before.
    async fn record_inbound_delivery(
        &self,
        integration_id: Uuid,
        delivery_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn forget_inbound_delivery(
        &self,
        integration_id: Uuid,
        delivery_id: &str,
    ) -> Result<(), StoreError>;
    async fn prune_inbound_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}
