//! sea-orm entities, one per table. Tenant tables use unqualified names on purpose: the
//! connection's search path (PostgreSQL) or file (SQLite) decides which tenant they belong to.

pub mod analytics_event;
pub mod audit_entry;
pub mod history;
pub mod insight;
pub mod memory;
pub mod relationship;
pub mod user;

/// The control tables' entities are the control plane's.
pub use memoryc_control::entities::{api_key, outbox, policy_rule, tenant, tenant_setting};
