//! A tenant's integrations: the registry the operator writes from IntegrationBindings (and the
//! API writes on installations without the operator), and what the platform does with them.
//! Webhooks are delivered ([`webhook`]) and GitHub Projects boards synchronised ([`github`]);
//! LLMProvider integrations are recorded by the operator and not acted on yet, so the API does
//! not create them.

pub mod github;
pub mod llm;
pub mod request_error;
pub mod webhook;

use std::sync::Arc;

use memoryc_crds::contract::{WEBHOOK_EVENTS, webhook_signing};
use tokio::sync::Notify;
use uuid::Uuid;

use super::ServiceError;
use crate::domain::validation::InputError;
use crate::services::analytics::schedule::Schedule;
use crate::stores::{
    Delivery, DeliveryStatus, Integration, IntegrationRecord, IntegrationStore, Tenant,
};
use github::inbound::{GitHubInbound, Handled, InboundDelivery, InboundError};
use github::sync::{GITHUB_KIND, GitHubSettings, GitHubSync, SyncError, SyncReport};
use llm::providers::{LLM_KIND, LlmProviders, LlmSettings};
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
    pub github: Option<GitHubSettings>,
    pub llm_provider: Option<LlmSettings>,
    /// The credential: a webhook's signing secret (generated when absent), a GitHub token or
    /// an LLM provider's API key.
    pub secret: Option<String>,
    /// The secret GitHub signs its webhooks with (GitHubProjects).
    pub webhook_secret: Option<String>,
    pub sync_schedule: Option<String>,
    pub paused: bool,
}

/// How long the check of a new LLM provider may take within its creation request.
const CREATION_CHECK: std::time::Duration = std::time::Duration::from_secs(5);
/// Longest model name accepted.
const MAX_MODEL_LEN: usize = 200;
/// How long an on-demand sync waits for a running one to finish.
const WAIT_FOR_RUNNING_SYNC: std::time::Duration = std::time::Duration::from_secs(30);
/// Longest GitHub token or webhook secret accepted.
const MAX_SECRET_LEN: usize = 255;
/// Shortest GitHub webhook secret accepted.
const MIN_WEBHOOK_SECRET_LEN: usize = 16;

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
    /// `None` when integrations are switched off.
    github: Option<GitHubParts>,
    llm: Option<Arc<LlmProviders>>,
}

struct GitHubParts {
    sync: Arc<GitHubSync>,
    inbound: Arc<GitHubInbound>,
    /// How long an on-demand sync is waited for before it goes on in the background.
    wait: std::time::Duration,
}

/// What an on-demand sync came to within the wait.
#[derive(Debug)]
pub enum SyncRun {
    Finished(SyncReport),
    /// Still running; the integration's state will say how it ended.
    Running,
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
            github: None,
            llm: None,
        }
    }

    /// Checks LLM providers when they are created.
    pub fn with_llm(mut self, providers: Arc<LlmProviders>) -> Self {
        self.llm = Some(providers);
        self
    }

    /// Synchronises GitHubProjects integrations on demand (waiting up to `wait` for the
    /// report) and takes GitHub's webhooks.
    pub fn with_github(mut self, sync: Arc<GitHubSync>, wait: std::time::Duration) -> Self {
        let inbound = Arc::new(GitHubInbound::new(sync.clone()));
        self.github = Some(GitHubParts {
            sync,
            inbound,
            wait,
        });
        self
    }

    /// An LLM provider's breaker state on this replica; `None` for other kinds.
    pub fn breaker_state(&self, integration: &Integration) -> Option<&'static str> {
        if integration.record.kind != LLM_KIND {
            return None;
        }
        self.llm
            .as_ref()
            .map(|providers| providers.breaker_state(integration.integration_id).as_str())
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
        let (record, generated_secret) = match new.kind.as_str() {
            WEBHOOK_KIND => self.webhook_record(new)?,
            GITHUB_KIND => (github_record(new)?, None),
            LLM_KIND => (self.llm_record(new)?, None),
            other => {
                return Err(invalid(
                    "kind",
                    format!("{other:?} is not a kind: use Webhook, GitHubProjects or LLMProvider"),
                ));
            }
        };
        let integration = self
            .store
            .create(tenant.tenant_id, &record)
            .await?
            .ok_or_else(|| {
                ServiceError::Conflict(format!("an integration named {} exists", record.name))
            })?;
        // A provider is checked at once, so its state says whether it answers.
        let integration = match (&self.llm, integration.record.kind.as_str()) {
            (Some(providers), LLM_KIND) => {
                // Within the request; a provider slower than that is checked again shortly by
                // the scheduler.
                let check = providers.check(&integration);
                if tokio::time::timeout(CREATION_CHECK, check).await.is_err() {
                    tracing::info!(integration = %integration.record.name,
                        "the new LLM provider did not answer its check in time");
                }
                self.integration(tenant, &integration.record.name).await?
            }
            _ => integration,
        };
        Ok(Created {
            integration,
            generated_secret,
        })
    }

    fn llm_record(&self, new: NewIntegration) -> Result<IntegrationRecord, ServiceError> {
        let settings = new.llm_provider.ok_or_else(|| {
            invalid(
                "llmProvider",
                "kind LLMProvider needs the llmProvider block (baseUrl, model)".into(),
            )
        })?;
        self.destinations
            .check_url(&settings.base_url)
            .map_err(|error| invalid("llmProvider.baseUrl", error.to_string()))?;
        let model_ok = |model: &Option<String>| {
            model
                .as_deref()
                .is_none_or(|m| (1..=MAX_MODEL_LEN).contains(&m.len()) && !m.trim().is_empty())
        };
        if settings.model.is_none() || !model_ok(&settings.model) {
            return Err(invalid(
                "llmProvider.model",
                format!("the chat model, 1 to {MAX_MODEL_LEN} characters"),
            ));
        }
        if !model_ok(&settings.embedding_model) {
            return Err(invalid(
                "llmProvider.embeddingModel",
                format!("1 to {MAX_MODEL_LEN} characters"),
            ));
        }
        let key = new
            .secret
            .map(|key| key.trim().to_string())
            .filter(|key| !key.is_empty())
            .ok_or_else(|| invalid("secret", "the provider's API key".into()))?;
        check_secret("secret", &key, 1)?;
        Ok(IntegrationRecord {
            name: new.name,
            kind: new.kind,
            settings: serde_json::to_value(&settings)
                .map_err(|error| invalid("llmProvider", error.to_string()))?,
            secret_name: String::new(),
            secret: Some(key),
            inbound_secret: None,
            sync_schedule: None,
            paused: new.paused,
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

    fn webhook_record(
        &self,
        new: NewIntegration,
    ) -> Result<(IntegrationRecord, Option<String>), ServiceError> {
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
            name: new.name,
            kind: new.kind,
            settings: serde_json::to_value(&webhook)
                .map_err(|error| invalid("webhook", error.to_string()))?,
            secret_name: String::new(),
            secret: Some(secret),
            inbound_secret: None,
            sync_schedule: None,
            paused: new.paused,
        };
        Ok((record, generated_secret))
    }

    /// Runs a GitHubProjects integration's sync now: what it did, or that it goes on in the
    /// background when it takes longer than a request may wait. A sync running already
    /// (scheduled, or on another replica) is waited for, and this one reads what changed since.
    pub async fn sync_now(&self, tenant: &Tenant, name: &str) -> Result<SyncRun, SyncFailure> {
        let integration = self.integration(tenant, name).await?;
        if integration.record.kind != GITHUB_KIND {
            return Err(invalid(
                "name",
                format!(
                    "{name} is a {} integration; only GitHubProjects integrations are synchronised",
                    integration.record.kind
                ),
            )
            .into());
        }
        let github = self.github.as_ref().ok_or(SyncFailure::Disabled)?;
        let (sync, store) = (github.sync.clone(), self.store.clone());
        let (tenant_id, name) = (tenant.tenant_id, name.to_string());
        let run = tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + WAIT_FOR_RUNNING_SYNC;
            let mut integration = integration;
            loop {
                match sync.run(&integration).await {
                    Err(SyncError::Busy) if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        integration = store
                            .find(tenant_id, &name)
                            .await
                            .map_err(SyncError::from)?
                            .ok_or_else(|| SyncError::Service(not_found(&name)))?;
                    }
                    result => return result,
                }
            }
        });
        match tokio::time::timeout(github.wait, run).await {
            Ok(Ok(result)) => Ok(SyncRun::Finished(result?)),
            Ok(Err(crashed)) => Err(SyncFailure::Crashed(crashed.to_string())),
            Err(_) => Ok(SyncRun::Running),
        }
    }

    /// Takes a GitHub webhook delivery for the tenant's integration `name`.
    pub async fn receive_github(
        &self,
        tenant: Option<&Tenant>,
        name: &str,
        delivery: InboundDelivery<'_>,
    ) -> Result<Handled, InboundError> {
        let Some(GitHubParts { inbound, .. }) = self.github.as_ref() else {
            return Err(InboundError::BadSignature);
        };
        let integration = match tenant {
            Some(tenant) => self
                .store
                .find(tenant.tenant_id, name)
                .await
                .map_err(|error| InboundError::Sync(SyncError::from(error)))?,
            None => None,
        };
        inbound.receive(integration.as_ref(), delivery).await
    }

    async fn integration(&self, tenant: &Tenant, name: &str) -> Result<Integration, ServiceError> {
        self.store
            .find(tenant.tenant_id, name)
            .await?
            .ok_or_else(|| not_found(name))
    }
}

/// Why an on-demand sync did not give a report.
#[derive(Debug, thiserror::Error)]
pub enum SyncFailure {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("integrations are switched off on this platform (integrations.enabled)")]
    Disabled,
    #[error("the sync stopped unexpectedly: {0}")]
    Crashed(String),
}

fn github_record(new: NewIntegration) -> Result<IntegrationRecord, ServiceError> {
    let github = new.github.ok_or_else(|| {
        invalid(
            "github",
            "kind GitHubProjects needs the github block (owner, projectNumber)".into(),
        )
    })?;
    check_github_login(&github.owner)?;
    if github.project_number < 1 {
        return Err(invalid(
            "github.projectNumber",
            "must be 1 or more: the N in .../projects/N".into(),
        ));
    }
    let token = new
        .secret
        .map(|token| token.trim().to_string())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| invalid("secret", "a GitHub token that can read the project".into()))?;
    check_secret("secret", &token, 1)?;
    if let Some(secret) = &new.webhook_secret {
        check_secret("webhookSecret", secret, MIN_WEBHOOK_SECRET_LEN)?;
    }
    if let Some(schedule) = &new.sync_schedule {
        Schedule::parse(schedule).map_err(|error| invalid("syncSchedule", error.to_string()))?;
    }
    Ok(IntegrationRecord {
        name: new.name,
        kind: new.kind,
        settings: serde_json::to_value(&github)
            .map_err(|error| invalid("github", error.to_string()))?,
        secret_name: String::new(),
        secret: Some(token),
        inbound_secret: new.webhook_secret,
        sync_schedule: new.sync_schedule,
        paused: new.paused,
    })
}

/// A GitHub user or organisation login: 1 to 39 letters, digits or single hyphens.
fn check_github_login(login: &str) -> Result<(), ServiceError> {
    let valid = (1..=39).contains(&login.len())
        && !login.starts_with('-')
        && !login.ends_with('-')
        && !login.contains("--")
        && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "github.owner",
            "must be a GitHub login: 1 to 39 letters, digits or single hyphens".into(),
        ))
    }
}

fn check_secret(field: &'static str, secret: &str, min: usize) -> Result<(), ServiceError> {
    let valid = (min..=MAX_SECRET_LEN).contains(&secret.len())
        && secret.chars().all(|c| c.is_ascii_graphic());
    if valid {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be {min} to {MAX_SECRET_LEN} visible ASCII characters"),
        ))
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
