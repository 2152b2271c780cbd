//! Status vocabulary shared by both resources: phases and condition types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One word for humans, `kubectl get` and ArgoCD health; the conditions carry the detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
pub enum Phase {
    /// Seen, nothing provisioned yet.
    #[default]
    Pending,
    /// Some parts are provisioned, others are still being created.
    Provisioning,
    /// Every part is provisioned and working.
    Ready,
    /// A step failed; the Ready condition says which and why. Retried with backoff.
    Failed,
    /// `spec.paused` is set: nothing is changed until it is cleared.
    Paused,
    /// Being deleted; the finalizer is cleaning up.
    Deleting,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Provisioning => "Provisioning",
            Phase::Ready => "Ready",
            Phase::Failed => "Failed",
            Phase::Paused => "Paused",
            Phase::Deleting => "Deleting",
        }
    }
}

/// Condition types in `status.conditions`.
pub mod condition_types {
    /// Everything below is true.
    pub const READY: &str = "Ready";
    /// The PostgreSQL schema, role and migrations are in place.
    pub const DATABASE_READY: &str = "DatabaseReady";
    /// The Milvus collection exists, is indexed and loaded.
    pub const VECTOR_STORE_READY: &str = "VectorStoreReady";
    /// The credentials Secret holds working credentials.
    pub const CREDENTIALS_READY: &str = "CredentialsReady";
    /// The platform serving the tenant knows it (and, when dedicated, is available).
    pub const PLATFORM_READY: &str = "PlatformReady";
    /// The integration's Secret and settings are valid and it is recorded in the platform's
    /// integration registry for the tenant.
    pub const REGISTERED: &str = "Registered";
    /// Whether the platform's last attempt to reach the outside system got through (a Webhook
    /// binding: its last delivery); `Unknown` before the first. Informational: it does not hold
    /// `Ready` back. Set only for kinds the platform acts on.
    pub const CONNECTED: &str = "Connected";
    /// `spec.paused` is set.
    pub const RECONCILIATION_PAUSED: &str = "ReconciliationPaused";
}
