//! RISK_ASSESSMENT insights: memories that contradict each other, categories the categoriser
//! was unsure about, and memories holding personal data or secrets. The content of these
//! insights names kinds of data, never the data.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{InsightConfig, InsightDraft, masked, single_owner};
use crate::analysis::MemoryView;
use crate::domain::Category;
use crate::domain::analytics::InsightType;
use crate::domain::pii::{self, PiiKind};

/// Every risk: contradictions (one per pair, in the order given), low-confidence categories,
/// then personal data per user.
///
/// `contradictions` holds (source, target, explanation) as found by relationship discovery;
/// a pair reported in both directions yields one insight.
pub fn risks(
    memories: &[MemoryView],
    contradictions: &[(Uuid, Uuid, String)],
    now: DateTime<Utc>,
    cfg: &InsightConfig,
) -> Vec<InsightDraft> {
    let by_id: HashMap<Uuid, &MemoryView> = memories.iter().map(|m| (m.memory_id, m)).collect();
    let mut drafts = contradiction_risks(&by_id, contradictions, now, cfg);
    drafts.extend(low_confidence(memories, cfg));
    drafts.extend(personal_data(memories));
    drafts
}

fn contradiction_risks(
    by_id: &HashMap<Uuid, &MemoryView>,
    contradictions: &[(Uuid, Uuid, String)],
    now: DateTime<Utc>,
    cfg: &InsightConfig,
) -> Vec<InsightDraft> {
    let mut seen = BTreeSet::new();
    let mut drafts = Vec::new();
    for (source, target, explanation) in contradictions {
        let pair = if source <= target {
            (*source, *target)
        } else {
            (*target, *source)
        };
        if source == target || !seen.insert(pair) {
            continue;
        }
        let known: Vec<&MemoryView> = [source, target]
            .iter()
            .filter_map(|id| by_id.get(*id).copied())
            .collect();
        // Which side to doubt first: the older statement is the likelier to be out of date.
        let advice = match known.as_slice() {
            [a, b] => {
                let older = if a.created_at <= b.created_at { a } else { b };
                let days = (now - older.created_at).num_days().max(0);
                format!(
                    "; the older one ({}, {days} days old) may be out of date",
                    older.memory_id
                )
            }
            _ => String::new(),
        };
        let content = format!(
            "Two memories contradict each other: {}{advice}",
            masked(explanation)
        );
        let owner = if known.len() == 2 {
            single_owner(known.iter().copied())
        } else {
            None
        };
        drafts.push(InsightDraft::about_memories(
            InsightType::RiskAssessment,
            "contradiction",
            content,
            cfg.contradiction_confidence,
            [pair.0, pair.1],
            owner,
        ));
    }
    drafts
}

/// Per category, memories categorised with confidence below `low_confidence`, reported when
/// at least `low_confidence_min_count` of them. The lower their mean, the surer the risk.
fn low_confidence(memories: &[MemoryView], cfg: &InsightConfig) -> Vec<InsightDraft> {
    Category::ALL
        .iter()
        .filter_map(|&category| {
            let doubtful: Vec<&MemoryView> = memories
                .iter()
                .filter(|m| m.category == category && m.confidence_score < cfg.low_confidence)
                .collect();
            if doubtful.is_empty() || doubtful.len() < cfg.low_confidence_min_count {
                return None;
            }
            let mean =
                doubtful.iter().map(|m| m.confidence_score).sum::<f64>() / doubtful.len() as f64;
            let content = format!(
                "{} {category} {} categorised with low confidence (mean {mean:.2}); check {}",
                doubtful.len(),
                if doubtful.len() == 1 {
                    "memory was"
                } else {
                    "memories were"
                },
                if doubtful.len() == 1 {
                    "its category"
                } else {
                    "their categories"
                },
            );
            Some(InsightDraft::about_memories(
                InsightType::RiskAssessment,
                &format!("low_confidence_{}", category.as_str().to_lowercase()),
                content,
                1.0 - mean,
                doubtful.iter().map(|m| m.memory_id),
                single_owner(doubtful.iter().copied()),
            ))
        })
        .collect()
}

/// How sure a finding of this kind is worth acting on: leaked credentials and payment data
/// first, contact details after.
fn severity(kind: PiiKind) -> f64 {
    match kind {
        PiiKind::Secret => 0.95,
        PiiKind::CardNumber | PiiKind::Iban => 0.9,
        PiiKind::Email | PiiKind::Phone => 0.7,
    }
}

/// Per user, the memories holding personal data or secrets, with the kinds found.
fn personal_data(memories: &[MemoryView]) -> Vec<InsightDraft> {
    let mut per_user: BTreeMap<Uuid, Vec<(&MemoryView, Vec<PiiKind>)>> = BTreeMap::new();
    for memory in memories {
        let kinds = pii::kinds(&pii::detect(memory.content));
        if !kinds.is_empty() {
            per_user
                .entry(memory.user_id)
                .or_default()
                .push((memory, kinds));
        }
    }
    per_user
        .into_iter()
        .map(|(user, found)| {
            let mut counts: BTreeMap<PiiKind, usize> = BTreeMap::new();
            for (_, kinds) in &found {
                for kind in kinds {
                    *counts.entry(*kind).or_default() += 1;
                }
            }
            let listed: Vec<String> = counts
                .iter()
                .map(|(kind, n)| format!("{} in {n}", kind.as_str()))
                .collect();
            let confidence = counts.keys().map(|k| severity(*k)).fold(0.0, f64::max);
            let content = format!(
                "{} {} personal data or secrets ({}); mask or delete {}",
                found.len(),
                if found.len() == 1 {
                    "memory holds"
                } else {
                    "memories hold"
                },
                listed.join(", "),
                if found.len() == 1 { "it" } else { "them" },
            );
            InsightDraft::about_memories(
                InsightType::RiskAssessment,
                "personal_data",
                content,
                confidence,
                found.iter().map(|(m, _)| m.memory_id),
                Some(user),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{id, memory, now};
    use super::*;

    fn of_kind<'a>(drafts: &'a [InsightDraft], kind: &str) -> Vec<&'a InsightDraft> {
        drafts
            .iter()
            .filter(|d| d.key.starts_with(&format!("RISK_ASSESSMENT:{kind}:")))
            .collect()
    }

    #[test]
    fn contradictions_once_per_pair_naming_the_older() {
        let memories = [
            memory(1, 40, "The deploy branch is main.", &[]),
            memory(2, 2, "The deploy branch is release.", &[]),
        ];
        let explanation =
            "conflicting values for \"deploy branch\": \"release\" vs \"main\"".to_string();
        let contradictions = [
            (id(2), id(1), explanation.clone()),
            (id(1), id(2), explanation.clone()),
            (id(3), id(3), explanation.clone()),
        ];
        let drafts = risks(&memories, &contradictions, now(), &InsightConfig::default());
        let found = of_kind(&drafts, "contradiction");
        assert_eq!(found.len(), 1, "{drafts:?}");
        assert_eq!(found[0].supporting_memories, vec![id(1), id(2)]);
        assert_eq!(
            found[0].content,
            format!(
                "Two memories contradict each other: {explanation}; the older one ({}, 40 days old) may be out of date",
                id(1)
            )
        );
        assert!((found[0].confidence - 0.8).abs() < 1e-9);
        assert_eq!(found[0].user_id, Some(id(100)));

        // Unknown memories still make a risk, without the advice; secrets are masked.
        let drafts = risks(
            &[],
            &[(
                id(7),
                id(8),
                "\"key AKIAIOSFODNN7EXAMPLE\" vs \"no key\"".into(),
            )],
            now(),
            &InsightConfig::default(),
        );
        let found = of_kind(&drafts, "contradiction");
        assert_eq!(found.len(), 1);
        assert!(!found[0].content.contains("AKIA"), "{}", found[0].content);
        assert!(!found[0].content.contains("older"));
        assert_eq!(found[0].user_id, None);
    }

    #[test]
    fn low_confidence_grouped_per_category() {
        let mut memories = vec![
            memory(1, 1, "a", &[]),
            memory(2, 1, "b", &[]),
            memory(3, 1, "c", &[]),
            memory(4, 1, "d", &[]),
        ];
        memories[0].confidence_score = 0.3;
        memories[1].confidence_score = 0.4;
        memories[2].confidence_score = 0.45;
        memories[2].category = Category::Preference;
        memories[3].confidence_score = 0.8;
        let drafts = risks(&memories, &[], now(), &InsightConfig::default());
        let found = of_kind(&drafts, "low_confidence_technical");
        assert_eq!(found.len(), 1, "{drafts:?}");
        assert_eq!(found[0].supporting_memories, vec![id(1), id(2)]);
        assert_eq!(
            found[0].content,
            "2 TECHNICAL memories were categorised with low confidence (mean 0.35); check their categories"
        );
        assert!((found[0].confidence - 0.65).abs() < 1e-9);
        // One doubtful PREFERENCE memory is below the default minimum of two.
        assert!(of_kind(&drafts, "low_confidence_preference").is_empty());

        let single = InsightConfig {
            low_confidence_min_count: 1,
            ..InsightConfig::default()
        };
        let drafts = risks(&memories, &[], now(), &single);
        assert_eq!(of_kind(&drafts, "low_confidence_preference").len(), 1);
        assert_eq!(of_kind(&drafts, "low_confidence_technical").len(), 1);
        assert_ne!(
            of_kind(&drafts, "low_confidence_preference")[0].key,
            of_kind(&drafts, "low_confidence_technical")[0].key
        );
    }

    #[test]
    fn personal_data_names_kinds_never_values() {
        let mut other = memory(4, 1, "call +1 (555) 123-4567", &[]);
        other.user_id = id(200);
        let memories = [
            memory(1, 1, "Mail jane.doe@example.com for access", &[]),
            memory(
                2,
                1,
                "token ghp_abcdefghijklmnopqrstuvwxyz0123456789 and bob@example.org",
                &[],
            ),
            memory(3, 1, "Port 8080 on 192.168.1.10 answers", &[]),
            other,
        ];
        let drafts = risks(&memories, &[], now(), &InsightConfig::default());
        let found = of_kind(&drafts, "personal_data");
        assert_eq!(found.len(), 2, "{drafts:?}");
        assert_eq!(found[0].supporting_memories, vec![id(1), id(2)]);
        assert_eq!(
            found[0].content,
            "2 memories hold personal data or secrets (email in 2, secret in 1); mask or delete them"
        );
        assert!((found[0].confidence - 0.95).abs() < 1e-9);
        assert_eq!(found[1].supporting_memories, vec![id(4)]);
        assert!((found[1].confidence - 0.7).abs() < 1e-9);
        for draft in &drafts {
            for leaked in ["jane", "ghp_", "bob@", "555"] {
                assert!(!draft.content.contains(leaked), "{}", draft.content);
            }
        }
        assert!(risks(&[], &[], now(), &InsightConfig::default()).is_empty());
    }
}
