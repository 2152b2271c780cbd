//! What the operator reads and does, as JSON (`memoryc-operator --describe`), for tools that
//! check a deployment against it: the chart's tests compare its environment, probes and RBAC
//! with this rather than with the source.

use clap::CommandFactory;
use serde_json::{Value, json};

use crate::config::Config;
use crate::telemetry::http;
use crate::tenant::{desired, orphans};

/// Every `MEMORYC_OPERATOR_*` variable with its default (`null`: none), the paths served, the
/// tenant-admin Role's rules and the kinds of object the tenant controller applies.
pub fn describe() -> Value {
    let environment: serde_json::Map<String, Value> = Config::command()
        .get_arguments()
        .filter_map(|argument| {
            let name = argument.get_env()?.to_string_lossy().to_string();
            let default = argument
                .get_default_values()
                .first()
                .map(|value| Value::String(value.to_string_lossy().to_string()))
                .unwrap_or(Value::Null);
            Some((name, default))
        })
        .collect();
    json!({
        "environment": environment,
        "paths": http::PATHS,
        "tenant_admin_rules": desired::admin_rules(),
        "applied_kinds": desired::APPLIED_KINDS,
        "swept_kinds": orphans::swept_kinds(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_variable_with_its_default_and_what_it_serves() {
        let described = describe();
        assert_eq!(
            described["environment"]["MEMORYC_OPERATOR_LOG_FORMAT"],
            "json"
        );
        assert!(described["environment"].as_object().is_some_and(|names| {
            names
                .keys()
                .all(|name| name.starts_with("MEMORYC_OPERATOR_"))
        }));
        assert_eq!(
            described["paths"],
            json!(["/metrics", "/healthz", "/readyz"])
        );
        assert!(
            described["applied_kinds"]
                .as_array()
                .is_some_and(|kinds| kinds.contains(&json!("Deployment")))
        );
    }
}
