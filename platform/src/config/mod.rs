//! Platform configuration: one typed struct, read from an optional TOML file and `MEMORYC_*`
//! environment variables (the environment wins), with defaults that work on a laptop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::auth::jwt::JwtSettings;
use crate::auth::secret::Secret;
use crate::domain::pii::PiiPolicy;
pub use crate::embedding::minilm::SingleTextPass;

/// Relational backend names accepted in `relational_backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelationalBackend {
    Sqlite,
    Postgres,
}

/// Vector backend names accepted in `vector_backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorBackend {
    Embedded,
    Milvus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Where embedded data (SQLite files, vector index, demo key) is kept.
    pub data_dir: PathBuf,
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
    /// How long to wait for a database connection before answering 503, in milliseconds.
    pub database_acquire_timeout_ms: u64,
    /// `embedded` (default) or `milvus`.
    pub vector_backend: VectorBackend,
    /// Milvus gRPC endpoint, used when `vector_backend = "milvus"`.
    pub milvus_url: String,
    /// Milvus credentials (`user:password` or an API key) when its authentication is on.
    pub milvus_token: Option<Secret>,
    /// Directory with the all-MiniLM-L6-v2 files (config.json, tokenizer.json, model.safetensors).
    pub model_dir: PathBuf,
    /// Name of the embedding model; the platform runs `all-MiniLM-L6-v2` (also accepted as
    /// `sentence-transformers/all-MiniLM-L6-v2`) and refuses to start with any other.
    pub embedding_model: String,
    /// Largest batch the embedder coalesces concurrent requests into.
    pub embedding_batch_size: usize,
    /// Batches the model computes at the same time; 0 means one per CPU, at most 4 (see
    /// `embedding::threads`).
    pub embedding_passes: usize,
    /// `sequence` (default): a single text takes the single-sequence encoder; `candle`: it
    /// takes candle's batched pass, as batches do.
    pub embedding_single_text_pass: SingleTextPass,
    /// Vectors of recent texts kept in memory (repeated searches skip the model).
    pub embedding_cache_entries: usize,
    /// Isolation of tenants created without one: `Shared` or `Dedicated`.
    pub default_isolation: String,
    /// Create a `demo` tenant at start-up and write its key to `<data_dir>/demo-api-key`.
    pub demo_tenant: bool,
    /// How often the outbox worker looks for vector syncs to retry, in milliseconds.
    pub outbox_interval_ms: u64,
    /// First retry delay of a failed vector sync, in milliseconds; doubles up to the maximum.
    pub outbox_min_retry_ms: u64,
    /// Longest retry delay of a failed vector sync, in milliseconds.
    pub outbox_max_retry_ms: u64,
    /// Longest time one request may take before it is answered with 503, in milliseconds.
    pub request_timeout_ms: u64,
    /// Log format: `json` (default) or `text`.
    pub log_format: String,
    /// Directory with `model.conf` and `policy.csv` to use instead of the shipped policy.
    pub policy_dir: Option<PathBuf>,
    /// How often each replica re-reads the access policy (tenants' grants), in milliseconds.
    pub policy_refresh_ms: u64,
    /// How long a verified API key is trusted without asking the database again, in
    /// milliseconds; 0 asks on every request. A key revoked through this replica stops at
    /// once; revoked elsewhere (another replica, the operator), within this time.
    pub api_key_cache_ms: u64,
    /// How long a tenant, once resolved from a credential, and its registered PostgreSQL
    /// schema are used without asking the control database again, in milliseconds; 0 asks
    /// every time. A tenant the operator deletes (or deletes and creates again) is seen within
    /// this time.
    pub tenant_cache_ms: u64,
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
    /// Clock skew tolerated on `exp`/`nbf`, in seconds (at most 300).
    pub jwt_leeway_seconds: u64,
    /// PII policy of tenants that set none: `allow`, `mask` or `reject`.
    pub pii_default_policy: PiiPolicy,
    /// Redis URL; rate limits and the read cache live there, shared by every replica.
    /// Unset: both are kept in process.
    pub redis_url: Option<String>,
    /// Serve repeated reads (one memory, a search) from the cache; writes invalidate them.
    pub cache_enabled: bool,
    /// Longest time a cached read is served, in seconds.
    pub cache_ttl_seconds: u64,
    /// Most entries of the in-process cache (used when `redis_url` is unset).
    pub cache_max_entries: usize,
    /// Prefix of every cache key in Redis, so platforms sharing one Redis keep apart.
    pub cache_key_prefix: String,
    /// Requests per credential, route and minute for tenants without their own limit; 0 = off.
    pub rate_limit_per_minute: u32,
    /// A tenant's requests per route and minute, all its credentials together, are at most
    /// this many times its per-credential limit.
    pub rate_limit_tenant_multiple: u32,
    /// Failed authentications per client address and minute; past it the address is refused
    /// (429) before its credentials are looked up, until the minute ends. 0 = off.
    pub auth_failures_per_minute: u32,
    /// Proxies (addresses or networks, e.g. `["10.0.0.0/8"]`) whose `X-Forwarded-For` names
    /// the client; from anyone else the header is ignored and the socket's peer is the client.
    pub trusted_proxies: Vec<String>,
    /// Browser origins allowed to call the API (CORS), e.g. `["https://console.example"]`;
    /// `["*"]` allows any; empty (default) sends no CORS headers.
    pub cors_allowed_origins: Vec<String>,
    /// Record analytics events, derive relationships and run scheduled analytics.
    pub analytics_enabled: bool,
    /// When each tenant's analytics run, as a cron expression with seconds
    /// (`sec min hour day month weekday`), in UTC.
    pub analytics_schedule: String,
    /// How often the scheduler checks which tenants are due, in seconds.
    pub analytics_tick_seconds: u64,
    /// Least time between two of a tenant's runs asked for through `POST /analytics/run`, in
    /// seconds (0: no limit; a run in progress still refuses a second).
    pub analytics_min_interval_seconds: u64,
    /// How long a generated insight stays valid, in hours.
    pub insight_ttl_hours: u64,
    /// How far back scheduled analytics look, in days.
    pub analytics_window_days: u64,
    /// Cosine similarity from which two memories are SIMILAR.
    pub relationship_similar_threshold: f32,
    /// Cosine similarity from which two memories may CONTRADICT or BUILD_ON one another.
    pub relationship_related_threshold: f32,
    /// Prefix of every Redis key the platform writes (streams, locks, cache).
    pub redis_key_prefix: String,
    /// Bearer token scrapers must present at `/metrics`; unset (default) serves them publicly,
    /// as Prometheus exporters usually are.
    pub metrics_token: Option<Secret>,
    /// How often the memories-per-tenant and outbox gauges are recounted, in milliseconds.
    pub metrics_refresh_ms: u64,
    /// Series labelled with a tenant (live memories per tenant) in the metrics. Off by default
    /// unless `metrics_token` is set: anonymous scrapers must not learn the tenants' names.
    pub metrics_tenant_series: bool,
    /// How often access counts gathered from search results are written, in milliseconds.
    pub access_flush_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from(".memoryc"),
            relational_backend: RelationalBackend::Sqlite,
            database_url: "postgres://postgres@127.0.0.1:5432/postgres".to_string(),
            control_schema: "memoryc_control".to_string(),
            database_max_connections: 16,
            database_tenant_connections: 32,
            database_acquire_timeout_ms: 3_000,
            vector_backend: VectorBackend::Embedded,
            milvus_url: "http://127.0.0.1:19530".to_string(),
            milvus_token: None,
            model_dir: PathBuf::from(".venv/model"),
            embedding_model: memoryc_crds::layout::EMBEDDING_MODEL.to_string(),
            embedding_batch_size: 32,
            embedding_passes: 0,
            embedding_single_text_pass: SingleTextPass::Sequence,
            embedding_cache_entries: 10_000,
            default_isolation: "Shared".to_string(),
            demo_tenant: true,
            outbox_interval_ms: 1_000,
            outbox_min_retry_ms: 500,
            outbox_max_retry_ms: 60_000,
            request_timeout_ms: 30_000,
            log_format: "json".to_string(),
            policy_dir: None,
            policy_refresh_ms: 5_000,
            api_key_cache_ms: 5_000,
            tenant_cache_ms: 5_000,
            jwt_hs256_secret: None,
            jwt_jwks_file: None,
            jwt_jwks_url: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_leeway_seconds: 30,
            pii_default_policy: PiiPolicy::Mask,
            redis_url: None,
            cache_enabled: true,
            cache_ttl_seconds: 300,
            cache_max_entries: 10_000,
            cache_key_prefix: "memoryc:cache:".to_string(),
            rate_limit_per_minute: 600,
            rate_limit_tenant_multiple: 10,
            auth_failures_per_minute: 30,
            trusted_proxies: Vec::new(),
            cors_allowed_origins: Vec::new(),
            analytics_enabled: true,
            analytics_schedule: "0 0 * * * *".to_string(),
            analytics_tick_seconds: 30,
            analytics_min_interval_seconds: 60,
            insight_ttl_hours: 168,
            analytics_window_days: 30,
            relationship_similar_threshold: 0.80,
            relationship_related_threshold: 0.55,
            redis_key_prefix: "memoryc:".to_string(),
            metrics_token: None,
            metrics_refresh_ms: 15_000,
            metrics_tenant_series: false,
            access_flush_ms: 1_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then the TOML file named by `MEMORYC_CONFIG` (or `memoryc.toml` if present),
    /// then `MEMORYC_*` variables.
    pub fn load() -> Result<Self, ConfigError> {
        let file = std::env::var("MEMORYC_CONFIG").unwrap_or_else(|_| "memoryc.toml".to_string());
        // Other tools share the MEMORYC_ prefix (the operator, the test suite); only this
        // struct's own keys are read from the environment, while the file rejects typos.
        let known = Self::keys();
        let config: Self = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(file))
            .merge(
                Env::prefixed("MEMORYC_")
                    .filter(move |key| known.iter().any(|k| key == k.as_str())),
            )
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    /// Choices the types alone cannot refuse.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !memoryc_crds::layout::is_local_embedding_model(&self.embedding_model) {
            return Err(ConfigError::Invalid(format!(
                "embedding_model {:?} is not available: this platform embeds with {} ({} dimensions)",
                self.embedding_model,
                memoryc_crds::layout::EMBEDDING_MODEL,
                memoryc_crds::layout::VECTOR_DIMENSION
            )));
        }
        Ok(())
    }

    /// Names of every setting, lowercase, as they appear in the file.
    fn keys() -> Vec<String> {
        match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    pub fn jwt_settings(&self) -> JwtSettings {
        JwtSettings {
            hs256_secret: self.jwt_hs256_secret.clone(),
            jwks_file: self.jwt_jwks_file.clone(),
            jwks_url: self.jwt_jwks_url.clone(),
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            leeway_seconds: self.jwt_leeway_seconds,
        }
    }

    pub fn database_acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.database_acquire_timeout_ms)
    }

    /// The environment variable of every setting: `MEMORYC_` and the field's name in capitals.
    /// Any other `MEMORYC_` variable is ignored.
    pub fn environment_variables() -> Vec<String> {
        let fields = serde_json::to_value(Self::default())
            .ok()
            .and_then(|value| value.as_object().cloned())
            .unwrap_or_default();
        fields
            .keys()
            .map(|name| format!("MEMORYC_{}", name.to_uppercase()))
            .collect()
    }

    pub fn sqlite_dir(&self) -> PathBuf {
        self.data_dir.join("sqlite")
    }

    pub fn vector_dir(&self) -> PathBuf {
        self.data_dir.join("vectors")
    }

    pub fn demo_key_path(&self) -> PathBuf {
        self.data_dir.join("demo-api-key")
    }

    pub fn cache_ttl(&self) -> Duration {
        Duration::from_secs(self.cache_ttl_seconds)
    }
}

#[cfg(test)]
// figment's Jail closures must return figment's (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "memoryc.toml",
                "listen = \"127.0.0.1:9000\"\nvector_backend = \"milvus\"\n",
            )?;
            jail.set_env("MEMORYC_LISTEN", "127.0.0.1:9100");
            jail.set_env("MEMORYC_RELATIONAL_BACKEND", "postgres");
            jail.set_env("MEMORYC_TEST_DATABASE_URL", "belongs to another tool");
            let config = Config::load().map_err(|e| e.to_string())?;
            assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 9100)));
            assert_eq!(config.vector_backend, VectorBackend::Milvus);
            assert_eq!(config.relational_backend, RelationalBackend::Postgres);
            assert_eq!(config.data_dir, PathBuf::from(".memoryc"));
            Ok(())
        });
    }

    #[test]
    fn only_the_local_embedding_model_is_accepted() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "MEMORYC_EMBEDDING_MODEL",
                "sentence-transformers/all-MiniLM-L6-v2",
            );
            Config::load().map_err(|e| e.to_string())?;
            jail.set_env("MEMORYC_EMBEDDING_MODEL", "text-embedding-3-small");
            let refused = Config::load().expect_err("unknown model").to_string();
            assert!(refused.contains("text-embedding-3-small"), "{refused}");
            assert!(refused.contains("all-MiniLM-L6-v2"), "{refused}");
            Ok(())
        });
    }

    #[test]
    fn security_settings_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "MEMORYC_CORS_ALLOWED_ORIGINS",
                r#"["https://console.example"]"#,
            );
            jail.set_env(
                "MEMORYC_JWT_HS256_SECRET",
                "a-secret-from-the-environment-32b",
            );
            jail.set_env("MEMORYC_REDIS_URL", "redis://127.0.0.1:6379");
            jail.set_env("MEMORYC_RATE_LIMIT_PER_MINUTE", "42");
            jail.set_env("MEMORYC_PII_DEFAULT_POLICY", "reject");
            jail.set_env("MEMORYC_JWT_LEEWAY_SECONDS", "10");
            jail.set_env(
                "MEMORYC_METRICS_TOKEN",
                "a-metrics-token-from-the-environment",
            );
            let config = Config::load().map_err(|e| e.to_string())?;
            assert_eq!(config.cors_allowed_origins, vec!["https://console.example"]);
            assert_eq!(
                config.jwt_hs256_secret.as_ref().map(Secret::expose),
                Some("a-secret-from-the-environment-32b")
            );
            assert!(!format!("{config:?}").contains("a-secret-from-the-environment"));
            assert_eq!(config.redis_url.as_deref(), Some("redis://127.0.0.1:6379"));
            assert_eq!(config.rate_limit_per_minute, 42);
            assert_eq!(config.pii_default_policy, PiiPolicy::Reject);
            assert_eq!(config.jwt_leeway_seconds, 10);
            assert_eq!(
                config.metrics_token.as_ref().map(Secret::expose),
                Some("a-metrics-token-from-the-environment")
            );
            assert!(!format!("{config:?}").contains("a-metrics-token"));
            Ok(())
        });
    }

    #[test]
    fn metrics_settings_come_from_the_file_with_a_fifteen_second_default() {
        assert_eq!(Config::default().metrics_refresh_ms, 15_000);
        assert_eq!(Config::default().metrics_token, None);
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "memoryc.toml",
                "metrics_token = \"a-metrics-token-from-the-file\"\nmetrics_refresh_ms = 2000\n",
            )?;
            let config = Config::load().map_err(|e| e.to_string())?;
            assert_eq!(
                config.metrics_token.as_ref().map(Secret::expose),
                Some("a-metrics-token-from-the-file")
            );
            assert_eq!(config.metrics_refresh_ms, 2_000);
            Ok(())
        });
    }

    #[test]
    fn cache_settings_come_from_the_file_and_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "memoryc.toml",
                "cache_ttl_seconds = 60\ncache_max_entries = 500\n",
            )?;
            jail.set_env("MEMORYC_CACHE_ENABLED", "false");
            jail.set_env("MEMORYC_CACHE_KEY_PREFIX", "staging:cache:");
            let config = Config::load().map_err(|e| e.to_string())?;
            assert!(!config.cache_enabled);
            assert_eq!(config.cache_ttl(), Duration::from_secs(60));
            assert_eq!(config.cache_max_entries, 500);
            assert_eq!(config.cache_key_prefix, "staging:cache:");
            let defaults = Config::default();
            assert!(defaults.cache_enabled);
            assert_eq!(defaults.cache_ttl_seconds, 300);
            assert_eq!(defaults.cache_max_entries, 10_000);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("memoryc.toml", "listn = \"127.0.0.1:9000\"\n")?;
            assert!(Config::load().is_err());
            Ok(())
        });
    }
}
