//! The cache in this process: the embedded default. Each replica caches on its own, which is
//! only correct when one replica serves a tenant; several replicas need Redis.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use quick_cache::sync::Cache;
use uuid::Uuid;

use super::{CacheError, CachedValue, EntryKey, MemoryCache};

#[derive(Clone)]
struct Stored {
    value: Arc<CachedValue>,
    expires_at: Instant,
}

pub struct InProcessMemoryCache {
    entries: Cache<String, Stored>,
    /// One counter per tenant; tenants are few, so the map is never pruned.
    generations: RwLock<HashMap<Uuid, Arc<AtomicU64>>>,
}

impl InProcessMemoryCache {
    /// A cache holding at most `max_entries` entries (least recently used go first).
    pub fn new(max_entries: usize) -> Self {
        Self {
            entries: Cache::new(max_entries.max(1)),
            generations: RwLock::new(HashMap::new()),
        }
    }
}

fn poisoned() -> CacheError {
    CacheError::Unavailable("generation lock poisoned".to_string())
}

#[async_trait]
impl MemoryCache for InProcessMemoryCache {
    async fn generation(&self, tenant_id: Uuid) -> Result<u64, CacheError> {
        let generations = self.generations.read().map_err(|_| poisoned())?;
        Ok(generations
            .get(&tenant_id)
            .map_or(0, |generation| generation.load(Ordering::SeqCst)))
    }

    async fn bump(&self, tenant_id: Uuid) -> Result<u64, CacheError> {
        let counter = {
            let mut generations = self.generations.write().map_err(|_| poisoned())?;
            generations.entry(tenant_id).or_default().clone()
        };
        Ok(counter.fetch_add(1, Ordering::SeqCst) + 1)
    }

    async fn get(&self, key: &EntryKey) -> Result<Option<CachedValue>, CacheError> {
        let key = key.to_string();
        match self.entries.get(&key) {
            Some(stored) if stored.expires_at > Instant::now() => {
                Ok(Some(stored.value.as_ref().clone()))
            }
            Some(_) => {
                self.entries.remove(&key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn put(
        &self,
        key: &EntryKey,
        value: CachedValue,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let stored = Stored {
            value: Arc::new(value),
            expires_at: Instant::now() + ttl,
        };
        self.entries.insert(key.to_string(), stored);
        Ok(())
    }
}
