//! Finds how a memory relates to others: its nearest neighbours by meaning, the memories it
//! names by id, and those sharing a URL or an issue/PR reference with it. Each candidate is
//! classified by [`crate::analysis::relationships::classify`].

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use memoryc_crds::layout::{Isolation, TenantName};
use uuid::Uuid;

use super::ServiceError;
use super::events::processor::RelationshipFinder;
use crate::analysis::references::{Reference, extract_references};
use crate::analysis::relationships::{RelationshipThresholds, classify};
use crate::analysis::{MemoryView, similarity};
use crate::domain::{Memory, MemoryFilter};
use crate::stores::analytics::FoundRelationship;
use crate::stores::vector::{VectorFilter, VectorSpace, VectorStore};
use crate::stores::{MemoryRepository, VectorSource};

/// Nearest neighbours looked at for each memory.
const NEIGHBOURS: usize = 10;
/// Most references followed from one memory.
const MAX_REFERENCES: usize = 5;
/// Most memories found per shared reference.
const PER_REFERENCE: u64 = 10;

pub struct RelationshipDiscovery {
    memories: Arc<dyn MemoryRepository>,
    vectors: Arc<dyn VectorStore>,
    thresholds: RelationshipThresholds,
}

impl RelationshipDiscovery {
    pub fn new(
        memories: Arc<dyn MemoryRepository>,
        vectors: Arc<dyn VectorStore>,
        thresholds: RelationshipThresholds,
    ) -> Self {
        Self {
            memories,
            vectors,
            thresholds,
        }
    }

    /// Candidates by meaning: the nearest live neighbours with their similarity.
    async fn neighbours(
        &self,
        tenant: &TenantName,
        isolation: Isolation,
        subject: &VectorSource,
        embedding: &[f32],
    ) -> Result<HashMap<Uuid, f32>, ServiceError> {
        let space = VectorSpace {
            tenant: tenant.clone(),
            isolation,
        };
        let scored = self
            .vectors
            .search(&space, embedding, NEIGHBOURS + 1, &VectorFilter::default())
            .await?;
        Ok(scored
            .into_iter()
            .filter(|s| s.memory_id != subject.memory.memory_id)
            .map(|s| (s.memory_id, s.score))
            .collect())
    }

    /// Candidates by reference: memories named by id, and memories mentioning the same URL
    /// or issue.
    async fn referenced(
        &self,
        tenant: &TenantName,
        content: &str,
    ) -> Result<Vec<Memory>, ServiceError> {
        let references: Vec<Reference> = extract_references(content)
            .into_iter()
            .take(MAX_REFERENCES)
            .collect();
        let named: Vec<Uuid> = references
            .iter()
            .filter_map(|r| match r {
                Reference::Memory(id) => Some(*id),
                _ => None,
            })
            .collect();
        let mut found = self.memories.find_live(tenant, &named).await?;
        for reference in references.iter().filter(|r| r.is_shareable()) {
            for needle in needles(reference) {
                let hits = self
                    .memories
                    .search_text(tenant, &needle, &MemoryFilter::default(), PER_REFERENCE)
                    .await?;
                found.extend(hits);
            }
        }
        found.sort_by_key(|m| m.memory_id);
        found.dedup_by_key(|m| m.memory_id);
        Ok(found)
    }
}

/// Texts that a memory carrying `reference` contains, in one of its usual spellings.
fn needles(reference: &Reference) -> Vec<String> {
    match reference {
        Reference::Url(url) => vec![
            url.split_once("://")
                .map_or(url.as_str(), |(_, rest)| rest)
                .to_string(),
        ],
        Reference::Issue { repository, number } => vec![
            format!("{repository}#{number}"),
            format!("{repository}/issues/{number}"),
            format!("{repository}/pull/{number}"),
        ],
        Reference::Memory(_) | Reference::BareIssue(_) => Vec::new(),
    }
}

fn view<'a>(memory: &'a Memory, embedding: &'a [f32]) -> MemoryView<'a> {
    MemoryView {
        memory_id: memory.memory_id,
        user_id: memory.user_id,
        content: &memory.content,
        category: memory.category,
        confidence_score: memory.confidence_score,
        created_at: memory.created_at,
        access_count: memory.access_count,
        embedding,
    }
}

#[async_trait]
impl RelationshipFinder for RelationshipDiscovery {
    async fn find(
        &self,
        tenant: &TenantName,
        isolation: Isolation,
        memory_id: Uuid,
    ) -> Result<Option<Vec<FoundRelationship>>, ServiceError> {
        let Some(subject) = self.memories.vector_source(tenant, memory_id).await? else {
            return Ok(None);
        };
        let Some(embedding) = subject
            .embedding
            .clone()
            .filter(|_| !subject.memory.is_deleted)
        else {
            return Ok(None);
        };
        let mut scores = self
            .neighbours(tenant, isolation, &subject, &embedding)
            .await?;
        let mut candidates = self
            .memories
            .find_live(tenant, &scores.keys().copied().collect::<Vec<_>>())
            .await?;
        for memory in self.referenced(tenant, &subject.memory.content).await? {
            if memory.memory_id != memory_id && !scores.contains_key(&memory.memory_id) {
                // Not a neighbour: its similarity comes from its stored embedding.
                if let Some(source) = self
                    .memories
                    .vector_source(tenant, memory.memory_id)
                    .await?
                    && let Some(other) = source.embedding
                {
                    scores.insert(memory.memory_id, similarity(&embedding, &other));
                    candidates.push(memory);
                }
            }
        }
        let subject_view = view(&subject.memory, &embedding);
        let mut found = Vec::new();
        for candidate in &candidates {
            let Some(score) = scores.get(&candidate.memory_id).copied() else {
                continue;
            };
            // The neighbour's own vector is not needed by the rules; they read the similarity.
            let neighbour = view(candidate, &[]);
            for finding in classify(&subject_view, &neighbour, score, &self.thresholds) {
                found.push(FoundRelationship {
                    target_memory_id: candidate.memory_id,
                    relationship_type: finding.relationship_type,
                    strength: finding.strength,
                    context: finding.context,
                });
            }
        }
        Ok(Some(found))
    }
}
