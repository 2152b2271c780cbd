//! The custom resources of group `memoryc.dev`, version `v1alpha1`.

pub mod integration_binding;
pub mod memory_tenant;
pub mod status;

pub use integration_binding::{
    GitHubProjectsSettings, IntegrationBinding, IntegrationBindingSpec, IntegrationBindingStatus,
    IntegrationKind, LlmProviderSettings, SecretReference, TenantReference, WebhookSettings,
};
pub use memory_tenant::{
    AnalyticsSpec, DeletionPolicy, EmbeddingSpec, IndexType, MemoryTenant, MemoryTenantSpec,
    MemoryTenantStatus, OwnerKind, PiiAction, PiiPolicy, PlatformSpec, RateLimits, StorageSpec,
    TenantOwner, VectorIndexSpec, VectorMetric, VectorSpec,
};
pub use status::{Phase, condition_types};

/// API group of every Memory-C* resource.
pub const GROUP: &str = "memoryc.dev";
/// API version of the resources in this crate.
pub const VERSION: &str = "v1alpha1";

/// File names under `crds/` and the YAML of each CustomResourceDefinition, as `crdgen` writes
/// them and the chart installs them.
pub fn crd_documents() -> Result<Vec<(&'static str, String)>, serde_yaml::Error> {
    use kube::CustomResourceExt;
    Ok(vec![
        (
            "memorytenants.yaml",
            serde_yaml::to_string(&MemoryTenant::crd())?,
        ),
        (
            "integrationbindings.yaml",
            serde_yaml::to_string(&IntegrationBinding::crd())?,
        ),
    ])
}

/// Where the generated YAML is checked in: `crds/` and the Helm chart's `crds/`.
pub fn crd_directories() -> [std::path::PathBuf; 2] {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    [here.to_path_buf(), here.join("../charts/memoryc/crds")]
}
