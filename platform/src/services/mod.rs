//! Business logic: what happens when a memory is written, found, changed or erased.

pub mod access_counts;
pub mod analytics;
pub mod api_keys;
pub mod audit;
pub mod authentication;
pub mod cache;
pub mod categorizer;
pub mod error;
pub mod events;
pub mod grants;
pub mod health;
pub mod integrations;
pub mod known_tenants;
pub mod memory_quota;
pub mod memory_service;
pub mod rate_limit;
pub mod relationships;
pub mod tenant_service;
pub mod tenant_settings;
pub mod vector_sync;

pub use error::ServiceError;
