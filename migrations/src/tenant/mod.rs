//! Tenant schema: users, memories, relationships, analytics events and predictive insights.

pub mod m20261124_000001_create_tenant_tables;
