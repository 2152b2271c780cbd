//! Reconciling a MemoryTenant: validate → build desired objects → provision and apply → status.
//! Deletion goes through kube-runtime's `finalizer()`, whose cleanup honours `deletionPolicy`.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use memoryc_crds::contract::secret_keys;
use memoryc_crds::resources::status::condition_types::{
    CREDENTIALS_READY, DATABASE_READY, PLATFORM_READY, VECTOR_STORE_READY,
};
use memoryc_crds::resources::{DeletionPolicy, MemoryTenant, MemoryTenantStatus, Phase};
use serde_json::json;

use super::desired::{self, Credentials};
use super::orphans;
use super::plan::TenantPlan;
use super::status::{self, Happenings};
use crate::apply::{FIELD_MANAGER, apply, apply_cluster};
use crate::conditions::PartState;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::provision::ProvisionError;
use crate::provision::milvus::CollectionPlan;
use crate::provision::password;
use crate::provision::postgres::{DatabaseReport, Registration};
use crate::telemetry::metrics::TENANT_KIND;

/// Finalizer that holds a MemoryTenant until its data has been retained or erased.
pub const FINALIZER: &str = "memoryc.dev/cleanup";
/// Annotation on the credentials Secret: digest of the password the role was last given.
pub const PASSWORD_DIGEST_ANNOTATION: &str = "memoryc.dev/password-digest";

/// How often a Ready tenant is checked for drift.
const READY_RESYNC: Duration = Duration::from_secs(300);
/// How soon a tenant still coming up (pods starting) is looked at again.
const PROVISIONING_RESYNC: Duration = Duration::from_secs(15);

/// One reconcile of a MemoryTenant, in a span that names it (its logs and errors carry it).
#[tracing::instrument(
    name = "reconcile",
    skip_all,
    fields(memorytenant = %tenant.name_any(), generation = tenant.metadata.generation)
)]
pub async fn reconcile(tenant: Arc<MemoryTenant>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(TENANT_KIND);
    let api: Api<MemoryTenant> = Api::all(ctx.client.clone());
    // Paused before the finalizer: a paused tenant is neither provisioned nor cleaned up.
    if tenant.spec.paused {
        return pause(&tenant, &api, &ctx).await;
    }
    finalizer(&api, FINALIZER, tenant, |event| async {
        match event {
            Finalizer::Apply(tenant) => provision(&tenant, &api, &ctx).await,
            Finalizer::Cleanup(tenant) => cleanup(&tenant, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Requeue after a failure with per-tenant exponential backoff.
pub fn error_policy(tenant: Arc<MemoryTenant>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failure(TENANT_KIND, error.metric_label());
    let delay = ctx.backoff.next_delay(&backoff_key(&tenant));
    tracing::warn!(tenant = %tenant.name_any(), %error, ?delay, "reconcile failed");
    Action::requeue(delay)
}

fn backoff_key(tenant: &MemoryTenant) -> String {
    format!("{TENANT_KIND}/{}", tenant.name_any())
}

async fn pause(tenant: &MemoryTenant, api: &Api<MemoryTenant>, ctx: &Context) -> Result<Action> {
    let previous = tenant.status.as_ref();
    let new = status::paused_status(previous, tenant.meta().generation, Timestamp::now());
    write_status(tenant, api, ctx, previous, &new, &Happenings::default()).await?;
    Ok(Action::await_change())
}

/// Ready False with reason InvalidSpec; nothing is applied or provisioned.
async fn refuse(
    tenant: &MemoryTenant,
    api: &Api<MemoryTenant>,
    ctx: &Context,
    reason: &str,
) -> Result<Action> {
    let previous = tenant.status.as_ref();
    let message = format!("{reason}; fix the spec and the operator will continue");
    let new = status::invalid_status(
        previous,
        &message,
        tenant.meta().generation,
        Timestamp::now(),
    );
    write_status(tenant, api, ctx, previous, &new, &Happenings::default()).await?;
    ctx.metrics.failure(TENANT_KIND, "invalid_spec");
    // Retrying cannot help; a spec change triggers the next reconcile.
    Ok(Action::await_change())
}

/// The Apply branch: every step runs, each reporting its part; the status says which failed.
async fn provision(
    tenant: &MemoryTenant,
    api: &Api<MemoryTenant>,
    ctx: &Context,
) -> Result<Action> {
    let previous = tenant.status.as_ref();
    let plan = match TenantPlan::for_tenant(tenant, &ctx.settings) {
        Ok(plan) => plan,
        Err(error) => return refuse(tenant, api, ctx, &error.to_string()).await,
    };
    // What belongs to another tenant or to the installation is refused before anything is
    // applied anywhere.
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let existing_namespace = namespaces.get_opt(&plan.namespace).await?;
    if let Some(conflict) = namespace_conflict(&plan, existing_namespace.as_ref()) {
        return refuse(tenant, api, ctx, &conflict).await;
    }
    match ctx.provisioner.check_claims(&plan).await {
        Ok(()) => {}
        Err(ProvisionError::Conflict(conflict)) => {
            return refuse(tenant, api, ctx, &conflict).await;
        }
        Err(error) => return Err(error.into()),
    }

    apply_namespace(&plan, ctx, existing_namespace.as_ref()).await?;
    apply(&ctx.client, &desired::service_account(&plan)).await?;
    apply(&ctx.client, &desired::resource_quota(&plan)).await?;
    apply(&ctx.client, &desired::network_policy(&plan, &ctx.settings)).await?;
    apply(&ctx.client, &desired::admin_role(&plan)).await?;
    apply(&ctx.client, &desired::admin_role_binding(&plan)).await?;
    let uid = &plan.owner_reference.uid;
    let mut orphans_removed = Vec::new();
    if ctx.swept.is_due(uid) {
        orphans_removed = orphans::sweep(&ctx.client, &plan).await?;
        ctx.swept.done(uid);
    }

    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &plan.namespace);
    let existing = secrets.get_opt(&plan.credentials_secret).await?;
    let found = FoundCredentials::read(existing.as_ref(), &plan.role);

    let mut happenings = Happenings {
        repairs: orphans_removed,
        ..Happenings::default()
    };
    let mut failure: Option<Error> = None;
    let was_provisioned =
        previous.is_some_and(|s| s.phase.is_some() && s.phase != Some(Phase::Pending));

    let (database, registration) = match ctx
        .provisioner
        .provision(
            &plan,
            &found.password,
            found.password_current,
            found.api_key.as_deref(),
        )
        .await
    {
        Ok((report, registration)) => {
            if was_provisioned {
                happenings.repairs.extend(database_repairs(&report, &plan));
            }
            happenings.key_replaced = report.key_issued && was_provisioned;
            (
                PartState::ready(
                    DATABASE_READY,
                    "Provisioned",
                    format!(
                        "schema {} owned by role {}, used by login {}",
                        plan.schema, plan.owner_role, plan.role
                    ),
                ),
                Some(registration),
            )
        }
        Err(error) => {
            let part = PartState::failed(
                DATABASE_READY,
                "DatabaseFailed",
                format!("{error}; check the database and the operator's database role"),
            );
            failure = Some(error.into());
            (part, None)
        }
    };

    let collection = CollectionPlan {
        collection: plan.collection.clone(),
        tenant: plan.tenant.to_string(),
        isolation: plan.isolation,
        vectors: plan.vectors,
    };
    let vector_store = match ctx.provisioner.ensure_collection(&collection).await {
        Ok(report) => {
            if was_provisioned && report.created {
                happenings
                    .repairs
                    .push(format!("collection {}", plan.collection));
            }
            PartState::ready(
                VECTOR_STORE_READY,
                "Provisioned",
                format!("collection {} indexed and loaded", plan.collection),
            )
        }
        Err(error) => {
            let part = PartState::failed(
                VECTOR_STORE_READY,
                "VectorStoreFailed",
                format!("{error}; check that Milvus is reachable"),
            );
            failure.get_or_insert(error.into());
            part
        }
    };

    let (credentials, platform) = match registration {
        Some(registration) => {
            let credentials = Credentials {
                password: found.password.clone(),
                api_key: registration.api_key.clone(),
            };
            apply_credentials(&plan, ctx, &credentials).await?;
            let platform = apply_platform(&plan, ctx, &credentials, &registration).await?;
            (
                PartState::ready(
                    CREDENTIALS_READY,
                    "Written",
                    format!("Secret {}/{}", plan.namespace, plan.credentials_secret),
                ),
                platform,
            )
        }
        None => (
            PartState::not_ready(
                CREDENTIALS_READY,
                "WaitingForDatabase",
                "written once the database is provisioned",
            ),
            PartState::not_ready(
                PLATFORM_READY,
                "WaitingForDatabase",
                "configured once the database is provisioned",
            ),
        ),
    };

    let parts = [database, vector_store, credentials, platform];
    let new = status::tenant_status(
        previous,
        &plan,
        &parts,
        tenant.meta().generation,
        Timestamp::now(),
    );
    write_status(tenant, api, ctx, previous, &new, &happenings).await?;
    if let Some(error) = failure {
        return Err(error);
    }
    ctx.backoff.reset(&backoff_key(tenant));
    Ok(Action::requeue(if new.phase == Some(Phase::Ready) {
        READY_RESYNC
    } else {
        PROVISIONING_RESYNC
    }))
}

/// Creates the namespace with an owner reference, or adopts an existing one without it.
/// Why an existing namespace cannot be the tenant's: one is adopted only when it carries this
/// tenant's label (the operator made it, or an administrator prepared it for the tenant).
fn namespace_conflict(plan: &TenantPlan, existing: Option<&Namespace>) -> Option<String> {
    let existing = existing?;
    let labelled = existing
        .labels()
        .get(memoryc_crds::contract::labels::TENANT)
        .map(String::as_str);
    if labelled == Some(plan.tenant.as_str()) {
        return None;
    }
    Some(match labelled {
        Some(other) => format!(
            "namespace {} belongs to tenant {other}; choose another spec.namespace",
            plan.namespace
        ),
        None => format!(
            "namespace {} exists and is not this tenant's (it has no {}={} label); choose \
             another spec.namespace, or label it for this tenant",
            plan.namespace,
            memoryc_crds::contract::labels::TENANT,
            plan.tenant
        ),
    })
}

async fn apply_namespace(
    plan: &TenantPlan,
    ctx: &Context,
    existing: Option<&Namespace>,
) -> Result<()> {
    let adopted = existing.is_some_and(|existing| {
        !existing
            .owner_references()
            .iter()
            .any(|owner| owner.uid == plan.owner_reference.uid)
    });
    apply_cluster(&ctx.client, &desired::namespace(plan, adopted)).await?;
    Ok(())
}

/// The password and key the Secret holds, if usable.
struct FoundCredentials {
    password: String,
    password_current: bool,
    api_key: Option<String>,
}

impl FoundCredentials {
    fn read(secret: Option<&Secret>, role: &str) -> Self {
        let value = |key: &str| {
            secret
                .and_then(|s| s.data.as_ref())
                .and_then(|data| data.get(key))
                .and_then(|bytes| String::from_utf8(bytes.0.clone()).ok())
        };
        let recorded_digest = secret
            .and_then(|s| s.metadata.annotations.as_ref())
            .and_then(|a| a.get(PASSWORD_DIGEST_ANNOTATION))
            .cloned();
        match value(secret_keys::PASSWORD).filter(|p| password::is_usable(p)) {
            Some(existing) => Self {
                password_current: recorded_digest.as_deref()
                    == Some(password::digest(role, &existing).as_str()),
                password: existing,
                api_key: value(secret_keys::API_KEY),
            },
            None => Self {
                password: password::generate(),
                password_current: false,
                api_key: value(secret_keys::API_KEY),
            },
        }
    }
}

async fn apply_credentials(
    plan: &TenantPlan,
    ctx: &Context,
    credentials: &Credentials,
) -> Result<()> {
    let mut secret = desired::credentials_secret(plan, &ctx.settings, credentials);
    secret.metadata.annotations = Some(
        [(
            PASSWORD_DIGEST_ANNOTATION.to_string(),
            password::digest(&plan.role, &credentials.password),
        )]
        .into(),
    );
    apply(&ctx.client, &secret).await?;
    Ok(())
}

/// The dedicated platform's objects; for a shared tenant the registration is all it takes.
async fn apply_platform(
    plan: &TenantPlan,
    ctx: &Context,
    credentials: &Credentials,
    registration: &Registration,
) -> Result<PartState> {
    if !plan.is_dedicated() {
        return Ok(PartState::ready(
            PLATFORM_READY,
            "Registered",
            format!(
                "registered as {} with the shared platform at {}",
                registration.tenant_id, plan.api_endpoint
            ),
        ));
    }
    let hash = desired::credentials_hash(credentials);
    let deployment = apply(
        &ctx.client,
        &desired::platform_deployment(plan, &ctx.settings, &hash),
    )
    .await?;
    apply(&ctx.client, &desired::platform_service(plan)).await?;
    apply(&ctx.client, &desired::platform_disruption_budget(plan)).await?;
    let available = deployment
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    Ok(if available > 0 {
        PartState::ready(
            PLATFORM_READY,
            "Available",
            format!(
                "{available}/{} platform replicas available",
                plan.platform_replicas
            ),
        )
    } else {
        PartState::not_ready(
            PLATFORM_READY,
            "Starting",
            format!(
                "waiting for Deployment {}/{}: 0/{} replicas available",
                plan.namespace, plan.platform_name, plan.platform_replicas
            ),
        )
    })
}

fn database_repairs(report: &DatabaseReport, plan: &TenantPlan) -> Vec<String> {
    let mut repairs: Vec<String> = report
        .schemas_created
        .iter()
        .map(|schema| format!("schema {schema}"))
        .collect();
    if report.role_created {
        repairs.push(format!("role {}", plan.role));
    }
    if report.role_repaired {
        repairs.push(format!("attributes of role {}", plan.role));
    }
    if report.ownership_repaired {
        repairs.push(format!(
            "ownership of schema {} (moved from login role {} to {})",
            plan.schema, plan.role, plan.owner_role
        ));
    }
    if report.tenant_registered {
        repairs.push("platform registration".to_string());
    }
    if report.settings_applied {
        repairs.push("platform settings (PII policy, rate limit, analytics schedule)".to_string());
    }
    repairs
}

/// Writes the status (server-side apply on the status subresource) when it changed, and
/// publishes an event for each state change.
async fn write_status(
    tenant: &MemoryTenant,
    api: &Api<MemoryTenant>,
    ctx: &Context,
    previous: Option<&MemoryTenantStatus>,
    new: &MemoryTenantStatus,
    happenings: &Happenings,
) -> Result<()> {
    let name = tenant.name_any();
    if status::status_changed(previous, new) {
        let patch = json!({
            "apiVersion": "memoryc.dev/v1alpha1",
            "kind": "MemoryTenant",
            "status": new,
        });
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    }
    ctx.metrics
        .tenant_phase(&name, new.phase.map(Phase::as_str));
    for event in status::tenant_events(previous, new, happenings) {
        publish(ctx, tenant, &event).await;
    }
    Ok(())
}

/// Events are informational: failing to publish one must not fail the reconcile.
async fn publish(ctx: &Context, tenant: &MemoryTenant, event: &Event) {
    if let Err(error) = ctx.recorder.publish(event, &tenant.object_ref(&())).await {
        tracing::warn!(tenant = %tenant.name_any(), %error, "cannot publish event");
    }
}

/// The Cleanup branch: `Retain` closes access and keeps the data, `Delete` erases it. The
/// namespaced objects go with the tenant through their owner references.
async fn cleanup(tenant: &MemoryTenant, ctx: &Context) -> Result<Action> {
    let name = tenant.name_any();
    let plan = match TenantPlan::for_cleanup(tenant, &ctx.settings) {
        Ok(plan) => plan,
        // A spec that never validated was never provisioned: nothing to clean up.
        Err(_) => {
            ctx.metrics.tenant_phase(&name, None);
            return Ok(Action::await_change());
        }
    };
    ctx.swept.forget(&plan.owner_reference.uid);
    let note = match tenant.spec.deletion_policy {
        DeletionPolicy::Retain => {
            ctx.provisioner.retain(&plan).await?;
            format!(
                "deletionPolicy Retain: kept schema {} and collection {}; disabled role {} and the operator's API keys",
                plan.schema, plan.collection, plan.role
            )
        }
        DeletionPolicy::Delete => {
            let collection = CollectionPlan {
                collection: plan.collection.clone(),
                tenant: plan.tenant.to_string(),
                isolation: plan.isolation,
                vectors: plan.vectors,
            };
            ctx.provisioner.erase(&plan, &collection).await?;
            format!(
                "deletionPolicy Delete: dropped schema {}, role {} and the tenant's vectors in {}",
                plan.schema, plan.role, plan.collection
            )
        }
    };
    let reason = match tenant.spec.deletion_policy {
        DeletionPolicy::Retain => "Retained",
        DeletionPolicy::Delete => "Erased",
    };
    publish(
        ctx,
        tenant,
        &status::event(EventType::Normal, reason, "Cleanup", note),
    )
    .await;
    ctx.metrics.tenant_phase(&name, None);
    ctx.backoff.reset(&backoff_key(tenant));
    Ok(Action::await_change())
}
