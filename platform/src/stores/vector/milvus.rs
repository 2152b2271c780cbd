//! Vectors in Milvus: a collection per dedicated tenant, a shared partition-keyed collection otherwise.
//!
//! This module owns everything Milvus-specific about memory vectors: the collection schema and its
//! HNSW/COSINE index, when collections are created, loaded and dropped, the filter expressions that
//! keep the tenants of the shared collection apart, and the mapping of Milvus failures onto
//! [`VectorStoreError`].
//!
//! Layouts, chosen per tenant by [`VectorSpace::isolation`]:
//! * `Dedicated`: the tenant owns the collection `TenantName::dedicated_collection()`; dropping the
//!   space drops the collection.
//! * `Shared`: every shared tenant lives in
//!   [`SHARED_COLLECTION`](memoryc_crds::layout::SHARED_COLLECTION), whose `tenant` field is the
//!   partition key. Every search, query and count there carries `tenant == "<name>"`, which both
//!   isolates tenants and lets Milvus prune the work to the tenant's partition. Deletes asked of
//!   the store first look up, under that clause, which of the ids the tenant owns, and delete
//!   only those; replacing the points a write carries (ids the platform made, read from the
//!   tenant's own rows) deletes by primary key alone, without that lookup.
//!
//! The SDK's V2 client is used because the V1 client cannot declare a partition key. Milvus 2.3
//! quirks handled here:
//! * Search hits are read as raw ids and scores: the SDK's row view needs a primary-field name
//!   that 2.3 does not send.
//! * Deletes name primary keys literally (`memory_id in [...]`): the SDK's id-based delete sends
//!   an expression template 2.3 rejects, and for any other expression 2.3 looks the rows up itself
//!   with bounded staleness, which can miss rows written a moment earlier.
//! * Upsert into a partition-key collection does not route rows by the key, which hides them from
//!   tenant-filtered reads, so the shared collection replaces points by delete-then-insert. That
//!   is not atomic: a failure in between leaves the points deleted until the caller retries.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use memoryc_crds::layout::{HNSW_EF_SEARCH, Isolation, VECTOR_DIMENSION, collection_for};
use memoryc_crds::milvus::{self as milvus_collection, CollectionError, CollectionShape};
use milvus::v2::prelude::{
    CheckHealthRequest, ClientV2, ConnectConfig, ConsistencyLevel, DeleteRequest,
    DropCollectionRequest, Error as MilvusError, FieldData, Ids, InsertRequest, MetricType,
    QueryRequest, RetryConfig, SearchRequest, SearchVectors, TelemetryConfig, UpsertRequest,
};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{
    ScoredId, VectorFilter, VectorPoint, VectorQuery, VectorSpace, VectorStore, VectorStoreError,
};

// The collection layout is shared with the operator, which creates tenants' collections.
use memoryc_crds::contract::milvus_fields::{
    CATEGORY as FIELD_CATEGORY, CREATED as FIELD_CREATED, ID as FIELD_ID, TENANT as FIELD_TENANT,
    USER as FIELD_USER, VECTOR as FIELD_VECTOR,
};

/// Rows per insert/upsert RPC: 512 × 384 floats is about 0.8 MB, far below gRPC message limits.
const WRITE_BATCH: usize = 512;
/// Ids per delete expression, keeping each expression a few tens of kilobytes.
const DELETE_BATCH: usize = 1_000;
/// Milvus rejects a search top-k or query limit above this.
const MILVUS_MAX_ROWS: usize = 16_384;
/// Query vectors sent in one search request.
const SEARCH_BATCH: usize = 256;
/// Milvus refuses an HNSW `ef` above this.
const MILVUS_MAX_EF: usize = 32_768;
/// How long dialling Milvus may take before a call reports it unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where and how to reach Milvus.
#[derive(Clone)]
pub struct MilvusConfig {
    /// gRPC endpoint, e.g. `http://127.0.0.1:19530`.
    pub url: String,
    /// `user:password` or API key; `None` when authentication is off.
    pub token: Option<String>,
    /// Milvus database; `None` uses `default`.
    pub database: Option<String>,
    /// Limit for one data-plane operation (one write batch, a search, a count, a health probe).
    pub request_timeout: Duration,
    /// Limit for creating, indexing, loading or dropping a collection, which Milvus does slowly.
    pub schema_timeout: Duration,
}

impl MilvusConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token: None,
            database: None,
            request_timeout: Duration::from_secs(5),
            schema_timeout: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for MilvusConfig {
    // Hand-written so the token never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MilvusConfig")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .field("request_timeout", &self.request_timeout)
            .field("schema_timeout", &self.schema_timeout)
            .finish()
    }
}

/// [`VectorStore`] backed by a Milvus (2.3 or later) server.
///
/// The connection is made lazily, on the first call, and a failed dial is retried by the next call:
/// the platform can start while Milvus is still down, and calls fail fast with
/// [`VectorStoreError::Unavailable`] until it is up.
pub struct MilvusVectorStore {
    config: MilvusConfig,
    client: OnceCell<ClientV2>,
}

impl MilvusVectorStore {
    /// A store for the Milvus at `url` (e.g. `http://127.0.0.1:19530`) with default settings.
    /// Does not dial; see [`MilvusVectorStore`].
    pub fn connect(url: &str) -> Result<Self, VectorStoreError> {
        Self::with_config(MilvusConfig::new(url))
    }

    /// A store with explicit settings. Does not dial; only the URL's shape is checked here.
    pub fn with_config(config: MilvusConfig) -> Result<Self, VectorStoreError> {
        validate_url(&config.url)?;
        Ok(Self {
            config,
            client: OnceCell::new(),
        })
    }

    /// The connected client, dialling Milvus if no dial has succeeded yet.
    async fn client(&self) -> Result<&ClientV2, VectorStoreError> {
        self.client
            .get_or_try_init(|| async {
                ClientV2::new(&connect_config(&self.config))
                    .await
                    .map_err(map_milvus_error)
            })
            .await
    }

    /// Runs a data-plane operation under the request timeout.
    async fn request<T>(
        &self,
        what: &str,
        operation: impl Future<Output = Result<T, VectorStoreError>>,
    ) -> Result<T, VectorStoreError> {
        bounded(self.config.request_timeout, what, operation).await
    }

    /// Runs a schema operation (create, index, load, drop) under the longer schema timeout.
    async fn schema_change<T>(
        &self,
        what: &str,
        operation: impl Future<Output = Result<T, VectorStoreError>>,
    ) -> Result<T, VectorStoreError> {
        bounded(self.config.schema_timeout, what, operation).await
    }

    async fn has_collection(&self, collection: &str) -> Result<bool, VectorStoreError> {
        let client = self.client().await?;
        milvus_collection::has_collection(client, collection)
            .await
            .map_err(map_milvus_error)
    }

    /// Creates, indexes and loads the collection as far as any of that is missing, so a space
    /// whose creation was interrupted half-way is repaired by the next call.
    async fn ensure_space_now(&self, space: &VectorSpace) -> Result<(), VectorStoreError> {
        let client = self.client().await?;
        let collection = collection_of(space);
        milvus_collection::ensure_collection(
            client,
            &collection,
            space.isolation,
            &CollectionShape::default(),
        )
        .await
        .map_err(map_collection_error)?;
        Ok(())
    }

    async fn write_batch(
        &self,
        space: &VectorSpace,
        points: &[&VectorPoint],
    ) -> Result<(), VectorStoreError> {
        let collection = collection_of(space);
        let insert = InsertRequest::builder()
            .collection_name(collection.as_str())
            .columns(columns(space, points))
            .build()
            .map_err(map_milvus_error)?;
        let client = self.client().await?;
        match space.isolation {
            Isolation::Dedicated => {
                let upsert = UpsertRequest::builder()
                    .insert(insert)
                    .build()
                    .map_err(map_milvus_error)?;
                client.upsert(upsert).await.map_err(map_milvus_error)?;
            }
            // Milvus 2.3 upserts into a partition-key collection without routing rows by the
            // key: they land in a partition that tenant-filtered reads, pruned to the key's
            // partition, never look at. Insert routes them, so replace by delete-then-insert.
            // The delete names the primary keys alone, with no lookup first: a written point's
            // id is a memory id the platform made (UUIDv7) and read from this tenant's own row,
            // so it names no other tenant's point, and a strongly consistent lookup would make
            // every write wait for Milvus's next time tick.
            Isolation::Shared => {
                let ids: Vec<Uuid> = points.iter().map(|point| point.memory_id).collect();
                self.delete_by_primary_key(&collection, &ids).await?;
                client.insert(insert).await.map_err(map_milvus_error)?;
            }
        }
        Ok(())
    }

    /// Deletes those of `ids` (at most [`DELETE_BATCH`]) that belong to the tenant.
    async fn delete_ids(&self, space: &VectorSpace, ids: &[Uuid]) -> Result<(), VectorStoreError> {
        let owned = match space.isolation {
            Isolation::Dedicated => ids.to_vec(),
            // A primary key names a row in any partition, so first narrow the ids to the
            // tenant's own rows: another tenant's ids must stay untouched.
            Isolation::Shared => self.tenant_ids(space, Some(ids_clause(ids))).await?,
        };
        self.delete_by_primary_key(&collection_of(space), &owned)
            .await
    }

    /// Deletes rows by primary key only. Milvus 2.3 applies such a delete directly; for any
    /// other expression it first looks the keys up itself with bounded staleness, which can miss
    /// rows written a moment earlier.
    async fn delete_by_primary_key(
        &self,
        collection: &str,
        ids: &[Uuid],
    ) -> Result<(), VectorStoreError> {
        for batch in ids.chunks(DELETE_BATCH) {
            let request = DeleteRequest::builder()
                .collection_name(collection)
                .filter(ids_clause(batch))
                .build()
                .map_err(map_milvus_error)?;
            self.client()
                .await?
                .delete(request)
                .await
                .map_err(map_milvus_error)?;
        }
        Ok(())
    }

    /// Ids of the tenant's rows that also match `condition`, at most [`MILVUS_MAX_ROWS`]. Read
    /// with strong consistency, so rows written just before are included.
    async fn tenant_ids(
        &self,
        space: &VectorSpace,
        condition: Option<String>,
    ) -> Result<Vec<Uuid>, VectorStoreError> {
        let request = QueryRequest::builder()
            .collection_name(collection_of(space))
            .filter(and_all([Some(tenant_clause(space)), condition]))
            .output_fields([FIELD_ID])
            .limit(MILVUS_MAX_ROWS as i64)
            .consistency_level(ConsistencyLevel::Strong)
            .build()
            .map_err(map_milvus_error)?;
        let response = self
            .client()
            .await?
            .query(request)
            .await
            .map_err(map_milvus_error)?;
        match response.results().get_output_field(FIELD_ID) {
            Some(FieldData::VarChar { values, .. }) => {
                values.iter().map(|id| parse_id(id)).collect()
            }
            // Some servers leave the column out of an empty result.
            None => Ok(Vec::new()),
            Some(_) => Err(VectorStoreError::Storage(format!(
                "Milvus returned {FIELD_ID} values that are not strings"
            ))),
        }
    }

    /// Deletes every row of a shared tenant, a page of ids at a time.
    async fn delete_tenant_rows(&self, space: &VectorSpace) -> Result<(), VectorStoreError> {
        let collection = collection_of(space);
        loop {
            let ids = self.tenant_ids(space, None).await?;
            self.delete_by_primary_key(&collection, &ids).await?;
            if ids.len() < MILVUS_MAX_ROWS {
                return Ok(());
            }
        }
    }

    /// One request for all of `queries`; one result list per query, in order.
    async fn search_now(
        &self,
        space: &VectorSpace,
        queries: Vec<Vec<f32>>,
        limit: usize,
        expression: String,
        ef: Option<usize>,
    ) -> Result<Vec<Vec<ScoredId>>, VectorStoreError> {
        let asked = queries.len();
        let top_k = limit.min(MILVUS_MAX_ROWS);
        let ef = search_ef(ef, top_k);
        let request = SearchRequest::builder()
            .collection_name(collection_of(space))
            .vector_field(FIELD_VECTOR)
            .vectors(SearchVectors::Float(queries))
            .filter(expression)
            .limit(i64::try_from(top_k).unwrap_or(i64::MAX))
            .metric_type(MetricType::Cosine)
            .extra_params(HashMap::from([("ef".to_owned(), ef.to_string())]))
            // Session: this process's own writes are visible at once, without Strong's wait for
            // every channel's time tick (about 200 ms per search on 2.3).
            .consistency_level(ConsistencyLevel::Session)
            .build()
            .map_err(map_milvus_error)?;
        let response = self
            .client()
            .await?
            .search(request)
            .await
            .map_err(map_milvus_error)?;
        // Ids and scores are read directly because the SDK's row view needs a primary-field
        // name that Milvus 2.3 leaves out. A search that matched nothing may come back without
        // any result set.
        let mut results = response
            .results()
            .iter()
            .map(|hits| scored_ids(hits.get_ids(), hits.get_scores()))
            .collect::<Result<Vec<_>, _>>()?;
        if results.is_empty() {
            results.resize_with(asked, Vec::new);
        }
        if results.len() != asked {
            return Err(VectorStoreError::Storage(format!(
                "Milvus answered {} of {asked} queries",
                results.len()
            )));
        }
        Ok(results)
    }

    async fn count_now(&self, space: &VectorSpace) -> Result<u64, VectorStoreError> {
        let request = QueryRequest::builder()
            .collection_name(collection_of(space))
            .filter(tenant_clause_for(space).unwrap_or_default())
            .output_fields(["count(*)"])
            .consistency_level(ConsistencyLevel::Strong)
            .build()
            .map_err(map_milvus_error)?;
        let response = self
            .client()
            .await?
            .query(request)
            .await
            .map_err(map_milvus_error)?;
        Ok(response.results().get_row_count())
    }

    async fn drop_space_now(&self, space: &VectorSpace) -> Result<(), VectorStoreError> {
        let collection = collection_of(space);
        if !self.has_collection(&collection).await? {
            return Ok(());
        }
        match space.isolation {
            Isolation::Dedicated => {
                let request = DropCollectionRequest::builder()
                    .collection_name(collection)
                    .build()
                    .map_err(map_milvus_error)?;
                self.client()
                    .await?
                    .drop_collection(request)
                    .await
                    .map_err(map_milvus_error)
            }
            Isolation::Shared => self.delete_tenant_rows(space).await,
        }
    }

    async fn health_now(&self) -> Result<(), VectorStoreError> {
        let request = CheckHealthRequest::builder()
            .build()
            .map_err(map_milvus_error)?;
        let response = self
            .client()
            .await?
            .check_health(request)
            .await
            .map_err(map_milvus_error)?;
        if response.is_healthy() {
            Ok(())
        } else {
            Err(VectorStoreError::Unavailable(format!(
                "Milvus reports itself unhealthy: {}",
                response.reasons().join("; ")
            )))
        }
    }
}

#[async_trait]
impl VectorStore for MilvusVectorStore {
    fn backend_name(&self) -> &'static str {
        "milvus"
    }

    async fn ensure_space(&self, space: &VectorSpace) -> Result<(), VectorStoreError> {
        self.schema_change("ensure_space", self.ensure_space_now(space))
            .await
    }

    async fn upsert(
        &self,
        space: &VectorSpace,
        points: &[VectorPoint],
    ) -> Result<(), VectorStoreError> {
        for point in points {
            validate_point(point)?;
        }
        let points = last_write_per_id(points);
        for batch in points.chunks(WRITE_BATCH) {
            self.request("upsert", self.write_batch(space, batch))
                .await?;
        }
        Ok(())
    }

    async fn delete(&self, space: &VectorSpace, ids: &[Uuid]) -> Result<(), VectorStoreError> {
        for batch in ids.chunks(DELETE_BATCH) {
            self.request("delete", self.delete_ids(space, batch))
                .await?;
        }
        Ok(())
    }

    async fn search(
        &self,
        space: &VectorSpace,
        query: VectorQuery<'_>,
    ) -> Result<Vec<Vec<ScoredId>>, VectorStoreError> {
        let VectorQuery {
            vectors: queries,
            limit,
            filter,
            ef,
        } = query;
        for query in queries {
            check_dimension(query)?;
        }
        let expression = search_expression(space, filter)?;
        if limit == 0 {
            return Ok(vec![Vec::new(); queries.len()]);
        }
        let mut results = Vec::with_capacity(queries.len());
        for chunk in queries.chunks(SEARCH_BATCH) {
            let vectors = chunk.iter().map(|query| query.to_vec()).collect();
            let answered = self
                .request(
                    "search",
                    self.search_now(space, vectors, limit, expression.clone(), ef),
                )
                .await?;
            results.extend(answered);
        }
        Ok(results)
    }

    async fn count(&self, space: &VectorSpace) -> Result<u64, VectorStoreError> {
        self.request("count", self.count_now(space)).await
    }

    async fn drop_space(&self, space: &VectorSpace) -> Result<(), VectorStoreError> {
        self.schema_change("drop_space", self.drop_space_now(space))
            .await
    }

    async fn health(&self) -> Result<(), VectorStoreError> {
        self.request("health", self.health_now()).await
    }
}

/// Applies `limit` to `operation`, so a hung Milvus surfaces as `Unavailable` instead of a hang.
async fn bounded<T>(
    limit: Duration,
    what: &str,
    operation: impl Future<Output = Result<T, VectorStoreError>>,
) -> Result<T, VectorStoreError> {
    tokio::time::timeout(limit, operation).await.map_err(|_| {
        VectorStoreError::Unavailable(format!("Milvus did not complete {what} within {limit:?}"))
    })?
}

fn connect_config(config: &MilvusConfig) -> ConnectConfig {
    // A few quick retries smooth over a restarting proxy; the SDK default (75 attempts with
    // backoff up to 3 s) would outlast every timeout of ours.
    let retry = RetryConfig::new()
        .max_attempts(3)
        .max_retry_timeout(config.request_timeout);
    let mut connect = ConnectConfig::new()
        .uri(config.url.clone())
        .connect_timeout(CONNECT_TIMEOUT)
        .rpc_timeout(config.request_timeout)
        .retry(retry)
        // The SDK's usage heartbeats are of no use to us and 2.3 has no endpoint for them.
        .telemetry(TelemetryConfig::new().enabled(false));
    if let Some(token) = &config.token {
        connect = connect.token(token.clone());
    }
    if let Some(database) = &config.database {
        connect = connect.database(database.clone());
    }
    connect
}

fn validate_url(url: &str) -> Result<(), VectorStoreError> {
    let host = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or_default();
    if host.is_empty() || host.starts_with(':') || host.starts_with('/') {
        return Err(VectorStoreError::Rejected(format!(
            "Milvus URL {url:?} must look like http://host:port"
        )));
    }
    Ok(())
}

/// Sorts an SDK error into the store's categories: transport trouble is `Unavailable`, anything
/// the server or the SDK refused is `Rejected`, a response we cannot read is `Storage`.
fn map_milvus_error(error: MilvusError) -> VectorStoreError {
    match error {
        MilvusError::Grpc(status) if is_transport_failure(i32::from(status.code())) => {
            VectorStoreError::Unavailable(status.to_string())
        }
        MilvusError::Timeout(_) | MilvusError::Cancelled(_) => {
            VectorStoreError::Unavailable(error.to_string())
        }
        MilvusError::RetryExhausted { source, .. } => map_milvus_error(*source),
        MilvusError::MalformedResponse(_) | MilvusError::Unexpected(_) => {
            VectorStoreError::Storage(format!("unreadable Milvus response: {error}"))
        }
        other => VectorStoreError::Rejected(other.to_string()),
    }
}

/// The HNSW candidate list size of a search: the tenant's choice or the default, and never
/// below `top_k`, since HNSW cannot return more hits than candidates.
fn search_ef(tenant_ef: Option<usize>, top_k: usize) -> usize {
    tenant_ef
        .unwrap_or(HNSW_EF_SEARCH)
        .max(top_k)
        .min(MILVUS_MAX_EF)
}

/// Keeps the failed step and collection in the message, sorted like any Milvus error.
fn map_collection_error(error: CollectionError) -> VectorStoreError {
    let message = error.to_string();
    match map_milvus_error(error.into_source()) {
        VectorStoreError::Unavailable(_) => VectorStoreError::Unavailable(message),
        VectorStoreError::Storage(_) => VectorStoreError::Storage(message),
        _ => VectorStoreError::Rejected(message),
    }
}

/// Whether a gRPC status code (numbering fixed by the gRPC spec) means the call never reached a
/// working server: CANCELLED, UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, UNAVAILABLE.
fn is_transport_failure(code: i32) -> bool {
    matches!(code, 1 | 2 | 4 | 8 | 10 | 14)
}

fn collection_of(space: &VectorSpace) -> String {
    collection_for(&space.tenant, space.isolation)
}

fn columns(space: &VectorSpace, points: &[&VectorPoint]) -> Vec<FieldData> {
    let strings = |field: &str, value: &dyn Fn(&VectorPoint) -> String| FieldData::VarChar {
        name: field.to_owned(),
        values: points.iter().map(|point| value(point)).collect(),
    };
    let tenant = space.tenant.as_str();
    vec![
        strings(FIELD_ID, &|point| point.memory_id.to_string()),
        strings(FIELD_TENANT, &|_| tenant.to_owned()),
        strings(FIELD_CATEGORY, &|point| point.category.clone()),
        strings(FIELD_USER, &|point| point.user_id.to_string()),
        FieldData::Int64 {
            name: FIELD_CREATED.to_owned(),
            values: points.iter().map(|point| point.created_at_ms).collect(),
        },
        FieldData::FloatVector {
            name: FIELD_VECTOR.to_owned(),
            values: points.iter().map(|point| point.vector.clone()).collect(),
        },
    ]
}

/// One point per id, the last one given, in first-seen order: a batch carrying the same primary
/// key twice would otherwise leave both rows in Milvus.
fn last_write_per_id(points: &[VectorPoint]) -> Vec<&VectorPoint> {
    let mut seen = HashSet::new();
    let mut unique: Vec<&VectorPoint> = points
        .iter()
        .rev()
        .filter(|point| seen.insert(point.memory_id))
        .collect();
    unique.reverse();
    unique
}

fn validate_point(point: &VectorPoint) -> Result<(), VectorStoreError> {
    check_dimension(&point.vector)?;
    category_literal(&point.category)?;
    Ok(())
}

fn check_dimension(vector: &[f32]) -> Result<(), VectorStoreError> {
    if vector.len() != VECTOR_DIMENSION {
        return Err(VectorStoreError::DimensionMismatch {
            expected: VECTOR_DIMENSION,
            actual: vector.len(),
        });
    }
    Ok(())
}

/// A category safe to splice into an expression (see [`validate_category`]).
fn category_literal(category: &str) -> Result<&str, VectorStoreError> {
    super::validate_category(category)
}

/// `tenant == "<name>"`. The name is a validated `TenantName` (lowercase letters, digits, `-`),
/// so it needs no escaping.
fn tenant_clause(space: &VectorSpace) -> String {
    format!("{FIELD_TENANT} == \"{}\"", space.tenant.as_str())
}

/// The tenant clause where the collection is shared; a dedicated collection holds one tenant only.
fn tenant_clause_for(space: &VectorSpace) -> Option<String> {
    match space.isolation {
        Isolation::Shared => Some(tenant_clause(space)),
        Isolation::Dedicated => None,
    }
}

/// `memory_id in ["…", …]`; hyphenated UUIDs contain only hex digits and `-`.
fn ids_clause(ids: &[Uuid]) -> String {
    let quoted: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
    format!("{FIELD_ID} in [{}]", quoted.join(", "))
}

fn search_expression(
    space: &VectorSpace,
    filter: &VectorFilter,
) -> Result<String, VectorStoreError> {
    let category = match &filter.category {
        Some(category) => Some(format!(
            "{FIELD_CATEGORY} == \"{}\"",
            category_literal(category)?
        )),
        None => None,
    };
    let user = filter
        .user_id
        .map(|user| format!("{FIELD_USER} == \"{user}\""));
    Ok(and_all([tenant_clause_for(space), category, user]))
}

/// Joins the present clauses with `&&`; empty when none is present (no filtering).
fn and_all<const N: usize>(clauses: [Option<String>; N]) -> String {
    let present: Vec<String> = clauses.into_iter().flatten().collect();
    present.join(" && ")
}

fn scored_ids(ids: &Ids, scores: &[f32]) -> Result<Vec<ScoredId>, VectorStoreError> {
    // An empty result carries no id column, which the SDK reads as empty integer ids.
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let Ids::VarChar(ids) = ids else {
        return Err(VectorStoreError::Storage(
            "Milvus returned integer ids for a VarChar primary key".to_owned(),
        ));
    };
    if ids.len() != scores.len() {
        return Err(VectorStoreError::Storage(format!(
            "Milvus returned {} ids but {} scores",
            ids.len(),
            scores.len()
        )));
    }
    ids.iter()
        .zip(scores)
        .map(|(id, score)| {
            let memory_id = parse_id(id)?;
            // With the COSINE metric Milvus 2.3 reports the similarity itself (higher is closer).
            Ok(ScoredId {
                memory_id,
                score: *score,
            })
        })
        .collect()
}

fn parse_id(id: &str) -> Result<Uuid, VectorStoreError> {
    Uuid::parse_str(id)
        .map_err(|_| VectorStoreError::Storage(format!("stored memory id {id:?} is not a UUID")))
}

#[cfg(test)]
mod tests {
    //! Unit tests of the expression building, then (in `servers`) the conformance checks
    //! against a real Milvus at `MEMORYC_TEST_MILVUS_URL` (default `http://127.0.0.1:19530`).

    use std::time::Instant;

    use memoryc_crds::layout::{SHARED_COLLECTION, TenantName};

    use super::*;
    use crate::stores::vector::conformance;

    fn space(name: &str, isolation: Isolation) -> VectorSpace {
        VectorSpace {
            tenant: TenantName::parse(name).expect("tenant name"),
            isolation,
        }
    }

    /// Two spaces with unique tenant names, so concurrent and repeated runs never collide.
    fn two_spaces(isolation: Isolation) -> (VectorSpace, VectorSpace) {
        let unique = || format!("t-{}", &Uuid::new_v4().simple().to_string()[..12]);
        (space(&unique(), isolation), space(&unique(), isolation))
    }

    fn store() -> MilvusVectorStore {
        let url = std::env::var("MEMORYC_TEST_MILVUS_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:19530".to_owned());
        MilvusVectorStore::connect(&url).expect("store")
    }

    #[test]
    fn shared_searches_are_scoped_to_the_tenant() {
        let user = Uuid::nil();
        let filter = VectorFilter {
            category: Some("TECHNICAL".to_owned()),
            user_id: Some(user),
        };
        let shared = space("acme", Isolation::Shared);
        assert_eq!(
            search_expression(&shared, &filter).expect("expression"),
            format!(r#"tenant == "acme" && category == "TECHNICAL" && user_id == "{user}""#)
        );
        let dedicated = space("acme", Isolation::Dedicated);
        assert_eq!(
            search_expression(&dedicated, &VectorFilter::default()).expect("expression"),
            ""
        );
    }

    #[test]
    fn hostile_categories_never_reach_an_expression() {
        for category in [
            "TECH\" || tenant != \"x",
            "technical",
            "",
            "TECH NICAL",
            "ÄRGER",
            "X".repeat(17).as_str(),
        ] {
            let filter = VectorFilter {
                category: Some(category.to_owned()),
                user_id: None,
            };
            let result = search_expression(&space("acme", Isolation::Shared), &filter);
            assert!(
                matches!(result, Err(VectorStoreError::Rejected(_))),
                "{category:?}"
            );
        }
    }

    #[test]
    fn deletes_name_ids_literally_and_stay_in_the_tenant() {
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let expression = and_all([
            tenant_clause_for(&space("acme", Isolation::Shared)),
            Some(ids_clause(&[id, id])),
        ]);
        assert_eq!(
            expression,
            r#"tenant == "acme" && memory_id in ["01234567-89ab-cdef-0123-456789abcdef", "01234567-89ab-cdef-0123-456789abcdef"]"#
        );
    }

    #[test]
    fn the_tenants_ef_is_used_but_never_below_top_k() {
        assert_eq!(search_ef(None, 10), HNSW_EF_SEARCH);
        assert_eq!(search_ef(Some(400), 10), 400);
        assert_eq!(search_ef(Some(16), 50), 50);
        assert_eq!(search_ef(None, 500), 500);
        assert_eq!(search_ef(Some(100_000), 10), MILVUS_MAX_EF);
    }

    #[test]
    fn rejects_urls_without_a_host() {
        for url in [
            "",
            "127.0.0.1:19530",
            "http://",
            "grpc://host:1",
            "http://:19530",
        ] {
            assert!(
                matches!(
                    MilvusVectorStore::connect(url),
                    Err(VectorStoreError::Rejected(_))
                ),
                "{url:?}"
            );
        }
    }

    #[tokio::test]
    async fn unreachable_milvus_fails_fast_as_unavailable() {
        // Port 9 (discard) is closed here; connecting is refused at once and retried until the
        // connect timeout.
        let store = MilvusVectorStore::connect("http://127.0.0.1:9").expect("lazy store");
        let started = Instant::now();
        let result = store.health().await;
        assert!(
            matches!(result, Err(VectorStoreError::Unavailable(_))),
            "{result:?}"
        );
        let result = store.count(&space("acme", Isolation::Shared)).await;
        assert!(
            matches!(result, Err(VectorStoreError::Unavailable(_))),
            "{result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "took {:?}",
            started.elapsed()
        );
    }

    mod servers {
        //! Against the running Milvus.

        use super::*;

        #[tokio::test]
        async fn health_reports_a_running_milvus() {
            store().health().await.expect("healthy");
        }

        #[tokio::test]
        async fn dedicated_drop_space_removes_the_collection() {
            let store = store();
            let (a, _) = two_spaces(Isolation::Dedicated);
            let collection = a.tenant.dedicated_collection();
            store.ensure_space(&a).await.expect("ensure");
            assert!(store.has_collection(&collection).await.expect("has"));
            store.drop_space(&a).await.expect("drop");
            assert!(!store.has_collection(&collection).await.expect("has"));
        }

        #[tokio::test]
        async fn shared_tenants_share_one_collection() {
            let store = store();
            let (a, b) = two_spaces(Isolation::Shared);
            store.ensure_space(&a).await.expect("ensure");
            store.drop_space(&a).await.expect("drop");
            assert!(
                store.has_collection(SHARED_COLLECTION).await.expect("has"),
                "dropping a shared tenant keeps the shared collection"
            );
            assert!(
                !store
                    .has_collection(&a.tenant.dedicated_collection())
                    .await
                    .expect("has")
            );
            assert!(
                !store
                    .has_collection(&b.tenant.dedicated_collection())
                    .await
                    .expect("has")
            );
        }

        /// One test per conformance check and layout.
        macro_rules! conformance_tests {
        ($($check:ident),* $(,)?) => {
            mod dedicated {
                use super::*;
                $(
                    #[tokio::test]
                    async fn $check() {
                        let (a, b) = two_spaces(Isolation::Dedicated);
                        conformance::$check(&store(), &a, &b).await;
                    }
                )*
            }
            mod shared {
                use super::*;
                $(
                    #[tokio::test]
                    async fn $check() {
                        let (a, b) = two_spaces(Isolation::Shared);
                        conformance::$check(&store(), &a, &b).await;
                    }
                )*
            }
            /// Behind the platform's coalescing of concurrent upserts.
            mod coalesced {
                use super::*;
                use crate::stores::vector::coalescing::CoalescingWrites;
                $(
                    #[tokio::test]
                    async fn $check() {
                        let (a, b) = two_spaces(Isolation::Shared);
                        let store = CoalescingWrites::new(store()).expect("runtime");
                        conformance::$check(&store, &a, &b).await;
                    }
                )*
            }
        };
    }

        conformance_tests!(
            ensure_space_is_idempotent,
            search_returns_nearest_first,
            search_many_answers_each_query,
            upsert_replaces_existing_point,
            delete_removes_points,
            filters_by_category_and_user,
            tenants_are_isolated,
            drop_space_removes_everything,
            dimension_mismatch_is_rejected,
        );
    }
}
