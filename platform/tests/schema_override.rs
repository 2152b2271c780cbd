//! A tenant registered with a schema of its own choosing (the operator's
//! `spec.storage.schemaName`) is served from that schema, not the one derived from its name, and
//! with the search settings the operator wrote for it (`spec.vectors.index.ef`).

mod test_support;

use memoryc_control::roles;
use memoryc_crds::layout::{Isolation, TenantName};
use memoryc_migrations::TenantMigrator;
use memoryc_migrations::sea_orm_migration::MigratorTrait;
use memoryc_platform::app::Platform;
use memoryc_platform::auth::scope::TenantScope;
use memoryc_platform::services::memory_service::CreateMemory;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};
use test_support::{Backends, test_config, unique};

#[tokio::test]
async fn a_registered_postgres_schema_name_is_where_the_tenants_data_lives() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = test_config(Backends::PostgresMilvus, data_dir.path().to_path_buf());
    let platform = Platform::build(config.clone()).await.expect("platform");
    let name = unique("custom-");
    let tenant_name = TenantName::parse(&name).expect("name");
    let schema = format!("custom_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);

    // What the operator does: the tenant's roles, the schema with the tenant tables owned by
    // the owner role, the login's grants, and the registration.
    let admin = Database::connect(config.storage.database_url.clone())
        .await
        .expect("admin connection");
    let owner = tenant_name.owner_role_name();
    let login = tenant_name.role_name();
    for role in [&owner, &login] {
        roles::ensure_nologin_role(&admin, role)
            .await
            .expect("role");
    }
    admin
        .execute_unprepared(&format!(
            "CREATE SCHEMA \"{schema}\" AUTHORIZATION {}",
            roles::ident(&owner)
        ))
        .await
        .expect("schema");
    let transaction = admin.begin().await.expect("begin");
    transaction
        .execute_unprepared(&format!(
            "SET LOCAL ROLE {}; SET LOCAL search_path TO \"{schema}\"",
            roles::ident(&owner)
        ))
        .await
        .expect("search path");
    TenantMigrator::up(&transaction, None)
        .await
        .expect("migrate");
    roles::secure_schema(&transaction, &schema, &owner, &[&login])
        .await
        .expect("grants");
    let user_id = uuid::Uuid::now_v7();
    transaction
        .execute_unprepared(&format!(
            "INSERT INTO users (user_id, username, created_at, last_active, preferences) \
             VALUES ('{user_id}', 'admin', now(), now(), '{{}}')"
        ))
        .await
        .expect("user");
    transaction.commit().await.expect("commit");
    admin
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "INSERT INTO \"{}\".tenants (tenant_id, name, display_name, isolation, \
                 schema_name, collection_name, created_at) VALUES ($1, $2, $2, 'Shared', $3, \
                 'memoryc_shared', now())",
                config.storage.control_schema
            ),
            [
                uuid::Uuid::now_v7().into(),
                name.clone().into(),
                schema.clone().into(),
            ],
        ))
        .await
        .expect("registration");

    let tenant = platform
        .state
        .tenants
        .find(&tenant_name)
        .await
        .expect("lookup")
        .expect("registered");
    let scope = TenantScope {
        tenant,
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
                content: "Stored in the schema the registration names.".to_string(),
                category: None,
                metadata: None,
            },
        )
        .await
        .expect("memory stored");
    let count = admin
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT count(*) AS n FROM \"{schema}\".memories"),
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get::<i64>("", "n")
        .expect("n");
    assert_eq!(count, 1);
    let derived = admin
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT count(*) AS n FROM pg_namespace WHERE nspname = '{}'",
                tenant_name.schema_name()
            ),
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get::<i64>("", "n")
        .expect("n");
    assert_eq!(derived, 0, "nothing was written to the derived schema");
    let found = platform
        .state
        .memories
        .search(
            &scope,
            memoryc_platform::services::memory_service::SearchRequest {
                query: None,
                mode: Default::default(),
                filter: Default::default(),
                limit: 10,
            },
        )
        .await
        .expect("listed");
    assert_eq!(found.len(), 1);

    // The operator's `ef` reaches the tenant's searches, which Milvus runs with it.
    let tenant_id = scope.tenant.tenant_id;
    assert_eq!(
        platform
            .state
            .settings
            .search_ef(tenant_id)
            .await
            .expect("settings"),
        None
    );
    admin
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "INSERT INTO \"{}\".tenant_settings (tenant_id, search_ef, updated_at) \
                 VALUES ($1, 400, now())",
                config.storage.control_schema
            ),
            [tenant_id.into()],
        ))
        .await
        .expect("settings row");
    // Another replica, without a read cache so every search asks Milvus.
    let mut uncached = config.clone();
    uncached.cache.enabled = false;
    let fresh = Platform::build(uncached).await.expect("platform");
    assert_eq!(
        fresh
            .state
            .settings
            .search_ef(tenant_id)
            .await
            .expect("settings"),
        Some(400)
    );
    // A new Milvus session sees the other client's insert within a time tick or two.
    let mut hits = Vec::new();
    for _ in 0..50 {
        hits = fresh
            .state
            .memories
            .search(
                &scope,
                memoryc_platform::services::memory_service::SearchRequest {
                    query: Some("where is it stored".to_string()),
                    mode: Default::default(),
                    filter: Default::default(),
                    limit: 10,
                },
            )
            .await
            .expect("searched with the tenant's ef");
        if !hits.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(hits.len(), 1);
    fresh.databases.close().await.expect("close");

    platform
        .vector_store()
        .drop_space(&memoryc_platform::stores::vector::VectorSpace {
            tenant: tenant_name,
            isolation: Isolation::Shared,
        })
        .await
        .expect("drop vectors");
    for dropped in [schema.as_str(), config.storage.control_schema.as_str()] {
        admin
            .execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{dropped}\" CASCADE"))
            .await
            .expect("cleanup");
    }
    for role in [&login, &owner] {
        roles::drop_role(&admin, role).await.expect("drop role");
    }
    platform.databases.close().await.expect("close");
}
