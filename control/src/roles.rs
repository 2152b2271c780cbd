//! Who owns a tenant's PostgreSQL schema and who may use it. The operator and a platform that
//! provisions tenants itself both call these, so the rules exist once.
//!
//! * Every object of a tenant schema belongs to a `NOLOGIN` owner role, used only to run
//!   migrations.
//! * The tenant's login (the role in its credentials Secret) gets `USAGE` on the schema and
//!   [`TENANT_TABLE_PRIVILEGES`] on its tables, `SELECT` only on the migration history, and
//!   nothing else: no `CREATE` on the schema, no `TRIGGER`, `REFERENCES` or `TRUNCATE`, so it
//!   can plant no code that a more privileged role would run.
//! * The shared platform serves a Shared tenant through a login of that tenant's own
//!   ([`ensure_platform_login`]) with the same rights, member of no role. PostgreSQL judges
//!   `SET ROLE` by the session's login, so whatever runs in one of those sessions (a trigger
//!   planted by a superuser, say) cannot become any other role; a shared login that were a
//!   member of every tenant role could.
//! * Triggers, rules, views, functions and operators found in a tenant schema were not made by
//!   the migrations (which create tables and indexes only) and are dropped whenever the schema
//!   is secured.
//!
//! Identifiers must be validated names (`[a-z0-9_$]`); they are quoted when spliced into SQL.

use crate::password;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, TransactionSession, TransactionTrait};

/// Table privileges of a tenant's login on its own tables.
pub const TENANT_TABLE_PRIVILEGES: &str = "SELECT, INSERT, UPDATE, DELETE";

/// Role attributes of every role these functions create.
const UNPRIVILEGED: &str = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";

/// A quoted identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted string literal.
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// What an existing role is, as far as adopting it for a tenant goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleStanding {
    Missing,
    /// An unprivileged role that may serve a tenant.
    Adoptable,
    /// A role no tenant may take over: the caller's own, a superuser or a role administrator.
    Privileged,
}

/// Whether `role` exists and may be used for a tenant.
pub async fn role_standing<C: ConnectionTrait>(db: &C, role: &str) -> Result<RoleStanding, DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT rolsuper OR rolcreaterole OR rolreplication OR rolbypassrls \
             OR rolname = current_user OR rolname = session_user FROM pg_catalog.pg_roles WHERE rolname = $1",
            [role.into()],
        ))
        .await?;
    Ok(match row {
        None => RoleStanding::Missing,
        Some(row) if row.try_get_by_index::<bool>(0)? => RoleStanding::Privileged,
        Some(_) => RoleStanding::Adoptable,
    })
}

/// Creates `role` as a `NOLOGIN` role unless it exists (concurrent callers are fine).
pub async fn ensure_nologin_role<C: ConnectionTrait>(db: &C, role: &str) -> Result<(), DbErr> {
    db.execute_unprepared(&format!(
        "DO $$ BEGIN \
           IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {name}) THEN \
             CREATE ROLE {role} NOLOGIN NOINHERIT {UNPRIVILEGED}; \
           END IF; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; \
         END $$",
        name = literal(role),
        role = ident(role),
    ))
    .await?;
    Ok(())
}

/// Makes the caller able to `SET ROLE` to `role`. A superuser already can; anyone else needs
/// membership, which a role with CREATEROLE may grant itself. From PostgreSQL 16 on, the
/// membership a CREATEROLE creator gets in the roles it creates carries `ADMIN` only, not `SET`,
/// so there the check is for `SET` and the grant says `WITH SET TRUE` (spelled in `EXECUTE`, so
/// that older servers never parse it).
pub async fn grant_to_current_user<C: ConnectionTrait>(db: &C, role: &str) -> Result<(), DbErr> {
    db.execute_unprepared(&format!(
        "DO $$ BEGIN \
           IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN \
             RETURN; \
           END IF; \
           IF pg_catalog.current_setting('server_version_num')::int >= 160000 THEN \
             IF NOT pg_catalog.pg_has_role(current_user, {name}, 'SET') THEN \
               EXECUTE 'GRANT ' || pg_catalog.quote_ident({name}) || ' TO CURRENT_USER WITH SET TRUE'; \
             END IF; \
           ELSIF NOT pg_catalog.pg_has_role(current_user, {name}, 'MEMBER') THEN \
             GRANT {quoted} TO CURRENT_USER; \
           END IF; \
         END $$",
        name = literal(role),
        quoted = ident(role),
    ))
    .await?;
    Ok(())
}

/// Who owns `schema` now, or `None` when it does not exist.
pub async fn schema_owner<C: ConnectionTrait>(
    db: &C,
    schema: &str,
) -> Result<Option<String>, DbErr> {
    db.query_one_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_catalog.pg_get_userbyid(nspowner)::text FROM pg_catalog.pg_namespace WHERE nspname = $1",
        [schema.into()],
    ))
    .await?
    .map(|row| row.try_get_by_index::<String>(0))
    .transpose()
}

/// Whether `role` owns any schema, relation or routine in this database (a login provisioned
/// under the old model owned its whole schema).
pub async fn owns_objects<C: ConnectionTrait>(db: &C, role: &str) -> Result<bool, DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = $1 AND ( \
               EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspowner = r.oid) \
               OR EXISTS (SELECT 1 FROM pg_class WHERE relowner = r.oid) \
               OR EXISTS (SELECT 1 FROM pg_proc WHERE proowner = r.oid) \
               OR EXISTS (SELECT 1 FROM pg_type WHERE typowner = r.oid)))",
            [role.into()],
        ))
        .await?;
    match row {
        Some(row) => row.try_get_by_index::<bool>(0),
        None => Ok(false),
    }
}

/// Hands everything `from` owns in this database to `to` (repairs a tenant provisioned when
/// its login owned its schema).
pub async fn reassign_owned<C: ConnectionTrait>(db: &C, from: &str, to: &str) -> Result<(), DbErr> {
    db.execute_unprepared(&format!(
        "REASSIGN OWNED BY {} TO {}",
        ident(from),
        ident(to)
    ))
    .await?;
    Ok(())
}

/// Drops every trigger, rule, view, routine and operator in `schema`: none of them comes from
/// the migrations, and each is code that would run with the rights of whoever touched the
/// table. One round trip.
pub async fn remove_planted_code<C: ConnectionTrait>(db: &C, schema: &str) -> Result<(), DbErr> {
    let s = literal(schema);
    db.execute_unprepared(&format!(
        "DO $$ DECLARE r record; BEGIN \
           FOR r IN SELECT t.tgname, c.relname FROM pg_trigger t \
                    JOIN pg_class c ON c.oid = t.tgrelid \
                    JOIN pg_namespace n ON n.oid = c.relnamespace \
                    WHERE n.nspname = {s} AND NOT t.tgisinternal LOOP \
             EXECUTE format('DROP TRIGGER %I ON %I.%I', r.tgname, {s}, r.relname); \
           END LOOP; \
           FOR r IN SELECT rulename, tablename FROM pg_rules WHERE schemaname = {s} LOOP \
             EXECUTE format('DROP RULE %I ON %I.%I', r.rulename, {s}, r.tablename); \
           END LOOP; \
           FOR r IN SELECT c.relname, c.relkind FROM pg_class c \
                    JOIN pg_namespace n ON n.oid = c.relnamespace \
                    WHERE n.nspname = {s} AND c.relkind IN ('v', 'm') LOOP \
             EXECUTE format('DROP %s IF EXISTS %I.%I CASCADE', \
               CASE r.relkind WHEN 'v' THEN 'VIEW' ELSE 'MATERIALIZED VIEW' END, {s}, r.relname); \
           END LOOP; \
           FOR r IN SELECT o.oid::regoperator AS signature FROM pg_operator o \
                    JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE n.nspname = {s} LOOP \
             EXECUTE format('DROP OPERATOR IF EXISTS %s CASCADE', r.signature); \
           END LOOP; \
           FOR r IN SELECT p.oid::regprocedure AS signature, p.prokind FROM pg_proc p \
                    JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = {s} LOOP \
             EXECUTE format('DROP %s IF EXISTS %s CASCADE', \
               CASE r.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' \
                 ELSE 'FUNCTION' END, r.signature); \
           END LOOP; \
         END $$"
    ))
    .await?;
    Ok(())
}

/// Hands `schema` and every table and sequence in it to `owner` (the caller must own them and
/// be a member of `owner`): a schema made when the platform's own login owned tenant schemas.
pub async fn transfer_schema<C: ConnectionTrait>(
    db: &C,
    schema: &str,
    owner: &str,
) -> Result<(), DbErr> {
    db.execute_unprepared(&format!(
        "ALTER SCHEMA {s} OWNER TO {o}; \
         DO $$ DECLARE r record; BEGIN \
           FOR r IN SELECT c.relname, c.relkind FROM pg_catalog.pg_class c \
                    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                    WHERE n.nspname = {sl} AND c.relkind IN ('r', 'p', 'S') \
                      AND pg_catalog.pg_get_userbyid(c.relowner) <> {ol} LOOP \
             EXECUTE format('ALTER %s %I.%I OWNER TO %I', \
               CASE r.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, {sl}, r.relname, {ol}); \
           END LOOP; \
         END $$",
        s = ident(schema),
        o = ident(owner),
        sl = literal(schema),
        ol = literal(owner),
    ))
    .await?;
    Ok(())
}

/// Gives `owner` the schema, takes every right on it and its tables from everyone else, and
/// grants `users` exactly the DML they need: [`TENANT_TABLE_PRIVILEGES`] on the tables,
/// `SELECT` on the migration history, `USAGE` on the schema and its sequences. Idempotent.
pub async fn secure_schema<C: ConnectionTrait>(
    db: &C,
    schema: &str,
    owner: &str,
    users: &[&str],
) -> Result<(), DbErr> {
    remove_planted_code(db, schema).await?;
    let s = ident(schema);
    let mut sql = format!(
        "ALTER SCHEMA {s} OWNER TO {o}; \
         REVOKE ALL ON SCHEMA {s} FROM PUBLIC; \
         REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM PUBLIC; \
         REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM PUBLIC; \
         REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {s} FROM PUBLIC; ",
        o = ident(owner),
    );
    // Tables made before the owner role existed (or by anyone else) change hands too.
    sql.push_str(&format!(
        "DO $$ DECLARE r record; BEGIN \
           FOR r IN SELECT c.relname, c.relkind FROM pg_class c \
                    JOIN pg_namespace n ON n.oid = c.relnamespace \
                    WHERE n.nspname = {sl} AND c.relkind IN ('r', 'p', 'S') \
                      AND pg_catalog.pg_get_userbyid(c.relowner) <> {ol} LOOP \
             EXECUTE format('ALTER %s %I.%I OWNER TO %I', \
               CASE r.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, {sl}, r.relname, {ol}); \
           END LOOP; \
         END $$; ",
        sl = literal(schema),
        ol = literal(owner),
    ));
    for user in users {
        let u = ident(user);
        sql.push_str(&format!(
            "REVOKE ALL ON SCHEMA {s} FROM {u}; \
             REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {u}; \
             REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {u}; \
             GRANT USAGE ON SCHEMA {s} TO {u}; \
             GRANT {TENANT_TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {s} TO {u}; \
             GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {u}; "
        ));
        sql.push_str(&format!(
            "DO $$ BEGIN \
               IF pg_catalog.to_regclass({history}) IS NOT NULL THEN \
                 REVOKE INSERT, UPDATE, DELETE ON {s}.seaql_migrations FROM {u}; \
               END IF; \
             END $$; ",
            history = literal(&format!("{s}.seaql_migrations")),
        ));
    }
    db.execute_unprepared(&sql).await?;
    Ok(())
}

/// Makes sure the shared platform's login for one tenant exists and that `control_schema`'s
/// `tenant_logins` row holds its password: a `LOGIN` role, unprivileged, member of nothing, with
/// `CONNECT` on the database (its table rights come from [`secure_schema`]). When the role or the
/// row is missing, or the role cannot log in, a fresh [`password::generate`] is set on the role
/// and recorded, in one transaction under an advisory lock, so two callers never leave the row
/// and the role disagreeing. Deleting the row makes the next call set a new password. Returns
/// whether anything changed. Refuses a privileged role of that name.
pub async fn ensure_platform_login<C>(
    db: &C,
    control_schema: &str,
    tenant: &str,
    login: &str,
) -> Result<bool, DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    if role_standing(db, login).await? == RoleStanding::Privileged {
        return Err(DbErr::Custom(format!(
            "role {login} exists and is privileged; it cannot serve tenant {tenant}"
        )));
    }
    let logins = format!("{}.tenant_logins", ident(control_schema));
    let transaction = db.begin().await?;
    transaction
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1))",
            // One lock for every tenant: granting CONNECT updates the database's one catalog
            // row, which concurrent grants would fail on.
            ["memoryc-platform-logins".into()],
        ))
        .await?;
    let state = transaction
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT (SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = $2), \
                 EXISTS (SELECT 1 FROM {logins} WHERE tenant_name = $1 AND role_name = $2)"
            ),
            [tenant.into(), login.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("no row from a SELECT".to_string()))?;
    let can_login: Option<bool> = state.try_get_by_index(0)?;
    let recorded: bool = state.try_get_by_index(1)?;
    if can_login == Some(true) && recorded {
        transaction.commit().await?;
        return Ok(false);
    }
    let password = password::generate();
    let role = ident(login);
    // A role with CREATEROLE but not superuser may not even name the privileged attributes in
    // ALTER ROLE; an existing role was found unprivileged above.
    let (command, unprivileged) = match can_login {
        Some(_) => ("ALTER ROLE", ""),
        None => ("CREATE ROLE", UNPRIVILEGED),
    };
    let database = current_database(&transaction).await?;
    transaction
        .execute_unprepared(&format!(
            "{command} {role} LOGIN NOINHERIT {unprivileged} PASSWORD {}; \
             DO $$ BEGIN \
               IF NOT pg_catalog.has_database_privilege({}, {db}, 'CONNECT') THEN \
                 GRANT CONNECT ON DATABASE {} TO {role}; \
               END IF; \
             END $$",
            literal(&password),
            literal(login),
            ident(&database),
            db = literal(&database),
        ))
        .await?;
    transaction
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "INSERT INTO {logins} (tenant_name, role_name, password, created_at) \
                 VALUES ($1, $2, $3, now()) ON CONFLICT (tenant_name) DO UPDATE \
                 SET role_name = EXCLUDED.role_name, password = EXCLUDED.password, \
                 created_at = EXCLUDED.created_at"
            ),
            [tenant.into(), login.into(), password.into()],
        ))
        .await?;
    transaction.commit().await?;
    Ok(true)
}

/// Takes the shared platform's login for `tenant` away: its `tenant_logins` row (when the table
/// exists) and the role. Sessions already open keep running until the platform closes them;
/// they hold the dropped role's rights, which are none.
pub async fn remove_platform_login<C>(
    db: &C,
    control_schema: &str,
    tenant: &str,
    login: &str,
) -> Result<(), DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    let table = format!("{}.tenant_logins", ident(control_schema));
    db.execute_unprepared(&format!(
        "DO $$ BEGIN \
           IF pg_catalog.to_regclass({}) IS NOT NULL THEN \
             DELETE FROM {table} WHERE tenant_name = {}; \
           END IF; \
         END $$",
        literal(&table),
        literal(tenant),
    ))
    .await?;
    if role_standing(db, login).await? == RoleStanding::Adoptable {
        drop_role(db, login).await?;
    }
    Ok(())
}

async fn current_database<C: ConnectionTrait>(db: &C) -> Result<String, DbErr> {
    db.query_one_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT pg_catalog.current_database()::text".to_string(),
    ))
    .await?
    .map(|row| row.try_get_by_index::<String>(0))
    .transpose()?
    .ok_or_else(|| DbErr::Custom("no current database".to_string()))
}

/// Takes `member` out of `role` (repairs a shared platform login that could become tenants).
pub async fn revoke_membership<C: ConnectionTrait>(
    db: &C,
    role: &str,
    member: &str,
) -> Result<(), DbErr> {
    db.execute_unprepared(&format!(
        "DO $$ BEGIN \
           IF EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m \
                      JOIN pg_catalog.pg_roles r ON r.oid = m.roleid \
                      JOIN pg_catalog.pg_roles u ON u.oid = m.member \
                      WHERE r.rolname = {r} AND u.rolname = {m}) THEN \
             REVOKE {ri} FROM {mi}; \
           END IF; \
         END $$",
        m = literal(member),
        r = literal(role),
        ri = ident(role),
        mi = ident(member),
    ))
    .await?;
    Ok(())
}

/// Makes the shared platform's login a role that holds nothing of its own in tenant schemas:
/// `NOINHERIT` (membership in a tenant role lends no rights until `SET ROLE`), no database
/// creation. A platform login that is a superuser, may create roles, replicate or bypass
/// row-level security is refused: it could reach every tenant by itself. Only attributes that
/// differ are altered (naming the privileged ones at all needs a superuser).
pub async fn restrict_platform_role<C: ConnectionTrait>(db: &C, role: &str) -> Result<(), DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT rolsuper OR rolcreaterole OR rolreplication OR rolbypassrls, \
             concat_ws(' ', CASE WHEN rolinherit THEN 'NOINHERIT' END, \
             CASE WHEN rolcreatedb THEN 'NOCREATEDB' END) \
             FROM pg_catalog.pg_roles WHERE rolname = $1",
            [role.into()],
        ))
        .await?;
    let Some(row) = row else {
        return Err(DbErr::Custom(format!(
            "the shared platform's role {role} does not exist"
        )));
    };
    let privileged: bool = row.try_get_by_index(0)?;
    if privileged {
        return Err(DbErr::Custom(format!(
            "the shared platform's role {role} is a superuser or may create roles, replicate or \
             bypass row-level security; give the platform an unprivileged login"
        )));
    }
    let differing: String = row.try_get_by_index(1)?;
    if !differing.is_empty() {
        db.execute_unprepared(&format!("ALTER ROLE {} {differing}", ident(role)))
            .await?;
    }
    Ok(())
}

/// Usage of the control schema and DML on its tables for the platform's login (the control
/// schema's owner runs its migrations).
pub async fn grant_control_access<C: ConnectionTrait>(
    db: &C,
    control_schema: &str,
    platform_role: &str,
) -> Result<(), DbErr> {
    let s = ident(control_schema);
    let p = ident(platform_role);
    db.execute_unprepared(&format!(
        "REVOKE ALL ON SCHEMA {s} FROM PUBLIC; \
         REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM PUBLIC; \
         GRANT USAGE ON SCHEMA {s} TO {p}; \
         GRANT {TENANT_TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {s} TO {p}; \
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {p}"
    ))
    .await?;
    Ok(())
}

/// Whether the connected role may create objects in `schema` (and so run its migrations).
pub async fn can_create_in<C: ConnectionTrait>(db: &C, schema: &str) -> Result<bool, DbErr> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_catalog.has_schema_privilege(current_user, $1, 'CREATE')",
            [schema.into()],
        ))
        .await?;
    match row {
        Some(row) => row.try_get_by_index::<bool>(0),
        None => Ok(false),
    }
}

/// Drops `role` and whatever it still owns or holds (privileges, memberships). `DROP OWNED`
/// runs as the role itself, so a caller that is a `NOINHERIT` member may do it; `DROP ROLE`
/// needs CREATEROLE.
pub async fn drop_role<C>(db: &C, role: &str) -> Result<(), DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    let exists = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1",
            [role.into()],
        ))
        .await?
        .is_some();
    if !exists {
        return Ok(());
    }
    // As the caller first: it also revokes what others granted the role (on the database,
    // say). A NOINHERIT caller lacks the role's rights for that and acts as the role instead.
    let as_caller = db
        .execute_unprepared(&format!("DROP OWNED BY {}", ident(role)))
        .await;
    if as_caller.is_err() {
        grant_to_current_user(db, role).await?;
        let transaction = db.begin().await?;
        transaction
            .execute_unprepared(&format!(
                "SET LOCAL ROLE {r}; DROP OWNED BY {r}",
                r = ident(role)
            ))
            .await?;
        transaction.commit().await?;
    }
    db.execute_unprepared(&format!("DROP ROLE IF EXISTS {}", ident(role)))
        .await?;
    Ok(())
}
