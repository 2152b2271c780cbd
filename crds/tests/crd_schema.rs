//! The checked-in CRD YAML is what the types generate, and its CEL rules accept and reject what
//! they should. The rules are evaluated from the YAML on disk, the file users `kubectl apply`.

use kube::core::cel::Validator;
use memoryc_crds::resources::crd_documents;
use serde_json::{Value, json};

fn crd_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

#[test]
fn checked_in_yaml_matches_the_types() {
    for (file, generated) in crd_documents().expect("render") {
        let on_disk = std::fs::read_to_string(crd_dir().join(file)).unwrap_or_default();
        assert!(
            on_disk == generated,
            "crds/{file} is stale: run `cargo run -p memoryc-crds --bin crdgen -- --write` and commit the result"
        );
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
