//! Test objects shared by the tenant modules' tests.

use kube::api::ObjectMeta;
use memoryc_crds::layout::Isolation;
use memoryc_crds::resources::{MemoryTenant, MemoryTenantSpec};

/// A MemoryTenant as the API server would return it: named, with a uid and a generation,
/// defaults filled in.
pub fn tenant(name: &str, isolation: Isolation) -> MemoryTenant {
    let spec: MemoryTenantSpec =
        serde_json::from_value(serde_json::json!({ "isolation": isolation })).expect("spec");
    let mut tenant = MemoryTenant::new(name, spec);
    tenant.metadata = ObjectMeta {
        name: Some(name.to_string()),
        uid: Some(uuid::Uuid::new_v4().to_string()),
        generation: Some(1),
        resource_version: Some("1".into()),
        ..ObjectMeta::default()
    };
    tenant
}
