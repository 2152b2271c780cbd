//! Memory-C* operator library: the MemoryTenant and IntegrationBinding controllers, the
//! provisioning of PostgreSQL and Milvus behind them, and the operator's telemetry.
//!
//! `main.rs` only wires configuration, logging, leader election and the HTTP server; everything
//! else lives here so tests reach it.

pub mod apply;
pub mod binding;
pub mod conditions;
pub mod config;
pub mod context;
pub mod controllers;
pub mod describe;
pub mod error;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod leader;
pub mod provision;
pub mod settings;
pub mod telemetry;
pub mod tenant;
#[cfg(test)]
pub(crate) mod test_support;
