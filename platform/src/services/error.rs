//! Errors the services report; the API maps each to an HTTP status.

use crate::domain::validation::InputError;
use crate::embedding::EmbeddingError;
use crate::stores::StoreError;
use crate::stores::vector::VectorStoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Embedding(#[from] EmbeddingError),
    #[error(transparent)]
    Vector(#[from] VectorStoreError),
    /// The tenant's PII policy refuses content holding these kinds of data.
    #[error("the {field} holds personal data or secrets: {kinds:?}")]
    PiiRejected {
        /// `content` or `metadata`.
        field: &'static str,
        kinds: Vec<crate::domain::pii::PiiKind>,
    },
    /// The tenant stores as many memories as its quota allows.
    #[error("the tenant's quota of {max} memories is used up ({stored} stored)")]
    QuotaExceeded { max: u64, stored: u64 },
}
