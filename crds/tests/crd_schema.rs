//! The checked-in CRD YAML is what the types generate, and its CEL rules accept and reject what
//! they should. The rules are evaluated from the YAML on disk, the file users `kubectl apply`.

use kube::core::cel::Validator;
use memoryc_crds::resources::{crd_directories, crd_documents};
use serde_json::{Value, json};

fn crd_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

#[test]
fn checked_in_yaml_matches_the_types() {
    for (file, generated) in crd_documents().expect("render") {
        for dir in crd_directories() {
            let path = dir.join(file);
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == generated,
                "{} is stale: run `cargo run -p memoryc-crds --bin crdgen -- --write` and commit the result",
                path.display()
            );
        }
    }
}

/// The openAPIV3Schema of the CRD in `file`.
fn schema(file: &str) -> Value {
    let text = std::fs::read_to_string(crd_dir().join(file)).expect("read CRD");
    let crd: Value = serde_yaml::from_str(&text).expect("parse CRD");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn tenant(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "memoryc.dev/v1alpha1",
        "kind": "MemoryTenant",
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// Messages of the rules `new` breaks (as an update of `old` when given).
fn violations(file: &str, new: &Value, old: Option<&Value>) -> Vec<String> {
    match Validator::new().validate(&schema(file), new, old) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_vec().into_iter().map(|e| e.message).collect(),
    }
}

#[test]
fn tenant_names_must_fit_the_layout_contract() {
    let ok = tenant("acme-corp", json!({}));
    assert_eq!(
        violations("memorytenants.yaml", &ok, None),
        Vec::<String>::new()
    );
    for bad in ["Acme", "acme-", "1acme", &"a".repeat(41)] {
        let errors = violations("memorytenants.yaml", &tenant(bad, json!({})), None);
        assert!(
            errors
                .iter()
                .any(|m| m.contains("metadata.name is the tenant name")),
            "{bad}: {errors:?}"
        );
    }
}

#[test]
fn tenant_names_are_bounded_in_the_schema_itself() {
    let name = &schema("memorytenants.yaml")["properties"]["metadata"]["properties"]["name"];
    assert_eq!(name["maxLength"], 40);
    assert_eq!(name["pattern"], "^[a-z]([-a-z0-9]*[a-z0-9])?$");
}

#[test]
fn identity_fields_cannot_change_after_creation() {
    let old = tenant(
        "acme",
        json!({"isolation": "Shared", "namespace": "acme", "storage": {"schemaName": "acme_data"},
               "vectors": {"dimension": 384, "metric": "COSINE"}}),
    );
    let cases = [
        (
            json!({"isolation": "Dedicated"}),
            "spec.isolation cannot be changed",
        ),
        (
            json!({"namespace": "other"}),
            "spec.namespace cannot be changed",
        ),
        (
            json!({"storage": {"schemaName": "other"}}),
            "spec.storage.schemaName cannot be changed",
        ),
        (
            json!({"storage": {}}),
            "spec.storage.schemaName cannot be changed",
        ),
        (
            json!({"vectors": {"dimension": 768, "metric": "COSINE"}}),
            "spec.vectors.dimension cannot be changed",
        ),
        (
            json!({"vectors": {"dimension": 384, "metric": "L2"}}),
            "spec.vectors.metric cannot be changed",
        ),
    ];
    for (change, message) in cases {
        let mut new = old.clone();
        for (key, value) in change.as_object().expect("object") {
            new["spec"][key] = value.clone();
        }
        let errors = violations("memorytenants.yaml", &new, Some(&old));
        assert!(
            errors.iter().any(|m| m.contains(message)),
            "{change}: {errors:?}"
        );
    }
    let mut display_changed = old.clone();
    display_changed["spec"]["displayName"] = json!("Acme Inc.");
    display_changed["spec"]["paused"] = json!(true);
    assert_eq!(
        violations("memorytenants.yaml", &display_changed, Some(&old)),
        Vec::<String>::new()
    );
}

#[test]
fn reserved_schema_names_are_rejected() {
    for reserved in [
        "public",
        "pg_catalog",
        "information_schema",
        "memoryc_control",
    ] {
        let errors = violations(
            "memorytenants.yaml",
            &tenant("acme", json!({"storage": {"schemaName": reserved}})),
            None,
        );
        assert!(
            errors.iter().any(|m| m.contains("reserved")),
            "{reserved}: {errors:?}"
        );
    }
}

#[test]
fn bindings_need_the_settings_of_their_kind() {
    let binding = |spec: Value| {
        json!({"apiVersion": "memoryc.dev/v1alpha1", "kind": "IntegrationBinding",
               "metadata": {"name": "gh", "namespace": "memoryc-acme"}, "spec": spec})
    };
    let github = binding(
        json!({"tenantRef": {"name": "acme"}, "kind": "GitHubProjects",
        "github": {"owner": "acme", "projectNumber": 3}, "secretRef": {"name": "gh-token"}}),
    );
    assert_eq!(
        violations("integrationbindings.yaml", &github, None),
        Vec::<String>::new()
    );
    let missing = binding(json!({"tenantRef": {"name": "acme"}, "kind": "Webhook",
        "secretRef": {"name": "hook"}}));
    let errors = violations("integrationbindings.yaml", &missing, None);
    assert!(
        errors
            .iter()
            .any(|m| m.contains("kind Webhook needs spec.webhook")),
        "{errors:?}"
    );
    let mut moved = github.clone();
    moved["spec"]["tenantRef"]["name"] = json!("other");
    let errors = violations("integrationbindings.yaml", &moved, Some(&github));
    assert!(
        errors
            .iter()
            .any(|m| m.contains("spec.tenantRef cannot be changed")),
        "{errors:?}"
    );
}

/// Fields of `value` the schema does not declare: the API server would drop them silently, so
/// a typo in a manifest would go unnoticed.
fn undeclared_fields(schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let mut found = Vec::new();
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let open = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true))
                || schema.get("additionalProperties").is_some();
            for (key, child) in map {
                // ObjectMeta is the API server's own; the CRD only restricts its name.
                if path.is_empty() && key == "metadata" {
                    continue;
                }
                match properties.and_then(|p| p.get(key)) {
                    Some(child_schema) => found.extend(undeclared_fields(
                        child_schema,
                        child,
                        &format!("{path}.{key}"),
                    )),
                    None if open
                        || path.is_empty()
                            && ["apiVersion", "kind", "metadata"].contains(&key.as_str()) => {}
                    None => found.push(format!("{path}.{key}")),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    found.extend(undeclared_fields(
                        item_schema,
                        item,
                        &format!("{path}[{i}]"),
                    ));
                }
            }
        }
        _ => {}
    }
    found
}

#[test]
fn the_example_manifests_are_valid_resources() {
    let text = std::fs::read_to_string(crd_dir().join("../charts/examples/memorytenant.yaml"))
        .expect("example");
    let mut checked = 0;
    for document in serde_yaml::Deserializer::from_str(&text) {
        let object: Value = serde::Deserialize::deserialize(document).expect("yaml");
        let file = match object["kind"].as_str() {
            Some("MemoryTenant") => "memorytenants.yaml",
            Some("IntegrationBinding") => "integrationbindings.yaml",
            _ => continue,
        };
        assert_eq!(
            violations(file, &object, None),
            Vec::<String>::new(),
            "{object}"
        );
        assert_eq!(
            undeclared_fields(&schema(file), &object, ""),
            Vec::<String>::new()
        );
        match file {
            "memorytenants.yaml" => {
                let tenant: memoryc_crds::resources::MemoryTenant =
                    serde_json::from_value(object).expect("MemoryTenant");
                assert_eq!(tenant.spec.vectors.index.m, 16);
            }
            _ => {
                serde_json::from_value::<memoryc_crds::resources::IntegrationBinding>(object)
                    .expect("IntegrationBinding");
            }
        }
        checked += 1;
    }
    assert_eq!(
        checked, 3,
        "the tenant, its GitHubProjects binding and its Webhook binding"
    );
    let typo = tenant("acme", json!({"isolaton": "Shared"}));
    assert_eq!(
        undeclared_fields(&schema("memorytenants.yaml"), &typo, ""),
        vec![".spec.isolaton"]
    );
}

#[test]
fn the_readme_tenant_is_a_valid_resource() {
    let readme = std::fs::read_to_string(crd_dir().join("../README.md")).expect("README");
    let block = readme
        .split("```yaml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .find(|block| block.contains("kind: MemoryTenant"))
        .expect("a MemoryTenant example in the README");
    let object: Value = serde_yaml::from_str(block).expect("yaml");
    assert_eq!(
        violations("memorytenants.yaml", &object, None),
        Vec::<String>::new()
    );
    assert_eq!(
        undeclared_fields(&schema("memorytenants.yaml"), &object, ""),
        Vec::<String>::new()
    );
    serde_json::from_value::<memoryc_crds::resources::MemoryTenant>(object).expect("MemoryTenant");
}
