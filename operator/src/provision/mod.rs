//! Provisioning outside Kubernetes: the tenant's PostgreSQL role, schemas, tables and platform
//! registration, and its Milvus collection. Each step checks before it changes, so running it
//! again completes a half-provisioned tenant and changes nothing on a complete one.

#[cfg(test)]
pub mod in_memory;
pub mod integrations;
pub mod milvus;
pub mod postgres;
pub mod provisioner;

pub use memoryc_control::password;
pub use provisioner::{Backends, Provisioner};

/// A provisioning step that failed, in words a user can act on, with the error that caused it.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("PostgreSQL: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("PostgreSQL: {set} migrations in schema {schema} failed: {source}")]
    Migration {
        set: &'static str,
        schema: String,
        #[source]
        source: sea_orm::DbErr,
    },
    #[error("invalid database URL: {0}")]
    DatabaseUrl(#[source] sea_orm::sqlx::Error),
    #[error("Milvus: {0}")]
    VectorStore(#[source] Box<::milvus::v2::prelude::Error>),
    #[error("Milvus: {0}")]
    Collection(#[source] Box<memoryc_crds::milvus::CollectionError>),
    /// The spec names what belongs to another tenant or to the installation; retrying cannot
    /// help, a spec change can.
    #[error("{0}")]
    Conflict(String),
}

impl From<::milvus::v2::prelude::Error> for ProvisionError {
    fn from(error: ::milvus::v2::prelude::Error) -> Self {
        Self::VectorStore(Box::new(error))
    }
}

impl From<memoryc_crds::milvus::CollectionError> for ProvisionError {
    fn from(error: memoryc_crds::milvus::CollectionError) -> Self {
        Self::Collection(Box::new(error))
    }
}

#[cfg(test)]
mod servers;
