//! Reconciling an IntegrationBinding: check its tenant, settings and Secret, record it (with
//! its credential) in the platform's control tables, report Registered/Ready and, for kinds the
//! platform acts on, Connected with the platform's counters. Missing pieces become conditions and a
//! later look, never a crash.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use memoryc_crds::resources::status::condition_types::{
    CONNECTED, RECONCILIATION_PAUSED, REGISTERED,
};
use memoryc_crds::resources::{
    IntegrationBinding, IntegrationBindingStatus, IntegrationKind, MemoryTenant, Phase,
};
use serde_json::json;

use super::validate::{check_binding, check_tenant};
use crate::apply::FIELD_MANAGER;
use crate::conditions::{PartState, compute_conditions, same_conditions};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::provision::integrations::IntegrationState;
use crate::telemetry::metrics::BINDING_KIND;
use crate::tenant::plan::TenantPlan;
use crate::tenant::status::event;

/// Finalizer that removes the platform's record of the integration.
pub const FINALIZER: &str = "memoryc.dev/integration";
/// How soon a binding waiting for its tenant or Secret is looked at again.
const WAITING_RESYNC: Duration = Duration::from_secs(30);
/// How often a registered binding has its `Connected` condition and counters refreshed from
/// the platform's record.
const OBSERVED_RESYNC: Duration = Duration::from_secs(60);

/// One reconcile of an IntegrationBinding, in a span that names it.
#[tracing::instrument(
    name = "reconcile",
    skip_all,
    fields(
        integrationbinding = %binding.name_any(),
        namespace = binding.metadata.namespace.as_deref().unwrap_or_default(),
        generation = binding.metadata.generation,
    )
)]
pub async fn reconcile(binding: Arc<IntegrationBinding>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile(BINDING_KIND);
    let namespace = binding.namespace().unwrap_or_default();
    let api: Api<IntegrationBinding> = Api::namespaced(ctx.client.clone(), &namespace);
    if binding.spec.paused {
        let parts = [PartState::ready(
            RECONCILIATION_PAUSED,
            "Paused",
            "spec.paused is true: the operator changes nothing until it is cleared",
        )];
        write_status(
            &binding,
            &api,
            &ctx,
            Phase::Paused,
            &parts,
            Observed::default(),
        )
        .await?;
        return Ok(Action::await_change());
    }
    finalizer(&api, FINALIZER, binding, |event| async {
        match event {
            Finalizer::Apply(binding) => register(&binding, &api, &ctx).await,
            Finalizer::Cleanup(binding) => unregister(&binding, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

pub fn error_policy(binding: Arc<IntegrationBinding>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failure(BINDING_KIND, error.metric_label());
    let key = format!(
        "{BINDING_KIND}/{}/{}",
        binding.namespace().unwrap_or_default(),
        binding.name_any()
    );
    let delay = ctx.backoff.next_delay(&key);
    tracing::warn!(binding = %binding.name_any(), %error, ?delay, "reconcile failed");
    Action::requeue(delay)
}

async fn register(
    binding: &IntegrationBinding,
    api: &Api<IntegrationBinding>,
    ctx: &Context,
) -> Result<Action> {
    let namespace = binding.namespace().unwrap_or_default();
    let tenants: Api<MemoryTenant> = Api::all(ctx.client.clone());
    let tenant = tenants.get_opt(&binding.spec.tenant_ref.name).await?;
    if let Err(problem) = check_tenant(binding, &namespace, tenant.as_ref()) {
        return waiting(binding, api, ctx, problem.reason, &problem.message).await;
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let secret = secrets.get_opt(&binding.spec.secret_ref.name).await?;
    let record = match check_binding(binding, secret.as_ref()) {
        Ok(record) => record,
        Err(problem) => return waiting(binding, api, ctx, problem.reason, &problem.message).await,
    };
    let Some(tenant) = tenant else {
        return Err(Error::Missing("tenant vanished".into()));
    };
    let plan = TenantPlan::for_tenant(&tenant, &ctx.settings)?;
    let registered = match ctx.provisioner.register_integration(&plan, &record).await {
        Ok(Some(registered)) => registered,
        Ok(None) => {
            let message = format!(
                "MemoryTenant {} is not registered with its platform yet",
                plan.tenant
            );
            return waiting(binding, api, ctx, "TenantNotRegistered", &message).await;
        }
        Err(error) => {
            let parts = [PartState::failed(
                REGISTERED,
                "RegistrationFailed",
                format!("{error}; retrying"),
            )];
            write_status(
                binding,
                api,
                ctx,
                Phase::Failed,
                &parts,
                Observed::default(),
            )
            .await?;
            return Err(error.into());
        }
    };
    let parts = [PartState::ready(
        REGISTERED,
        "InRegistry",
        format!(
            "{} integration registered for tenant {}",
            record.kind, plan.tenant
        ),
    )];
    // Every kind is acted on by the platform, which records how each fares.
    let observed = Observed {
        integration_id: Some(registered.id.to_string()),
        last_sync_time: registered
            .state
            .last_sync_at
            .and_then(|at| Timestamp::from_millisecond(at.timestamp_millis()).ok())
            .map(Time),
        items_synced: Some(registered.state.items_synced),
        connection: match binding.spec.kind {
            IntegrationKind::Webhook => Some(webhook_connection(&registered.state)),
            IntegrationKind::GitHubProjects => Some(github_connection(&registered.state)),
            IntegrationKind::LLMProvider => Some(llm_connection(&registered.state)),
        },
    };
    write_status(binding, api, ctx, Phase::Ready, &parts, observed).await?;
    ctx.backoff.reset(&format!(
        "{BINDING_KIND}/{namespace}/{}",
        binding.name_any()
    ));
    Ok(Action::requeue(OBSERVED_RESYNC))
}

/// Something the binding needs is not there yet: say what, and look again later.
async fn waiting(
    binding: &IntegrationBinding,
    api: &Api<IntegrationBinding>,
    ctx: &Context,
    reason: &str,
    message: &str,
) -> Result<Action> {
    let parts = [PartState::not_ready(REGISTERED, reason, message)];
    write_status(
        binding,
        api,
        ctx,
        Phase::Pending,
        &parts,
        Observed::default(),
    )
    .await?;
    Ok(Action::requeue(WAITING_RESYNC))
}

/// What the platform's record says of a registered binding.
#[derive(Debug, Default)]
struct Observed {
    integration_id: Option<String>,
    last_sync_time: Option<Time>,
    items_synced: Option<i64>,
    /// The `Connected` condition, for kinds the platform acts on.
    connection: Option<Connection>,
}

/// The `Connected` condition's status (`True`, `False`, `Unknown`), reason and message.
#[derive(Debug, Clone, PartialEq)]
struct Connection {
    status: &'static str,
    reason: &'static str,
    message: String,
}

/// A GitHub board is connected when its last sync read it (the token is valid and can read
/// the project); a sync paused by GitHub's rate limit still is, and says so.
fn github_connection(state: &IntegrationState) -> Connection {
    match (state.connected, &state.last_error) {
        (None, _) => Connection {
            status: "Unknown",
            reason: "NotSyncedYet",
            message: "the platform has not synchronised the board yet; its first sync will tell"
                .into(),
        },
        (Some(true), None) => Connection {
            status: "True",
            reason: "Synced",
            message: format!(
                "the last sync read the board; {} items are memories",
                state.items_synced
            ),
        },
        (Some(true), Some(note)) => Connection {
            status: "True",
            reason: "Synced",
            message: format!("the last sync read the board; {note}"),
        },
        (Some(false), error) => Connection {
            status: "False",
            reason: "SyncFailed",
            message: format!(
                "the last sync failed: {}; fix the token or project in the binding's Secret or spec, or POST /api/v1/integrations/{{name}}/sync to try again",
                error.as_deref().unwrap_or("no detail")
            ),
        },
    }
}

/// An LLM provider is connected when its last call or check (`GET /models`, every few
/// minutes) got an answer.
fn llm_connection(state: &IntegrationState) -> Connection {
    match (state.connected, &state.last_error) {
        (None, _) => Connection {
            status: "Unknown",
            reason: "NotCheckedYet",
            message: "the platform has not called the provider yet; its first check will tell"
                .into(),
        },
        (Some(true), _) => Connection {
            status: "True",
            reason: "Answers",
            message: "the provider answered the last call or check and serves the model".into(),
        },
        (Some(false), error) => Connection {
            status: "False",
            reason: "ProviderFailed",
            message: format!(
                "the last call or check failed: {}; check baseUrl, model and the Secret's api-key",
                error.as_deref().unwrap_or("no detail")
            ),
        },
    }
}

/// A webhook is connected when its last delivery got through.
fn webhook_connection(state: &IntegrationState) -> Connection {
    match (state.connected, &state.last_error) {
        (None, _) => Connection {
            status: "Unknown",
            reason: "NoDeliveryYet",
            message: "no event has been delivered yet; the first delivery will tell".into(),
        },
        (Some(true), _) => Connection {
            status: "True",
            reason: "Delivered",
            message: "the last delivery was accepted by the receiver".into(),
        },
        (Some(false), error) => Connection {
            status: "False",
            reason: "DeliveryFailed",
            message: format!(
                "the last delivery failed: {}; the platform retries, and its GET /api/v1/integrations/{{name}}/deliveries?status=failed lists what waits",
                error.as_deref().unwrap_or("no detail")
            ),
        },
    }
}

/// The `Connected` condition, keeping its transition time while its status holds.
fn connected_condition(
    previous: &[Condition],
    connection: &Connection,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == CONNECTED && c.status == connection.status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: CONNECTED.to_string(),
        status: connection.status.to_string(),
        reason: connection.reason.to_string(),
        message: connection.message.clone(),
        observed_generation: generation,
        last_transition_time,
    }
}

async fn write_status(
    binding: &IntegrationBinding,
    api: &Api<IntegrationBinding>,
    ctx: &Context,
    phase: Phase,
    parts: &[PartState],
    observed: Observed,
) -> Result<()> {
    let previous = binding.status.as_ref();
    let generation = binding.meta().generation;
    let when_ready = parts.first().map(|p| p.message.clone()).unwrap_or_default();
    let previous_conditions = previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let now = Timestamp::now();
    let mut conditions = compute_conditions(
        previous_conditions,
        parts,
        ("Registered", when_ready),
        generation,
        now,
    );
    if let Some(connection) = &observed.connection {
        conditions.push(connected_condition(
            previous_conditions,
            connection,
            generation,
            now,
        ));
    }
    // Waiting or failing, the last figures the platform recorded stay on show.
    let integration_id = observed
        .integration_id
        .or_else(|| previous.and_then(|s| s.integration_id.clone()));
    let last_sync_time = observed
        .last_sync_time
        .or_else(|| previous.and_then(|s| s.last_sync_time.clone()));
    let items_synced = observed
        .items_synced
        .or_else(|| previous.and_then(|s| s.items_synced));
    let unchanged = previous.is_some_and(|old| {
        old.phase == Some(phase)
            && old.observed_generation == generation
            && old.integration_id == integration_id
            && old.last_sync_time == last_sync_time
            && old.items_synced == items_synced
            && same_conditions(&old.conditions, &conditions)
    });
    if unchanged {
        return Ok(());
    }
    let status = IntegrationBindingStatus {
        observed_generation: generation,
        phase: Some(phase),
        conditions,
        integration_id,
        last_sync_time,
        items_synced,
    };
    let patch = json!({
        "apiVersion": "memoryc.dev/v1alpha1",
        "kind": "IntegrationBinding",
        "status": status,
    });
    api.patch_status(
        &binding.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    if previous.and_then(|s| s.phase) != Some(phase) {
        let (type_, reason) = match phase {
            Phase::Ready => (EventType::Normal, "Registered"),
            Phase::Failed => (EventType::Warning, "RegistrationFailed"),
            Phase::Paused => (EventType::Normal, "Paused"),
            _ => (EventType::Normal, "Waiting"),
        };
        let note = status
            .conditions
            .first()
            .map(|c| c.message.clone())
            .unwrap_or_default();
        if let Err(error) = ctx
            .recorder
            .publish(
                &event(type_, reason, "Register", note),
                &binding.object_ref(&()),
            )
            .await
        {
            tracing::warn!(%error, "cannot publish event");
        }
    }
    Ok(())
}

async fn unregister(binding: &IntegrationBinding, ctx: &Context) -> Result<Action> {
    let tenants: Api<MemoryTenant> = Api::all(ctx.client.clone());
    // Without its tenant the registration went with the tenant's cleanup.
    if let Some(tenant) = tenants.get_opt(&binding.spec.tenant_ref.name).await?
        && let Ok(plan) = TenantPlan::for_cleanup(&tenant, &ctx.settings)
    {
        ctx.provisioner
            .unregister_integration(&plan, &binding.name_any())
            .await?;
    }
    Ok(Action::await_change())
}
