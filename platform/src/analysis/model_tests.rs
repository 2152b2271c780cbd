//! The analysis on vectors from the real all-MiniLM-L6-v2 model: hand-written memories whose
//! relationships and topics are known, so thresholds are checked against the model the
//! platform actually runs rather than against made-up vectors.

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::{MemoryView, RelationshipThresholds, classify, find_patterns, similarity};
use crate::domain::Category;
use crate::domain::analytics::RelationshipType;
use crate::embedding::Embedder;
use crate::embedding::test_support::model;

struct Written {
    id: Uuid,
    user: Uuid,
    day: i64,
    content: String,
}

fn written(id: u128, user: u128, day: i64, content: &str) -> Written {
    Written {
        id: Uuid::from_u128(id),
        user: Uuid::from_u128(user),
        day,
        content: content.to_string(),
    }
}

fn day(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
        + Duration::days(n)
}

async fn embed(memories: &[Written]) -> Vec<Vec<f32>> {
    let texts = memories.iter().map(|m| m.content.clone()).collect();
    model().embed(texts).await.expect("the model embeds")
}

fn views<'a>(memories: &'a [Written], vectors: &'a [Vec<f32>]) -> Vec<MemoryView<'a>> {
    memories
        .iter()
        .zip(vectors)
        .map(|(m, v)| MemoryView {
            memory_id: m.id,
            user_id: m.user,
            content: &m.content,
            category: Category::Technical,
            confidence_score: 0.9,
            created_at: day(m.day),
            access_count: 0,
            embedding: v,
        })
        .collect()
}

/// The types `classify` gives the subject → neighbour pair, with the similarity the model
/// sees, for the failure message.
fn relate(subject: &MemoryView, neighbour: &MemoryView) -> (Vec<RelationshipType>, f32) {
    let score = similarity(subject.embedding, neighbour.embedding);
    let found = classify(
        subject,
        neighbour,
        score,
        &RelationshipThresholds::default(),
    );
    (found.iter().map(|f| f.relationship_type).collect(), score)
}

#[tokio::test]
async fn classifies_hand_written_pairs() {
    let target = Uuid::from_u128(11);
    let memories = [
        // A paraphrase: SIMILAR.
        written(
            1,
            1,
            0,
            "The deploy pipeline runs the integration tests before every release.",
        ),
        written(
            2,
            2,
            1,
            "Before each release, the deployment pipeline runs the integration test suite.",
        ),
        // A contradiction between two authors.
        written(3, 1, 0, "We use tabs for indentation in all Python files."),
        written(
            4,
            2,
            3,
            "We never use tabs for indentation in Python files.",
        ),
        // The same author adds to what they wrote before: BUILDS_ON.
        written(
            5,
            3,
            0,
            "The staging database is PostgreSQL 16 on the shared cluster.",
        ),
        written(
            6,
            3,
            4,
            "The staging database is PostgreSQL 16 on the shared cluster; nightly backups go to an S3 bucket and are kept for thirty days.",
        ),
        // A mention by id, however different the texts: REFERENCES.
        written(
            11,
            4,
            0,
            "Alice owns the billing migration and plans to finish it in March.",
        ),
        written(
            12,
            4,
            2,
            &format!(
                "Follow-up to {target}: the billing migration slipped to April because of the audit."
            ),
        ),
        // Nothing in common.
        written(
            13,
            5,
            0,
            "I like short answers and dark mode in every editor.",
        ),
        written(
            14,
            5,
            1,
            "The billing service times out when Kafka is unavailable.",
        ),
    ];
    let vectors = embed(&memories).await;
    let v = views(&memories, &vectors);

    let (types, score) = relate(&v[1], &v[0]);
    assert_eq!(
        types,
        vec![RelationshipType::Similar],
        "paraphrase at {score}"
    );

    let (types, score) = relate(&v[3], &v[2]);
    assert!(
        types.contains(&RelationshipType::Contradicts),
        "contradiction at {score}: {types:?}"
    );
    assert!(!types.contains(&RelationshipType::BuildsOn), "{types:?}");

    let (types, score) = relate(&v[5], &v[4]);
    assert!(
        types.contains(&RelationshipType::BuildsOn),
        "builds on at {score}: {types:?}"
    );
    assert!(!types.contains(&RelationshipType::Contradicts), "{types:?}");
    // Not the other way round: the older memory does not build on the newer.
    let (types, _) = relate(&v[4], &v[5]);
    assert!(!types.contains(&RelationshipType::BuildsOn), "{types:?}");

    let (types, score) = relate(&v[7], &v[6]);
    assert_eq!(
        types.first(),
        Some(&RelationshipType::References),
        "reference at {score}"
    );

    let (types, score) = relate(&v[9], &v[8]);
    assert!(types.is_empty(), "unrelated at {score}: {types:?}");
}

#[tokio::test]
async fn finds_two_hand_written_topics() {
    let memories = [
        written(
            1,
            1,
            0,
            "Roll back a failed deploy with the pipeline's rollback job.",
        ),
        written(
            2,
            1,
            1,
            "Database backups run every night at 02:00 and go to S3.",
        ),
        written(
            3,
            2,
            2,
            "The rollback job of the deploy pipeline restores the previous release.",
        ),
        written(
            4,
            2,
            3,
            "Restore a database backup from S3 with the restore script.",
        ),
        written(
            5,
            1,
            4,
            "If a deploy fails the pipeline triggers an automatic rollback.",
        ),
        written(
            6,
            3,
            5,
            "Backups of the Postgres database are kept in S3 for thirty days.",
        ),
    ];
    let vectors = embed(&memories).await;
    let v = views(&memories, &vectors);
    let found = find_patterns(&v, 2, 0.5);
    assert_eq!(found.len(), 2, "{found:?}");
    let ids = |ns: &[u128]| ns.iter().map(|&n| Uuid::from_u128(n)).collect::<Vec<_>>();
    let mut groups: Vec<Vec<Uuid>> = found.iter().map(|c| c.members.clone()).collect();
    groups.sort();
    assert_eq!(groups, vec![ids(&[1, 3, 5]), ids(&[2, 4, 6])], "{found:?}");
    for cluster in &found {
        assert!(
            cluster.cohesion > 0.5 && cluster.cohesion <= 1.0,
            "{cluster:?}"
        );
        let expected = if cluster.members.contains(&Uuid::from_u128(1)) {
            "rollback"
        } else {
            "backup"
        };
        assert!(cluster.topic.contains(expected), "{cluster:?}");
    }
}
