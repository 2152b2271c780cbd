//! Control schema: the platform's registry of tenants, their API keys, the vector outbox, the
//! integrations of each tenant, tenant policy rules, the audit log, tenant settings and the
//! logins the shared platform uses for each tenant, and the webhook deliveries of integrations.

pub mod m20261124_000001_create_control_tables;
pub mod m20261124_000002_create_integrations;
pub mod m20261125_000001_create_policy_rules;
pub mod m20261125_000002_create_audit_log;
pub mod m20261125_000003_create_tenant_settings;
pub mod m20261126_000001_add_analytics_schedule;
pub mod m20261127_000001_add_search_ef;
pub mod m20261204_000001_add_max_memories;
pub mod m20261204_000002_policy_domains_by_tenant_id;
pub mod m20261204_000003_add_insight_and_burst_settings;
pub mod m20261205_000001_create_tenant_logins;
pub mod m20261206_000001_add_integration_secret_and_state;
pub mod m20261206_000002_create_webhook_deliveries;
pub mod m20261207_000001_create_github_sync_state;
