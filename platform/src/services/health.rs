//! The state of every backend, for `/monitoring/health` and readiness probes.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use super::vector_sync::VectorSync;
use crate::embedding::Embedder;
use crate::stores::relational::Databases;
use crate::stores::vector::VectorStore;

/// Longest a probe may take before the backend counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackendStatus {
    Up,
    Down,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackendHealth {
    pub status: BackendStatus,
    /// Which implementation answers (`sqlite`, `postgres`, `embedded`, `milvus`, `minilm`).
    pub backend: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthReport {
    /// `ok` when every backend is up, `degraded` otherwise.
    pub status: &'static str,
    pub relational: BackendHealth,
    pub vector: BackendHealth,
    pub embedding: BackendHealth,
    /// Memories whose vector is still waiting for the vector store (absent when unknown).
    pub outbox_backlog: Option<u64>,
}

impl HealthReport {
    pub fn is_healthy(&self) -> bool {
        self.status == "ok"
    }
}

pub struct HealthService {
    databases: Databases,
    vectors: Arc<dyn VectorStore>,
    embedder: Arc<dyn Embedder>,
    vector_sync: Arc<VectorSync>,
}

impl HealthService {
    pub fn new(
        databases: Databases,
        vectors: Arc<dyn VectorStore>,
        embedder: Arc<dyn Embedder>,
        vector_sync: Arc<VectorSync>,
    ) -> Self {
        Self {
            databases,
            vectors,
            embedder,
            vector_sync,
        }
    }

    pub async fn report(&self) -> HealthReport {
        let (relational, vector, embedding, backlog) = tokio::join!(
            probe(self.databases.backend_name(), self.databases.ping()),
            probe(self.vectors.backend_name(), self.vectors.health()),
            probe("minilm", self.embedder.embed(vec!["health".to_string()])),
            tokio::time::timeout(PROBE_TIMEOUT, self.vector_sync.backlog()),
        );
        let all_up = [&relational, &vector, &embedding]
            .iter()
            .all(|b| b.status == BackendStatus::Up);
        HealthReport {
            status: if all_up { "ok" } else { "degraded" },
            relational,
            vector,
            embedding,
            outbox_backlog: backlog.ok().and_then(Result::ok),
        }
    }
}

async fn probe<T, E: std::fmt::Display>(
    backend: &str,
    check: impl std::future::Future<Output = Result<T, E>>,
) -> BackendHealth {
    // The backend's own words (addresses, user names, server versions) go to the log, under a
    // reference the public answer gives instead.
    let (status, detail) = match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(Ok(_)) => (BackendStatus::Up, None),
        Ok(Err(error)) => {
            let reference = uuid::Uuid::now_v7();
            tracing::warn!(backend, %reference, %error, "health probe failed");
            (
                BackendStatus::Down,
                Some(format!(
                    "unreachable; see the platform log for reference {reference}"
                )),
            )
        }
        Err(_) => (BackendStatus::Down, Some("timed out".to_string())),
    };
    BackendHealth {
        status,
        backend: backend.to_string(),
        detail,
    }
}
