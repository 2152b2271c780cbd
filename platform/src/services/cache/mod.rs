//! A cache of hot reads: one memory by id and the results of a search, kept in Redis when one
//! is configured (shared by every replica) or in process otherwise.
//!
//! Staleness is prevented with a generation number per tenant that is part of every key. A
//! reader reads the generation *before* it reads the database and stores what it read under
//! that generation; a writer bumps the generation *after* its database write. A reader that
//! raced a writer therefore stores under a generation nobody reads any more. Entries also
//! expire after a TTL, which bounds how long a lost invalidation can matter.

pub mod in_process;
pub mod keys;
pub mod read_cache;
pub mod redis;
pub mod stats;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use keys::{EntryKey, SearchKey};
pub use read_cache::{InvalidationGuard, Lookup, ReadCache, Ticket};
pub use stats::{CacheKind, CacheStats, KindStats};

use crate::domain::Memory;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    #[error("cache did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cache entry unreadable: {0}")]
    Corrupt(String),
}

impl CacheError {
    /// Short cause, to count failures by.
    pub fn metric_label(&self) -> &'static str {
        match self {
            CacheError::Unavailable(_) => "unavailable",
            CacheError::Timeout(_) => "timeout",
            CacheError::Corrupt(_) => "corrupt",
        }
    }
}

/// One search result as cached: the memory and its similarity score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedHit {
    pub memory: Memory,
    pub score: Option<f32>,
}

/// What an entry holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CachedValue {
    Memory(Memory),
    Search(Vec<CachedHit>),
}

/// Where cached reads and the tenants' generations are kept.
#[async_trait]
pub trait MemoryCache: Send + Sync + 'static {
    /// The tenant's current generation, part of every key of the tenant.
    async fn generation(&self, tenant_id: Uuid) -> Result<u64, CacheError>;

    /// Moves the tenant to a new generation, making every entry stored under an older one
    /// unreachable; returns the new generation.
    async fn bump(&self, tenant_id: Uuid) -> Result<u64, CacheError>;

    async fn get(&self, key: &EntryKey) -> Result<Option<CachedValue>, CacheError>;

    /// Stores `value` under `key` for at most `ttl`.
    async fn put(
        &self,
        key: &EntryKey,
        value: CachedValue,
        ttl: Duration,
    ) -> Result<(), CacheError>;
}
