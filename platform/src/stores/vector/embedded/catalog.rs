//! A tenant's bookkeeping beside its HNSW graph: usearch key ↔ memory id, the payload searches
//! filter on, and posting lists that size a filter before it is run.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::super::{VectorFilter, VectorStoreError};
use super::codec::EntryRecord;

/// usearch marks removed slots with `u64::MAX`, so that key must never name a point.
const FREE_KEY: u64 = u64::MAX;

/// Payload of one indexed point. The category is interned: filters then compare integers.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    memory_id: Uuid,
    user_id: Uuid,
    category: u32,
    created_at_ms: i64,
}

#[derive(Debug, Default)]
pub(super) struct Catalog {
    /// Indexed by usearch key. A vector rather than a map because usearch calls the filter
    /// predicate for every node it visits; keys stay dense because freed ones are reused.
    slots: Vec<Option<Entry>>,
    /// Keys of deleted points, handed out again before new ones.
    free_keys: Vec<u64>,
    live: usize,
    keys: HashMap<Uuid, u64>,
    by_user: HashMap<Uuid, HashSet<u64>>,
    by_category: HashMap<u32, HashSet<u64>>,
    categories: Vec<String>,
    category_ids: HashMap<String, u32>,
}

/// A filter translated into the catalog's terms.
pub(super) enum Selection<'a> {
    /// No filter: every point qualifies.
    Everything,
    /// The filter names a category or user with no points.
    Nothing,
    Subset(Subset<'a>),
}

/// A filter that some points pass.
pub(super) struct Subset<'a> {
    category: Option<u32>,
    user_id: Option<Uuid>,
    /// The smallest posting list among the filter's terms: a superset of the matches.
    pub candidates: &'a HashSet<u64>,
    /// How many points probably pass; exact for a single term.
    pub estimated_matches: usize,
}

impl Catalog {
    pub(super) fn len(&self) -> usize {
        self.live
    }

    pub(super) fn key_of(&self, memory_id: &Uuid) -> Option<u64> {
        self.keys.get(memory_id).copied()
    }

    pub(super) fn memory_id(&self, key: u64) -> Option<Uuid> {
        self.entry(key).map(|entry| entry.memory_id)
    }

    fn entry(&self, key: u64) -> Option<&Entry> {
        let index = usize::try_from(key).ok()?;
        self.slots.get(index)?.as_ref()
    }

    /// A key for a new memory. Reusing a deleted point's key is safe: usearch has forgotten it,
    /// and keys never leave the tenant's lock, so no caller can hold a stale one.
    pub(super) fn allocate_key(&mut self) -> Result<u64, VectorStoreError> {
        if let Some(key) = self.free_keys.pop() {
            return Ok(key);
        }
        let key = self.slots.len() as u64;
        if key == FREE_KEY {
            return Err(VectorStoreError::Storage(
                "embedded index ran out of keys".to_string(),
            ));
        }
        self.slots.push(None);
        Ok(key)
    }

    /// Records a point under `key`, which must come from [`Self::allocate_key`] or a snapshot.
    pub(super) fn insert(&mut self, record: &EntryRecord) -> Result<(), VectorStoreError> {
        let index = usize::try_from(record.key)
            .ok()
            .filter(|_| record.key != FREE_KEY)
            .ok_or_else(|| {
                VectorStoreError::Storage(format!("invalid index key {}", record.key))
            })?;
        if self.slots.len() <= index {
            self.slots.resize(index + 1, None);
        }
        let category = self.intern(&record.category);
        let entry = Entry {
            memory_id: record.memory_id,
            user_id: record.user_id,
            category,
            created_at_ms: record.created_at_ms,
        };
        if let Some(previous) = self.slots[index].replace(entry) {
            self.unlink(record.key, &previous);
        } else {
            self.live += 1;
        }
        self.keys.insert(entry.memory_id, record.key);
        self.by_user
            .entry(entry.user_id)
            .or_default()
            .insert(record.key);
        self.by_category
            .entry(category)
            .or_default()
            .insert(record.key);
        Ok(())
    }

    pub(super) fn remove(&mut self, key: u64) {
        let Some(entry) = usize::try_from(key)
            .ok()
            .and_then(|index| self.slots.get_mut(index))
            .and_then(Option::take)
        else {
            return;
        };
        self.live -= 1;
        self.unlink(key, &entry);
        self.free_keys.push(key);
    }

    fn unlink(&mut self, key: u64, entry: &Entry) {
        self.keys.remove(&entry.memory_id);
        remove_posting(&mut self.by_user, entry.user_id, key);
        remove_posting(&mut self.by_category, entry.category, key);
    }

    /// After loading a snapshot: the holes between its keys become reusable.
    pub(super) fn collect_free_keys(&mut self) {
        self.free_keys = (0..self.slots.len() as u64)
            .rev()
            .filter(|key| self.entry(*key).is_none())
            .collect();
    }

    fn intern(&mut self, category: &str) -> u32 {
        if let Some(id) = self.category_ids.get(category) {
            return *id;
        }
        // Categories are a handful of wire names; u32 cannot run out in practice.
        let id = u32::try_from(self.categories.len()).unwrap_or(u32::MAX);
        self.categories.push(category.to_string());
        self.category_ids.insert(category.to_string(), id);
        id
    }

    pub(super) fn select(&self, filter: &VectorFilter) -> Selection<'_> {
        let category = match &filter.category {
            None => None,
            Some(name) => match self.category_ids.get(name) {
                Some(id) => Some(*id),
                None => return Selection::Nothing,
            },
        };
        let by_category = category.map(|id| self.by_category.get(&id));
        let by_user = filter.user_id.map(|user| self.by_user.get(&user));
        let (smallest, estimated_matches) = match (by_category, by_user) {
            (None, None) => return Selection::Everything,
            (Some(None), _) | (_, Some(None)) => return Selection::Nothing,
            (Some(Some(set)), None) | (None, Some(Some(set))) => (set, set.len()),
            (Some(Some(a)), Some(Some(b))) => {
                let smallest = if a.len() <= b.len() { a } else { b };
                // Taking the terms as independent: the share passing both is the product of shares.
                let estimated = a.len().saturating_mul(b.len()) / self.live.max(1);
                (smallest, estimated)
            }
        };
        Selection::Subset(Subset {
            category,
            user_id: filter.user_id,
            candidates: smallest,
            estimated_matches,
        })
    }

    /// Called from inside usearch's graph walk for every candidate, so it stays allocation-free.
    pub(super) fn accepts(&self, key: u64, subset: &Subset<'_>) -> bool {
        self.entry(key).is_some_and(|entry| {
            subset.category.is_none_or(|id| id == entry.category)
                && subset.user_id.is_none_or(|user| user == entry.user_id)
        })
    }

    pub(super) fn records(&self) -> impl Iterator<Item = EntryRecord> + '_ {
        let keyed = (0u64..).zip(&self.slots);
        keyed
            .filter_map(|(key, slot)| slot.as_ref().map(|entry| (key, entry)))
            .map(|(key, entry)| EntryRecord {
                key,
                memory_id: entry.memory_id,
                user_id: entry.user_id,
                category: self.category_name(entry.category).to_string(),
                created_at_ms: entry.created_at_ms,
            })
    }

    fn category_name(&self, id: u32) -> &str {
        usize::try_from(id)
            .ok()
            .and_then(|index| self.categories.get(index))
            .map_or("", String::as_str)
    }
}

fn remove_posting<K: std::hash::Hash + Eq>(
    postings: &mut HashMap<K, HashSet<u64>>,
    term: K,
    key: u64,
) {
    if let Some(set) = postings.get_mut(&term) {
        set.remove(&key);
        if set.is_empty() {
            // Dropping empty lists keeps `select` answering `Nothing` for users with no points.
            postings.remove(&term);
        }
    }
}
