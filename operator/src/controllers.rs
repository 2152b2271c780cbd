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

#[cfg(test)]
mod tests {
    //! The controllers as they run, against a stand-in API server that answers lists, holds
    //! watches open and streams one event: a change to a child reaches its tenant's reconcile.

    use std::convert::Infallible;
    use std::time::Duration;

    use futures::stream;
    use http::{Request, Response, StatusCode};
    use http_body_util::combinators::UnsyncBoxBody;
    use http_body_util::{BodyExt, Full, StreamBody};
    use hyper::body::{Bytes, Frame};
    use kube::Client;
    use kube::client::Body;
    use memoryc_crds::layout::Isolation;
    use serde_json::{Value, json};
    use tokio::sync::{Mutex, mpsc};

    use super::*;
    use crate::provision::in_memory::InMemoryProvisioner;
    use crate::settings::Settings;
    use crate::telemetry::metrics::Metrics;
    use crate::tenant::controller::FINALIZER;
    use crate::test_support;

    type Answer = Response<UnsyncBoxBody<Bytes, Infallible>>;

    fn answer(status: StatusCode, body: &Value) -> Answer {
        let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(bytes).boxed_unsync())
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed_unsync()))
    }

    /// A watch that stays open, streaming `lines` (one JSON watch event each) as they come.
    fn watch(lines: Option<mpsc::Receiver<Bytes>>) -> Answer {
        let events = match lines {
            Some(lines) => stream::unfold(lines, |mut lines| async move {
                let line = lines.recv().await?;
                Some((Ok::<_, Infallible>(Frame::data(line)), lines))
            })
            .chain(stream::pending())
            .boxed(),
            None => stream::pending().boxed(),
        };
        Response::new(StreamBody::new(events).boxed_unsync())
    }

    #[tokio::test]
    async fn a_change_to_a_child_reconciles_its_tenant() {
        let mut tenant = test_support::tenant(&test_support::unique_name(), Isolation::Shared);
        tenant.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
        // Paused: each reconcile writes the status and nothing else.
        tenant.spec.paused = true;
        let plan = test_support::plan(&tenant, &Settings::local());
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": plan.credentials_secret, "namespace": plan.namespace,
                         "resourceVersion": "2",
                         "labels": {labels::MANAGED_BY: labels::MANAGED_BY_VALUE},
                         "ownerReferences": [plan.owner_reference]}});
        let (events_to_send, events) = mpsc::channel::<Bytes>(1);
        let secret_events = std::sync::Arc::new(Mutex::new(Some(events)));
        let (reconciled_tx, mut reconciled) = mpsc::unbounded_channel::<()>();
        let tenant_json = serde_json::to_value(&tenant).unwrap_or_default();
        let service = tower::service_fn(move |request: Request<Body>| {
            let secret_events = secret_events.clone();
            let reconciled = reconciled_tx.clone();
            let tenant_json = tenant_json.clone();
            async move {
                let path = request.uri().path().to_string();
                let query = request.uri().query().unwrap_or_default().to_string();
                let is_watch = query.contains("watch=true");
                let response = if request.method() == http::Method::PATCH
                    && path.ends_with("/status")
                {
                    let _ = reconciled.send(());
                    answer(StatusCode::OK, &tenant_json)
                } else if request.method() == http::Method::POST {
                    answer(StatusCode::CREATED, &json!({}))
                } else if is_watch && path == "/api/v1/secrets" {
                    watch(secret_events.lock().await.take())
                } else if is_watch {
                    watch(None)
                } else if path.ends_with("/memorytenants") {
                    answer(
                        StatusCode::OK,
                        &json!({"apiVersion": "memoryc.dev/v1alpha1", "kind": "MemoryTenantList",
                                "metadata": {"resourceVersion": "1"}, "items": [tenant_json]}),
                    )
                } else {
                    answer(
                        StatusCode::OK,
                        &json!({"apiVersion": "v1", "kind": "List",
                                "metadata": {"resourceVersion": "1"}, "items": []}),
                    )
                };
                Ok::<_, Infallible>(response)
            }
        });
        let client = Client::new(service, "default");
        let ctx = Arc::new(Context::new(
            client,
            Settings::local(),
            Arc::new(InMemoryProvisioner::default()),
            Arc::new(Metrics::default()),
            None,
        ));
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(run(ctx, stopped));

        let within = Duration::from_secs(30);
        tokio::time::timeout(within, reconciled.recv())
            .await
            .expect("the listed tenant is reconciled")
            .expect("a status write");
        // The Secret is deleted behind the operator's back: its watch event names its owner.
        let deleted = format!("{}\n", json!({"type": "DELETED", "object": secret}));
        events_to_send
            .send(Bytes::from(deleted))
            .await
            .expect("the Secret watch is open");
        tokio::time::timeout(within, reconciled.recv())
            .await
            .expect("the child's deletion reconciles its tenant")
            .expect("a status write");

        let _ = stop.send(true);
        let _ = tokio::time::timeout(within, running).await;
    }
}
