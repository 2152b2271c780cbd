//! Leader election on a coordination.k8s.io Lease, so only one operator replica acts at a time.
//!
//! The holder renews the Lease every third of its duration; another replica takes it over only
//! once it has gone unrenewed for the whole duration. Every write carries the resourceVersion it
//! read, so two replicas racing for an expired Lease cannot both win.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;

/// Competes for one Lease under one identity.
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

impl LeaderElector {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
        }
    }

    /// One round: acquire the Lease if it is free or expired, renew it if held. Returns whether
    /// this replica holds it afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let Some(existing) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(error) if is_conflict(&error) => Ok(false),
                Err(error) => Err(error),
            };
        };
        let spec = existing.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref();
        let transitions = spec.lease_transitions.unwrap_or(0);
        let new_spec = if holder == Some(self.identity.as_str()) {
            let acquired = spec.acquire_time.map(|t| t.0).unwrap_or(now);
            self.spec(acquired, now, transitions)
        } else if holder.is_none() || self.expired(&spec, now) {
            self.spec(now, now, transitions.saturating_add(1))
        } else {
            return Ok(false);
        };
        let lease = Lease {
            metadata: existing.metadata.clone(),
            spec: Some(new_spec),
        };
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if is_conflict(&error) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Gives the Lease up (at shutdown), so a standby takes over without waiting for expiry.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if is_conflict(&error) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Keeps competing until `stop` fires, publishing leadership on `leading`. A leader that
    /// cannot renew for a whole Lease duration reports that it no longer leads.
    pub async fn run(&self, leading: watch::Sender<bool>, mut stop: watch::Receiver<bool>) {
        let interval = self.duration / 3;
        let mut last_renewal: Option<tokio::time::Instant> = None;
        loop {
            let held = match self.try_acquire_or_renew().await {
                Ok(held) => held,
                Err(error) => {
                    tracing::warn!(%error, lease = %self.name, "leader election round failed");
                    last_renewal.is_some_and(|at| at.elapsed() < self.duration)
                }
            };
            if held {
                last_renewal = Some(tokio::time::Instant::now());
            }
            if *leading.borrow() != held {
                tracing::info!(identity = %self.identity, leading = held, "leadership changed");
            }
            leading.send_replace(held);
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }

    fn spec(&self, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    fn expired(&self, spec: &LeaseSpec, now: Timestamp) -> bool {
        let Some(renewed) = spec.renew_time.as_ref().map(|t| t.0) else {
            return true;
        };
        let seconds = spec
            .lease_duration_seconds
            .map(i64::from)
            .unwrap_or(self.duration.as_secs() as i64);
        renewed
            .checked_add(SignedDuration::from_secs(seconds))
            .map(|expiry| expiry < now)
            .unwrap_or(true)
    }
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

#[cfg(test)]
mod tests {
    use http::{Method, StatusCode};
    use serde_json::json;

    use super::*;
    use crate::fixtures::MockApiServer;

    const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/memoryc-system/leases";

    fn elector() -> (LeaderElector, MockApiServer) {
        let (client, server) = MockApiServer::client();
        let elector = LeaderElector::new(
            client,
            "memoryc-system",
            "memoryc-operator",
            "pod-a",
            Duration::from_secs(15),
        );
        (elector, server)
    }

    fn lease(holder: &str, renewed: Timestamp) -> serde_json::Value {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "memoryc-operator", "namespace": "memoryc-system", "resourceVersion": "7"},
               "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                        "renewTime": MicroTime(renewed), "acquireTime": MicroTime(renewed), "leaseTransitions": 3}})
    }

    #[tokio::test]
    async fn a_missing_lease_is_created_and_held() {
        let (elector, mut server) = elector();
        let round = tokio::spawn(async move { elector.try_acquire_or_renew().await });
        server
            .expect_get_missing(&format!("{LEASES}/memoryc-operator"))
            .await;
        let create = server
            .expect(Method::POST, LEASES, StatusCode::CREATED, |c| {
                c.body.clone()
            })
            .await;
        assert_eq!(create.body["spec"]["holderIdentity"], "pod-a");
        assert_eq!(create.body["spec"]["leaseDurationSeconds"], 15);
        assert!(round.await.expect("join").expect("round"));
    }

    #[tokio::test]
    async fn a_fresh_lease_of_another_replica_is_left_alone() {
        let (elector, mut server) = elector();
        let round = tokio::spawn(async move { elector.try_acquire_or_renew().await });
        server
            .expect_get(
                &format!("{LEASES}/memoryc-operator"),
                lease("pod-b", Timestamp::now()),
            )
            .await;
        assert!(!round.await.expect("join").expect("round"));
        server.expect_silence().await;
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_with_its_resource_version() {
        let (elector, mut server) = elector();
        let round = tokio::spawn(async move { elector.try_acquire_or_renew().await });
        let stale = Timestamp::now() - SignedDuration::from_secs(60);
        server
            .expect_get(&format!("{LEASES}/memoryc-operator"), lease("pod-b", stale))
            .await;
        let replace = server
            .expect(
                Method::PUT,
                &format!("{LEASES}/memoryc-operator"),
                StatusCode::OK,
                |c| c.body.clone(),
            )
            .await;
        assert_eq!(replace.body["metadata"]["resourceVersion"], "7");
        assert_eq!(replace.body["spec"]["holderIdentity"], "pod-a");
        assert_eq!(replace.body["spec"]["leaseTransitions"], 4);
        assert!(round.await.expect("join").expect("round"));
    }

    #[tokio::test]
    async fn losing_the_race_for_a_lease_is_not_an_error() {
        let (elector, mut server) = elector();
        let round = tokio::spawn(async move { elector.try_acquire_or_renew().await });
        let stale = Timestamp::now() - SignedDuration::from_secs(60);
        server
            .expect_get(&format!("{LEASES}/memoryc-operator"), lease("pod-b", stale))
            .await;
        server
            .expect(Method::PUT, &format!("{LEASES}/memoryc-operator"), StatusCode::CONFLICT, |_| {
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": "the object has been modified", "reason": "Conflict", "code": 409})
            })
            .await;
        assert!(!round.await.expect("join").expect("round"));
    }
}
