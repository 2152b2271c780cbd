//! Runs both controllers until shutdown: MemoryTenant (watching every kind it applies,
//! `desired::APPLIED_KINDS`, by the operator's label so unrelated objects are never cached: a
//! child edited or deleted by someone else is put back at once) and IntegrationBinding.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, ResourceQuota, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::runtime::{Controller, watcher};
use memoryc_crds::contract::labels;
use memoryc_crds::resources::{IntegrationBinding, MemoryTenant};
use tokio::sync::watch;

use crate::context::Context;
use crate::{binding, tenant};

/// Runs until `stop` turns true, then lets in-flight reconciles finish.
pub async fn run(ctx: Arc<Context>, stop: watch::Receiver<bool>) {
    let client = ctx.client.clone();
    let managed = watcher::Config::default()
        .labels(&format!(
            "{}={}",
            labels::MANAGED_BY,
            labels::MANAGED_BY_VALUE
        ))
        .any_semantic();
    let shutdown = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let tenants = Controller::new(
        Api::<MemoryTenant>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .owns(Api::<Namespace>::all(client.clone()), managed.clone())
    .owns(Api::<ServiceAccount>::all(client.clone()), managed.clone())
    .owns(Api::<ResourceQuota>::all(client.clone()), managed.clone())
    .owns(Api::<NetworkPolicy>::all(client.clone()), managed.clone())
    .owns(Api::<Role>::all(client.clone()), managed.clone())
    .owns(Api::<RoleBinding>::all(client.clone()), managed.clone())
    .owns(Api::<Secret>::all(client.clone()), managed.clone())
    .owns(Api::<Deployment>::all(client.clone()), managed.clone())
    .owns(Api::<Service>::all(client.clone()), managed.clone())
    .owns(Api::<PodDisruptionBudget>::all(client.clone()), managed)
    .graceful_shutdown_on(shutdown(stop.clone()))
    .run(
        tenant::controller::reconcile,
        tenant::controller::error_policy,
        ctx.clone(),
    )
    .for_each(|result| async move {
        match result {
            Ok((object, _)) => tracing::debug!(tenant = %object.name, "reconciled"),
            Err(error) => tracing::debug!(%error, "tenant reconcile failed"),
        }
    });
    let bindings = Controller::new(
        Api::<IntegrationBinding>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .graceful_shutdown_on(shutdown(stop))
    .run(
        binding::controller::reconcile,
        binding::controller::error_policy,
        ctx,
    )
    .for_each(|result| async move {
        match result {
            Ok((object, _)) => tracing::debug!(binding = %object.name, "reconciled"),
            Err(error) => tracing::debug!(%error, "binding reconcile failed"),
        }
    });
    futures::join!(tenants, bindings);
}
