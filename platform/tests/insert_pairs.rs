//! A memory and its history entry are inserted together or not at all, in the tenant's own
//! tables, on SQLite and on PostgreSQL (where both go in one statement).

mod test_support;

use chrono::{SubsecRound, Utc};
use memoryc_crds::layout::{Isolation, TenantName};
use memoryc_platform::app::Platform;
use memoryc_platform::stores::relational::Databases;
use memoryc_platform::stores::relational::entities::{history, memory};
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};
use test_support::{Backends, test_config, unique};
use uuid::Uuid;

fn memory_row(memory_id: Uuid, user_id: Uuid, content: &str) -> memory::ActiveModel {
    let now = Utc::now().trunc_subsecs(6);
    memory::Model {
        memory_id,
        content: content.to_string(),
        category: "PROJECT".to_string(),
        embedding: None,
        metadata: serde_json::json!({"source": "test"}),
        created_at: now,
        updated_at: now,
        confidence_score: 0.5,
        access_count: 0,
        user_id,
        is_deleted: false,
    }
    .into_active_model()
    .reset_all()
}

fn history_row(history_id: Uuid, memory_id: Uuid) -> history::ActiveModel {
    history::ActiveModel {
        history_id: Set(history_id),
        memory_id: Set(memory_id),
        action: Set("CREATED".to_string()),
        old_value: Set(None),
        new_value: Set(Some(serde_json::json!({"content": "x"}))),
        changed_by: Set(Uuid::now_v7()),
        changed_at: Set(Utc::now()),
    }
}

async fn memories_of(databases: &Databases, tenant: &TenantName, id: Uuid) -> usize {
    databases
        .tenant_select(tenant, memory::Entity::find_by_id(id))
        .await
        .expect("memories read")
        .len()
}

async fn history_of(databases: &Databases, tenant: &TenantName, memory_id: Uuid) -> usize {
    databases
        .tenant_select(
            tenant,
            history::Entity::find().filter(history::Column::MemoryId.eq(memory_id)),
        )
        .await
        .expect("history read")
        .len()
}

async fn pairs_are_inserted_together_or_not_at_all(backends: Backends) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let platform = Platform::build(test_config(backends, data_dir.path().to_path_buf()))
        .await
        .expect("platform builds");
    let databases = &platform.databases;
    // Tenants made the usual way, each with its admin user, whom the rows name.
    let mut users = Vec::new();
    let mut names = Vec::new();
    for prefix in ["a-", "b-"] {
        let name = unique(prefix);
        let created = platform
            .state
            .tenants
            .create(&name, None, Isolation::Shared)
            .await
            .expect("tenant created");
        users.push(created.user_id);
        names.push(TenantName::parse(&name).expect("name"));
    }
    let (a, b) = (&names[0], &names[1]);
    let (user_a, user_b) = (users[0], users[1]);

    // Both rows land, in A's tables only, and the row comes back as stored.
    let first = Uuid::now_v7();
    let first_history = Uuid::now_v7();
    let row = memory_row(first, user_a, "The first note.");
    let stored = databases
        .tenant_insert_pair(a, row.clone(), history_row(first_history, first))
        .await
        .expect("inserted");
    assert_eq!(stored.into_active_model().reset_all(), row);
    assert_eq!(memories_of(databases, a, first).await, 1);
    assert_eq!(history_of(databases, a, first).await, 1);
    assert_eq!(memories_of(databases, b, first).await, 0);
    assert_eq!(history_of(databases, b, first).await, 0);

    // The companion fails (its id is taken): the memory is not kept either.
    let second = Uuid::now_v7();
    let refused = databases
        .tenant_insert_pair(
            a,
            memory_row(second, user_a, "The second note."),
            history_row(first_history, second),
        )
        .await;
    assert!(refused.is_err(), "a duplicate history id must fail");
    assert_eq!(memories_of(databases, a, second).await, 0);
    assert_eq!(history_of(databases, a, second).await, 0);

    // The row fails (its id is taken): the companion is not kept either.
    let refused = databases
        .tenant_insert_pair(
            a,
            memory_row(first, user_a, "The first note again."),
            history_row(Uuid::now_v7(), first),
        )
        .await;
    assert!(refused.is_err(), "a duplicate memory id must fail");
    assert_eq!(memories_of(databases, a, first).await, 1);
    assert_eq!(history_of(databases, a, first).await, 1);

    // The same ids in B are B's own.
    databases
        .tenant_insert_pair(
            b,
            memory_row(first, user_b, "B's note."),
            history_row(first_history, first),
        )
        .await
        .expect("B's rows are its own");
    assert_eq!(memories_of(databases, b, first).await, 1);
    assert_eq!(history_of(databases, b, first).await, 1);
}

test_support::on_each_backend!(
    pairs_are_inserted_together_or_not_at_all,
    tokio::test(flavor = "multi_thread", worker_threads = 2)
);
