//! IntegrationBinding reconcile scenarios against the mocked API server, with the in-memory
//! provisioner and (in `servers`) with the real PostgreSQL holding the platform's control
//! tables.

mod servers;

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use memoryc_crds::layout::Isolation;
use memoryc_crds::resources::{
    IntegrationBinding, IntegrationBindingStatus, MemoryTenantStatus, Phase,
};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;

use super::controller::{FINALIZER, reconcile};
use crate::fixtures::{self, MockApiServer};
use crate::provision::in_memory::InMemoryProvisioner;
use crate::provision::password;
use crate::provision::postgres::ident;
use crate::provision::{Backends, Provisioner};
use crate::tenant::plan::TenantPlan;
use crate::test_support::{self, settings, unique_name};

const NAMESPACE: &str = "memoryc-acme";

fn binding(tenant: &str) -> IntegrationBinding {
    let spec = json!({"tenantRef": {"name": tenant}, "kind": "GitHubProjects",
                      "github": {"owner": "acme", "projectNumber": 7},
                      "secretRef": {"name": "github-token"}, "syncSchedule": "*/15 * * * *"});
    let mut binding =
        IntegrationBinding::new("roadmap", serde_json::from_value(spec).expect("spec"));
    binding.metadata.namespace = Some(NAMESPACE.into());
    binding.metadata.uid = Some(uuid::Uuid::new_v4().to_string());
    binding.metadata.generation = Some(1);
    binding.metadata.finalizers = Some(vec![FINALIZER.into()]);
    binding
}

fn bindings_path() -> String {
    format!("/apis/memoryc.dev/v1alpha1/namespaces/{NAMESPACE}/integrationbindings/roadmap")
}

async fn expect_status(
    server: &mut MockApiServer,
    binding: &IntegrationBinding,
) -> IntegrationBindingStatus {
    let object = serde_json::to_value(binding).expect("binding");
    let call = server
        .expect(
            Method::PATCH,
            &format!("{}/status", bindings_path()),
            StatusCode::OK,
            |call| {
                let mut object = object;
                object["status"] = call.body["status"].clone();
                object
            },
        )
        .await;
    serde_json::from_value(call.body["status"].clone()).expect("status")
}

#[tokio::test]
async fn a_missing_tenant_is_a_condition_and_a_later_look() {
    let (ctx, mut server) = fixtures::context(
        settings("memoryc_control"),
        Arc::new(InMemoryProvisioner::default()),
    );
    let binding = binding("nobody");
    server.watch(tokio::spawn(reconcile(
        Arc::new(binding.clone()),
        ctx.clone(),
    )));
    server
        .expect_get_missing("/apis/memoryc.dev/v1alpha1/memorytenants/nobody")
        .await;
    let status = expect_status(&mut server, &binding).await;
    server.expect_event(NAMESPACE, "Waiting").await;
    let action = server.finished().await.expect("not an error");
    assert_eq!(action, Action::requeue(Duration::from_secs(30)));
    assert_eq!(status.phase, Some(Phase::Pending));
    let connected = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Registered")
        .expect("Registered");
    assert_eq!(
        (connected.status.as_str(), connected.reason.as_str()),
        ("False", "TenantNotFound")
    );
    assert!(
        connected
            .message
            .contains("MemoryTenant nobody does not exist")
    );
}

/// Where the control tables are kept, and how to look into them.
enum Records {
    InMemory(Arc<InMemoryProvisioner>),
    Servers {
        backends: Arc<Backends>,
        control: String,
    },
}

impl Records {
    fn provisioner(&self) -> Arc<dyn Provisioner> {
        match self {
            Self::InMemory(provisioner) => provisioner.clone(),
            Self::Servers { backends, .. } => backends.clone(),
        }
    }

    /// Whether integration `id` is recorded for the tenant, as the binding describes it.
    async fn recorded(&self, plan: &TenantPlan, id: &str) -> bool {
        match self {
            Self::InMemory(provisioner) => {
                provisioner
                    .integration(plan, "roadmap")
                    .is_some_and(|record| {
                        record.kind == "GitHubProjects"
                            && record.secret_name == "github-token"
                            && record.settings["owner"] == "acme"
                    })
            }
            Self::Servers { backends, control } => {
                let sql = format!(
                    "SELECT count(*) FROM {}.integrations WHERE integration_id = '{id}' \
                     AND kind = 'GitHubProjects' AND secret_name = 'github-token' \
                     AND settings->>'owner' = 'acme'",
                    ident(control)
                );
                backends
                    .postgres
                    .connection()
                    .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
                    .await
                    .expect("query")
                    .expect("row")
                    .try_get_by_index::<i64>(0)
                    .expect("count")
                    == 1
            }
        }
    }

    async fn cleanup(&self, plan: &TenantPlan) {
        let Self::Servers { backends, control } = self else {
            return;
        };
        backends.postgres.erase(plan).await.expect("erase");
        backends
            .postgres
            .connection()
            .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(control)))
            .await
            .expect("drop control");
    }
}

#[tokio::test]
async fn a_valid_binding_is_registered_and_unregistered_on_deletion() {
    registered_and_unregistered(Records::InMemory(Arc::default()), "memoryc_control").await;
}

async fn registered_and_unregistered(records: Records, control: &str) {
    let settings = settings(control);
    let name = unique_name();
    let mut tenant = test_support::tenant(&name, Isolation::Shared);
    tenant.spec.namespace = Some(NAMESPACE.into());
    let plan = test_support::plan(&tenant, &settings);
    records
        .provisioner()
        .provision(&plan, &password::generate(), false, None)
        .await
        .expect("provision tenant");
    tenant.status = Some(MemoryTenantStatus {
        phase: Some(Phase::Ready),
        namespace: Some(NAMESPACE.into()),
        ..MemoryTenantStatus::default()
    });
    let tenant_json = serde_json::to_value(&tenant).expect("tenant");
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
                        "metadata": {"name": "github-token", "namespace": NAMESPACE},
                        "data": {"token": "Z2hwX3NlY3JldA=="}});
    let (ctx, mut server) = fixtures::context(settings, records.provisioner());
    let binding = binding(&name);
    let tenant_path = format!("/apis/memoryc.dev/v1alpha1/memorytenants/{name}");

    server.watch(tokio::spawn(reconcile(
        Arc::new(binding.clone()),
        ctx.clone(),
    )));
    server.expect_get(&tenant_path, tenant_json.clone()).await;
    server
        .expect_get(
            &format!("/api/v1/namespaces/{NAMESPACE}/secrets/github-token"),
            secret,
        )
        .await;
    let status = expect_status(&mut server, &binding).await;
    server.expect_event(NAMESPACE, "Registered").await;
    assert_eq!(
        server.finished().await.expect("ok"),
        Action::requeue(Duration::from_secs(60)),
        "a board's sync state is looked at again every minute"
    );
    assert_eq!(status.phase, Some(Phase::Ready));
    let connected = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Connected")
        .expect("Connected");
    assert_eq!(
        (connected.status.as_str(), connected.reason.as_str()),
        ("Unknown", "NotSyncedYet"),
        "no sync has run yet, so nothing claims a connection"
    );
    assert_eq!(status.items_synced, Some(0));
    let id = status.integration_id.clone().expect("integration id");
    assert!(records.recorded(&plan, &id).await);

    let mut deleting = binding.clone();
    deleting.status = Some(status);
    deleting.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
    );
    server.watch(tokio::spawn(reconcile(Arc::new(deleting), ctx.clone())));
    server.expect_get(&tenant_path, tenant_json).await;
    let removal = server
        .expect(Method::PATCH, &bindings_path(), StatusCode::OK, |_| {
            serde_json::to_value(&binding).expect("binding")
        })
        .await;
    assert_eq!(
        removal.body[1],
        json!({"op": "remove", "path": "/metadata/finalizers/0"})
    );
    server.finished().await.expect("cleaned up");
    assert!(!records.recorded(&plan, &id).await);
    records.cleanup(&plan).await;
}

#[tokio::test]
async fn a_webhook_binding_reports_how_its_deliveries_fare() {
    let provisioner = Arc::new(InMemoryProvisioner::default());
    let settings = settings("memoryc_control");
    let name = unique_name();
    let mut tenant = test_support::tenant(&name, Isolation::Shared);
    tenant.spec.namespace = Some(NAMESPACE.into());
    let plan = test_support::plan(&tenant, &settings);
    provisioner
        .provision(&plan, &password::generate(), false, None)
        .await
        .expect("provision tenant");
    tenant.status = Some(MemoryTenantStatus {
        phase: Some(Phase::Ready),
        namespace: Some(NAMESPACE.into()),
        ..MemoryTenantStatus::default()
    });
    let tenant_json = serde_json::to_value(&tenant).expect("tenant");
    let tenant_path = format!("/apis/memoryc.dev/v1alpha1/memorytenants/{name}");
    let signing = memoryc_crds::contract::webhook_signing::generate();
    let secret_path = format!("/api/v1/namespaces/{NAMESPACE}/secrets/hook-signing");
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hook-signing", "namespace": NAMESPACE},
        "data": {"signing-secret": k8s_openapi::ByteString(signing.clone().into_bytes())}});
    let spec = json!({"tenantRef": {"name": name}, "kind": "Webhook",
                      "webhook": {"url": "https://hooks.example/memoryc", "events": ["memory.created"]},
                      "secretRef": {"name": "hook-signing"}});
    let mut binding =
        IntegrationBinding::new("roadmap", serde_json::from_value(spec).expect("spec"));
    binding.metadata.namespace = Some(NAMESPACE.into());
    binding.metadata.uid = Some(uuid::Uuid::new_v4().to_string());
    binding.metadata.generation = Some(1);
    binding.metadata.finalizers = Some(vec![FINALIZER.into()]);
    let (ctx, mut server) = fixtures::context(settings, provisioner.clone());

    server.watch(tokio::spawn(reconcile(
        Arc::new(binding.clone()),
        ctx.clone(),
    )));
    server.expect_get(&tenant_path, tenant_json.clone()).await;
    server.expect_get(&secret_path, secret.clone()).await;
    let first = expect_status(&mut server, &binding).await;
    server.expect_event(NAMESPACE, "Registered").await;
    assert_eq!(
        server.finished().await.expect("ok"),
        Action::requeue(Duration::from_secs(60)),
        "a webhook's state is looked at again every minute"
    );
    let record = provisioner.integration(&plan, "roadmap").expect("recorded");
    assert_eq!(record.secret.as_deref(), Some(signing.as_str()));
    let connected = |status: &IntegrationBindingStatus| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == "Connected")
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
            .expect("Connected")
    };
    assert_eq!(connected(&first).0, "Unknown", "nothing delivered yet");
    assert_eq!(first.items_synced, Some(0));
    let ready = first
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert_eq!(ready.status, "True", "Connected does not hold Ready back");

    // The platform delivered three events, then the receiver started refusing.
    provisioner.set_integration_state(
        &plan,
        "roadmap",
        crate::provision::integrations::IntegrationState {
            connected: Some(false),
            last_error: Some("the receiver answered 503 Service Unavailable".into()),
            last_sync_at: Some(chrono::Utc::now()),
            items_synced: 3,
            next_run_at: None,
            external_id: None,
            sync_pass: 0,
        },
    );
    let mut observed = binding.clone();
    observed.status = Some(first);
    server.watch(tokio::spawn(reconcile(Arc::new(observed), ctx.clone())));
    server.expect_get(&tenant_path, tenant_json).await;
    server.expect_get(&secret_path, secret).await;
    let second = expect_status(&mut server, &binding).await;
    server.finished().await.expect("ok");
    let (status, reason, message) = connected(&second);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "DeliveryFailed")
    );
    assert!(message.contains("503"), "{message}");
    assert_eq!(second.items_synced, Some(3));
    assert!(second.last_sync_time.is_some());
}

#[tokio::test]
async fn a_github_binding_reports_how_its_syncs_fare() {
    let provisioner = Arc::new(InMemoryProvisioner::default());
    let settings = settings("memoryc_control");
    let name = unique_name();
    let mut tenant = test_support::tenant(&name, Isolation::Shared);
    tenant.spec.namespace = Some(NAMESPACE.into());
    let plan = test_support::plan(&tenant, &settings);
    provisioner
        .provision(&plan, &password::generate(), false, None)
        .await
        .expect("provision tenant");
    tenant.status = Some(MemoryTenantStatus {
        phase: Some(Phase::Ready),
        namespace: Some(NAMESPACE.into()),
        ..MemoryTenantStatus::default()
    });
    let tenant_json = serde_json::to_value(&tenant).expect("tenant");
    let tenant_path = format!("/apis/memoryc.dev/v1alpha1/memorytenants/{name}");
    let secret_path = format!("/api/v1/namespaces/{NAMESPACE}/secrets/github-token");
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "github-token", "namespace": NAMESPACE},
        "data": {"token": k8s_openapi::ByteString(b"ghp_secret".to_vec()),
                 "webhook-secret": k8s_openapi::ByteString(b"a-github-webhook-secret".to_vec())}});
    let binding = binding(&name);
    let (ctx, mut server) = fixtures::context(settings, provisioner.clone());
    server.watch(tokio::spawn(reconcile(
        Arc::new(binding.clone()),
        ctx.clone(),
    )));
    server.expect_get(&tenant_path, tenant_json.clone()).await;
    server.expect_get(&secret_path, secret.clone()).await;
    let first = expect_status(&mut server, &binding).await;
    server.expect_event(NAMESPACE, "Registered").await;
    server.finished().await.expect("ok");
    let record = provisioner.integration(&plan, "roadmap").expect("recorded");
    assert_eq!(record.secret.as_deref(), Some("ghp_secret"));
    assert_eq!(
        record.inbound_secret.as_deref(),
        Some("a-github-webhook-secret"),
        "GitHub's webhook secret reaches the platform"
    );
    let connected = |status: &IntegrationBindingStatus| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == "Connected")
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
            .expect("Connected")
    };
    assert_eq!(connected(&first).0, "Unknown");

    // The platform's sync could not read the board: the binding says why.
    provisioner.set_integration_state(
        &plan,
        "roadmap",
        crate::provision::integrations::IntegrationState {
            connected: Some(false),
            last_error: Some("GitHub refused the token (401): Bad credentials".into()),
            last_sync_at: None,
            items_synced: 0,
            next_run_at: None,
            external_id: None,
            sync_pass: 1,
        },
    );
    let mut observed = binding.clone();
    observed.status = Some(first);
    server.watch(tokio::spawn(reconcile(
        Arc::new(observed.clone()),
        ctx.clone(),
    )));
    server.expect_get(&tenant_path, tenant_json.clone()).await;
    server.expect_get(&secret_path, secret.clone()).await;
    let failed = expect_status(&mut server, &binding).await;
    server.finished().await.expect("ok");
    let (status, reason, message) = connected(&failed);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "SyncFailed"));
    assert!(message.contains("Bad credentials"), "{message}");

    // Then it read the board: 42 items are memories.
    provisioner.set_integration_state(
        &plan,
        "roadmap",
        crate::provision::integrations::IntegrationState {
            connected: Some(true),
            last_error: None,
            last_sync_at: Some(chrono::Utc::now()),
            items_synced: 42,
            next_run_at: None,
            external_id: Some("PVT_kwDOBdk1c84AtQ9x".into()),
            sync_pass: 2,
        },
    );
    observed.status = Some(failed);
    server.watch(tokio::spawn(reconcile(Arc::new(observed), ctx.clone())));
    server.expect_get(&tenant_path, tenant_json).await;
    server.expect_get(&secret_path, secret).await;
    let synced = expect_status(&mut server, &binding).await;
    server.finished().await.expect("ok");
    let (status, reason, message) = connected(&synced);
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Synced"));
    assert!(message.contains("42 items"), "{message}");
    assert_eq!(synced.items_synced, Some(42));
    assert!(synced.last_sync_time.is_some());
}
