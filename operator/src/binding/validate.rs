//! Checks an IntegrationBinding against its tenant and its Secret, without side effects: what is
//! wrong comes back as a condition reason and a message the user can act on.

use k8s_openapi::api::core::v1::Secret;
use memoryc_crds::contract::{WEBHOOK_EVENTS, integration_secret_keys, webhook_signing};
use memoryc_crds::resources::{IntegrationBinding, IntegrationKind, MemoryTenant, Phase};

use super::super::provision::integrations::IntegrationRecord;

/// Why a binding is not connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

fn problem(reason: &'static str, message: String) -> Problem {
    Problem { reason, message }
}

/// The Secret key an integration of this kind reads its credential from.
pub fn required_key(kind: IntegrationKind) -> &'static str {
    match kind {
        IntegrationKind::GitHubProjects => integration_secret_keys::GITHUB_TOKEN,
        IntegrationKind::Webhook => integration_secret_keys::WEBHOOK_SIGNING_SECRET,
        IntegrationKind::LLMProvider => integration_secret_keys::LLM_API_KEY,
    }
}

/// The tenant must exist, be Ready and own the namespace the binding lives in.
pub fn check_tenant(
    binding: &IntegrationBinding,
    namespace: &str,
    tenant: Option<&MemoryTenant>,
) -> Result<(), Problem> {
    let name = &binding.spec.tenant_ref.name;
    let Some(tenant) = tenant else {
        return Err(problem(
            "TenantNotFound",
            format!("MemoryTenant {name} does not exist; create it or fix spec.tenantRef.name"),
        ));
    };
    let status = tenant.status.as_ref();
    let tenant_namespace = status.and_then(|s| s.namespace.as_deref());
    if tenant_namespace.is_some_and(|ns| ns != namespace) {
        return Err(problem(
            "WrongNamespace",
            format!(
                "MemoryTenant {name} lives in namespace {}; create the binding there",
                tenant_namespace.unwrap_or_default()
            ),
        ));
    }
    if status.and_then(|s| s.phase) != Some(Phase::Ready) {
        return Err(problem(
            "TenantNotReady",
            format!("MemoryTenant {name} is not Ready yet; the binding is registered once it is"),
        ));
    }
    Ok(())
}

/// The settings of the binding's kind must be present and sensible, and the Secret must hold
/// the kind's credential. Returns what the platform should record.
pub fn check_binding(
    binding: &IntegrationBinding,
    secret: Option<&Secret>,
) -> Result<IntegrationRecord, Problem> {
    let spec = &binding.spec;
    let settings = match spec.kind {
        IntegrationKind::GitHubProjects => spec
            .github
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .ok()
            .flatten(),
        IntegrationKind::Webhook => {
            if let Some(webhook) = &spec.webhook
                && !webhook.url.starts_with("https://")
            {
                return Err(problem(
                    "InvalidSettings",
                    "spec.webhook.url must be an https URL".into(),
                ));
            }
            if let Some(unknown) = spec
                .webhook
                .iter()
                .flat_map(|webhook| &webhook.events)
                .find(|event| !WEBHOOK_EVENTS.contains(&event.as_str()))
            {
                return Err(problem(
                    "InvalidSettings",
                    format!(
                        "spec.webhook.events: {unknown:?} is not an event; use any of {}",
                        WEBHOOK_EVENTS.join(", ")
                    ),
                ));
            }
            spec.webhook
                .as_ref()
                .map(serde_json::to_value)
                .transpose()
                .ok()
                .flatten()
        }
        IntegrationKind::LLMProvider => spec
            .llm_provider
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .ok()
            .flatten(),
    };
    let Some(settings) = settings else {
        return Err(problem(
            "InvalidSettings",
            format!(
                "kind {} needs its settings block in the spec",
                spec.kind.as_str()
            ),
        ));
    };
    let secret_name = &spec.secret_ref.name;
    let Some(secret) = secret else {
        return Err(problem(
            "SecretNotFound",
            format!(
                "Secret {secret_name} does not exist in this namespace; create it with key {}",
                required_key(spec.kind)
            ),
        ));
    };
    let key = required_key(spec.kind);
    let value = secret
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .and_then(|value| std::str::from_utf8(&value.0).ok())
        .map(str::trim)
        .filter(|value| !value.is_empty());
    let Some(value) = value else {
        return Err(problem(
            "SecretKeyMissing",
            format!(
                "Secret {secret_name} has no non-empty text under key {key}, which kind {} needs",
                spec.kind.as_str()
            ),
        ));
    };
    if spec.kind == IntegrationKind::Webhook
        && let Err(error) = webhook_signing::signing_key(value)
    {
        return Err(problem(
            "InvalidSecret",
            format!("Secret {secret_name} key {key}: {error}"),
        ));
    }
    // GitHub signs the webhooks it sends for the board with this one (optional).
    let inbound_secret = (spec.kind == IntegrationKind::GitHubProjects)
        .then(|| {
            secret
                .data
                .as_ref()
                .and_then(|data| data.get(integration_secret_keys::GITHUB_WEBHOOK_SECRET))
                .and_then(|value| std::str::from_utf8(&value.0).ok())
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_string)
        })
        .flatten();
    Ok(IntegrationRecord {
        name: binding.metadata.name.clone().unwrap_or_default(),
        kind: spec.kind.as_str().to_string(),
        settings,
        secret_name: secret_name.clone(),
        secret: Some(value.to_string()),
        inbound_secret,
        sync_schedule: spec.sync_schedule.clone(),
        paused: spec.paused,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use memoryc_crds::resources::MemoryTenantStatus;

    use super::*;

    fn binding(kind: &str, settings: serde_json::Value) -> IntegrationBinding {
        let mut spec = serde_json::json!({"tenantRef": {"name": "acme"}, "kind": kind,
                                          "secretRef": {"name": "creds"}});
        for (k, v) in settings.as_object().expect("object") {
            spec[k] = v.clone();
        }
        let mut b = IntegrationBinding::new("gh", serde_json::from_value(spec).expect("spec"));
        b.metadata.namespace = Some("memoryc-acme".into());
        b
    }

    fn secret(key: &str, value: &str) -> Secret {
        Secret {
            data: Some(BTreeMap::from([(
                key.to_string(),
                ByteString(value.as_bytes().to_vec()),
            )])),
            ..Secret::default()
        }
    }

    fn ready_tenant(namespace: &str) -> MemoryTenant {
        let mut t = crate::test_support::tenant("acme", memoryc_crds::layout::Isolation::Shared);
        t.status = Some(MemoryTenantStatus {
            phase: Some(Phase::Ready),
            namespace: Some(namespace.into()),
            ..MemoryTenantStatus::default()
        });
        t
    }

    #[test]
    fn a_complete_binding_becomes_a_record() {
        let b = binding(
            "GitHubProjects",
            serde_json::json!({"github": {"owner": "acme", "projectNumber": 3}}),
        );
        let record = check_binding(&b, Some(&secret("token", "ghp_x"))).expect("valid");
        assert_eq!(record.kind, "GitHubProjects");
        assert_eq!(record.settings["projectNumber"], 3);
        assert_eq!(record.secret_name, "creds");
    }

    #[test]
    fn missing_secret_or_key_is_a_condition_not_a_crash() {
        let b = binding(
            "LLMProvider",
            serde_json::json!({"llmProvider": {"baseUrl": "https://llm.example/v1"}}),
        );
        assert_eq!(
            check_binding(&b, None).expect_err("no secret").reason,
            "SecretNotFound"
        );
        let wrong_key = check_binding(&b, Some(&secret("token", "x"))).expect_err("key");
        assert_eq!(wrong_key.reason, "SecretKeyMissing");
        assert!(
            wrong_key.message.contains("api-key"),
            "{}",
            wrong_key.message
        );
        let blank = check_binding(&b, Some(&secret("api-key", "  "))).expect_err("blank");
        assert_eq!(blank.reason, "SecretKeyMissing");
    }

    #[test]
    fn settings_of_the_kind_are_required() {
        let b = binding("Webhook", serde_json::json!({}));
        assert_eq!(
            check_binding(&b, Some(&secret("signing-secret", "s")))
                .expect_err("none")
                .reason,
            "InvalidSettings"
        );
        let http = binding(
            "Webhook",
            serde_json::json!({"webhook": {"url": "http://plain"}}),
        );
        assert_eq!(
            check_binding(&http, Some(&secret("signing-secret", "s")))
                .expect_err("http")
                .reason,
            "InvalidSettings"
        );
    }

    #[test]
    fn a_webhook_needs_a_standard_webhooks_secret_and_known_events() {
        let key = webhook_signing::encode(&[9u8; 32]);
        let b = binding(
            "Webhook",
            serde_json::json!({"webhook": {"url": "https://hooks.example", "events": ["memory.created"]}}),
        );
        let record =
            check_binding(&b, Some(&secret("signing-secret", &format!("{key}\n")))).expect("valid");
        assert_eq!(record.secret.as_deref(), Some(key.as_str()));
        let plain =
            check_binding(&b, Some(&secret("signing-secret", "hunter2"))).expect_err("form");
        assert_eq!(plain.reason, "InvalidSecret");
        assert!(plain.message.contains("whsec_"), "{}", plain.message);
        let unknown = binding(
            "Webhook",
            serde_json::json!({"webhook": {"url": "https://hooks.example", "events": ["MEMORY_CREATED"]}}),
        );
        let error =
            check_binding(&unknown, Some(&secret("signing-secret", &key))).expect_err("event");
        assert_eq!(error.reason, "InvalidSettings");
        assert!(
            error.message.contains("memory.created"),
            "{}",
            error.message
        );
    }

    #[test]
    fn the_tenant_must_exist_be_ready_and_own_the_namespace() {
        let b = binding(
            "Webhook",
            serde_json::json!({"webhook": {"url": "https://hooks.example"}}),
        );
        assert_eq!(
            check_tenant(&b, "memoryc-acme", None)
                .expect_err("missing")
                .reason,
            "TenantNotFound"
        );
        let elsewhere = ready_tenant("other");
        assert_eq!(
            check_tenant(&b, "memoryc-acme", Some(&elsewhere))
                .expect_err("ns")
                .reason,
            "WrongNamespace"
        );
        let mut pending = ready_tenant("memoryc-acme");
        pending.status.as_mut().expect("status").phase = Some(Phase::Provisioning);
        assert_eq!(
            check_tenant(&b, "memoryc-acme", Some(&pending))
                .expect_err("not ready")
                .reason,
            "TenantNotReady"
        );
        assert!(check_tenant(&b, "memoryc-acme", Some(&ready_tenant("memoryc-acme"))).is_ok());
    }
}
