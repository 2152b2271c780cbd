//! Runs GitHub Projects syncs when they are due: on each integration's `syncSchedule`, after a
//! rate limit resets, and at once for a new integration. Every replica runs a scheduler; a
//! sync's lease lets one of them run it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use super::sync::{GITHUB_KIND, GitHubSync, SyncError};
use crate::services::integrations::llm::providers::{LLM_KIND, LlmProviders};
use crate::stores::sync_state::SyncStore;

/// How long handled GitHub delivery ids are remembered (GitHub redelivers for three days).
const REMEMBER_DELIVERIES: chrono::Duration = chrono::Duration::days(7);
/// How often old delivery ids are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

pub struct SyncScheduler {
    sync: Arc<GitHubSync>,
    store: Arc<dyn SyncStore>,
    poll_interval: Duration,
    /// LLM providers are checked (`GET /models`) on the same loop.
    llm: Option<Arc<LlmProviders>>,
}

/// How often an LLM provider is checked when nothing calls it.
const LLM_CHECK_EVERY: chrono::Duration = chrono::Duration::minutes(5);

impl SyncScheduler {
    pub fn new(sync: Arc<GitHubSync>, poll_interval: Duration) -> Self {
        let store = sync.store().clone();
        Self {
            sync,
            store,
            poll_interval,
            llm: None,
        }
    }

    pub fn with_llm_checks(mut self, providers: Arc<LlmProviders>) -> Self {
        self.llm = Some(providers);
        self
    }

    /// Runs until `stop` turns true.
    pub fn spawn(self, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut next_prune = tokio::time::Instant::now();
            loop {
                if tokio::time::Instant::now() >= next_prune {
                    self.prune().await;
                    next_prune = tokio::time::Instant::now() + PRUNE_EVERY;
                }
                self.run_due().await;
                self.check_due_providers().await;
                tokio::select! {
                    _ = tokio::time::sleep(self.poll_interval) => {}
                    _ = stop.changed() => break,
                }
            }
        })
    }

    /// Runs every sync due now, one after another; how many ran.
    pub async fn run_due(&self) -> usize {
        let due = match self.store.due_syncs(GITHUB_KIND, Utc::now()).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "could not read the due GitHub syncs");
                return 0;
            }
        };
        let mut ran = 0;
        for integration in due {
            match self.sync.run(&integration).await {
                Ok(_) => ran += 1,
                // Another replica took it.
                Err(SyncError::Busy) => {}
                // Recorded in the integration's state by the sync.
                Err(error) => {
                    ran += 1;
                    tracing::warn!(%error, integration = %integration.record.name, "GitHub sync failed");
                }
            }
        }
        ran
    }

    /// Checks the LLM providers whose check is due (one replica each, by the same lease).
    pub async fn check_due_providers(&self) {
        let Some(providers) = &self.llm else {
            return;
        };
        let now = Utc::now();
        let due = match self.store.due_syncs(LLM_KIND, now).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "could not read the LLM providers due for a check");
                return;
            }
        };
        for integration in due {
            let id = integration.integration_id;
            match self.store.claim_sync(id, now, now + LLM_CHECK_EVERY).await {
                Ok(Some(_)) => {
                    providers.check(&integration).await;
                    if let Err(error) = self
                        .store
                        .release_sync(id, Some(Utc::now() + LLM_CHECK_EVERY))
                        .await
                    {
                        tracing::warn!(%error, "could not plan an LLM provider's next check");
                    }
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "could not claim an LLM provider's check"),
            }
        }
    }

    async fn prune(&self) {
        let before = Utc::now() - REMEMBER_DELIVERIES;
        if let Err(error) = self.store.prune_inbound_deliveries(before).await {
            tracing::warn!(%error, "could not prune old GitHub delivery ids");
        }
    }
}
