//! Turns handled events into webhook deliveries: for each of the tenant's Webhook integrations
//! that receives the event, one delivery row, written before anything is sent. The event
//! consumer calls it after recording a batch; a batch handled twice (redelivered by the stream)
//! writes each delivery once.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use memoryc_crds::layout::TenantName;
use tokio::sync::Notify;
use uuid::Uuid;

use super::payload::{self, WebhookSettings};
use crate::domain::Memory;
use crate::domain::analytics::EventType;
use crate::services::ServiceError;
use crate::services::events::TenantEvent;
use crate::stores::{IntegrationStore, MemoryRepository, NewDelivery};

/// The kind name of webhook integrations in the registry.
pub const WEBHOOK_KIND: &str = "Webhook";

pub struct WebhookFanout {
    integrations: Arc<dyn IntegrationStore>,
    memories: Arc<dyn MemoryRepository>,
    /// Wakes the dispatcher when deliveries were written.
    wake: Arc<Notify>,
}

impl WebhookFanout {
    pub fn new(
        integrations: Arc<dyn IntegrationStore>,
        memories: Arc<dyn MemoryRepository>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            integrations,
            memories,
            wake,
        }
    }

    /// Writes the deliveries of one tenant's events; how many were new.
    pub async fn enqueue(
        &self,
        tenant: &TenantName,
        tenant_id: Uuid,
        events: &[&TenantEvent],
    ) -> Result<u64, ServiceError> {
        let hooks: Vec<(Uuid, WebhookSettings)> = self
            .integrations
            .list(tenant_id)
            .await?
            .into_iter()
            .filter(|integration| {
                integration.record.kind == WEBHOOK_KIND && !integration.record.paused
            })
            .filter_map(|integration| {
                serde_json::from_value(integration.record.settings)
                    .ok()
                    .map(|settings| (integration.integration_id, settings))
            })
            .collect();
        let wanted: Vec<(&TenantEvent, &'static str)> = events
            .iter()
            .filter_map(|event| {
                payload::event_name(event.event.event_type).map(|name| (*event, name))
            })
            .filter(|(_, name)| hooks.iter().any(|(_, hook)| hook.receives(name)))
            .collect();
        if wanted.is_empty() {
            return Ok(0);
        }
        let memories = self.memories_of(tenant, &wanted).await?;
        let mut deliveries = Vec::new();
        for (event, name) in wanted {
            let memory = event.event.memory_id.and_then(|id| memories.get(&id));
            let body = payload::body(name, event, memory);
            for (integration_id, hook) in &hooks {
                if hook.receives(name) {
                    deliveries.push(NewDelivery {
                        delivery_id: Uuid::now_v7(),
                        tenant_id,
                        integration_id: *integration_id,
                        event_id: event.event.event_id,
                        memory_id: event.event.memory_id,
                        event_type: name.to_string(),
                        payload: body.clone(),
                    });
                }
            }
        }
        let written = self
            .integrations
            .enqueue_deliveries(&deliveries, Utc::now())
            .await?;
        if written > 0 {
            self.wake.notify_one();
        }
        Ok(written)
    }

    /// The live memories the created and updated events name, by id.
    async fn memories_of(
        &self,
        tenant: &TenantName,
        events: &[(&TenantEvent, &str)],
    ) -> Result<HashMap<Uuid, Memory>, ServiceError> {
        let ids: Vec<Uuid> = events
            .iter()
            .filter(|(event, _)| {
                matches!(
                    event.event.event_type,
                    EventType::MemoryCreated | EventType::MemoryUpdated
                )
            })
            .filter_map(|(event, _)| event.event.memory_id)
            .collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self
            .memories
            .find_live(tenant, &ids)
            .await?
            .into_iter()
            .map(|memory| (memory.memory_id, memory))
            .collect())
    }
}
