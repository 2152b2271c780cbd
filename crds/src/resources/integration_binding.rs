//! `IntegrationBinding`: connects a tenant to an outside system, with credentials in a Secret.

// kube-derive's repeated `printcolumn(type_ = ...)` arguments read as duplicates to clippy.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::Phase;

/// Connects a tenant (the MemoryTenant named in `tenantRef`, whose namespace this object must
/// live in) to GitHub Projects, a signed webhook or an OpenAI-compatible LLM provider.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "memoryc.dev",
    version = "v1alpha1",
    kind = "IntegrationBinding",
    plural = "integrationbindings",
    shortname = "ib",
    category = "memoryc",
    namespaced,
    status = "IntegrationBindingStatus",
    derive = "PartialEq",
    doc = "Connects a Memory-C* tenant to an outside system: the operator checks it and writes it, with the credential from its Secret, to the platform's integration registry. Webhooks receive the tenant's events signed per Standard Webhooks; a GitHubProjects binding's board is synchronised into memories on its syncSchedule, on demand and from GitHub's webhooks; an LLMProvider binding's OpenAI-compatible API extracts facts on adds with infer, behind a circuit breaker, in fallback order with the tenant's other providers (by name).",
    printcolumn(name = "Tenant", type_ = "string", json_path = ".spec.tenantRef.name"),
    printcolumn(name = "Kind", type_ = "string", json_path = ".spec.kind"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Registered",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Registered\")].status"
    ),
    printcolumn(
        name = "Connected",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Connected\")].status"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.kind != 'GitHubProjects' || has(self.github)").message("kind GitHubProjects needs spec.github"),
    validation = Rule::new("self.kind != 'Webhook' || has(self.webhook)").message("kind Webhook needs spec.webhook"),
    validation = Rule::new("self.kind != 'LLMProvider' || has(self.llmProvider)").message("kind LLMProvider needs spec.llmProvider")
)]
pub struct IntegrationBindingSpec {
    /// The tenant this integration belongs to. Cannot be changed.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.tenantRef cannot be changed"))]
    pub tenant_ref: TenantReference,
    /// Which system; decides which of `github`, `webhook`, `llmProvider` is read.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.kind cannot be changed"))]
    pub kind: IntegrationKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<GitHubProjectsSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_provider: Option<LlmProviderSettings>,
    /// Secret in this namespace with the credentials: `token` (GitHubProjects, able to read
    /// the project; optionally `webhook-secret`, the secret of a GitHub webhook pointed at the
    /// platform's `/api/v1/integrations/{name}/github?tenant=…`), `signing-secret` (Webhook:
    /// `whsec_` followed by the base64 of a 24 to 64 byte key, as Standard Webhooks libraries
    /// expect) or `api-key` (LLMProvider).
    pub secret_ref: SecretReference,
    /// Five-field cron schedule (UTC) of the GitHubProjects sync; every hour when absent.
    /// A new binding is synchronised at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\S+\s+\S+\s+\S+\s+\S+\s+\S+$"))]
    pub sync_schedule: Option<String>,
    /// While true the operator changes nothing for this binding.
    #[serde(default)]
    pub paused: bool,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct TenantReference {
    /// Name of the MemoryTenant.
    #[schemars(length(min = 1, max = 40))]
    pub name: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretReference {
    /// Name of a Secret in the binding's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum IntegrationKind {
    GitHubProjects,
    Webhook,
    LLMProvider,
}

impl IntegrationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::GitHubProjects => "GitHubProjects",
            IntegrationKind::Webhook => "Webhook",
            IntegrationKind::LLMProvider => "LLMProvider",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitHubProjectsSettings {
    /// User or organisation owning the project.
    #[schemars(length(min = 1, max = 100))]
    pub owner: String,
    /// Project number as shown in its URL.
    #[schemars(range(min = 1))]
    pub project_number: i64,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSettings {
    /// Where events are delivered (POST, signed per Standard Webhooks); must be https.
    #[schemars(regex(pattern = r"^https://"))]
    pub url: String,
    /// Events delivered: any of `memory.created`, `memory.updated`, `memory.deleted`,
    /// `insight.generated`; all of them when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LlmProviderSettings {
    /// Base URL of an OpenAI-compatible API, e.g. `https://api.openai.com/v1`.
    #[schemars(regex(pattern = r"^https?://"))]
    pub base_url: String,
    /// Chat model the platform asks (`POST {baseUrl}/chat/completions`); needed for fact
    /// extraction, and checked to be among `GET {baseUrl}/models`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Embedding model: recorded, not used yet (the platform embeds with its local model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_model: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationBindingStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// `Ready`, `Registered` (checked and recorded in the platform's integration registry) and
    /// `Connected` (whether a webhook's last delivery got through, a board's last sync read it,
    /// or an LLM provider's last call or check answered, as the platform recorded it; the
    /// platform's `GET /api/v1/integrations/{name}/deliveries` has a webhook's detail).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Id of the integration in the platform's registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    /// Last successful synchronisation or, for a webhook, delivery, as the platform recorded
    /// it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// Items of the board that are memories, for a webhook events delivered, for an LLM
    /// provider calls answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_synced: Option<i64>,
}
