//! The control plane on an in-memory SQLite database (the embedded platform's control tables):
//! registration, settings, API keys and integrations behave the same for both binaries.

use chrono::{Duration, Utc};
use memoryc_control::entities::api_key;
use memoryc_control::integrations::{self, IntegrationRecord};
use memoryc_control::settings::{self, Setting, Settings};
use memoryc_control::{api_keys, tenants};
use memoryc_crds::layout::{Isolation, TenantName};
use memoryc_migrations::ControlMigrator;
use memoryc_migrations::sea_orm_migration::MigratorTrait;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use uuid::Uuid;

async fn control_tables() -> DatabaseConnection {
    // One connection: each connection to `sqlite::memory:` is a database of its own.
    let mut options = ConnectOptions::new("sqlite::memory:");
    options.max_connections(1).min_connections(1);
    let db = Database::connect(options).await.expect("in-memory SQLite");
    ControlMigrator::up(&db, None)
        .await
        .expect("control tables");
    db
}

fn name(text: &str) -> TenantName {
    TenantName::parse(text).expect("valid tenant name")
}

fn registration<'a>(name: &'a TenantName, display: &'a str) -> tenants::Registration<'a> {
    tenants::Registration {
        name,
        display_name: display,
        isolation: Isolation::Shared,
        schema_name: "tenant_acme",
        collection_name: "memories_shared",
    }
}

#[tokio::test]
async fn ensure_registers_once_and_adopts_the_row_with_its_id() {
    let db = control_tables().await;
    let acme = name("acme");
    let first = tenants::ensure(&db, Uuid::now_v7(), &registration(&acme, "Acme"))
        .await
        .expect("registered");
    assert!(first.created);
    let again = tenants::ensure(&db, Uuid::now_v7(), &registration(&acme, "Acme Corp"))
        .await
        .expect("adopted");
    assert_eq!(again.tenant_id, first.tenant_id);
    assert!(!again.created);
    let row = tenants::find_by_name(&db, "acme")
        .await
        .expect("read")
        .expect("registered");
    assert_eq!(row.display_name, "Acme Corp");
    assert_eq!(
        tenants::registered_to_schema(&db, "tenant_acme", "other")
            .await
            .expect("read"),
        Some("acme".to_string())
    );
    assert_eq!(
        tenants::registered_to_schema(&db, "tenant_acme", "acme")
            .await
            .expect("read"),
        None
    );
}

#[tokio::test]
async fn settings_are_written_only_when_they_differ_and_one_setting_keeps_the_others() {
    let db = control_tables().await;
    let acme = name("acme");
    let id = tenants::ensure(&db, Uuid::now_v7(), &registration(&acme, "Acme"))
        .await
        .expect("registered")
        .tenant_id;
    let wanted = Settings {
        tenant_id: id,
        updated_at: Utc::now(),
        pii_policy: Some("mask".into()),
        rate_limit_per_minute: Some(600),
        analytics_schedule: Some("0 0 * * * *".into()),
        search_ef: Some(64),
        max_memories: Some(1000),
        insight_ttl_hours: Some(168),
        insight_min_confidence: Some(0.5),
        rate_limit_burst: Some(20),
    };
    assert!(settings::apply(&db, &wanted).await.expect("written"));
    assert!(!settings::apply(&db, &wanted).await.expect("unchanged"));
    settings::set(&db, id, Setting::SearchEf(Some(128)))
        .await
        .expect("one setting");
    let stored = settings::get(&db, id).await.expect("read").expect("row");
    assert_eq!(stored.search_ef, Some(128));
    assert_eq!(stored.pii_policy.as_deref(), Some("mask"));
    assert_eq!(stored.max_memories, Some(1000));
    // The API's change is drift the next full write puts back.
    assert!(settings::apply(&db, &wanted).await.expect("put back"));
    let stored = settings::get(&db, id).await.expect("read").expect("row");
    assert_eq!(stored.search_ef, wanted.search_ef);
    assert_eq!(stored.pii_policy, wanted.pii_policy);
    assert!(!settings::apply(&db, &wanted).await.expect("unchanged"));
}

fn key(tenant_id: Uuid, name: &str, prefix: &str) -> api_key::Model {
    api_key::Model {
        key_id: Uuid::now_v7(),
        tenant_id,
        user_id: Uuid::now_v7(),
        name: name.into(),
        prefix: prefix.into(),
        key_hash: format!("hash-of-{prefix}"),
        role: "tenant-admin".into(),
        created_at: Utc::now(),
        expires_at: None,
        revoked_at: None,
    }
}

#[tokio::test]
async fn a_key_is_revoked_only_through_its_own_tenant() {
    let db = control_tables().await;
    let (acme, globex) = (name("acme"), name("globex"));
    let a = tenants::ensure(&db, Uuid::now_v7(), &registration(&acme, "Acme"))
        .await
        .expect("acme")
        .tenant_id;
    let mut other = registration(&globex, "Globex");
    other.schema_name = "tenant_globex";
    let b = tenants::ensure(&db, Uuid::now_v7(), &other)
        .await
        .expect("globex")
        .tenant_id;
    let a_key = key(a, "operator", "aaaa1111");
    let b_key = key(b, "operator", "bbbb2222");
    api_keys::insert(&db, a_key.clone()).await.expect("a key");
    api_keys::insert(&db, b_key.clone()).await.expect("b key");
    let now = Utc::now();
    assert!(
        !api_keys::revoke(&db, a, b_key.key_id, now)
            .await
            .expect("tried")
    );
    assert!(
        api_keys::is_live(&db, b, "bbbb2222", &b_key.key_hash, now)
            .await
            .expect("read")
    );
    assert!(
        !api_keys::is_live(&db, a, "bbbb2222", &b_key.key_hash, now)
            .await
            .expect("read")
    );
    assert_eq!(
        api_keys::revoke_named(&db, a, "operator", now)
            .await
            .expect("revoked"),
        1
    );
    assert!(
        !api_keys::is_live(&db, a, "aaaa1111", &a_key.key_hash, now)
            .await
            .expect("read")
    );
    let mut expired = key(b, "ci", "cccc3333");
    expired.expires_at = Some(now - Duration::hours(1));
    api_keys::insert(&db, expired.clone())
        .await
        .expect("expired");
    assert!(
        !api_keys::is_live(&db, b, "cccc3333", &expired.key_hash, now)
            .await
            .expect("read")
    );
    assert_eq!(api_keys::revoke_all(&db, b, now).await.expect("revoked"), 2);
    assert_eq!(api_keys::list_of(&db, b).await.expect("listed").len(), 2);
}

#[tokio::test]
async fn integrations_follow_their_binding_and_go_with_the_tenant() {
    let db = control_tables().await;
    let acme = name("acme");
    assert_eq!(
        integrations::register(&db, "acme", &record(false))
            .await
            .expect("no tenant yet"),
        None
    );
    tenants::ensure(&db, Uuid::now_v7(), &registration(&acme, "Acme"))
        .await
        .expect("registered");
    let id = integrations::register(&db, "acme", &record(false))
        .await
        .expect("registered")
        .expect("tenant exists");
    let paused = integrations::register(&db, "acme", &record(true))
        .await
        .expect("updated");
    assert_eq!(paused, Some(id));
    integrations::unregister(&db, "acme", "tracker")
        .await
        .expect("removed");
    integrations::unregister(&db, "acme", "tracker")
        .await
        .expect("already gone");
    let registered = tenants::find_by_name(&db, "acme")
        .await
        .expect("read")
        .expect("row");
    tenants::unregister(&db, &registered).await.expect("gone");
    assert!(tenants::list(&db).await.expect("listed").is_empty());
}

fn record(paused: bool) -> IntegrationRecord {
    IntegrationRecord {
        name: "tracker".into(),
        kind: "Webhook".into(),
        settings: serde_json::json!({"url": "https://hooks.example.com/m"}),
        secret_name: "tracker-credentials".into(),
        secret: Some("whsec_c2VjcmV0".into()),
        inbound_secret: None,
        sync_schedule: None,
        paused,
    }
}

#[tokio::test]
async fn deliveries_are_claimed_once_retried_and_pruned_when_done() {
    use memoryc_control::webhook_deliveries::{self, Attempt, DeliveryStatus, NewDelivery};
    let db = control_tables().await;
    let acme = name("acme");
    let tenant_id = Uuid::now_v7();
    tenants::ensure(&db, tenant_id, &registration(&acme, "Acme"))
        .await
        .expect("registered");
    let integration = integrations::register(&db, "acme", &record(false))
        .await
        .expect("registered")
        .expect("tenant exists");
    let memory_id = Uuid::now_v7();
    let new = |event_id| NewDelivery {
        delivery_id: Uuid::now_v7(),
        tenant_id,
        integration_id: integration,
        event_id,
        memory_id: Some(memory_id),
        event_type: "memory.created".into(),
        payload: "{}".into(),
    };
    let now = chrono::Utc::now();
    let (first, second) = (new(Uuid::now_v7()), new(Uuid::now_v7()));
    let again = NewDelivery {
        delivery_id: Uuid::now_v7(),
        ..first.clone()
    };
    assert_eq!(
        webhook_deliveries::enqueue(&db, &[first.clone(), second.clone()], now)
            .await
            .expect("queued"),
        2
    );
    assert_eq!(
        webhook_deliveries::enqueue(&db, &[again], now)
            .await
            .expect("queued"),
        0,
        "one delivery per integration and event"
    );
    let lease = now + chrono::Duration::seconds(60);
    assert!(
        webhook_deliveries::claim(&db, first.delivery_id, now, lease)
            .await
            .expect("claim")
    );
    assert!(
        !webhook_deliveries::claim(&db, first.delivery_id, now, lease)
            .await
            .expect("claim"),
        "a claimed delivery is not claimed twice"
    );
    webhook_deliveries::record_attempt(
        &db,
        first.delivery_id,
        &Attempt::Delivered {
            response_status: 204,
        },
        now,
    )
    .await
    .expect("recorded");
    assert!(
        !webhook_deliveries::requeue(&db, first.delivery_id, now)
            .await
            .expect("requeue"),
        "a delivered one is not queued again"
    );
    let due = webhook_deliveries::due(&db, now, 10).await.expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].delivery_id, second.delivery_id);
    assert_eq!(
        webhook_deliveries::prune(&db, now + chrono::Duration::seconds(1))
            .await
            .expect("pruned"),
        1,
        "only the delivered one goes"
    );
    let left = webhook_deliveries::list(&db, tenant_id, integration, None, None, 10)
        .await
        .expect("listed");
    assert_eq!(left.len(), 1);
    assert_eq!(
        DeliveryStatus::parse(&left[0].status),
        Some(DeliveryStatus::Pending)
    );
    assert_eq!(
        webhook_deliveries::erase_memory(&db, tenant_id, memory_id)
            .await
            .expect("erased"),
        1
    );
}
