//! The scenarios whose outcome depends on what the servers do, with the real PostgreSQL and
//! Milvus behind the provisioning steps (`MEMORYC_TEST_DATABASE_URL`,
//! `MEMORYC_TEST_MILVUS_URL`): keys that work against the control tables, schemas and
//! collections made, repaired, kept and erased, claims checked against the catalog.

use super::Kind;

scenario_tests!(
    Kind::Servers;
    first_reconcile_adds_the_finalizer_then_provisions_a_shared_tenant,
    a_dedicated_tenant_gets_its_own_platform_and_is_ready_once_it_is_available,
    without_a_shared_platform_shared_tenants_are_refused_yet_still_erased,
    drift_is_repaired_dropped_schema_and_collection_and_an_edited_secret,
    deletion_with_retain_keeps_the_data_and_closes_access,
    deletion_with_delete_erases_schema_role_and_collection,
    a_failing_step_is_reported_and_requeued_with_backoff,
    a_tenant_naming_another_tenants_schema_is_refused_and_touches_nothing,
);
