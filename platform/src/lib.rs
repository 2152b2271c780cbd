//! Memory-C* platform: tenant-scoped REST APIs for AI agent memories.

pub mod domain;
pub mod embedding;
pub mod stores;
