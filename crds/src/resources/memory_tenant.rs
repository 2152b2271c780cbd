//! `MemoryTenant`: one tenant of the platform and everything provisioned for it.

// kube-derive's repeated `printcolumn(type_ = ...)` arguments read as duplicates to clippy.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::status::Phase;
use crate::layout::{
    HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, Isolation, VECTOR_DIMENSION, VECTOR_METRIC,
};

/// A tenant of Memory-C*: a PostgreSQL schema and role, a Milvus collection (or a partition of
/// the shared one), a credentials Secret and, when dedicated, a platform Deployment of its own.
/// The tenant's name is the object's name: lowercase letters, digits and '-', at most 40.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "memoryc.dev",
    version = "v1alpha1",
    kind = "MemoryTenant",
    plural = "memorytenants",
    shortname = "mt",
    shortname = "tenant",
    category = "memoryc",
    status = "MemoryTenantStatus",
    derive = "PartialEq",
    doc = "A Memory-C* tenant: storage, credentials and (when dedicated) a platform of its own.",
    validation = Rule::new("self.metadata.name.size() <= 40 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$') && !(self.metadata.name in ['control', 'platform', 'operator'])")
        .message("metadata.name is the tenant name: at most 40 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit; control, platform and operator are reserved"),
    printcolumn(name = "Isolation", type_ = "string", json_path = ".spec.isolation"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Namespace", type_ = "string", json_path = ".status.namespace"),
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".status.apiEndpoint", priority = 1),
    printcolumn(name = "Schema", type_ = "string", json_path = ".status.schema", priority = 1),
    printcolumn(name = "Collection", type_ = "string", json_path = ".status.collection", priority = 1),
    printcolumn(name = "Message", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].message", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.__namespace__) == has(oldSelf.__namespace__) && (!has(self.__namespace__) || self.__namespace__ == oldSelf.__namespace__)")
        .message("spec.namespace cannot be changed after creation")
)]
pub struct MemoryTenantSpec {
    /// Human-readable name shown in the admin console. Defaults to the tenant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub display_name: Option<String>,

    /// Users and groups who administer the tenant: they get the tenant-admin role in its
    /// namespace (read its credentials Secret, manage its IntegrationBindings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<TenantOwner>,

    /// Namespace holding the tenant's Secret, bindings and (when dedicated) platform. Created if
    /// missing; an existing one is adopted (never deleted) only when it carries the label
    /// `memoryc.dev/tenant=<tenant name>`, else the tenant is refused. `kube-*`, `default` and
    /// the operator's own namespace are refused. Defaults to `memoryc-<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    #[x_kube(validation = Rule::new("!self.startsWith('kube-') && self != 'default'").message("spec.namespace must not be a system namespace (kube-*, default)"))]
    pub namespace: Option<String>,

    /// `Shared`: served by the shared platform, vectors in the shared collection.
    /// `Dedicated`: a collection and a platform Deployment of its own. Cannot be changed.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.isolation cannot be changed after creation"))]
    pub isolation: Isolation,

    #[serde(default)]
    pub storage: StorageSpec,

    #[serde(default)]
    pub vectors: VectorSpec,

    #[serde(default)]
    pub embedding: EmbeddingSpec,

    #[serde(default)]
    pub analytics: AnalyticsSpec,

    #[serde(default)]
    pub pii: PiiPolicy,

    #[serde(default)]
    pub rate_limits: RateLimits,

    /// Settings of the tenant's own platform; used when `isolation` is `Dedicated`.
    #[serde(default)]
    pub platform: PlatformSpec,

    /// What deleting this object does to the tenant's data: `Retain` (default) keeps the schema
    /// and the vectors and disables the credentials; `Delete` erases them.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// While true the operator changes nothing for this tenant (and does not clean up on delete).
    #[serde(default)]
    pub paused: bool,
}

/// Someone with the tenant-admin role.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantOwner {
    pub kind: OwnerKind,
    /// User or group name as the cluster's authentication reports it.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum OwnerKind {
    User,
    Group,
}

/// Where the tenant's rows live.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.schemaName) == has(oldSelf.schemaName) && (!has(self.schemaName) || self.schemaName == oldSelf.schemaName)")
        .message("spec.storage.schemaName cannot be changed after creation")
)]
pub struct StorageSpec {
    /// PostgreSQL schema name instead of `tenant_<name>`. Lowercase letters, digits and '_';
    /// `public`, `pg_*`, `information_schema` and `memoryc_control*` are reserved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z_][a-z0-9_]*$"))]
    #[x_kube(validation = Rule::new("self != 'public' && self != 'information_schema' && !self.startsWith('pg_') && !self.startsWith('memoryc_control')").message("this schema name is reserved"))]
    pub schema_name: Option<String>,

    /// Most memories the tenant may store; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_memories: Option<i64>,
}

/// How memory vectors are stored and searched.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VectorSpec {
    /// Embedding dimension; must be the embedding model's (384 for all-MiniLM-L6-v2). Cannot
    /// be changed: the collection is built for it.
    #[serde(default = "default_dimension")]
    #[schemars(range(min = 2, max = 32768))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.vectors.dimension cannot be changed after creation"))]
    pub dimension: i32,

    /// Similarity metric; the platform ranks by cosine similarity, so only COSINE is served.
    /// Cannot be changed: the index is built for it.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.vectors.metric cannot be changed after creation"))]
    pub metric: VectorMetric,

    #[serde(default)]
    pub index: VectorIndexSpec,
}

impl Default for VectorSpec {
    fn default() -> Self {
        Self {
            dimension: default_dimension(),
            metric: VectorMetric::default(),
            index: VectorIndexSpec::default(),
        }
    }
}

fn default_dimension() -> i32 {
    VECTOR_DIMENSION as i32
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
#[allow(clippy::upper_case_acronyms)]
pub enum VectorMetric {
    #[default]
    COSINE,
    L2,
    IP,
}

impl VectorMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            VectorMetric::COSINE => VECTOR_METRIC,
            VectorMetric::L2 => "L2",
            VectorMetric::IP => "IP",
        }
    }
}

/// The approximate-nearest-neighbour index of the collection.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VectorIndexSpec {
    #[serde(default, rename = "type")]
    pub index_type: IndexType,
    /// HNSW graph degree.
    #[serde(default = "default_m", rename = "M")]
    #[schemars(range(min = 2, max = 2048))]
    pub m: i32,
    /// HNSW build-time candidate list size.
    #[serde(default = "default_ef_construction")]
    #[schemars(range(min = 1, max = 65535))]
    pub ef_construction: i32,
    /// HNSW search-time candidate list size of the tenant's searches (never below the number
    /// of results asked for). Shared tenants may set it too; it can be changed at any time.
    #[serde(default = "default_ef")]
    #[schemars(range(min = 1, max = 32768))]
    pub ef: i32,
}

impl Default for VectorIndexSpec {
    fn default() -> Self {
        Self {
            index_type: IndexType::default(),
            m: default_m(),
            ef_construction: default_ef_construction(),
            ef: default_ef(),
        }
    }
}

fn default_m() -> i32 {
    HNSW_M as i32
}
fn default_ef_construction() -> i32 {
    HNSW_EF_CONSTRUCTION as i32
}
fn default_ef() -> i32 {
    HNSW_EF_SEARCH as i32
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
#[allow(clippy::upper_case_acronyms)]
pub enum IndexType {
    #[default]
    HNSW,
}

/// Which model turns text into vectors.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddingSpec {
    /// Model name. The platform embeds with its local `all-MiniLM-L6-v2` (also accepted as
    /// `sentence-transformers/all-MiniLM-L6-v2`); other names are refused in the status.
    #[serde(default = "default_model")]
    #[schemars(length(min = 1, max = 256))]
    pub model: String,
    /// An `LLMProvider` IntegrationBinding in the tenant's namespace that serves the model.
    /// Reserved: embedding through a provider is not available yet and is refused in the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_binding: Option<String>,
}

impl Default for EmbeddingSpec {
    fn default() -> Self {
        Self {
            model: default_model(),
            provider_binding: None,
        }
    }
}

fn default_model() -> String {
    "all-MiniLM-L6-v2".to_string()
}

/// Scheduled analytics that turn memories and events into insights.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsSpec {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Five-field cron schedule (UTC).
    #[serde(default = "default_schedule")]
    #[schemars(regex(pattern = r"^\S+\s+\S+\s+\S+\s+\S+\s+\S+$"))]
    pub schedule: String,
    /// How long an insight lives, e.g. `168h` or `7d`.
    #[serde(default = "default_insight_ttl")]
    #[schemars(regex(pattern = r"^([0-9]+(s|m|h|d))+$"))]
    pub insight_ttl: String,
    /// Insights below this confidence are not kept.
    #[serde(default = "default_confidence")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence_threshold: f64,
}

impl Default for AnalyticsSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            schedule: default_schedule(),
            insight_ttl: default_insight_ttl(),
            confidence_threshold: default_confidence(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_schedule() -> String {
    "0 */6 * * *".to_string()
}
fn default_insight_ttl() -> String {
    "168h".to_string()
}
fn default_confidence() -> f64 {
    0.7
}

/// What happens to personal data found in memories.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct PiiPolicy {
    #[serde(default)]
    pub action: PiiAction,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum PiiAction {
    /// Store as given.
    Allow,
    /// Replace detected personal data before storing.
    #[default]
    Redact,
    /// Refuse memories containing personal data.
    Reject,
}

/// Request limits per API key.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimits {
    /// Requests per API key (or token), route and minute. All of the tenant's credentials
    /// together get ten times this per route (the platform's `rate_limit_tenant_multiple`).
    #[serde(default = "default_rpm")]
    #[schemars(range(min = 1))]
    pub requests_per_minute: i32,
    /// Requests per API key (or token), route and second.
    #[serde(default = "default_burst")]
    #[schemars(range(min = 1))]
    pub burst: i32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            requests_per_minute: default_rpm(),
            burst: default_burst(),
        }
    }
}

fn default_rpm() -> i32 {
    600
}
fn default_burst() -> i32 {
    100
}

/// The tenant's own platform (dedicated isolation only).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformSpec {
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 50))]
    pub replicas: i32,
    /// Platform image; defaults to the one the operator is configured with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl Default for PlatformSpec {
    fn default() -> Self {
        Self {
            replicas: default_replicas(),
            image: None,
        }
    }
}

fn default_replicas() -> i32 {
    2
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum DeletionPolicy {
    /// Keep the schema, the vectors and the registration; disable the credentials.
    #[default]
    Retain,
    /// Drop the schema and role, the collection (or the tenant's rows in the shared one) and the
    /// registration.
    Delete,
}

/// What the operator last observed and did.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryTenantStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// `Ready`, `DatabaseReady`, `VectorStoreReady`, `CredentialsReady`, `PlatformReady`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Namespace holding the tenant's objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// PostgreSQL schema of the tenant's tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Milvus collection of the tenant's vectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// Secret (in `namespace`) with the database credentials and the admin API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
    /// Base URL of the platform API serving the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_endpoint: Option<String>,
}
