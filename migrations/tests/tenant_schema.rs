//! The tenant migrations on SQLite and inside an arbitrary PostgreSQL schema: the tables, their
//! checks and keys, and the way back down.

use memoryc_migrations::TenantMigrator;
use memoryc_migrations::sea_orm_migration::MigratorTrait;
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, TransactionTrait,
};

const USER: &str = "11111111-1111-4111-8111-111111111111";

fn postgres_url() -> String {
    std::env::var("MEMORYC_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

async fn run(db: &impl ConnectionTrait, sql: &str) -> Result<(), sea_orm::DbErr> {
    db.execute_unprepared(sql).await.map(|_| ())
}

fn memory_insert(id: &str, content: &str, category: &str, confidence: f64) -> String {
    format!(
        "INSERT INTO memories (memory_id, content, category, metadata, created_at, updated_at, \
         confidence_score, access_count, user_id, is_deleted) VALUES ('{id}', '{content}', \
         '{category}', '{{}}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', {confidence}, 0, \
         '{USER}', false)"
    )
}

/// Checks every rule of the schema on a migrated connection.
async fn assert_schema_rules(db: &impl ConnectionTrait) {
    run(db, &format!("INSERT INTO users (user_id, username, created_at, preferences) VALUES ('{USER}', 'ada', '2026-01-01T00:00:00Z', '{{}}')")).await.expect("user");
    let a = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
    let b = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
    run(db, &memory_insert(a, "valid", "TECHNICAL", 0.5))
        .await
        .expect("valid memory");
    run(db, &memory_insert(b, "valid too", "PROJECT", 1.0))
        .await
        .expect("valid memory");

    let rejected = [
        memory_insert("cccccccc-cccc-4ccc-8ccc-cccccccccccc", "x", "GOSSIP", 0.5),
        memory_insert(
            "cccccccc-cccc-4ccc-8ccc-cccccccccccc",
            "   ",
            "TECHNICAL",
            0.5,
        ),
        memory_insert(
            "cccccccc-cccc-4ccc-8ccc-cccccccccccc",
            "x",
            "TECHNICAL",
            1.5,
        ),
        memory_insert(
            "cccccccc-cccc-4ccc-8ccc-cccccccccccc",
            &"x".repeat(50_001),
            "TECHNICAL",
            0.5,
        ),
        memory_insert(a, "duplicate id", "TECHNICAL", 0.5),
        "INSERT INTO users (user_id, username, created_at, preferences) VALUES ('22222222-2222-4222-8222-222222222222', 'ada', '2026-01-01T00:00:00Z', '{}')".to_string(),
    ];
    for sql in rejected {
        assert!(
            run(db, &sql).await.is_err(),
            "accepted: {}",
            &sql[..sql.len().min(160)]
        );
    }
    run(
        db,
        &memory_insert(
            "dddddddd-dddd-4ddd-8ddd-dddddddddddd",
            &"x".repeat(50_000),
            "TECHNICAL",
            0.0,
        ),
    )
    .await
    .expect("content at the limit");

    let relationship = |id: &str, kind: &str, strength: f64, target: &str| {
        format!(
            "INSERT INTO memory_relationships (relationship_id, source_memory_id, target_memory_id, relationship_type, strength, created_at) VALUES ('{id}', '{a}', '{target}', '{kind}', {strength}, '2026-01-01T00:00:00Z')"
        )
    };
    run(
        db,
        &relationship("e0000000-0000-4000-8000-000000000001", "SIMILAR", 0.9, b),
    )
    .await
    .expect("relationship");
    for sql in [
        relationship("e0000000-0000-4000-8000-000000000002", "SIMILAR", 0.8, b),
        relationship("e0000000-0000-4000-8000-000000000003", "FRIENDS", 0.8, b),
        relationship("e0000000-0000-4000-8000-000000000004", "BUILDS_ON", 1.2, b),
        relationship("e0000000-0000-4000-8000-000000000005", "BUILDS_ON", 0.5, a),
        relationship(
            "e0000000-0000-4000-8000-000000000006",
            "BUILDS_ON",
            0.5,
            "ffffffff-ffff-4fff-8fff-ffffffffffff",
        ),
    ] {
        assert!(run(db, &sql).await.is_err(), "accepted: {sql}");
    }
    let insight = |kind: &str, expires: &str| {
        format!(
            "INSERT INTO predictive_insights (insight_id, insight_type, content, confidence, supporting_memories, created_at, expires_at, action_taken) VALUES ('{}', '{kind}', 'c', 0.8, '[]', '2026-01-01T00:00:00Z', '{expires}', false)",
            uuid::Uuid::new_v4()
        )
    };
    run(db, &insight("PATTERN", "2026-02-01T00:00:00Z"))
        .await
        .expect("insight");
    assert!(
        run(db, &insight("HUNCH", "2026-02-01T00:00:00Z"))
            .await
            .is_err()
    );
    assert!(
        run(db, &insight("RISK_ASSESSMENT", "2025-01-01T00:00:00Z"))
            .await
            .is_err()
    );

    let history = |action: &str| {
        format!(
            "INSERT INTO memory_history (history_id, memory_id, action, changed_by, changed_at) VALUES ('{}', '{b}', '{action}', '{b}', '2026-01-01T00:00:00Z')",
            uuid::Uuid::new_v4()
        )
    };
    run(db, &history("UPDATED")).await.expect("history entry");
    assert!(run(db, &history("RENAMED")).await.is_err());

    // Deleting a memory removes its relationships.
    run(db, &format!("DELETE FROM memories WHERE memory_id = '{b}'"))
        .await
        .expect("delete");
    let left = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM memory_relationships",
        ))
        .await
        .expect("count")
        .expect("row");
    assert_eq!(left.try_get::<i64>("", "n").expect("n"), 0);
}

async fn table_count(db: &DatabaseConnection, schema_filter: &str) -> i64 {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => format!("SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = '{schema_filter}' AND table_name IN ('users','memories','memory_relationships','analytics_events','predictive_insights','memory_history')"),
        _ => "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('users','memories','memory_relationships','analytics_events','predictive_insights','memory_history')".to_string(),
    };
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("query")
        .expect("row");
    row.try_get::<i64>("", "n").expect("n")
}

#[tokio::test]
async fn tenant_schema_on_sqlite_enforces_the_design_and_is_reversible() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("tenant.sqlite").display()
    );
    let db = Database::connect(url).await.expect("sqlite");
    run(&db, "PRAGMA foreign_keys = ON").await.expect("pragma");
    TenantMigrator::up(&db, None).await.expect("up");
    TenantMigrator::up(&db, None)
        .await
        .expect("up again is a no-op");
    assert_eq!(table_count(&db, "").await, 6);
    assert_schema_rules(&db).await;
    TenantMigrator::down(&db, None).await.expect("down");
    assert_eq!(table_count(&db, "").await, 0);
    TenantMigrator::up(&db, None).await.expect("up after down");
    assert_eq!(table_count(&db, "").await, 6);
}

#[tokio::test]
async fn tenant_schema_runs_into_any_postgres_schema() {
    let db = Database::connect(postgres_url()).await.expect("postgres");
    let schema = format!(
        "tenant_mig_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    );
    run(&db, &format!("CREATE SCHEMA \"{schema}\""))
        .await
        .expect("schema");
    let migrate = async |up: bool| {
        let txn = db.begin().await.expect("begin");
        run(&txn, &format!("SET LOCAL search_path TO \"{schema}\""))
            .await
            .expect("search path");
        if up {
            TenantMigrator::up(&txn, None).await.expect("up");
        } else {
            TenantMigrator::down(&txn, None).await.expect("down");
        }
        txn.commit().await.expect("commit");
    };
    migrate(true).await;
    assert_eq!(table_count(&db, &schema).await, 6);
    assert_eq!(
        table_count(&db, "public").await,
        0,
        "nothing leaks into public"
    );
    let txn = db.begin().await.expect("begin");
    run(&txn, &format!("SET LOCAL search_path TO \"{schema}\""))
        .await
        .expect("search path");
    assert_schema_rules_in_savepoints(&txn).await;
    txn.commit().await.expect("commit");
    migrate(false).await;
    assert_eq!(table_count(&db, &schema).await, 0);
    run(&db, &format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .expect("drop");
}

/// PostgreSQL aborts a transaction on the first error; run each statement in its own savepoint.
async fn assert_schema_rules_in_savepoints(txn: &sea_orm::DatabaseTransaction) {
    let wrapper = SavepointPerStatement(txn);
    assert_schema_rules(&wrapper).await;
}

struct SavepointPerStatement<'a>(&'a sea_orm::DatabaseTransaction);

#[async_trait::async_trait]
impl ConnectionTrait for SavepointPerStatement<'_> {
    fn get_database_backend(&self) -> DbBackend {
        self.0.get_database_backend()
    }
    async fn execute_raw(&self, stmt: Statement) -> Result<sea_orm::ExecResult, sea_orm::DbErr> {
        let nested = self.0.begin().await?;
        let result = nested.execute_raw(stmt).await;
        if result.is_ok() {
            nested.commit().await?;
        } else {
            nested.rollback().await?;
        }
        result
    }
    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, sea_orm::DbErr> {
        let nested = self.0.begin().await?;
        let result = nested.execute_unprepared(sql).await;
        if result.is_ok() {
            nested.commit().await?;
        } else {
            nested.rollback().await?;
        }
        result
    }
    async fn query_one_raw(
        &self,
        stmt: Statement,
    ) -> Result<Option<sea_orm::QueryResult>, sea_orm::DbErr> {
        self.0.query_one_raw(stmt).await
    }
    async fn query_all_raw(
        &self,
        stmt: Statement,
    ) -> Result<Vec<sea_orm::QueryResult>, sea_orm::DbErr> {
        self.0.query_all_raw(stmt).await
    }
}
