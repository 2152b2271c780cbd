//! The body of a webhook: `{"type": "memory.created", "timestamp": "...", "data": {...}}`, the
//! envelope Standard Webhooks recommends. `data` names the tenant and the event and carries the
//! memory as the API shows it (as it is when the event is handled), or the insight's summary.

use memoryc_crds::contract::WEBHOOK_EVENTS;
use serde::{Deserialize, Serialize};

use crate::domain::Memory;
use crate::domain::analytics::EventType;
use crate::services::events::TenantEvent;

/// The webhook event name of an analytics event, for the four a webhook can receive.
pub fn event_name(event_type: EventType) -> Option<&'static str> {
    let name = match event_type {
        EventType::MemoryCreated => "memory.created",
        EventType::MemoryUpdated => "memory.updated",
        EventType::MemoryDeleted => "memory.deleted",
        EventType::InsightGenerated => "insight.generated",
        _ => return None,
    };
    debug_assert!(WEBHOOK_EVENTS.contains(&name));
    Some(name)
}

/// A Webhook integration's settings, as stored in the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookSettings {
    pub url: String,
    /// Event names received; all of them when empty.
    #[serde(default)]
    pub events: Vec<String>,
}

impl WebhookSettings {
    pub fn receives(&self, event: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|wanted| wanted == event)
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: String,
    data: serde_json::Value,
}

/// The body sent for `event` (named `name`), with the memory it concerns when there is one.
pub fn body(name: &str, event: &TenantEvent, memory: Option<&Memory>) -> String {
    let analytics = &event.event;
    let mut data = serde_json::json!({
        "tenant": event.tenant.as_str(),
        "event_id": analytics.event_id,
        "memory_id": analytics.memory_id,
        "user_id": analytics.user_id,
        "details": analytics.event_data,
    });
    if let Some(memory) = memory {
        data["memory"] = serde_json::to_value(memory).unwrap_or(serde_json::Value::Null);
    }
    let envelope = Envelope {
        kind: name,
        timestamp: analytics
            .timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        data,
    };
    // A struct of strings and JSON values always serialises.
    serde_json::to_string(&envelope).unwrap_or_default()
}
