//! The control migrations apply, roll back and apply again on SQLite, and the security tables
//! enforce their checks.

use memoryc_migrations::ControlMigrator;
use memoryc_migrations::sea_orm_migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

async fn sqlite() -> (tempfile::TempDir, DatabaseConnection) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("control.sqlite").display()
    );
    let db = Database::connect(url).await.expect("sqlite");
    (dir, db)
}

async fn tables(db: &DatabaseConnection) -> Vec<String> {
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'seaql%' AND name NOT LIKE 'sqlite%' ORDER BY name",
        ))
        .await
        .expect("tables");
    rows.iter()
        .map(|row| row.try_get::<String>("", "name").expect("name"))
        .collect()
}

#[tokio::test]
async fn control_migrations_apply_roll_back_and_apply_again() {
    let (_dir, db) = sqlite().await;
    ControlMigrator::up(&db, None).await.expect("up");
    assert_eq!(
        tables(&db).await,
        vec![
            "api_keys",
            "audit_log",
            "inbound_deliveries",
            "integration_items",
            "integrations",
            "outbox",
            "policy_rules",
            "tenant_logins",
            "tenant_settings",
            "tenants",
            "webhook_deliveries"
        ]
    );
    db.execute_unprepared(
        "SELECT secret, connected, last_error, last_sync_at, items_synced, next_run_at FROM integrations",
    )
    .await
    .expect("columns for an integration's credential and state");
    db.execute_unprepared(
        "SELECT analytics_schedule, search_ef, max_memories FROM tenant_settings",
    )
    .await
    .expect("columns for the tenant's own analytics schedule, search ef and quota");
    db.execute_unprepared(
        "SELECT insight_ttl_hours, insight_min_confidence, rate_limit_burst FROM tenant_settings",
    )
    .await
    .expect("columns for the tenant's insight lifetime, confidence floor and burst");
    db.execute_unprepared(
        "SELECT inbound_secret, external_id, sync_cursor, sync_pass, sync_lease_until FROM integrations",
    )
    .await
    .expect("columns for a sync's place, its lease and GitHub's webhook secret");
    ControlMigrator::down(&db, Some(1))
        .await
        .expect("down the sync state");
    let left = tables(&db).await;
    assert!(
        !left.contains(&"integration_items".to_string())
            && !left.contains(&"inbound_deliveries".to_string()),
        "the sync's tables are gone: {left:?}"
    );
    assert!(
        db.execute_unprepared("SELECT sync_cursor FROM integrations")
            .await
            .is_err(),
        "the cursor column is gone"
    );
    ControlMigrator::down(&db, Some(1))
        .await
        .expect("down the deliveries");
    assert!(
        !tables(&db)
            .await
            .contains(&"webhook_deliveries".to_string()),
        "the deliveries' table is gone"
    );
    ControlMigrator::down(&db, Some(1))
        .await
        .expect("down the integration state");
    assert!(
        db.execute_unprepared("SELECT secret FROM integrations")
            .await
            .is_err(),
        "the credential column is gone"
    );
    ControlMigrator::down(&db, Some(1)).await.expect("down one");
    assert!(
        !tables(&db).await.contains(&"tenant_logins".to_string()),
        "the platform logins' table is gone"
    );
    ControlMigrator::down(&db, Some(1))
        .await
        .expect("down one more");
    assert!(
        db.execute_unprepared("SELECT rate_limit_burst FROM tenant_settings")
            .await
            .is_err(),
        "the burst column is gone"
    );
    // The next rewrites policy domains and changes no table.
    ControlMigrator::down(&db, Some(2)).await.expect("down two");
    assert!(
        db.execute_unprepared("SELECT max_memories FROM tenant_settings")
            .await
            .is_err(),
        "the quota column is gone"
    );
    ControlMigrator::down(&db, Some(1))
        .await
        .expect("down one more");
    assert!(
        db.execute_unprepared("SELECT search_ef FROM tenant_settings")
            .await
            .is_err(),
        "the search ef column is gone"
    );
    db.execute_unprepared("SELECT analytics_schedule FROM tenant_settings")
        .await
        .expect("the schedule column stays");
    ControlMigrator::down(&db, Some(1))
        .await
        .expect("down another");
    assert!(
        db.execute_unprepared("SELECT analytics_schedule FROM tenant_settings")
            .await
            .is_err(),
        "the schedule column is gone"
    );
    ControlMigrator::down(&db, Some(3))
        .await
        .expect("down three more");
    assert_eq!(
        tables(&db).await,
        vec!["api_keys", "integrations", "outbox", "tenants"]
    );
    ControlMigrator::up(&db, None).await.expect("up again");
    assert_eq!(tables(&db).await.len(), 11);
}

#[tokio::test]
async fn security_tables_check_their_values() {
    let (_dir, db) = sqlite().await;
    ControlMigrator::up(&db, None).await.expect("up");
    let exec = |sql: &'static str| {
        let db = db.clone();
        async move { db.execute_unprepared(sql).await }
    };
    exec("INSERT INTO policy_rules (rule_id, ptype, v0, v1, v2, created_at) VALUES ('1', 'g', 'user:1', 'reader', 'acme', '2026-01-01T00:00:00Z')")
        .await
        .expect("a rule");
    assert!(
        exec("INSERT INTO policy_rules (rule_id, ptype, v0, v1, v2, created_at) VALUES ('2', 'g', 'user:1', 'reader', 'acme', '2026-01-01T00:00:00Z')")
            .await
            .is_err(),
        "the same rule twice"
    );
    assert!(
        exec("INSERT INTO audit_log (audit_id, method, route, path, outcome, status, occurred_at) VALUES ('1', 'GET', '/r', '/r', 'maybe', 200, '2026-01-01T00:00:00Z')")
            .await
            .is_err(),
        "an unknown audit outcome"
    );
    exec("INSERT INTO tenants (tenant_id, name, display_name, isolation, schema_name, collection_name, created_at) VALUES ('t', 'acme', 'Acme', 'Shared', 's', 'c', '2026-01-01T00:00:00Z')")
        .await
        .expect("a tenant");
    assert!(
        exec("INSERT INTO tenant_settings (tenant_id, pii_policy, updated_at) VALUES ('t', 'shred', '2026-01-01T00:00:00Z')")
            .await
            .is_err(),
        "an unknown PII policy"
    );
    assert!(
        exec("INSERT INTO tenant_settings (tenant_id, rate_limit_per_minute, updated_at) VALUES ('t', 0, '2026-01-01T00:00:00Z')")
            .await
            .is_err(),
        "a zero rate limit"
    );
    exec("INSERT INTO tenant_settings (tenant_id, pii_policy, rate_limit_per_minute, updated_at) VALUES ('t', 'reject', 10, '2026-01-01T00:00:00Z')")
        .await
        .expect("valid settings");
}

/// Tenant policy rules named their tenant's domain by name; the migration names it by id, so a
/// tenant created later under a deleted one's name inherits none of its rules. Rules of names
/// no longer registered go; rules of every tenant (`*`) and of the platform stay.
#[tokio::test]
async fn policy_domains_become_tenant_ids() {
    use sea_orm::{DbBackend, Statement};
    let (_dir, db) = sqlite().await;
    // Every migration before the rewrite of policy domains.
    let before_rewrite = ControlMigrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261204_000002_policy_domains_by_tenant_id")
        .expect("the rewrite") as u32;
    ControlMigrator::up(&db, Some(before_rewrite))
        .await
        .expect("up to the one before");
    let acme = uuid::Uuid::now_v7();
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "INSERT INTO tenants (tenant_id, name, display_name, isolation, schema_name, \
         collection_name, created_at) VALUES (?, 'acme', 'Acme', 'Shared', 's', 'c', \
         '2026-01-01T00:00:00Z')",
        [acme.into()],
    ))
    .await
    .expect("a tenant");
    for (id, ptype, v0, v1, v2) in [
        ("1", "g", "user:1", "tenant-admin", "acme"),
        ("2", "p", "auditor", "acme", "audit"),
        ("3", "g", "user:2", "tenant-admin", "gone"),
        ("4", "p", "helper", "*", "memories"),
        ("5", "g", "user:3", "platform-admin", "_platform"),
    ] {
        db.execute_unprepared(&format!(
            "INSERT INTO policy_rules (rule_id, ptype, v0, v1, v2, created_at) \
             VALUES ('{id}', '{ptype}', '{v0}', '{v1}', '{v2}', '2026-01-01T00:00:00Z')"
        ))
        .await
        .expect("a rule");
    }
    ControlMigrator::up(&db, None).await.expect("up");
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT rule_id, v1, v2 FROM policy_rules ORDER BY rule_id".to_string(),
        ))
        .await
        .expect("rules");
    let rules: Vec<(String, String, String)> = rows
        .iter()
        .map(|row| {
            (
                row.try_get_by_index(0).expect("id"),
                row.try_get_by_index(1).expect("v1"),
                row.try_get_by_index(2).expect("v2"),
            )
        })
        .collect();
    let id = acme.to_string();
    assert_eq!(
        rules,
        vec![
            ("1".into(), "tenant-admin".into(), id.clone()),
            ("2".into(), id, "audit".into()),
            ("4".into(), "*".into(), "memories".into()),
            ("5".into(), "platform-admin".into(), "_platform".into()),
        ]
    );
}
