//! The chart's ClusterRole lets the operator do what it does, including granting the tenant-admin
//! Role: Kubernetes refuses to let a subject grant permissions it does not hold itself.

use std::collections::BTreeSet;

use memoryc_crds::layout::Isolation;
use memoryc_crds::resources::{MemoryTenant, MemoryTenantSpec};
use memoryc_operator::settings::Settings;
use memoryc_operator::tenant::desired;
use memoryc_operator::tenant::plan::TenantPlan;
use serde_yaml::Value;

/// (apiGroup, resource) → verbs of the operator's ClusterRole, read from the chart template
/// (its Helm directives sit only in metadata lines, which are dropped).
fn operator_permissions() -> Vec<(String, String, BTreeSet<String>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../charts/memoryc/templates/operator-rbac.yaml"
    );
    let text = std::fs::read_to_string(path).expect("chart RBAC");
    let plain: String = text
        .lines()
        .filter(|line| !line.contains("{{"))
        .map(|line| format!("{line}\n"))
        .collect();
    let mut permissions = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&plain) {
        let document = <Value as serde::Deserialize>::deserialize(document).expect("yaml");
        if document["kind"] != "ClusterRole" {
            continue;
        }
        for rule in document["rules"].as_sequence().expect("rules") {
            let verbs: BTreeSet<String> = rule["verbs"]
                .as_sequence()
                .expect("verbs")
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
            for group in rule["apiGroups"].as_sequence().expect("groups") {
                for resource in rule["resources"].as_sequence().expect("resources") {
                    permissions.push((
                        group.as_str().unwrap_or_default().to_string(),
                        resource.as_str().unwrap_or_default().to_string(),
                        verbs.clone(),
                    ));
                }
            }
        }
    }
    permissions
}

fn allowed(
    permissions: &[(String, String, BTreeSet<String>)],
    group: &str,
    resource: &str,
    verb: &str,
) -> bool {
    permissions
        .iter()
        .any(|(g, r, verbs)| g == group && r == resource && verbs.contains(verb))
}

#[test]
fn the_operator_holds_every_permission_it_grants_to_tenant_admins() {
    let permissions = operator_permissions();
    let mut tenant = MemoryTenant::new(
        "acme",
        MemoryTenantSpec {
            isolation: Isolation::Dedicated,
            ..MemoryTenantSpec::default()
        },
    );
    tenant.metadata.uid = Some("0b0f5f5e-0000-4000-8000-000000000000".into());
    let plan = TenantPlan::for_tenant(&tenant, &Settings::local()).expect("plan");
    let role = desired::admin_role(&plan);
    let mut missing = Vec::new();
    for rule in role.rules.unwrap_or_default() {
        for group in rule.api_groups.unwrap_or_default() {
            for resource in rule.resources.clone().unwrap_or_default() {
                for verb in &rule.verbs {
                    if !allowed(&permissions, &group, &resource, verb) {
                        missing.push(format!("{verb} {group}/{resource}"));
                    }
                }
            }
        }
    }
    assert_eq!(missing, Vec::<String>::new());
}

#[test]
fn the_operator_may_make_the_calls_it_makes() {
    let permissions = operator_permissions();
    let needed = [
        (
            "memoryc.dev",
            "memorytenants",
            ["get", "list", "watch", "patch"].as_slice(),
        ),
        ("memoryc.dev", "memorytenants/status", &["patch"]),
        (
            "memoryc.dev",
            "integrationbindings",
            &["get", "list", "watch", "patch"],
        ),
        ("memoryc.dev", "integrationbindings/status", &["patch"]),
        (
            "",
            "namespaces",
            &["get", "list", "watch", "create", "patch"],
        ),
        ("", "secrets", &["get", "list", "watch", "create", "patch"]),
        ("", "serviceaccounts", &["list", "watch", "create", "patch"]),
        ("", "resourcequotas", &["list", "watch", "create", "patch"]),
        ("", "services", &["list", "watch", "create", "patch"]),
        ("apps", "deployments", &["list", "watch", "create", "patch"]),
        (
            "policy",
            "poddisruptionbudgets",
            &["list", "watch", "create", "patch"],
        ),
        (
            "networking.k8s.io",
            "networkpolicies",
            &["list", "watch", "create", "patch"],
        ),
        (
            "rbac.authorization.k8s.io",
            "roles",
            &["list", "watch", "create", "patch"],
        ),
        (
            "rbac.authorization.k8s.io",
            "rolebindings",
            &["list", "watch", "create", "patch"],
        ),
        ("events.k8s.io", "events", &["create", "patch"]),
    ];
    for (group, resource, verbs) in needed {
        for verb in verbs {
            assert!(
                allowed(&permissions, group, resource, verb),
                "{verb} {group}/{resource}"
            );
        }
    }
    assert!(
        !allowed(&permissions, "", "namespaces", "delete"),
        "namespaces are left to garbage collection"
    );
}
