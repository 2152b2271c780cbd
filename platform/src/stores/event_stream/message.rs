//! One event of one tenant, and its wire form on the stream.

use memoryc_crds::layout::{Isolation, TenantName};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::EventError;
use crate::domain::analytics::AnalyticsEvent;

/// An event with the tenant it belongs to (and where that tenant's vectors live, so the
/// consumer can find neighbours without a lookup).
#[derive(Debug, Clone, PartialEq)]
pub struct TenantEvent {
    pub tenant: TenantName,
    /// The tenant's id: a name may be reused by a tenant created after this one was deleted,
    /// whose tables this event must never reach. `None` only for events queued before ids
    /// were carried.
    pub tenant_id: Option<Uuid>,
    pub isolation: Isolation,
    pub event: AnalyticsEvent,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    tenant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant_id: Option<Uuid>,
    isolation: String,
    event: AnalyticsEvent,
}

impl TenantEvent {
    pub fn to_json(&self) -> Result<String, EventError> {
        serde_json::to_string(&Wire {
            tenant: self.tenant.to_string(),
            tenant_id: self.tenant_id,
            isolation: self.isolation.as_str().to_string(),
            event: self.event.clone(),
        })
        .map_err(|e| EventError::Malformed(e.to_string()))
    }

    pub fn from_json(text: &str) -> Result<Self, EventError> {
        let wire: Wire =
            serde_json::from_str(text).map_err(|e| EventError::Malformed(e.to_string()))?;
        Ok(Self {
            tenant: TenantName::parse(&wire.tenant)
                .map_err(|e| EventError::Malformed(e.to_string()))?,
            tenant_id: wire.tenant_id,
            isolation: Isolation::parse(&wire.isolation)
                .ok_or_else(|| EventError::Malformed(format!("isolation {:?}", wire.isolation)))?,
            event: wire.event,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::analytics::EventType;

    #[test]
    fn round_trips_through_json() {
        let event = TenantEvent {
            tenant: TenantName::parse("acme").expect("name"),
            tenant_id: Some(uuid::Uuid::now_v7()),
            isolation: Isolation::Dedicated,
            event: AnalyticsEvent {
                event_id: uuid::Uuid::now_v7(),
                event_type: EventType::SearchPerformed,
                user_id: Some(uuid::Uuid::new_v4()),
                memory_id: None,
                event_data: serde_json::json!({"query": "q", "result_count": 3}),
                timestamp: chrono::Utc::now(),
                session_id: Some("s-1".to_string()),
            },
        };
        let text = event.to_json().expect("encode");
        assert_eq!(TenantEvent::from_json(&text).expect("decode"), event);
        assert!(TenantEvent::from_json(r#"{"tenant": "Bad Name"}"#).is_err());
    }
}
