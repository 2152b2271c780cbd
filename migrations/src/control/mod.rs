//! Control schema: the platform's registry of tenants, their API keys and the vector outbox.

pub mod m20261124_000001_create_control_tables;
