//! The MemoryTenant controller: validate → build desired objects → provision and apply → status.

pub mod controller;
pub mod desired;
pub mod orphans;
pub mod plan;
pub mod platform_settings;
pub mod status;

#[cfg(test)]
mod scenarios;
