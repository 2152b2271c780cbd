//! Memory-C* platform: tenant-scoped REST APIs for AI agent memories.
//!
//! `api` (HTTP) → `services` (business logic) → `stores` (repository traits) → backends.

pub mod analysis;
pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod domain;
pub mod embedding;
pub mod logging;
pub mod metrics;
pub mod services;
pub mod stores;
