//! The reconcile scenarios, each for either provisioner (see `offline` and `servers`).

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use kube::runtime::controller::Action;
use memoryc_crds::contract::secret_keys;
use memoryc_crds::layout::Isolation;
use memoryc_crds::resources::{DeletionPolicy, MemoryTenant, MemoryTenantStatus};
use serde_json::{Value, json};

use super::super::controller::{FINALIZER, error_policy};
use super::super::plan::TenantPlan;
use super::{Kind, Provisioned, Scenario, TENANTS, condition, scenario, secret_text, stored};
use crate::provision::password;
use crate::test_support::{self, unique_name};

pub(super) async fn first_reconcile_adds_the_finalizer_then_provisions_a_shared_tenant(kind: Kind) {
    let mut s = scenario(Isolation::Shared, kind).await;
    let mut fresh = s.tenant.clone();
    fresh.metadata.finalizers = None;
    let name = fresh.metadata.name.clone().expect("name");
    s.run(fresh);
    let call = s
        .server
        .expect(
            Method::PATCH,
            &format!("{TENANTS}/{name}"),
            StatusCode::OK,
            |_| serde_json::to_value(&s.tenant).expect("tenant"),
        )
        .await;
    assert_eq!(call.content_type, "application/json-patch+json");
    assert_eq!(
        call.body[1],
        json!({"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]})
    );
    assert_eq!(s.finish().await.expect("ok"), Action::await_change());

    s.run(s.tenant.clone());
    let namespace = s.expect_namespace_and_policies(None).await;
    assert_eq!(namespace["metadata"]["labels"]["memoryc.dev/tenant"], name);
    assert_eq!(
        namespace["metadata"]["ownerReferences"][0]["uid"],
        s.plan.owner_reference.uid
    );
    s.server.expect_get_missing(&s.secret_path()).await;
    let secret = s.expect_secret_apply().await;
    let status = s.expect_status().await;
    s.server.expect_event("default", "Ready").await;
    let action = s.finish().await.expect("reconcile");
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));

    assert_eq!(status.phase.map(|p| p.as_str()), Some("Ready"));
    let ready = &status.conditions[0];
    assert_eq!(
        (ready.type_.as_str(), ready.status.as_str()),
        ("Ready", "True")
    );
    assert_eq!(status.conditions.len(), 5);
    assert_eq!(status.schema.as_deref(), Some(s.plan.schema.as_str()));
    assert_eq!(
        status.api_endpoint.as_deref(),
        s.ctx.settings.shared_platform_url.as_deref()
    );
    let key = secret_text(&secret, secret_keys::API_KEY);
    assert!(
        s.key_is_registered(&key).await,
        "the Secret's key works against the control tables"
    );
    assert_eq!(secret_text(&secret, secret_keys::SCHEMA), s.plan.schema);
    assert!(s.schema_exists(&s.plan.schema).await);
    assert!(s.has_collection().await);
    s.cleanup().await;
}

pub(super) async fn a_dedicated_tenant_gets_its_own_platform_and_is_ready_once_it_is_available(
    kind: Kind,
) {
    let mut s = scenario(Isolation::Dedicated, kind).await;
    s.run(s.tenant.clone());
    s.expect_namespace_and_policies(None).await;
    s.server.expect_get_missing(&s.secret_path()).await;
    let secret = s.expect_secret_apply().await;
    let deployment = s.expect_platform(0).await;
    let status = s.expect_status().await;
    s.server.expect_event("default", "Provisioning").await;
    assert_eq!(
        s.finish().await.expect("ok"),
        Action::requeue(Duration::from_secs(15))
    );
    assert_eq!(status.phase.map(|p| p.as_str()), Some("Provisioning"));
    let platform = condition(&status, "PlatformReady");
    assert!(
        platform.message.contains("0/2 replicas available"),
        "{}",
        platform.message
    );
    let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .expect("env")
            .iter()
            .any(|e| e["name"] == "MEMORYC_STORAGE__DATABASE_URL"
                && e["valueFrom"]["secretKeyRef"]["name"] == s.plan.credentials_secret.as_str())
    );
    assert!(s.has_collection().await);

    // Pods came up: the next reconcile reports Ready.
    s.run(s.with_status(status));
    s.expect_namespace_and_policies(None).await;
    s.server.expect_get(&s.secret_path(), stored(&secret)).await;
    s.expect_secret_apply().await;
    s.expect_platform(2).await;
    let status = s.expect_status().await;
    s.server.expect_event("default", "Ready").await;
    s.finish().await.expect("ok");
    assert_eq!(status.phase.map(|p| p.as_str()), Some("Ready"));
    s.cleanup().await;
}

pub(super) async fn a_ready_tenant_reconciles_without_writing_status_or_events(kind: Kind) {
    let mut s = scenario(Isolation::Shared, kind).await;
    let Provisioned {
        namespace,
        secret,
        status,
        ..
    } = s.provision_to_ready().await;

    s.run(s.with_status(status));
    s.expect_namespace_and_policies(Some(namespace)).await;
    s.server.expect_get(&s.secret_path(), stored(&secret)).await;
    let again = s.expect_secret_apply().await;
    // No status patch, no event: expect_silence in finish() fails on any further call.
    s.finish().await.expect("no-op");
    assert_eq!(
        again["data"], secret["data"],
        "the same credentials are kept"
    );
    s.cleanup().await;
}

pub(super) async fn a_paused_tenant_is_left_alone(kind: Kind) {
    let mut s = scenario(Isolation::Shared, kind).await;
    let mut paused = s.tenant.clone();
    paused.spec.paused = true;
    s.run(paused.clone());
    let status = s.expect_status().await;
    s.server.expect_event("default", "Paused").await;
    assert_eq!(s.finish().await.expect("ok"), Action::await_change());
    assert_eq!(status.phase.map(|p| p.as_str()), Some("Paused"));
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "ReconciliationPaused" && c.status == "True")
    );
    assert!(
        !s.schema_exists(&s.plan.schema).await,
        "nothing provisioned"
    );

    paused.status = Some(status);
    s.run(paused);
    s.finish().await.expect("still paused, nothing written");
    s.cleanup().await;
}

/// An installation without a shared platform (the chart's `platform.enabled: false`) refuses
/// Shared tenants in their status rather than reporting an endpoint nothing serves, and still
/// erases a Shared tenant provisioned before the shared platform was switched off.
pub(super) async fn without_a_shared_platform_shared_tenants_are_refused_yet_still_erased(
    kind: Kind,
) {
    let mut s = scenario(Isolation::Shared, kind).await;
    s.tenant.spec.deletion_policy = DeletionPolicy::Delete;
    let Provisioned { status: ready, .. } = s.provision_to_ready().await;
    assert!(s.schema_exists(&s.plan.schema).await);

    let settings = crate::settings::Settings {
        shared_platform_url: None,
        ..s.ctx.settings.clone()
    };
    s.use_settings(settings);
    let mut provisioned = s.tenant.clone();
    provisioned.status = Some(ready);
    s.run(provisioned.clone());
    let refused = s.expect_status().await;
    let event = s.server.expect_event("default", "ProvisioningFailed").await;
    assert!(
        event["note"]
            .as_str()
            .is_some_and(|note| note.contains("no shared platform")),
        "{event}"
    );
    assert_eq!(s.finish().await.expect("refused"), Action::await_change());
    assert_eq!(refused.phase.map(|p| p.as_str()), Some("Failed"));
    let ready = condition(&refused, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InvalidSpec")
    );
    assert!(
        ready.message.contains("no shared platform") && ready.message.contains("Dedicated"),
        "{}",
        ready.message
    );

    let mut deleting = provisioned;
    deleting.status = Some(refused);
    s.expect_deletion(deleting, "Erased").await;
    assert!(
        !s.schema_exists(&s.plan.schema).await,
        "the tenant's schema is erased"
    );
    s.cleanup().await;
}

pub(super) async fn drift_is_repaired_dropped_schema_and_collection_and_an_edited_secret(
    kind: Kind,
) {
    let mut s = scenario(Isolation::Dedicated, kind).await;
    let Provisioned {
        namespace,
        secret,
        status,
        ..
    } = s.provision_to_ready().await;

    s.drop_schema_and_collection().await;
    let mut edited = stored(&secret);
    edited["data"][secret_keys::URI] = json!("aGFja2Vk"); // "hacked"
    edited["data"]
        .as_object_mut()
        .expect("data")
        .remove(secret_keys::API_KEY);

    s.run(s.with_status(status));
    s.expect_namespace_and_policies(Some(namespace)).await;
    s.server.expect_get(&s.secret_path(), edited).await;
    let repaired = s.expect_secret_apply().await;
    s.expect_platform(2).await;
    let drift = s.server.expect_event("default", "DriftRepaired").await;
    s.server.expect_event("default", "ApiKeyIssued").await;
    s.finish().await.expect("repaired");

    let note = drift["note"].as_str().expect("note");
    assert!(
        note.contains(&format!("schema {}", s.plan.schema)),
        "{note}"
    );
    assert!(
        note.contains(&format!("collection {}", s.plan.collection)),
        "{note}"
    );
    assert_eq!(
        secret_text(&repaired, secret_keys::URI),
        secret_text(&secret, secret_keys::URI)
    );
    assert_eq!(
        secret_text(&repaired, secret_keys::PASSWORD),
        secret_text(&secret, secret_keys::PASSWORD)
    );
    let new_key = secret_text(&repaired, secret_keys::API_KEY);
    assert!(s.key_is_registered(&new_key).await);
    assert!(
        !s.key_is_registered(&secret_text(&secret, secret_keys::API_KEY))
            .await,
        "old key revoked"
    );
    assert!(s.schema_exists(&s.plan.schema).await);
    assert!(s.has_collection().await);
    s.cleanup().await;
}

async fn provisioned_then_deleted(policy: DeletionPolicy, kind: Kind) -> Scenario {
    let mut s = scenario(Isolation::Dedicated, kind).await;
    s.tenant.spec.deletion_policy = policy;
    s.provision_to_ready().await;

    let reason = match policy {
        DeletionPolicy::Retain => "Retained",
        DeletionPolicy::Delete => "Erased",
    };
    s.expect_deletion(s.tenant.clone(), reason).await;
    s
}

pub(super) async fn deletion_with_retain_keeps_the_data_and_closes_access(kind: Kind) {
    let s = provisioned_then_deleted(DeletionPolicy::Retain, kind).await;
    assert!(s.schema_exists(&s.plan.schema).await);
    assert!(s.has_collection().await);
    assert!(!s.login_enabled().await);
    s.cleanup().await;
}

pub(super) async fn deletion_with_delete_erases_schema_role_and_collection(kind: Kind) {
    let s = provisioned_then_deleted(DeletionPolicy::Delete, kind).await;
    assert!(!s.schema_exists(&s.plan.schema).await);
    assert!(!s.schema_exists(&s.plan.control_schema).await);
    assert!(!s.login_exists(&s.plan).await);
    assert!(!s.has_collection().await);
    s.cleanup().await;
}

pub(super) async fn a_failing_step_is_reported_and_requeued_with_backoff(kind: Kind) {
    // The vector store step fails, the others still run.
    let mut s = scenario(Isolation::Shared, kind).await;
    s.break_vector_store();
    s.run(s.tenant.clone());
    s.expect_namespace_and_policies(None).await;
    s.server.expect_get_missing(&s.secret_path()).await;
    s.expect_secret_apply().await;
    let status = s.expect_status().await;
    let event = s.server.expect_event("default", "ProvisioningFailed").await;
    let error = s.finish().await.expect_err("the step failed");
    assert_eq!(error.metric_label(), "vector_store");
    assert_eq!(status.phase.map(|p| p.as_str()), Some("Failed"));
    let ready = &status.conditions[0];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "VectorStoreFailed")
    );
    assert!(
        ready.message.contains("check that Milvus is reachable"),
        "{}",
        ready.message
    );
    assert_eq!(event["type"], "Warning");
    let database = condition(&status, "DatabaseReady");
    assert_eq!(database.status, "True", "the other steps still ran");

    let tenant = Arc::new(s.tenant.clone());
    let first = format!("{:?}", error_policy(tenant.clone(), &error, s.ctx.clone()));
    let second = format!("{:?}", error_policy(tenant, &error, s.ctx.clone()));
    assert!(first.contains("requeue_after: Some("), "{first}");
    assert_ne!(first, second, "the delay grows");
    assert!(s.ctx.metrics.render().contains(
        r#"memoryc_operator_reconcile_failures_total{kind="MemoryTenant",error="vector_store"} 2"#
    ));
    s.cleanup().await;
}

/// The Ready condition of a refused tenant: False, InvalidSpec, with `message` in it.
fn assert_refused(status: &MemoryTenantStatus, message: &str) {
    assert_eq!(status.phase.map(|p| p.as_str()), Some("Failed"));
    let ready = condition(status, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InvalidSpec")
    );
    assert!(ready.message.contains(message), "{}", ready.message);
}

/// A new mocked API server (and event recorder, which would patch a repeated event).
async fn fresh_api_server(s: &mut Scenario) {
    s.use_settings(s.ctx.settings.clone());
}

/// Runs a reconcile of `tenant` (planned with the scenario's settings) that must be refused
/// after the namespace lookup answered with `namespace`: its status, its event, and no other
/// call, so nothing is applied anywhere.
async fn refused_after_namespace_lookup(
    s: &mut Scenario,
    tenant: MemoryTenant,
    namespace: Option<Value>,
) -> MemoryTenantStatus {
    fresh_api_server(s).await;
    s.plan = TenantPlan::for_tenant(&tenant, &s.ctx.settings).expect("plan");
    s.tenant = tenant.clone();
    s.run(tenant);
    let ns_path = format!("/api/v1/namespaces/{}", s.plan.namespace);
    match namespace {
        None => s.server.expect_get_missing(&ns_path).await,
        Some(existing) => s.server.expect_get(&ns_path, existing).await,
    };
    let refused = s.expect_status().await;
    s.server.expect_event("default", "ProvisioningFailed").await;
    assert_eq!(s.finish().await.expect("refused"), Action::await_change());
    refused
}

/// A tenant whose `spec.storage.schemaName` names another tenant's schema is refused before
/// anything is applied or provisioned; deleting it leaves the other tenant's schema alone.
pub(super) async fn a_tenant_naming_another_tenants_schema_is_refused_and_touches_nothing(
    kind: Kind,
) {
    let mut s = scenario(Isolation::Shared, kind).await;
    let victim = s.plan.clone();
    s.backing
        .provisioner()
        .provision(&victim, &password::generate(), false, None)
        .await
        .expect("victim provisioned");
    let mut attacker = test_support::tenant(&unique_name(), Isolation::Shared);
    attacker.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
    attacker.spec.storage.schema_name = Some(victim.schema.clone());
    attacker.spec.deletion_policy = DeletionPolicy::Delete;
    let refused = refused_after_namespace_lookup(&mut s, attacker.clone(), None).await;
    assert_refused(&refused, &format!("schema {}", victim.schema));
    assert!(
        !s.login_exists(&s.plan).await,
        "no role was made for the refused tenant"
    );
    assert!(s.schema_owned_by(&victim.schema, &victim).await);

    // Its deletion erases nothing of the victim's.
    let mut deleting = attacker;
    deleting.status = Some(refused);
    s.expect_deletion(deleting, "Erased").await;
    assert!(
        s.schema_exists(&victim.schema).await,
        "the victim's schema survives the refused tenant's deletion"
    );
    s.plan = victim;
    s.cleanup().await;
}

/// A namespace that exists without this tenant's label (someone else's, or another tenant's)
/// is refused before anything is applied there; one labelled for the tenant is adopted.
pub(super) async fn a_namespace_that_is_not_the_tenants_is_refused(kind: Kind) {
    let mut s = scenario(Isolation::Shared, kind).await;
    let tenant = s.tenant.clone();
    let name = s.plan.namespace.clone();
    let namespace = |labels: Value| {
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": name, "labels": labels}})
    };
    let unlabelled = namespace(json!({"team": "payments"}));
    let refused = refused_after_namespace_lookup(&mut s, tenant.clone(), Some(unlabelled)).await;
    assert_refused(&refused, "is not this tenant's");
    let others = namespace(json!({"memoryc.dev/tenant": "someone-else"}));
    let refused = refused_after_namespace_lookup(&mut s, tenant.clone(), Some(others)).await;
    assert_refused(&refused, "belongs to tenant someone-else");
    assert!(!s.login_exists(&s.plan).await);

    // Labelled for this tenant by an administrator: adopted (labelled, no owner reference).
    let prepared = namespace(json!({"memoryc.dev/tenant": s.plan.tenant.to_string()}));
    fresh_api_server(&mut s).await;
    s.run(tenant);
    let applied = s.expect_namespace_and_policies(Some(prepared)).await;
    assert_eq!(applied["metadata"]["ownerReferences"], Value::Null);
    s.server.expect_get_missing(&s.secret_path()).await;
    s.expect_secret_apply().await;
    s.expect_status().await;
    s.server.expect_event("default", "Ready").await;
    s.finish().await.expect("provisioned");
    s.cleanup().await;
}

/// System namespaces and the operator's own are refused from the spec alone, without a lookup.
pub(super) async fn a_system_namespace_is_refused_without_a_lookup(kind: Kind) {
    let mut s = scenario(Isolation::Shared, kind).await;
    for reserved in ["kube-system", "default", "memoryc-system"] {
        fresh_api_server(&mut s).await;
        let mut tenant = s.tenant.clone();
        tenant.spec.namespace = Some(reserved.to_string());
        s.tenant = tenant.clone();
        s.run(tenant);
        let refused = s.expect_status().await;
        s.server.expect_event("default", "ProvisioningFailed").await;
        assert_eq!(s.finish().await.expect("refused"), Action::await_change());
        assert_refused(&refused, &format!("{reserved:?} is reserved"));
    }
    assert!(!s.login_exists(&s.plan).await);
    s.cleanup().await;
}

/// After an operator restart (an upgrade, say) the tenant's children are listed once by its
/// labels: one it owns but no longer wants is deleted and reported; the ones it wants, and a
/// labelled object it does not own, are left alone.
pub(super) async fn orphaned_children_are_removed_and_foreign_ones_kept(kind: Kind) {
    let mut s = scenario(Isolation::Dedicated, kind).await;
    let Provisioned {
        namespace,
        secret,
        status,
        ..
    } = s.provision_to_ready().await;

    let owner = json!([{"apiVersion": "memoryc.dev/v1alpha1", "kind": "MemoryTenant",
                        "name": s.plan.tenant.to_string(), "uid": s.plan.owner_reference.uid}]);
    let labels = json!({"app.kubernetes.io/managed-by": "memoryc-operator",
                        "memoryc.dev/tenant": s.plan.tenant.to_string()});
    let object = |kind: &str, api_version: &str, name: &str, owners: Value| {
        json!({"kind": kind, "apiVersion": api_version,
               "metadata": {"name": name, "namespace": s.plan.namespace,
                            "labels": labels, "ownerReferences": owners}})
    };
    s.listed = vec![
        object(
            "Deployment",
            "apps/v1",
            "memoryc-platform-v0",
            owner.clone(),
        ),
        object(
            "Deployment",
            "apps/v1",
            &s.plan.platform_name,
            owner.clone(),
        ),
        object("Service", "v1", "hand-made", json!([])),
    ];
    s.use_settings(s.ctx.settings.clone());
    s.run(s.with_status(status));
    s.expect_namespace_and_policies(Some(namespace)).await;
    s.server.expect_get(&s.secret_path(), stored(&secret)).await;
    s.expect_secret_apply().await;
    s.expect_platform(2).await;
    let drift = s.server.expect_event("default", "DriftRepaired").await;
    s.finish().await.expect("swept");
    let note = drift["note"].as_str().expect("note");
    assert!(note.contains("Deployment memoryc-platform-v0"), "{note}");
    assert!(!note.contains("hand-made"), "{note}");
    s.cleanup().await;
}
