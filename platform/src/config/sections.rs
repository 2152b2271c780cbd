//! The sections of [`Config`](super::Config), each with the defaults that work on a laptop.
//! Durations are written as humantime strings (`"5s"`, `"500ms"`, `"7days"`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use memoryc_crds::layout::Isolation;
use serde::{Deserialize, Serialize};

use crate::auth::secret::Secret;
use crate::domain::pii::PiiPolicy;
pub use crate::embedding::minilm::SingleTextPass;

/// Relational backend names accepted in `storage.relational_backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelationalBackend {
    Sqlite,
    Postgres,
}

/// Vector backend names accepted in `storage.vector_backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorBackend {
    Embedded,
    Milvus,
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines.
    Text,
}

/// Where the platform listens and keeps its local files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Where embedded data (SQLite files, vector index, demo key) is kept.
    pub data_dir: PathBuf,
    /// `json` (default) or `text`.
    pub log_format: LogFormat,
    /// Create a `demo` tenant at start-up and write its key to `<data_dir>/demo-api-key`.
    pub demo_tenant: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from(".memoryc"),
            log_format: LogFormat::Json,
            demo_tenant: true,
        }
    }
}

/// The databases, the vector store, Redis and the work that keeps them in step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `sqlite` (embedded default) or `postgres`.
    pub relational_backend: RelationalBackend,
    /// PostgreSQL URL, used when `relational_backend = "postgres"`.
    pub database_url: String,
    /// PostgreSQL schema of the control tables.
    pub control_schema: String,
    /// Largest PostgreSQL pool: the platform's own, and each tenant's.
    pub database_max_connections: u32,
    /// Most PostgreSQL connections open at once over all tenants' own sessions (each Shared
    /// tenant's statements run as a login of its own); the pools of tenants idle longest are
    /// closed to stay within it.
    pub database_tenant_connections: u32,
    /// How long to wait for a database connection before answering 503.
    #[serde(with = "humantime_serde")]
    pub database_acquire_timeout: Duration,
    /// `embedded` (default) or `milvus`.
    pub vector_backend: VectorBackend,
    /// Milvus gRPC endpoint, used when `vector_backend = "milvus"`.
    pub milvus_url: String,
    /// Milvus credentials (`user:password` or an API key) when its authentication is on.
    pub milvus_token: Option<Secret>,
    /// Isolation of tenants created without one: `Shared` or `Dedicated`.
    #[serde(with = "isolation_name")]
    pub default_isolation: Isolation,
    /// Redis URL; rate limits, the read cache, events and analytics locks live there, shared
    /// by every replica. Unset: all of them are kept in process.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key the platform writes (streams, locks, cache).
    pub redis_key_prefix: String,
    /// How often the outbox worker looks for vector syncs to retry.
    #[serde(with = "humantime_serde")]
    pub outbox_interval: Duration,
    /// First retry delay of a failed vector sync; doubles up to `outbox_max_retry`.
    #[serde(with = "humantime_serde")]
    pub outbox_min_retry: Duration,
    /// Longest retry delay of a failed vector sync.
    #[serde(with = "humantime_serde")]
    pub outbox_max_retry: Duration,
    /// How often access counts gathered from search results are written.
    #[serde(with = "humantime_serde")]
    pub access_flush: Duration,
    /// How long a tenant, once resolved from a credential, and its registered PostgreSQL
    /// schema are used without asking the control database again; `0s` asks every time. A
    /// tenant the operator deletes (or deletes and creates again) is seen within this time.
    #[serde(with = "humantime_serde")]
    pub tenant_cache: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            relational_backend: RelationalBackend::Sqlite,
            database_url: "postgres://postgres@127.0.0.1:5432/postgres".to_string(),
            control_schema: "memoryc_control".to_string(),
            database_max_connections: 16,
            database_tenant_connections: 32,
            database_acquire_timeout: Duration::from_secs(3),
            vector_backend: VectorBackend::Embedded,
            milvus_url: "http://127.0.0.1:19530".to_string(),
            milvus_token: None,
            default_isolation: Isolation::Shared,
            redis_url: None,
            redis_key_prefix: "memoryc:".to_string(),
            outbox_interval: Duration::from_secs(1),
            outbox_min_retry: Duration::from_millis(500),
            outbox_max_retry: Duration::from_secs(60),
            access_flush: Duration::from_secs(1),
            tenant_cache: Duration::from_secs(5),
        }
    }
}

/// The embedding model and how it is run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddingConfig {
    /// Directory with the all-MiniLM-L6-v2 files (config.json, tokenizer.json, model.safetensors).
    pub model_dir: PathBuf,
    /// Name of the embedding model; the platform runs `all-MiniLM-L6-v2` (also accepted as
    /// `sentence-transformers/all-MiniLM-L6-v2`) and refuses to start with any other.
    pub model: String,
    /// Largest batch the embedder coalesces concurrent requests into.
    pub batch_size: usize,
    /// Batches the model computes at the same time; 0 means one per CPU, at most 4 (see
    /// `embedding::threads`).
    pub passes: usize,
    /// `sequence` (default): a single text takes the single-sequence encoder; `candle`: it
    /// takes candle's batched pass, as batches do.
    pub single_text_pass: SingleTextPass,
    /// Vectors of recent texts kept in memory (repeated searches skip the model).
    pub cache_entries: usize,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        Self {
            model_dir: PathBuf::from(".venv/model"),
            model: memoryc_crds::layout::EMBEDDING_MODEL.to_string(),
            batch_size: 32,
            passes: 0,
            single_text_pass: SingleTextPass::Sequence,
            cache_entries: 10_000,
        }
    }
}

/// Events, relationships and scheduled analytics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// Record analytics events, derive relationships and run scheduled analytics.
    pub enabled: bool,
    /// When each tenant's analytics run, as a cron expression with seconds
    /// (`sec min hour day month weekday`), in UTC.
    pub schedule: String,
    /// How often the scheduler checks which tenants are due.
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
    /// Least time between two of a tenant's runs asked for through `POST /analytics/run`
    /// (`0s`: no limit; a run in progress still refuses a second).
    #[serde(with = "humantime_serde")]
    pub min_interval: Duration,
    /// How long a generated insight stays valid.
    #[serde(with = "humantime_serde")]
    pub insight_ttl: Duration,
    /// How far back scheduled analytics look.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Cosine similarity from which two memories are SIMILAR.
    pub similar_threshold: f32,
    /// Cosine similarity from which two memories may CONTRADICT or BUILD_ON one another.
    pub related_threshold: f32,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            schedule: "0 0 * * * *".to_string(),
            tick: Duration::from_secs(30),
            min_interval: Duration::from_secs(60),
            insight_ttl: Duration::from_secs(168 * 3_600),
            window: Duration::from_secs(30 * 86_400),
            similar_threshold: 0.80,
            related_threshold: 0.55,
        }
    }
}

/// What one caller may ask of the platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests per credential, route and minute for tenants without their own limit; 0 = off.
    pub rate_limit_per_minute: u32,
    /// A tenant's requests per route and minute, all its credentials together, are at most
    /// this many times its per-credential limit.
    pub rate_limit_tenant_multiple: u32,
    /// Failed authentications per client address and minute; past it the address is refused
    /// (429) before its credentials are looked up, until the minute ends. 0 = off.
    pub auth_failures_per_minute: u32,
    /// Longest time one request may take before it is answered with 503.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 600,
            rate_limit_tenant_multiple: 10,
            auth_failures_per_minute: 30,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Who is let in, what they may do, and what is kept from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Shared secret (at least 32 bytes) that signs HS256 JWTs; unset disables HS256.
    pub jwt_hs256_secret: Option<Secret>,
    /// JWKS file with the public keys of RS256/ES256 JWTs.
    pub jwt_jwks_file: Option<PathBuf>,
    /// JWKS URL with the public keys of RS256/ES256 JWTs (instead of a file).
    pub jwt_jwks_url: Option<String>,
    /// Required `iss` of JWTs, if set.
    pub jwt_issuer: Option<String>,
    /// Required `aud` of JWTs, if set; tokens naming an audience are refused when unset.
    pub jwt_audience: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf` (at most 5 minutes).
    #[serde(with = "humantime_serde")]
    pub jwt_leeway: Duration,
    /// Directory with `model.conf` and `policy.csv` to use instead of the shipped policy.
    pub policy_dir: Option<PathBuf>,
    /// How often each replica re-reads the access policy (tenants' grants).
    #[serde(with = "humantime_serde")]
    pub policy_refresh: Duration,
    /// How long a verified API key is trusted without asking the database again; `0s` asks on
    /// every request. A key revoked through this replica stops at once; revoked elsewhere
    /// (another replica, the operator), within this time.
    #[serde(with = "humantime_serde")]
    pub api_key_cache: Duration,
    /// PII policy of tenants that set none: `allow`, `mask` or `reject`.
    pub pii_default_policy: PiiPolicy,
    /// Proxies (addresses or networks, e.g. `["10.0.0.0/8"]`) whose `X-Forwarded-For` names
    /// the client; from anyone else the header is ignored and the socket's peer is the client.
    pub trusted_proxies: Vec<String>,
    /// Browser origins allowed to call the API (CORS), e.g. `["https://console.example"]`;
    /// `["*"]` allows any; empty (default) sends no CORS headers.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            jwt_hs256_secret: None,
            jwt_jwks_file: None,
            jwt_jwks_url: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_leeway: Duration::from_secs(30),
            policy_dir: None,
            policy_refresh: Duration::from_secs(5),
            api_key_cache: Duration::from_secs(5),
            pii_default_policy: PiiPolicy::Mask,
            trusted_proxies: Vec::new(),
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// The read cache: one memory, a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Serve repeated reads from the cache; writes invalidate them.
    pub enabled: bool,
    /// Longest time a cached read is served.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Most entries of the in-process cache (used when `storage.redis_url` is unset).
    pub max_entries: usize,
    /// Prefix of every cache key in Redis, so platforms sharing one Redis keep apart.
    pub key_prefix: String,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl: Duration::from_secs(300),
            max_entries: 10_000,
            key_prefix: "memoryc:cache:".to_string(),
        }
    }
}

/// `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Bearer token scrapers must present at `/metrics`; unset (default) serves them publicly,
    /// as Prometheus exporters usually are.
    pub token: Option<Secret>,
    /// How often the memories-per-tenant and outbox gauges are recounted.
    #[serde(with = "humantime_serde")]
    pub refresh: Duration,
    /// Series labelled with a tenant (live memories per tenant). Off by default unless `token`
    /// is set: anonymous scrapers must not learn the tenants' names.
    pub tenant_series: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            token: None,
            refresh: Duration::from_secs(15),
            tenant_series: false,
        }
    }
}

/// Integrations: outbound webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntegrationsConfig {
    /// Deliver webhooks from this process (each replica sends a share).
    pub enabled: bool,
    /// Networks webhooks may reach though they are not public (loopback, private, link-local),
    /// as addresses or networks, e.g. `["127.0.0.1/32"]`; plain http is allowed to these only.
    /// None by default: a tenant's URL cannot reach the platform's own network.
    pub allowed_networks: Vec<String>,
    /// Longest wait for a receiver's answer.
    #[serde(with = "humantime_serde")]
    pub webhook_timeout: Duration,
    /// Attempts before a delivery is dead-lettered.
    pub webhook_max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter.
    #[serde(with = "humantime_serde")]
    pub webhook_retry_min: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde")]
    pub webhook_retry_max: Duration,
    /// Deliveries sent at once by one replica.
    pub webhook_concurrency: usize,
    /// How often due deliveries are looked for when nothing new was queued here.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long delivered and dead deliveries stay listed before they are removed.
    #[serde(with = "humantime_serde")]
    pub delivery_retention: Duration,
    /// GitHub's GraphQL endpoint (a GitHub Enterprise Server's is `https://HOST/api/graphql`).
    pub github_api_url: String,
    /// Longest wait for one GitHub answer.
    #[serde(with = "humantime_serde")]
    pub github_timeout: Duration,
    /// Longest rate-limit wait a sync sits out; a longer one pauses the sync until the limit
    /// resets, and it goes on from its cursor then.
    #[serde(with = "humantime_serde")]
    pub github_max_wait: Duration,
    /// First wait before a GitHub request that failed with a `5xx` or a lost connection is
    /// retried (four retries, doubling, with jitter).
    #[serde(with = "humantime_serde")]
    pub github_retry_min: Duration,
    /// Longest wait for an LLM provider's answer.
    #[serde(with = "humantime_serde")]
    pub llm_timeout: Duration,
    /// Consecutive failures that open a provider's circuit breaker.
    pub llm_breaker_failures: u32,
    /// How long an open breaker sends calls to the next provider before one probe is let
    /// through.
    #[serde(with = "humantime_serde")]
    pub llm_breaker_open: Duration,
}

impl Default for IntegrationsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allowed_networks: Vec::new(),
            webhook_timeout: Duration::from_secs(10),
            webhook_max_attempts: 8,
            webhook_retry_min: Duration::from_secs(5),
            webhook_retry_max: Duration::from_secs(3600),
            webhook_concurrency: 16,
            poll_interval: Duration::from_secs(1),
            delivery_retention: Duration::from_secs(7 * 24 * 3600),
            github_api_url: "https://api.github.com/graphql".to_string(),
            github_timeout: Duration::from_secs(30),
            github_max_wait: Duration::from_secs(60),
            github_retry_min: Duration::from_secs(1),
            llm_timeout: Duration::from_secs(30),
            llm_breaker_failures: 5,
            llm_breaker_open: Duration::from_secs(30),
        }
    }
}

/// `Shared` / `Dedicated` (either case) as the CRD spells them.
mod isolation_name {
    use memoryc_crds::layout::Isolation;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(value: &Isolation, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Isolation, D::Error> {
        let name = String::deserialize(deserializer)?;
        Isolation::parse(&name).ok_or_else(|| {
            D::Error::custom(format!(
                "isolation must be Shared or Dedicated, not {name:?}"
            ))
        })
    }
}
