//! A mocked Kubernetes API server for reconcile scenarios (kube-rs's `tower_test` pattern):
//! each expectation asserts the method, path and body of the next call the reconciler makes and
//! answers it; a call that never comes fails the scenario on a timeout.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

use crate::context::Context;
use crate::provision::Provisioner;
use crate::settings::Settings;
use crate::telemetry::metrics::Metrics;

/// Longest a scenario waits for the reconciler's next call; provisioning a collection in a
/// real Milvus takes a few seconds.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// One request the reconciler made.
#[derive(Debug)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub body: Value,
}

pub struct MockApiServer {
    handle: Handle<Request<Body>, Response<Body>>,
    /// The reconcile under test; if it ends while a call is awaited, its result is the failure.
    reconcile:
        Option<tokio::task::JoinHandle<crate::error::Result<kube::runtime::controller::Action>>>,
}

/// A context whose Kubernetes client talks to the mock, provisioning with `provisioner` (the
/// real servers or the in-memory stand-in).
pub fn context(
    settings: Settings,
    provisioner: Arc<dyn Provisioner>,
) -> (Arc<Context>, MockApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let ctx = Context::new(
        client,
        settings,
        provisioner,
        Arc::new(Metrics::default()),
        None,
    );
    (
        Arc::new(ctx),
        MockApiServer {
            handle,
            reconcile: None,
        },
    )
}

impl MockApiServer {
    /// A Kubernetes client talking to a new mock.
    pub fn client() -> (Client, MockApiServer) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        (
            Client::new(service, "default"),
            MockApiServer {
                handle,
                reconcile: None,
            },
        )
    }

    /// Watches a running reconcile (see `reconcile`).
    pub fn watch(
        &mut self,
        reconcile: tokio::task::JoinHandle<crate::error::Result<kube::runtime::controller::Action>>,
    ) {
        self.reconcile = Some(reconcile);
    }

    /// The watched reconcile's result, once it ends.
    pub async fn finished(&mut self) -> crate::error::Result<kube::runtime::controller::Action> {
        let task = self.reconcile.take().expect("a reconcile is watched");
        let result = tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("reconcile finished")
            .expect("reconcile did not panic");
        self.expect_silence().await;
        result
    }

    /// The next call, whatever it is.
    pub async fn next(&mut self) -> (Call, SendResponse<Response<Body>>) {
        let next = tokio::time::timeout(CALL_TIMEOUT, self.handle.next_request());
        let (request, send) = match self.reconcile.as_mut() {
            Some(task) => tokio::select! {
                next = next => next,
                ended = task => panic!("the reconcile ended instead of making the next call: {ended:?}"),
            },
            None => next.await,
        }
        .expect("the reconciler made no further call in time")
        .expect("the client was dropped");
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = request.into_body().collect_bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        (
            Call {
                method,
                path,
                query,
                content_type,
                body,
            },
            send,
        )
    }

    /// The next call must be `method path`; it is answered with `status` and `response`.
    pub async fn expect(
        &mut self,
        method: Method,
        path: &str,
        status: StatusCode,
        response: impl FnOnce(&Call) -> Value,
    ) -> Call {
        let (call, send) = self.next().await;
        assert_eq!(
            (&call.method, call.path.as_str()),
            (&method, path),
            "unexpected call {} {}?{} {}",
            call.method,
            call.path,
            call.query,
            call.body
        );
        let body = response(&call);
        send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&body).expect("encode")))
                .expect("response"),
        );
        call
    }

    /// A GET answered with `object`.
    pub async fn expect_get(&mut self, path: &str, object: Value) -> Call {
        self.expect(Method::GET, path, StatusCode::OK, |_| object)
            .await
    }

    /// A GET answered with 404.
    pub async fn expect_get_missing(&mut self, path: &str) -> Call {
        self.expect(Method::GET, path, StatusCode::NOT_FOUND, |_| not_found())
            .await
    }

    /// A server-side apply under the operator's field manager, answered with the applied object
    /// merged with `server_fields` (e.g. a status the server would report).
    pub async fn expect_apply(&mut self, path: &str, server_fields: Value) -> Value {
        let call = self
            .expect(Method::PATCH, path, StatusCode::OK, |call| {
                merge(call.body.clone(), &server_fields)
            })
            .await;
        assert_eq!(call.content_type, "application/apply-patch+yaml", "{path}");
        assert!(
            call.query.contains("fieldManager=memoryc-operator"),
            "{}",
            call.query
        );
        assert!(call.query.contains("force=true"), "{}", call.query);
        call.body
    }

    /// An event published in `namespace`; returns its body.
    pub async fn expect_event(&mut self, namespace: &str, reason: &str) -> Value {
        let path = format!("/apis/events.k8s.io/v1/namespaces/{namespace}/events");
        let call = self
            .expect(Method::POST, &path, StatusCode::CREATED, |call| {
                call.body.clone()
            })
            .await;
        assert_eq!(call.body["reason"], reason, "{}", call.body);
        call.body
    }

    /// No call arrives within a short while (after the reconcile returned).
    pub async fn expect_silence(&mut self) {
        let next =
            tokio::time::timeout(Duration::from_millis(200), self.handle.next_request()).await;
        if let Ok(Some((request, _))) = next {
            panic!("unexpected call {} {}", request.method(), request.uri());
        }
    }
}

pub fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": "not found", "reason": "NotFound", "code": 404})
}

/// `base` with the fields of `extra` added (one level deep is all the scenarios need).
fn merge(mut base: Value, extra: &Value) -> Value {
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            base.insert(key.clone(), value.clone());
        }
    }
    base
}
