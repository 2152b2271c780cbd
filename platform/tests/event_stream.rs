//! The Redis Streams transport against a real Redis: delivery is at-least-once (entries a dead
//! consumer held are taken over), and the consumer is idempotent (a redelivered event is
//! stored once).

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{eventually, redis_url, unique};
use memoryc_crds::layout::{Isolation, TenantName};
use memoryc_platform::domain::analytics::{AnalyticsEvent, EventType};
use memoryc_platform::services::events::redis_stream::{
    RedisEventStream, StreamSettings, spawn_consumer,
};
use memoryc_platform::services::events::{EventProcessor, TenantEvent};
use memoryc_platform::stores::analytics::{AnalyticsRepository, EventQuery};
use memoryc_platform::stores::relational::analytics_repository::SqlAnalyticsRepository;
use memoryc_platform::stores::relational::{Databases, RelationalConfig};
use tokio::sync::watch;

fn event(tenant: &TenantName, event_type: EventType) -> TenantEvent {
    TenantEvent {
        tenant: tenant.clone(),
        isolation: Isolation::Shared,
        event: AnalyticsEvent {
            event_id: uuid::Uuid::now_v7(),
            event_type,
            user_id: Some(uuid::Uuid::new_v4()),
            memory_id: None,
            event_data: serde_json::json!({"query": "q", "result_count": 0}),
            timestamp: Utc::now(),
            session_id: None,
        },
    }
}

fn settings(prefix: &str, consumer: &str) -> StreamSettings {
    StreamSettings {
        consumer: consumer.to_string(),
        claim_after: Duration::from_millis(300),
        ..StreamSettings::new(prefix)
    }
}

#[tokio::test]
async fn a_dead_consumers_events_are_taken_over_and_stored_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let databases = Databases::connect(&RelationalConfig::Sqlite {
        dir: dir.path().to_path_buf(),
    })
    .await
    .expect("databases");
    let tenant = TenantName::parse("acme").expect("name");
    databases.provision_tenant(&tenant).await.expect("tenant");
    let repository = Arc::new(SqlAnalyticsRepository::new(databases.clone()));
    let processor = Arc::new(EventProcessor::new(repository.clone(), None));

    let prefix = format!("{}:", unique("memoryc-test-"));
    let dying = RedisEventStream::connect(&redis_url(), settings(&prefix, "dying")).expect("pool");
    dying.ensure_group().await.expect("group");
    let duplicated = event(&tenant, EventType::SearchPerformed);
    let other = event(&tenant, EventType::MemoryCreated);
    // The same event twice, as a publisher retrying after a lost reply would send it.
    dying
        .append(&[duplicated.clone(), duplicated.clone(), other.clone()])
        .await
        .expect("append");
    // A consumer reads the entries and dies before acknowledging them.
    let taken = dying.read(Duration::from_millis(100)).await.expect("read");
    assert_eq!(taken.len(), 3);
    assert_eq!(dying.pending().await.expect("pending"), 3);

    let survivor =
        RedisEventStream::connect(&redis_url(), settings(&prefix, "survivor")).expect("pool");
    let (stop, stopped) = watch::channel(false);
    let consumer = spawn_consumer(survivor.clone(), processor, stopped);
    let done = eventually(Duration::from_secs(15), || async {
        survivor.pending().await.ok() == Some(0)
    })
    .await;
    assert!(
        done,
        "the survivor never acknowledged the dead consumer's entries"
    );
    let stored = repository
        .events(
            &tenant,
            &EventQuery {
                limit: 100,
                ..EventQuery::default()
            },
        )
        .await
        .expect("events");
    let mut ids: Vec<uuid::Uuid> = stored.iter().map(|e| e.event_id).collect();
    ids.sort();
    let mut expected = vec![duplicated.event.event_id, other.event.event_id];
    expected.sort();
    assert_eq!(ids, expected, "each event stored exactly once");

    // New events flow through the running consumer too.
    let later = event(&tenant, EventType::MemoryAccessed);
    survivor
        .append(std::slice::from_ref(&later))
        .await
        .expect("append");
    let arrived = eventually(Duration::from_secs(10), || async {
        repository
            .events(
                &tenant,
                &EventQuery {
                    event_type: Some(EventType::MemoryAccessed),
                    limit: 10,
                    ..EventQuery::default()
                },
            )
            .await
            .map(|events| events.len() == 1)
            .unwrap_or(false)
    })
    .await;
    assert!(arrived);
    let _ = stop.send(true);
    let _ = consumer.await;
    databases.close().await.expect("close");
}
