//! Outbox entries enqueued or completed by requests at the same time share one statement: each
//! caller's entry must still be stored (or removed) exactly as a statement of its own would,
//! per tenant, on SQLite and on PostgreSQL.

mod test_support;

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use memoryc_crds::layout::TenantName;
use memoryc_platform::app::Platform;
use memoryc_platform::stores::OutboxRepository;
use memoryc_platform::stores::relational::outbox_repository::SqlOutboxRepository;
use test_support::{Backends, test_config, unique};
use uuid::Uuid;

/// Every waiting entry of `tenants`, as (tenant, memory).
async fn waiting(
    outbox: &SqlOutboxRepository,
    tenants: &[&TenantName],
) -> BTreeSet<(String, Uuid)> {
    let far = Utc::now() + Duration::days(365);
    outbox
        .due(far, 10_000)
        .await
        .expect("due entries")
        .into_iter()
        .filter(|entry| tenants.contains(&&entry.tenant))
        .map(|entry| (entry.tenant.to_string(), entry.memory_id))
        .collect()
}

async fn concurrent_calls_keep_their_own_entries(backends: Backends) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let platform = Platform::build(test_config(backends, data_dir.path().to_path_buf()))
        .await
        .expect("platform builds");
    let outbox = SqlOutboxRepository::new(platform.databases.clone());
    let a = TenantName::parse(&unique("a-")).expect("name");
    let b = TenantName::parse(&unique("b-")).expect("name");
    // Both tenants name the same memory ids: only the tenant tells their entries apart.
    let ids: Vec<Uuid> = (0..60).map(|_| Uuid::now_v7()).collect();
    let now = Utc::now();

    let enqueues = ids
        .iter()
        .flat_map(|id| [(&a, *id), (&b, *id)])
        .map(|(tenant, id)| outbox.enqueue(tenant, id, now));
    for result in futures::future::join_all(enqueues).await {
        result.expect("enqueued");
    }
    let all: BTreeSet<(String, Uuid)> = ids
        .iter()
        .flat_map(|id| [(a.to_string(), *id), (b.to_string(), *id)])
        .collect();
    assert_eq!(waiting(&outbox, &[&a, &b]).await, all);

    // A second enqueue of the same memory moves its due time: the later call wins.
    let later = now + Duration::hours(1);
    outbox.enqueue(&a, ids[0], later).await.expect("moved");
    let due_now: BTreeSet<Uuid> = outbox
        .due(now + Duration::seconds(1), 10_000)
        .await
        .expect("due")
        .into_iter()
        .filter(|entry| entry.tenant == a)
        .map(|entry| entry.memory_id)
        .collect();
    assert!(!due_now.contains(&ids[0]), "the later due time was lost");
    assert_eq!(due_now.len(), ids.len() - 1);

    // Completing all of A's and half of B's at once removes exactly those.
    let completions = ids
        .iter()
        .map(|id| (&a, *id))
        .chain(ids[..30].iter().map(|id| (&b, *id)))
        .map(|(tenant, id)| outbox.complete(tenant, id));
    for result in futures::future::join_all(completions).await {
        result.expect("completed");
    }
    let left: BTreeSet<(String, Uuid)> = ids[30..].iter().map(|id| (b.to_string(), *id)).collect();
    assert_eq!(waiting(&outbox, &[&a, &b]).await, left);
}

test_support::on_each_backend!(
    concurrent_calls_keep_their_own_entries,
    tokio::test(flavor = "multi_thread", worker_threads = 2)
);
