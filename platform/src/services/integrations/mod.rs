//! A tenant's integrations: the registry the operator writes from IntegrationBindings (and the
//! API writes on installations without the operator), and what the platform does with them.
//! Webhooks are delivered ([`webhook`]); GitHubProjects and LLMProvider integrations are recorded
//! by the operator and not acted on yet, so the API does not create them.

pub mod webhook;

use std::sync::Arc;

use memoryc_crds::contract::{WEBHOOK_EVENTS, webhook_signing};
use tokio::sync::Notify;
use uuid::Uuid;

use super::ServiceError;
use crate::domain::validation::InputError;
use crate::stores::{
    Delivery, DeliveryStatus, Integration, IntegrationRecord, IntegrationStore, Tenant,
};
use webhook::destination::DestinationPolicy;
use webhook::fanout::WEBHOOK_KIND;
use webhook::payload::WebhookSettings;

/// Longest integration name: a Kubernetes object name, as a binding's is.
pub const MAX_NAME_LEN: usize = 63;
/// Most deliveries one page lists.
pub const MAX_DELIVERIES_PAGE: u64 = 200;

/// An integration to create through the API.
#[derive(Debug, Clone)]
pub struct NewIntegration {
    pub name: String,
    pub kind: String,
    pub webhook: Option<WebhookSettings>,
    /// The credential; for a webhook, generated when absent.
    pub secret: Option<String>,
    pub paused: bool,
}

/// A created integration, with the signing secret when the platform generated it (shown once).
#[derive(Debug, Clone)]
pub struct Created {
    pub integration: Integration,
    pub generated_secret: Option<String>,
}

pub struct IntegrationService {
    store: Arc<dyn IntegrationStore>,
    destinations: Arc<DestinationPolicy>,
    /// Wakes the dispatcher when a delivery is queued again.
    wake: Arc<Notify>,
}

impl IntegrationService {
    pub fn new(
        store: Arc<dyn IntegrationStore>,
        destinations: Arc<DestinationPolicy>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            destinations,
            wake,
        }
    }

    pub async fn list(&self, tenant: &Tenant) -> Result<Vec<Integration>, ServiceError> {
        Ok(self.store.list(tenant.tenant_id).await?)
    }

    pub async fn create(
        &self,
        tenant: &Tenant,
        new: NewIntegration,
    ) -> Result<Created, ServiceError> {
        check_name(&new.name)?;
        if new.kind != WEBHOOK_KIND {
            return Err(invalid(
                "kind",
                format!(
                    "{:?} integrations are created by the operator from an IntegrationBinding; the API creates Webhook integrations",
                    new.kind
                ),
            ));
        }
        let webhook = new
            .webhook
            .ok_or_else(|| invalid("webhook", "kind Webhook needs the webhook block".into()))?;
        self.destinations
            .check_url(&webhook.url)
            .map_err(|error| invalid("webhook.url", error.to_string()))?;
        if let Some(unknown) = webhook
            .events
            .iter()
            .find(|event| !WEBHOOK_EVENTS.contains(&event.as_str()))
        {
            return Err(invalid(
                "webhook.events",
                format!(
                    "{unknown:?} is not an event; use any of {}",
                    WEBHOOK_EVENTS.join(", ")
                ),
            ));
        }
        let (secret, generated_secret) = match new.secret {
            Some(secret) => {
                webhook_signing::signing_key(&secret)
                    .map_err(|error| invalid("secret", error.to_string()))?;
                (secret.trim().to_string(), None)
            }
            None => {
                let secret = webhook_signing::generate();
                (secret.clone(), Some(secret))
            }
        };
        let record = IntegrationRecord {
            name: new.name.clone(),
            kind: new.kind,
            settings: serde_json::to_value(&webhook)
                .map_err(|error| invalid("webhook", error.to_string()))?,
            secret_name: String::new(),
            secret: Some(secret),
            sync_schedule: None,
            paused: new.paused,
        };
        let integration = self
            .store
            .create(tenant.tenant_id, &record)
            .await?
            .ok_or_else(|| {
                ServiceError::Conflict(format!("an integration named {} exists", new.name))
            })?;
        Ok(Created {
            integration,
            generated_secret,
        })
    }

    /// Removes an integration created through the API; one from an IntegrationBinding goes
    /// with its binding.
    pub async fn remove(&self, tenant: &Tenant, name: &str) -> Result<(), ServiceError> {
        let integration = self.integration(tenant, name).await?;
        if !integration.record.secret_name.is_empty() {
            return Err(ServiceError::Conflict(format!(
                "integration {name} comes from an IntegrationBinding; delete the binding instead"
            )));
        }
        if self.store.remove(tenant.tenant_id, name).await? {
            Ok(())
        } else {
            Err(not_found(name))
        }
    }

    /// One integration's deliveries, newest first.
    pub async fn deliveries(
        &self,
        tenant: &Tenant,
        name: &str,
        status: Option<DeliveryStatus>,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Delivery>, ServiceError> {
        if limit == 0 || limit > MAX_DELIVERIES_PAGE {
            return Err(invalid(
                "limit",
                format!("must be between 1 and {MAX_DELIVERIES_PAGE}"),
            ));
        }
        let integration = self.integration(tenant, name).await?;
        Ok(self
            .store
            .deliveries(
                tenant.tenant_id,
                integration.integration_id,
                status,
                before,
                limit,
            )
            .await?)
    }

    /// Sends a failed or dead delivery again, with a fresh budget of attempts.
    pub async fn retry(
        &self,
        tenant: &Tenant,
        name: &str,
        delivery_id: Uuid,
    ) -> Result<Delivery, ServiceError> {
        let integration = self.integration(tenant, name).await?;
        let find = || {
            self.store
                .find_delivery(tenant.tenant_id, integration.integration_id, delivery_id)
        };
        if find().await?.is_none() {
            return Err(ServiceError::NotFound(format!("delivery {delivery_id}")));
        }
        if !self
            .store
            .requeue_delivery(delivery_id, chrono::Utc::now())
            .await?
        {
            return Err(ServiceError::Conflict(format!(
                "delivery {delivery_id} is neither failed nor dead: only those are retried"
            )));
        }
        self.wake.notify_one();
        find()
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("delivery {delivery_id}")))
    }

    async fn integration(&self, tenant: &Tenant, name: &str) -> Result<Integration, ServiceError> {
        self.store
            .find(tenant.tenant_id, name)
            .await?
            .ok_or_else(|| not_found(name))
    }
}

fn check_name(name: &str) -> Result<(), ServiceError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "name",
            format!(
                "must be 1 to {MAX_NAME_LEN} lowercase letters, digits or '-', starting with a letter and not ending with '-'"
            ),
        ))
    }
}

fn invalid(field: &'static str, reason: String) -> ServiceError {
    InputError::Invalid { field, reason }.into()
}

fn not_found(name: &str) -> ServiceError {
    ServiceError::NotFound(format!("integration {name}"))
}
