//! The memory-vector collection in Milvus, built the same way by the operator (which provisions
//! tenants) and the platform (which creates collections for tenants it registers itself): the
//! schema from [`crate::contract::milvus_fields`], the HNSW index, and `ensure_collection`, which
//! creates, indexes and loads a collection as far as any of that is missing.
//!
//! Every step checks before it changes, so a collection whose set-up was interrupted half-way is
//! completed by the next call, and a collection created concurrently by another process is taken
//! as it is.

use std::collections::HashMap;

use milvus::v2::prelude::{
    ClientV2, CollectionSchema, CreateCollectionRequest, CreateIndexRequest, DataType,
    Error as MilvusError, FieldSchema, GetLoadStateRequest, HasCollectionRequest, IndexParam,
    IndexType, LoadCollectionRequest, LoadState, MetricType,
};

use crate::contract::milvus_fields as fields;
use crate::layout::{HNSW_EF_CONSTRUCTION, HNSW_M, Isolation, VECTOR_DIMENSION};

/// Shape of a collection's vectors and of its HNSW index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectionShape {
    pub dimension: u32,
    pub metric: Metric,
    /// HNSW graph degree.
    pub m: u32,
    /// HNSW build-time candidate list size.
    pub ef_construction: u32,
}

impl Default for CollectionShape {
    /// The platform's own: the local model's dimension, COSINE, HNSW M=16 efConstruction=200.
    fn default() -> Self {
        Self {
            dimension: VECTOR_DIMENSION as u32,
            metric: Metric::Cosine,
            m: HNSW_M as u32,
            ef_construction: HNSW_EF_CONSTRUCTION as u32,
        }
    }
}

impl CollectionShape {
    /// `HNSW M=16 efConstruction=200 metric COSINE`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "HNSW M={} efConstruction={} metric {}",
            self.m,
            self.ef_construction,
            self.metric.as_str()
        )
    }
}

/// Similarity metric of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Cosine,
    L2,
    Ip,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "COSINE",
            Metric::L2 => "L2",
            Metric::Ip => "IP",
        }
    }

    pub fn milvus(self) -> MetricType {
        match self {
            Metric::Cosine => MetricType::Cosine,
            Metric::L2 => MetricType::L2,
            Metric::Ip => MetricType::Ip,
        }
    }
}

/// What [`ensure_collection`] had to do; anything true for an existing collection is repair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnsureReport {
    pub created: bool,
    pub loaded: bool,
}

/// A failed step of [`ensure_collection`], naming the collection.
#[derive(Debug, thiserror::Error)]
pub enum CollectionError {
    #[error("cannot check collection {collection}: {source}")]
    Check {
        collection: String,
        source: MilvusError,
    },
    #[error("cannot create collection {collection}: {source}")]
    Create {
        collection: String,
        source: MilvusError,
    },
    #[error("cannot index collection {collection} with {index}: {source}")]
    Index {
        collection: String,
        index: String,
        source: MilvusError,
    },
    #[error("cannot load collection {collection}: {source}")]
    Load {
        collection: String,
        source: MilvusError,
    },
}

impl CollectionError {
    /// The Milvus error underneath, for callers that classify transport failures.
    pub fn into_source(self) -> MilvusError {
        match self {
            CollectionError::Check { source, .. }
            | CollectionError::Create { source, .. }
            | CollectionError::Index { source, .. }
            | CollectionError::Load { source, .. } => source,
        }
    }
}

/// The collection's fields. The shared collection's `tenant` field is its partition key, so
/// each shared tenant's rows sit together and its searches touch one partition.
pub fn collection_schema(isolation: Isolation, dimension: u32) -> CollectionSchema {
    let varchar = |name: &str, max_length: u32| {
        FieldSchema::new()
            .name(name)
            .data_type(DataType::VarChar)
            .max_length(max_length)
    };
    CollectionSchema::new()
        .add_field(
            varchar(fields::ID, fields::UUID_LEN)
                .primary_key(true)
                .auto_id(false),
        )
        .add_field(
            varchar(fields::TENANT, fields::TENANT_LEN)
                .partition_key(isolation == Isolation::Shared),
        )
        .add_field(varchar(fields::CATEGORY, fields::CATEGORY_LEN as u32))
        .add_field(varchar(fields::USER, fields::UUID_LEN))
        .add_field(
            FieldSchema::new()
                .name(fields::CREATED)
                .data_type(DataType::Int64),
        )
        .add_field(
            FieldSchema::new()
                .name(fields::VECTOR)
                .data_type(DataType::FloatVector)
                .dimension(dimension),
        )
}

/// The HNSW index on the vector field.
pub fn vector_index(shape: &CollectionShape) -> IndexParam {
    IndexParam::new()
        .field_name(fields::VECTOR)
        .index_type(IndexType::Hnsw)
        .metric_type(shape.metric.milvus())
        .extra_params(HashMap::from([
            ("M".to_owned(), shape.m.to_string()),
            (
                "efConstruction".to_owned(),
                shape.ef_construction.to_string(),
            ),
        ]))
}

pub async fn has_collection(client: &ClientV2, collection: &str) -> Result<bool, MilvusError> {
    let request = HasCollectionRequest::builder()
        .collection_name(collection)
        .build()?;
    Ok(client.has_collection(request).await?.exists())
}

pub async fn load_state(client: &ClientV2, collection: &str) -> Result<LoadState, MilvusError> {
    let request = GetLoadStateRequest::builder()
        .collection_name(collection)
        .build()?;
    Ok(client.get_load_state(request).await?.state())
}

/// Creates the collection if it is missing, indexes it (a no-op when the same index exists; a
/// different one is refused) and loads it unless it is loaded.
pub async fn ensure_collection(
    client: &ClientV2,
    collection: &str,
    isolation: Isolation,
    shape: &CollectionShape,
) -> Result<EnsureReport, CollectionError> {
    let check = |source| CollectionError::Check {
        collection: collection.to_owned(),
        source,
    };
    let mut report = EnsureReport::default();
    if !has_collection(client, collection).await.map_err(check)? {
        let create = |source| CollectionError::Create {
            collection: collection.to_owned(),
            source,
        };
        let request = CreateCollectionRequest::builder()
            .collection_name(collection)
            .description("Memory-C* memory vectors")
            .schema(collection_schema(isolation, shape.dimension))
            .build()
            .map_err(create)?;
        match client.create_collection(request).await {
            Ok(()) => report.created = true,
            // Another process may have created it between the check and now.
            Err(_) if has_collection(client, collection).await.map_err(check)? => {}
            Err(error) => return Err(create(error)),
        }
    }
    let index = |source| CollectionError::Index {
        collection: collection.to_owned(),
        index: shape.describe(),
        source,
    };
    let request = CreateIndexRequest::builder()
        .collection_name(collection)
        .index_param(vector_index(shape))
        .build()
        .map_err(index)?;
    client.create_index(request).await.map_err(index)?;
    if load_state(client, collection).await.map_err(check)? != LoadState::Loaded {
        let load = |source| CollectionError::Load {
            collection: collection.to_owned(),
            source,
        };
        let request = LoadCollectionRequest::builder()
            .collection_name(collection)
            .build()
            .map_err(load)?;
        client.load_collection(request).await.map_err(load)?;
        report.loaded = true;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_shared_layout_partitions_by_tenant() {
        for (isolation, partitioned) in [(Isolation::Shared, true), (Isolation::Dedicated, false)] {
            let schema = collection_schema(isolation, 384);
            let tenant = schema
                .get_fields()
                .iter()
                .find(|field| field.get_name() == fields::TENANT)
                .expect("tenant field");
            assert_eq!(tenant.is_partition_key(), partitioned, "{isolation:?}");
        }
    }

    #[test]
    fn the_index_carries_the_shape() {
        let shape = CollectionShape {
            dimension: 768,
            metric: Metric::L2,
            m: 32,
            ef_construction: 400,
        };
        let index = vector_index(&shape);
        assert_eq!(index.get_metric_type(), Some(MetricType::L2));
        assert_eq!(
            index.get_extra_params().get("M").map(String::as_str),
            Some("32")
        );
        assert_eq!(
            index
                .get_extra_params()
                .get("efConstruction")
                .map(String::as_str),
            Some("400")
        );
        assert_eq!(shape.describe(), "HNSW M=32 efConstruction=400 metric L2");
    }
}
