//! Cache keys. Every key names the tenant and its generation, so one tenant can never read
//! another's entry and a bumped generation hides every older entry at once.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::MemoryFilter;
use crate::services::memory_service::SearchMode;
use crate::stores::cache::{CacheKind, EntryKey};

/// The key of a search's entry.
impl EntryKey {
    pub fn search(tenant_id: Uuid, generation: u64, search: &SearchKey<'_>) -> Self {
        Self {
            kind: CacheKind::Search,
            tenant_id,
            generation,
            subject: search.digest(tenant_id),
        }
    }
}

/// Everything a search's result depends on besides the tenant's data. The caller's
/// visibility is part of it: a member limited to its own memories never shares an entry with
/// a caller who sees the whole tenant.
#[derive(Debug, Clone, Copy)]
pub struct SearchKey<'a> {
    pub owner_only: Option<Uuid>,
    pub mode: SearchMode,
    pub query: Option<&'a str>,
    pub filter: &'a MemoryFilter,
    pub limit: u64,
}

impl SearchKey<'_> {
    /// SHA-256 over every field (and the tenant), each length-prefixed so no two different
    /// searches can produce the same input.
    pub fn digest(&self, tenant_id: Uuid) -> String {
        let mut fields = Fields(Sha256::new());
        fields.add(tenant_id.as_bytes());
        fields.optional(self.owner_only.as_ref().map(|id| id.as_bytes().as_slice()));
        fields.add(match self.mode {
            SearchMode::Semantic => "semantic".as_bytes(),
            SearchMode::Exact => "exact".as_bytes(),
        });
        fields.optional(self.query.map(str::as_bytes));
        let filter = self.filter;
        fields.optional(filter.category.map(|c| c.as_str().as_bytes()));
        fields.optional(filter.user_id.as_ref().map(|id| id.as_bytes().as_slice()));
        let after = filter.created_after.map(|t| t.to_rfc3339());
        fields.optional(after.as_deref().map(str::as_bytes));
        let before = filter.created_before.map(|t| t.to_rfc3339());
        fields.optional(before.as_deref().map(str::as_bytes));
        let metadata = filter
            .metadata
            .as_ref()
            .map(|(key, value)| (key.as_str(), value.to_string()));
        fields.optional(metadata.as_ref().map(|(key, _)| key.as_bytes()));
        fields.optional(metadata.as_ref().map(|(_, value)| value.as_bytes()));
        fields.add(&self.limit.to_le_bytes());
        let digest = fields.0.finalize();
        digest.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

struct Fields(Sha256);

impl Fields {
    fn add(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// An absent field hashes differently from any present one, even an empty one.
    fn optional(&mut self, bytes: Option<&[u8]>) {
        match bytes {
            None => self.0.update([0u8]),
            Some(bytes) => {
                self.0.update([1u8]);
                self.add(bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Category;

    fn search<'a>(filter: &'a MemoryFilter, query: Option<&'a str>) -> SearchKey<'a> {
        SearchKey {
            owner_only: None,
            mode: SearchMode::Semantic,
            query,
            filter,
            limit: 10,
        }
    }

    #[test]
    fn every_part_of_a_search_changes_its_digest() {
        let tenant = Uuid::new_v4();
        let filter = MemoryFilter::default();
        let base = search(&filter, Some("rust")).digest(tenant);
        assert_eq!(base, search(&filter, Some("rust")).digest(tenant));
        assert_ne!(base, search(&filter, Some("rust")).digest(Uuid::new_v4()));
        assert_ne!(base, search(&filter, Some("rusty")).digest(tenant));
        assert_ne!(base, search(&filter, None).digest(tenant));
        assert_ne!(base, search(&filter, Some("")).digest(tenant));
        let owner_only = SearchKey {
            owner_only: Some(Uuid::new_v4()),
            ..search(&filter, Some("rust"))
        };
        assert_ne!(base, owner_only.digest(tenant));
        let exact = SearchKey {
            mode: SearchMode::Exact,
            ..search(&filter, Some("rust"))
        };
        assert_ne!(base, exact.digest(tenant));
        let more = SearchKey {
            limit: 11,
            ..search(&filter, Some("rust"))
        };
        assert_ne!(base, more.digest(tenant));
        let technical = MemoryFilter {
            category: Some(Category::Technical),
            ..MemoryFilter::default()
        };
        assert_ne!(base, search(&technical, Some("rust")).digest(tenant));
        let tagged = MemoryFilter {
            metadata: Some(("team".to_string(), serde_json::json!("core"))),
            ..MemoryFilter::default()
        };
        let tagged_other = MemoryFilter {
            metadata: Some(("team".to_string(), serde_json::json!("edge"))),
            ..MemoryFilter::default()
        };
        assert_ne!(
            search(&tagged, None).digest(tenant),
            search(&tagged_other, None).digest(tenant)
        );
    }

    #[test]
    fn keys_name_tenant_generation_and_kind() {
        let tenant = Uuid::new_v4();
        let memory = Uuid::new_v4();
        let key = EntryKey::memory(tenant, 7, memory);
        assert_eq!(
            key.to_string(),
            format!("{}:7:memory:{}", tenant.simple(), memory.simple())
        );
        assert_ne!(key, EntryKey::memory(tenant, 8, memory));
        assert_ne!(key, EntryKey::memory(Uuid::new_v4(), 7, memory));
    }
}
