//! Why a reconcile failed. Every variant has a short `metric_label` so failures are counted by
//! cause.

use crate::provision::ProvisionError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    #[error(transparent)]
    Provision(#[from] ProvisionError),

    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),

    /// The object cannot be acted on until the user changes it.
    #[error("invalid spec: {0}")]
    InvalidSpec(#[from] crate::tenant::plan::SpecError),

    /// Something the operator depends on is missing (a tenant, a Secret) and will be looked for
    /// again.
    #[error("{0}")]
    Missing(String),

    #[error("cannot encode an object: {0}")]
    Serialization(#[from] serde_json::Error),
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Provision(
                ProvisionError::Database(_)
                | ProvisionError::Migration { .. }
                | ProvisionError::DatabaseUrl(_),
            ) => "database",
            Error::Provision(ProvisionError::VectorStore(_) | ProvisionError::Collection(_)) => {
                "vector_store"
            }
            Error::Provision(ProvisionError::Conflict(_)) => "invalid_spec",
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.metric_label(),
                _ => "finalizer",
            },
            Error::InvalidSpec(_) => "invalid_spec",
            Error::Missing(_) => "missing_dependency",
            Error::Serialization(_) => "serialization",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
