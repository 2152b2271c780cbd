//! What the memory service sees of the cache: typed lookups, stores and invalidations that
//! never fail. A cache that errs is logged and counted, and the read goes to the database.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::stats::Counters;
use super::{CacheStats, SearchKey};
use crate::domain::Memory;
use crate::services::memory_service::SearchHit;
use crate::stores::cache::{CacheError, CacheKind, CachedHit, CachedValue, EntryKey, MemoryCache};

/// The outcome of a lookup.
#[derive(Debug)]
pub enum Lookup<T> {
    Hit(T),
    /// Read the database, then hand what was read to a `store_*` call with this ticket.
    Miss(Ticket),
}

/// Where a missed read may be stored: the key under the generation read *before* the
/// database, so a read that raced a write lands under a generation nobody reads any more.
/// Empty when the cache is off or its generation could not be read.
#[derive(Debug)]
#[must_use = "a ticket is how a missed read reaches the cache"]
pub struct Ticket {
    key: Option<EntryKey>,
}

/// Observes cache lookups (metrics).
pub trait CacheObserver: Send + Sync + 'static {
    /// One lookup in `cache` (e.g. `memory`), found or not.
    fn looked_up(&self, cache: &str, hit: bool);
}

pub struct ReadCache {
    store: Option<Arc<dyn MemoryCache>>,
    ttl: Duration,
    counters: Counters,
    started: Instant,
    /// Milliseconds after `started` until which nothing is served from the cache, set when an
    /// invalidation failed: entries of the old generation may be stale until they expire.
    distrust_until_ms: AtomicU64,
    /// Where hits and misses are exported, besides `stats()`.
    metrics: Option<Arc<dyn CacheObserver>>,
}

impl ReadCache {
    /// Serves entries from `store` for at most `ttl`.
    pub fn new(store: Arc<dyn MemoryCache>, ttl: Duration) -> Self {
        Self {
            store: Some(store),
            ttl,
            counters: Counters::default(),
            started: Instant::now(),
            distrust_until_ms: AtomicU64::new(0),
            metrics: None,
        }
    }

    /// Every lookup misses and nothing is stored or counted.
    pub fn disabled() -> Self {
        Self {
            store: None,
            ttl: Duration::ZERO,
            counters: Counters::default(),
            started: Instant::now(),
            distrust_until_ms: AtomicU64::new(0),
            metrics: None,
        }
    }

    /// Reports hits and misses to `metrics` (`memoryc_platform_cache_requests_total`).
    pub fn with_metrics(mut self, metrics: Arc<dyn CacheObserver>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, kind: CacheKind, hit: bool) {
        if hit {
            self.counters.hit(kind);
        } else {
            self.counters.miss(kind);
        }
        if let Some(metrics) = &self.metrics {
            metrics.looked_up(kind.as_str(), hit);
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.store.is_some()
    }

    /// Hits and misses per kind so far.
    pub fn stats(&self) -> CacheStats {
        self.counters.snapshot()
    }

    /// The memory as cached, whoever may see it: the caller checks visibility. Its access
    /// count is the one of when it was cached; the caller replaces it.
    pub async fn memory(&self, tenant_id: Uuid, memory_id: Uuid) -> Lookup<Memory> {
        match self
            .lookup(CacheKind::Memory, tenant_id, |generation| {
                EntryKey::memory(tenant_id, generation, memory_id)
            })
            .await
        {
            Lookup::Hit(CachedValue::Memory(memory)) => Lookup::Hit(memory),
            Lookup::Hit(CachedValue::Search(_)) => Lookup::Miss(Ticket { key: None }),
            Lookup::Miss(ticket) => Lookup::Miss(ticket),
        }
    }

    /// The results of the search as cached, with the access counts of when they were cached.
    pub async fn search(&self, tenant_id: Uuid, search: &SearchKey<'_>) -> Lookup<Vec<SearchHit>> {
        match self
            .lookup(CacheKind::Search, tenant_id, |generation| {
                EntryKey::search(tenant_id, generation, search)
            })
            .await
        {
            Lookup::Hit(CachedValue::Search(hits)) => Lookup::Hit(
                hits.into_iter()
                    .map(|CachedHit { memory, score }| SearchHit { memory, score })
                    .collect(),
            ),
            Lookup::Hit(CachedValue::Memory(_)) => Lookup::Miss(Ticket { key: None }),
            Lookup::Miss(ticket) => Lookup::Miss(ticket),
        }
    }

    pub async fn store_memory(&self, ticket: Ticket, memory: &Memory) {
        self.store(ticket, || CachedValue::Memory(memory.clone()))
            .await;
    }

    pub async fn store_search(&self, ticket: Ticket, hits: &[SearchHit]) {
        self.store(ticket, || {
            CachedValue::Search(
                hits.iter()
                    .map(|hit| CachedHit {
                        memory: hit.memory.clone(),
                        score: hit.score,
                    })
                    .collect(),
            )
        })
        .await;
    }

    /// Makes every entry of the tenant unreachable. Call *after* the database write.
    ///
    /// When the cache cannot be reached, this replica serves nothing from the cache until
    /// the entries that may now be stale have expired. Other replicas cannot be told; they
    /// may serve such entries until the TTL ends, which is why the TTL is short.
    pub async fn invalidate(&self, tenant_id: Uuid) {
        let Some(store) = &self.store else { return };
        if let Err(error) = store.bump(tenant_id).await {
            self.counters.error();
            self.counters.failed_invalidation();
            let until = self.elapsed_ms() + u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
            self.distrust_until_ms.fetch_max(until, Ordering::SeqCst);
            tracing::warn!(%tenant_id, error = %error, cause = error.metric_label(),
                "could not invalidate the tenant's cache; serving this replica from the database until its entries expire");
        }
    }

    /// Invalidates the tenant when dropped, unless [`InvalidationGuard::finish`] ran to the
    /// end: a write whose request is cancelled after the database changed still invalidates.
    /// Take it right before the database write.
    pub fn guard(self: &Arc<Self>, tenant_id: Uuid) -> InvalidationGuard {
        InvalidationGuard {
            cache: Arc::clone(self),
            tenant_id,
            armed: self.is_enabled(),
        }
    }

    async fn lookup(
        &self,
        kind: CacheKind,
        tenant_id: Uuid,
        key_of: impl FnOnce(u64) -> EntryKey,
    ) -> Lookup<CachedValue> {
        let Some(store) = &self.store else {
            return Lookup::Miss(Ticket { key: None });
        };
        let generation = match store.generation(tenant_id).await {
            Ok(generation) => generation,
            Err(error) => {
                self.failed(kind, "generation", &error);
                return Lookup::Miss(Ticket { key: None });
            }
        };
        let key = key_of(generation);
        if self.distrusting() {
            self.count(kind, false);
            return Lookup::Miss(Ticket { key: Some(key) });
        }
        match store.get(&key).await {
            Ok(Some(value)) => {
                self.count(kind, true);
                Lookup::Hit(value)
            }
            Ok(None) => {
                self.count(kind, false);
                Lookup::Miss(Ticket { key: Some(key) })
            }
            Err(error) => {
                self.failed(kind, "get", &error);
                Lookup::Miss(Ticket { key: Some(key) })
            }
        }
    }

    async fn store(&self, ticket: Ticket, value: impl FnOnce() -> CachedValue) {
        let (Some(store), Some(key)) = (&self.store, ticket.key) else {
            return;
        };
        if let Err(error) = store.put(&key, value(), self.ttl).await {
            self.counters.error();
            tracing::warn!(kind = key.kind.as_str(), error = %error, cause = error.metric_label(),
                "could not store a read in the cache");
        }
    }

    fn failed(&self, kind: CacheKind, operation: &str, error: &CacheError) {
        self.counters.error();
        self.count(kind, false);
        tracing::warn!(kind = kind.as_str(), operation, error = %error, cause = error.metric_label(),
            "cache unavailable; reading the database");
    }

    fn distrusting(&self) -> bool {
        self.distrust_until_ms.load(Ordering::SeqCst) > self.elapsed_ms()
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// See [`ReadCache::guard`].
#[must_use = "dropping the guard at once invalidates before the write"]
pub struct InvalidationGuard {
    cache: Arc<ReadCache>,
    tenant_id: Uuid,
    armed: bool,
}

impl InvalidationGuard {
    /// Invalidates now; call after the database write, before answering.
    pub async fn finish(mut self) {
        if self.armed {
            self.cache.invalidate(self.tenant_id).await;
            self.armed = false;
        }
    }
}

impl Drop for InvalidationGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let cache = Arc::clone(&self.cache);
            let tenant_id = self.tenant_id;
            runtime.spawn(async move { cache.invalidate(tenant_id).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Category, MemoryFilter};
    use crate::services::memory_service::SearchMode;
    use crate::stores::cache::in_process::InProcessMemoryCache;
    use crate::stores::cache::redis::RedisMemoryCache;

    fn redis_url() -> String {
        std::env::var("MEMORYC_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
    }

    fn in_process() -> Arc<ReadCache> {
        Arc::new(ReadCache::new(
            Arc::new(InProcessMemoryCache::new(100)),
            Duration::from_secs(60),
        ))
    }

    /// A cache on the test Redis, under a prefix no other test uses.
    fn on_redis() -> Arc<ReadCache> {
        let prefix = format!("memoryc-test:{}:", Uuid::new_v4().simple());
        let store = RedisMemoryCache::connect(&redis_url(), &prefix).expect("pool");
        Arc::new(ReadCache::new(Arc::new(store), Duration::from_secs(60)))
    }

    fn memory(content: &str) -> Memory {
        let now = chrono::Utc::now();
        Memory {
            memory_id: Uuid::now_v7(),
            content: content.to_string(),
            category: Category::Technical,
            metadata: serde_json::json!({}),
            created_at: now,
            updated_at: now,
            confidence_score: 1.0,
            access_count: 0,
            user_id: Uuid::new_v4(),
            is_deleted: false,
        }
    }

    fn content_of(lookup: Lookup<Memory>) -> Option<String> {
        match lookup {
            Lookup::Hit(memory) => Some(memory.content),
            Lookup::Miss(_) => None,
        }
    }

    /// A reader misses, reads the old row, then a writer writes and invalidates, then the
    /// reader stores what it read: the stale copy must never be served.
    async fn a_reader_that_raced_a_writer_stores_where_nobody_reads(cache: Arc<ReadCache>) {
        let tenant = Uuid::new_v4();
        let database = std::sync::Mutex::new(memory("old"));
        let id = database.lock().expect("lock").memory_id;

        let Lookup::Miss(ticket) = cache.memory(tenant, id).await else {
            panic!("an empty cache misses");
        };
        let read_before_the_write = database.lock().expect("lock").clone();

        database.lock().expect("lock").content = "new".to_string();
        cache.invalidate(tenant).await;

        cache.store_memory(ticket, &read_before_the_write).await;
        let Lookup::Miss(ticket) = cache.memory(tenant, id).await else {
            panic!("the stale read was served");
        };
        let fresh = database.lock().expect("lock").clone();
        cache.store_memory(ticket, &fresh).await;
        assert_eq!(
            content_of(cache.memory(tenant, id).await).as_deref(),
            Some("new")
        );
        let stats = cache.stats();
        assert_eq!(stats.memory.hits, 1);
        assert_eq!(stats.memory.misses, 2);
        assert_eq!(stats.errors, 0);
    }

    #[tokio::test]
    async fn in_process_a_raced_reader_never_serves_a_stale_read() {
        a_reader_that_raced_a_writer_stores_where_nobody_reads(in_process()).await;
    }

    #[tokio::test]
    async fn redis_a_raced_reader_never_serves_a_stale_read() {
        a_reader_that_raced_a_writer_stores_where_nobody_reads(on_redis()).await;
    }

    /// Bumping before the database write would let the raced reader's copy through; this is
    /// why writers invalidate after writing.
    #[tokio::test]
    async fn invalidating_before_the_write_would_serve_a_stale_read() {
        let cache = in_process();
        let tenant = Uuid::new_v4();
        let old = memory("old");
        cache.invalidate(tenant).await;
        let Lookup::Miss(ticket) = cache.memory(tenant, old.memory_id).await else {
            panic!("an empty cache misses");
        };
        cache.store_memory(ticket, &old).await;
        assert_eq!(
            content_of(cache.memory(tenant, old.memory_id).await).as_deref(),
            Some("old")
        );
    }

    async fn tenants_never_share_entries(cache: Arc<ReadCache>) {
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        let stored = memory("first tenant's");
        let Lookup::Miss(ticket) = cache.memory(first, stored.memory_id).await else {
            panic!("an empty cache misses");
        };
        cache.store_memory(ticket, &stored).await;
        assert!(matches!(
            cache.memory(second, stored.memory_id).await,
            Lookup::Miss(_)
        ));
        let filter = MemoryFilter::default();
        let search = SearchKey {
            owner_only: None,
            mode: SearchMode::Exact,
            query: Some("tenant"),
            filter: &filter,
            limit: 10,
        };
        let Lookup::Miss(ticket) = cache.search(first, &search).await else {
            panic!("an empty cache misses");
        };
        let hits = vec![SearchHit {
            memory: stored.clone(),
            score: None,
        }];
        cache.store_search(ticket, &hits).await;
        assert!(matches!(
            cache.search(second, &search).await,
            Lookup::Miss(_)
        ));
        let Lookup::Hit(found) = cache.search(first, &search).await else {
            panic!("the first tenant's search is cached");
        };
        assert_eq!(found[0].memory, stored);
        // Invalidating one tenant leaves the other's entries alone.
        cache.invalidate(second).await;
        assert!(matches!(
            cache.memory(first, stored.memory_id).await,
            Lookup::Hit(_)
        ));
    }

    #[tokio::test]
    async fn in_process_tenants_never_share_entries() {
        tenants_never_share_entries(in_process()).await;
    }

    #[tokio::test]
    async fn redis_tenants_never_share_entries() {
        tenants_never_share_entries(on_redis()).await;
    }

    #[tokio::test]
    async fn entries_expire() {
        let cache = ReadCache::new(
            Arc::new(InProcessMemoryCache::new(10)),
            Duration::from_millis(50),
        );
        let tenant = Uuid::new_v4();
        let stored = memory("short-lived");
        let Lookup::Miss(ticket) = cache.memory(tenant, stored.memory_id).await else {
            panic!("an empty cache misses");
        };
        cache.store_memory(ticket, &stored).await;
        assert!(matches!(
            cache.memory(tenant, stored.memory_id).await,
            Lookup::Hit(_)
        ));
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(matches!(
            cache.memory(tenant, stored.memory_id).await,
            Lookup::Miss(_)
        ));
    }

    #[tokio::test]
    async fn an_unreachable_redis_misses_and_counts() {
        let store =
            RedisMemoryCache::connect("redis://127.0.0.1:1", "memoryc-test:").expect("pool");
        let cache = Arc::new(ReadCache::new(Arc::new(store), Duration::from_secs(60)));
        let tenant = Uuid::new_v4();
        let stored = memory("nowhere");
        let Lookup::Miss(ticket) = cache.memory(tenant, stored.memory_id).await else {
            panic!("nothing can be served");
        };
        cache.store_memory(ticket, &stored).await;
        cache.invalidate(tenant).await;
        let stats = cache.stats();
        assert_eq!(stats.memory.misses, 1);
        assert_eq!(stats.failed_invalidations, 1);
        assert!(stats.errors >= 2);
    }

    #[tokio::test]
    async fn a_failed_invalidation_stops_serving_from_this_replica() {
        let shared = Arc::new(InProcessMemoryCache::new(10));
        let cache = ReadCache::new(shared, Duration::from_secs(60));
        let tenant = Uuid::new_v4();
        let stored = memory("cached");
        let Lookup::Miss(ticket) = cache.memory(tenant, stored.memory_id).await else {
            panic!("an empty cache misses");
        };
        cache.store_memory(ticket, &stored).await;
        // What a failed bump leaves behind.
        cache
            .distrust_until_ms
            .store(cache.elapsed_ms() + 60_000, Ordering::SeqCst);
        assert!(matches!(
            cache.memory(tenant, stored.memory_id).await,
            Lookup::Miss(_)
        ));
    }

    #[tokio::test]
    async fn a_dropped_guard_still_invalidates() {
        let cache = in_process();
        let tenant = Uuid::new_v4();
        let stored = memory("before");
        let Lookup::Miss(ticket) = cache.memory(tenant, stored.memory_id).await else {
            panic!("an empty cache misses");
        };
        cache.store_memory(ticket, &stored).await;
        drop(cache.guard(tenant));
        let invalidated = async {
            while matches!(cache.memory(tenant, stored.memory_id).await, Lookup::Hit(_)) {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), invalidated)
            .await
            .expect("the dropped guard invalidated");
    }

    #[tokio::test]
    async fn a_disabled_cache_always_misses_and_counts_nothing() {
        let cache = Arc::new(ReadCache::disabled());
        let tenant = Uuid::new_v4();
        let stored = memory("uncached");
        let Lookup::Miss(ticket) = cache.memory(tenant, stored.memory_id).await else {
            panic!("disabled");
        };
        cache.store_memory(ticket, &stored).await;
        cache.guard(tenant).finish().await;
        assert!(matches!(
            cache.memory(tenant, stored.memory_id).await,
            Lookup::Miss(_)
        ));
        assert_eq!(cache.stats(), CacheStats::default());
    }
}
