//! Relational storage: the source of truth for memories.
//!
//! PostgreSQL keeps one schema per tenant. Every statement of a Shared tenant runs in a session
//! of the login made for that tenant alone (see [`tenant_sessions`]), which has the tenant's
//! table rights, is a member of no role and starts with the tenant's schema on its search path:
//! whatever runs inside it, a trigger included, has that tenant's rights and no more, and can
//! become no one else. A platform that logs in as its tenant (Dedicated) runs each transaction
//! with `SET LOCAL ROLE` to that tenant's login and `SET LOCAL search_path` to its schema. The
//! platform's own login holds no rights in tenant schemas (see `memoryc_control::roles`).
//! The embedded default keeps one SQLite file per tenant. The control tables live in their own
//! schema (PostgreSQL) or file (SQLite).

pub mod analytics_repository;
pub mod audit_repository;
pub mod codec;
pub mod control_repository;
pub mod entities;
pub mod integration_repository;
pub mod memory_repository;
pub mod outbox_repository;
pub mod policy_adapter;
mod registrations;
pub mod settings_repository;
pub mod sync_repository;
mod tenant_sessions;

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use memoryc_control::roles;
use memoryc_crds::layout::{TenantName, validate_schema_name};
use memoryc_migrations::sea_orm_migration::MigratorTrait;
use memoryc_migrations::{ControlMigrator, TenantMigrator};
use sea_orm::sea_query::{Alias, Asterisk, CommonTableExpression, Query, WithClause, WithQuery};
use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ConnectOptions, ConnectionTrait, Database,
    DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult,
    IntoActiveModel, QueryTrait, Select, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};
use tokio::sync::RwLock;

use super::error::StoreError;
use registrations::{Registration, Registrations};
use tenant_sessions::{PlatformLogin, SessionLimits, TenantSessions};

/// Which relational backend to use and how to reach it.
#[derive(Debug, Clone)]
pub enum RelationalConfig {
    /// One SQLite file per tenant under `dir`, plus `control.sqlite`.
    Sqlite { dir: PathBuf },
    /// One schema per tenant in the database at `url`; control tables in `control_schema`.
    Postgres {
        url: String,
        control_schema: String,
        /// Most connections of the platform's own pool, and of each tenant's.
        max_connections: u32,
        /// Most connections open at once over the tenants' own sessions.
        tenant_connections: u32,
        acquire_timeout: Duration,
        /// How long a tenant's registration (schema, login) is used before it is read again.
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
        /// The platform's own login: provisioning, and tenants without a login of their own.
        pool: DatabaseConnection,
        control_schema: String,
        /// Each tenant's schema and login as its registration says (the operator may name the
        /// schema, e.g. `spec.storage.schemaName`); read from the control tables, then kept for
        /// a while.
        registrations: Registrations,
        sessions: Box<TenantSessions>,
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
                tenant_connections,
                acquire_timeout,
                schema_trust,
            } => {
                let limits = SessionLimits {
                    per_tenant: *max_connections,
                    budget: *tenant_connections,
                    acquire_timeout: *acquire_timeout,
                };
                connect_postgres(url, control_schema, limits, *schema_trust).await?
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
            TenantConnections::Postgres { .. } => Ok(self.begin_as_tenant(tenant).await?.0),
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
            TenantConnections::Postgres { .. } => {
                let (session, schema) = self.session_of(tenant).await?;
                let mut statement = select.into_query();
                statement
                    .from_clear()
                    .from((Alias::new(schema.clone()), E::default()));
                let statement = DbBackend::Postgres.build(&statement);
                let read = match session {
                    // One statement, one round trip: no transaction needed.
                    TenantSession::OwnLogin(connection) => E::Model::find_by_statement(statement)
                        .all(&connection)
                        .await
                        .map_err(StoreError::from),
                    TenantSession::SetRole(pool) => {
                        match begin_with_set_role(&pool, tenant, &schema).await {
                            Ok(transaction) => all_then_commit(transaction, statement).await,
                            Err(error) => Err(error),
                        }
                    }
                };
                read.map_err(|error| self.after_failure(tenant, error))
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
            TenantConnections::Postgres { .. } => {
                let (session, schema) = self.session_of(tenant).await?;
                let statement = insert_pair_statement(&schema, row, companion);
                let statement = DbBackend::Postgres.build(&statement);
                let stored = match session {
                    // One statement is atomic by itself: no transaction needed.
                    TenantSession::OwnLogin(connection) => {
                        <A::Entity as EntityTrait>::Model::find_by_statement(statement)
                            .all(&connection)
                            .await
                            .map_err(StoreError::from)
                    }
                    TenantSession::SetRole(pool) => {
                        match begin_with_set_role(&pool, tenant, &schema).await {
                            Ok(transaction) => all_then_commit(transaction, statement).await,
                            Err(error) => Err(error),
                        }
                    }
                }
                .map_err(|error| self.after_failure(tenant, error))?;
                stored
                    .into_iter()
                    .next()
                    .ok_or_else(|| StoreError::Corrupt("an insert returned no row".to_string()))
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
    /// PostgreSQL: the tenant gets an owner role, a `NOLOGIN` tenant role and the login this
    /// platform uses for it, as the operator would make them (`memoryc_control::roles`),
    /// which needs a login that may create roles; where the operator provisions tenants, the
    /// platform's login has no such right.
    pub async fn provision_tenant(&self, tenant: &TenantName) -> Result<(), StoreError> {
        match &*self.tenants {
            TenantConnections::Postgres {
                pool,
                control_schema,
                registrations,
                sessions,
            } => {
                let schema = self.registration_of(tenant, registrations).await?.0.schema;
                let owner = tenant.owner_role_name();
                let login = tenant.role_name();
                let platform_login = tenant.platform_login_name();
                for role in [&owner, &login, &platform_login] {
                    if roles::role_standing(pool, role).await? == roles::RoleStanding::Privileged {
                        return Err(StoreError::Conflict(format!(
                            "role {role} exists and is not a tenant role; choose another tenant name"
                        )));
                    }
                }
                for role in [&owner, &login] {
                    roles::ensure_nologin_role(pool, role).await?;
                }
                // Migrations run as the owner role, which this login must be able to become.
                roles::grant_to_current_user(pool, &owner).await?;
                roles::ensure_platform_login(
                    pool,
                    control_schema,
                    tenant.as_str(),
                    &platform_login,
                )
                .await?;
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
                roles::secure_schema(&transaction, &schema, &owner, &[&login, &platform_login])
                    .await?;
                transaction.commit().await?;
                // A registration read before the login existed has none.
                registrations.forget(tenant);
                sessions.forget(tenant);
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
    /// belongs to this platform's login; or it has no login for this platform to use). Only a login that may create roles does this; where the
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
            if existing.contains(&tenant.role_name())
                && existing.contains(&tenant.platform_login_name())
            {
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
            TenantConnections::Postgres {
                pool,
                control_schema,
                registrations,
                sessions,
            } => {
                let schema = self.registration_of(tenant, registrations).await?.0.schema;
                let owner = tenant.owner_role_name();
                let login = tenant.role_name();
                sessions.forget(tenant);
                roles::remove_platform_login(
                    pool,
                    control_schema,
                    tenant.as_str(),
                    &tenant.platform_login_name(),
                )
                .await?;
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
                registrations.forget(tenant);
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
        match &*self.tenants {
            TenantConnections::Sqlite { open, .. } => {
                for (_, connection) in open.write().await.drain() {
                    connection.close().await?;
                }
            }
            TenantConnections::Postgres { sessions, .. } => sessions.close().await,
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

/// A transaction of the platform's own login as the tenant's login role (derived from its
/// validated name) with its schema on the search path; both settings end with it. The two are
/// set in one round trip.
async fn begin_with_set_role(
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
    /// How the tenant's statements reach PostgreSQL, and its schema. A tenant with a login of
    /// its own (every Shared tenant) uses a session of that login; otherwise the platform's own
    /// login becomes the tenant's role for each transaction (a Dedicated platform logs in as
    /// its tenant). Opens nothing: connections are made when a statement needs one.
    async fn session_of(&self, tenant: &TenantName) -> Result<(TenantSession, String), StoreError> {
        let TenantConnections::Postgres {
            pool,
            registrations,
            sessions,
            ..
        } = &*self.tenants
        else {
            return Err(StoreError::Corrupt(
                "a PostgreSQL session asked of SQLite storage".to_string(),
            ));
        };
        let (registration, _) = self.registration_of(tenant, registrations).await?;
        let session = match &registration.login {
            Some(login) => {
                TenantSession::OwnLogin(sessions.connection(tenant, &registration.schema, login))
            }
            None => TenantSession::SetRole(pool.clone()),
        };
        Ok((session, registration.schema))
    }

    /// A transaction with the tenant's rights and only those, its schema first on the search
    /// path, and that schema's name.
    async fn begin_as_tenant(
        &self,
        tenant: &TenantName,
    ) -> Result<(DatabaseTransaction, String), StoreError> {
        let (session, schema) = self.session_of(tenant).await?;
        let begun = match session {
            TenantSession::OwnLogin(connection) => {
                connection.begin().await.map_err(StoreError::from)
            }
            TenantSession::SetRole(pool) => begin_with_set_role(&pool, tenant, &schema).await,
        };
        match begun {
            Ok(transaction) => Ok((transaction, schema)),
            Err(error) => Err(self.after_failure(tenant, error)),
        }
    }

    /// Passes `error` on; when it says the remembered registration may be stale (the login
    /// failed or lost its rights, the schema is gone: the tenant was created again, its
    /// password replaced), the registration and the tenant's pool are dropped so the next
    /// statement reads them afresh.
    fn after_failure(&self, tenant: &TenantName, error: StoreError) -> StoreError {
        if let TenantConnections::Postgres {
            registrations,
            sessions,
            ..
        } = &*self.tenants
            && suggests_stale_registration(&error)
        {
            registrations.forget(tenant);
            sessions.forget(tenant);
        }
        error
    }

    /// The tenant's registration, and whether it was remembered rather than read now: the
    /// schema its registration names, else the one derived from its name (a tenant being
    /// created is not registered yet); and the login recorded for it, if any.
    async fn registration_of(
        &self,
        tenant: &TenantName,
        registrations: &Registrations,
    ) -> Result<(Registration, bool), StoreError> {
        if let Some(registration) = registrations.get(tenant) {
            return Ok((registration, true));
        }
        let row = self
            .control
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT t.schema_name, l.role_name, l.password \
                 FROM (SELECT $1::text AS name) AS wanted \
                 LEFT JOIN tenants t ON t.name = wanted.name \
                 LEFT JOIN tenant_logins l ON l.tenant_name = wanted.name",
                [tenant.as_str().into()],
            ))
            .await?
            .ok_or_else(|| StoreError::Corrupt("no row from a SELECT".to_string()))?;
        let schema: Option<String> = row.try_get_by_index(0)?;
        let role: Option<String> = row.try_get_by_index(1)?;
        let password: Option<String> = row.try_get_by_index(2)?;
        let login = role
            .zip(password)
            .map(|(role, password)| PlatformLogin { role, password });
        let Some(schema) = schema else {
            let derived = Registration {
                schema: tenant.schema_name(),
                login,
            };
            return Ok((derived, false));
        };
        validate_schema_name(&schema)
            .map_err(|e| StoreError::Corrupt(format!("tenant {tenant}: registered schema: {e}")))?;
        let registration = Registration { schema, login };
        registrations.remember(tenant, &registration);
        Ok((registration, false))
    }
}

/// Rows of `statement` read in `transaction`, which is then committed.
async fn all_then_commit<M: FromQueryResult>(
    transaction: DatabaseTransaction,
    statement: Statement,
) -> Result<Vec<M>, StoreError> {
    let rows = M::find_by_statement(statement).all(&transaction).await?;
    transaction.commit().await?;
    Ok(rows)
}

/// How a tenant's statements reach PostgreSQL (see [`Databases::session_of`]).
enum TenantSession {
    /// A pool of the tenant's own login, its schema first on the search path.
    OwnLogin(DatabaseConnection),
    /// The platform's own pool, to become the tenant's role in each transaction.
    SetRole(DatabaseConnection),
}

/// Unreachable, refused login, missing schema or relation, or rights taken away.
fn suggests_stale_registration(error: &StoreError) -> bool {
    match error {
        StoreError::Unavailable(_) => true,
        StoreError::Database(error) => error.sql_err().is_none_or(|_| {
            let text = error.to_string();
            ["28P01", "28000", "3F000", "42P01", "42501"]
                .iter()
                .any(|code| text.contains(code))
                || text.contains("does not exist")
                || text.contains("permission denied")
                || text.contains("authentication failed")
        }),
        _ => false,
    }
}

/// A new password for a tenant's platform login: 32 letters and digits.
async fn connect_postgres(
    url: &str,
    control_schema: &str,
    limits: SessionLimits,
    schema_trust: Duration,
) -> Result<Databases, StoreError> {
    let max_connections = limits.per_tenant;
    let acquire_timeout = limits.acquire_timeout;
    let server = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Unavailable(format!("invalid database URL: {e}")))?;
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
            registrations: Registrations::new(schema_trust),
            sessions: Box::new(TenantSessions::new(server, limits)),
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
mod servers {
    //! Against the PostgreSQL at `MEMORYC_TEST_DATABASE_URL`.

    use super::*;

    fn admin_url() -> String {
        std::env::var("MEMORYC_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
    }

    async fn registered_schema(databases: &Databases, tenant: &TenantName) -> String {
        match &*databases.tenants {
            TenantConnections::Postgres { registrations, .. } => {
                databases
                    .registration_of(tenant, registrations)
                    .await
                    .expect("registration")
                    .0
                    .schema
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
                    tenant_connections: 4,
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
            tenant_connections: 4,
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
