//! Recurring topics among memories: groups of memories close in meaning, each named by the
//! words that set it apart from the rest.
//!
//! Clustering is greedy and deterministic: memories are visited oldest first (ties by id) and
//! each joins the cluster whose centroid is most similar, if that reaches the threshold, or
//! starts a new one. One pass over n memories and k clusters costs O(n·k·d); the analytics job
//! bounds n by looking at a window of recent memories.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::MemoryView;
use super::references::strip_references;
use super::text::{is_content_word, stem, tokens};

/// A group of memories about one topic.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternCluster {
    /// Oldest first.
    pub members: Vec<Uuid>,
    /// Two to four words that characterise the group, most characteristic first; fewer when
    /// the memories share fewer words.
    pub topic: String,
    /// Mean similarity of the members to their centroid, 0..1.
    pub cohesion: f64,
}

/// Most words in a topic.
const MAX_TOPIC_TERMS: usize = 4;
/// Fewest words in a topic when the memories offer that many.
const MIN_TOPIC_TERMS: usize = 2;

/// Clusters of at least `min_cluster` memories (never fewer than two: one memory is not a
/// pattern) whose members each joined at `similarity` or above to the centroid. Memories
/// without an embedding, or with one of another length than the first, are left out. Largest
/// clusters first.
pub fn find_patterns(
    memories: &[MemoryView],
    min_cluster: usize,
    similarity: f32,
) -> Vec<PatternCluster> {
    let dimension = memories
        .iter()
        .map(|m| m.embedding.len())
        .find(|len| *len > 0);
    let mut order: Vec<&MemoryView> = memories
        .iter()
        .filter(|m| Some(m.embedding.len()) == dimension)
        .collect();
    order.sort_by_key(|m| (m.created_at, m.memory_id));

    let mut clusters: Vec<Centroid> = Vec::new();
    for (index, memory) in order.iter().enumerate() {
        let best = clusters
            .iter()
            .enumerate()
            .map(|(at, cluster)| (at, cluster.similarity(memory.embedding)))
            .filter(|(_, score)| *score >= similarity)
            .fold(None, |best: Option<(usize, f32)>, candidate| match best {
                Some((_, score)) if score >= candidate.1 => best,
                _ => Some(candidate),
            });
        match best {
            Some((at, _)) => clusters[at].add(index, memory.embedding),
            None => clusters.push(Centroid::new(index, memory.embedding)),
        }
    }

    let vocabulary: Vec<Vocabulary> = order.iter().map(|m| Vocabulary::of(m.content)).collect();
    let mut found: Vec<PatternCluster> = clusters
        .into_iter()
        .filter(|c| c.members.len() >= min_cluster.max(2))
        .map(|cluster| {
            let cohesion = cluster
                .members
                .iter()
                .map(|&i| f64::from(cluster.similarity(order[i].embedding)))
                .sum::<f64>()
                / cluster.members.len() as f64;
            PatternCluster {
                members: cluster
                    .members
                    .iter()
                    .map(|&i| order[i].memory_id)
                    .collect(),
                topic: topic(&cluster.members, &vocabulary),
                cohesion: cohesion.clamp(0.0, 1.0),
            }
        })
        .collect();
    // Stable sort: equal sizes keep the order of their oldest member.
    found.sort_by_key(|c| std::cmp::Reverse(c.members.len()));
    found
}

/// A cluster being built: its members (indices into the visiting order) and the sum of their
/// vectors, whose direction is the centroid.
struct Centroid {
    members: Vec<usize>,
    sum: Vec<f32>,
}

impl Centroid {
    fn new(index: usize, embedding: &[f32]) -> Self {
        Self {
            members: vec![index],
            sum: embedding.to_vec(),
        }
    }

    fn add(&mut self, index: usize, embedding: &[f32]) {
        self.members.push(index);
        for (total, value) in self.sum.iter_mut().zip(embedding) {
            *total += value;
        }
    }

    /// Cosine similarity of a normalised vector to the centroid.
    fn similarity(&self, embedding: &[f32]) -> f32 {
        let norm = self.sum.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm == 0.0 {
            return 0.0;
        }
        self.sum
            .iter()
            .zip(embedding)
            .map(|(x, y)| x * y)
            .sum::<f32>()
            / norm
    }
}

/// The content terms of one memory and how each was written.
struct Vocabulary {
    /// Stem → written forms with their counts.
    terms: BTreeMap<String, BTreeMap<String, usize>>,
}

impl Vocabulary {
    fn of(content: &str) -> Self {
        let mut terms: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for word in tokens(&strip_references(content)) {
            if is_content_word(&word) {
                *terms
                    .entry(stem(&word))
                    .or_default()
                    .entry(word)
                    .or_default() += 1;
            }
        }
        Self { terms }
    }
}

/// The words that best tell a cluster apart: frequent among its members (in how many of them
/// a word appears) and rare among all memories (an inverse document frequency factor). Words in
/// a single member only count when fewer than two words are shared.
fn topic(members: &[usize], vocabulary: &[Vocabulary]) -> String {
    let total = vocabulary.len() as f64;
    let mut everywhere: BTreeMap<&str, usize> = BTreeMap::new();
    for memory in vocabulary {
        for term in memory.terms.keys() {
            *everywhere.entry(term).or_default() += 1;
        }
    }
    let mut inside: BTreeMap<&str, usize> = BTreeMap::new();
    let mut written: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for &member in members {
        for (term, forms) in &vocabulary[member].terms {
            *inside.entry(term).or_default() += 1;
            let entry = written.entry(term).or_default();
            for (form, count) in forms {
                *entry.entry(form).or_default() += count;
            }
        }
    }
    let shared = inside.values().filter(|&&n| n >= 2).count();
    let floor = if shared >= MIN_TOPIC_TERMS { 2 } else { 1 };
    let mut scored: Vec<(f64, usize, &str)> = inside
        .iter()
        .filter(|(_, n)| **n >= floor)
        .map(|(term, &n)| {
            let spread = n as f64 / members.len() as f64;
            let rarity = 1.0 + (total / everywhere.get(term).copied().unwrap_or(1) as f64).ln();
            (spread * rarity, n, *term)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
    let top = scored.first().map_or(0.0, |s| s.0);
    let mut chosen = BTreeSet::new();
    let mut words = Vec::new();
    for (score, _, term) in scored {
        if words.len() >= MAX_TOPIC_TERMS || (words.len() >= MIN_TOPIC_TERMS && score < top * 0.5) {
            break;
        }
        // The most frequent spelling, alphabetically first among equals.
        let form = written
            .get(term)
            .and_then(|forms| {
                forms
                    .iter()
                    .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                    .map(|(form, _)| *form)
            })
            .unwrap_or(term);
        if chosen.insert(form) {
            words.push(form);
        }
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::domain::Category;

    /// Unit vectors along `axis`, tilted by `tilt` towards the next axis, in 4 dimensions.
    fn vector(axis: usize, tilt: f32) -> Vec<f32> {
        let mut v = vec![0.0; 4];
        v[axis] = 1.0;
        v[(axis + 1) % 4] = tilt;
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect()
    }

    fn view<'a>(id: u128, day: i64, content: &'a str, embedding: &'a [f32]) -> MemoryView<'a> {
        MemoryView {
            memory_id: Uuid::from_u128(id),
            user_id: Uuid::from_u128(1),
            content,
            category: Category::Workflow,
            confidence_score: 0.9,
            created_at: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default()
                + Duration::days(day),
            access_count: 0,
            embedding,
        }
    }

    #[test]
    fn groups_close_vectors_and_names_them() {
        let deploy = [vector(0, 0.0), vector(0, 0.2), vector(0, 0.3)];
        let billing = [vector(2, 0.1), vector(2, 0.25)];
        let lonely = vector(1, 0.0);
        let memories = vec![
            view(
                1,
                0,
                "Rollback the deploy pipeline when canary checks fail.",
                &deploy[0],
            ),
            view(
                2,
                4,
                "Invoices are generated by the billing service monthly.",
                &billing[0],
            ),
            view(
                3,
                1,
                "The deploy pipeline rollback takes five minutes.",
                &deploy[1],
            ),
            view(
                4,
                5,
                "Billing service retries failed invoices twice.",
                &billing[1],
            ),
            view(
                5,
                2,
                "Deploy pipeline rollback is manual for the database.",
                &deploy[2],
            ),
            view(6, 3, "I like dark mode.", &lonely),
        ];
        let found = find_patterns(&memories, 2, 0.8);
        assert_eq!(found.len(), 2, "{found:?}");
        let ids = |ids: &[u128]| ids.iter().map(|&i| Uuid::from_u128(i)).collect::<Vec<_>>();
        assert_eq!(found[0].members, ids(&[1, 3, 5]));
        assert_eq!(found[1].members, ids(&[2, 4]));
        assert_eq!(found[0].topic, "deploy pipeline rollback");
        assert_eq!(found[1].topic, "billing invoices service");
        assert!(found[0].cohesion > 0.95 && found[0].cohesion <= 1.0);

        // A larger minimum drops the pair; a stricter threshold splits everything apart.
        assert_eq!(find_patterns(&memories, 3, 0.8).len(), 1);
        assert!(find_patterns(&memories, 2, 0.999).is_empty());
        // One memory is never a pattern.
        assert_eq!(find_patterns(&memories, 0, 0.8).len(), 2);
    }

    #[test]
    fn deterministic_whatever_the_input_order() {
        let a = vector(0, 0.0);
        let b = vector(0, 0.1);
        let c = vector(3, 0.0);
        let d = vector(3, 0.1);
        let mut memories = vec![
            view(1, 0, "alpha beta", &a),
            view(2, 1, "alpha gamma", &b),
            view(3, 2, "delta epsilon", &c),
            view(4, 3, "delta zeta", &d),
        ];
        let first = find_patterns(&memories, 2, 0.9);
        memories.reverse();
        assert_eq!(find_patterns(&memories, 2, 0.9), first);
        assert_eq!(first.len(), 2);
    }

    #[test]
    fn skips_memories_without_a_usable_embedding() {
        let a = vector(0, 0.0);
        let short = [1.0_f32, 0.0];
        let memories = vec![
            view(1, 0, "one", &a),
            view(2, 1, "two", &[]),
            view(3, 2, "three", &short),
            view(4, 3, "four", &a),
        ];
        let found = find_patterns(&memories, 2, 0.9);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].members,
            vec![Uuid::from_u128(1), Uuid::from_u128(4)]
        );
        assert!(find_patterns(&[], 2, 0.5).is_empty());
    }
}
