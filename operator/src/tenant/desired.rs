//! The Kubernetes objects a tenant should have, as pure functions of its plan and the
//! installation settings. Applying them is another step's job.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    HTTPGetAction, Namespace, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceQuota,
    ResourceQuotaSpec, ResourceRequirements, SeccompProfile, Secret, SecretKeySelector,
    SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec, TCPSocketAction, Volume,
    VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use memoryc_crds::contract::{PLATFORM_PORT, labels, secret_keys};
use memoryc_crds::resources::OwnerKind;
use sha2::{Digest, Sha256};

use super::plan::TenantPlan;
use crate::settings::Settings;

/// Name of the ResourceQuota in a tenant namespace.
pub const QUOTA_NAME: &str = "memoryc-tenant";
/// Name of the NetworkPolicy in a tenant namespace.
pub const NETWORK_POLICY_NAME: &str = "memoryc-tenant";
/// Role given to the tenant's owners, and its binding.
pub const ADMIN_ROLE_NAME: &str = "memoryc-tenant-admin";
pub const ADMIN_BINDING_NAME: &str = "memoryc-tenant-admins";
/// Pod template annotation that changes when the credentials do, so pods restart with them.
pub const CREDENTIALS_HASH_ANNOTATION: &str = "memoryc.dev/credentials-hash";

/// CPU and memory one platform pod requests and may use (the embedding model needs ~300 MiB).
const PLATFORM_CPU_REQUEST_MILLIS: i32 = 250;
const PLATFORM_CPU_LIMIT_MILLIS: i32 = 1000;
const PLATFORM_MEMORY_REQUEST_MIB: i32 = 512;
const PLATFORM_MEMORY_LIMIT_MIB: i32 = 1024;
/// Pods a tenant namespace may run besides its platform replicas (rollouts, connectors, jobs).
const EXTRA_PODS: i32 = 4;

/// Secret material of a tenant: the database password and the platform API key.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub password: String,
    pub api_key: String,
}

impl std::fmt::Debug for Credentials {
    // Hand-written so credentials never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials { .. }")
    }
}

/// The label set every object of the tenant carries.
pub fn tenant_labels(plan: &TenantPlan, component: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(plan, component);
    labels.insert(labels::COMPONENT.into(), component.into());
    labels.insert(labels::PART_OF.into(), labels::PART_OF_VALUE.into());
    labels.insert(labels::MANAGED_BY.into(), labels::MANAGED_BY_VALUE.into());
    labels.insert(labels::TENANT.into(), plan.tenant.to_string());
    labels
}

/// The immutable subset that selects a component's pods.
fn selector_labels(plan: &TenantPlan, component: &str) -> BTreeMap<String, String> {
    let name = if component == "platform" {
        "memoryc-platform"
    } else {
        "memoryc-tenant"
    };
    BTreeMap::from([
        (labels::NAME.to_string(), name.to_string()),
        (labels::INSTANCE.to_string(), plan.tenant.to_string()),
    ])
}

fn metadata(plan: &TenantPlan, name: &str, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(plan.namespace.clone()),
        labels: Some(tenant_labels(plan, component)),
        owner_references: Some(vec![plan.owner_reference.clone()]),
        ..ObjectMeta::default()
    }
}

/// The tenant's namespace. An adopted namespace (one that existed before the tenant) gets the
/// labels but no owner reference, so deleting the tenant never deletes it.
pub fn namespace(plan: &TenantPlan, adopted: bool) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(plan.namespace.clone()),
            labels: Some(tenant_labels(plan, "namespace")),
            owner_references: (!adopted).then(|| vec![plan.owner_reference.clone()]),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// Identity of the dedicated platform's pods; it needs no API access, so no token is mounted.
pub fn service_account(plan: &TenantPlan) -> ServiceAccount {
    ServiceAccount {
        metadata: metadata(plan, &plan.platform_name, "platform"),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// Caps what the namespace may run: the platform replicas plus a few more pods.
pub fn resource_quota(plan: &TenantPlan) -> ResourceQuota {
    let pods = if plan.is_dedicated() {
        plan.platform_replicas.saturating_add(EXTRA_PODS)
    } else {
        EXTRA_PODS
    };
    let hard = BTreeMap::from([
        ("pods".to_string(), Quantity(pods.to_string())),
        (
            "requests.cpu".to_string(),
            Quantity(format!(
                "{}m",
                pods.saturating_mul(PLATFORM_CPU_REQUEST_MILLIS)
            )),
        ),
        (
            "requests.memory".to_string(),
            Quantity(format!(
                "{}Mi",
                pods.saturating_mul(PLATFORM_MEMORY_REQUEST_MIB)
            )),
        ),
        ("services.loadbalancers".to_string(), Quantity("0".into())),
        ("services.nodeports".to_string(), Quantity("0".into())),
    ]);
    ResourceQuota {
        metadata: metadata(plan, QUOTA_NAME, "quota"),
        spec: Some(ResourceQuotaSpec {
            hard: Some(hard),
            ..ResourceQuotaSpec::default()
        }),
        ..ResourceQuota::default()
    }
}

/// Ingress to the namespace only from itself and the system namespace (operator, shared
/// platform, monitoring), plus the platform API port from anywhere: the API authenticates its
/// callers, and they are wherever the tenant's agents run.
pub fn network_policy(plan: &TenantPlan, settings: &Settings) -> NetworkPolicy {
    let system = NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "kubernetes.io/metadata.name".to_string(),
                settings.system_namespace.clone(),
            )])),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    };
    let same_namespace = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..NetworkPolicyPeer::default()
    };
    let api_port = NetworkPolicyIngressRule {
        from: None,
        ports: Some(vec![NetworkPolicyPort {
            port: Some(IntOrString::Int(i32::from(PLATFORM_PORT))),
            protocol: Some("TCP".into()),
            ..NetworkPolicyPort::default()
        }]),
    };
    NetworkPolicy {
        metadata: metadata(plan, NETWORK_POLICY_NAME, "network-policy"),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![
                NetworkPolicyIngressRule {
                    from: Some(vec![same_namespace, system]),
                    ports: None,
                },
                api_port,
            ]),
            ..NetworkPolicySpec::default()
        }),
    }
}

/// The kinds of object the tenant controller applies from these builders, and watches (by the
/// operator's label). The operator's RBAC (the chart's ClusterRole) must let it create, patch,
/// list and watch each.
pub const APPLIED_KINDS: [&str; 10] = [
    <Namespace as k8s_openapi::Resource>::KIND,
    <ServiceAccount as k8s_openapi::Resource>::KIND,
    <ResourceQuota as k8s_openapi::Resource>::KIND,
    <NetworkPolicy as k8s_openapi::Resource>::KIND,
    <Role as k8s_openapi::Resource>::KIND,
    <RoleBinding as k8s_openapi::Resource>::KIND,
    <Secret as k8s_openapi::Resource>::KIND,
    <Deployment as k8s_openapi::Resource>::KIND,
    <Service as k8s_openapi::Resource>::KIND,
    <PodDisruptionBudget as k8s_openapi::Resource>::KIND,
];

/// The children the tenant controller applies in the tenant's namespace, as (kind, name): the
/// orphan sweep deletes the tenant's other objects of those kinds.
pub fn children(plan: &TenantPlan) -> Vec<(&'static str, String)> {
    let mut children = vec![
        (
            <ServiceAccount as k8s_openapi::Resource>::KIND,
            plan.platform_name.clone(),
        ),
        (
            <ResourceQuota as k8s_openapi::Resource>::KIND,
            QUOTA_NAME.to_string(),
        ),
        (
            <NetworkPolicy as k8s_openapi::Resource>::KIND,
            NETWORK_POLICY_NAME.to_string(),
        ),
        (
            <Role as k8s_openapi::Resource>::KIND,
            ADMIN_ROLE_NAME.to_string(),
        ),
        (
            <RoleBinding as k8s_openapi::Resource>::KIND,
            ADMIN_BINDING_NAME.to_string(),
        ),
        (
            <Secret as k8s_openapi::Resource>::KIND,
            plan.credentials_secret.clone(),
        ),
    ];
    if plan.is_dedicated() {
        children.extend([
            (
                <Deployment as k8s_openapi::Resource>::KIND,
                plan.platform_name.clone(),
            ),
            (
                <Service as k8s_openapi::Resource>::KIND,
                plan.platform_name.clone(),
            ),
            (
                <PodDisruptionBudget as k8s_openapi::Resource>::KIND,
                plan.platform_name.clone(),
            ),
        ]);
    }
    children
}

/// What the tenant's owners may do in its namespace.
pub fn admin_role(plan: &TenantPlan) -> Role {
    Role {
        metadata: metadata(plan, ADMIN_ROLE_NAME, "rbac"),
        rules: Some(admin_rules()),
    }
}

/// The rules of [`admin_role`], the same for every tenant.
pub fn admin_rules() -> Vec<PolicyRule> {
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(groups.iter().map(|g| g.to_string()).collect()),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..PolicyRule::default()
    };
    let read = ["get", "list", "watch"];
    let write = [
        "get", "list", "watch", "create", "update", "patch", "delete",
    ];
    vec![
        rule(&[""], &["secrets"], &write),
        rule(&["memoryc.dev"], &["integrationbindings"], &write),
        rule(&[""], &["pods", "pods/log", "services", "events"], &read),
        rule(&["apps"], &["deployments"], &read),
    ]
}

/// Binds the tenant's owners to [`admin_role`].
pub fn admin_role_binding(plan: &TenantPlan) -> RoleBinding {
    let subjects = plan
        .owners
        .iter()
        .map(|owner| Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: match owner.kind {
                OwnerKind::User => "User".into(),
                OwnerKind::Group => "Group".into(),
            },
            name: owner.name.clone(),
            namespace: None,
        })
        .collect();
    RoleBinding {
        metadata: metadata(plan, ADMIN_BINDING_NAME, "rbac"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: ADMIN_ROLE_NAME.into(),
        },
        subjects: Some(subjects),
    }
}

/// The credentials Secret: every form an application wants, keys from the shared contract.
pub fn credentials_secret(
    plan: &TenantPlan,
    settings: &Settings,
    credentials: &Credentials,
) -> Secret {
    let db = &settings.database;
    let uri = format!(
        "postgres://{}:{}@{}:{}/{}",
        plan.role, credentials.password, db.host, db.port, db.dbname
    );
    let entries = [
        (secret_keys::USERNAME, plan.role.clone()),
        (secret_keys::PASSWORD, credentials.password.clone()),
        (secret_keys::HOST, db.host.clone()),
        (secret_keys::PORT, db.port.to_string()),
        (secret_keys::DBNAME, db.dbname.clone()),
        (secret_keys::SCHEMA, plan.schema.clone()),
        (secret_keys::CONTROL_SCHEMA, plan.control_schema.clone()),
        (secret_keys::URI, uri),
        (secret_keys::COLLECTION, plan.collection.clone()),
        (secret_keys::API_KEY, credentials.api_key.clone()),
        (secret_keys::API_ENDPOINT, plan.api_endpoint.clone()),
    ];
    Secret {
        metadata: metadata(plan, &plan.credentials_secret, "credentials"),
        type_: Some("Opaque".into()),
        data: Some(
            entries
                .into_iter()
                .map(|(key, value)| (key.to_string(), ByteString(value.into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// A short digest of the credentials; part of the pod template so a rotation rolls the pods.
pub fn credentials_hash(credentials: &Credentials) -> String {
    let mut digest = Sha256::new();
    digest.update(credentials.password.as_bytes());
    digest.update([0]);
    digest.update(credentials.api_key.as_bytes());
    hex::encode(&digest.finalize()[..8])
}

/// The dedicated platform: the platform binary configured for this tenant alone, connecting as
/// the tenant's role with its control tables in the tenant's control schema.
pub fn platform_deployment(
    plan: &TenantPlan,
    settings: &Settings,
    credentials_hash: &str,
) -> Deployment {
    let literal = |name: &str, value: &str| EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    };
    let from_secret = |name: &str, key: &str| EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: plan.credentials_secret.clone(),
                key: key.into(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    };
    let env = vec![
        literal(
            "MEMORYC_SERVER__LISTEN",
            &format!("0.0.0.0:{PLATFORM_PORT}"),
        ),
        literal("MEMORYC_STORAGE__RELATIONAL_BACKEND", "postgres"),
        from_secret("MEMORYC_STORAGE__DATABASE_URL", secret_keys::URI),
        from_secret(
            "MEMORYC_STORAGE__CONTROL_SCHEMA",
            secret_keys::CONTROL_SCHEMA,
        ),
        literal("MEMORYC_STORAGE__VECTOR_BACKEND", "milvus"),
        literal("MEMORYC_STORAGE__MILVUS_URL", &settings.platform_milvus_url),
        literal("MEMORYC_EMBEDDING__MODEL_DIR", &settings.platform_model_dir),
        literal("MEMORYC_EMBEDDING__MODEL", &plan.embedding_model),
        literal("MEMORYC_SERVER__DATA_DIR", "/var/lib/memoryc"),
        literal("MEMORYC_STORAGE__DEFAULT_ISOLATION", "Dedicated"),
        literal("MEMORYC_SERVER__DEMO_TENANT", "false"),
        literal("MEMORYC_SERVER__LOG_FORMAT", "json"),
        // The tenant's own settings are in its control schema; these are the platform-wide
        // switches a dedicated platform can take from the spec as well.
        literal(
            "MEMORYC_ANALYTICS__ENABLED",
            if plan.platform_settings.analytics_enabled {
                "true"
            } else {
                "false"
            },
        ),
        literal(
            "MEMORYC_ANALYTICS__INSIGHT_TTL",
            &format!("{}h", plan.platform_settings.insight_ttl_hours),
        ),
    ];
    let quantity = |text: String| Quantity(text);
    let container = Container {
        name: "platform".into(),
        image: Some(plan.platform_image.clone()),
        args: Some(vec!["serve".into()]),
        env: Some(env),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: i32::from(PLATFORM_PORT),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/api/v1/monitoring/health".into()),
                port: IntOrString::String("http".into()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(10),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        liveness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String("http".into()),
                ..TCPSocketAction::default()
            }),
            initial_delay_seconds: Some(10),
            period_seconds: Some(20),
            ..Probe::default()
        }),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                (
                    "cpu".into(),
                    quantity(format!("{PLATFORM_CPU_REQUEST_MILLIS}m")),
                ),
                (
                    "memory".into(),
                    quantity(format!("{PLATFORM_MEMORY_REQUEST_MIB}Mi")),
                ),
            ])),
            limits: Some(BTreeMap::from([
                (
                    "cpu".into(),
                    quantity(format!("{PLATFORM_CPU_LIMIT_MILLIS}m")),
                ),
                (
                    "memory".into(),
                    quantity(format!("{PLATFORM_MEMORY_LIMIT_MIB}Mi")),
                ),
            ])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "data".into(),
            mount_path: "/var/lib/memoryc".into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    let mut pod_labels = tenant_labels(plan, "platform");
    pod_labels.extend(selector_labels(plan, "platform"));
    Deployment {
        metadata: metadata(plan, &plan.platform_name, "platform"),
        spec: Some(DeploymentSpec {
            replicas: Some(plan.platform_replicas),
            selector: LabelSelector {
                match_labels: Some(selector_labels(plan, "platform")),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(BTreeMap::from([(
                        CREDENTIALS_HASH_ANNOTATION.to_string(),
                        credentials_hash.to_string(),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(plan.platform_name.clone()),
                    automount_service_account_token: Some(false),
                    containers: vec![container],
                    volumes: Some(vec![Volume {
                        name: "data".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Volume::default()
                    }]),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65532),
                        fs_group: Some(65532),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// The dedicated platform's in-cluster address (the tenant's `apiEndpoint`).
pub fn platform_service(plan: &TenantPlan) -> Service {
    Service {
        metadata: metadata(plan, &plan.platform_name, "platform"),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(plan, "platform")),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: i32::from(PLATFORM_PORT),
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// Lets voluntary disruptions (node drains) take one platform pod at a time.
pub fn platform_disruption_budget(plan: &TenantPlan) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: metadata(plan, &plan.platform_name, "platform"),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(plan, "platform")),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

#[cfg(test)]
mod tests {
    use memoryc_crds::layout::Isolation;
    use memoryc_crds::resources::TenantOwner;

    use super::*;
    use crate::test_support::tenant;

    fn plan(isolation: Isolation) -> TenantPlan {
        TenantPlan::for_tenant(&tenant("acme", isolation), &Settings::local()).expect("plan")
    }

    fn credentials() -> Credentials {
        Credentials {
            password: "pw0123456789".into(),
            api_key: "mck_0123456789ab_0123456789abcdef0123456789abcdef".into(),
        }
    }

    fn text(secret: &Secret, key: &str) -> String {
        let data = secret.data.as_ref().expect("data");
        String::from_utf8(data[key].0.clone()).expect("utf8")
    }

    #[test]
    fn every_builder_makes_a_kind_the_operator_declares_it_applies() {
        fn kind<K: k8s_openapi::Resource>(_: &K) -> &'static str {
            K::KIND
        }
        let plan = plan(Isolation::Dedicated);
        let settings = Settings::local();
        let built = [
            kind(&namespace(&plan, false)),
            kind(&service_account(&plan)),
            kind(&resource_quota(&plan)),
            kind(&network_policy(&plan, &settings)),
            kind(&admin_role(&plan)),
            kind(&admin_role_binding(&plan)),
            kind(&credentials_secret(&plan, &settings, &credentials())),
            kind(&platform_deployment(&plan, &settings, "hash")),
            kind(&platform_service(&plan)),
            kind(&platform_disruption_budget(&plan)),
        ];
        let mut built = built.to_vec();
        built.sort_unstable();
        let mut declared = APPLIED_KINDS.to_vec();
        declared.sort_unstable();
        assert_eq!(built, declared);
    }

    #[test]
    fn the_sweeps_children_are_what_the_builders_make() {
        fn child<K: k8s_openapi::Resource + kube::Resource>(object: &K) -> (&'static str, String) {
            (
                <K as k8s_openapi::Resource>::KIND,
                object.meta().name.clone().expect("name"),
            )
        }
        let settings = Settings::local();
        for isolation in [Isolation::Shared, Isolation::Dedicated] {
            let plan = plan(isolation);
            let mut built = vec![
                child(&service_account(&plan)),
                child(&resource_quota(&plan)),
                child(&network_policy(&plan, &settings)),
                child(&admin_role(&plan)),
                child(&admin_role_binding(&plan)),
                child(&credentials_secret(&plan, &settings, &credentials())),
            ];
            if isolation == Isolation::Dedicated {
                built.extend([
                    child(&platform_deployment(&plan, &settings, "hash")),
                    child(&platform_service(&plan)),
                    child(&platform_disruption_budget(&plan)),
                ]);
            }
            built.sort_unstable();
            let mut swept = children(&plan);
            swept.sort_unstable();
            assert_eq!(swept, built, "{isolation:?}");
        }
    }

    #[test]
    fn every_child_carries_the_label_set_and_the_owner() {
        let plan = plan(Isolation::Dedicated);
        let settings = Settings::local();
        let metas = [
            service_account(&plan).metadata,
            resource_quota(&plan).metadata,
            network_policy(&plan, &settings).metadata,
            admin_role(&plan).metadata,
            admin_role_binding(&plan).metadata,
            credentials_secret(&plan, &settings, &credentials()).metadata,
            platform_deployment(&plan, &settings, "h").metadata,
            platform_service(&plan).metadata,
            platform_disruption_budget(&plan).metadata,
        ];
        for meta in metas {
            let labels = meta.labels.expect("labels");
            assert_eq!(labels[labels::TENANT], "acme");
            assert_eq!(labels[labels::MANAGED_BY], "memoryc-operator");
            assert_eq!(labels[labels::PART_OF], "memoryc");
            assert_eq!(meta.namespace.as_deref(), Some("memoryc-acme"));
            assert_eq!(
                meta.owner_references,
                Some(vec![plan.owner_reference.clone()])
            );
        }
    }

    #[test]
    fn adopted_namespaces_get_labels_but_no_owner() {
        let plan = plan(Isolation::Shared);
        let created = namespace(&plan, false);
        assert_eq!(
            created.metadata.owner_references,
            Some(vec![plan.owner_reference.clone()])
        );
        let adopted = namespace(&plan, true);
        assert_eq!(adopted.metadata.owner_references, None);
        assert_eq!(
            adopted.metadata.labels.expect("labels")[labels::TENANT],
            "acme"
        );
    }

    #[test]
    fn credentials_secret_has_every_form_an_application_wants() {
        let plan = plan(Isolation::Dedicated);
        let secret = credentials_secret(&plan, &Settings::local(), &credentials());
        assert_eq!(text(&secret, secret_keys::USERNAME), "memoryc_acme");
        assert_eq!(text(&secret, secret_keys::PASSWORD), "pw0123456789");
        assert_eq!(
            text(&secret, secret_keys::URI),
            "postgres://memoryc_acme:pw0123456789@127.0.0.1:5432/postgres"
        );
        assert_eq!(text(&secret, secret_keys::SCHEMA), "tenant_acme");
        assert_eq!(
            text(&secret, secret_keys::CONTROL_SCHEMA),
            "memoryc_control_acme"
        );
        assert_eq!(
            text(&secret, secret_keys::COLLECTION),
            "memoryc_tenant_acme"
        );
        assert_eq!(text(&secret, secret_keys::API_KEY), credentials().api_key);
        assert_eq!(
            text(&secret, secret_keys::API_ENDPOINT),
            "http://acme-platform.memoryc-acme.svc:8080"
        );
        assert_eq!(secret.data.expect("data").len(), 11);
    }

    #[test]
    fn dedicated_platform_is_configured_for_the_tenant_only() {
        let plan = plan(Isolation::Dedicated);
        let deployment = platform_deployment(&plan, &Settings::local(), "abc");
        let spec = deployment.spec.expect("spec");
        assert_eq!(spec.replicas, Some(2));
        let template = spec.template;
        let annotations = template
            .metadata
            .expect("meta")
            .annotations
            .expect("annotations");
        assert_eq!(annotations[CREDENTIALS_HASH_ANNOTATION], "abc");
        let pod = template.spec.expect("pod");
        assert_eq!(pod.service_account_name.as_deref(), Some("acme-platform"));
        let env = pod.containers[0].env.clone().expect("env");
        let find = |name: &str| env.iter().find(|e| e.name == name).cloned().expect(name);
        assert_eq!(
            find("MEMORYC_STORAGE__RELATIONAL_BACKEND").value.as_deref(),
            Some("postgres")
        );
        assert_eq!(
            find("MEMORYC_SERVER__DEMO_TENANT").value.as_deref(),
            Some("false")
        );
        assert_eq!(
            find("MEMORYC_EMBEDDING__MODEL").value.as_deref(),
            Some("all-MiniLM-L6-v2")
        );
        assert_eq!(
            find("MEMORYC_ANALYTICS__INSIGHT_TTL").value.as_deref(),
            Some("168h")
        );
        let url = find("MEMORYC_STORAGE__DATABASE_URL")
            .value_from
            .expect("from secret");
        let selector = url.secret_key_ref.expect("secret ref");
        assert_eq!(selector.name, "acme-credentials");
        assert_eq!(selector.key, secret_keys::URI);
        // The platform rejects unknown MEMORYC_ variables, so only ones it knows are set.
        let known = [
            "MEMORYC_SERVER__LISTEN",
            "MEMORYC_STORAGE__RELATIONAL_BACKEND",
            "MEMORYC_STORAGE__DATABASE_URL",
            "MEMORYC_STORAGE__CONTROL_SCHEMA",
            "MEMORYC_STORAGE__VECTOR_BACKEND",
            "MEMORYC_STORAGE__MILVUS_URL",
            "MEMORYC_EMBEDDING__MODEL_DIR",
            "MEMORYC_EMBEDDING__MODEL",
            "MEMORYC_SERVER__DATA_DIR",
            "MEMORYC_STORAGE__DEFAULT_ISOLATION",
            "MEMORYC_SERVER__DEMO_TENANT",
            "MEMORYC_SERVER__LOG_FORMAT",
            "MEMORYC_ANALYTICS__ENABLED",
            "MEMORYC_ANALYTICS__INSIGHT_TTL",
        ];
        assert!(env.iter().all(|e| known.contains(&e.name.as_str())));
        let selector = spec.selector.match_labels.expect("selector");
        let service = platform_service(&plan)
            .spec
            .expect("spec")
            .selector
            .expect("selector");
        assert_eq!(selector, service);
    }

    #[test]
    fn credentials_hash_follows_the_credentials() {
        let a = credentials();
        let mut b = credentials();
        b.password.push('x');
        assert_eq!(credentials_hash(&a), credentials_hash(&a));
        assert_ne!(credentials_hash(&a), credentials_hash(&b));
        assert_eq!(credentials_hash(&a).len(), 16);
        assert!(!format!("{a:?}").contains("pw0123456789"));
    }

    #[test]
    fn owners_become_subjects_of_the_admin_role() {
        let mut t = tenant("acme", Isolation::Shared);
        t.spec.owners = vec![
            TenantOwner {
                kind: OwnerKind::User,
                name: "alice@example.com".into(),
            },
            TenantOwner {
                kind: OwnerKind::Group,
                name: "acme-admins".into(),
            },
        ];
        let plan = TenantPlan::for_tenant(&t, &Settings::local()).expect("plan");
        let binding = admin_role_binding(&plan);
        assert_eq!(binding.role_ref.name, ADMIN_ROLE_NAME);
        let subjects = binding.subjects.expect("subjects");
        assert_eq!(subjects.len(), 2);
        assert_eq!(
            (subjects[0].kind.as_str(), subjects[0].name.as_str()),
            ("User", "alice@example.com")
        );
        assert_eq!(subjects[1].kind, "Group");
        let role = admin_role(&plan);
        let secrets = &role.rules.expect("rules")[0];
        assert!(secrets.verbs.contains(&"get".to_string()));
    }

    #[test]
    fn quota_leaves_room_for_a_rolling_update() {
        let plan = plan(Isolation::Dedicated);
        let hard = resource_quota(&plan)
            .spec
            .expect("spec")
            .hard
            .expect("hard");
        assert_eq!(hard["pods"].0, "6");
        assert_eq!(hard["requests.cpu"].0, "1500m");
        let shared = resource_quota(&super::super::plan::TenantPlan {
            isolation: Isolation::Shared,
            ..plan
        });
        assert_eq!(
            shared.spec.expect("spec").hard.expect("hard")["pods"].0,
            "4"
        );
    }

    #[test]
    fn network_policy_admits_the_system_namespace_and_the_api_port() {
        let plan = plan(Isolation::Dedicated);
        let policy = network_policy(&plan, &Settings::local())
            .spec
            .expect("spec");
        let rules = policy.ingress.expect("ingress");
        let peers = rules[0].from.clone().expect("from");
        let system = peers[1].namespace_selector.clone().expect("ns selector");
        assert_eq!(
            system.match_labels.expect("labels")["kubernetes.io/metadata.name"],
            "memoryc-system"
        );
        assert_eq!(
            rules[1].ports.clone().expect("ports")[0].port,
            Some(IntOrString::Int(8080))
        );
    }
}
