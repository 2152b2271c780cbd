//! Relationship discovery takes a consumer's whole batch of events at once (one vector search
//! request, one read, one write): what it stores must be exactly what handling the same
//! memories one event at a time stores, on SQLite + the embedded index and on PostgreSQL +
//! Milvus.

mod test_support;

use std::collections::BTreeSet;

use chrono::Utc;
use memoryc_crds::layout::{Isolation, TenantName, VECTOR_DIMENSION};
use memoryc_platform::app::Platform;
use memoryc_platform::domain::analytics::{AnalyticsEvent, EventType};
use memoryc_platform::domain::{Category, NewMemory};
use memoryc_platform::services::events::TenantEvent;
use memoryc_platform::stores::MemoryRepository;
use memoryc_platform::stores::analytics::AnalyticsRepository;
use memoryc_platform::stores::relational::analytics_repository::SqlAnalyticsRepository;
use memoryc_platform::stores::relational::memory_repository::SqlMemoryRepository;
use memoryc_platform::stores::vector::{VectorPoint, VectorSpace};
use test_support::{Backends, test_config, unique};
use uuid::Uuid;

const TOPICS: u64 = 6;
const PER_TOPIC: u64 = 3;

/// A deterministic pseudo-random unit vector (Knuth's MMIX generator); equal seeds, equal vectors.
fn unit_vector(seed: u64) -> Vec<f32> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let raw: Vec<f32> = (0..VECTOR_DIMENSION)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    raw.into_iter().map(|x| x / norm).collect()
}

/// `unit_vector(topic)` moved a little towards noise of its own: memories of one topic are
/// about 0.92 similar, of different topics about 0.
fn near_topic(topic: u64, noise_seed: u64) -> Vec<f32> {
    let mixed: Vec<f32> = unit_vector(topic)
        .iter()
        .zip(unit_vector(noise_seed))
        .map(|(x, y)| x + 0.3 * y)
        .collect();
    let norm = mixed.iter().map(|x| x * x).sum::<f32>().sqrt();
    mixed.into_iter().map(|x| x / norm).collect()
}

fn created_events(tenant: &TenantName, user: Uuid, ids: &[Uuid]) -> Vec<TenantEvent> {
    ids.iter()
        .map(|id| TenantEvent {
            tenant: tenant.clone(),
            tenant_id: None,
            isolation: Isolation::Shared,
            event: AnalyticsEvent {
                event_id: Uuid::now_v7(),
                event_type: EventType::MemoryCreated,
                user_id: Some(user),
                memory_id: Some(*id),
                event_data: serde_json::json!({}),
                timestamp: Utc::now(),
                session_id: None,
            },
        })
        .collect()
}

/// Every stored relationship touching `ids`: source, target, type and strength (to 1e-4).
async fn stored(
    analytics: &SqlAnalyticsRepository,
    tenant: &TenantName,
    ids: &[Uuid],
) -> BTreeSet<(Uuid, Uuid, String, i64)> {
    let mut all = BTreeSet::new();
    for id in ids {
        for found in analytics.relationships_of(tenant, *id).await.expect("read") {
            all.insert((
                found.source_memory_id,
                found.target_memory_id,
                found.relationship_type.as_str().to_string(),
                (found.strength * 1e4).round() as i64,
            ));
        }
    }
    all
}

async fn a_batch_relates_as_one_event_at_a_time_does(backends: Backends) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = test_config(backends, data_dir.path().to_path_buf());
    let platform = Platform::build(config.clone())
        .await
        .expect("platform builds");
    let created = platform
        .state
        .tenants
        .create(&unique("t-"), None, Isolation::Shared)
        .await
        .expect("tenant");
    let tenant = TenantName::parse(&created.tenant).expect("name");
    let user = created.user_id;
    let space = VectorSpace {
        tenant: tenant.clone(),
        isolation: Isolation::Shared,
    };
    let memories = SqlMemoryRepository::new(platform.databases.clone());
    let analytics = SqlAnalyticsRepository::new(platform.databases.clone());
    let vectors = platform.vector_store();

    let write = async |content: String, embedding: Vec<f32>| {
        let new = NewMemory {
            memory_id: Uuid::now_v7(),
            content,
            category: Category::Technical,
            confidence_score: 1.0,
            metadata: serde_json::json!({}),
            embedding: embedding.clone(),
            user_id: user,
            created_at: Utc::now(),
        };
        memories.insert(&tenant, &new).await.expect("insert");
        let point = VectorPoint {
            memory_id: new.memory_id,
            vector: embedding,
            category: "TECHNICAL".to_string(),
            user_id: user,
            created_at_ms: new.created_at.timestamp_millis(),
        };
        vectors.upsert(&space, &[point]).await.expect("upsert");
        new.memory_id
    };
    let mut by_topic: Vec<Vec<Uuid>> = Vec::new();
    for topic in 0..TOPICS {
        let mut ids = Vec::new();
        for variant in 0..PER_TOPIC {
            let content = format!("Note {variant} on subject {topic} of the platform.");
            ids.push(write(content, near_topic(topic, 1_000 + topic * 10 + variant)).await);
        }
        by_topic.push(ids);
    }
    // One memory names another by id (found by reference, not by meaning); one is deleted
    // after its vector landed, so the index still returns it.
    let named = by_topic[0][0];
    let follow_up = write(
        format!("Follow-up to {named}: the checklist links the report."),
        unit_vector(77),
    )
    .await;
    let deleted = write(
        "Note 3 on subject 1, withdrawn.".to_string(),
        near_topic(1, 1_019),
    )
    .await;
    assert!(
        memories
            .soft_delete(&tenant, deleted, user, Utc::now())
            .await
            .expect("delete")
    );
    let mut all: Vec<Uuid> = by_topic.iter().flatten().copied().collect();
    all.extend([follow_up, deleted, Uuid::now_v7()]);

    platform
        .event_processor
        .handle(&created_events(&tenant, user, &all))
        .await
        .expect("batch handled");
    let batched = stored(&analytics, &tenant, &all).await;

    for topic in &by_topic {
        for source in topic {
            for target in topic.iter().filter(|t| *t != source) {
                assert!(
                    batched
                        .iter()
                        .any(|r| r.0 == *source && r.1 == *target && r.2 == "SIMILAR"),
                    "{source} is similar to {target}: {batched:?}"
                );
            }
        }
    }
    let topic_of = |id: &Uuid| by_topic.iter().position(|t| t.contains(id));
    assert!(
        batched
            .iter()
            .filter(|r| r.2 == "SIMILAR")
            .all(|r| topic_of(&r.0).is_some() && topic_of(&r.0) == topic_of(&r.1)),
        "similar only within a subject: {batched:?}"
    );
    assert!(
        batched.iter().any(|r| r.0 == follow_up && r.1 == named),
        "the follow-up relates to the memory it names: {batched:?}"
    );
    assert!(
        batched.iter().all(|r| r.0 != deleted && r.1 != deleted),
        "a deleted memory relates to nothing: {batched:?}"
    );

    // The same memories once more, one event per batch: the same relationships, replaced.
    for id in &all {
        platform
            .event_processor
            .handle(&created_events(&tenant, user, &[*id]))
            .await
            .expect("single handled");
    }
    assert_eq!(stored(&analytics, &tenant, &all).await, batched);

    vectors.drop_space(&space).await.expect("drop space");
    if backends == Backends::PostgresMilvus {
        test_support::drop_postgres_schemas(&config).await;
    }
}

test_support::on_each_backend!(a_batch_relates_as_one_event_at_a_time_does);
