//! A tenant's LLM providers (its LLMProvider integrations) in fallback order, each behind its
//! circuit breaker: a question goes to the first provider whose breaker lets it through; a
//! failure counts against that provider and the next one is asked. Every answer and failure is
//! recorded in the integration's state; tokens used are counted per tenant.

use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::breaker::{BreakerState, Breakers};
use super::client::{LlmClient, LlmError, Provider, json_object};
use crate::stores::{Integration, IntegrationStore, Outcome, StoreError};

/// The integration kind this module calls.
pub const LLM_KIND: &str = "LLMProvider";

/// An LLMProvider integration's settings, as the IntegrationBinding spells them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LlmSettings {
    pub base_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_model: Option<String>,
}

/// Observes what providers are asked (metrics); the default does nothing.
pub trait LlmObserver: Send + Sync + 'static {
    /// A call ended: `outcome` is `answered`, `failed` or `rejected` (breaker open).
    fn called(&self, _tenant: &str, _outcome: &'static str) {}
    fn tokens(&self, _tenant: &str, _prompt: u64, _completion: u64) {}
    /// A provider's breaker is in `state`.
    fn breaker(&self, _integration: Uuid, _state: BreakerState) {}
}

struct NoObserver;
impl LlmObserver for NoObserver {}

/// A JSON answer and the provider that gave it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub json: serde_json::Value,
    pub provider: String,
}

/// Why no provider answered.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("the tenant has no LLMProvider integration")]
    NoProvider,
    #[error("no LLM provider answered: {}", .0.join("; "))]
    AllFailed(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct LlmProviders {
    store: Arc<dyn IntegrationStore>,
    client: LlmClient,
    breakers: Breakers,
    observer: Arc<dyn LlmObserver>,
}

impl LlmProviders {
    pub fn new(store: Arc<dyn IntegrationStore>, client: LlmClient, breakers: Breakers) -> Self {
        Self {
            store,
            client,
            breakers,
            observer: Arc::new(NoObserver),
        }
    }

    pub fn with_observer(mut self, observer: Arc<dyn LlmObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// The tenant's usable providers, in fallback order (by name).
    pub async fn of_tenant(&self, tenant_id: Uuid) -> Result<Vec<Integration>, StoreError> {
        let mut providers: Vec<Integration> = self
            .store
            .list(tenant_id)
            .await?
            .into_iter()
            .filter(|integration| integration.record.kind == LLM_KIND && !integration.record.paused)
            .collect();
        providers.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        Ok(providers)
    }

    /// Asks the tenant's providers in turn until one answers with a JSON object.
    pub async fn ask_json(
        &self,
        tenant: &str,
        tenant_id: Uuid,
        system: &str,
        user: &str,
    ) -> Result<Answer, AskError> {
        let providers = self.of_tenant(tenant_id).await?;
        if providers.is_empty() {
            return Err(AskError::NoProvider);
        }
        let mut failures = Vec::new();
        for integration in &providers {
            let id = integration.integration_id;
            let name = integration.record.name.clone();
            if !self.breakers.permits(id) {
                self.observer.called(tenant, "rejected");
                failures.push(format!("{name}: circuit open after repeated failures"));
                continue;
            }
            let provider = match provider_of(integration) {
                Ok(provider) => provider,
                Err(reason) => {
                    failures.push(format!("{name}: {reason}"));
                    continue;
                }
            };
            let answered = self.client.chat_json(&provider, system, user).await;
            let answered = answered.and_then(|completion| {
                self.observer.tokens(
                    tenant,
                    completion.prompt_tokens,
                    completion.completion_tokens,
                );
                json_object(&completion.content).ok_or_else(|| LlmError::Malformed {
                    provider: name.clone(),
                    reason: "the answer is not a JSON object".to_string(),
                })
            });
            match answered {
                Ok(json) => {
                    self.breakers.succeeded(id);
                    self.observer.called(tenant, "answered");
                    self.settled(integration, &Outcome::Reached { items: 1 })
                        .await;
                    return Ok(Answer {
                        json,
                        provider: name,
                    });
                }
                Err(error) => {
                    self.breakers.failed(id);
                    self.observer.called(tenant, "failed");
                    tracing::warn!(provider = %name, %error, "LLM provider failed");
                    let outcome = Outcome::Failed {
                        error: error.to_string(),
                    };
                    self.settled(integration, &outcome).await;
                    failures.push(error.to_string());
                }
            }
        }
        Err(AskError::AllFailed(failures))
    }

    /// Checks a provider: `GET /models` answers and lists its model.
    pub async fn check(&self, integration: &Integration) -> Outcome {
        let outcome = match provider_of(integration) {
            Err(reason) => Outcome::Failed { error: reason },
            Ok(provider) => match self.client.models(&provider).await {
                Ok(models) if models.contains(&provider.model) => Outcome::Reached { items: 0 },
                Ok(models) => Outcome::Failed {
                    error: format!(
                        "{} answers, but does not serve the model {} (it serves {})",
                        provider.name,
                        provider.model,
                        models
                            .iter()
                            .take(10)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
                Err(error) => Outcome::Failed {
                    error: error.to_string(),
                },
            },
        };
        self.settled(integration, &outcome).await;
        outcome
    }

    /// The breaker's state of a provider.
    pub fn breaker_state(&self, integration_id: Uuid) -> BreakerState {
        self.breakers.state(integration_id)
    }

    async fn settled(&self, integration: &Integration, outcome: &Outcome) {
        let state = self.breakers.state(integration.integration_id);
        self.observer.breaker(integration.integration_id, state);
        let outcome = match (outcome, state) {
            (Outcome::Failed { error }, BreakerState::Open) => Outcome::Failed {
                error: format!(
                    "{error}; circuit open, calls go to the next provider until a probe succeeds"
                ),
            },
            _ => outcome.clone(),
        };
        if let Err(error) = self
            .store
            .record_outcome(integration.integration_id, &outcome, Utc::now())
            .await
        {
            tracing::warn!(%error, "could not record an LLM provider's outcome");
        }
    }
}

/// The provider an integration names; why not when its settings are incomplete.
pub fn provider_of(integration: &Integration) -> Result<Provider, String> {
    let settings: LlmSettings = serde_json::from_value(integration.record.settings.clone())
        .map_err(|error| format!("its settings are unreadable: {error}"))?;
    let model = settings
        .model
        .ok_or_else(|| "llmProvider.model is not set".to_string())?;
    let api_key = integration
        .record
        .secret
        .clone()
        .ok_or_else(|| "it has no API key".to_string())?;
    Ok(Provider {
        name: integration.record.name.clone(),
        base_url: settings.base_url.trim_end_matches('/').to_string(),
        model,
        api_key,
    })
}
