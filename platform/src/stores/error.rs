//! Errors of the relational stores, classified so the API can answer with the right status.

use sea_orm::{DbErr, RuntimeErr};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, pool exhausted, server gone).
    #[error("relational store unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule was violated.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The tenant has no storage on this platform.
    #[error("tenant {0} is not provisioned")]
    UnknownTenant(String),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(DbErr),
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        if is_unavailable(&error) {
            return StoreError::Unavailable(error.to_string());
        }
        if let Some(sea_orm::SqlErr::UniqueConstraintViolation(detail)) = error.sql_err() {
            return StoreError::Conflict(detail);
        }
        StoreError::Database(error)
    }
}

/// Whether an error means "the database is not there" rather than "the query was wrong".
fn is_unavailable(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => matches!(
            **e,
            sea_orm::sqlx::Error::Io(_)
                | sea_orm::sqlx::Error::PoolTimedOut
                | sea_orm::sqlx::Error::PoolClosed
                | sea_orm::sqlx::Error::Tls(_)
                | sea_orm::sqlx::Error::Protocol(_)
                | sea_orm::sqlx::Error::WorkerCrashed
        ),
        _ => false,
    }
}
