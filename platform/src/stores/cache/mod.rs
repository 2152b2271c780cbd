//! Where cached reads and the tenants' cache generations are kept: in Redis when one is
//! configured (shared by every replica), in process otherwise. What is cached and when it is
//! stale is decided by `services::cache`.

pub mod in_process;
pub mod redis;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::Memory;

/// What an entry caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheKind {
    /// One memory, read by id.
    Memory,
    /// The results of one search.
    Search,
}

impl CacheKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheKind::Memory => "memory",
            CacheKind::Search => "search",
        }
    }
}

/// The key of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryKey {
    pub kind: CacheKind,
    pub tenant_id: Uuid,
    pub generation: u64,
    /// The memory id, or the digest of a search.
    pub subject: String,
}

impl EntryKey {
    pub fn memory(tenant_id: Uuid, generation: u64, memory_id: Uuid) -> Self {
        Self {
            kind: CacheKind::Memory,
            tenant_id,
            generation,
            subject: memory_id.simple().to_string(),
        }
    }
}

/// `<tenant>:<generation>:<kind>:<subject>`; backends add their own prefix.
impl fmt::Display for EntryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.tenant_id.simple(),
            self.generation,
            self.kind.as_str(),
            self.subject
        )
    }
}

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
