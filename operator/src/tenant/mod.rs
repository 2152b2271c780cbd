//! The MemoryTenant controller: validate → build desired objects → provision and apply → status.

pub mod desired;
pub mod plan;
