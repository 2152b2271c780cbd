//! sea-orm entities of the control tables. Names are unqualified: the connection's search path
//! (PostgreSQL) or file (SQLite) decides which control schema they belong to.

pub mod api_key;
pub mod inbound_delivery;
pub mod integration;
pub mod integration_item;
pub mod outbox;
pub mod policy_rule;
pub mod tenant;
pub mod tenant_setting;
pub mod webhook_delivery;
