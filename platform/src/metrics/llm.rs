//! LLM providers: calls by outcome, tokens per tenant, each provider's circuit breaker.

use uuid::Uuid;

use super::PlatformMetrics;
use super::labels::{IntegrationLabels, OutcomeLabels, TokenLabels};
use crate::services::integrations::llm::breaker::BreakerState;
use crate::services::integrations::llm::providers::LlmObserver;

impl LlmObserver for PlatformMetrics {
    fn called(&self, _tenant: &str, outcome: &'static str) {
        self.families
            .llm_calls
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    fn tokens(&self, tenant: &str, prompt: u64, completion: u64) {
        for (kind, count) in [("prompt", prompt), ("completion", completion)] {
            self.families
                .llm_tokens
                .get_or_create(&TokenLabels {
                    tenant: tenant.to_string(),
                    kind: kind.to_string(),
                })
                .inc_by(count);
        }
    }

    fn breaker(&self, integration: Uuid, state: BreakerState) {
        let value = match state {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        };
        self.families
            .llm_breakers
            .get_or_create(&IntegrationLabels {
                integration: integration.to_string(),
            })
            .set(value);
    }
}

#[cfg(test)]
mod tests {
    use memoryc_crds::contract::platform_metrics::{LLM_BREAKER_STATE, LLM_CALLS, LLM_TOKENS};

    use super::super::test_support::sample;
    use super::*;

    #[test]
    fn calls_tokens_and_breakers_are_exported() {
        let metrics = PlatformMetrics::new();
        metrics.called("acme", "answered");
        metrics.called("acme", "failed");
        metrics.tokens("acme", 120, 30);
        metrics.tokens("acme", 80, 20);
        let provider = Uuid::now_v7();
        metrics.breaker(provider, BreakerState::Open);
        let text = metrics.render().expect("renders");
        assert_eq!(
            sample(&text, LLM_CALLS, &[("outcome", "answered")]),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, LLM_TOKENS, &[("tenant", "acme"), ("kind", "prompt")]),
            Some(200.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                LLM_TOKENS,
                &[("tenant", "acme"), ("kind", "completion")]
            ),
            Some(50.0)
        );
        let id = provider.to_string();
        assert_eq!(
            sample(&text, LLM_BREAKER_STATE, &[("integration", id.as_str())]),
            Some(1.0)
        );
    }
}
