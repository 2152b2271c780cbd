//! The flat setting names of the previous release (`database_url`, `outbox_interval_ms`, …),
//! still read from the TOML file and from `MEMORYC_<NAME>` variables, each with a warning that
//! names its replacement. A value given both ways takes the new name's.

use std::fmt;

use figment::value::{Dict, Value};

/// How an old value becomes the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// Same value, new place.
    Same,
    /// A number of milliseconds, now a duration.
    Milliseconds,
    Seconds,
    Hours,
    Days,
}

/// Old flat name, new `section.name`, and how the value converts.
const RENAMED: &[(&str, &str, Unit)] = &[
    ("listen", "server.listen", Unit::Same),
    ("data_dir", "server.data_dir", Unit::Same),
    ("log_format", "server.log_format", Unit::Same),
    ("demo_tenant", "server.demo_tenant", Unit::Same),
    (
        "relational_backend",
        "storage.relational_backend",
        Unit::Same,
    ),
    ("database_url", "storage.database_url", Unit::Same),
    ("control_schema", "storage.control_schema", Unit::Same),
    (
        "database_max_connections",
        "storage.database_max_connections",
        Unit::Same,
    ),
    (
        "database_tenant_connections",
        "storage.database_tenant_connections",
        Unit::Same,
    ),
    (
        "database_acquire_timeout_ms",
        "storage.database_acquire_timeout",
        Unit::Milliseconds,
    ),
    ("vector_backend", "storage.vector_backend", Unit::Same),
    ("milvus_url", "storage.milvus_url", Unit::Same),
    ("milvus_token", "storage.milvus_token", Unit::Same),
    ("default_isolation", "storage.default_isolation", Unit::Same),
    ("redis_url", "storage.redis_url", Unit::Same),
    ("redis_key_prefix", "storage.redis_key_prefix", Unit::Same),
    (
        "outbox_interval_ms",
        "storage.outbox_interval",
        Unit::Milliseconds,
    ),
    (
        "outbox_min_retry_ms",
        "storage.outbox_min_retry",
        Unit::Milliseconds,
    ),
    (
        "outbox_max_retry_ms",
        "storage.outbox_max_retry",
        Unit::Milliseconds,
    ),
    (
        "access_flush_ms",
        "storage.access_flush",
        Unit::Milliseconds,
    ),
    (
        "tenant_cache_ms",
        "storage.tenant_cache",
        Unit::Milliseconds,
    ),
    ("model_dir", "embedding.model_dir", Unit::Same),
    ("embedding_model", "embedding.model", Unit::Same),
    ("embedding_batch_size", "embedding.batch_size", Unit::Same),
    ("embedding_passes", "embedding.passes", Unit::Same),
    (
        "embedding_single_text_pass",
        "embedding.single_text_pass",
        Unit::Same,
    ),
    (
        "embedding_cache_entries",
        "embedding.cache_entries",
        Unit::Same,
    ),
    ("analytics_enabled", "analytics.enabled", Unit::Same),
    ("analytics_schedule", "analytics.schedule", Unit::Same),
    ("analytics_tick_seconds", "analytics.tick", Unit::Seconds),
    (
        "analytics_min_interval_seconds",
        "analytics.min_interval",
        Unit::Seconds,
    ),
    ("insight_ttl_hours", "analytics.insight_ttl", Unit::Hours),
    ("analytics_window_days", "analytics.window", Unit::Days),
    (
        "relationship_similar_threshold",
        "analytics.similar_threshold",
        Unit::Same,
    ),
    (
        "relationship_related_threshold",
        "analytics.related_threshold",
        Unit::Same,
    ),
    (
        "rate_limit_per_minute",
        "limits.rate_limit_per_minute",
        Unit::Same,
    ),
    (
        "rate_limit_tenant_multiple",
        "limits.rate_limit_tenant_multiple",
        Unit::Same,
    ),
    (
        "auth_failures_per_minute",
        "limits.auth_failures_per_minute",
        Unit::Same,
    ),
    (
        "request_timeout_ms",
        "limits.request_timeout",
        Unit::Milliseconds,
    ),
    ("jwt_hs256_secret", "security.jwt_hs256_secret", Unit::Same),
    ("jwt_jwks_file", "security.jwt_jwks_file", Unit::Same),
    ("jwt_jwks_url", "security.jwt_jwks_url", Unit::Same),
    ("jwt_issuer", "security.jwt_issuer", Unit::Same),
    ("jwt_audience", "security.jwt_audience", Unit::Same),
    ("jwt_leeway_seconds", "security.jwt_leeway", Unit::Seconds),
    ("policy_dir", "security.policy_dir", Unit::Same),
    (
        "policy_refresh_ms",
        "security.policy_refresh",
        Unit::Milliseconds,
    ),
    (
        "api_key_cache_ms",
        "security.api_key_cache",
        Unit::Milliseconds,
    ),
    (
        "pii_default_policy",
        "security.pii_default_policy",
        Unit::Same,
    ),
    ("trusted_proxies", "security.trusted_proxies", Unit::Same),
    (
        "cors_allowed_origins",
        "security.cors_allowed_origins",
        Unit::Same,
    ),
    ("cache_enabled", "cache.enabled", Unit::Same),
    ("cache_ttl_seconds", "cache.ttl", Unit::Seconds),
    ("cache_max_entries", "cache.max_entries", Unit::Same),
    ("cache_key_prefix", "cache.key_prefix", Unit::Same),
    ("metrics_token", "metrics.token", Unit::Same),
    ("metrics_refresh_ms", "metrics.refresh", Unit::Milliseconds),
    ("metrics_tenant_series", "metrics.tenant_series", Unit::Same),
];

/// Where an old name was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    File,
    Environment,
}

/// One old name in use: say so once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenamedSetting {
    pub source: Source,
    /// The old flat name, e.g. `outbox_interval_ms`.
    pub old: &'static str,
    /// Its replacement, e.g. `storage.outbox_interval`.
    pub new: &'static str,
}

impl RenamedSetting {
    fn spelled(&self, name: &str) -> String {
        match self.source {
            Source::File => name.to_string(),
            Source::Environment => super::environment_variable(name),
        }
    }
}

impl fmt::Display for RenamedSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = lookup(self.old).map(|(_, _, unit)| *unit);
        write!(
            f,
            "{} is a name of the previous release and will stop being read in the next; use {}",
            self.spelled(self.old),
            self.spelled(self.new),
        )?;
        if let Some(unit) = unit.filter(|unit| *unit != Unit::Same) {
            write!(f, " (a duration such as \"{}\")", example(unit))?;
        }
        Ok(())
    }
}

fn example(unit: Unit) -> &'static str {
    match unit {
        Unit::Same => "",
        Unit::Milliseconds => "500ms",
        Unit::Seconds => "30s",
        Unit::Hours => "168h",
        Unit::Days => "30days",
    }
}

fn lookup(old: &str) -> Option<&'static (&'static str, &'static str, Unit)> {
    RENAMED.iter().find(|(name, _, _)| *name == old)
}

/// Every old name, for tools that list what the platform reads.
pub fn old_names() -> impl Iterator<Item = &'static str> {
    RENAMED.iter().map(|(old, _, _)| *old)
}

/// The old value in its new form: numbers of a unit become humantime strings.
fn convert(value: Value, unit: Unit) -> Value {
    let suffix = match unit {
        Unit::Same => return value,
        Unit::Milliseconds => "ms",
        Unit::Seconds => "s",
        Unit::Hours => "h",
        Unit::Days => "days",
    };
    let number = match &value {
        Value::Num(_, number) => number.to_u128_lossy().map(|n| n.to_string()),
        Value::String(_, text) => text.trim().parse::<u64>().ok().map(|n| n.to_string()),
        _ => None,
    };
    match number {
        Some(number) => Value::from(format!("{number}{suffix}")),
        // Not a count of units: left as it is, so the error names the new setting.
        None => value,
    }
}

/// Moves the old flat keys of a file's top level to their sections, in place, and reports
/// each. New names already present win.
pub fn translate_file(dict: &mut Dict) -> Vec<RenamedSetting> {
    let mut renamed = Vec::new();
    for (old, new, unit) in RENAMED {
        let Some(value) = dict.remove(*old) else {
            continue;
        };
        renamed.push(RenamedSetting {
            source: Source::File,
            old,
            new,
        });
        insert_if_absent(dict, new, convert(value, *unit));
    }
    renamed
}

/// The old `MEMORYC_<NAME>` variables that are set, as a dictionary of new keys, and a report
/// of each.
pub fn from_environment(
    variables: impl Iterator<Item = (String, String)>,
) -> (Dict, Vec<RenamedSetting>) {
    let mut dict = Dict::new();
    let mut renamed = Vec::new();
    for (name, raw) in variables {
        let Some(old) = name.strip_prefix(super::ENV_PREFIX) else {
            continue;
        };
        let old = old.to_ascii_lowercase();
        let Some((old, new, unit)) = lookup(&old) else {
            continue;
        };
        renamed.push(RenamedSetting {
            source: Source::Environment,
            old,
            new,
        });
        // Parsed the way figment parses every environment value.
        let value = raw.parse::<Value>().unwrap_or_else(|_| Value::from(raw));
        insert_if_absent(&mut dict, new, convert(value, *unit));
    }
    renamed.sort_by_key(|setting| setting.old);
    (dict, renamed)
}

/// Puts `value` at `section.name` unless something is there already.
fn insert_if_absent(dict: &mut Dict, path: &str, value: Value) {
    let Some((section, name)) = path.split_once('.') else {
        dict.entry(path.to_string()).or_insert(value);
        return;
    };
    let entry = dict
        .entry(section.to_string())
        .or_insert_with(|| Value::from(Dict::new()));
    if let Value::Dict(_, inner) = entry {
        inner.entry(name.to_string()).or_insert(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_new_name_is_a_setting_and_every_old_one_is_gone() {
        let keys = super::super::Config::keys();
        for (old, new, _) in RENAMED {
            assert!(keys.iter().any(|key| key == new), "{new} is no setting");
            assert!(
                !keys.iter().any(|key| key == old),
                "{old} is still a setting"
            );
        }
        // Settings added since the rename (the integrations section) never had an old name.
        let renamed = keys.iter().filter(|key| !key.starts_with("integrations."));
        assert_eq!(
            renamed.count(),
            RENAMED.len(),
            "every setting of the previous release has its old name"
        );
    }

    #[test]
    fn counts_of_a_unit_become_durations() {
        assert_eq!(
            convert(Value::from(1500u64), Unit::Milliseconds),
            Value::from("1500ms".to_string())
        );
        assert_eq!(
            convert(Value::from("168".to_string()), Unit::Hours),
            Value::from("168h".to_string())
        );
        assert_eq!(
            convert(Value::from("soon".to_string()), Unit::Seconds),
            Value::from("soon".to_string())
        );
        assert_eq!(convert(Value::from(true), Unit::Same), Value::from(true));
    }
}
