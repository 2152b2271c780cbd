//! Writing, finding, changing and erasing a tenant's memories.

use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use super::ServiceError;
use super::access_counts::AccessCounts;
use super::cache::{Lookup, ReadCache, SearchKey};
use super::categorizer::Categorizer;
use super::events::{EventPublisher, TenantEvent};
use super::memory_quota::MemoryQuota;
use super::tenant_settings::TenantSettingsService;
use super::vector_sync::{IndexingState, VectorSync};
use crate::auth::scope::TenantScope;
use crate::domain::analytics::{AnalyticsEvent, EventType};
use crate::domain::limits::MAX_SEARCH_LIMIT;
use crate::domain::pii::{self, PiiPolicy};
use crate::domain::validation::{InputError, validate_content, validate_metadata};
use crate::domain::{Category, Memory, MemoryFilter, MemoryPatch, NewMemory};
use crate::embedding::Embedder;
use crate::stores::vector::{VectorFilter, VectorQuery, VectorStore, first};
use crate::stores::{IntegrationStore, MemoryRepository};

/// An analytics event of the caller in `scope`, now.
fn event_of(
    scope: &TenantScope,
    event_type: EventType,
    memory_id: Option<Uuid>,
    event_data: serde_json::Value,
) -> TenantEvent {
    TenantEvent {
        tenant: scope.tenant.name.clone(),
        tenant_id: Some(scope.tenant.tenant_id),
        isolation: scope.tenant.isolation,
        event: AnalyticsEvent {
            event_id: Uuid::now_v7(),
            event_type,
            user_id: Some(scope.user_id),
            memory_id,
            event_data,
            timestamp: Utc::now(),
            session_id: scope.session_id.clone(),
        },
    }
}

/// A memory as a caller submits it.
#[derive(Debug, Clone)]
pub struct CreateMemory {
    pub content: String,
    pub category: Option<Category>,
    pub metadata: Option<serde_json::Value>,
}

/// A change as a caller submits it; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct UpdateMemory {
    pub content: Option<String>,
    pub category: Option<Category>,
    pub metadata: Option<serde_json::Value>,
}

/// How to find memories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchMode {
    /// Closest in meaning.
    #[default]
    Semantic,
    /// Content contains the query text.
    Exact,
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: Option<String>,
    pub mode: SearchMode,
    pub filter: MemoryFilter,
    pub limit: u64,
}

/// A found memory; `score` is the cosine similarity for semantic searches.
#[derive(Debug, Clone)]
pub struct SearchHit {
    pub memory: Memory,
    pub score: Option<f32>,
}

/// Most vector candidates fetched when filters must be applied after the vector search.
const MAX_CANDIDATES: usize = 1_000;

pub struct MemoryService {
    memories: Arc<dyn MemoryRepository>,
    vectors: Arc<dyn VectorStore>,
    embedder: Arc<dyn Embedder>,
    categorizer: Arc<Categorizer>,
    vector_sync: Arc<VectorSync>,
    settings: Arc<TenantSettingsService>,
    /// `None` when analytics are switched off.
    events: Option<EventPublisher>,
    cache: Arc<ReadCache>,
    /// Search results counted as accesses, written in the background.
    access_counts: Arc<AccessCounts>,
    quota: MemoryQuota,
    /// Webhook deliveries, erased with the memories they show.
    webhook_deliveries: Option<Arc<dyn IntegrationStore>>,
}

/// How long a tenant's memory count is trusted before it is read again (see [`MemoryQuota`]).
const QUOTA_RECOUNT: std::time::Duration = std::time::Duration::from_secs(10);

/// Longest query text kept in a search event.
const MAX_EVENT_QUERY_CHARS: usize = 500;

impl MemoryService {
    pub fn new(
        memories: Arc<dyn MemoryRepository>,
        vectors: Arc<dyn VectorStore>,
        embedder: Arc<dyn Embedder>,
        categorizer: Arc<Categorizer>,
        vector_sync: Arc<VectorSync>,
        settings: Arc<TenantSettingsService>,
        access_counts: Arc<AccessCounts>,
    ) -> Self {
        Self {
            access_counts,
            quota: MemoryQuota::new(memories.clone(), QUOTA_RECOUNT),
            memories,
            vectors,
            embedder,
            categorizer,
            vector_sync,
            settings,
            events: None,
            cache: Arc::new(ReadCache::disabled()),
            webhook_deliveries: None,
        }
    }

    /// Erasing a memory (`purge`) also erases the webhook deliveries that show it.
    pub fn with_webhook_deliveries(mut self, deliveries: Arc<dyn IntegrationStore>) -> Self {
        self.webhook_deliveries = Some(deliveries);
        self
    }

    /// Publishes analytics events of every operation to `events`.
    pub fn with_events(mut self, events: EventPublisher) -> Self {
        self.events = Some(events);
        self
    }

    fn publish(&self, event: TenantEvent) {
        if let Some(events) = &self.events {
            events.publish(event);
        }
    }

    /// Serves repeated reads from `cache`; every write to a tenant invalidates its entries.
    pub fn with_cache(mut self, cache: Arc<ReadCache>) -> Self {
        self.cache = cache;
        self
    }

    pub async fn create(
        &self,
        scope: &TenantScope,
        input: CreateMemory,
    ) -> Result<(Memory, IndexingState), ServiceError> {
        validate_content(&input.content)?;
        let tenant_id = scope.tenant.tenant_id;
        let quota = self.settings.settings(tenant_id).await?.max_memories;
        if let Some(max) = quota {
            self.quota.admit(tenant_id, &scope.tenant.name, max).await?;
        }
        let created = self.create_admitted(scope, input).await;
        if created.is_err() && quota.is_some() {
            self.quota.released(tenant_id);
        }
        created
    }

    async fn create_admitted(
        &self,
        scope: &TenantScope,
        input: CreateMemory,
    ) -> Result<(Memory, IndexingState), ServiceError> {
        let content = self.screen_content(scope, input.content).await?;
        let metadata = input.metadata.unwrap_or_else(|| serde_json::json!({}));
        validate_metadata(&metadata)?;
        let metadata = self.screen_metadata(scope, metadata).await?;
        let embedding = self.embed_one(scope, &content).await?;
        let (category, confidence_score) = match input.category {
            Some(category) => (category, 1.0),
            None => self.categorizer.categorize(&embedding),
        };
        let new = NewMemory {
            memory_id: Uuid::now_v7(),
            content,
            category,
            confidence_score,
            metadata,
            embedding,
            user_id: scope.user_id,
            created_at: Utc::now(),
        };
        let tenant = &scope.tenant.name;
        self.vector_sync.intend(tenant, new.memory_id).await?;
        let invalidation = self.cache.guard(scope.tenant.tenant_id);
        let memory = self.memories.insert(tenant, &new).await?;
        let indexing = self
            .vector_sync
            .sync_or_defer(&scope.space(), memory.memory_id)
            .await;
        invalidation.finish().await;
        self.publish(event_of(
            scope,
            EventType::MemoryCreated,
            Some(memory.memory_id),
            serde_json::json!({
                "category": memory.category,
                "confidence_score": memory.confidence_score,
                "categorised": input.category.is_none(),
            }),
        ));
        Ok((memory, indexing))
    }

    /// The live memory; counts as an access. A cached copy saves the read, never the count:
    /// the count comes from the database with each access.
    pub async fn get(&self, scope: &TenantScope, id: Uuid) -> Result<Memory, ServiceError> {
        let tenant = &scope.tenant.name;
        let memory = match self.cache.memory(scope.tenant.tenant_id, id).await {
            Lookup::Hit(memory) if scope.sees(&memory) => memory,
            Lookup::Hit(_) => return Err(not_found(id)),
            Lookup::Miss(ticket) => {
                let memory = self.live(scope, id).await?;
                self.cache.store_memory(ticket, &memory).await;
                memory
            }
        };
        let access_count = self
            .memories
            .record_one_access(tenant, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        self.publish(event_of(
            scope,
            EventType::MemoryAccessed,
            Some(id),
            serde_json::json!({}),
        ));
        Ok(Memory {
            access_count,
            ..memory
        })
    }

    pub async fn search(
        &self,
        scope: &TenantScope,
        request: SearchRequest,
    ) -> Result<Vec<SearchHit>, ServiceError> {
        if request.limit == 0 || request.limit > MAX_SEARCH_LIMIT {
            return Err(InputError::Invalid {
                field: "limit",
                reason: format!("must be between 1 and {MAX_SEARCH_LIMIT}"),
            }
            .into());
        }
        let mut request = request;
        if let Some(owner) = scope.owner_only {
            match request.filter.user_id {
                Some(asked) if asked != owner => return Ok(Vec::new()),
                _ => request.filter.user_id = Some(owner),
            }
        }
        let tenant = &scope.tenant.name;
        let query = request
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty());
        // Results served from the cache carry the access counts of when they were cached.
        let key = SearchKey {
            owner_only: scope.owner_only,
            mode: request.mode,
            query,
            filter: &request.filter,
            limit: request.limit,
        };
        let ticket = match self.cache.search(scope.tenant.tenant_id, &key).await {
            Lookup::Hit(hits) => {
                self.count_accesses(scope, &hits);
                self.search_performed(scope, &request, query, &hits, true)
                    .await;
                return Ok(hits);
            }
            Lookup::Miss(ticket) => ticket,
        };
        let hits = match (query, request.mode) {
            (None, _) => unscored(
                self.memories
                    .list(tenant, &request.filter, request.limit)
                    .await?,
            ),
            (Some(text), SearchMode::Exact) => unscored(
                self.memories
                    .search_text(tenant, text, &request.filter, request.limit)
                    .await?,
            ),
            (Some(text), SearchMode::Semantic) => {
                self.semantic_search(scope, text, &request.filter, request.limit)
                    .await?
            }
        };
        self.cache.store_search(ticket, &hits).await;
        self.count_accesses(scope, &hits);
        self.search_performed(scope, &request, query, &hits, false)
            .await;
        Ok(hits)
    }

    pub async fn update(
        &self,
        scope: &TenantScope,
        id: Uuid,
        input: UpdateMemory,
    ) -> Result<(Memory, IndexingState), ServiceError> {
        let tenant = &scope.tenant.name;
        let mut patch = MemoryPatch::default();
        if let Some(content) = input.content {
            validate_content(&content)?;
            let content = self.screen_content(scope, content).await?;
            patch.embedding = Some(self.embed_one(scope, &content).await?);
            patch.content = Some(content);
        }
        if let Some(metadata) = input.metadata {
            validate_metadata(&metadata)?;
            patch.metadata = Some(self.screen_metadata(scope, metadata).await?);
        }
        patch.category = input.category.map(|category| (category, 1.0));
        let touches_vector = patch.embedding.is_some() || patch.category.is_some();
        if touches_vector || scope.owner_only.is_some() {
            self.live(scope, id).await?;
        }
        if touches_vector {
            self.vector_sync.intend(tenant, id).await?;
        }
        let invalidation = self.cache.guard(scope.tenant.tenant_id);
        let memory = self
            .memories
            .update(tenant, id, &patch, scope.user_id, Utc::now())
            .await?
            .ok_or_else(|| not_found(id))?;
        let indexing = if touches_vector {
            self.vector_sync.sync_or_defer(&scope.space(), id).await
        } else {
            IndexingState::Indexed
        };
        invalidation.finish().await;
        let changed: Vec<&str> = [
            ("content", patch.content.is_some()),
            ("category", patch.category.is_some()),
            ("metadata", patch.metadata.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, changed)| changed.then_some(field))
        .collect();
        self.publish(event_of(
            scope,
            EventType::MemoryUpdated,
            Some(id),
            serde_json::json!({ "fields": changed }),
        ));
        Ok((memory, indexing))
    }

    /// Soft-deletes (the row stays, marked deleted) or, with `purge`, erases everything.
    pub async fn delete(
        &self,
        scope: &TenantScope,
        id: Uuid,
        purge: bool,
    ) -> Result<(), ServiceError> {
        let tenant = &scope.tenant.name;
        let existing = self
            .memories
            .find(tenant, id)
            .await?
            .filter(|memory| scope.sees(memory))
            .ok_or_else(|| not_found(id))?;
        if existing.is_deleted && !purge {
            return Err(not_found(id));
        }
        self.vector_sync.intend(tenant, id).await?;
        let invalidation = self.cache.guard(scope.tenant.tenant_id);
        if purge {
            if self.memories.purge(tenant, id).await? {
                self.quota.released(scope.tenant.tenant_id);
            }
            if let Some(deliveries) = &self.webhook_deliveries {
                deliveries
                    .erase_memory_deliveries(scope.tenant.tenant_id, id)
                    .await?;
            }
        } else {
            self.memories
                .soft_delete(tenant, id, scope.user_id, Utc::now())
                .await?;
        }
        self.vector_sync.sync_or_defer(&scope.space(), id).await;
        invalidation.finish().await;
        // An erased memory leaves no trace, not even its id in an event.
        let (memory_id, data) = if purge {
            (None, serde_json::json!({ "purged": true }))
        } else {
            (Some(id), serde_json::json!({ "purged": false }))
        };
        self.publish(event_of(scope, EventType::MemoryDeleted, memory_id, data));
        Ok(())
    }

    async fn semantic_search(
        &self,
        scope: &TenantScope,
        text: &str,
        filter: &MemoryFilter,
        limit: u64,
    ) -> Result<Vec<SearchHit>, ServiceError> {
        let query = self.embed_one(scope, text).await?;
        let ef = self.settings.search_ef(scope.tenant.tenant_id).await?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        // Filters the vector store cannot apply are applied to the rows; fetch extra candidates.
        let candidates = if filter.needs_post_filter() {
            (limit * 10).min(MAX_CANDIDATES)
        } else {
            limit
        };
        let vector_filter = VectorFilter {
            category: filter.category.map(|c| c.as_str().to_string()),
            user_id: filter.user_id,
        };
        let vectors = [query.as_slice()];
        let query = VectorQuery::new(&vectors, candidates, &vector_filter).with_ef(ef);
        let scored = first(self.vectors.search(&scope.space(), query).await?);
        let ids: Vec<Uuid> = scored.iter().map(|s| s.memory_id).collect();
        let mut rows = self.memories.find_live(&scope.tenant.name, &ids).await?;
        let mut hits = Vec::with_capacity(limit);
        for scored in scored {
            let Some(position) = rows.iter().position(|m| m.memory_id == scored.memory_id) else {
                continue;
            };
            let memory = rows.swap_remove(position);
            if filter.matches(&memory) {
                hits.push(SearchHit {
                    memory,
                    score: Some(scored.score),
                });
            }
            if hits.len() == limit {
                break;
            }
        }
        Ok(hits)
    }

    /// Records a SEARCH_PERFORMED event: what was asked, how many results, the best score.
    /// Records the search as an event. The query is kept as the tenant's PII policy would keep
    /// a memory: personal data in it is masked unless the policy allows it (a search is never
    /// refused for what it asks).
    async fn search_performed(
        &self,
        scope: &TenantScope,
        request: &SearchRequest,
        query: Option<&str>,
        hits: &[SearchHit],
        cached: bool,
    ) {
        if self.events.is_none() {
            return;
        }
        let policy = match self.settings.pii_policy(scope.tenant.tenant_id).await {
            Ok(policy) => policy,
            // Unknown policy: keep nothing of the query rather than risk keeping personal data.
            Err(_) => PiiPolicy::Reject,
        };
        let stored_query = query.map(|q| {
            let q: String = q.chars().take(MAX_EVENT_QUERY_CHARS).collect();
            match policy {
                PiiPolicy::Allow => q,
                PiiPolicy::Mask | PiiPolicy::Reject => pii::mask(&q, &pii::detect(&q)),
            }
        });
        let mode = match (query, request.mode) {
            (None, _) => "list",
            (Some(_), SearchMode::Exact) => "exact",
            (Some(_), SearchMode::Semantic) => "semantic",
        };
        self.publish(event_of(
            scope,
            EventType::SearchPerformed,
            None,
            serde_json::json!({
                "query": stored_query,
                "mode": mode,
                "result_count": hits.len(),
                "top_score": hits.first().and_then(|hit| hit.score),
                "category": request.filter.category,
                "cached": cached,
            }),
        ));
    }

    /// Counts search results as accesses; they are written in the background.
    fn count_accesses(&self, scope: &TenantScope, hits: &[SearchHit]) {
        if hits.is_empty() {
            return;
        }
        self.access_counts.add(
            &scope.tenant.name,
            hits.iter().map(|hit| hit.memory.memory_id),
        );
    }

    /// Applies the tenant's PII policy: content passes, is masked, or the write is refused.
    async fn screen_content(
        &self,
        scope: &TenantScope,
        content: String,
    ) -> Result<String, ServiceError> {
        let policy = self.settings.pii_policy(scope.tenant.tenant_id).await?;
        let screened = screen_text(policy, "content", content)?;
        // Markers can be longer than what they replace.
        validate_content(&screened)?;
        Ok(screened)
    }

    /// The tenant's PII policy applied to every string value in `metadata`, keys left alone.
    async fn screen_metadata(
        &self,
        scope: &TenantScope,
        metadata: serde_json::Value,
    ) -> Result<serde_json::Value, ServiceError> {
        let policy = self.settings.pii_policy(scope.tenant.tenant_id).await?;
        if policy == PiiPolicy::Allow {
            return Ok(metadata);
        }
        let screened = screen_json(policy, metadata)?;
        validate_metadata(&screened)?;
        Ok(screened)
    }

    async fn live(&self, scope: &TenantScope, id: Uuid) -> Result<Memory, ServiceError> {
        match self.memories.find(&scope.tenant.name, id).await? {
            Some(memory) if !memory.is_deleted && scope.sees(&memory) => Ok(memory),
            _ => Err(not_found(id)),
        }
    }

    /// One text's vector, cached for the scope's tenant only.
    async fn embed_one(&self, scope: &TenantScope, text: &str) -> Result<Vec<f32>, ServiceError> {
        let mut vectors = self
            .embedder
            .embed_for(scope.tenant.tenant_id, vec![text.to_string()])
            .await?;
        vectors.pop().ok_or_else(|| {
            ServiceError::Embedding(crate::embedding::EmbeddingError::Inference(
                "the model returned no vector".to_string(),
            ))
        })
    }
}

/// `text` as `policy` keeps it: as it is, masked, or refused naming `field`.
fn screen_text(
    policy: PiiPolicy,
    field: &'static str,
    text: String,
) -> Result<String, ServiceError> {
    if policy == PiiPolicy::Allow {
        return Ok(text);
    }
    let findings = pii::detect(&text);
    if findings.is_empty() {
        return Ok(text);
    }
    match policy {
        PiiPolicy::Reject => Err(ServiceError::PiiRejected {
            field,
            kinds: pii::kinds(&findings),
        }),
        PiiPolicy::Mask | PiiPolicy::Allow => Ok(pii::mask(&text, &findings)),
    }
}

fn screen_json(
    policy: PiiPolicy,
    value: serde_json::Value,
) -> Result<serde_json::Value, ServiceError> {
    use serde_json::Value;
    Ok(match value {
        Value::String(text) => Value::String(screen_text(policy, "metadata", text)?),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| screen_json(policy, item))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, item)| Ok((key, screen_json(policy, item)?)))
                .collect::<Result<_, ServiceError>>()?,
        ),
        other => other,
    })
}

fn unscored(memories: Vec<Memory>) -> Vec<SearchHit> {
    memories
        .into_iter()
        .map(|memory| SearchHit {
            memory,
            score: None,
        })
        .collect()
}

fn not_found(id: Uuid) -> ServiceError {
    ServiceError::NotFound(format!("memory {id}"))
}
