//! Status conditions: one function decides them, keeping `lastTransitionTime` when a condition's
//! status did not change, so watchers see transitions and not every reconcile.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use memoryc_crds::resources::status::condition_types::{READY, RECONCILIATION_PAUSED};

/// The state of one part of a resource, as a reconcile observed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartState {
    /// Condition type, e.g. `DatabaseReady`.
    pub type_: &'static str,
    pub ready: bool,
    /// Not ready because something went wrong (as opposed to still being created).
    pub failed: bool,
    /// One CamelCase word, e.g. `Provisioned`, `DatabaseUnavailable`.
    pub reason: String,
    /// What a user needs to know (and do), in words.
    pub message: String,
}

impl PartState {
    pub fn ready(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_,
            ready: true,
            failed: false,
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    /// Not ready yet, and nothing is wrong (e.g. pods still starting).
    pub fn not_ready(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_,
            ready: false,
            failed: false,
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    /// Not ready because a step failed; `message` says what to do about it.
    pub fn failed(type_: &'static str, reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_,
            ready: false,
            failed: true,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// The new condition list: `parts` in order, each keeping its previous `lastTransitionTime`
/// when its status is unchanged. Conditions of other types are dropped.
pub fn merge_conditions(
    previous: &[Condition],
    parts: &[PartState],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    parts
        .iter()
        .map(|part| {
            let status = if part.ready { "True" } else { "False" };
            let last_transition_time = previous
                .iter()
                .find(|c| c.type_ == part.type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: part.type_.to_string(),
                status: status.to_string(),
                reason: part.reason.clone(),
                message: part.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// The conditions of a resource whose reconcile observed `parts`: `Ready` first, True with
/// `when_ready` (reason, message) when every part is ready, else repeating the first failed part
/// or, with none failed, the first one not ready (a `ReconciliationPaused` part never holds it
/// back); then the parts. Both controllers decide their conditions here.
pub fn compute_conditions(
    previous: &[Condition],
    parts: &[PartState],
    when_ready: (&str, String),
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let blocking = |part: &&PartState| !part.ready && part.type_ != RECONCILIATION_PAUSED;
    let ready = match parts
        .iter()
        .filter(blocking)
        .find(|part| part.failed)
        .or_else(|| parts.iter().find(blocking))
    {
        None => PartState::ready(READY, when_ready.0, when_ready.1),
        Some(part) if part.failed => PartState::failed(READY, &part.reason, part.message.clone()),
        Some(part) => PartState::not_ready(READY, &part.reason, part.message.clone()),
    };
    let mut all = vec![ready];
    all.extend(parts.iter().cloned());
    merge_conditions(previous, &all, generation, now)
}

/// Whether two condition lists say the same thing, ignoring timestamps.
pub fn same_conditions(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.type_ == y.type_
                && x.status == y.status
                && x.reason == y.reason
                && x.message == y.message
                && x.observed_generation == y.observed_generation
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("timestamp")
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let first = merge_conditions(
            &[],
            &[PartState::not_ready("Ready", "Provisioning", "creating")],
            Some(1),
            at(100),
        );
        assert_eq!(first[0].last_transition_time, Time(at(100)));
        let same_status = merge_conditions(
            &first,
            &[PartState::not_ready(
                "Ready",
                "DatabaseUnavailable",
                "db down",
            )],
            Some(1),
            at(200),
        );
        assert_eq!(same_status[0].last_transition_time, Time(at(100)));
        assert_eq!(same_status[0].reason, "DatabaseUnavailable");
        let flipped = merge_conditions(
            &same_status,
            &[PartState::ready("Ready", "Provisioned", "ok")],
            Some(2),
            at(300),
        );
        assert_eq!(flipped[0].last_transition_time, Time(at(300)));
        assert_eq!(flipped[0].status, "True");
        assert_eq!(flipped[0].observed_generation, Some(2));
    }

    #[test]
    fn ready_repeats_the_first_failed_part_else_the_first_waiting_one() {
        let ok = || PartState::ready("DatabaseReady", "Provisioned", "ok");
        let waiting = PartState::not_ready("VectorStoreReady", "Loading", "loading");
        let failed = PartState::failed("PlatformReady", "Unavailable", "platform down");
        let paused = PartState::not_ready(RECONCILIATION_PAUSED, "Paused", "paused");
        let ready_of = |parts: &[PartState]| {
            let conditions =
                compute_conditions(&[], parts, ("Provisioned", "all good".into()), None, at(1));
            let ready = conditions[0].clone();
            assert_eq!(ready.type_, READY);
            assert_eq!(conditions.len(), parts.len() + 1);
            (ready.status, ready.reason)
        };
        assert_eq!(
            ready_of(&[ok(), ok()]),
            ("True".into(), "Provisioned".into())
        );
        assert_eq!(
            ready_of(&[ok(), waiting.clone(), failed.clone()]),
            ("False".into(), "Unavailable".into())
        );
        assert_eq!(
            ready_of(&[waiting, ok()]),
            ("False".into(), "Loading".into())
        );
        assert_eq!(
            ready_of(&[paused, ok()]),
            ("True".into(), "Provisioned".into())
        );
    }

    #[test]
    fn sameness_ignores_time_but_not_content() {
        let a = merge_conditions(
            &[],
            &[PartState::ready("Ready", "Provisioned", "ok")],
            Some(1),
            at(1),
        );
        let b = merge_conditions(
            &[],
            &[PartState::ready("Ready", "Provisioned", "ok")],
            Some(1),
            at(9),
        );
        assert!(same_conditions(&a, &b));
        let c = merge_conditions(
            &[],
            &[PartState::ready("Ready", "Provisioned", "ok!")],
            Some(1),
            at(1),
        );
        assert!(!same_conditions(&a, &c));
    }
}
