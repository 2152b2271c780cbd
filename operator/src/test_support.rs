//! Shared helpers of the tests that run against the real PostgreSQL and Milvus named by
//! `MEMORYC_TEST_DATABASE_URL` and `MEMORYC_TEST_MILVUS_URL`.

use kube::api::ObjectMeta;
use memoryc_crds::layout::Isolation;
use memoryc_crds::resources::{MemoryTenant, MemoryTenantSpec};

use crate::provision::milvus::Milvus;
use crate::provision::postgres::Postgres;
use crate::settings::Settings;
use crate::tenant::plan::TenantPlan;

pub fn database_url() -> String {
    std::env::var("MEMORYC_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

pub fn milvus_url() -> String {
    std::env::var("MEMORYC_TEST_MILVUS_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:19530".to_string())
}

pub async fn postgres() -> Postgres {
    Postgres::connect(&database_url(), 4)
        .await
        .expect("PostgreSQL at MEMORYC_TEST_DATABASE_URL")
}

pub fn milvus() -> Milvus {
    Milvus::new(milvus_url())
}

/// A tenant name no other test run uses.
pub fn unique_name() -> String {
    format!("t-{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

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

/// Settings pointing at the test services, with a control schema private to this run so
/// tests never touch the control tables of a platform running on the same database.
pub fn settings(shared_control_schema: &str) -> Settings {
    Settings {
        shared_control_schema: shared_control_schema.to_string(),
        platform_milvus_url: milvus_url(),
        ..Settings::local()
    }
}

pub fn plan(tenant: &MemoryTenant, settings: &Settings) -> TenantPlan {
    TenantPlan::for_tenant(tenant, settings).expect("plan")
}
