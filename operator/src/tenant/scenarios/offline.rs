//! Every scenario with the in-memory provisioner: no server needed, milliseconds each.

use super::Kind;

scenario_tests!(
    Kind::InMemory;
    first_reconcile_adds_the_finalizer_then_provisions_a_shared_tenant,
    a_dedicated_tenant_gets_its_own_platform_and_is_ready_once_it_is_available,
    a_ready_tenant_reconciles_without_writing_status_or_events,
    a_paused_tenant_is_left_alone,
    without_a_shared_platform_shared_tenants_are_refused_yet_still_erased,
    drift_is_repaired_dropped_schema_and_collection_and_an_edited_secret,
    deletion_with_retain_keeps_the_data_and_closes_access,
    deletion_with_delete_erases_schema_role_and_collection,
    a_failing_step_is_reported_and_requeued_with_backoff,
    a_tenant_naming_another_tenants_schema_is_refused_and_touches_nothing,
    a_namespace_that_is_not_the_tenants_is_refused,
    a_system_namespace_is_refused_without_a_lookup,
    orphaned_children_are_removed_and_foreign_ones_kept,
);
