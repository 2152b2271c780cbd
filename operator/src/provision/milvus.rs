//! Milvus: the tenant's collection (or its rows in the shared one), its HNSW index and its load
//! state. Every call checks before it changes, so re-running repairs whatever is missing. The
//! collection itself is built by `memoryc_crds::milvus`, as the platform builds it.
//!
//! Milvus 2.3 quirks (see the platform's vector store): rows are deleted by primary key only,
//! after reading the tenant's ids with strong consistency.

use std::time::Duration;

use memoryc_crds::contract::milvus_fields as fields;
use memoryc_crds::layout::Isolation;
use memoryc_crds::milvus::{self as milvus_collection, EnsureReport};
use milvus::v2::prelude::{
    ClientV2, ConnectConfig, ConsistencyLevel, DeleteRequest, DropCollectionRequest,
    Error as MilvusError, FieldData, LoadState, QueryRequest, RetryConfig, TelemetryConfig,
};
use tokio::sync::OnceCell;

use super::ProvisionError;
use crate::tenant::plan::VectorPlan;

/// Most rows Milvus returns from one query.
const MILVUS_MAX_ROWS: i64 = 16_384;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const RPC_TIMEOUT: Duration = Duration::from_secs(60);

/// A tenant's collection as it should be.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionPlan {
    pub collection: String,
    pub tenant: String,
    pub isolation: Isolation,
    pub vectors: VectorPlan,
}

/// What `ensure_collection` had to do; anything true on an already-provisioned tenant is drift.
pub type CollectionReport = EnsureReport;

/// The operator's Milvus connection, dialled on first use and re-dialled after a failed dial.
pub struct Milvus {
    url: String,
    token: Option<String>,
    client: OnceCell<ClientV2>,
}

impl Milvus {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
            client: OnceCell::new(),
        }
    }

    /// Credentials (`user:password` or an API key) for a Milvus with authentication on.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|token| !token.is_empty());
        self
    }

    async fn client(&self) -> Result<&ClientV2, ProvisionError> {
        self.client
            .get_or_try_init(|| async {
                let retry = RetryConfig::new()
                    .max_attempts(3)
                    .max_retry_timeout(RPC_TIMEOUT);
                let mut config = ConnectConfig::new()
                    .uri(self.url.clone())
                    .connect_timeout(CONNECT_TIMEOUT)
                    .rpc_timeout(RPC_TIMEOUT)
                    .retry(retry)
                    .telemetry(TelemetryConfig::new().enabled(false));
                if let Some(token) = &self.token {
                    config = config.token(token.clone());
                }
                ClientV2::new(&config).await.map_err(vector_error)
            })
            .await
    }

    pub async fn has_collection(&self, collection: &str) -> Result<bool, ProvisionError> {
        let client = self.client().await?;
        milvus_collection::has_collection(client, collection)
            .await
            .map_err(vector_error)
    }

    /// Creates, indexes and loads the collection as far as it is missing.
    pub async fn ensure_collection(
        &self,
        plan: &CollectionPlan,
    ) -> Result<CollectionReport, ProvisionError> {
        let client = self.client().await?;
        milvus_collection::ensure_collection(
            client,
            &plan.collection,
            plan.isolation,
            &plan.vectors.shape(),
        )
        .await
        .map_err(ProvisionError::from)
    }

    pub async fn load_state(&self, collection: &str) -> Result<LoadState, ProvisionError> {
        let client = self.client().await?;
        milvus_collection::load_state(client, collection)
            .await
            .map_err(vector_error)
    }

    /// Erases the tenant's vectors: its collection, or its rows of the shared one.
    pub async fn erase(&self, plan: &CollectionPlan) -> Result<(), ProvisionError> {
        if !self.has_collection(&plan.collection).await? {
            return Ok(());
        }
        match plan.isolation {
            Isolation::Dedicated => {
                let request = DropCollectionRequest::builder()
                    .collection_name(plan.collection.as_str())
                    .build()
                    .map_err(vector_error)?;
                self.client()
                    .await?
                    .drop_collection(request)
                    .await
                    .map_err(vector_error)
            }
            Isolation::Shared => self.delete_tenant_rows(plan).await,
        }
    }

    async fn delete_tenant_rows(&self, plan: &CollectionPlan) -> Result<(), ProvisionError> {
        loop {
            let ids = self.tenant_ids(plan).await?;
            if ids.is_empty() {
                return Ok(());
            }
            let quoted: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
            let request = DeleteRequest::builder()
                .collection_name(plan.collection.as_str())
                .filter(format!("{} in [{}]", fields::ID, quoted.join(", ")))
                .build()
                .map_err(vector_error)?;
            self.client()
                .await?
                .delete(request)
                .await
                .map_err(vector_error)?;
            if (ids.len() as i64) < MILVUS_MAX_ROWS {
                return Ok(());
            }
        }
    }

    /// Ids of the tenant's rows in the shared collection. Tenant names are validated to
    /// `[a-z0-9-]`, so the expression needs no escaping.
    async fn tenant_ids(&self, plan: &CollectionPlan) -> Result<Vec<String>, ProvisionError> {
        let request = QueryRequest::builder()
            .collection_name(plan.collection.as_str())
            .filter(format!("{} == \"{}\"", fields::TENANT, plan.tenant))
            .output_fields([fields::ID])
            .limit(MILVUS_MAX_ROWS)
            .consistency_level(ConsistencyLevel::Strong)
            .build()
            .map_err(vector_error)?;
        let response = self
            .client()
            .await?
            .query(request)
            .await
            .map_err(vector_error)?;
        match response.results().get_output_field(fields::ID) {
            Some(FieldData::VarChar { values, .. }) => Ok(values.clone()),
            _ => Ok(Vec::new()),
        }
    }

    /// Drops a collection by name (tests and benchmarks clean up with it).
    pub async fn drop_collection(&self, collection: &str) -> Result<(), ProvisionError> {
        if !self.has_collection(collection).await? {
            return Ok(());
        }
        let request = DropCollectionRequest::builder()
            .collection_name(collection)
            .build()
            .map_err(vector_error)?;
        self.client()
            .await?
            .drop_collection(request)
            .await
            .map_err(vector_error)
    }
}

fn vector_error(error: MilvusError) -> ProvisionError {
    ProvisionError::from(error)
}
