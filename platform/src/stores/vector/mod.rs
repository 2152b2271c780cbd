//! Vector storage behind one trait: Milvus in production, an embedded HNSW index by default.

pub mod coalescing;
#[cfg(test)]
pub mod conformance;
pub mod embedded;
pub mod milvus;

use async_trait::async_trait;
use memoryc_crds::layout::{Isolation, TenantName};
use uuid::Uuid;

/// Where one tenant's vectors live.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VectorSpace {
    pub tenant: TenantName,
    pub isolation: Isolation,
}

/// One memory's vector plus the fields searches filter on.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorPoint {
    pub memory_id: Uuid,
    pub vector: Vec<f32>,
    /// Category wire name (`TECHNICAL`, ...).
    pub category: String,
    pub user_id: Uuid,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: i64,
}

/// Filters a vector store applies itself. The tenant is always applied, through the space.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VectorFilter {
    pub category: Option<String>,
    pub user_id: Option<Uuid>,
}

/// A search hit: the memory and its cosine similarity to the query (higher is closer, max 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredId {
    pub memory_id: Uuid,
    pub score: f32,
}

/// Longest category name a vector store keeps.
pub const MAX_CATEGORY_LEN: usize = memoryc_crds::contract::milvus_fields::CATEGORY_LEN;

/// A category filter every store accepts: an uppercase word (letters and `_`). Anything else is
/// refused rather than escaped, so no store ever splices untrusted text into a query.
pub fn validate_category(category: &str) -> Result<&str, VectorStoreError> {
    let valid = !category.is_empty()
        && category.len() <= MAX_CATEGORY_LEN
        && category
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_');
    if valid {
        Ok(category)
    } else {
        Err(VectorStoreError::Rejected(format!(
            "category must be an uppercase word of at most {MAX_CATEGORY_LEN} characters"
        )))
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum VectorStoreError {
    #[error("vector store unavailable: {0}")]
    Unavailable(String),
    #[error("vector has {actual} dimensions, expected {expected}")]
    DimensionMismatch { expected: usize, actual: usize },
    #[error("vector store rejected the request: {0}")]
    Rejected(String),
    #[error("vector index storage failed: {0}")]
    Storage(String),
}

/// What a search asks of a [`VectorStore`].
#[derive(Debug, Clone, Copy)]
pub struct VectorQuery<'a> {
    /// The query vectors; each gets its own result list.
    pub vectors: &'a [&'a [f32]],
    pub limit: usize,
    pub filter: &'a VectorFilter,
    /// The tenant's HNSW search-time candidate list size: `None` is the store's default, and a
    /// store that does not take it per search ignores it.
    pub ef: Option<usize>,
}

impl<'a> VectorQuery<'a> {
    pub fn new(vectors: &'a [&'a [f32]], limit: usize, filter: &'a VectorFilter) -> Self {
        Self {
            vectors,
            limit,
            filter,
            ef: None,
        }
    }

    #[must_use]
    pub fn with_ef(self, ef: Option<usize>) -> Self {
        Self { ef, ..self }
    }
}

/// The results of a search with one query vector.
pub fn first(mut results: Vec<Vec<ScoredId>>) -> Vec<ScoredId> {
    if results.is_empty() {
        Vec::new()
    } else {
        results.swap_remove(0)
    }
}

/// Tests search with one vector at a time.
#[cfg(test)]
#[async_trait]
pub(crate) trait Nearest {
    /// The `limit` nearest points of the tenant that pass `filter`, closest first.
    async fn nearest(
        &self,
        space: &VectorSpace,
        vector: &[f32],
        limit: usize,
        filter: &VectorFilter,
    ) -> Result<Vec<ScoredId>, VectorStoreError>;
}

#[cfg(test)]
#[async_trait]
impl<T: VectorStore + ?Sized> Nearest for T {
    async fn nearest(
        &self,
        space: &VectorSpace,
        vector: &[f32],
        limit: usize,
        filter: &VectorFilter,
    ) -> Result<Vec<ScoredId>, VectorStoreError> {
        self.search(space, VectorQuery::new(&[vector], limit, filter))
            .await
            .map(first)
    }
}

#[async_trait]
pub trait VectorStore: Send + Sync + 'static {
    /// Short name for health reports and logs ("embedded", "milvus").
    fn backend_name(&self) -> &'static str;

    /// Creates the tenant's collection / index if missing and makes it searchable. Idempotent.
    async fn ensure_space(&self, space: &VectorSpace) -> Result<(), VectorStoreError>;

    /// Inserts or replaces points by `memory_id`.
    async fn upsert(
        &self,
        space: &VectorSpace,
        points: &[VectorPoint],
    ) -> Result<(), VectorStoreError>;

    /// Removes points; unknown ids are ignored.
    async fn delete(&self, space: &VectorSpace, ids: &[Uuid]) -> Result<(), VectorStoreError>;

    /// For each vector of `query`, the `query.limit` nearest points of this tenant that pass
    /// `query.filter`, closest first: one result list per vector, in order. A store that can
    /// answer several vectors in one request does.
    async fn search(
        &self,
        space: &VectorSpace,
        query: VectorQuery<'_>,
    ) -> Result<Vec<Vec<ScoredId>>, VectorStoreError>;

    /// Number of points the tenant has.
    async fn count(&self, space: &VectorSpace) -> Result<u64, VectorStoreError>;

    /// Removes every point of the tenant (and its collection when dedicated). Idempotent.
    async fn drop_space(&self, space: &VectorSpace) -> Result<(), VectorStoreError>;

    /// Cheap liveness probe of the backend.
    async fn health(&self) -> Result<(), VectorStoreError>;
}
