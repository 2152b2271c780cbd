//! The Redis Streams transport against a real Redis: delivery is at-least-once (entries a dead
//! consumer held are taken over), the consumer is idempotent (a redelivered event is stored
//! once), and a deleted tenant's events are dropped instead of staying pending.

mod test_support;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use memoryc_crds::layout::{Isolation, TenantName};
use memoryc_platform::domain::analytics::{AnalyticsEvent, EventType};
use memoryc_platform::services::events::redis_stream::spawn_consumer;
use memoryc_platform::services::events::{EventProcessor, TenantEvent};
use memoryc_platform::stores::analytics::{AnalyticsRepository, EventQuery};
use memoryc_platform::stores::event_stream::{RedisEventStream, StreamSettings};
use memoryc_platform::stores::relational::analytics_repository::SqlAnalyticsRepository;
use memoryc_platform::stores::relational::{Databases, RelationalConfig};
use test_support::{eventually, redis_url, unique};
use tokio::sync::watch;

fn event(tenant: &TenantName, event_type: EventType) -> TenantEvent {
    TenantEvent {
        tenant: tenant.clone(),
        tenant_id: None,
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
async fn a_dead_consumers_redis_events_are_taken_over_and_stored_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let databases = Databases::connect(&RelationalConfig::Sqlite {
        dir: dir.path().to_path_buf(),
    })
    .await
    .expect("databases");
    let tenant = TenantName::parse("acme").expect("name");
    databases.provision_tenant(&tenant).await.expect("tenant");
    let repository = Arc::new(SqlAnalyticsRepository::new(databases.clone()));
    let registry = Arc::new(
        memoryc_platform::stores::relational::control_repository::SqlTenantRegistry::new(
            databases.clone(),
        ),
    );
    let processor = Arc::new(EventProcessor::new(repository.clone(), registry, None));

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

/// On PostgreSQL a deleted tenant's events fail like any store error (its schema is gone).
/// The consumer drops them once the registry says the tenant no longer exists, so they do not
/// stay pending forever, and stores the other tenants' events of the same batch. A tenant
/// that is still registered keeps its failed events pending.
#[tokio::test]
async fn events_of_a_tenant_deleted_on_postgres_are_dropped_not_pending_forever() {
    use memoryc_platform::stores::TenantRegistry;
    use memoryc_platform::stores::relational::control_repository::SqlTenantRegistry;

    let control_schema = unique("ctl_events_");
    let databases = Databases::connect(&RelationalConfig::Postgres {
        url: test_support::postgres_url(),
        control_schema: control_schema.clone(),
        max_connections: 4,
        tenant_connections: 8,
        acquire_timeout: Duration::from_secs(5),
        schema_trust: Duration::from_secs(5),
    })
    .await
    .expect("databases");
    let registry = Arc::new(SqlTenantRegistry::new(databases.clone()));
    let mut tenants = Vec::new();
    for prefix in ["gone-", "live-", "broken-"] {
        let tenant = memoryc_platform::stores::Tenant {
            tenant_id: uuid::Uuid::now_v7(),
            name: TenantName::parse(&unique(prefix)).expect("name"),
            display_name: prefix.to_string(),
            isolation: Isolation::Shared,
            created_at: Utc::now(),
        };
        databases
            .provision_tenant(&tenant.name)
            .await
            .expect("tenant schema");
        registry.register(&tenant).await.expect("registered");
        tenants.push(tenant);
    }
    let (gone, live, broken) = (&tenants[0], &tenants[1], &tenants[2]);
    // The operator deletes `gone`: its schema, then its registration. `broken` loses its
    // schema but stays registered.
    databases
        .drop_tenant(&gone.name)
        .await
        .expect("schema dropped");
    registry.remove(gone.tenant_id).await.expect("unregistered");
    databases
        .drop_tenant(&broken.name)
        .await
        .expect("schema dropped");

    let repository = Arc::new(SqlAnalyticsRepository::new(databases.clone()));
    let processor = Arc::new(EventProcessor::new(
        repository.clone(),
        registry.clone(),
        None,
    ));
    let prefix = format!("{}:", unique("memoryc-test-"));
    let stream = RedisEventStream::connect(&redis_url(), settings(&prefix, "only")).expect("pool");
    stream.ensure_group().await.expect("group");
    let kept = event(&live.name, EventType::MemoryCreated);
    stream
        .append(&[event(&gone.name, EventType::MemoryCreated), kept.clone()])
        .await
        .expect("append");
    let (stop, stopped) = watch::channel(false);
    let consumer = spawn_consumer(stream.clone(), processor, stopped);
    let live_events = || async {
        repository
            .events(
                &live.name,
                &EventQuery {
                    limit: 10,
                    ..EventQuery::default()
                },
            )
            .await
            .expect("events")
            .iter()
            .map(|e| e.event_id)
            .collect::<Vec<_>>()
    };
    // Nothing is pending before the consumer reads either, so wait for the live event first.
    let stored = eventually(Duration::from_secs(15), || async {
        live_events().await == vec![kept.event.event_id]
    })
    .await;
    assert!(
        stored,
        "the live tenant's event of the same batch is stored"
    );
    let done = eventually(Duration::from_secs(15), || async {
        stream.pending().await.ok() == Some(0)
    })
    .await;
    assert!(done, "the deleted tenant's event stayed pending");

    stream
        .append(&[event(&broken.name, EventType::MemoryCreated)])
        .await
        .expect("append");
    // Several claim periods (300 ms each) pass; the entry is tried again and kept each time.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        stream.pending().await.expect("pending"),
        1,
        "a registered tenant's failed event must stay pending"
    );

    let _ = stop.send(true);
    let _ = consumer.await;
    databases.drop_tenant(&live.name).await.expect("cleanup");
    databases.close().await.expect("close");
    let mut config = memoryc_platform::config::Config::default();
    config.storage.database_url = test_support::postgres_url();
    config.storage.control_schema = control_schema;
    test_support::drop_postgres_schemas(&config).await;
}

/// Events carry their tenant's id: those of a tenant deleted and created again under its name
/// never land in the new tenant's tables; the new tenant's own events do.
#[tokio::test]
async fn events_of_a_deleted_tenant_never_land_in_one_that_took_its_name() {
    use memoryc_platform::stores::TenantRegistry;
    use memoryc_platform::stores::relational::control_repository::SqlTenantRegistry;

    let dir = tempfile::tempdir().expect("temp dir");
    let databases = Databases::connect(&RelationalConfig::Sqlite {
        dir: dir.path().to_path_buf(),
    })
    .await
    .expect("databases");
    let registry = Arc::new(SqlTenantRegistry::new(databases.clone()));
    let name = TenantName::parse(&unique("reused-")).expect("name");
    let register = |tenant_id: uuid::Uuid| memoryc_platform::stores::Tenant {
        tenant_id,
        name: name.clone(),
        display_name: "reused".to_string(),
        isolation: Isolation::Shared,
        created_at: Utc::now(),
    };
    let old = register(uuid::Uuid::now_v7());
    databases.provision_tenant(&name).await.expect("schema");
    registry.register(&old).await.expect("registered");
    // Deleted, then created again under the same name.
    databases.drop_tenant(&name).await.expect("dropped");
    registry.remove(old.tenant_id).await.expect("unregistered");
    let new = register(uuid::Uuid::now_v7());
    databases
        .provision_tenant(&name)
        .await
        .expect("schema again");
    registry.register(&new).await.expect("registered again");

    let repository = Arc::new(SqlAnalyticsRepository::new(databases.clone()));
    let processor = EventProcessor::new(repository.clone(), registry.clone(), None);
    let mut stale = event(&name, EventType::MemoryCreated);
    stale.tenant_id = Some(old.tenant_id);
    let mut current = event(&name, EventType::MemoryCreated);
    current.tenant_id = Some(new.tenant_id);
    processor
        .handle(&[stale, current.clone()])
        .await
        .expect("handled");
    let recorded: Vec<uuid::Uuid> = repository
        .events(
            &name,
            &EventQuery {
                limit: 10,
                ..EventQuery::default()
            },
        )
        .await
        .expect("events")
        .iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(recorded, vec![current.event.event_id]);
    databases.close().await.expect("close");
}
