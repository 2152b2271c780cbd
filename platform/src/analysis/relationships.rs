//! How a memory relates to one of its nearest neighbours: REFERENCES, SIMILAR, CONTRADICTS,
//! BUILDS_ON. The subject is the relationship's source and the neighbour its target; the job
//! that finds neighbours passes their cosine similarity.

use std::collections::BTreeSet;

use super::MemoryView;
use super::conflicts::contradiction;
use super::references::{Reference, extract_references};
use super::text::{content_terms, is_content_word, stem, tokens};
use crate::domain::analytics::RelationshipType;

/// Similarity levels the relationships are drawn at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelationshipThresholds {
    /// At or above: SIMILAR.
    pub similar: f32,
    /// At or above: close enough in meaning to contradict or build on each other.
    pub related: f32,
    /// At or above: the same memory written twice, which adds nothing to build on.
    pub near_duplicate: f32,
    /// Content words the subject must add to build on its neighbour.
    pub min_new_terms: usize,
}

impl Default for RelationshipThresholds {
    fn default() -> Self {
        Self {
            similar: 0.80,
            related: 0.55,
            near_duplicate: 0.95,
            min_new_terms: 2,
        }
    }
}

/// One relationship from the subject to the neighbour.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationshipFinding {
    pub relationship_type: RelationshipType,
    /// 0..1.
    pub strength: f64,
    /// Why, in a few words.
    pub context: String,
}

/// Strength of a REFERENCES found through the neighbour's id.
const ID_REFERENCE_STRENGTH: f64 = 1.0;
/// Strength of a REFERENCES found through a URL, issue or pull request both mention.
const SHARED_REFERENCE_STRENGTH: f64 = 0.9;
/// New words named in a BUILDS_ON context.
const NEW_TERMS_SHOWN: usize = 3;

/// Every relationship from `subject` to `neighbour`, in the order REFERENCES, SIMILAR,
/// CONTRADICTS, BUILDS_ON. A memory has no relationship with itself, and a contradiction is
/// never also BUILDS_ON.
pub fn classify(
    subject: &MemoryView,
    neighbour: &MemoryView,
    similarity: f32,
    thresholds: &RelationshipThresholds,
) -> Vec<RelationshipFinding> {
    let mut found = Vec::new();
    if subject.memory_id == neighbour.memory_id {
        return found;
    }
    if let Some(reference) = reference(subject, neighbour) {
        found.push(reference);
    }
    // NaN compares false everywhere below, so a broken vector yields no similarity findings.
    let strength = f64::from(similarity).clamp(0.0, 1.0);
    if similarity >= thresholds.similar {
        found.push(RelationshipFinding {
            relationship_type: RelationshipType::Similar,
            strength,
            context: format!("cosine similarity {similarity:.2}"),
        });
    }
    if similarity.is_nan() || similarity < thresholds.related {
        return found;
    }
    if let Some(explanation) = contradiction(subject.content, neighbour.content) {
        found.push(RelationshipFinding {
            relationship_type: RelationshipType::Contradicts,
            strength,
            context: explanation,
        });
    } else if let Some(added) = builds_on(subject, neighbour, similarity, thresholds) {
        found.push(RelationshipFinding {
            relationship_type: RelationshipType::BuildsOn,
            strength,
            context: format!("adds {}", added.join(", ")),
        });
    }
    found
}

fn reference(subject: &MemoryView, neighbour: &MemoryView) -> Option<RelationshipFinding> {
    let mentioned = extract_references(subject.content);
    if mentioned.contains(&Reference::Memory(neighbour.memory_id)) {
        return Some(RelationshipFinding {
            relationship_type: RelationshipType::References,
            strength: ID_REFERENCE_STRENGTH,
            context: format!("mentions memory {}", neighbour.memory_id),
        });
    }
    let theirs = extract_references(neighbour.content);
    let shared: Vec<String> = mentioned
        .intersection(&theirs)
        .filter(|r| r.is_shareable())
        .map(ToString::to_string)
        .collect();
    let first = shared.first()?;
    let context = match shared.len() {
        1 => format!("both reference {first}"),
        n => format!("both reference {first} and {} more", n - 1),
    };
    Some(RelationshipFinding {
        relationship_type: RelationshipType::References,
        strength: SHARED_REFERENCE_STRENGTH,
        context,
    })
}

/// The words the subject adds, when it builds on the neighbour: same author, written later,
/// close in meaning but not a near-duplicate, and at least `min_new_terms` new content words.
fn builds_on(
    subject: &MemoryView,
    neighbour: &MemoryView,
    similarity: f32,
    thresholds: &RelationshipThresholds,
) -> Option<Vec<String>> {
    if subject.user_id != neighbour.user_id
        || subject.created_at <= neighbour.created_at
        || similarity >= thresholds.near_duplicate
    {
        return None;
    }
    let known = content_terms(neighbour.content);
    let mut new_terms = BTreeSet::new();
    let mut shown = Vec::new();
    for word in tokens(subject.content) {
        if !is_content_word(&word) {
            continue;
        }
        let term = stem(&word);
        if !known.contains(&term) && new_terms.insert(term) && shown.len() < NEW_TERMS_SHOWN {
            shown.push(word);
        }
    }
    (new_terms.len() >= thresholds.min_new_terms.max(1)).then_some(shown)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, TimeZone, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::domain::Category;

    const EMBEDDING: [f32; 0] = [];

    fn at(day: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default()
            + Duration::days(day)
    }

    fn memory(id: u128, user: u128, day: i64, content: &str) -> MemoryView<'_> {
        MemoryView {
            memory_id: Uuid::from_u128(id),
            user_id: Uuid::from_u128(user),
            content,
            category: Category::Technical,
            confidence_score: 0.9,
            created_at: at(day),
            access_count: 0,
            embedding: &EMBEDDING,
        }
    }

    fn types(found: &[RelationshipFinding]) -> Vec<RelationshipType> {
        found.iter().map(|f| f.relationship_type).collect()
    }

    #[test]
    fn references_by_id_and_by_shared_reference() {
        let target = memory(1, 9, 0, "The rollout plan for the billing service.");
        let text = format!("Follow-up to {}: rollout is done.", Uuid::from_u128(1));
        let subject = memory(2, 9, 1, &text);
        let thresholds = RelationshipThresholds::default();
        let found = classify(&subject, &target, 0.1, &thresholds);
        assert_eq!(types(&found), vec![RelationshipType::References]);
        assert_eq!(found[0].strength, 1.0);
        assert!(found[0].context.contains(&Uuid::from_u128(1).to_string()));
        // The other way round the target does not mention the subject.
        assert!(classify(&target, &subject, 0.1, &thresholds).is_empty());

        let a = memory(
            3,
            9,
            0,
            "Crash on login, see https://github.com/acme/api/issues/77",
        );
        let b = memory(
            4,
            8,
            5,
            "Workaround for acme/api#77: clear the session cookie",
        );
        let found = classify(&b, &a, 0.2, &thresholds);
        assert_eq!(types(&found), vec![RelationshipType::References]);
        assert_eq!(found[0].strength, 0.9);
        assert_eq!(found[0].context, "both reference acme/api#77");

        let c = memory(5, 9, 0, "Bug #77 is about login");
        let d = memory(6, 9, 1, "Bug #77 is about payments");
        assert!(
            !types(&classify(&d, &c, 0.2, &thresholds)).contains(&RelationshipType::References)
        );
    }

    #[test]
    fn similar_at_or_above_the_threshold() {
        let a = memory(1, 1, 0, "Run the integration tests before each release.");
        let b = memory(2, 2, 1, "Integration tests run before every release.");
        let thresholds = RelationshipThresholds::default();
        let found = classify(&b, &a, 0.86, &thresholds);
        assert_eq!(types(&found), vec![RelationshipType::Similar]);
        assert!((found[0].strength - 0.86).abs() < 1e-6);
        assert!(classify(&b, &a, 0.79, &thresholds).is_empty());
    }

    #[test]
    fn contradictions_need_related_meaning_and_are_not_builds_on() {
        let a = memory(1, 1, 0, "The deploy branch is main.");
        let b = memory(
            2,
            1,
            3,
            "The deploy branch is release, set up by the platform team.",
        );
        let thresholds = RelationshipThresholds::default();
        let found = classify(&b, &a, 0.7, &thresholds);
        assert_eq!(types(&found), vec![RelationshipType::Contradicts]);
        assert_eq!(
            found[0].context,
            "conflicting values for \"deploy branch\": \"release\" vs \"main\""
        );
        assert!(classify(&b, &a, 0.5, &thresholds).is_empty());
        let found = classify(&b, &a, 0.9, &thresholds);
        assert_eq!(
            types(&found),
            vec![RelationshipType::Similar, RelationshipType::Contradicts]
        );
    }

    #[test]
    fn builds_on_needs_same_user_later_and_new_material() {
        let base = memory(1, 1, 0, "Staging runs on the shared Kubernetes cluster.");
        let more = memory(
            2,
            1,
            2,
            "Staging runs on the shared Kubernetes cluster; nightly backups are copied to the S3 bucket.",
        );
        let thresholds = RelationshipThresholds::default();
        let found = classify(&more, &base, 0.7, &thresholds);
        assert_eq!(types(&found), vec![RelationshipType::BuildsOn]);
        assert_eq!(found[0].context, "adds nightly, backups, copied");
        assert!((found[0].strength - 0.7).abs() < 1e-6);

        // Earlier, another author, too far apart, or a near-duplicate: nothing to build on.
        assert!(classify(&base, &more, 0.7, &thresholds).is_empty());
        let other_user = memory(3, 2, 2, more.content);
        assert!(classify(&other_user, &base, 0.7, &thresholds).is_empty());
        assert!(classify(&more, &base, 0.5, &thresholds).is_empty());
        assert_eq!(
            types(&classify(&more, &base, 0.96, &thresholds)),
            vec![RelationshipType::Similar]
        );
        // Only one new word is not enough.
        let reworded = memory(
            4,
            1,
            2,
            "Staging now runs on the shared Kubernetes cluster.",
        );
        let reworded_more = memory(
            5,
            1,
            3,
            "Staging runs on the big shared Kubernetes cluster.",
        );
        assert!(classify(&reworded, &base, 0.7, &thresholds).is_empty());
        assert!(classify(&reworded_more, &base, 0.7, &thresholds).is_empty());
    }

    #[test]
    fn nothing_between_a_memory_and_itself_or_unrelated_ones() {
        let a = memory(1, 1, 0, "I like short answers.");
        let b = memory(2, 1, 1, "The billing service times out when Kafka is down.");
        let thresholds = RelationshipThresholds::default();
        assert!(classify(&a, &a, 1.0, &thresholds).is_empty());
        assert!(classify(&b, &a, 0.12, &thresholds).is_empty());
        assert!(classify(&b, &a, f32::NAN, &thresholds).is_empty());
    }
}
