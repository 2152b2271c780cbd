//! Reconcile scenarios against the mocked API server, with the real PostgreSQL and Milvus
//! behind the provisioning steps: every Kubernetes call is asserted in order.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use memoryc_crds::api_key;
use memoryc_crds::contract::secret_keys;
use memoryc_crds::layout::Isolation;
use memoryc_crds::resources::{DeletionPolicy, MemoryTenant, MemoryTenantStatus};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

use super::controller::{FINALIZER, PASSWORD_DIGEST_ANNOTATION, error_policy, reconcile};
use super::desired::{self, Credentials};
use super::plan::TenantPlan;
use crate::context::Context;
use crate::fixtures::{self, MockApiServer};
use crate::provision::milvus::Milvus;
use crate::provision::password;
use crate::provision::postgres::{Postgres, ident};
use crate::test_support::{self, settings, unique_name};

const TENANTS: &str = "/apis/memoryc.dev/v1alpha1/memorytenants";

struct Scenario {
    ctx: Arc<Context>,
    server: MockApiServer,
    plan: TenantPlan,
    tenant: MemoryTenant,
    control: String,
}

async fn scenario(isolation: Isolation, milvus: Milvus) -> Scenario {
    let control = format!(
        "memoryc_control_test_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let settings = settings(&control);
    let mut tenant = test_support::tenant(&unique_name(), isolation);
    tenant.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
    let plan = TenantPlan::for_tenant(&tenant, &settings).expect("plan");
    let (ctx, server) = fixtures::context(settings, test_support::postgres().await, milvus);
    Scenario {
        ctx,
        server,
        plan,
        tenant,
        control,
    }
}

impl Scenario {
    fn run(&mut self, tenant: MemoryTenant) {
        let task = tokio::spawn(reconcile(Arc::new(tenant), self.ctx.clone()));
        self.server.watch(task);
    }

    fn postgres(&self) -> &Postgres {
        &self.ctx.postgres
    }

    fn path(&self, namespace_path: &str) -> String {
        format!(
            "/api/v1/namespaces/{}/{namespace_path}",
            self.plan.namespace
        )
    }

    /// Namespace lookup and the applies that precede provisioning; each applied body must be
    /// exactly what the desired-state builders produce. `namespace` is what the GET returns
    /// (`None`: not found).
    async fn expect_namespace_and_policies(&mut self, namespace: Option<Value>) -> Value {
        let ns_path = format!("/api/v1/namespaces/{}", self.plan.namespace);
        let adopted = namespace.as_ref().is_some_and(|ns| {
            ns["metadata"]["ownerReferences"][0]["uid"] != json!(self.plan.owner_reference.uid)
        });
        match namespace {
            None => self.server.expect_get_missing(&ns_path).await,
            Some(existing) => self.server.expect_get(&ns_path, existing).await,
        };
        let applied_ns = self.server.expect_apply(&ns_path, json!({})).await;
        assert_eq!(
            applied_ns,
            to_json(&desired::namespace(&self.plan, adopted))
        );
        let plan = self.plan.clone();
        let settings = self.ctx.settings.clone();
        let ns = plan.namespace.clone();
        let expected = [
            (
                self.path(&format!("serviceaccounts/{}", plan.platform_name)),
                to_json(&desired::service_account(&plan)),
            ),
            (
                self.path("resourcequotas/memoryc-tenant"),
                to_json(&desired::resource_quota(&plan)),
            ),
            (
                format!(
                    "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies/memoryc-tenant"
                ),
                to_json(&desired::network_policy(&plan, &settings)),
            ),
            (
                format!(
                    "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/memoryc-tenant-admin"
                ),
                to_json(&desired::admin_role(&plan)),
            ),
            (
                format!(
                    "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/memoryc-tenant-admins"
                ),
                to_json(&desired::admin_role_binding(&plan)),
            ),
        ];
        for (path, body) in expected {
            let applied = self.server.expect_apply(&path, json!({})).await;
            assert_eq!(applied, body, "{path}");
        }
        applied_ns
    }

    /// The credentials Secret apply; its body must be the builder's output for the password and
    /// key it carries, annotated with the password's digest.
    async fn expect_secret_apply(&mut self) -> Value {
        let applied = self
            .server
            .expect_apply(&self.secret_path(), json!({}))
            .await;
        let credentials = Credentials {
            password: secret_text(&applied, secret_keys::PASSWORD),
            api_key: secret_text(&applied, secret_keys::API_KEY),
        };
        let mut expected =
            desired::credentials_secret(&self.plan, &self.ctx.settings, &credentials);
        expected.metadata.annotations = Some(
            [(
                PASSWORD_DIGEST_ANNOTATION.to_string(),
                password::digest(&self.plan.role, &credentials.password),
            )]
            .into(),
        );
        assert_eq!(applied, to_json(&expected));
        applied
    }

    fn secret_path(&self) -> String {
        self.path(&format!("secrets/{}", self.plan.credentials_secret))
    }

    fn status_path(&self) -> String {
        format!(
            "{TENANTS}/{}/status",
            self.tenant.metadata.name.as_deref().unwrap_or_default()
        )
    }

    async fn expect_status(&mut self) -> MemoryTenantStatus {
        let path = self.status_path();
        let tenant = serde_json::to_value(&self.tenant).expect("tenant");
        // The server answers with the whole object carrying the new status.
        let call = self
            .server
            .expect(Method::PATCH, &path, StatusCode::OK, |call| {
                let mut object = tenant;
                object["status"] = call.body["status"].clone();
                object
            })
            .await;
        assert_eq!(call.content_type, "application/apply-patch+yaml");
        assert_eq!(call.body["kind"], "MemoryTenant");
        serde_json::from_value(call.body["status"].clone()).expect("status")
    }

    /// Platform Deployment (answering with `available` replicas), Service and PDB.
    async fn expect_platform(&mut self, available: i32) -> Value {
        let apps = format!(
            "/apis/apps/v1/namespaces/{}/deployments/{}",
            self.plan.namespace, self.plan.platform_name
        );
        let deployment = self
            .server
            .expect_apply(
                &apps,
                json!({"status": {"replicas": 2, "availableReplicas": available}}),
            )
            .await;
        self.server
            .expect_apply(
                &self.path(&format!("services/{}", self.plan.platform_name)),
                json!({}),
            )
            .await;
        self.server
            .expect_apply(
                &format!(
                    "/apis/policy/v1/namespaces/{}/poddisruptionbudgets/{}",
                    self.plan.namespace, self.plan.platform_name
                ),
                json!({}),
            )
            .await;
        deployment
    }

    async fn finish(&mut self) -> crate::error::Result<Action> {
        self.server.finished().await
    }

    /// Reconciles `tenant` marked for deletion: the cleanup's event `reason`, then the
    /// finalizer's removal, guarded by a test that it is still the operator's.
    async fn expect_deletion(&mut self, tenant: MemoryTenant, reason: &str) {
        let mut deleting = tenant;
        deleting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
        );
        let name = deleting.metadata.name.clone().expect("name");
        self.run(deleting);
        self.server.expect_event("default", reason).await;
        let answer = serde_json::to_value(&self.tenant).expect("tenant");
        let call = self
            .server
            .expect(
                Method::PATCH,
                &format!("{TENANTS}/{name}"),
                StatusCode::OK,
                |_| answer,
            )
            .await;
        assert_eq!(
            call.body[0],
            json!({"op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER})
        );
        assert_eq!(
            call.body[1],
            json!({"op": "remove", "path": "/metadata/finalizers/0"})
        );
        self.finish().await.expect("cleaned up");
    }

    async fn cleanup(&self) {
        self.postgres().erase(&self.plan).await.expect("erase");
        if self.plan.is_dedicated() {
            self.ctx
                .milvus
                .drop_collection(&self.plan.collection)
                .await
                .expect("drop collection");
        }
        self.postgres()
            .connection()
            .execute_unprepared(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                ident(&self.control)
            ))
            .await
            .expect("drop control");
    }

    /// The tenant as the API server returns it after this status was written.
    fn with_status(&self, status: MemoryTenantStatus) -> MemoryTenant {
        let mut tenant = self.tenant.clone();
        tenant.status = Some(status);
        tenant
    }

    async fn key_is_registered(&self, key: &str) -> bool {
        let prefix = api_key::prefix_of(key).expect("well-formed key");
        self.postgres()
            .connection()
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                format!(
                    "SELECT 1 FROM {}.api_keys WHERE prefix = $1 AND key_hash = $2 AND revoked_at IS NULL",
                    ident(&self.plan.control_schema)
                ),
                [prefix.into(), api_key::hash(key).into()],
            ))
            .await
            .expect("query")
            .is_some()
    }
}

fn to_json<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).expect("encode")
}

/// The status's condition of `type_`.
fn condition<'a>(
    status: &'a MemoryTenantStatus,
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {:?}", status.conditions))
}

fn secret_text(secret: &Value, key: &str) -> String {
    let encoded = secret["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {secret}"));
    let bytes: k8s_openapi::ByteString = serde_json::from_value(json!(encoded)).expect("base64");
    String::from_utf8(bytes.0).expect("utf8")
}

/// The Secret as the server would hold it after `applied` (what the next GET returns).
fn stored(applied: &Value) -> Value {
    applied.clone()
}

#[tokio::test]
async fn first_reconcile_adds_the_finalizer_then_provisions_a_shared_tenant() {
    let mut s = scenario(Isolation::Shared, test_support::milvus()).await;
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
    assert!(
        s.postgres()
            .schema_exists(&s.plan.schema)
            .await
            .expect("schema")
    );
    assert!(
        s.ctx
            .milvus
            .has_collection(&s.plan.collection)
            .await
            .expect("collection")
    );
    s.cleanup().await;
}

#[tokio::test]
async fn a_dedicated_tenant_gets_its_own_platform_and_is_ready_once_it_is_available() {
    let mut s = scenario(Isolation::Dedicated, test_support::milvus()).await;
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
            .any(|e| e["name"] == "MEMORYC_DATABASE_URL"
                && e["valueFrom"]["secretKeyRef"]["name"] == s.plan.credentials_secret.as_str())
    );
    assert!(
        s.ctx
            .milvus
            .has_collection(&s.plan.collection)
            .await
            .expect("own collection")
    );

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

#[tokio::test]
async fn a_ready_tenant_reconciles_without_writing_status_or_events() {
    let mut s = scenario(Isolation::Shared, test_support::milvus()).await;
    s.run(s.tenant.clone());
    let namespace = s.expect_namespace_and_policies(None).await;
    s.server.expect_get_missing(&s.secret_path()).await;
    let secret = s.expect_secret_apply().await;
    let status = s.expect_status().await;
    s.server.expect_event("default", "Ready").await;
    s.finish().await.expect("first");

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

#[tokio::test]
async fn a_paused_tenant_is_left_alone() {
    let mut s = scenario(Isolation::Shared, test_support::milvus()).await;
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
        !s.postgres()
            .schema_exists(&s.plan.schema)
            .await
            .expect("schema"),
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
#[tokio::test]
async fn without_a_shared_platform_shared_tenants_are_refused_yet_still_erased() {
    let mut s = scenario(Isolation::Shared, test_support::milvus()).await;
    s.tenant.spec.deletion_policy = DeletionPolicy::Delete;
    s.run(s.tenant.clone());
    s.expect_namespace_and_policies(None).await;
    s.server.expect_get_missing(&s.secret_path()).await;
    s.expect_secret_apply().await;
    let ready = s.expect_status().await;
    s.server.expect_event("default", "Ready").await;
    s.finish().await.expect("provisioned");
    assert!(
        s.postgres()
            .schema_exists(&s.plan.schema)
            .await
            .expect("schema")
    );

    let settings = crate::settings::Settings {
        shared_platform_url: None,
        ..s.ctx.settings.clone()
    };
    let (ctx, server) = fixtures::context(
        settings,
        test_support::postgres().await,
        test_support::milvus(),
    );
    s.ctx = ctx;
    s.server = server;
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
        !s.postgres()
            .schema_exists(&s.plan.schema)
            .await
            .expect("schema"),
        "the tenant's schema is erased"
    );
    s.cleanup().await;
}

#[tokio::test]
async fn drift_is_repaired_dropped_schema_and_collection_and_an_edited_secret() {
    let mut s = scenario(Isolation::Dedicated, test_support::milvus()).await;
    s.run(s.tenant.clone());
    let namespace = s.expect_namespace_and_policies(None).await;
    s.server.expect_get_missing(&s.secret_path()).await;
    let secret = s.expect_secret_apply().await;
    s.expect_platform(2).await;
    let status = s.expect_status().await;
    s.server.expect_event("default", "Ready").await;
    s.finish().await.expect("first");

    s.postgres()
        .connection()
        .execute_unprepared(&format!("DROP SCHEMA {} CASCADE", ident(&s.plan.schema)))
        .await
        .expect("drop schema");
    s.ctx
        .milvus
        .drop_collection(&s.plan.collection)
        .await
        .expect("drop collection");
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
    assert!(
        s.postgres()
            .schema_exists(&s.plan.schema)
            .await
            .expect("schema")
    );
    assert!(
        s.ctx
            .milvus
            .has_collection(&s.plan.collection)
            .await
            .expect("collection")
    );
    s.cleanup().await;
}

async fn provisioned_then_deleted(policy: DeletionPolicy) -> Scenario {
    let mut s = scenario(Isolation::Dedicated, test_support::milvus()).await;
    s.tenant.spec.deletion_policy = policy;
    s.run(s.tenant.clone());
    s.expect_namespace_and_policies(None).await;
    s.server.expect_get_missing(&s.secret_path()).await;
    s.expect_secret_apply().await;
    s.expect_platform(2).await;
    s.expect_status().await;
    s.server.expect_event("default", "Ready").await;
    s.finish().await.expect("provisioned");

    let reason = match policy {
        DeletionPolicy::Retain => "Retained",
        DeletionPolicy::Delete => "Erased",
    };
    s.expect_deletion(s.tenant.clone(), reason).await;
    s
}

#[tokio::test]
async fn deletion_with_retain_keeps_the_data_and_closes_access() {
    let s = provisioned_then_deleted(DeletionPolicy::Retain).await;
    assert!(
        s.postgres()
            .schema_exists(&s.plan.schema)
            .await
            .expect("schema")
    );
    assert!(
        s.ctx
            .milvus
            .has_collection(&s.plan.collection)
            .await
            .expect("collection")
    );
    let login = s
        .postgres()
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = '{}'",
                s.plan.role
            ),
        ))
        .await
        .expect("query")
        .expect("role kept")
        .try_get_by_index::<bool>(0)
        .expect("bool");
    assert!(!login);
    s.cleanup().await;
}

#[tokio::test]
async fn deletion_with_delete_erases_schema_role_and_collection() {
    let s = provisioned_then_deleted(DeletionPolicy::Delete).await;
    assert!(
        !s.postgres()
            .schema_exists(&s.plan.schema)
            .await
            .expect("schema")
    );
    assert!(
        !s.postgres()
            .schema_exists(&s.plan.control_schema)
            .await
            .expect("control")
    );
    assert!(!s.postgres().role_exists(&s.plan.role).await.expect("role"));
    assert!(
        !s.ctx
            .milvus
            .has_collection(&s.plan.collection)
            .await
            .expect("collection")
    );
    s.cleanup().await;
}

#[tokio::test]
async fn a_failing_step_is_reported_and_requeued_with_backoff() {
    // Nothing listens on port 9: the vector store step fails, the others still run.
    let mut s = scenario(Isolation::Shared, Milvus::new("http://127.0.0.1:9")).await;
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
    let (ctx, server) = fixtures::context(
        s.ctx.settings.clone(),
        test_support::postgres().await,
        test_support::milvus(),
    );
    s.ctx = ctx;
    s.server = server;
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
#[tokio::test]
async fn a_tenant_naming_another_tenants_schema_is_refused_and_touches_nothing() {
    let mut s = scenario(Isolation::Shared, test_support::milvus()).await;
    let victim = s.plan.clone();
    s.postgres()
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
        !s.postgres().role_exists(&s.plan.role).await.expect("role"),
        "no role was made for the refused tenant"
    );
    let owner = memoryc_migrations::roles::schema_owner(s.postgres().connection(), &victim.schema)
        .await
        .expect("owner");
    assert_eq!(owner.as_deref(), Some(victim.owner_role.as_str()));

    // Its deletion erases nothing of the victim's.
    let mut deleting = attacker;
    deleting.status = Some(refused);
    s.expect_deletion(deleting, "Erased").await;
    assert!(
        s.postgres()
            .schema_exists(&victim.schema)
            .await
            .expect("schema"),
        "the victim's schema survives the refused tenant's deletion"
    );
    s.plan = victim;
    s.cleanup().await;
}

/// A namespace that exists without this tenant's label (someone else's, or another tenant's)
/// is refused before anything is applied there; one labelled for the tenant is adopted.
#[tokio::test]
async fn a_namespace_that_is_not_the_tenants_is_refused() {
    let mut s = scenario(Isolation::Shared, test_support::milvus()).await;
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
    assert!(!s.postgres().role_exists(&s.plan.role).await.expect("role"));

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
#[tokio::test]
async fn a_system_namespace_is_refused_without_a_lookup() {
    let mut s = scenario(Isolation::Shared, test_support::milvus()).await;
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
    assert!(!s.postgres().role_exists(&s.plan.role).await.expect("role"));
    s.cleanup().await;
}
