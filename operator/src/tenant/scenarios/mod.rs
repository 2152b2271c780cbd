//! Reconcile scenarios against the mocked API server: every Kubernetes call is asserted in
//! order. Each scenario (in `cases`) runs with the in-memory provisioner (`offline`, no server
//! needed) and, where what the servers do matters, with the real PostgreSQL and Milvus
//! (`servers`).

/// One `#[tokio::test]` per named case of `cases`, each run with the given [`Kind`].
macro_rules! scenario_tests {
    ($kind:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                super::cases::$case($kind).await;
            }
        )+
    };
}

mod cases;
mod offline;
mod servers;

use std::sync::Arc;

use http::{Method, StatusCode};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use memoryc_crds::api_key;
use memoryc_crds::contract::secret_keys;
use memoryc_crds::layout::Isolation;
use memoryc_crds::resources::{MemoryTenant, MemoryTenantStatus};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

use super::controller::{FINALIZER, PASSWORD_DIGEST_ANNOTATION, reconcile};
use super::desired::{self, Credentials};
use super::plan::TenantPlan;
use crate::context::Context;
use crate::fixtures::{self, MockApiServer};
use crate::provision::in_memory::{InMemoryProvisioner, Step};
use crate::provision::milvus::Milvus;
use crate::provision::password;
use crate::provision::postgres::ident;
use crate::provision::{Backends, Provisioner};
use crate::test_support::{self, settings, unique_name};

const TENANTS: &str = "/apis/memoryc.dev/v1alpha1/memorytenants";

/// What provisions behind the mocked API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    InMemory,
    Servers,
}

#[derive(Clone)]
enum Backing {
    InMemory(Arc<InMemoryProvisioner>),
    Servers(Arc<Backends>),
}

impl Backing {
    async fn new(kind: Kind) -> Self {
        match kind {
            Kind::InMemory => Self::InMemory(Arc::default()),
            Kind::Servers => Self::Servers(Arc::new(Backends {
                postgres: test_support::postgres().await,
                milvus: test_support::milvus(),
            })),
        }
    }

    fn provisioner(&self) -> Arc<dyn Provisioner> {
        match self {
            Self::InMemory(provisioner) => provisioner.clone(),
            Self::Servers(backends) => backends.clone(),
        }
    }
}

/// What [`Scenario::provision_to_ready`] saw.
struct Provisioned {
    namespace: Value,
    secret: Value,
    status: MemoryTenantStatus,
}

struct Scenario {
    ctx: Arc<Context>,
    server: MockApiServer,
    backing: Backing,
    plan: TenantPlan,
    tenant: MemoryTenant,
    control: String,
    /// The current context has swept this tenant for orphans (once per operator process).
    swept: bool,
    /// Objects the sweep's lists answer with, besides none.
    listed: Vec<Value>,
}

async fn scenario(isolation: Isolation, kind: Kind) -> Scenario {
    let control = format!(
        "memoryc_control_test_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let settings = settings(&control);
    let mut tenant = test_support::tenant(&unique_name(), isolation);
    tenant.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
    let plan = TenantPlan::for_tenant(&tenant, &settings).expect("plan");
    let backing = Backing::new(kind).await;
    let (ctx, server) = fixtures::context(settings, backing.provisioner());
    Scenario {
        ctx,
        server,
        backing,
        plan,
        tenant,
        control,
        swept: false,
        listed: Vec::new(),
    }
}

impl Scenario {
    fn run(&mut self, tenant: MemoryTenant) {
        let task = tokio::spawn(reconcile(Arc::new(tenant), self.ctx.clone()));
        self.server.watch(task);
    }

    /// A new context (a restarted operator) with `settings`, and a new mocked API server.
    fn use_settings(&mut self, settings: crate::settings::Settings) {
        let (ctx, server) = fixtures::context(settings, self.backing.provisioner());
        self.ctx = ctx;
        self.server = server;
        self.swept = false;
    }

    /// Makes the vector store step fail from now on (for the servers: a Milvus nobody
    /// listens for).
    fn break_vector_store(&mut self) {
        match &self.backing {
            Backing::InMemory(provisioner) => {
                provisioner.fail(Step::VectorStore, "connection refused");
            }
            Backing::Servers(backends) => {
                self.backing = Backing::Servers(Arc::new(Backends {
                    postgres: backends.postgres.clone(),
                    milvus: Milvus::new("http://127.0.0.1:9"),
                }));
                self.use_settings(self.ctx.settings.clone());
            }
        }
    }

    async fn schema_exists(&self, schema: &str) -> bool {
        match &self.backing {
            Backing::InMemory(provisioner) => provisioner.schema_exists(schema),
            Backing::Servers(backends) => backends
                .postgres
                .schema_exists(schema)
                .await
                .expect("schema lookup"),
        }
    }

    /// Whether `schema` belongs to the tenant of `owner`.
    async fn schema_owned_by(&self, schema: &str, owner: &TenantPlan) -> bool {
        match &self.backing {
            Backing::InMemory(provisioner) => {
                provisioner.schema_owner(schema).as_deref() == Some(owner.tenant.as_str())
            }
            Backing::Servers(backends) => {
                memoryc_control::roles::schema_owner(backends.postgres.connection(), schema)
                    .await
                    .expect("owner lookup")
                    .as_deref()
                    == Some(owner.owner_role.as_str())
            }
        }
    }

    async fn has_collection(&self) -> bool {
        match &self.backing {
            Backing::InMemory(provisioner) => provisioner.has_collection(&self.plan.collection),
            Backing::Servers(backends) => backends
                .milvus
                .has_collection(&self.plan.collection)
                .await
                .expect("collection lookup"),
        }
    }

    /// Whether the tenant's login (its database role) exists.
    async fn login_exists(&self, plan: &TenantPlan) -> bool {
        match &self.backing {
            Backing::InMemory(provisioner) => provisioner.is_registered(plan),
            Backing::Servers(backends) => backends
                .postgres
                .role_exists(&plan.role)
                .await
                .expect("role lookup"),
        }
    }

    /// Whether the tenant's login can log in.
    async fn login_enabled(&self) -> bool {
        match &self.backing {
            Backing::InMemory(provisioner) => provisioner.can_log_in(&self.plan),
            Backing::Servers(backends) => backends
                .postgres
                .connection()
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1",
                    [self.plan.role.clone().into()],
                ))
                .await
                .expect("query")
                .expect("role kept")
                .try_get_by_index::<bool>(0)
                .expect("bool"),
        }
    }

    /// Drops the tenant's schema and collection behind the operator's back.
    async fn drop_schema_and_collection(&self) {
        match &self.backing {
            Backing::InMemory(provisioner) => {
                provisioner.drop_schema(&self.plan.schema);
                provisioner.drop_collection(&self.plan.collection);
            }
            Backing::Servers(backends) => {
                backends
                    .postgres
                    .connection()
                    .execute_unprepared(&format!(
                        "DROP SCHEMA {} CASCADE",
                        ident(&self.plan.schema)
                    ))
                    .await
                    .expect("drop schema");
                backends
                    .milvus
                    .drop_collection(&self.plan.collection)
                    .await
                    .expect("drop collection");
            }
        }
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
        if !self.swept {
            self.expect_sweep().await;
            self.swept = true;
        }
        applied_ns
    }

    /// The orphan sweep: one list per kind by the tenant's labels, answered with those of
    /// [`Self::listed`] of that kind; each listed object the tenant owns and no longer wants
    /// must be deleted, nothing else.
    async fn expect_sweep(&mut self) {
        let ns = self.plan.namespace.clone();
        let kinds = [
            (
                "ServiceAccount",
                format!("/api/v1/namespaces/{ns}/serviceaccounts"),
            ),
            (
                "ResourceQuota",
                format!("/api/v1/namespaces/{ns}/resourcequotas"),
            ),
            (
                "NetworkPolicy",
                format!("/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies"),
            ),
            (
                "Role",
                format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles"),
            ),
            (
                "RoleBinding",
                format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
            ),
            ("Secret", format!("/api/v1/namespaces/{ns}/secrets")),
            (
                "Deployment",
                format!("/apis/apps/v1/namespaces/{ns}/deployments"),
            ),
            ("Service", format!("/api/v1/namespaces/{ns}/services")),
            (
                "PodDisruptionBudget",
                format!("/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets"),
            ),
        ];
        let wanted = desired::children(&self.plan);
        let uid = self.plan.owner_reference.uid.clone();
        for (kind, path) in kinds {
            let items: Vec<Value> = self
                .listed
                .iter()
                .filter(|object| object["kind"] == kind)
                .cloned()
                .collect();
            let api_version = path
                .strip_prefix("/apis/")
                .map_or("v1".to_string(), |rest| {
                    rest.split('/').take(2).collect::<Vec<_>>().join("/")
                });
            let answer = json!({"apiVersion": api_version, "kind": format!("{kind}List"),
                                "metadata": {"resourceVersion": "1"}, "items": items.clone()});
            let call = self.server.expect_get(&path, answer).await;
            assert!(
                call.query.contains("labelSelector=")
                    && call.query.contains(self.plan.tenant.as_str()),
                "{}",
                call.query
            );
            for object in items {
                let name = object["metadata"]["name"]
                    .as_str()
                    .expect("name")
                    .to_string();
                let owned = object["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|owners| owners.iter().any(|o| o["uid"] == uid.as_str()));
                if owned && !wanted.iter().any(|(k, n)| *k == kind && *n == name) {
                    self.server
                        .expect(
                            Method::DELETE,
                            &format!("{path}/{name}"),
                            StatusCode::OK,
                            |_| json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
                        )
                        .await;
                }
            }
        }
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

    /// The first reconcile of a new tenant, provisioning it to Ready: what it applied (the
    /// namespace and the credentials Secret) and the status it wrote.
    async fn provision_to_ready(&mut self) -> Provisioned {
        self.run(self.tenant.clone());
        let namespace = self.expect_namespace_and_policies(None).await;
        self.server.expect_get_missing(&self.secret_path()).await;
        let secret = self.expect_secret_apply().await;
        if self.plan.is_dedicated() {
            self.expect_platform(2).await;
        }
        let status = self.expect_status().await;
        self.server.expect_event("default", "Ready").await;
        self.finish().await.expect("provisioned");
        Provisioned {
            namespace,
            secret,
            status,
        }
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
        let Backing::Servers(backends) = &self.backing else {
            return;
        };
        backends.postgres.erase(&self.plan).await.expect("erase");
        if self.plan.is_dedicated() {
            backends
                .milvus
                .drop_collection(&self.plan.collection)
                .await
                .expect("drop collection");
        }
        backends
            .postgres
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

    /// Whether `key` is a live API key of the tenant.
    async fn key_is_registered(&self, key: &str) -> bool {
        let backends = match &self.backing {
            Backing::InMemory(provisioner) => return provisioner.key_is_live(&self.plan, key),
            Backing::Servers(backends) => backends,
        };
        let prefix = api_key::prefix_of(key).expect("well-formed key");
        backends
            .postgres
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
