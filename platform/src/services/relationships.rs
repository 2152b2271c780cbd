//! Finds how a memory relates to others: its nearest neighbours by meaning, the memories it
//! names by id, and those sharing a URL or an issue/PR reference with it. Each candidate is
//! classified by [`crate::analysis::relationships::classify`].

use std::collections::{BTreeSet, HashMap};
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
use crate::stores::MemoryRepository;
use crate::stores::analytics::{FoundRelationship, RelationshipsOf};
use crate::stores::vector::{VectorFilter, VectorQuery, VectorSpace, VectorStore};

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

    /// Candidates by meaning: for each subject, its nearest neighbours with their similarity
    /// (the subject itself left out), all found in one batched search.
    async fn neighbours(
        &self,
        tenant: &TenantName,
        isolation: Isolation,
        subjects: &[Subject],
    ) -> Result<Vec<HashMap<Uuid, f32>>, ServiceError> {
        let space = VectorSpace {
            tenant: tenant.clone(),
            isolation,
        };
        let queries: Vec<&[f32]> = subjects.iter().map(|s| s.embedding.as_slice()).collect();
        let answered = self
            .vectors
            .search(
                &space,
                VectorQuery::new(&queries, NEIGHBOURS + 1, &VectorFilter::default()),
            )
            .await?;
        Ok(subjects
            .iter()
            .zip(answered)
            .map(|(subject, scored)| {
                scored
                    .into_iter()
                    .filter(|s| s.memory_id != subject.memory.memory_id)
                    .map(|s| (s.memory_id, s.score))
                    .collect()
            })
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

/// A live memory whose relationships are being found, with its embedding.
struct Subject {
    memory: Memory,
    embedding: Vec<f32>,
}

#[async_trait]
impl RelationshipFinder for RelationshipDiscovery {
    async fn find(
        &self,
        tenant: &TenantName,
        isolation: Isolation,
        memory_ids: &[Uuid],
    ) -> Result<Vec<RelationshipsOf>, ServiceError> {
        let subjects: Vec<Subject> = self
            .memories
            .vector_sources(tenant, memory_ids)
            .await?
            .into_iter()
            .filter(|source| !source.memory.is_deleted)
            .filter_map(|source| {
                let memory = source.memory;
                source
                    .embedding
                    .map(|embedding| Subject { memory, embedding })
            })
            .collect();
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let neighbours = self.neighbours(tenant, isolation, &subjects).await?;
        let wanted: BTreeSet<Uuid> = neighbours.iter().flat_map(|n| n.keys().copied()).collect();
        let live: HashMap<Uuid, Memory> = self
            .memories
            .find_live(tenant, &wanted.into_iter().collect::<Vec<_>>())
            .await?
            .into_iter()
            .map(|memory| (memory.memory_id, memory))
            .collect();
        let mut all = Vec::with_capacity(subjects.len());
        for (subject, mut scores) in subjects.iter().zip(neighbours) {
            let mut candidates: Vec<&Memory> =
                scores.keys().filter_map(|id| live.get(id)).collect();
            let referenced = self
                .referenced_elsewhere(tenant, subject, &mut scores)
                .await?;
            candidates.extend(referenced.iter());
            all.push(RelationshipsOf {
                source: subject.memory.memory_id,
                found: self.classify_all(subject, &candidates, &scores),
            });
        }
        Ok(all)
    }
}

impl RelationshipDiscovery {
    /// Memories the subject refers to that are not among its neighbours, each with its
    /// similarity (from its stored embedding) added to `scores`.
    async fn referenced_elsewhere(
        &self,
        tenant: &TenantName,
        subject: &Subject,
        scores: &mut HashMap<Uuid, f32>,
    ) -> Result<Vec<Memory>, ServiceError> {
        let subject_id = subject.memory.memory_id;
        let others: Vec<Uuid> = self
            .referenced(tenant, &subject.memory.content)
            .await?
            .into_iter()
            .map(|memory| memory.memory_id)
            .filter(|id| *id != subject_id && !scores.contains_key(id))
            .collect();
        let mut found = Vec::new();
        for source in self.memories.vector_sources(tenant, &others).await? {
            // Not a neighbour: its similarity comes from its stored embedding.
            if let Some(other) = source.embedding.filter(|_| !source.memory.is_deleted) {
                scores.insert(
                    source.memory.memory_id,
                    similarity(&subject.embedding, &other),
                );
                found.push(source.memory);
            }
        }
        Ok(found)
    }

    /// Every relationship the rules see between the subject and its candidates.
    fn classify_all(
        &self,
        subject: &Subject,
        candidates: &[&Memory],
        scores: &HashMap<Uuid, f32>,
    ) -> Vec<FoundRelationship> {
        let subject_view = view(&subject.memory, &subject.embedding);
        let mut found = Vec::new();
        for candidate in candidates {
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
        found
    }
}
