//! Provisioning outside Kubernetes: the tenant's PostgreSQL role, schemas, tables and platform
//! registration, and its Milvus collection. Each step checks before it changes, so running it
//! again completes a half-provisioned tenant and changes nothing on a complete one.

pub mod integrations;
pub mod milvus;
pub mod password;
pub mod postgres;

/// A provisioning step that failed, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    #[error("PostgreSQL: {0}")]
    Database(String),
    #[error("Milvus: {0}")]
    VectorStore(String),
    /// The spec names what belongs to another tenant or to the installation; retrying cannot
    /// help, a spec change can.
    #[error("{0}")]
    Conflict(String),
}

#[cfg(test)]
mod tests;
