//! Where a vector index that is only a cache gets its points: the store of record.
//!
//! The embedded index keeps nothing that is not also in the relational store, which holds every
//! memory's embedding. Opening a tenant compares the index's points with what the source lists
//! and fetches only what differs, so a crash costs catch-up work and never data. The trait lives
//! here and the relational store implements it, keeping the layers one-way.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memoryc_crds::layout::TenantName;
use uuid::Uuid;

use super::{VectorPoint, VectorStoreError};

/// A point the source says the index must hold, and which state of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PointVersion {
    pub memory_id: Uuid,
    /// [`point_version`] of the memory's `updated_at`.
    pub version: i64,
}

/// A point's version: its memory's `updated_at` in Unix microseconds. Every write to a memory
/// row sets `updated_at`, so two states of a row that could index differently never share a
/// version (unless written within the same microsecond). Microseconds rather than milliseconds:
/// both databases keep at least that precision, and an edit right after an insert is not
/// unusual.
pub fn point_version(updated_at: &DateTime<Utc>) -> i64 {
    updated_at.timestamp_micros()
}

/// The points a tenant's index must hold, read from the store of record.
#[async_trait]
pub trait IndexSource: Send + Sync + 'static {
    /// Every point the tenant's index must hold (its live memories with an embedding), with
    /// versions; empty for a tenant the source does not know.
    async fn versions(&self, tenant: &TenantName) -> Result<Vec<PointVersion>, VectorStoreError>;

    /// The points among `ids` that the index must hold, whole and at their current version, in
    /// no particular order. Ids with no such point (deleted since, or unknown) are left out.
    async fn points(
        &self,
        tenant: &TenantName,
        ids: &[Uuid],
    ) -> Result<Vec<VectorPoint>, VectorStoreError>;
}
