//! Tenant schema: users, memories, relationships, analytics events, predictive insights and
//! the history of every memory.

pub mod m20261124_000001_create_tenant_tables;
pub mod m20261126_000001_create_memory_history;
