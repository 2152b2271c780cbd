//! The MemoryTenant's status and the events announcing its changes, as pure functions of what
//! the reconcile observed.

use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::{Event, EventType};
use memoryc_crds::resources::status::condition_types::{READY, RECONCILIATION_PAUSED};
use memoryc_crds::resources::{MemoryTenantStatus, Phase};

use super::plan::TenantPlan;
use crate::conditions::{PartState, compute_conditions, merge_conditions, same_conditions};

/// The status after a reconcile that observed `parts` (DatabaseReady, VectorStoreReady,
/// CredentialsReady, PlatformReady).
pub fn tenant_status(
    previous: Option<&MemoryTenantStatus>,
    plan: &TenantPlan,
    parts: &[PartState],
    generation: Option<i64>,
    now: Timestamp,
) -> MemoryTenantStatus {
    let phase = if parts.iter().all(|p| p.ready) {
        Phase::Ready
    } else if parts.iter().any(|p| p.failed) {
        Phase::Failed
    } else {
        Phase::Provisioning
    };
    let when_ready = format!(
        "schema {}, collection {}, API at {}",
        plan.schema, plan.collection, plan.api_endpoint
    );
    MemoryTenantStatus {
        observed_generation: generation,
        phase: Some(phase),
        conditions: compute_conditions(
            previous
                .map(|s| s.conditions.as_slice())
                .unwrap_or_default(),
            parts,
            ("Provisioned", when_ready),
            generation,
            now,
        ),
        namespace: Some(plan.namespace.clone()),
        schema: Some(plan.schema.clone()),
        collection: Some(plan.collection.clone()),
        credentials_secret: Some(plan.credentials_secret.clone()),
        api_endpoint: Some(plan.api_endpoint.clone()),
    }
}

/// The status of a tenant whose spec cannot be acted on.
pub fn invalid_status(
    previous: Option<&MemoryTenantStatus>,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> MemoryTenantStatus {
    MemoryTenantStatus {
        observed_generation: generation,
        phase: Some(Phase::Failed),
        conditions: merge_conditions(
            previous
                .map(|s| s.conditions.as_slice())
                .unwrap_or_default(),
            &[PartState::failed(READY, "InvalidSpec", message)],
            generation,
            now,
        ),
        ..previous.cloned().unwrap_or_default()
    }
}

/// The status of a paused tenant: the facts stay, a condition says nothing is being changed.
pub fn paused_status(
    previous: Option<&MemoryTenantStatus>,
    generation: Option<i64>,
    now: Timestamp,
) -> MemoryTenantStatus {
    let previous_conditions = previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let mut parts: Vec<PartState> = previous_conditions
        .iter()
        .filter(|c| c.type_ != RECONCILIATION_PAUSED)
        .filter_map(|c| {
            let type_ = known_type(&c.type_)?;
            Some(PartState {
                type_,
                ready: c.status == "True",
                failed: false,
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
        })
        .collect();
    parts.push(PartState::ready(
        RECONCILIATION_PAUSED,
        "Paused",
        "spec.paused is true: the operator changes nothing until it is cleared",
    ));
    MemoryTenantStatus {
        observed_generation: generation,
        phase: Some(Phase::Paused),
        conditions: merge_conditions(previous_conditions, &parts, generation, now),
        ..previous.cloned().unwrap_or_default()
    }
}

fn known_type(type_: &str) -> Option<&'static str> {
    use memoryc_crds::resources::status::condition_types::*;
    [
        READY,
        DATABASE_READY,
        VECTOR_STORE_READY,
        CREDENTIALS_READY,
        PLATFORM_READY,
    ]
    .into_iter()
    .find(|known| *known == type_)
}

/// Whether writing `new` would change what `old` says (timestamps aside).
pub fn status_changed(old: Option<&MemoryTenantStatus>, new: &MemoryTenantStatus) -> bool {
    let Some(old) = old else {
        return true;
    };
    old.observed_generation != new.observed_generation
        || old.phase != new.phase
        || old.namespace != new.namespace
        || old.schema != new.schema
        || old.collection != new.collection
        || old.credentials_secret != new.credentials_secret
        || old.api_endpoint != new.api_endpoint
        || !same_conditions(&old.conditions, &new.conditions)
}

/// What else happened in a reconcile, beyond the status.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Happenings {
    /// Parts of an already-provisioned tenant that had to be re-created or corrected.
    pub repairs: Vec<String>,
    /// A new admin API key was issued although the tenant had credentials before.
    pub key_replaced: bool,
}

/// Events for the changes between `old` and `new`, one per state change.
pub fn tenant_events(
    old: Option<&MemoryTenantStatus>,
    new: &MemoryTenantStatus,
    happenings: &Happenings,
) -> Vec<Event> {
    let mut events = Vec::new();
    let old_phase = old.and_then(|s| s.phase);
    let ready_message = |status: &MemoryTenantStatus| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == READY)
            .map(|c| c.message.clone())
            .unwrap_or_default()
    };
    if !happenings.repairs.is_empty() && old_phase.is_some() {
        events.push(event(
            EventType::Warning,
            "DriftRepaired",
            "Repair",
            format!("re-created or corrected: {}", happenings.repairs.join(", ")),
        ));
    }
    if happenings.key_replaced {
        events.push(event(
            EventType::Normal,
            "ApiKeyIssued",
            "IssueKey",
            "the admin API key in the credentials Secret was missing or invalid; a new one was issued".into(),
        ));
    }
    let message = ready_message(new);
    let changed = old_phase != new.phase
        || (old.map(ready_message) != Some(message.clone()) && new.phase == Some(Phase::Failed));
    if changed {
        match new.phase {
            Some(Phase::Ready) => {
                events.push(event(EventType::Normal, "Ready", "Provision", message))
            }
            Some(Phase::Failed) => events.push(event(
                EventType::Warning,
                "ProvisioningFailed",
                "Provision",
                message,
            )),
            Some(Phase::Provisioning) => events.push(event(
                EventType::Normal,
                "Provisioning",
                "Provision",
                message,
            )),
            Some(Phase::Paused) => events.push(event(
                EventType::Normal,
                "Paused",
                "Pause",
                "spec.paused is true: reconciliation stopped".into(),
            )),
            _ => {}
        }
    }
    events
}

pub fn event(type_: EventType, reason: &str, action: &str, note: String) -> Event {
    Event {
        type_,
        reason: reason.to_string(),
        // The events API caps a note at 1 kB.
        note: Some(note.chars().take(1000).collect()),
        action: action.to_string(),
        secondary: None,
    }
}

#[cfg(test)]
mod tests {
    use memoryc_crds::layout::Isolation;
    use memoryc_crds::resources::status::condition_types::*;

    use super::*;
    use crate::settings::Settings;
    use crate::test_support::tenant;

    fn plan() -> TenantPlan {
        TenantPlan::for_tenant(&tenant("acme", Isolation::Shared), &Settings::local())
            .expect("plan")
    }

    fn all_ready() -> Vec<PartState> {
        [
            DATABASE_READY,
            VECTOR_STORE_READY,
            CREDENTIALS_READY,
            PLATFORM_READY,
        ]
        .into_iter()
        .map(|t| PartState::ready(t, "Provisioned", "ok"))
        .collect()
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).expect("ts")
    }

    #[test]
    fn ready_when_every_part_is_and_failed_names_the_failing_part() {
        let ready = tenant_status(None, &plan(), &all_ready(), Some(1), at(1));
        assert_eq!(ready.phase, Some(Phase::Ready));
        assert_eq!(ready.conditions[0].type_, READY);
        assert_eq!(ready.conditions[0].status, "True");
        assert_eq!(ready.conditions.len(), 5);
        assert_eq!(ready.schema.as_deref(), Some("tenant_acme"));

        let mut parts = all_ready();
        parts[1] = PartState::failed(
            VECTOR_STORE_READY,
            "VectorStoreFailed",
            "Milvus: refused; check it",
        );
        let failed = tenant_status(Some(&ready), &plan(), &parts, Some(1), at(2));
        assert_eq!(failed.phase, Some(Phase::Failed));
        assert_eq!(failed.conditions[0].reason, "VectorStoreFailed");
        assert_eq!(failed.conditions[0].message, "Milvus: refused; check it");
        assert_eq!(
            failed.conditions[1].last_transition_time,
            ready.conditions[1].last_transition_time
        );

        parts[1] = PartState::not_ready(VECTOR_STORE_READY, "Loading", "loading");
        let provisioning = tenant_status(Some(&failed), &plan(), &parts, Some(1), at(3));
        assert_eq!(provisioning.phase, Some(Phase::Provisioning));
    }

    #[test]
    fn an_unchanged_reconcile_writes_nothing_and_says_nothing() {
        let first = tenant_status(None, &plan(), &all_ready(), Some(1), at(1));
        let second = tenant_status(Some(&first), &plan(), &all_ready(), Some(1), at(50));
        assert!(!status_changed(Some(&first), &second));
        assert!(tenant_events(Some(&first), &second, &Happenings::default()).is_empty());
        assert!(status_changed(None, &second));
    }

    #[test]
    fn events_follow_state_changes() {
        let ready = tenant_status(None, &plan(), &all_ready(), Some(1), at(1));
        let events = tenant_events(None, &ready, &Happenings::default());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason, "Ready");
        let repaired = tenant_events(
            Some(&ready),
            &ready,
            &Happenings {
                repairs: vec!["schema tenant_acme".into()],
                key_replaced: true,
            },
        );
        let reasons: Vec<&str> = repaired.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["DriftRepaired", "ApiKeyIssued"]);
        assert_eq!(repaired[0].type_, EventType::Warning);
    }

    #[test]
    fn pausing_keeps_the_facts_and_adds_a_condition() {
        let ready = tenant_status(None, &plan(), &all_ready(), Some(1), at(1));
        let paused = paused_status(Some(&ready), Some(2), at(5));
        assert_eq!(paused.phase, Some(Phase::Paused));
        assert_eq!(paused.schema, ready.schema);
        let last = paused.conditions.last().expect("condition");
        assert_eq!(last.type_, RECONCILIATION_PAUSED);
        assert_eq!(
            paused.conditions[0].last_transition_time,
            ready.conditions[0].last_transition_time
        );
        assert!(!status_changed(
            Some(&paused),
            &paused_status(Some(&paused), Some(2), at(9))
        ));
    }
}
