//! Hit and miss counters per kind of entry, read by the metrics export.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::stores::cache::CacheKind;

/// Counts of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindStats {
    pub hits: u64,
    pub misses: u64,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub memory: KindStats,
    pub search: KindStats,
    /// Cache operations that failed (and fell through to the database).
    pub errors: u64,
    /// Writes whose invalidation could not reach the cache.
    pub failed_invalidations: u64,
}

impl CacheStats {
    pub fn kind(&self, kind: CacheKind) -> KindStats {
        match kind {
            CacheKind::Memory => self.memory,
            CacheKind::Search => self.search,
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    memory_hits: AtomicU64,
    memory_misses: AtomicU64,
    search_hits: AtomicU64,
    search_misses: AtomicU64,
    errors: AtomicU64,
    failed_invalidations: AtomicU64,
}

impl Counters {
    pub(super) fn hit(&self, kind: CacheKind) {
        match kind {
            CacheKind::Memory => &self.memory_hits,
            CacheKind::Search => &self.search_hits,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn miss(&self, kind: CacheKind) {
        match kind {
            CacheKind::Memory => &self.memory_misses,
            CacheKind::Search => &self.search_misses,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn failed_invalidation(&self) {
        self.failed_invalidations.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> CacheStats {
        CacheStats {
            memory: KindStats {
                hits: self.memory_hits.load(Ordering::Relaxed),
                misses: self.memory_misses.load(Ordering::Relaxed),
            },
            search: KindStats {
                hits: self.search_hits.load(Ordering::Relaxed),
                misses: self.search_misses.load(Ordering::Relaxed),
            },
            errors: self.errors.load(Ordering::Relaxed),
            failed_invalidations: self.failed_invalidations.load(Ordering::Relaxed),
        }
    }
}
