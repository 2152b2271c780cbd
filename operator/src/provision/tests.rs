//! Provisioning against the real PostgreSQL and Milvus (see `crate::testing`).

use memoryc_crds::layout::Isolation;
use memoryc_migrations::ControlMigrator;
use memoryc_migrations::sea_orm_migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

use super::milvus::{CollectionPlan, CollectionReport};
use super::password;
use super::postgres::{Postgres, ident};
use crate::tenant::plan::TenantPlan;
use crate::testing::{self, plan, settings, tenant, unique_name};

/// A control schema private to one test.
fn control_schema() -> String {
    format!(
        "memoryc_control_test_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

async fn cleanup(pg: &Postgres, plans: &[&TenantPlan], control: &str) {
    for plan in plans {
        pg.erase(plan).await.expect("erase");
    }
    pg.connection()
        .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(control)))
        .await
        .expect("drop control schema");
}

/// A connection logged in as the tenant's role (the test server trusts local logins; the
/// password is given anyway).
async fn connect_as(plan: &TenantPlan, password: &str) -> DatabaseConnection {
    let admin = testing::database_url();
    let rest = admin
        .split_once('@')
        .map(|(_, rest)| rest)
        .expect("url with @");
    Database::connect(format!("postgres://{}:{password}@{rest}", plan.role))
        .await
        .expect("log in as tenant role")
}

async fn query_error(db: &DatabaseConnection, sql: &str) -> Option<String> {
    db.query_all_raw(Statement::from_string(DbBackend::Postgres, sql.to_string()))
        .await
        .err()
        .map(|e| e.to_string())
}

/// Everything provisioning may touch, as text, to compare two runs.
async fn catalog_snapshot(pg: &Postgres, plan: &TenantPlan) -> Vec<String> {
    let queries = [
        format!(
            "SELECT rolname || ':' || rolcanlogin || rolsuper || rolcreatedb || rolcreaterole \
             FROM pg_roles WHERE rolname = '{}'",
            plan.role
        ),
        format!(
            "SELECT nspname || ':' || pg_get_userbyid(nspowner) FROM pg_namespace \
             WHERE nspname IN ('{}', '{}') ORDER BY 1",
            plan.schema, plan.control_schema
        ),
        format!(
            "SELECT schemaname || '.' || tablename || ':' || tableowner FROM pg_tables \
             WHERE schemaname IN ('{}', '{}') ORDER BY 1",
            plan.schema, plan.control_schema
        ),
        format!(
            "SELECT tenant_id::text || name || display_name || isolation || schema_name || collection_name FROM {}.tenants ORDER BY 1",
            ident(&plan.control_schema)
        ),
        format!(
            "SELECT key_id::text || prefix || key_hash || coalesce(revoked_at::text, '-') FROM {}.api_keys ORDER BY 1",
            ident(&plan.control_schema)
        ),
        format!(
            "SELECT user_id::text || username FROM {}.users ORDER BY 1",
            ident(&plan.schema)
        ),
        format!(
            "SELECT count(*)::text FROM {}.seaql_migrations",
            ident(&plan.schema)
        ),
    ];
    let mut rows = Vec::new();
    for sql in queries {
        for row in pg
            .connection()
            .query_all_raw(Statement::from_string(DbBackend::Postgres, sql.clone()))
            .await
            .expect(&sql)
        {
            rows.push(row.try_get_by_index::<String>(0).expect("text"));
        }
    }
    rows
}

#[tokio::test]
async fn a_tenant_role_cannot_read_another_tenants_schema() {
    let pg = testing::postgres().await;
    let control = control_schema();
    let settings = settings(&control);
    let a = plan(&tenant(&unique_name(), Isolation::Shared), &settings);
    let b = plan(&tenant(&unique_name(), Isolation::Dedicated), &settings);
    let password_a = password::generate();
    pg.provision(&a, &password_a, false, None)
        .await
        .expect("provision a");
    pg.provision(&b, &password::generate(), false, None)
        .await
        .expect("provision b");

    let as_a = connect_as(&a, &password_a).await;
    assert_eq!(
        query_error(
            &as_a,
            &format!("SELECT count(*) FROM {}.memories", ident(&a.schema))
        )
        .await,
        None,
        "a reads its own memories"
    );
    for foreign in [
        format!("SELECT count(*) FROM {}.memories", ident(&b.schema)),
        format!("SELECT count(*) FROM {}.api_keys", ident(&b.control_schema)),
        format!("SELECT count(*) FROM {}.api_keys", ident(&a.control_schema)),
    ] {
        let error = query_error(&as_a, &foreign).await;
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("permission denied")),
            "{foreign}: {error:?}"
        );
    }
    let create = query_error(&as_a, "CREATE SCHEMA sneaky").await;
    assert!(create.is_some_and(|e| e.contains("permission denied")));
    as_a.close().await.expect("close");
    cleanup(&pg, &[&a, &b], &control).await;
}

#[tokio::test]
async fn provisioning_twice_changes_nothing() {
    let pg = testing::postgres().await;
    let control = control_schema();
    let settings = settings(&control);
    for isolation in [Isolation::Shared, Isolation::Dedicated] {
        let mut resource = tenant(&unique_name(), isolation);
        resource.spec.vectors.index.ef = 250;
        let plan = plan(&resource, &settings);
        let password = password::generate();
        let (first, registration) = pg
            .provision(&plan, &password, false, None)
            .await
            .expect("first");
        assert!(first.role_created && first.key_issued && first.tenant_registered);
        assert!(first.settings_applied);
        // The spec's PII policy, rate limit and analytics schedule, as the platform reads them.
        let row = pg
            .connection()
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                format!(
                    "SELECT s.pii_policy, s.rate_limit_per_minute, s.analytics_schedule, s.search_ef \
                     FROM {control}.tenant_settings s JOIN {control}.tenants t \
                     ON t.tenant_id = s.tenant_id WHERE t.name = '{}'",
                    plan.tenant,
                    control = ident(&plan.control_schema)
                ),
            ))
            .await
            .expect("settings")
            .expect("a settings row");
        assert_eq!(row.try_get_by_index::<String>(0).expect("pii"), "mask");
        assert_eq!(
            row.try_get_by_index::<i32>(1).expect("rate"),
            plan.platform_settings.rate_limit_per_minute
        );
        assert_eq!(
            row.try_get_by_index::<String>(2).expect("schedule"),
            "0 */6 * * *"
        );
        assert_eq!(row.try_get_by_index::<i32>(3).expect("ef"), 250);
        assert!(first.schemas_created.contains(&plan.schema));
        let before = catalog_snapshot(&pg, &plan).await;
        let (second, again) = pg
            .provision(&plan, &password, true, Some(&registration.api_key))
            .await
            .expect("second");
        assert_eq!(second, Default::default(), "{isolation:?}: nothing to do");
        assert_eq!(again, registration);
        assert_eq!(catalog_snapshot(&pg, &plan).await, before);
        assert_eq!(registration.tenant_id.to_string(), plan.uid);
        cleanup(&pg, &[&plan], &control).await;
    }
}

#[tokio::test]
async fn a_half_provisioned_tenant_is_completed_and_drift_repaired() {
    let pg = testing::postgres().await;
    let control = control_schema();
    let settings = settings(&control);
    let plan = plan(&tenant(&unique_name(), Isolation::Dedicated), &settings);
    let password = password::generate();
    let (_, registration) = pg
        .provision(&plan, &password, false, None)
        .await
        .expect("first");
    // Someone drops the data schema and disables the role.
    pg.connection()
        .execute_unprepared(&format!("DROP SCHEMA {} CASCADE", ident(&plan.schema)))
        .await
        .expect("drop");
    pg.connection()
        .execute_unprepared(&format!("ALTER ROLE {} NOLOGIN", ident(&plan.role)))
        .await
        .expect("nologin");
    let (report, again) = pg
        .provision(&plan, &password, true, Some(&registration.api_key))
        .await
        .expect("repair");
    assert_eq!(report.schemas_created, vec![plan.schema.clone()]);
    assert!(report.role_repaired);
    assert_eq!(
        again.api_key, registration.api_key,
        "the key survives: it lives in the control schema"
    );
    let tables = pg
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT count(*) FROM pg_tables WHERE schemaname = '{}'",
                plan.schema
            ),
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get_by_index::<i64>(0)
        .expect("int");
    assert_eq!(tables, 7, "6 tenant tables and the migration history");
    // A key that is not in the registry (an edited Secret) is replaced and the old one revoked.
    let (report, replaced) = pg
        .provision(
            &plan,
            &password,
            true,
            Some("mck_000000000000_00000000000000000000000000000000"),
        )
        .await
        .expect("replace key");
    assert!(report.key_issued);
    assert_ne!(replaced.api_key, registration.api_key);
    cleanup(&pg, &[&plan], &control).await;
}

#[tokio::test]
async fn a_dedicated_platform_can_migrate_its_control_schema_as_the_tenant_role() {
    let pg = testing::postgres().await;
    let control = control_schema();
    let settings = settings(&control);
    let plan = plan(&tenant(&unique_name(), Isolation::Dedicated), &settings);
    let password = password::generate();
    pg.provision(&plan, &password, false, None)
        .await
        .expect("provision");
    // What the platform does at start-up: connect as the tenant's role with the control schema
    // as search path, and run the control migrations there.
    let admin = testing::database_url();
    let rest = admin
        .split_once('@')
        .map(|(_, rest)| rest)
        .expect("url with @");
    let mut options =
        sea_orm::ConnectOptions::new(format!("postgres://{}:{password}@{rest}", plan.role));
    options.set_schema_search_path(ident(&plan.control_schema));
    let as_role = Database::connect(options)
        .await
        .expect("log in as tenant role");
    ControlMigrator::up(&as_role, None)
        .await
        .expect("control migrations as the role");
    as_role.close().await.expect("close");
    cleanup(&pg, &[&plan], &control).await;
}

#[tokio::test]
async fn retain_keeps_data_and_closes_access_delete_erases() {
    let pg = testing::postgres().await;
    let control = control_schema();
    let settings = settings(&control);
    let plan = plan(&tenant(&unique_name(), Isolation::Shared), &settings);
    pg.provision(&plan, &password::generate(), false, None)
        .await
        .expect("provision");
    pg.retain(&plan).await.expect("retain");
    assert!(pg.schema_exists(&plan.schema).await.expect("schema"));
    let active = pg
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT count(*) FROM {}.api_keys WHERE revoked_at IS NULL",
                ident(&plan.control_schema)
            ),
        ))
        .await
        .expect("keys")
        .expect("row")
        .try_get_by_index::<i64>(0)
        .expect("int");
    assert_eq!(active, 0);
    let login = pg
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = '{}'",
                plan.role
            ),
        ))
        .await
        .expect("role")
        .expect("row")
        .try_get_by_index::<bool>(0)
        .expect("bool");
    assert!(!login);
    pg.erase(&plan).await.expect("erase");
    assert!(!pg.schema_exists(&plan.schema).await.expect("schema"));
    assert!(!pg.role_exists(&plan.role).await.expect("role"));
    cleanup(&pg, &[], &control).await;
}

#[tokio::test]
async fn dedicated_collections_are_created_repaired_and_erased() {
    let milvus = testing::milvus();
    let settings = settings("memoryc_control");
    let plan = plan(&tenant(&unique_name(), Isolation::Dedicated), &settings);
    let collection = CollectionPlan {
        collection: plan.collection.clone(),
        tenant: plan.tenant.to_string(),
        isolation: plan.isolation,
        vectors: plan.vectors,
    };
    let first = milvus.ensure_collection(&collection).await.expect("create");
    assert_eq!(
        first,
        CollectionReport {
            created: true,
            loaded: true
        }
    );
    let again = milvus.ensure_collection(&collection).await.expect("again");
    assert_eq!(again, CollectionReport::default());
    milvus
        .drop_collection(&plan.collection)
        .await
        .expect("drop");
    let repaired = milvus.ensure_collection(&collection).await.expect("repair");
    assert!(repaired.created);
    milvus.erase(&collection).await.expect("erase");
    assert!(!milvus.has_collection(&plan.collection).await.expect("has"));
}

#[tokio::test]
async fn unreachable_milvus_is_reported_as_a_vector_store_error() {
    let milvus = super::milvus::Milvus::new("http://127.0.0.1:9");
    let result = milvus.has_collection("anything").await;
    assert!(
        matches!(result, Err(super::ProvisionError::VectorStore(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn shared_tenants_provisioned_side_by_side_share_one_control_schema() {
    let pg = testing::postgres().await;
    let control = control_schema();
    let settings = settings(&control);
    let plans: Vec<TenantPlan> = (0..6)
        .map(|_| plan(&tenant(&unique_name(), Isolation::Shared), &settings))
        .collect();
    let results = futures::future::join_all(
        plans
            .iter()
            .map(|plan| async { pg.provision(plan, &password::generate(), false, None).await }),
    )
    .await;
    for result in &results {
        assert!(result.is_ok(), "{result:?}");
    }
    let refs: Vec<&TenantPlan> = plans.iter().collect();
    cleanup(&pg, &refs, &control).await;
}
