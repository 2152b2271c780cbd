//! What the operator writes and the platform reads: the credentials Secret, the labels on every
//! object the operator owns, the Milvus field layout, and the tenant-admin identity.

/// Keys inside a tenant's credentials Secret (every form an application wants, CloudNativePG style).
pub mod secret_keys {
    /// PostgreSQL role of the tenant.
    pub const USERNAME: &str = "username";
    /// Password of that role.
    pub const PASSWORD: &str = "password";
    pub const HOST: &str = "host";
    pub const PORT: &str = "port";
    pub const DBNAME: &str = "dbname";
    /// Schema holding the tenant's tables.
    pub const SCHEMA: &str = "schema";
    /// Schema holding the control tables the tenant's platform reads.
    pub const CONTROL_SCHEMA: &str = "control-schema";
    /// `postgres://user:password@host:port/dbname`.
    pub const URI: &str = "uri";
    /// Milvus collection holding the tenant's vectors.
    pub const COLLECTION: &str = "collection";
    /// Platform API key of the tenant admin (`mck_…`).
    pub const API_KEY: &str = "api-key";
    /// Base URL of the platform serving the tenant.
    pub const API_ENDPOINT: &str = "api-endpoint";
}

/// Keys an IntegrationBinding's Secret must carry, by integration kind.
pub mod integration_secret_keys {
    /// GitHub token with read access to the projects.
    pub const GITHUB_TOKEN: &str = "token";
    /// Optional: the secret of a GitHub webhook pointed at the platform's
    /// `/api/v1/integrations/{name}/github?tenant=…`, which GitHub signs its deliveries with.
    pub const GITHUB_WEBHOOK_SECRET: &str = "webhook-secret";
    /// Shared secret the webhook signatures are computed with.
    pub const WEBHOOK_SIGNING_SECRET: &str = "signing-secret";
    /// API key of the OpenAI-compatible provider.
    pub const LLM_API_KEY: &str = "api-key";
}

/// Labels carried by every object the operator creates for a tenant.
pub mod labels {
    pub const NAME: &str = "app.kubernetes.io/name";
    pub const INSTANCE: &str = "app.kubernetes.io/instance";
    pub const COMPONENT: &str = "app.kubernetes.io/component";
    pub const PART_OF: &str = "app.kubernetes.io/part-of";
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// The tenant an object belongs to; also set on the tenant's Namespace.
    pub const TENANT: &str = "memoryc.dev/tenant";
    pub const PART_OF_VALUE: &str = "memoryc";
    pub const MANAGED_BY_VALUE: &str = "memoryc-operator";
}

/// Milvus fields of a memory-vector collection. The operator creates collections; the platform
/// writes and searches them; both build the schema from these.
pub mod milvus_fields {
    /// Primary key: the memory's UUID, hyphenated.
    pub const ID: &str = "memory_id";
    /// Tenant name; the partition key of the shared collection.
    pub const TENANT: &str = "tenant";
    pub const CATEGORY: &str = "category";
    pub const USER: &str = "user_id";
    pub const CREATED: &str = "created_at_ms";
    pub const VECTOR: &str = "vector";
    /// Length of a hyphenated UUID, the form ids and user ids are stored in.
    pub const UUID_LEN: u32 = 36;
    /// Longer than any valid tenant name (40), with room to spare.
    pub const TENANT_LEN: u32 = 64;
    /// Longest category wire name the schema stores.
    pub const CATEGORY_LEN: usize = 16;
}

/// Role of a tenant's first key.
pub const TENANT_ADMIN_ROLE: &str = "tenant-admin";
/// Username of the admin user created with a tenant.
pub const TENANT_ADMIN_USERNAME: &str = "admin";
/// Port the platform's HTTP server listens on inside a pod.
pub const PLATFORM_PORT: u16 = 8080;

/// Metrics the platform exports and the chart's alerts read (`charts/memoryc/files/alerts.rules.yaml`).
pub mod platform_metrics {
    /// Counter of answered requests, labels `route` (the matched path), `method`, `status`.
    pub const HTTP_REQUESTS: &str = "memoryc_platform_http_requests_total";
    /// Histogram of request durations in seconds, labels `route`, `method`.
    pub const HTTP_REQUEST_DURATION: &str = "memoryc_platform_http_request_duration_seconds";
    /// Gauge of vector syncs waiting in the outbox.
    pub const OUTBOX_PENDING: &str = "memoryc_platform_outbox_pending";
    /// Histogram of memory searches in seconds, label `mode` (`semantic`, `exact`, `list`).
    pub const SEARCH_DURATION: &str = "memoryc_platform_search_duration_seconds";
    /// Histogram of embedding-model batches in seconds.
    pub const EMBEDDING_DURATION: &str = "memoryc_platform_embedding_duration_seconds";
    /// Counter of texts the embedding model turned into vectors.
    pub const EMBEDDED_TEXTS: &str = "memoryc_platform_embedded_texts_total";
    /// Gauge of live (not deleted) memories, label `tenant`.
    pub const MEMORIES: &str = "memoryc_platform_memories";
    /// Counter of cache lookups, labels `cache`, `result` (`hit`, `miss`).
    pub const CACHE_REQUESTS: &str = "memoryc_platform_cache_requests_total";
    /// Counter of analytics events published, label `event_type`.
    pub const EVENTS_PUBLISHED: &str = "memoryc_platform_events_published_total";
    /// Counter of analytics events processed, label `event_type`.
    pub const EVENTS_PROCESSED: &str = "memoryc_platform_events_processed_total";
    /// Histogram of the seconds between an event's publication and its processing.
    pub const EVENT_LAG: &str = "memoryc_platform_event_lag_seconds";
    /// Counter of webhook delivery attempts, label `outcome` (`delivered`, `failed`).
    pub const WEBHOOK_ATTEMPTS: &str = "memoryc_platform_webhook_attempts_total";
    /// Histogram of the seconds from a delivery being written to its first attempt's answer.
    pub const WEBHOOK_DELIVERY_LATENCY: &str = "memoryc_platform_webhook_delivery_seconds";
    /// Counter of calls to LLM providers, label `outcome` (`answered`, `failed`, `rejected`: the
    /// provider's circuit was open).
    pub const LLM_CALLS: &str = "memoryc_platform_llm_calls_total";
    /// Counter of tokens LLM providers used, labels `tenant`, `kind` (`prompt`, `completion`).
    pub const LLM_TOKENS: &str = "memoryc_platform_llm_tokens_total";
    /// Gauge per LLM provider integration (label `integration`, its id): 0 closed, 1 open,
    /// 2 half-open.
    pub const LLM_BREAKER_STATE: &str = "memoryc_platform_llm_breaker_state";
    /// Counter of scheduled analytics runs, labels `job`, `outcome`.
    pub const ANALYTICS_RUNS: &str = "memoryc_platform_analytics_runs_total";
    /// Histogram of analytics run durations in seconds, label `job`.
    pub const ANALYTICS_RUN_DURATION: &str = "memoryc_platform_analytics_run_duration_seconds";
}

/// Events a Webhook integration can subscribe to (`spec.webhook.events`, the API's
/// `webhook.events`); every one of them when the list is empty.
pub const WEBHOOK_EVENTS: [&str; 4] = [
    "memory.created",
    "memory.updated",
    "memory.deleted",
    "insight.generated",
];

/// Webhook signing secrets in the Standard Webhooks form, `whsec_` followed by the base64 of the
/// key: what a binding's Secret holds under `signing-secret` and what the API takes.
pub mod webhook_signing {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    pub const PREFIX: &str = "whsec_";
    /// Keys shorter than this are refused (the specification asks for 24 to 64 bytes).
    pub const MIN_KEY_BYTES: usize = 24;
    pub const MAX_KEY_BYTES: usize = 64;

    /// Why a signing secret is unusable.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum SigningSecretError {
        #[error("a signing secret starts with whsec_ followed by base64")]
        MissingPrefix,
        #[error("the part after whsec_ is not base64")]
        NotBase64,
        #[error(
            "the key is {0} bytes; it must be between {MIN_KEY_BYTES} and {MAX_KEY_BYTES} bytes"
        )]
        BadLength(usize),
    }

    /// The key bytes of `secret` (surrounding whitespace ignored, as a Secret file may end in a
    /// newline).
    pub fn signing_key(secret: &str) -> Result<Vec<u8>, SigningSecretError> {
        let encoded = secret
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(SigningSecretError::MissingPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SigningSecretError::NotBase64)?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(SigningSecretError::BadLength(key.len()));
        }
        Ok(key)
    }

    /// A new signing secret with a random 32-byte key.
    pub fn generate() -> String {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        encode(&key)
    }

    /// A signing secret in the expected form for `key`.
    pub fn encode(key: &[u8]) -> String {
        format!("{PREFIX}{}", STANDARD.encode(key))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn reads_the_key_of_a_standard_webhooks_secret() {
            let secret = encode(&[7u8; 32]);
            assert_eq!(signing_key(&format!("{secret}\n")), Ok(vec![7u8; 32]));
            let generated = generate();
            assert_eq!(signing_key(&generated).map(|key| key.len()), Ok(32));
            assert_ne!(generated, generate());
            assert_eq!(
                signing_key("c2VjcmV0"),
                Err(SigningSecretError::MissingPrefix)
            );
            assert_eq!(signing_key("whsec_***"), Err(SigningSecretError::NotBase64));
            assert_eq!(
                signing_key("whsec_c2VjcmV0"),
                Err(SigningSecretError::BadLength(6))
            );
        }
    }
}
