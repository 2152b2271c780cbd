//! Platform configuration: typed sections (server, storage, embedding, analytics, limits,
//! security, cache, metrics, integrations), read from an optional TOML file and `MEMORYC_*` environment
//! variables (the environment wins), with defaults that work on a laptop.
//!
//! In the file a setting is `[section] name = value`; in the environment it is
//! `MEMORYC_<SECTION>__<NAME>` (two underscores), e.g. `MEMORYC_STORAGE__DATABASE_URL`.
//! Durations are humantime strings (`"5s"`, `"500ms"`, `"7days"`). The flat names of the
//! previous release are still read, with a warning ([`legacy`]).

pub mod legacy;
mod sections;

use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::Dict;
use serde::{Deserialize, Serialize};

use crate::auth::jwt::JwtSettings;
pub use legacy::RenamedSetting;
pub use sections::{
    AnalyticsConfig, CacheConfig, EmbeddingConfig, IntegrationsConfig, LimitsConfig, LogFormat,
    MetricsConfig, RelationalBackend, SecurityConfig, ServerConfig, SingleTextPass, StorageConfig,
    VectorBackend,
};

/// Prefix of every environment variable the platform reads.
pub const ENV_PREFIX: &str = "MEMORYC_";

/// Separates a section from a setting in an environment variable's name.
const ENV_SECTION_SEPARATOR: &str = "__";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub embedding: EmbeddingConfig,
    pub analytics: AnalyticsConfig,
    pub limits: LimitsConfig,
    pub security: SecurityConfig,
    pub cache: CacheConfig,
    pub metrics: MetricsConfig,
    pub integrations: IntegrationsConfig,
}

/// A configuration as loaded, with the old setting names it was given.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Old names found in the file or the environment; log each as a warning.
    pub renamed: Vec<RenamedSetting>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// `MEMORYC_SECTION__NAME` for the setting `section.name`, `MEMORYC_NAME` for a flat one.
pub fn environment_variable(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replace('.', ENV_SECTION_SEPARATOR).to_uppercase()
    )
}

impl Config {
    /// Defaults, then the TOML file named by `MEMORYC_CONFIG` (or `memoryc.toml` if present),
    /// then `MEMORYC_*` variables; old names are read before new ones, so a new name wins.
    pub fn load() -> Result<Loaded, ConfigError> {
        let file = std::env::var("MEMORYC_CONFIG").unwrap_or_else(|_| "memoryc.toml".to_string());
        let (file_settings, mut renamed) = Self::read_file(&file)?;
        let (old_variables, renamed_variables) = legacy::from_environment(std::env::vars());
        renamed.extend(renamed_variables);
        // Other tools share the MEMORYC_ prefix (the operator, the test suite); only this
        // struct's own keys are read from the environment, while the file rejects typos.
        let known = Self::keys();
        let config: Self = Figment::from(Serialized::defaults(Config::default()))
            .merge(file_settings)
            .merge(Serialized::defaults(old_variables))
            .merge(
                Env::prefixed(ENV_PREFIX)
                    .split(ENV_SECTION_SEPARATOR)
                    .filter(move |key| known.iter().any(|k| key == k.as_str())),
            )
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.check()?;
        Ok(Loaded { config, renamed })
    }

    /// The file's settings with old names moved to their sections. A file without old names
    /// is merged as it is, so errors name it.
    fn read_file(path: &str) -> Result<(Figment, Vec<RenamedSetting>), ConfigError> {
        let file = Figment::from(Toml::file(path));
        let mut dict: Dict = file
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let renamed = legacy::translate_file(&mut dict);
        if renamed.is_empty() {
            return Ok((file, renamed));
        }
        Ok((Figment::from(Serialized::defaults(dict)), renamed))
    }

    /// Choices the types alone cannot refuse.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !memoryc_crds::layout::is_local_embedding_model(&self.embedding.model) {
            return Err(ConfigError::Invalid(format!(
                "embedding.model {:?} is not available: this platform embeds with {} ({} dimensions)",
                self.embedding.model,
                memoryc_crds::layout::EMBEDDING_MODEL,
                memoryc_crds::layout::VECTOR_DIMENSION
            )));
        }
        let integrations = &self.integrations;
        if integrations.webhook_max_attempts == 0 || integrations.webhook_concurrency == 0 {
            return Err(ConfigError::Invalid(
                "integrations.webhook_max_attempts and integrations.webhook_concurrency must be at least 1"
                    .to_string(),
            ));
        }
        if integrations.webhook_retry_min > integrations.webhook_retry_max {
            return Err(ConfigError::Invalid(
                "integrations.webhook_retry_min must not exceed integrations.webhook_retry_max"
                    .to_string(),
            ));
        }
        crate::services::integrations::webhook::destination::DestinationPolicy::new(
            &integrations.allowed_networks,
        )
        .map_err(|error| ConfigError::Invalid(format!("integrations.allowed_networks: {error}")))?;
        Ok(())
    }

    /// Every setting as `section.name`, lowercase, as in the file.
    fn keys() -> Vec<String> {
        let Ok(serde_json::Value::Object(sections)) = serde_json::to_value(Config::default())
        else {
            return Vec::new();
        };
        sections
            .iter()
            .flat_map(|(section, settings)| {
                let names: Vec<String> = match settings {
                    serde_json::Value::Object(settings) => settings
                        .keys()
                        .map(|name| format!("{section}.{name}"))
                        .collect(),
                    _ => vec![section.clone()],
                };
                names
            })
            .collect()
    }

    pub fn jwt_settings(&self) -> JwtSettings {
        let security = &self.security;
        JwtSettings {
            hs256_secret: security.jwt_hs256_secret.clone(),
            jwks_file: security.jwt_jwks_file.clone(),
            jwks_url: security.jwt_jwks_url.clone(),
            issuer: security.jwt_issuer.clone(),
            audience: security.jwt_audience.clone(),
            leeway_seconds: security.jwt_leeway.as_secs(),
        }
    }

    /// The environment variable of every setting: `MEMORYC_<SECTION>__<NAME>`. Any other
    /// `MEMORYC_` variable is ignored, except the old names below.
    pub fn environment_variables() -> Vec<String> {
        Self::keys()
            .iter()
            .map(|key| environment_variable(key))
            .collect()
    }

    /// The old flat `MEMORYC_<NAME>` variables still read, each with a warning.
    pub fn renamed_environment_variables() -> Vec<String> {
        legacy::old_names().map(environment_variable).collect()
    }

    pub fn sqlite_dir(&self) -> PathBuf {
        self.server.data_dir.join("sqlite")
    }

    pub fn vector_dir(&self) -> PathBuf {
        self.server.data_dir.join("vectors")
    }

    pub fn demo_key_path(&self) -> PathBuf {
        self.server.data_dir.join("demo-api-key")
    }
}

#[cfg(test)]
// figment's Jail closures must return figment's (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::auth::secret::Secret;
    use crate::domain::pii::PiiPolicy;
    use memoryc_crds::layout::Isolation;

    /// Runs `case` in a figment jail with no environment variables: what the test runner
    /// exported (`MEMORYC_MODEL_DIR`, say) is no part of these cases.
    fn jailed(case: impl FnOnce(&mut figment::Jail) -> Result<(), figment::Error>) {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            case(jail)
        });
    }

    fn load() -> Result<Config, String> {
        Config::load()
            .map(|loaded| loaded.config)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        jailed(|jail| {
            jail.create_file(
                "memoryc.toml",
                "[server]\nlisten = \"127.0.0.1:9000\"\n[storage]\nvector_backend = \"milvus\"\n",
            )?;
            jail.set_env("MEMORYC_SERVER__LISTEN", "127.0.0.1:9100");
            jail.set_env("MEMORYC_STORAGE__RELATIONAL_BACKEND", "postgres");
            jail.set_env("MEMORYC_TEST_DATABASE_URL", "belongs to another tool");
            let config = load()?;
            assert_eq!(
                config.server.listen,
                SocketAddr::from(([127, 0, 0, 1], 9100))
            );
            assert_eq!(config.storage.vector_backend, VectorBackend::Milvus);
            assert_eq!(
                config.storage.relational_backend,
                RelationalBackend::Postgres
            );
            assert_eq!(config.server.data_dir, PathBuf::from(".memoryc"));
            Ok(())
        });
    }

    #[test]
    fn durations_are_humantime_and_enums_are_checked() {
        jailed(|jail| {
            jail.create_file(
                "memoryc.toml",
                "[storage]\noutbox_interval = \"250ms\"\ndefault_isolation = \"Dedicated\"\n\
                 [analytics]\ninsight_ttl = \"2days\"\n[server]\nlog_format = \"text\"\n",
            )?;
            jail.set_env("MEMORYC_SECURITY__API_KEY_CACHE", "0s");
            let config = load()?;
            assert_eq!(config.storage.outbox_interval, Duration::from_millis(250));
            assert_eq!(config.storage.default_isolation, Isolation::Dedicated);
            assert_eq!(
                config.analytics.insight_ttl,
                Duration::from_secs(2 * 86_400)
            );
            assert_eq!(config.server.log_format, LogFormat::Text);
            assert_eq!(config.security.api_key_cache, Duration::ZERO);

            jail.set_env("MEMORYC_STORAGE__OUTBOX_INTERVAL", "1000");
            let refused = load().expect_err("a duration needs its unit");
            assert!(
                refused.to_lowercase().contains("outbox_interval"),
                "{refused}"
            );
            jail.set_env("MEMORYC_STORAGE__OUTBOX_INTERVAL", "1s");
            jail.set_env("MEMORYC_STORAGE__DEFAULT_ISOLATION", "Private");
            let refused = load().expect_err("no such isolation");
            assert!(refused.contains("Shared or Dedicated"), "{refused}");
            jail.set_env("MEMORYC_STORAGE__DEFAULT_ISOLATION", "shared");
            jail.set_env("MEMORYC_SERVER__LOG_FORMAT", "xml");
            assert!(load().is_err(), "xml is no log format");
            Ok(())
        });
    }

    #[test]
    fn old_names_are_read_with_a_warning_naming_the_new_one() {
        jailed(|jail| {
            jail.create_file(
                "memoryc.toml",
                "outbox_interval_ms = 250\ninsight_ttl_hours = 24\n\
                 [storage]\ncontrol_schema = \"from_the_file\"\n",
            )?;
            jail.set_env("MEMORYC_DATABASE_URL", "postgres://old@127.0.0.1/old");
            jail.set_env("MEMORYC_API_KEY_CACHE_MS", "1500");
            jail.set_env("MEMORYC_CACHE_ENABLED", "false");
            let loaded = Config::load().map_err(|e| e.to_string())?;
            let config = &loaded.config;
            assert_eq!(config.storage.outbox_interval, Duration::from_millis(250));
            assert_eq!(
                config.analytics.insight_ttl,
                Duration::from_secs(24 * 3_600)
            );
            assert_eq!(config.storage.control_schema, "from_the_file");
            assert_eq!(config.storage.database_url, "postgres://old@127.0.0.1/old");
            assert_eq!(config.security.api_key_cache, Duration::from_millis(1_500));
            assert!(!config.cache.enabled);
            let warnings: Vec<String> = loaded.renamed.iter().map(ToString::to_string).collect();
            assert_eq!(warnings.len(), 5, "{warnings:?}");
            assert!(
                warnings
                    .iter()
                    .any(|w| w.starts_with("MEMORYC_DATABASE_URL ")
                        && w.contains("MEMORYC_STORAGE__DATABASE_URL")),
                "{warnings:?}"
            );
            assert!(
                warnings.iter().any(|w| w.starts_with("outbox_interval_ms ")
                    && w.contains("storage.outbox_interval")),
                "{warnings:?}"
            );

            // A value given both ways takes the new name's.
            jail.set_env(
                "MEMORYC_STORAGE__DATABASE_URL",
                "postgres://new@127.0.0.1/new",
            );
            let config = load()?;
            assert_eq!(config.storage.database_url, "postgres://new@127.0.0.1/new");
            Ok(())
        });
    }

    #[test]
    fn a_file_in_the_new_form_loads_without_warnings() {
        jailed(|jail| {
            jail.create_file("memoryc.toml", "[cache]\nttl = \"1m\"\nmax_entries = 500\n")?;
            let loaded = Config::load().map_err(|e| e.to_string())?;
            assert!(loaded.renamed.is_empty(), "{:?}", loaded.renamed);
            assert_eq!(loaded.config.cache.ttl, Duration::from_secs(60));
            assert_eq!(loaded.config.cache.max_entries, 500);
            Ok(())
        });
    }

    #[test]
    fn only_the_local_embedding_model_is_accepted() {
        jailed(|jail| {
            jail.set_env(
                "MEMORYC_EMBEDDING__MODEL",
                "sentence-transformers/all-MiniLM-L6-v2",
            );
            load()?;
            jail.set_env("MEMORYC_EMBEDDING__MODEL", "text-embedding-3-small");
            let refused = load().expect_err("unknown model");
            assert!(refused.contains("text-embedding-3-small"), "{refused}");
            assert!(refused.contains("all-MiniLM-L6-v2"), "{refused}");
            Ok(())
        });
    }

    #[test]
    fn security_settings_come_from_the_environment() {
        jailed(|jail| {
            jail.set_env(
                "MEMORYC_SECURITY__CORS_ALLOWED_ORIGINS",
                r#"["https://console.example"]"#,
            );
            jail.set_env(
                "MEMORYC_SECURITY__JWT_HS256_SECRET",
                "a-secret-from-the-environment-32b",
            );
            jail.set_env("MEMORYC_STORAGE__REDIS_URL", "redis://127.0.0.1:6379");
            jail.set_env("MEMORYC_LIMITS__RATE_LIMIT_PER_MINUTE", "42");
            jail.set_env("MEMORYC_SECURITY__PII_DEFAULT_POLICY", "reject");
            jail.set_env("MEMORYC_SECURITY__JWT_LEEWAY", "10s");
            jail.set_env(
                "MEMORYC_METRICS__TOKEN",
                "a-metrics-token-from-the-environment",
            );
            let config = load()?;
            assert_eq!(
                config.security.cors_allowed_origins,
                vec!["https://console.example"]
            );
            assert_eq!(
                config
                    .security
                    .jwt_hs256_secret
                    .as_ref()
                    .map(Secret::expose),
                Some("a-secret-from-the-environment-32b")
            );
            assert!(!format!("{config:?}").contains("a-secret-from-the-environment"));
            assert_eq!(
                config.storage.redis_url.as_deref(),
                Some("redis://127.0.0.1:6379")
            );
            assert_eq!(config.limits.rate_limit_per_minute, 42);
            assert_eq!(config.security.pii_default_policy, PiiPolicy::Reject);
            assert_eq!(config.jwt_settings().leeway_seconds, 10);
            assert_eq!(
                config.metrics.token.as_ref().map(Secret::expose),
                Some("a-metrics-token-from-the-environment")
            );
            assert!(!format!("{config:?}").contains("a-metrics-token"));
            Ok(())
        });
    }

    #[test]
    fn every_setting_has_one_variable_of_its_section() {
        let variables = Config::environment_variables();
        assert!(variables.contains(&"MEMORYC_STORAGE__DATABASE_URL".to_string()));
        assert!(variables.contains(&"MEMORYC_METRICS__REFRESH".to_string()));
        assert!(variables.iter().all(|v| v.contains("__")), "{variables:?}");
        let old = Config::renamed_environment_variables();
        assert!(old.contains(&"MEMORYC_DATABASE_URL".to_string()));
        // The integrations section is newer than the rename: its settings have no old name.
        let since_rename = variables
            .iter()
            .filter(|v| v.starts_with("MEMORYC_INTEGRATIONS__"))
            .count();
        assert_eq!(since_rename, 16);
        assert_eq!(old.len(), variables.len() - since_rename);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        jailed(|jail| {
            jail.create_file("memoryc.toml", "[server]\nlistn = \"127.0.0.1:9000\"\n")?;
            assert!(Config::load().is_err());
            jail.create_file("memoryc.toml", "listn = \"127.0.0.1:9000\"\n")?;
            assert!(Config::load().is_err());
            Ok(())
        });
    }
}
