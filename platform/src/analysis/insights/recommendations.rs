//! RECOMMENDATION insights: memories saying the same thing (consolidate them), memories nobody
//! has read in a long time (review them) and questions people keep asking without an answer
//! (write one down).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{InsightConfig, InsightDraft, fingerprint, masked, single_owner};
use crate::analysis::text::snippet;
use crate::analysis::{MemoryView, SearchRecord, similarity};
use crate::domain::analytics::InsightType;

/// Every recommendation: near-duplicate groups, stale memories per user, then missed searches.
pub fn recommendations(
    memories: &[MemoryView],
    searches: &[SearchRecord],
    now: DateTime<Utc>,
    cfg: &InsightConfig,
) -> Vec<InsightDraft> {
    let mut drafts = near_duplicates(memories, cfg);
    drafts.extend(stale(memories, now, cfg));
    drafts.extend(missed_searches(searches, cfg));
    drafts
}

/// Groups of memories linked by similarity at or above `duplicate_similarity` (or by the same
/// text). Pairwise comparison, O(n²) over the window the job passes in.
fn near_duplicates(memories: &[MemoryView], cfg: &InsightConfig) -> Vec<InsightDraft> {
    let mut order: Vec<&MemoryView> = memories.iter().collect();
    order.sort_by_key(|m| (m.created_at, m.memory_id));
    order.dedup_by_key(|m| m.memory_id);
    let normalised: Vec<String> = order
        .iter()
        .map(|m| {
            m.content
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        })
        .collect();

    let mut groups = Groups::new(order.len());
    for i in 0..order.len() {
        for j in i + 1..order.len() {
            let score = if normalised[i] == normalised[j] {
                1.0
            } else if order[i].embedding.is_empty() {
                continue;
            } else {
                similarity(order[i].embedding, order[j].embedding)
            };
            if score >= cfg.duplicate_similarity {
                groups.link(i, j, score);
            }
        }
    }

    groups
        .into_groups()
        .into_iter()
        .map(|(members, mean)| {
            let oldest = order[members[0]];
            let content = format!(
                "Consolidate {} near-duplicate memories (similarity {mean:.2}): \"{}\"",
                members.len(),
                snippet(&masked(oldest.content), 80)
            );
            let group: Vec<&MemoryView> = members.iter().map(|&i| order[i]).collect();
            InsightDraft::about_memories(
                InsightType::Recommendation,
                "near_duplicates",
                content,
                f64::from(mean),
                group.iter().map(|m| m.memory_id),
                single_owner(group.iter().copied()),
            )
        })
        .collect()
}

/// Connected groups of linked memories with the mean similarity of their links (union-find).
struct Groups {
    parent: Vec<usize>,
    links: Vec<(usize, f32)>,
}

impl Groups {
    fn new(size: usize) -> Self {
        Self {
            parent: (0..size).collect(),
            links: Vec::new(),
        }
    }

    fn root(&mut self, mut at: usize) -> usize {
        while self.parent[at] != at {
            self.parent[at] = self.parent[self.parent[at]];
            at = self.parent[at];
        }
        at
    }

    fn link(&mut self, a: usize, b: usize, score: f32) {
        let (ra, rb) = (self.root(a), self.root(b));
        // The smaller index stays the root, so a group is named by its oldest memory.
        let (keep, merge) = if ra <= rb { (ra, rb) } else { (rb, ra) };
        self.parent[merge] = keep;
        self.links.push((a, score));
    }

    /// Groups of two or more, oldest member first, each with its mean link similarity.
    fn into_groups(mut self) -> Vec<(Vec<usize>, f32)> {
        let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for at in 0..self.parent.len() {
            let root = self.root(at);
            members.entry(root).or_default().push(at);
        }
        let mut scores: BTreeMap<usize, (f32, usize)> = BTreeMap::new();
        for (at, score) in std::mem::take(&mut self.links) {
            let root = self.root(at);
            let entry = scores.entry(root).or_default();
            entry.0 += score;
            entry.1 += 1;
        }
        members
            .into_iter()
            .filter(|(_, m)| m.len() >= 2)
            .map(|(root, m)| {
                let (sum, count) = scores.get(&root).copied().unwrap_or((0.0, 1));
                (m, sum / count.max(1) as f32)
            })
            .collect()
    }
}

/// Per user, the memories older than `stale_after` that were never read. Confidence grows
/// with how far past the limit they are on average: 0.6 right at it, towards 0.9.
fn stale(memories: &[MemoryView], now: DateTime<Utc>, cfg: &InsightConfig) -> Vec<InsightDraft> {
    let cutoff = now - cfg.stale_after;
    let mut per_user: BTreeMap<Uuid, Vec<&MemoryView>> = BTreeMap::new();
    for memory in memories {
        if memory.access_count <= 0 && memory.created_at <= cutoff {
            per_user.entry(memory.user_id).or_default().push(memory);
        }
    }
    let limit_seconds = cfg.stale_after.num_seconds().max(1) as f64;
    per_user
        .into_iter()
        .map(|(user, group)| {
            let mean_age = group
                .iter()
                .map(|m| (now - m.created_at).num_seconds() as f64)
                .sum::<f64>()
                / group.len() as f64;
            let ratio = (mean_age / limit_seconds).max(1.0);
            let content = format!(
                "{} {} older than {} days never read; review, update or delete {}",
                group.len(),
                if group.len() == 1 {
                    "memory"
                } else {
                    "memories"
                },
                cfg.stale_after.num_days(),
                if group.len() == 1 { "it" } else { "them" },
            );
            InsightDraft::about_memories(
                InsightType::Recommendation,
                "stale",
                content,
                0.9 - 0.3 / ratio,
                group.iter().map(|m| m.memory_id),
                Some(user),
            )
        })
        .collect()
}

/// Queries (compared lower-cased, whitespace collapsed, without closing punctuation) that
/// found nothing, or nothing good, at least `missed_min_count` times. Most-missed first.
fn missed_searches(searches: &[SearchRecord], cfg: &InsightConfig) -> Vec<InsightDraft> {
    let mut misses: BTreeMap<String, usize> = BTreeMap::new();
    for search in searches {
        let missed = search.result_count == 0
            || search
                .top_score
                .is_some_and(|score| score < cfg.missed_score);
        let query = normalise_query(&search.query);
        if missed && !query.is_empty() {
            *misses.entry(query).or_default() += 1;
        }
    }
    let mut frequent: Vec<(String, usize)> = misses
        .into_iter()
        .filter(|(_, count)| *count >= cfg.missed_min_count.max(1))
        .collect();
    frequent.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    frequent
        .into_iter()
        .map(|(query, count)| InsightDraft {
            insight_type: InsightType::Recommendation,
            content: format!(
                "\"{}\" was searched {count} times without a good match; store a memory that answers it",
                snippet(&masked(&query), 80)
            ),
            confidence: count as f64 / (count as f64 + 1.0),
            supporting_memories: Vec::new(),
            key: fingerprint(InsightType::Recommendation, "missed_search", &[query]),
            user_id: None,
        })
        .collect()
}

/// The form queries are compared in.
pub fn normalise_query(query: &str) -> String {
    query
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
        .trim_end_matches(['?', '!', '.'])
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::super::fixtures::{id, memory, now};
    use super::*;

    fn of_kind<'a>(drafts: &'a [InsightDraft], kind: &str) -> Vec<&'a InsightDraft> {
        drafts
            .iter()
            .filter(|d| d.key.starts_with(&format!("RECOMMENDATION:{kind}:")))
            .collect()
    }

    #[test]
    fn near_duplicates_are_grouped() {
        let x = [1.0_f32, 0.0, 0.0];
        let x2 = [0.98_f32, 0.199, 0.0];
        let y = [0.0_f32, 0.0, 1.0];
        let memories = [
            memory(3, 5, "Deploys need two approvals.", &x2),
            memory(1, 9, "Deploys need two approvals before merging.", &x),
            memory(2, 1, "Ask alice@example.com for access.", &y),
            memory(4, 2, "ask  ALICE@example.com for access.", &[]),
            memory(5, 3, "Unrelated note about lunch.", &[0.0, 1.0, 0.0]),
        ];
        let drafts = recommendations(&memories, &[], now(), &InsightConfig::default());
        let groups = of_kind(&drafts, "near_duplicates");
        assert_eq!(groups.len(), 2, "{drafts:?}");
        assert_eq!(groups[0].supporting_memories, vec![id(1), id(3)]);
        assert!(
            groups[0]
                .content
                .starts_with("Consolidate 2 near-duplicate memories")
        );
        assert!(
            groups[0]
                .content
                .contains("Deploys need two approvals before merging")
        );
        assert!((groups[0].confidence - 0.98).abs() < 0.01);
        assert_eq!(groups[0].user_id, Some(id(100)));
        // Same text, one without an embedding; the e-mail address stays out of the insight.
        assert_eq!(groups[1].supporting_memories, vec![id(2), id(4)]);
        assert!((groups[1].confidence - 1.0).abs() < 1e-9);
        assert!(
            !groups[1].content.contains("alice@"),
            "{}",
            groups[1].content
        );
        assert!(groups[1].content.contains("[EMAIL]"));
    }

    #[test]
    fn near_duplicate_chains_form_one_group() {
        let a = [1.0_f32, 0.0];
        let b = [0.97_f32, 0.243];
        let c = [0.883_f32, 0.469];
        let memories = [
            memory(1, 3, "a", &a),
            memory(2, 2, "b", &b),
            memory(3, 1, "c", &c),
        ];
        let drafts = recommendations(&memories, &[], now(), &InsightConfig::default());
        let groups = of_kind(&drafts, "near_duplicates");
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].supporting_memories, vec![id(1), id(2), id(3)]);
        // A stricter threshold breaks the chain.
        let strict = InsightConfig {
            duplicate_similarity: 0.99,
            ..InsightConfig::default()
        };
        assert!(
            of_kind(
                &recommendations(&memories, &[], now(), &strict),
                "near_duplicates"
            )
            .is_empty()
        );
    }

    #[test]
    fn stale_memories_are_never_read_and_old() {
        let mut old_unread = memory(1, 200, "old unread", &[]);
        old_unread.access_count = 0;
        let mut old_read = memory(2, 200, "old read", &[]);
        old_read.access_count = 3;
        let mut new_unread = memory(3, 10, "new unread", &[]);
        new_unread.access_count = 0;
        let mut other_user = memory(4, 91, "someone else's", &[]);
        other_user.access_count = 0;
        other_user.user_id = id(200);
        let memories = [old_unread, old_read, new_unread, other_user];
        let drafts = recommendations(&memories, &[], now(), &InsightConfig::default());
        let stale = of_kind(&drafts, "stale");
        assert_eq!(stale.len(), 2);
        assert_eq!(stale[0].supporting_memories, vec![id(1)]);
        assert_eq!(stale[0].user_id, Some(id(100)));
        assert_eq!(
            stale[0].content,
            "1 memory older than 90 days never read; review, update or delete it"
        );
        assert_eq!(stale[1].supporting_memories, vec![id(4)]);
        // Further past the limit, more sure.
        assert!(stale[0].confidence > stale[1].confidence);
        assert!(stale[1].confidence >= 0.6 && stale[0].confidence < 0.9);

        let longer = InsightConfig {
            stale_after: Duration::days(365),
            ..InsightConfig::default()
        };
        assert!(of_kind(&recommendations(&memories, &[], now(), &longer), "stale").is_empty());
    }

    #[test]
    fn repeatedly_missed_searches() {
        let search = |query: &str, results: usize, top: Option<f32>| SearchRecord {
            query: query.to_string(),
            result_count: results,
            top_score: top,
            at: now(),
        };
        let searches = [
            search("How do I rotate the API key?", 0, None),
            search("how do i   rotate the api key", 2, Some(0.21)),
            search("HOW DO I ROTATE THE API KEY?", 0, None),
            search("how do i rotate the api key", 3, Some(0.82)),
            search("deploy window", 0, None),
            search("deploy window", 0, None),
            search("   ", 0, None),
            search("   ", 0, None),
            search("   ", 0, None),
        ];
        let drafts = recommendations(&[], &searches, now(), &InsightConfig::default());
        let missed = of_kind(&drafts, "missed_search");
        assert_eq!(missed.len(), 1, "{drafts:?}");
        assert_eq!(
            missed[0].content,
            "\"how do i rotate the api key\" was searched 3 times without a good match; store a memory that answers it"
        );
        assert!((missed[0].confidence - 0.75).abs() < 1e-9);
        assert!(missed[0].supporting_memories.is_empty());

        let twice = InsightConfig {
            missed_min_count: 2,
            ..InsightConfig::default()
        };
        let drafts = recommendations(&[], &searches, now(), &twice);
        let missed = of_kind(&drafts, "missed_search");
        assert_eq!(missed.len(), 2);
        assert_ne!(missed[0].key, missed[1].key);
        assert!(missed[1].content.starts_with("\"deploy window\""));
    }
}
