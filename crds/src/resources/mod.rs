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

/// The MemoryTenant CRD, with the tenant-name rules on `metadata.name` itself (the one place
/// outside `spec` a CRD may restrict). Besides rejecting bad names without CEL, the bound length
/// keeps the cost the API server estimates for the name rule small.
pub fn memory_tenant_crd()
-> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
    use kube::CustomResourceExt;
    let mut crd = MemoryTenant::crd();
    for version in &mut crd.spec.versions {
        let root = version
            .schema
            .as_mut()
            .and_then(|schema| schema.open_api_v3_schema.as_mut());
        if let Some(root) = root {
            let name = JSONSchemaProps {
                type_: Some("string".into()),
                max_length: Some(crate::layout::MAX_TENANT_NAME_LEN as i64),
                pattern: Some("^[a-z]([-a-z0-9]*[a-z0-9])?$".into()),
                ..JSONSchemaProps::default()
            };
            let metadata = JSONSchemaProps {
                type_: Some("object".into()),
                properties: Some([("name".to_string(), name)].into()),
                ..JSONSchemaProps::default()
            };
            root.properties
                .get_or_insert_with(Default::default)
                .insert("metadata".to_string(), metadata);
        }
    }
    crd
}

/// File names under `crds/` and the YAML of each CustomResourceDefinition, as `crdgen` writes
/// them and the chart installs them.
pub fn crd_documents() -> Result<Vec<(&'static str, String)>, serde_yaml::Error> {
    use kube::CustomResourceExt;
    Ok(vec![
        (
            "memorytenants.yaml",
            serde_yaml::to_string(&memory_tenant_crd())?,
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
