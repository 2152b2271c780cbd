//! sea-orm entities, one per table. Tenant tables use unqualified names on purpose: the
//! connection's search path (PostgreSQL) or file (SQLite) decides which tenant they belong to.

pub mod analytics_event;
pub mod api_key;
pub mod audit_entry;
pub mod history;
pub mod insight;
pub mod memory;
pub mod outbox;
pub mod policy_rule;
pub mod relationship;
pub mod tenant;
pub mod tenant_setting;
pub mod user;
