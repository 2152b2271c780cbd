//! Provisioning against the real PostgreSQL and Milvus (see `crate::test_support`).

use memoryc_control::roles;
use memoryc_crds::layout::Isolation;
use memoryc_migrations::ControlMigrator;
use memoryc_migrations::sea_orm_migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

use super::milvus::{CollectionPlan, CollectionReport};
use super::password;
use super::postgres::{Postgres, ident};
use crate::tenant::plan::TenantPlan;
use crate::test_support::{self, plan, settings, tenant, unique_name};

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
    connect_as_role(&plan.role, password).await
}

/// A connection logged in as `role` with `password` (empty: none).
async fn connect_as_role(role: &str, password: &str) -> DatabaseConnection {
    let rest = test_support::database_url()
        .split_once('@')
        .map(|(_, rest)| rest.to_string())
        .expect("url with @");
    let user = role.replace('$', "%24");
    let credentials = if password.is_empty() {
        user
    } else {
        format!("{user}:{password}")
    };
    Database::connect(format!("postgres://{credentials}@{rest}"))
        .await
        .expect("log in")
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
    let pg = test_support::postgres().await;
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
    let pg = test_support::postgres().await;
    let control = control_schema();
    let settings = settings(&control);
    for isolation in [Isolation::Shared, Isolation::Dedicated] {
        let mut resource = tenant(&unique_name(), isolation);
        resource.spec.vectors.index.ef = 250;
        resource.spec.storage.max_memories = Some(5_000);
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
                    "SELECT s.pii_policy, s.rate_limit_per_minute, s.analytics_schedule, s.search_ef, \
                     s.max_memories, s.insight_ttl_hours, s.insight_min_confidence, \
                     s.rate_limit_burst \
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
        assert_eq!(row.try_get_by_index::<i64>(4).expect("quota"), 5_000);
        assert_eq!(row.try_get_by_index::<i32>(5).expect("ttl"), 168);
        assert_eq!(row.try_get_by_index::<f64>(6).expect("confidence"), 0.7);
        assert_eq!(
            row.try_get_by_index::<i32>(7).expect("burst"),
            resource.spec.rate_limits.burst
        );
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
    let pg = test_support::postgres().await;
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

/// A dedicated platform logs in as its tenant: it uses its control tables but cannot change
/// them (the operator migrates them as the owner role), so it skips the migrations.
#[tokio::test]
async fn a_dedicated_platforms_login_uses_its_control_tables_but_cannot_alter_them() {
    let pg = test_support::postgres().await;
    let control = control_schema();
    let settings = settings(&control);
    let plan = plan(&tenant(&unique_name(), Isolation::Dedicated), &settings);
    let password = password::generate();
    pg.provision(&plan, &password, false, None)
        .await
        .expect("provision");
    let admin = test_support::database_url();
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
    assert!(
        !roles::can_create_in(&as_role, &plan.control_schema)
            .await
            .expect("privilege")
    );
    let applied = as_role
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) FROM seaql_migrations".to_string(),
        ))
        .await
        .expect("read the migration history")
        .expect("row")
        .try_get_by_index::<i64>(0)
        .expect("count");
    assert_eq!(
        applied as usize,
        ControlMigrator::migrations().len(),
        "the operator ran them all"
    );
    assert_eq!(
        query_error(&as_role, "SELECT count(*) FROM api_keys").await,
        None
    );
    let alter = query_error(&as_role, "ALTER TABLE api_keys ADD COLUMN sneaky text").await;
    assert!(alter.is_some_and(|e| e.contains("must be owner")));
    as_role.close().await.expect("close");
    cleanup(&pg, &[&plan], &control).await;
}

/// What a tenant can try with the credentials in its own Secret: plant code in its schema
/// that a more privileged role would run (trigger, function, view, rule, table, operator),
/// change its tables, or read another tenant's data or the control tables. Each is refused,
/// while the DML its applications need works.
#[tokio::test]
async fn a_tenant_login_can_plant_no_code_and_reach_nothing_of_anyone_else() {
    let pg = test_support::postgres().await;
    let control = control_schema();
    let settings = settings(&control);
    let a = plan(&tenant(&unique_name(), Isolation::Shared), &settings);
    let b = plan(&tenant(&unique_name(), Isolation::Shared), &settings);
    let password_a = password::generate();
    pg.provision(&a, &password_a, false, None)
        .await
        .expect("provision a");
    pg.provision(&b, &password::generate(), false, None)
        .await
        .expect("provision b");
    let as_a = connect_as(&a, &password_a).await;
    let refusals = refused_attacks(&as_a, &a, &b).await;
    assert_eq!(refusals.len(), ATTACKS, "every attack was tried");
    for (attack, error) in &refusals {
        assert!(
            error.as_deref().is_some_and(is_refusal),
            "{attack}: {error:?}"
        );
    }
    // The DML the platform and the tenant's own applications need.
    let s = ident(&a.schema);
    for allowed in [
        format!(
            "INSERT INTO {s}.users (user_id, username, created_at, preferences) \
             VALUES (gen_random_uuid(), 'someone', now(), '{{}}')"
        ),
        format!("UPDATE {s}.users SET last_active = now() WHERE username = 'someone'"),
        format!("SELECT count(*) FROM {s}.memories"),
        format!("DELETE FROM {s}.users WHERE username = 'someone'"),
        format!("SELECT count(*) FROM {s}.seaql_migrations"),
    ] {
        assert_eq!(query_error(&as_a, &allowed).await, None, "{allowed}");
    }
    as_a.close().await.expect("close");
    cleanup(&pg, &[&a, &b], &control).await;
}

const ATTACKS: usize = 14;

/// Every attack of a tenant login on its own schema, B's, and the control schema, with the
/// error each got (`None`: it worked).
async fn refused_attacks(
    db: &DatabaseConnection,
    a: &TenantPlan,
    b: &TenantPlan,
) -> Vec<(String, Option<String>)> {
    let s = ident(&a.schema);
    let attacks = [
        format!(
            "CREATE TRIGGER sneaky BEFORE INSERT ON {s}.memories FOR EACH ROW \
             EXECUTE FUNCTION suppress_redundant_updates_trigger()"
        ),
        format!(
            "CREATE FUNCTION {s}.sneaky() RETURNS trigger LANGUAGE plpgsql \
             AS $$ BEGIN RETURN NEW; END $$"
        ),
        format!("CREATE VIEW {s}.sneaky AS SELECT 1 AS one"),
        format!("CREATE RULE sneaky AS ON INSERT TO {s}.memories DO ALSO NOTHING"),
        format!("CREATE TABLE {s}.sneaky (loot text)"),
        format!("CREATE OPERATOR {s}.=== (LEFTARG = text, RIGHTARG = text, FUNCTION = texteq)"),
        format!("ALTER TABLE {s}.memories ADD COLUMN sneaky text"),
        format!("ALTER TABLE {s}.memories DISABLE ROW LEVEL SECURITY"),
        format!("TRUNCATE {s}.memories"),
        format!("INSERT INTO {s}.seaql_migrations VALUES ('m_sneaky', 0)"),
        format!("SELECT count(*) FROM {}.memories", ident(&b.schema)),
        format!("SELECT count(*) FROM {}.tenants", ident(&a.control_schema)),
        format!("SELECT count(*) FROM {}.api_keys", ident(&a.control_schema)),
        "CREATE SCHEMA sneaky".to_string(),
    ];
    let mut outcomes = Vec::new();
    for attack in attacks {
        let error = query_error(db, &attack).await;
        outcomes.push((attack, error));
    }
    outcomes
}

fn is_refusal(error: &str) -> bool {
    error.contains("permission denied") || error.contains("must be owner")
}

/// A tenant provisioned when its login owned its schema and tables (and so could plant a
/// trigger the platform would run) is repaired by the next provisioning: the owner role takes
/// everything over, planted code goes, and the login is left with its DML.
#[tokio::test]
async fn a_tenant_provisioned_under_the_old_model_is_repaired() {
    let pg = test_support::postgres().await;
    let control = control_schema();
    let settings = settings(&control);
    let a = plan(&tenant(&unique_name(), Isolation::Shared), &settings);
    let b = plan(&tenant(&unique_name(), Isolation::Shared), &settings);
    pg.provision(&b, &password::generate(), false, None)
        .await
        .expect("provision b");
    // The old model: the login owns the schema and runs the migrations.
    let password_a = password::generate();
    let db = pg.connection();
    db.execute_unprepared(&format!(
        "CREATE ROLE {r} LOGIN PASSWORD {p}; CREATE SCHEMA {s} AUTHORIZATION {r}",
        r = ident(&a.role),
        p = roles::literal(&password_a),
        s = ident(&a.schema)
    ))
    .await
    .expect("old role and schema");
    let transaction = pg.scoped(Some(&a.role), &a.schema).await.expect("as a");
    memoryc_migrations::TenantMigrator::up(&transaction, None)
        .await
        .expect("old migrations");
    transaction.commit().await.expect("commit");
    let as_a = connect_as(&a, &password_a).await;
    // Under the old model the attacks work: this is what the test above guards against.
    let old = refused_attacks(&as_a, &a, &b).await;
    let worked: Vec<&String> = old
        .iter()
        .filter(|(_, error)| error.is_none())
        .map(|(attack, _)| attack)
        .collect();
    assert!(
        worked
            .iter()
            .any(|attack| attack.starts_with("CREATE TRIGGER"))
            && worked
                .iter()
                .any(|attack| attack.starts_with("CREATE FUNCTION")),
        "the old model let the login plant code: {worked:?}"
    );
    as_a.close().await.expect("close");

    let (report, _) = pg
        .provision(&a, &password_a, false, None)
        .await
        .expect("provision repairs");
    assert!(report.ownership_repaired);
    let owners = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT DISTINCT pg_get_userbyid(relowner)::text FROM pg_class \
                 WHERE relnamespace = {}::regnamespace AND relkind IN ('r', 'i') \
                 UNION SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace \
                 WHERE nspname = {}",
                roles::literal(&a.schema),
                roles::literal(&a.schema)
            ),
        ))
        .await
        .expect("owners")
        .into_iter()
        .map(|row| row.try_get_by_index::<String>(0).expect("owner"))
        .collect::<Vec<_>>();
    assert_eq!(owners, vec![a.owner_role.clone()]);
    let planted = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
                 WHERE c.relnamespace = {s}::regnamespace AND NOT t.tgisinternal) \
                 + (SELECT count(*) FROM pg_proc WHERE pronamespace = {s}::regnamespace) \
                 + (SELECT count(*) FROM pg_rules WHERE schemaname = {s}) \
                 + (SELECT count(*) FROM pg_views WHERE schemaname = {s}) \
                 + (SELECT count(*) FROM pg_operator WHERE oprnamespace = {s}::regnamespace)",
                s = roles::literal(&a.schema)
            ),
        ))
        .await
        .expect("planted")
        .expect("row")
        .try_get_by_index::<i64>(0)
        .expect("count");
    assert_eq!(planted, 0, "the planted code is gone");
    let as_a = connect_as(&a, &password_a).await;
    for (attack, error) in refused_attacks(&as_a, &a, &b).await {
        // The old model's extra table (CREATE TABLE worked above) now belongs to the owner.
        if attack.starts_with("CREATE TABLE") {
            continue;
        }
        assert!(
            error.as_deref().is_some_and(is_refusal),
            "{attack}: {error:?}"
        );
    }
    as_a.close().await.expect("close");
    let (again, _) = pg
        .provision(&a, &password_a, true, None)
        .await
        .expect("again");
    assert!(!again.ownership_repaired, "the repair is done once");
    cleanup(&pg, &[&a, &b], &control).await;
}

#[tokio::test]
async fn retain_keeps_data_and_closes_access_delete_erases() {
    let pg = test_support::postgres().await;
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
    assert!(!pg.role_exists(&plan.platform_login).await.expect("role"));
    cleanup(&pg, &[], &control).await;
}

#[tokio::test]
async fn dedicated_collections_are_created_repaired_and_erased() {
    let milvus = test_support::milvus();
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
    let pg = test_support::postgres().await;
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

/// The shared platform serves each Shared tenant through a login of that tenant's own, recorded
/// in the control tables, with the tenant's table rights and membership of no role: from it
/// nothing reaches another tenant, not even `SET ROLE`. The platform's own login is NOINHERIT,
/// uses the control tables, reaches no tenant schema and can become no tenant (a membership
/// left from an earlier version is taken away). Retaining the tenant removes its platform
/// login. A privileged login is refused as the platform's.
#[tokio::test]
async fn the_shared_platform_reaches_each_tenant_only_through_that_tenants_own_login() {
    let admin = test_support::postgres().await;
    let platform_role = format!(
        "memoryc_platform_test_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    admin
        .connection()
        .execute_unprepared(&format!("CREATE ROLE {} LOGIN", ident(&platform_role)))
        .await
        .expect("platform role");
    let pg = test_support::postgres()
        .await
        .with_platform_role(Some(platform_role.clone()))
        .expect("a plain role name");
    let control = control_schema();
    let settings = settings(&control);
    let a = plan(&tenant(&unique_name(), Isolation::Shared), &settings);
    let b = plan(&tenant(&unique_name(), Isolation::Shared), &settings);
    for plan in [&a, &b] {
        pg.provision(plan, &password::generate(), false, None)
            .await
            .expect("provision");
    }
    let inherits = admin
        .connection()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT rolinherit FROM pg_roles WHERE rolname = {}",
                roles::literal(&platform_role)
            ),
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get_by_index::<bool>(0)
        .expect("bool");
    assert!(!inherits, "the platform's login is NOINHERIT");
    let as_platform = connect_as_role(&platform_role, "").await;
    let memories_of =
        |plan: &TenantPlan| format!("SELECT count(*) FROM {}.memories", ident(&plan.schema));
    let become_a = format!("SET ROLE {}; RESET ROLE", ident(&a.role));
    for (what, sql) in [
        ("read a tenant's tables", memories_of(&a)),
        ("become a tenant", become_a.clone()),
    ] {
        let refused = as_platform.execute_unprepared(&sql).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("permission denied")),
            "the platform's own login may not {what}: {refused:?}"
        );
    }
    let tenants = format!("SELECT count(*) FROM {}.tenants", ident(&control));
    assert_eq!(
        query_error(&as_platform, &tenants).await,
        None,
        "it uses the control tables"
    );

    // A's platform login, as the control table records it.
    let recorded = as_platform
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT role_name, password FROM {}.tenant_logins WHERE tenant_name = $1",
                ident(&control)
            ),
            [a.tenant.to_string().into()],
        ))
        .await
        .expect("query")
        .expect("A's login is recorded");
    let login: String = recorded.try_get_by_index(0).expect("role");
    let login_password: String = recorded.try_get_by_index(1).expect("password");
    assert_eq!(login, a.platform_login);
    assert!(password::is_usable(&login_password));
    let as_a = connect_as_role(&login, &login_password).await;
    assert_eq!(
        query_error(&as_a, &memories_of(&a)).await,
        None,
        "it uses A's tables"
    );
    for (what, sql) in [
        ("read B", memories_of(&b)),
        (
            "become B",
            format!("SET ROLE {}; RESET ROLE", ident(&b.role)),
        ),
        ("become A's login", become_a.clone()),
        (
            "become the platform",
            format!("SET ROLE {}; RESET ROLE", ident(&platform_role)),
        ),
        ("read the control tables", tenants.clone()),
    ] {
        let refused = as_a.execute_unprepared(&sql).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("permission denied")),
            "A's platform login may not {what}: {refused:?}"
        );
    }
    as_a.close().await.expect("close");

    // An earlier version made the platform's login a member of every tenant's login role: the
    // next reconcile takes that away, and leaves A's platform login as it was.
    admin
        .connection()
        .execute_unprepared(&format!(
            "GRANT {} TO {}",
            ident(&a.role),
            ident(&platform_role)
        ))
        .await
        .expect("old membership");
    pg.provision(&a, &password::generate(), false, None)
        .await
        .expect("provision again");
    let again = as_platform.execute_unprepared(&become_a).await;
    assert!(
        again
            .as_ref()
            .is_err_and(|e| e.to_string().contains("permission denied")),
        "{again:?}"
    );
    let kept: String = as_platform
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT password FROM {}.tenant_logins WHERE tenant_name = $1",
                ident(&control)
            ),
            [a.tenant.to_string().into()],
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get_by_index(0)
        .expect("password");
    assert_eq!(kept, login_password, "a complete login is left alone");

    pg.retain(&a).await.expect("retain");
    assert!(
        !pg.role_exists(&a.platform_login).await.expect("role"),
        "retained: the platform login is gone"
    );
    let rows = as_platform
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT 1 FROM {}.tenant_logins WHERE tenant_name = '{}'",
                ident(&control),
                a.tenant
            ),
        ))
        .await
        .expect("query");
    assert!(rows.is_empty());
    as_platform.close().await.expect("close");
    // A privileged login is never made the platform's.
    let refused = test_support::postgres()
        .await
        .with_platform_role(Some("postgres".to_string()))
        .expect("a plain role name")
        .provision(&a, &password::generate(), false, None)
        .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("superuser")),
        "{refused:?}"
    );
    assert!(
        test_support::postgres()
            .await
            .with_platform_role(Some("bad\"name".to_string()))
            .is_err()
    );
    cleanup(&pg, &[&a, &b], &control).await;
    roles::drop_role(admin.connection(), &platform_role)
        .await
        .expect("drop platform role");
}
