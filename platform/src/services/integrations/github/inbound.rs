//! GitHub's webhooks for a synchronised board (`POST /api/v1/integrations/{name}/github`): the
//! body's `X-Hub-Signature-256` is checked in constant time against the integration's webhook
//! secret before anything is read, a delivery id (`X-GitHub-Delivery`) seen before changes
//! nothing, and the item a delivery names is brought up to date at once.

use std::sync::Arc;

use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::sync::{GITHUB_KIND, GitHubSync, SyncError};
use crate::stores::Integration;
use crate::stores::sync_state::SyncStore;

/// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
pub const EVENT_HEADER: &str = "x-github-event";
pub const DELIVERY_HEADER: &str = "x-github-delivery";
/// Longest delivery id accepted (GitHub's are UUIDs).
const MAX_DELIVERY_ID_LEN: usize = 128;

/// One delivery as it arrived.
pub struct InboundDelivery<'a> {
    pub event: &'a str,
    pub delivery_id: &'a str,
    pub signature: &'a str,
    pub body: &'a [u8],
}

/// What a delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Acted on: `created`, `updated`, `unchanged`, `removed`, `ignored` or `pong`.
    Done(&'static str),
    /// Seen before; nothing done.
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// Also what an unknown tenant or integration, or one without a webhook secret, answers:
    /// a sender learns nothing it cannot sign for.
    #[error("the signature does not verify")]
    BadSignature,
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// Checks `X-Hub-Signature-256` against `secret`, in constant time.
pub fn verify(secret: &str, signature: &str, body: &[u8]) -> bool {
    let Some(hex_digest) = signature.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_digest) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The parts of GitHub's event payloads that name an item.
#[derive(Debug, Deserialize)]
struct Payload {
    action: Option<String>,
    projects_v2_item: Option<ItemRef>,
    issue: Option<ContentRef>,
    pull_request: Option<ContentRef>,
}

#[derive(Debug, Deserialize)]
struct ItemRef {
    node_id: String,
    project_node_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ContentRef {
    node_id: String,
}

pub struct GitHubInbound {
    sync: Arc<GitHubSync>,
    store: Arc<dyn SyncStore>,
}

impl GitHubInbound {
    pub fn new(sync: Arc<GitHubSync>) -> Self {
        let store = sync.store().clone();
        Self { sync, store }
    }

    /// Verifies and handles one delivery for `integration` (`None`: no such integration).
    pub async fn receive(
        &self,
        integration: Option<&Integration>,
        delivery: InboundDelivery<'_>,
    ) -> Result<Handled, InboundError> {
        let integration = integration
            .filter(|integration| integration.record.kind == GITHUB_KIND)
            .ok_or(InboundError::BadSignature)?;
        let secret = integration
            .record
            .inbound_secret
            .as_deref()
            .ok_or(InboundError::BadSignature)?;
        if !verify(secret, delivery.signature, delivery.body) {
            return Err(InboundError::BadSignature);
        }
        let delivery_id = delivery.delivery_id.trim();
        if delivery_id.is_empty() || delivery_id.len() > MAX_DELIVERY_ID_LEN {
            return Err(InboundError::Malformed(format!(
                "{DELIVERY_HEADER} must be 1 to {MAX_DELIVERY_ID_LEN} characters"
            )));
        }
        let id = integration.integration_id;
        if !self
            .store
            .record_inbound_delivery(id, delivery_id, Utc::now())
            .await
            .map_err(SyncError::from)?
        {
            return Ok(Handled::Duplicate);
        }
        let handled = self
            .handle(integration, delivery.event, delivery.body)
            .await;
        if handled.is_err() {
            // Not handled: GitHub's redelivery of it must be.
            if let Err(error) = self.store.forget_inbound_delivery(id, delivery_id).await {
                tracing::warn!(%error, "could not forget an unhandled GitHub delivery");
            }
        }
        handled.map(Handled::Done)
    }

    async fn handle(
        &self,
        integration: &Integration,
        event: &str,
        body: &[u8],
    ) -> Result<&'static str, InboundError> {
        if event == "ping" {
            return Ok("pong");
        }
        let payload: Payload = serde_json::from_slice(body)
            .map_err(|error| InboundError::Malformed(format!("the body: {error}")))?;
        match event {
            "projects_v2_item" => {
                let Some(item) = payload.projects_v2_item else {
                    return Ok("ignored");
                };
                let ours = integration.state.external_id.as_deref();
                if item.project_node_id.is_some() && item.project_node_id.as_deref() != ours {
                    return Ok("ignored");
                }
                let action = payload.action.as_deref().unwrap_or_default();
                if matches!(action, "deleted" | "archived") {
                    Ok(self.sync.remove_item(integration, &item.node_id).await?)
                } else {
                    Ok(self.sync.refresh_item(integration, &item.node_id).await?)
                }
            }
            "issues" | "pull_request" => {
                let Some(content) = payload.issue.or(payload.pull_request) else {
                    return Ok("ignored");
                };
                let items = self
                    .store
                    .synced_items_of_content(integration.integration_id, &content.node_id)
                    .await
                    .map_err(SyncError::from)?;
                let mut outcome = "ignored";
                for item in items.iter().filter(|item| !item.removed) {
                    outcome = self.sync.refresh_item(integration, &item.item_id).await?;
                }
                Ok(outcome)
            }
            _ => Ok("ignored"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_as_github_computes_them() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(verify(
            "It's a Secret to Everybody",
            signature,
            b"Hello, World!"
        ));
        assert!(!verify(
            "It's a Secret to Everybody",
            signature,
            b"Hello, World?"
        ));
        assert!(!verify("another secret", signature, b"Hello, World!"));
        assert!(!verify(
            "It's a Secret to Everybody",
            signature.trim_start_matches("sha256="),
            b"Hello, World!"
        ));
        assert!(!verify(
            "It's a Secret to Everybody",
            "sha256=zz",
            b"Hello, World!"
        ));
    }
}
