//! Relational storage: the source of truth for memories.
//!
//! PostgreSQL keeps one schema per tenant behind a single shared pool: every tenant statement
//! runs in a transaction that starts with `SET LOCAL ROLE` to the tenant's own login role and
//! `SET LOCAL search_path` to its schema (both end with the transaction), so whatever runs
//! inside it, a trigger included, has that tenant's rights and no more, and thousands of
//! tenants share a few connections. The platform's own login holds no rights in tenant schemas
//! (see `memoryc_migrations::roles`). The embedded default keeps one SQLite file
//! per tenant. The control tables live in their own schema (PostgreSQL) or file (SQLite).

pub mod analytics_repository;
pub mod audit_repository;
pub mod codec;
pub mod control_repository;
pub mod entities;
pub mod memory_repository;
pub mod outbox_repository;
pub mod policy_adapter;
mod registered_schemas;
pub mod settings_repository;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use memoryc_crds::layout::{TenantName, validate_schema_name};
use memoryc_migrations::roles;
use memoryc_migrations::sea_orm_migration::MigratorTrait;
use memoryc_migrations::{ControlMigrator, TenantMigrator};
use sea_orm::sea_query::{Alias, Asterisk, CommonTableExpression, Query, WithClause, WithQuery};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ConnectOptions, ConnectionTrait, Database,
    DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult,
    IntoActiveModel, QueryTrait, Select, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};
use tokio::sync::RwLock;

use super::error::StoreError;
use registered_schemas::RegisteredSchemas;

/// Which relational backend to use and how to reach it.
#[derive(Debug, Clone)]
pub enum RelationalConfig {
    /// One SQLite file per tenant under `dir`, plus `control.sqlite`.
    Sqlite { dir: PathBuf },
    /// One schema per tenant in the database at `url`; control tables in `control_schema`.
    Postgres {
        url: String,
        control_schema: String,
        max_connections: u32,
        acquire_timeout: Duration,
        /// How long a tenant's registered schema is used before it is read again.
        schema_trust: Duration,
    },
}

/// Connections to the control tables and to every tenant's tables.
#[derive(Clone)]
pub struct Databases {
    control: DatabaseConnection,
    tenants: Arc<TenantConnections>,
}

enum TenantConnections {
    Postgres {
        pool: DatabaseConnection,
        control_schema: String,
        /// Each tenant's schema as its registration says (the operator may name it, e.g.
        /// `spec.storage.schemaName`); read from the control table, then kept for a while.
        schemas: RegisteredSchemas,
    },
    Sqlite {
        dir: PathBuf,
        open: RwLock<HashMap<TenantName, DatabaseConnection>>,
    },
}

impl Databases {
    /// Connects and brings the control schema up to date.
    pub async fn connect(config: &RelationalConfig) -> Result<Self, StoreError> {
        let databases = match config {
            RelationalConfig::Sqlite { dir } => connect_sqlite(dir).await?,
            RelationalConfig::Postgres {
                url,
                control_schema,
                max_connections,
                acquire_timeout,
                schema_trust,
            } => {
                connect_postgres(
                    url,
                    control_schema,
                    *max_connections,
                    *acquire_timeout,
                    *schema_trust,
                )
                .await?
            }
        };
        databases.migrate_control().await?;
        Ok(databases)
    }

    /// Brings the control tables up to date where this login may: on PostgreSQL, a platform
    /// whose control schema belongs to the operator leaves the migrations to the operator.
    async fn migrate_control(&self) -> Result<(), StoreError> {
        if let TenantConnections::Postgres { control_schema, .. } = &*self.tenants
            && !roles::can_create_in(&self.control, control_schema).await?
        {
            return Ok(());
        }
        ControlMigrator::up(&self.control, None).await?;
        Ok(())
    }

    /// Connection to the control tables.
    pub fn control(&self) -> &DatabaseConnection {
        &self.control
    }

    /// The SQL dialect of the tenants' tables.
    pub fn backend(&self) -> DbBackend {
        match *self.tenants {
            TenantConnections::Postgres { .. } => DbBackend::Postgres,
            TenantConnections::Sqlite { .. } => DbBackend::Sqlite,
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match *self.tenants {
            TenantConnections::Postgres { .. } => "postgres",
            TenantConnections::Sqlite { .. } => "sqlite",
        }
    }

    /// Starts a transaction in which unqualified table names are the tenant's tables.
    pub async fn tenant_transaction(
        &self,
        tenant: &TenantName,
    ) -> Result<DatabaseTransaction, StoreError> {
        match &*self.tenants {
            TenantConnections::Postgres { pool, schemas, .. } => {
                let schema = self.schema_of(tenant, schemas).await?;
                begin_as_tenant(pool, tenant, &schema).await
            }
            TenantConnections::Sqlite { dir, open } => {
                let connection = sqlite_tenant(dir, open, tenant, false).await?;
                Ok(connection.begin().await?)
            }
        }
    }

    /// Rows of one of the tenant's tables that `select` picks, read in a single statement.
    /// PostgreSQL runs it in a transaction as the tenant's role, with the table named with the
    /// tenant's schema; SQLite reads the tenant's own file.
    pub async fn tenant_select<E>(
        &self,
        tenant: &TenantName,
        select: Select<E>,
    ) -> Result<Vec<E::Model>, StoreError>
    where
        E: EntityTrait,
        E::Model: FromQueryResult,
    {
        match &*self.tenants {
            TenantConnections::Postgres { pool, schemas, .. } => {
                let schema = self.schema_of(tenant, schemas).await?;
                let mut statement = select.into_query();
                statement
                    .from_clear()
                    .from((Alias::new(schema.clone()), E::default()));
                let statement = pool.get_database_backend().build(&statement);
                let transaction = begin_as_tenant(pool, tenant, &schema).await?;
                let rows = E::Model::find_by_statement(statement)
                    .all(&transaction)
                    .await?;
                transaction.commit().await?;
                Ok(rows)
            }
            TenantConnections::Sqlite { dir, open } => {
                let connection = sqlite_tenant(dir, open, tenant, false).await?;
                Ok(select.all(&connection).await?)
            }
        }
    }

    /// Inserts `row` and `companion` (a row that goes with it, e.g. its history entry) into
    /// the tenant's tables, both or neither, and returns `row` as stored. PostgreSQL does it in
    /// one statement, two data-modifying CTEs on the tenant's schema-qualified tables, as the
    /// tenant's role. SQLite uses a write transaction on the tenant's file.
    pub async fn tenant_insert_pair<A, B>(
        &self,
        tenant: &TenantName,
        row: A,
        companion: B,
    ) -> Result<<A::Entity as EntityTrait>::Model, StoreError>
    where
        A: ActiveModelTrait + ActiveModelBehavior + Send,
        <A::Entity as EntityTrait>::Model: IntoActiveModel<A> + FromQueryResult,
        B: ActiveModelTrait + ActiveModelBehavior + Send,
        <B::Entity as EntityTrait>::Model: IntoActiveModel<B>,
    {
        match &*self.tenants {
            TenantConnections::Postgres { pool, schemas, .. } => {
                let schema = self.schema_of(tenant, schemas).await?;
                let statement = insert_pair_statement(&schema, row, companion);
                let statement = pool.get_database_backend().build(&statement);
                let transaction = begin_as_tenant(pool, tenant, &schema).await?;
                let stored = <A::Entity as EntityTrait>::Model::find_by_statement(statement)
                    .one(&transaction)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("an insert returned no row".to_string()))?;
                transaction.commit().await?;
                Ok(stored)
            }
            TenantConnections::Sqlite { .. } => {
                let transaction = self.tenant_write_transaction(tenant).await?;
                let stored = row.insert(&transaction).await?;
                companion.insert(&transaction).await?;
                transaction.commit().await?;
                Ok(stored)
            }
        }
    }

    /// Like [`Databases::tenant_transaction`], for a transaction that will write. SQLite takes
    /// the write lock at `BEGIN` (waiting its busy timeout for it): a transaction that read
    /// first and upgraded later could fail with "database is locked" when another connection
    /// (the event consumer, say) committed in between, and no timeout would help it.
    pub async fn tenant_write_transaction(
        &self,
        tenant: &TenantName,
    ) -> Result<DatabaseTransaction, StoreError> {
        match &*self.tenants {
            TenantConnections::Postgres { .. } => self.tenant_transaction(tenant).await,
            TenantConnections::Sqlite { dir, open } => {
                let connection = sqlite_tenant(dir, open, tenant, false).await?;
                let options = TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..TransactionOptions::default()
                };
                Ok(connection.begin_with_options(options).await?)
            }
        }
    }

    /// Creates the tenant's schema (or file) and runs the tenant migrations. Idempotent.
    /// PostgreSQL: the tenant gets an owner role and a `NOLOGIN` tenant role as the operator
    /// would make them (`memoryc_migrations::roles`), which needs a login that may create roles;
    /// where the operator provisions tenants, the platform's login has no such right.
    pub async fn provision_tenant(&self, tenant: &TenantName) -> Result<(), StoreError> {
        match &*self.tenants {
            TenantConnections::Postgres { pool, schemas, .. } => {
                let schema = self.schema_of(tenant, schemas).await?;
                let owner = tenant.owner_role_name();
                let login = tenant.role_name();
                for role in [&owner, &login] {
                    if roles::role_standing(pool, role).await? == roles::RoleStanding::Privileged {
                        return Err(StoreError::Conflict(format!(
                            "role {role} exists and is not a tenant role; choose another tenant name"
                        )));
                    }
                    roles::ensure_nologin_role(pool, role).await?;
                    roles::grant_to_current_user(pool, role).await?;
                }
                match roles::schema_owner(pool, &schema).await? {
                    None => {
                        pool.execute_unprepared(&format!(
                            "CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}",
                            roles::ident(&schema),
                            roles::ident(&owner)
                        ))
                        .await?;
                    }
                    Some(current) if current == owner => {}
                    // Made when this platform's login owned the tenant schemas it provisioned:
                    // the owner role takes it over.
                    Some(current) if current == current_user(pool).await? => {
                        roles::transfer_schema(pool, &schema, &owner).await?;
                    }
                    Some(current) => {
                        return Err(StoreError::Conflict(format!(
                            "schema {schema} exists and belongs to role {current}"
                        )));
                    }
                }
                let transaction = pool.begin().await?;
                transaction
                    .execute_unprepared(&format!(
                        "SET LOCAL ROLE {}; {}",
                        roles::ident(&owner),
                        set_search_path(&schema)
                    ))
                    .await?;
                TenantMigrator::up(&transaction, None).await?;
                // As the owner: this login may be a NOINHERIT member, with no owner's rights
                // of its own.
                roles::secure_schema(&transaction, &schema, &owner, &[&login]).await?;
                transaction.commit().await?;
            }
            TenantConnections::Sqlite { dir, open } => {
                let connection = sqlite_tenant(dir, open, tenant, true).await?;
                TenantMigrator::up(&connection, None).await?;
            }
        }
        Ok(())
    }

    /// Brings every registered tenant this platform provisioned itself on PostgreSQL to the
    /// current roles model (a tenant made before it has no login role of its own, and its schema
    /// belongs to this platform's login). Only a login that may create roles does this; where the
    /// operator provisions tenants it repairs them, and this does nothing.
    pub async fn repair_tenants(&self, tenants: &[TenantName]) -> Result<usize, StoreError> {
        let TenantConnections::Postgres { pool, .. } = &*self.tenants else {
            return Ok(0);
        };
        let may_create_roles = pool
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT rolsuper OR rolcreaterole FROM pg_catalog.pg_roles \
                 WHERE rolname = current_user"
                    .to_string(),
            ))
            .await?
            .map(|row| row.try_get_by_index::<bool>(0))
            .transpose()?
            .unwrap_or(false);
        if !may_create_roles {
            return Ok(0);
        }
        let existing: std::collections::HashSet<String> = pool
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolname LIKE 'memoryc\\_%'"
                    .to_string(),
            ))
            .await?
            .iter()
            .map(|row| row.try_get_by_index::<String>(0))
            .collect::<Result<_, _>>()?;
        let mut repaired = 0;
        for tenant in tenants {
            if existing.contains(&tenant.role_name()) {
                continue;
            }
            self.provision_tenant(tenant).await?;
            repaired += 1;
        }
        Ok(repaired)
    }

    /// Erases the tenant's schema (or file) with all its data, and on PostgreSQL its roles.
    pub async fn drop_tenant(&self, tenant: &TenantName) -> Result<(), StoreError> {
        match &*self.tenants {
            TenantConnections::Postgres { pool, schemas, .. } => {
                let schema = self.schema_of(tenant, schemas).await?;
                let owner = tenant.owner_role_name();
                let login = tenant.role_name();
                match roles::schema_owner(pool, &schema).await? {
                    Some(current) if current == owner || current == login => {
                        let transaction = pool.begin().await?;
                        transaction
                            .execute_unprepared(&format!(
                                "SET LOCAL ROLE {}; DROP SCHEMA IF EXISTS {} CASCADE",
                                roles::ident(&current),
                                roles::ident(&schema)
                            ))
                            .await?;
                        transaction.commit().await?;
                    }
                    _ => {}
                }
                for role in [&login, &owner] {
                    if roles::role_standing(pool, role).await? == roles::RoleStanding::Adoptable {
                        roles::drop_role(pool, role).await?;
                    }
                }
                schemas.forget(tenant);
            }
            TenantConnections::Sqlite { dir, open } => {
                if let Some(connection) = open.write().await.remove(tenant) {
                    connection.close().await?;
                }
                let path = dir.join(tenant.sqlite_file_name());
                for suffix in ["", "-wal", "-shm"] {
                    let file = PathBuf::from(format!("{}{suffix}", path.display()));
                    match tokio::fs::remove_file(&file).await {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(StoreError::Unavailable(e.to_string())),
                    }
                }
            }
        }
        Ok(())
    }

    /// Round trip to the control database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.control.ping().await?)
    }

    /// Closes every pool; used at shutdown so SQLite checkpoints its WAL.
    pub async fn close(self) -> Result<(), StoreError> {
        if let TenantConnections::Sqlite { open, .. } = &*self.tenants {
            for (_, connection) in open.write().await.drain() {
                connection.close().await?;
            }
        }
        self.control.close().await?;
        Ok(())
    }
}

/// `WITH inserted AS (INSERT INTO schema.a … RETURNING *), companion AS (INSERT INTO
/// schema.b …) SELECT * FROM inserted`. PostgreSQL runs every data-modifying CTE of a
/// statement, referenced or not, and the statement is atomic.
fn insert_pair_statement<A, B>(schema: &str, row: A, companion: B) -> WithQuery
where
    A: ActiveModelTrait,
    B: ActiveModelTrait,
{
    let mut first = <A::Entity as EntityTrait>::insert(row).into_query();
    first
        .into_table((Alias::new(schema), A::Entity::default()))
        .returning_all();
    let mut second = <B::Entity as EntityTrait>::insert(companion).into_query();
    second.into_table((Alias::new(schema), B::Entity::default()));
    let clause = WithClause::new()
        .cte(
            CommonTableExpression::new()
                .query(first)
                .table_name(Alias::new("inserted"))
                .to_owned(),
        )
        .cte(
            CommonTableExpression::new()
                .query(second)
                .table_name(Alias::new("companion"))
                .to_owned(),
        )
        .to_owned();
    Query::select()
        .column(Asterisk)
        .from(Alias::new("inserted"))
        .to_owned()
        .with(clause)
}

/// Schema names are validated (`[a-z_][a-z0-9_]*`), so quoting them is enough to be safe.
/// `pg_temp` goes last so that no temporary object can shadow a tenant's table.
fn set_search_path(schema: &str) -> String {
    format!("SET LOCAL search_path TO \"{schema}\", pg_temp")
}

async fn current_user(pool: &DatabaseConnection) -> Result<String, StoreError> {
    pool.query_one_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT current_user::text".to_string(),
    ))
    .await?
    .map(|row| row.try_get_by_index::<String>(0))
    .transpose()?
    .ok_or_else(|| StoreError::Corrupt("no current user".to_string()))
}

/// A transaction as the tenant's login role (derived from its validated name) with its schema
/// on the search path; both settings end with it. The two are set in one round trip.
async fn begin_as_tenant(
    pool: &DatabaseConnection,
    tenant: &TenantName,
    schema: &str,
) -> Result<DatabaseTransaction, StoreError> {
    let transaction = pool.begin().await?;
    transaction
        .execute_unprepared(&format!(
            "SET LOCAL ROLE {}; {}",
            roles::ident(&tenant.role_name()),
            set_search_path(schema)
        ))
        .await?;
    Ok(transaction)
}

impl Databases {
    /// The tenant's schema: the one its registration names, else the one derived from its
    /// name (a tenant being created is not registered yet). Registered ones are remembered.
    async fn schema_of(
        &self,
        tenant: &TenantName,
        schemas: &RegisteredSchemas,
    ) -> Result<String, StoreError> {
        if let Some(schema) = schemas.get(tenant) {
            return Ok(schema);
        }
        let registered = self
            .control
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT schema_name FROM tenants WHERE name = $1",
                [tenant.as_str().into()],
            ))
            .await?
            .map(|row| row.try_get::<String>("", "schema_name"))
            .transpose()?;
        let Some(schema) = registered else {
            return Ok(tenant.schema_name());
        };
        validate_schema_name(&schema)
            .map_err(|e| StoreError::Corrupt(format!("tenant {tenant}: registered schema: {e}")))?;
        schemas.remember(tenant, &schema);
        Ok(schema)
    }
}

async fn connect_postgres(
    url: &str,
    control_schema: &str,
    max_connections: u32,
    acquire_timeout: Duration,
    schema_trust: Duration,
) -> Result<Databases, StoreError> {
    if !control_schema
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(StoreError::Unavailable(format!(
            "control schema {control_schema:?} must be lowercase letters, digits and '_'"
        )));
    }
    let pool = Database::connect(postgres_options(url, max_connections, acquire_timeout)).await?;
    // A dedicated tenant's platform connects as the tenant's role, which owns its control schema
    // (created by the operator) but may not create schemas: PostgreSQL checks that right even
    // for CREATE SCHEMA IF NOT EXISTS, so only ask when the schema is missing.
    let exists = pool
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 FROM pg_namespace WHERE nspname = $1",
            [control_schema.into()],
        ))
        .await?
        .is_some();
    if !exists {
        pool.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{control_schema}\""))
            .await?;
    }
    let mut control_options = postgres_options(url, max_connections.div_ceil(4), acquire_timeout);
    control_options.set_schema_search_path(format!("\"{control_schema}\""));
    let control = Database::connect(control_options).await?;
    Ok(Databases {
        control,
        tenants: Arc::new(TenantConnections::Postgres {
            pool,
            control_schema: control_schema.to_string(),
            schemas: RegisteredSchemas::new(schema_trust),
        }),
    })
}

fn postgres_options(url: &str, max_connections: u32, acquire_timeout: Duration) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .max_connections(max_connections.max(1))
        .min_connections(1)
        .connect_timeout(acquire_timeout)
        .acquire_timeout(acquire_timeout)
        .sqlx_logging(false);
    options
}

async fn connect_sqlite(dir: &std::path::Path) -> Result<Databases, StoreError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
    let control = Database::connect(sqlite_options(&dir.join("control.sqlite"), true)).await?;
    Ok(Databases {
        control,
        tenants: Arc::new(TenantConnections::Sqlite {
            dir: dir.to_path_buf(),
            open: RwLock::new(HashMap::new()),
        }),
    })
}

fn sqlite_options(path: &std::path::Path, create: bool) -> ConnectOptions {
    let mode = if create { "rwc" } else { "rw" };
    let mut options = ConnectOptions::new(format!("sqlite://{}?mode={mode}", path.display()));
    options
        .max_connections(4)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            // WAL lets searches read while a write commits; NORMAL is durable across app crashes.
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
        });
    options
}

/// The open connection to a tenant's SQLite file; opens it on first use.
async fn sqlite_tenant(
    dir: &std::path::Path,
    open: &RwLock<HashMap<TenantName, DatabaseConnection>>,
    tenant: &TenantName,
    create: bool,
) -> Result<DatabaseConnection, StoreError> {
    if let Some(connection) = open.read().await.get(tenant) {
        return Ok(connection.clone());
    }
    let mut open = open.write().await;
    if let Some(connection) = open.get(tenant) {
        return Ok(connection.clone());
    }
    let path = dir.join(tenant.sqlite_file_name());
    if !create && !path.exists() {
        return Err(StoreError::UnknownTenant(tenant.to_string()));
    }
    let connection = Database::connect(sqlite_options(&path, create)).await?;
    open.insert(tenant.clone(), connection.clone());
    Ok(connection)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin_url() -> String {
        std::env::var("MEMORYC_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
    }

    async fn registered_schema(databases: &Databases, tenant: &TenantName) -> String {
        match &*databases.tenants {
            TenantConnections::Postgres { schemas, .. } => {
                databases.schema_of(tenant, schemas).await.expect("schema")
            }
            TenantConnections::Sqlite { .. } => unreachable!("a PostgreSQL test"),
        }
    }

    /// The operator deletes a tenant and creates it again under its name with another
    /// `spec.storage.schemaName`: a replica reads the new registration once its trust in the
    /// old one runs out.
    #[tokio::test]
    async fn a_tenants_schema_is_read_again_once_its_trust_runs_out() {
        let unique = &uuid::Uuid::new_v4().simple().to_string()[..10];
        let control_schema = format!("memoryc_control_test_{unique}");
        let connect = |trust: Duration| {
            let control_schema = control_schema.clone();
            async move {
                Databases::connect(&RelationalConfig::Postgres {
                    url: admin_url(),
                    control_schema,
                    max_connections: 2,
                    acquire_timeout: Duration::from_secs(5),
                    schema_trust: trust,
                })
                .await
                .expect("databases")
            }
        };
        let brief = connect(Duration::from_millis(100)).await;
        let lasting = connect(Duration::from_secs(600)).await;
        let tenant = TenantName::parse(&format!("t-{unique}")).expect("name");
        let register = |schema: String| {
            Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO tenants (tenant_id, name, display_name, isolation, schema_name, \
                 collection_name, created_at) VALUES ($1, $2, $2, 'Shared', $3, 'shared', now())",
                [
                    uuid::Uuid::now_v7().into(),
                    tenant.as_str().into(),
                    schema.into(),
                ],
            )
        };
        let first = format!("first_{unique}");
        brief
            .control()
            .execute_raw(register(first.clone()))
            .await
            .expect("registered");
        assert_eq!(registered_schema(&brief, &tenant).await, first);
        assert_eq!(registered_schema(&lasting, &tenant).await, first);

        let second = format!("second_{unique}");
        brief
            .control()
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "DELETE FROM tenants WHERE name = $1",
                [tenant.as_str().into()],
            ))
            .await
            .expect("deleted");
        brief
            .control()
            .execute_raw(register(second.clone()))
            .await
            .expect("registered again");
        assert_eq!(
            registered_schema(&lasting, &tenant).await,
            first,
            "kept: the remembered schema is what answers"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(registered_schema(&brief, &tenant).await, second);

        brief
            .control()
            .execute_unprepared(&format!("DROP SCHEMA \"{control_schema}\" CASCADE"))
            .await
            .expect("cleanup");
        brief.close().await.expect("close");
        lasting.close().await.expect("close");
    }

    /// A dedicated tenant's platform connects as the tenant's role, which owns its control
    /// schema (the operator created it) but may not create schemas.
    #[tokio::test]
    async fn a_role_without_create_on_the_database_uses_its_own_control_schema() {
        let admin = Database::connect(admin_url()).await.expect("admin");
        let unique = &uuid::Uuid::new_v4().simple().to_string()[..10];
        let role = format!("memoryc_test_role_{unique}");
        let schema = format!("memoryc_control_test_{unique}");
        admin
            .execute_unprepared(&format!(
                "CREATE ROLE \"{role}\" LOGIN; CREATE SCHEMA \"{schema}\" AUTHORIZATION \"{role}\""
            ))
            .await
            .expect("role and schema");
        let (_, rest) = admin_url()
            .split_once('@')
            .map(|(user, rest)| (user.to_string(), rest.to_string()))
            .expect("url with user");
        let connected = Databases::connect(&RelationalConfig::Postgres {
            url: format!("postgres://{role}@{rest}"),
            control_schema: schema.clone(),
            max_connections: 2,
            acquire_timeout: Duration::from_secs(5),
            schema_trust: Duration::from_secs(5),
        })
        .await;
        let outcome = match connected {
            Ok(databases) => databases.close().await.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        admin
            .execute_unprepared(&format!(
                "DROP SCHEMA \"{schema}\" CASCADE; DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\""
            ))
            .await
            .expect("cleanup");
        assert_eq!(outcome, Ok(()), "connect as the control schema's owner");
    }
}
