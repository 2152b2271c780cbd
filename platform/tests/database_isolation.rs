//! The shared platform runs each tenant's statements in sessions of that tenant's own
//! PostgreSQL login: whatever runs inside them, even a trigger a superuser planted on the
//! tenant's table, has that tenant's rights and no more, cannot become another role, and so can
//! neither read nor change another tenant's rows nor reach the control tables.

mod test_support;

use memoryc_control::roles;
use memoryc_crds::layout::TenantName;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::json;
use test_support::{Backends, TestPlatform, postgres_url, test_config, unique};

#[tokio::test]
async fn a_trigger_planted_on_a_tenants_postgres_table_runs_with_that_tenants_rights_only() {
    // The platform logs in as a role of its own: no superuser, NOINHERIT (membership in a
    // tenant's role lends it nothing until it becomes that tenant), allowed to create roles and
    // schemas because this installation has no operator and the platform provisions tenants.
    let admin = Database::connect(postgres_url()).await.expect("admin");
    let platform_role = unique("memoryc_platform_");
    admin
        .execute_unprepared(&format!(
            "CREATE ROLE {r} LOGIN NOINHERIT CREATEROLE; \
             GRANT CREATE ON DATABASE {db} TO {r}",
            r = roles::ident(&platform_role),
            db = roles::ident(&current_database(&admin).await),
        ))
        .await
        .expect("platform role");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(Backends::PostgresMilvus, data_dir.path().to_path_buf());
    let (_, host) = postgres_url()
        .split_once('@')
        .map(|(user, rest)| (user.to_string(), rest.to_string()))
        .expect("url with user");
    config.storage.database_url = format!("postgres://{platform_role}@{host}");
    let server = TestPlatform::start_with(config, data_dir).await;
    let a = server.create_tenant("Shared").await;
    let b = server.create_tenant("Shared").await;
    let secret = "B's launch code is 0451";
    let (status, stored) = server
        .call(
            Method::POST,
            "/api/v1/memories",
            Some(&b.api_key),
            Some(json!({"content": secret})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    let b_memory = stored["memory_id"].as_str().expect("id").to_string();

    // The worst case: a superuser plants a trigger on A's memories that tries to copy B's
    // memories into a table of A's, to delete them, to become B's roles or the platform's
    // login and read B or the control tables from there, and records each refusal.
    let a_name = TenantName::parse(&a.name).expect("name");
    let b_name = TenantName::parse(&b.name).expect("name");
    let a_schema = a_name.schema_name();
    let b_schema = b_name.schema_name();
    let control = roles::ident(&server.config.storage.control_schema);
    // Where the trigger drops what it finds: writable by every role it may turn into.
    let loot_schema = unique("loot_");
    admin
        .execute_unprepared(&format!(
            "CREATE SCHEMA {loot}; GRANT USAGE ON SCHEMA {loot} TO PUBLIC; \
             CREATE TABLE {loot}.loot (content text); \
             GRANT INSERT, SELECT ON {loot}.loot TO PUBLIC; \
             CREATE FUNCTION {a}.steal() RETURNS trigger LANGUAGE plpgsql AS $$ \
             DECLARE target text; \
             BEGIN \
               BEGIN \
                 INSERT INTO {loot}.loot SELECT content FROM {b}.memories; \
               EXCEPTION WHEN insufficient_privilege THEN \
                 INSERT INTO {loot}.loot VALUES ('read refused'); \
               END; \
               BEGIN \
                 DELETE FROM {b}.memories; \
               EXCEPTION WHEN insufficient_privilege THEN \
                 INSERT INTO {loot}.loot VALUES ('delete refused'); \
               END; \
               FOREACH target IN ARRAY ARRAY[{b_login}, {b_platform}, {platform}] LOOP \
                 BEGIN \
                   EXECUTE format('SET LOCAL ROLE %I', target); \
                 EXCEPTION WHEN insufficient_privilege THEN \
                   INSERT INTO {loot}.loot VALUES ('becoming ' || target || ' refused'); \
                   CONTINUE; \
                 END; \
                 BEGIN \
                   INSERT INTO {loot}.loot SELECT content FROM {b}.memories; \
                 EXCEPTION WHEN insufficient_privilege THEN NULL; \
                 END; \
                 BEGIN \
                   INSERT INTO {loot}.loot SELECT 'password of ' || role_name \
                     FROM {control}.tenant_logins; \
                 EXCEPTION WHEN insufficient_privilege THEN NULL; \
                 END; \
                 RESET ROLE; \
               END LOOP; \
               RETURN NEW; \
             END $$; \
             CREATE TRIGGER steal BEFORE INSERT ON {a}.memories \
               FOR EACH ROW EXECUTE FUNCTION {a}.steal()",
            a = roles::ident(&a_schema),
            b = roles::ident(&b_schema),
            loot = roles::ident(&loot_schema),
            b_login = roles::literal(&b_name.role_name()),
            b_platform = roles::literal(&b_name.platform_login_name()),
            platform = roles::literal(&platform_role),
        ))
        .await
        .expect("planted trigger");

    let (status, body) = server
        .call(
            Method::POST,
            "/api/v1/memories",
            Some(&a.api_key),
            Some(json!({"content": "A's own note about deploys."})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let loot = loot_of(&admin, &loot_schema).await;
    let mut refusals = vec![
        "read refused".to_string(),
        "delete refused".to_string(),
        format!("becoming {} refused", b_name.role_name()),
        format!("becoming {} refused", b_name.platform_login_name()),
        format!("becoming {platform_role} refused"),
    ];
    refusals.sort();
    assert_eq!(
        loot, refusals,
        "the trigger ran with A's rights only, and became no one else"
    );

    // The same trigger in a session of a login that may become every tenant (what a shared
    // pool switching roles with SET ROLE would be) reaches B and the control tables: the
    // refusals above are not the trigger failing for some other reason.
    admin
        .execute_unprepared(&format!(
            "TRUNCATE {loot}.loot; GRANT {al}, {bl} TO {p}",
            loot = roles::ident(&loot_schema),
            al = roles::ident(&a_name.role_name()),
            bl = roles::ident(&b_name.role_name()),
            p = roles::ident(&platform_role),
        ))
        .await
        .expect("memberships");
    let as_platform = Database::connect(server.config.storage.database_url.clone())
        .await
        .expect("platform login");
    as_platform
        .execute_unprepared(&format!(
            "BEGIN; SET LOCAL ROLE {al}; \
             INSERT INTO {a}.memories SELECT * FROM {a}.memories LIMIT 1 \
               ON CONFLICT DO NOTHING; \
             COMMIT",
            al = roles::ident(&a_name.role_name()),
            a = roles::ident(&a_schema),
        ))
        .await
        .expect("insert as A through SET ROLE");
    admin
        .execute_unprepared(&format!(
            "REVOKE {al}, {bl} FROM {p}",
            al = roles::ident(&a_name.role_name()),
            bl = roles::ident(&b_name.role_name()),
            p = roles::ident(&platform_role),
        ))
        .await
        .expect("revoke");
    as_platform.close().await.expect("close");
    let pivoted = loot_of(&admin, &loot_schema).await;
    assert!(pivoted.contains(&secret.to_string()), "{pivoted:?}");
    assert!(
        pivoted.iter().any(|row| row.starts_with("password of ")),
        "{pivoted:?}"
    );
    let (status, kept) = server
        .call(
            Method::GET,
            &format!("/api/v1/memories/{b_memory}"),
            Some(&b.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kept["content"], secret);

    // The platform's own login reaches nothing in a tenant schema without becoming the tenant.
    let as_platform = Database::connect(server.config.storage.database_url.clone())
        .await
        .expect("platform login");
    let direct = as_platform
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT content FROM {}.memories", roles::ident(&b_schema)),
        ))
        .await;
    assert!(
        direct
            .as_ref()
            .is_err_and(|e| e.to_string().contains("permission denied")),
        "{direct:?}"
    );
    as_platform.close().await.expect("close");

    for tenant in [&a, &b] {
        let tenant = TenantName::parse(&tenant.name).expect("name");
        admin
            .execute_unprepared(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                roles::ident(&tenant.schema_name())
            ))
            .await
            .expect("drop schema");
        for role in [
            tenant.role_name(),
            tenant.owner_role_name(),
            tenant.platform_login_name(),
        ] {
            roles::drop_role(&admin, &role).await.expect("drop role");
        }
    }
    admin
        .execute_unprepared(&format!(
            "DROP SCHEMA {} CASCADE",
            roles::ident(&loot_schema)
        ))
        .await
        .expect("drop loot");
    server.shutdown().await;
    roles::drop_role(&admin, &platform_role)
        .await
        .expect("drop platform role");
}

/// What the planted trigger left in its `loot` table, sorted.
async fn loot_of(admin: &sea_orm::DatabaseConnection, schema: &str) -> Vec<String> {
    admin
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT content FROM {}.loot ORDER BY content",
                roles::ident(schema)
            ),
        ))
        .await
        .expect("loot")
        .into_iter()
        .map(|row| row.try_get_by_index::<String>(0).expect("text"))
        .collect()
}

async fn current_database(db: &sea_orm::DatabaseConnection) -> String {
    db.query_one_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT current_database()".to_string(),
    ))
    .await
    .expect("query")
    .expect("row")
    .try_get_by_index::<String>(0)
    .expect("name")
}

/// A tenant this platform provisioned before tenants had roles of their own (its schema owned
/// by the platform's login, no tenant role) is moved to the roles model when the platform
/// starts, and serves as before.
#[tokio::test]
async fn a_postgres_tenant_provisioned_before_tenant_roles_is_repaired_at_start() {
    use memoryc_migrations::TenantMigrator;
    use memoryc_migrations::sea_orm_migration::MigratorTrait;
    use memoryc_platform::app::Platform;
    use memoryc_platform::auth::scope::TenantScope;
    use memoryc_platform::services::memory_service::CreateMemory;
    use sea_orm::TransactionTrait;

    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = test_config(Backends::PostgresMilvus, data_dir.path().to_path_buf());
    // Starting once creates the control schema.
    let first = Platform::build(config.clone()).await.expect("platform");
    first.databases.close().await.expect("close");
    let name = unique("old-");
    let tenant = TenantName::parse(&name).expect("name");
    let schema = tenant.schema_name();
    let admin = Database::connect(config.storage.database_url.clone())
        .await
        .expect("admin");
    // The old way: the schema belongs to the platform's login, which ran the migrations.
    admin
        .execute_unprepared(&format!("CREATE SCHEMA {}", roles::ident(&schema)))
        .await
        .expect("schema");
    let transaction = admin.begin().await.expect("begin");
    transaction
        .execute_unprepared(&format!(
            "SET LOCAL search_path TO {}",
            roles::ident(&schema)
        ))
        .await
        .expect("path");
    TenantMigrator::up(&transaction, None)
        .await
        .expect("migrate");
    let user_id = uuid::Uuid::now_v7();
    transaction
        .execute_unprepared(&format!(
            "INSERT INTO users (user_id, username, created_at, preferences) \
             VALUES ('{user_id}', 'admin', now(), '{{}}')"
        ))
        .await
        .expect("user");
    transaction.commit().await.expect("commit");
    admin
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "INSERT INTO {}.tenants (tenant_id, name, display_name, isolation, schema_name, \
                 collection_name, created_at) VALUES ($1, $2, $2, 'Shared', $3, \
                 'memoryc_shared', now())",
                roles::ident(&config.storage.control_schema)
            ),
            [
                uuid::Uuid::now_v7().into(),
                name.clone().into(),
                schema.clone().into(),
            ],
        ))
        .await
        .expect("registration");
    assert_eq!(
        roles::role_standing(&admin, &tenant.role_name())
            .await
            .expect("standing"),
        roles::RoleStanding::Missing
    );

    let platform = Platform::build(config.clone())
        .await
        .expect("platform again");
    assert_eq!(
        roles::schema_owner(&admin, &schema).await.expect("owner"),
        Some(tenant.owner_role_name()),
        "the owner role took the schema over"
    );
    let registered = platform
        .state
        .tenants
        .find(&tenant)
        .await
        .expect("lookup")
        .expect("registered");
    let scope = TenantScope {
        tenant: registered,
        user_id,
        owner_only: None,
        session_id: None,
    };
    platform
        .state
        .memories
        .create(
            &scope,
            CreateMemory {
                content: "Written after the repair, as the tenant's own role.".to_string(),
                category: None,
                metadata: None,
            },
        )
        .await
        .expect("served as before");
    platform.databases.close().await.expect("close");
    admin
        .execute_unprepared(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE; DROP SCHEMA IF EXISTS {} CASCADE",
            roles::ident(&schema),
            roles::ident(&config.storage.control_schema)
        ))
        .await
        .expect("cleanup");
    for role in [
        tenant.role_name(),
        tenant.owner_role_name(),
        tenant.platform_login_name(),
    ] {
        roles::drop_role(&admin, &role).await.expect("drop role");
    }
}
