//! [`SyncStore`] on the control plane's tables, PostgreSQL or SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memoryc_control::{inbound_deliveries, sync_state, synced_items};
use uuid::Uuid;

use super::Databases;
use crate::stores::sync_state::{SyncProgress, SyncStore, SyncedItem};
use crate::stores::{Integration, StoreError};

#[derive(Clone)]
pub struct SqlSyncStore {
    databases: Databases,
}

impl SqlSyncStore {
    pub fn new(databases: Databases) -> Self {
        Self { databases }
    }
}

#[async_trait]
impl SyncStore for SqlSyncStore {
    async fn due_syncs(
        &self,
        kind: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Integration>, StoreError> {
        Ok(sync_state::due(self.databases.control(), kind, now).await?)
    }

    async fn claim_sync(
        &self,
        integration_id: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<SyncProgress>, StoreError> {
        Ok(sync_state::claim(self.databases.control(), integration_id, now, lease_until).await?)
    }

    async fn save_progress(
        &self,
        integration_id: Uuid,
        progress: &SyncProgress,
        lease_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let db = self.databases.control();
        Ok(sync_state::save_progress(db, integration_id, progress, lease_until).await?)
    }

    async fn release_sync(
        &self,
        integration_id: Uuid,
        next_run_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        Ok(sync_state::release(self.databases.control(), integration_id, next_run_at).await?)
    }

    async fn note(&self, integration_id: Uuid, message: &str) -> Result<(), StoreError> {
        Ok(sync_state::note(self.databases.control(), integration_id, message).await?)
    }

    async fn set_items_synced(&self, integration_id: Uuid, items: i64) -> Result<(), StoreError> {
        Ok(sync_state::set_items(self.databases.control(), integration_id, items).await?)
    }

    async fn synced_items(
        &self,
        integration_id: Uuid,
        item_ids: &[String],
    ) -> Result<Vec<SyncedItem>, StoreError> {
        Ok(synced_items::find_many(self.databases.control(), integration_id, item_ids).await?)
    }

    async fn synced_items_of_content(
        &self,
        integration_id: Uuid,
        content_id: &str,
    ) -> Result<Vec<SyncedItem>, StoreError> {
        let db = self.databases.control();
        Ok(synced_items::find_by_content(db, integration_id, content_id).await?)
    }

    async fn save_synced_item(&self, item: &SyncedItem) -> Result<(), StoreError> {
        Ok(synced_items::save(self.databases.control(), item).await?)
    }

    async fn mark_items_seen(
        &self,
        integration_id: Uuid,
        item_ids: &[String],
        pass: i64,
    ) -> Result<(), StoreError> {
        let db = self.databases.control();
        Ok(synced_items::mark_seen(db, integration_id, item_ids, pass).await?)
    }

    async fn unseen_items(
        &self,
        integration_id: Uuid,
        pass: i64,
    ) -> Result<Vec<SyncedItem>, StoreError> {
        Ok(synced_items::unseen(self.databases.control(), integration_id, pass).await?)
    }

    async fn mark_item_removed(
        &self,
        integration_id: Uuid,
        item_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let db = self.databases.control();
        Ok(synced_items::mark_removed(db, integration_id, item_id, at).await?)
    }

    async fn count_live_items(&self, integration_id: Uuid) -> Result<u64, StoreError> {
        Ok(synced_items::count_live(self.databases.control(), integration_id).await?)
    }

    async fn record_inbound_delivery(
        &self,
        integration_id: Uuid,
        delivery_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let db = self.databases.control();
        Ok(inbound_deliveries::record(db, integration_id, delivery_id, at).await?)
    }

    async fn forget_inbound_delivery(
        &self,
        integration_id: Uuid,
        delivery_id: &str,
    ) -> Result<(), StoreError> {
        let db = self.databases.control();
        Ok(inbound_deliveries::forget(db, integration_id, delivery_id).await?)
    }

    async fn prune_inbound_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(inbound_deliveries::prune(self.databases.control(), before).await?)
    }
}
