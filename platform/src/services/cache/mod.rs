//! A cache of hot reads: one memory by id and the results of a search, kept where
//! `stores::cache` keeps entries (Redis when one is configured, shared by every replica, or in
//! process otherwise).
//!
//! Staleness is prevented with a generation number per tenant that is part of every key. A
//! reader reads the generation *before* it reads the database and stores what it read under
//! that generation; a writer bumps the generation *after* its database write. A reader that
//! raced a writer therefore stores under a generation nobody reads any more. Entries also
//! expire after a TTL, which bounds how long a lost invalidation can matter.

pub mod keys;
pub mod read_cache;
pub mod stats;

pub use keys::SearchKey;
pub use read_cache::{InvalidationGuard, Lookup, ReadCache, Ticket};
pub use stats::{CacheStats, KindStats};
