//! Control schema: the platform's registry of tenants, their API keys, the vector outbox and
//! the integrations of each tenant.

pub mod m20261124_000001_create_control_tables;
pub mod m20261124_000002_create_integrations;
