//! [`IntegrationStore`] on the control plane's tables (`memoryc_control`), PostgreSQL or SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memoryc_control::{integrations, webhook_deliveries};
use uuid::Uuid;

use super::Databases;
use crate::stores::{
    Attempt, Delivery, DeliveryStatus, Integration, IntegrationRecord, IntegrationStore,
    NewDelivery, Outcome, StoreError,
};

#[derive(Clone)]
pub struct SqlIntegrationStore {
    databases: Databases,
}

impl SqlIntegrationStore {
    pub fn new(databases: Databases) -> Self {
        Self { databases }
    }
}

#[async_trait]
impl IntegrationStore for SqlIntegrationStore {
    async fn list(&self, tenant_id: Uuid) -> Result<Vec<Integration>, StoreError> {
        Ok(integrations::list(self.databases.control(), tenant_id).await?)
    }

    async fn find(&self, tenant_id: Uuid, name: &str) -> Result<Option<Integration>, StoreError> {
        Ok(integrations::find(self.databases.control(), tenant_id, name).await?)
    }

    async fn find_by_id(&self, integration_id: Uuid) -> Result<Option<Integration>, StoreError> {
        Ok(integrations::find_by_id(self.databases.control(), integration_id).await?)
    }

    async fn create(
        &self,
        tenant_id: Uuid,
        record: &IntegrationRecord,
    ) -> Result<Option<Integration>, StoreError> {
        Ok(integrations::create(self.databases.control(), tenant_id, record).await?)
    }

    async fn remove(&self, tenant_id: Uuid, name: &str) -> Result<bool, StoreError> {
        Ok(integrations::remove(self.databases.control(), tenant_id, name).await?)
    }

    async fn record_outcome(
        &self,
        integration_id: Uuid,
        outcome: &Outcome,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(
            integrations::record_outcome(self.databases.control(), integration_id, outcome, at)
                .await?,
        )
    }

    async fn enqueue_deliveries(
        &self,
        deliveries: &[NewDelivery],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(webhook_deliveries::enqueue(self.databases.control(), deliveries, now).await?)
    }

    async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Delivery>, StoreError> {
        Ok(webhook_deliveries::due(self.databases.control(), now, limit).await?)
    }

    async fn claim_delivery(
        &self,
        delivery_id: Uuid,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(
            webhook_deliveries::claim(self.databases.control(), delivery_id, now, lease_until)
                .await?,
        )
    }

    async fn record_attempt(
        &self,
        delivery_id: Uuid,
        attempt: &Attempt,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        Ok(
            webhook_deliveries::record_attempt(self.databases.control(), delivery_id, attempt, at)
                .await?,
        )
    }

    async fn deliveries(
        &self,
        tenant_id: Uuid,
        integration_id: Uuid,
        status: Option<DeliveryStatus>,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Delivery>, StoreError> {
        Ok(webhook_deliveries::list(
            self.databases.control(),
            tenant_id,
            integration_id,
            status,
            before,
            limit,
        )
        .await?)
    }

    async fn find_delivery(
        &self,
        tenant_id: Uuid,
        integration_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Option<Delivery>, StoreError> {
        Ok(webhook_deliveries::find(
            self.databases.control(),
            tenant_id,
            integration_id,
            delivery_id,
        )
        .await?)
    }

    async fn requeue_delivery(
        &self,
        delivery_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(webhook_deliveries::requeue(self.databases.control(), delivery_id, now).await?)
    }

    async fn erase_memory_deliveries(
        &self,
        tenant_id: Uuid,
        memory_id: Uuid,
    ) -> Result<u64, StoreError> {
        Ok(
            webhook_deliveries::erase_memory(self.databases.control(), tenant_id, memory_id)
                .await?,
        )
    }

    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(webhook_deliveries::prune(self.databases.control(), before).await?)
    }
}
