//! Validation: a MemoryTenant's spec turned into a `TenantPlan`, every name the other steps use,
//! or a `SpecError` that tells the user what to fix.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use memoryc_crds::contract::PLATFORM_PORT;
use memoryc_crds::layout::{
    EMBEDDING_MODEL, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, Isolation, SHARED_COLLECTION,
    TenantName, VECTOR_DIMENSION, collection_for, control_schema_for, is_local_embedding_model,
    validate_schema_name,
};
use memoryc_crds::milvus::{CollectionShape, Metric};
use memoryc_crds::resources::{MemoryTenant, MemoryTenantSpec, TenantOwner, VectorMetric};

use super::platform_settings::{PlatformSettingsPlan, TtlError};
use crate::settings::Settings;

/// A spec the operator cannot act on; the message is shown in the Ready condition.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("the object has no name or uid yet")]
    Incomplete,
    #[error("{0}")]
    InsightTtl(#[from] TtlError),
    #[error("invalid tenant name: {0}")]
    Name(String),
    #[error("invalid spec.storage.schemaName: {0}")]
    SchemaName(String),
    #[error(
        "spec.namespace {0:?} is reserved (kube-*, default and the operator's own namespace hold no tenant)"
    )]
    ReservedNamespace(String),
    #[error(
        "a Shared tenant's vectors live in the shared collection {SHARED_COLLECTION} ({VECTOR_DIMENSION} dimensions, COSINE, HNSW M={HNSW_M} efConstruction={HNSW_EF_CONSTRUCTION}); use isolation Dedicated for other index settings (spec.vectors.index.ef may differ)"
    )]
    SharedVectors,
    #[error(
        "spec.embedding.model {0:?} is not served: the platform embeds with its local model {EMBEDDING_MODEL} ({VECTOR_DIMENSION} dimensions)"
    )]
    EmbeddingModel(String),
    #[error(
        "spec.embedding.providerBinding {0:?}: embedding through an LLMProvider binding is not available; remove it to use the platform's local model {EMBEDDING_MODEL}"
    )]
    EmbeddingProvider(String),
    #[error(
        "spec.vectors.dimension {0} does not match the embedding model {EMBEDDING_MODEL}, which produces {VECTOR_DIMENSION}-dimensional vectors"
    )]
    Dimension(u32),
    #[error(
        "spec.vectors.metric {0}: the platform ranks memories by cosine similarity, so the metric must be COSINE"
    )]
    Metric(&'static str),
    #[error(
        "this installation runs no shared platform (the operator's shared platform URL is empty), so it serves Dedicated tenants only; set spec.isolation: Dedicated"
    )]
    NoSharedPlatform,
    #[error(
        "Milvus authentication is on, and a Dedicated platform would need a Milvus user of its own limited to its collection, which this operator does not make yet; use isolation Shared"
    )]
    DedicatedNeedsMilvusUser,
}

/// Namespaces no tenant may be put in: Kubernetes' own, `default`, and the operator's.
pub fn is_reserved_namespace(namespace: &str, settings: &Settings) -> bool {
    namespace.starts_with("kube-")
        || namespace == "default"
        || namespace == settings.system_namespace
}

/// Vector settings of the tenant's collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorPlan {
    pub dimension: u32,
    pub metric: VectorMetric,
    pub m: u32,
    pub ef_construction: u32,
    pub ef: u32,
}

impl VectorPlan {
    /// The collection and index Milvus builds for these settings (`ef` is a search setting).
    pub fn shape(&self) -> CollectionShape {
        CollectionShape {
            dimension: self.dimension,
            metric: match self.metric {
                VectorMetric::COSINE => Metric::Cosine,
                VectorMetric::L2 => Metric::L2,
                VectorMetric::IP => Metric::Ip,
            },
            m: self.m,
            ef_construction: self.ef_construction,
        }
    }
}

/// Everything about one tenant that the later steps need, derived once.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantPlan {
    pub tenant: TenantName,
    /// `metadata.uid`; the tenant's id in the platform registry when it registers it first.
    pub uid: String,
    pub display_name: String,
    pub isolation: Isolation,
    pub namespace: String,
    pub schema: String,
    pub control_schema: String,
    /// The tenant's login role (in its credentials Secret; the shared platform becomes it).
    pub role: String,
    /// The `NOLOGIN` role owning the tenant's schemas; migrations run as it.
    pub owner_role: String,
    /// The login the shared platform uses for this tenant alone (Shared tenants).
    pub platform_login: String,
    pub collection: String,
    pub vectors: VectorPlan,
    pub credentials_secret: String,
    /// Name of the ServiceAccount, Deployment, Service and PodDisruptionBudget of a dedicated
    /// platform.
    pub platform_name: String,
    pub platform_replicas: i32,
    pub platform_image: String,
    pub api_endpoint: String,
    pub owners: Vec<TenantOwner>,
    pub owner_reference: OwnerReference,
    /// PII policy, rate limit and analytics, as the platform applies them.
    pub platform_settings: PlatformSettingsPlan,
    /// The embedding model a dedicated platform is told to run (checked to be the local one).
    pub embedding_model: String,
}

impl TenantPlan {
    pub fn for_tenant(tenant: &MemoryTenant, settings: &Settings) -> Result<Self, SpecError> {
        let plan = Self::for_cleanup(tenant, settings)?;
        if plan.api_endpoint.is_empty() {
            return Err(SpecError::NoSharedPlatform);
        }
        if plan.is_dedicated() && settings.milvus_authenticated {
            return Err(SpecError::DedicatedNeedsMilvusUser);
        }
        Ok(plan)
    }

    /// The plan [`Self::for_tenant`] makes, also where this installation can no longer serve
    /// the tenant (a Shared tenant, provisioned before the shared platform was switched off):
    /// enough to remove what was provisioned. Its `api_endpoint` is then empty.
    pub fn for_cleanup(tenant: &MemoryTenant, settings: &Settings) -> Result<Self, SpecError> {
        let (Some(name), Some(uid)) = (tenant.meta().name.clone(), tenant.meta().uid.clone())
        else {
            return Err(SpecError::Incomplete);
        };
        let owner_reference = tenant
            .controller_owner_ref(&())
            .ok_or(SpecError::Incomplete)?;
        let spec = &tenant.spec;
        let name = TenantName::parse(&name).map_err(|e| SpecError::Name(e.to_string()))?;
        let schema = match &spec.storage.schema_name {
            Some(schema) => {
                validate_schema_name(schema).map_err(|e| SpecError::SchemaName(e.to_string()))?;
                schema.clone()
            }
            None => name.schema_name(),
        };
        let vectors = VectorPlan {
            dimension: positive(spec.vectors.dimension),
            metric: spec.vectors.metric,
            m: positive(spec.vectors.index.m),
            ef_construction: positive(spec.vectors.index.ef_construction),
            ef: positive(spec.vectors.index.ef),
        };
        check_embedding(spec, &vectors)?;
        if spec.isolation == Isolation::Shared && vectors.shape() != shared_vectors().shape() {
            return Err(SpecError::SharedVectors);
        }
        let namespace = spec
            .namespace
            .clone()
            .unwrap_or_else(|| format!("memoryc-{name}"));
        if is_reserved_namespace(&namespace, settings) {
            return Err(SpecError::ReservedNamespace(namespace));
        }
        let platform_name = format!("{name}-platform");
        let api_endpoint = match spec.isolation {
            Isolation::Shared => settings
                .shared_platform_url
                .as_deref()
                .map(|url| url.trim_end_matches('/').to_string())
                .unwrap_or_default(),
            Isolation::Dedicated => {
                format!("http://{platform_name}.{namespace}.svc:{PLATFORM_PORT}")
            }
        };
        Ok(Self {
            uid,
            display_name: spec
                .display_name
                .clone()
                .unwrap_or_else(|| name.to_string()),
            isolation: spec.isolation,
            control_schema: control_schema_for(
                &name,
                spec.isolation,
                &settings.shared_control_schema,
            ),
            role: name.role_name(),
            owner_role: name.owner_role_name(),
            platform_login: name.platform_login_name(),
            collection: collection_for(&name, spec.isolation),
            credentials_secret: format!("{name}-credentials"),
            platform_replicas: spec.platform.replicas.max(1),
            platform_image: spec
                .platform
                .image
                .clone()
                .unwrap_or_else(|| settings.platform_image.clone()),
            owners: spec.owners.clone(),
            tenant: name,
            namespace,
            schema,
            vectors,
            platform_name,
            api_endpoint,
            owner_reference,
            platform_settings: PlatformSettingsPlan::from_spec(spec)?,
            embedding_model: spec.embedding.model.trim().to_string(),
        })
    }

    pub fn is_dedicated(&self) -> bool {
        self.isolation == Isolation::Dedicated
    }
}

/// The shared collection's settings, which a Shared tenant cannot change.
pub fn shared_vectors() -> VectorPlan {
    VectorPlan {
        dimension: VECTOR_DIMENSION as u32,
        metric: VectorMetric::COSINE,
        m: HNSW_M as u32,
        ef_construction: HNSW_EF_CONSTRUCTION as u32,
        ef: HNSW_EF_SEARCH as u32,
    }
}

/// The platform embeds with its local model and ranks by cosine similarity: the collection must
/// hold that model's vectors under that metric, or every write or search would fail later.
fn check_embedding(spec: &MemoryTenantSpec, vectors: &VectorPlan) -> Result<(), SpecError> {
    if let Some(binding) = &spec.embedding.provider_binding {
        return Err(SpecError::EmbeddingProvider(binding.clone()));
    }
    if !is_local_embedding_model(&spec.embedding.model) {
        return Err(SpecError::EmbeddingModel(spec.embedding.model.clone()));
    }
    if vectors.dimension as usize != VECTOR_DIMENSION {
        return Err(SpecError::Dimension(vectors.dimension));
    }
    if vectors.metric != VectorMetric::COSINE {
        return Err(SpecError::Metric(vectors.metric.as_str()));
    }
    Ok(())
}

/// The schema bounds every number below at >= 1; this keeps a hand-made object from wrapping.
fn positive(value: i32) -> u32 {
    u32::try_from(value.max(1)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::tenant;

    #[test]
    fn derives_names_from_the_tenant() {
        let plan =
            TenantPlan::for_tenant(&tenant("acme", Isolation::Dedicated), &Settings::local())
                .expect("plan");
        assert_eq!(plan.namespace, "memoryc-acme");
        assert_eq!(plan.schema, "tenant_acme");
        assert_eq!(plan.control_schema, "memoryc_control_acme");
        assert_eq!(plan.role, "memoryc_acme");
        assert_eq!(plan.collection, "memoryc_tenant_acme");
        assert_eq!(plan.credentials_secret, "acme-credentials");
        assert_eq!(
            plan.api_endpoint,
            "http://acme-platform.memoryc-acme.svc:8080"
        );
        assert_eq!(plan.owner_reference.kind, "MemoryTenant");
        assert_eq!(plan.owner_reference.controller, Some(true));
    }

    #[test]
    fn shared_tenants_use_the_shared_platform_and_collection() {
        let plan = TenantPlan::for_tenant(&tenant("acme", Isolation::Shared), &Settings::local())
            .expect("plan");
        assert_eq!(plan.control_schema, "memoryc_control");
        assert_eq!(plan.collection, SHARED_COLLECTION);
        assert_eq!(
            Some(plan.api_endpoint),
            Settings::local().shared_platform_url
        );
    }

    #[test]
    fn with_milvus_authentication_dedicated_tenants_are_refused() {
        let settings = Settings {
            milvus_authenticated: true,
            ..Settings::local()
        };
        assert!(matches!(
            TenantPlan::for_tenant(&tenant("acme", Isolation::Dedicated), &settings),
            Err(SpecError::DedicatedNeedsMilvusUser)
        ));
        assert!(TenantPlan::for_tenant(&tenant("acme", Isolation::Shared), &settings).is_ok());
    }

    #[test]
    fn without_a_shared_platform_shared_tenants_are_refused_but_can_be_removed() {
        let settings = Settings {
            shared_platform_url: None,
            ..Settings::local()
        };
        let shared = tenant("acme", Isolation::Shared);
        assert!(matches!(
            TenantPlan::for_tenant(&shared, &settings),
            Err(SpecError::NoSharedPlatform)
        ));
        let removal = TenantPlan::for_cleanup(&shared, &settings).expect("removal plan");
        assert_eq!(removal.schema, "tenant_acme");
        assert_eq!(removal.collection, SHARED_COLLECTION);
        let dedicated = TenantPlan::for_tenant(&tenant("acme", Isolation::Dedicated), &settings)
            .expect("dedicated tenants need no shared platform");
        assert_eq!(
            dedicated.api_endpoint,
            "http://acme-platform.memoryc-acme.svc:8080"
        );
    }

    #[test]
    fn overrides_are_honoured_and_checked() {
        let mut t = tenant("acme", Isolation::Dedicated);
        t.spec.storage.schema_name = Some("acme_data".into());
        t.spec.namespace = Some("team-acme".into());
        let plan = TenantPlan::for_tenant(&t, &Settings::local()).expect("plan");
        assert_eq!(plan.schema, "acme_data");
        assert_eq!(plan.namespace, "team-acme");
        t.spec.storage.schema_name = Some("pg_catalog".into());
        assert!(matches!(
            TenantPlan::for_tenant(&t, &Settings::local()),
            Err(SpecError::SchemaName(_))
        ));
    }

    #[test]
    fn shared_tenants_cannot_choose_index_settings() {
        let mut t = tenant("acme", Isolation::Shared);
        t.spec.vectors.index.m = 32;
        assert_eq!(
            TenantPlan::for_tenant(&t, &Settings::local()),
            Err(SpecError::SharedVectors)
        );
        t.spec.isolation = Isolation::Dedicated;
        let plan = TenantPlan::for_tenant(&t, &Settings::local()).expect("dedicated may");
        assert_eq!(plan.vectors.m, 32);
        assert_eq!(plan.vectors.shape().m, 32);
    }

    #[test]
    fn every_tenant_chooses_its_search_ef() {
        let mut t = tenant("acme", Isolation::Shared);
        t.spec.vectors.index.ef = 300;
        let plan = TenantPlan::for_tenant(&t, &Settings::local()).expect("shared may");
        assert_eq!(plan.platform_settings.search_ef, 300);
    }

    #[test]
    fn only_the_local_model_and_its_vectors_are_accepted() {
        let accepted = |edit: fn(&mut MemoryTenant)| {
            let mut t = tenant("acme", Isolation::Dedicated);
            edit(&mut t);
            TenantPlan::for_tenant(&t, &Settings::local()).map(|_| ())
        };
        assert_eq!(accepted(|_| {}), Ok(()));
        assert_eq!(
            accepted(|t| t.spec.embedding.model = "sentence-transformers/all-MiniLM-L6-v2".into()),
            Ok(())
        );
        assert_eq!(
            accepted(|t| t.spec.embedding.model = "text-embedding-3-small".into()),
            Err(SpecError::EmbeddingModel("text-embedding-3-small".into()))
        );
        assert_eq!(
            accepted(|t| t.spec.embedding.provider_binding = Some("openai".into())),
            Err(SpecError::EmbeddingProvider("openai".into()))
        );
        assert_eq!(
            accepted(|t| t.spec.vectors.dimension = 768),
            Err(SpecError::Dimension(768))
        );
        assert_eq!(
            accepted(|t| t.spec.vectors.metric = VectorMetric::L2),
            Err(SpecError::Metric("L2"))
        );
        let message = accepted(|t| t.spec.vectors.dimension = 768)
            .expect_err("refused")
            .to_string();
        assert!(message.contains("384"), "{message}");
    }

    #[test]
    fn names_that_break_identifiers_are_refused() {
        let t = tenant("Bad_Name", Isolation::Shared);
        assert!(matches!(
            TenantPlan::for_tenant(&t, &Settings::local()),
            Err(SpecError::Name(_))
        ));
    }
}
