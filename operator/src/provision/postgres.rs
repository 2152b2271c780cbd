//! PostgreSQL: per tenant a `NOLOGIN` owner role holding its schemas and tables (migrations run
//! as it), a login role with DML on those tables and nothing else (see
//! [`memoryc_control::roles`]), for a Shared tenant a second login with the same rights that
//! only the shared platform uses (its password in the control table `tenant_logins`), and the
//! tenant's registration in the control tables of the platform that serves it (tenant row, admin
//! user, admin API key).
//!
//! Identifiers come from validated tenant names and schema names (`[a-z0-9_]`), and passwords
//! from [`super::password`], so they are spliced into SQL inside quotes; values go as parameters.

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use memoryc_control::api_keys;
use memoryc_control::entities::api_key as api_key_entity;
use memoryc_control::roles::{self, RoleStanding};
use memoryc_control::settings::{self, Settings};
use memoryc_control::tenants;
use memoryc_crds::api_key;
use memoryc_crds::contract::{TENANT_ADMIN_ROLE, TENANT_ADMIN_USERNAME};
use memoryc_crds::layout::Isolation;
use memoryc_migrations::sea_orm_migration::MigratorTrait;
use memoryc_migrations::{ControlMigrator, TenantMigrator};
use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, Statement, TransactionTrait,
};
use uuid::Uuid;

use super::ProvisionError;
use crate::settings::DatabaseAddress;
use crate::tenant::plan::TenantPlan;

/// Name of the API keys the operator issues; older ones of this name are revoked on rotation.
pub const OPERATOR_KEY_NAME: &str = "memoryc-operator";

/// What `provision` had to do. On a tenant that was complete, anything here is repaired drift.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseReport {
    pub role_created: bool,
    pub role_repaired: bool,
    pub password_set: bool,
    pub schemas_created: Vec<String>,
    pub tenant_registered: bool,
    pub key_issued: bool,
    /// Objects the tenant's login owned (provisioned under the old model) went to its owner role.
    pub ownership_repaired: bool,
    /// The tenant's settings row was written (first time, or the spec or someone changed it).
    pub settings_applied: bool,
}

/// The tenant as the platform knows it, and the admin key to put in the Secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Registration {
    pub tenant_id: Uuid,
    pub api_key: String,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("tenant_id", &self.tenant_id)
            .finish_non_exhaustive()
    }
}

/// The operator's administrative connection.
#[derive(Clone)]
pub struct Postgres {
    admin: DatabaseConnection,
    superuser: bool,
    address: DatabaseAddress,
    /// The shared platform's login, given the control tables and made `NOINHERIT` and a member of
    /// no tenant role; `None` where the platform logs in as the operator's role.
    platform_role: Option<String>,
}

impl Postgres {
    /// Connects with a role that may create roles and schemas (a superuser, or CREATEROLE with
    /// CREATE on the database).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, ProvisionError> {
        let parsed = PgConnectOptions::from_str(url).map_err(ProvisionError::DatabaseUrl)?;
        let address = DatabaseAddress {
            host: parsed.get_host().to_string(),
            port: parsed.get_port(),
            dbname: parsed
                .get_database()
                .unwrap_or(parsed.get_username())
                .to_string(),
        };
        let mut options = ConnectOptions::new(url.to_string());
        // Only the catalog resolves unqualified names: nothing a tenant login could create in
        // `public` (writable by everyone on databases from before PostgreSQL 15) is ever called
        // by the operator instead of the built-in it shadows.
        options.set_schema_search_path("pg_catalog, pg_temp".to_string());
        options
            .max_connections(max_connections.max(2))
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        let admin = Database::connect(options).await.map_err(db_error)?;
        let superuser = admin
            .query_one_raw(raw(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            ))
            .await
            .map_err(db_error)?
            .map(|row| row.try_get_by_index::<bool>(0))
            .transpose()
            .map_err(db_error)?
            .unwrap_or(false);
        Ok(Self {
            admin,
            superuser,
            address,
            platform_role: None,
        })
    }

    /// Names the shared platform's login role (see [`Postgres::provision`]): lowercase
    /// letters, digits and `_`, as role names here are.
    pub fn with_platform_role(mut self, role: Option<String>) -> Result<Self, ProvisionError> {
        let role = role.filter(|role| !role.trim().is_empty());
        if let Some(role) = &role {
            let plain = role
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !plain || role.len() > 63 {
                return Err(ProvisionError::Conflict(format!(
                    "the platform's database role {role:?} must be 1 to 63 lowercase letters, \
                     digits and '_'"
                )));
            }
        }
        self.platform_role = role;
        Ok(self)
    }

    /// The shared platform's login role, when one is configured.
    pub fn platform_role(&self) -> Option<&str> {
        self.platform_role.as_deref()
    }

    /// Refuses, before anything is changed, a tenant whose names reach what is not its own: a
    /// schema owned by another role than this tenant's (another tenant's, the control schema, a
    /// schema made by hand), a schema registered to another tenant, or a login role that is
    /// privileged, the operator's or the shared platform's.
    pub async fn check_claims(&self, plan: &TenantPlan) -> Result<(), ProvisionError> {
        let standing = roles::role_standing(&self.admin, &plan.role)
            .await
            .map_err(db_error)?;
        if standing == RoleStanding::Privileged || self.platform_role() == Some(plan.role.as_str())
        {
            return Err(ProvisionError::Conflict(format!(
                "role {} exists and is not a tenant role (a privileged, operator or platform \
                 role); rename the tenant",
                plan.role
            )));
        }
        let mut schemas = vec![plan.schema.as_str()];
        if plan.is_dedicated() {
            schemas.push(&plan.control_schema);
        }
        for schema in schemas {
            let owner = roles::schema_owner(&self.admin, schema)
                .await
                .map_err(db_error)?;
            if let Some(owner) = owner
                && owner != plan.owner_role
                && owner != plan.role
            {
                return Err(ProvisionError::Conflict(format!(
                    "schema {schema} exists and belongs to role {owner}, not to tenant {}; \
                     choose another spec.storage.schemaName",
                    plan.tenant
                )));
            }
        }
        if self.schema_exists(&plan.control_schema).await? {
            let transaction = self.scoped(None, &plan.control_schema).await?;
            let registered =
                tenants::registered_to_schema(&transaction, &plan.schema, plan.tenant.as_str())
                    .await;
            let other = match registered {
                Ok(other) => other,
                Err(error) if is_undefined_table(&error) => None,
                Err(error) => return Err(db_error(error)),
            };
            transaction.commit().await.map_err(db_error)?;
            if let Some(other) = other {
                return Err(ProvisionError::Conflict(format!(
                    "schema {} is registered to tenant {other}; choose another \
                     spec.storage.schemaName",
                    plan.schema
                )));
            }
        }
        Ok(())
    }

    /// Where the operator reaches PostgreSQL (host, port, database).
    pub fn address(&self) -> &DatabaseAddress {
        &self.address
    }

    /// The administrative connection (tests and the benchmark inspect the catalog with it).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.admin
    }

    pub async fn ping(&self) -> Result<(), ProvisionError> {
        self.admin.ping().await.map_err(db_error)
    }

    /// Brings the tenant's role, schemas, tables and registration to the desired state.
    /// `password_current` says the role already has `password` (see `password::digest`);
    /// `presented_key` is the API key found in the Secret, kept if it is still valid.
    pub async fn provision(
        &self,
        plan: &TenantPlan,
        password: &str,
        password_current: bool,
        presented_key: Option<&str>,
    ) -> Result<(DatabaseReport, Registration), ProvisionError> {
        self.check_claims(plan).await?;
        let mut report = DatabaseReport::default();
        self.ensure_role(plan, password, password_current, &mut report)
            .await?;
        self.ensure_owner_role(plan).await?;
        self.claim_schema(plan, &plan.schema, &mut report).await?;
        match plan.isolation {
            Isolation::Dedicated => {
                self.claim_schema(plan, &plan.control_schema, &mut report)
                    .await?
            }
            Isolation::Shared => self.ensure_shared_control_schema(plan, &mut report).await?,
        }
        self.migrate(plan).await?;
        self.secure(plan).await?;
        let user_id = self.ensure_admin_user(plan).await?;
        let tenant_id = self.ensure_tenant_row(plan, &mut report).await?;
        self.ensure_settings(plan, tenant_id, &mut report).await?;
        let api_key = self
            .ensure_api_key(plan, tenant_id, user_id, presented_key, &mut report)
            .await?;
        Ok((report, Registration { tenant_id, api_key }))
    }

    /// The `NOLOGIN` role that owns the tenant's schemas, which the operator can act as.
    async fn ensure_owner_role(&self, plan: &TenantPlan) -> Result<(), ProvisionError> {
        roles::ensure_nologin_role(&self.admin, &plan.owner_role)
            .await
            .map_err(db_error)?;
        roles::grant_to_current_user(&self.admin, &plan.owner_role)
            .await
            .map_err(db_error)
    }

    /// Creates `schema` owned by the tenant's owner role, or takes back one its login owns (a
    /// tenant provisioned when logins owned their schemas: everything the login owns changes
    /// hands). [`Postgres::check_claims`] has refused schemas of anyone else.
    async fn claim_schema(
        &self,
        plan: &TenantPlan,
        schema: &str,
        report: &mut DatabaseReport,
    ) -> Result<(), ProvisionError> {
        let owner = roles::schema_owner(&self.admin, schema)
            .await
            .map_err(db_error)?;
        match owner {
            None => {
                // The comment records which tenant (by uid) made the schema, for whoever reads
                // the catalog; ownership by the tenant's roles is what the operator checks.
                self.admin
                    .execute_unprepared(&format!(
                        "CREATE SCHEMA IF NOT EXISTS {s} AUTHORIZATION {o}; \
                         COMMENT ON SCHEMA {s} IS {c}",
                        s = ident(schema),
                        o = ident(&plan.owner_role),
                        c = literal(&format!(
                            "memoryc tenant {} (uid {})",
                            plan.tenant, plan.uid
                        )),
                    ))
                    .await
                    .map_err(db_error)?;
                report.schemas_created.push(schema.to_string());
            }
            Some(owner) if owner == plan.owner_role => {}
            Some(_) => {
                roles::reassign_owned(&self.admin, &plan.role, &plan.owner_role)
                    .await
                    .map_err(db_error)?;
                report.ownership_repaired = true;
            }
        }
        if report.ownership_repaired {
            self.forget_unknown_migrations(plan, schema).await?;
        }
        if roles::owns_objects(&self.admin, &plan.role)
            .await
            .map_err(db_error)?
        {
            roles::reassign_owned(&self.admin, &plan.role, &plan.owner_role)
                .await
                .map_err(db_error)?;
            report.ownership_repaired = true;
        }
        Ok(())
    }

    /// A login that owned its schema could write its migration history; versions no migration
    /// of this schema has are removed, so the migrations run again as they should.
    async fn forget_unknown_migrations(
        &self,
        plan: &TenantPlan,
        schema: &str,
    ) -> Result<(), ProvisionError> {
        let names: Vec<String> = if schema == plan.schema {
            TenantMigrator::migrations()
                .iter()
                .map(|m| m.name().to_string())
                .collect()
        } else {
            ControlMigrator::migrations()
                .iter()
                .map(|m| m.name().to_string())
                .collect()
        };
        let known = names
            .iter()
            .map(|name| literal(name))
            .collect::<Vec<_>>()
            .join(", ");
        let history = format!("{}.seaql_migrations", ident(schema));
        self.admin
            .execute_unprepared(&format!(
                "DO $$ BEGIN \
                   IF to_regclass({}) IS NOT NULL THEN \
                     DELETE FROM {history} WHERE version NOT IN ({known}); \
                   END IF; \
                 END $$",
                literal(&history)
            ))
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// The shared platform's control schema, owned by the operator's role.
    async fn ensure_shared_control_schema(
        &self,
        plan: &TenantPlan,
        report: &mut DatabaseReport,
    ) -> Result<(), ProvisionError> {
        if self.schema_exists(&plan.control_schema).await? {
            return Ok(());
        }
        let created = self
            .admin
            .execute_unprepared(&format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                ident(&plan.control_schema)
            ))
            .await;
        match created {
            Ok(_) => report.schemas_created.push(plan.control_schema.clone()),
            // Two tenants created the shared control schema at the same moment.
            Err(_) if self.schema_exists(&plan.control_schema).await? => {}
            Err(error) => return Err(db_error(error)),
        }
        Ok(())
    }

    /// Ownership and grants as [`roles::secure_schema`] states them, planted code removed. A
    /// Shared tenant gets the login the shared platform uses for it alone; the shared platform's
    /// own login gets the control tables and is a member of no tenant role (one that was, from
    /// an earlier version, is taken out).
    async fn secure(&self, plan: &TenantPlan) -> Result<(), ProvisionError> {
        match plan.isolation {
            Isolation::Dedicated => {
                for schema in [&plan.schema, &plan.control_schema] {
                    roles::secure_schema(&self.admin, schema, &plan.owner_role, &[&plan.role])
                        .await
                        .map_err(db_error)?;
                }
            }
            Isolation::Shared => {
                roles::ensure_platform_login(
                    &self.admin,
                    &plan.control_schema,
                    plan.tenant.as_str(),
                    &plan.platform_login,
                )
                .await
                .map_err(db_error)?;
                roles::secure_schema(
                    &self.admin,
                    &plan.schema,
                    &plan.owner_role,
                    &[&plan.role, &plan.platform_login],
                )
                .await
                .map_err(db_error)?;
                if let Some(platform) = self.platform_role() {
                    roles::restrict_platform_role(&self.admin, platform)
                        .await
                        .map_err(db_error)?;
                    roles::revoke_membership(&self.admin, &plan.role, platform)
                        .await
                        .map_err(db_error)?;
                    roles::grant_control_access(&self.admin, &plan.control_schema, platform)
                        .await
                        .map_err(db_error)?;
                }
            }
        }
        Ok(())
    }

    async fn ensure_role(
        &self,
        plan: &TenantPlan,
        password: &str,
        password_current: bool,
        report: &mut DatabaseReport,
    ) -> Result<(), ProvisionError> {
        let role = ident(&plan.role);
        let attributes = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";
        let found = self
            .admin
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT concat_ws(' ', CASE WHEN NOT rolcanlogin THEN 'LOGIN' END, \
                 CASE WHEN rolcreatedb THEN 'NOCREATEDB' END) \
                 FROM pg_catalog.pg_roles WHERE rolname = $1",
                [plan.role.clone().into()],
            ))
            .await
            .map_err(db_error)?;
        match found {
            None => {
                let created = self
                    .admin
                    .execute_unprepared(&format!(
                        "CREATE ROLE {role} {attributes} PASSWORD {}",
                        literal(password)
                    ))
                    .await;
                match created {
                    Ok(_) => {
                        report.role_created = true;
                        report.password_set = true;
                    }
                    // Created concurrently (another reconcile of the same tenant): adopt it.
                    Err(error) if is_duplicate(&error) => {
                        self.set_password(&role, password).await?;
                        report.password_set = true;
                    }
                    Err(error) => return Err(db_error(error)),
                }
            }
            Some(row) => {
                // Only what differs is altered: a role with CREATEROLE (not superuser) may not
                // even name the superuser, replication or bypass-RLS attributes, and roles that
                // hold those were refused by `check_claims`.
                let differing: String = row.try_get_by_index(0).map_err(db_error)?;
                if !differing.is_empty() {
                    self.admin
                        .execute_unprepared(&format!("ALTER ROLE {role} {differing}"))
                        .await
                        .map_err(db_error)?;
                    report.role_repaired = true;
                }
                if !password_current {
                    self.set_password(&role, password).await?;
                    report.password_set = true;
                }
            }
        }
        // A non-superuser operator must be a member of the role to act as it.
        if !self.superuser {
            self.admin
                .execute_unprepared(&format!("GRANT {role} TO CURRENT_USER"))
                .await
                .map_err(db_error)?;
        }
        let can_connect = self
            .admin
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_catalog.has_database_privilege($1, pg_catalog.current_database(), 'CONNECT')",
                [plan.role.clone().into()],
            ))
            .await
            .map_err(db_error)?
            .map(|row| row.try_get_by_index::<bool>(0))
            .transpose()
            .map_err(db_error)?
            .unwrap_or(false);
        if !can_connect {
            self.admin
                .execute_unprepared(&format!(
                    "GRANT CONNECT ON DATABASE {} TO {role}",
                    ident(&self.address.dbname)
                ))
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }

    async fn set_password(&self, role: &str, password: &str) -> Result<(), ProvisionError> {
        self.admin
            .execute_unprepared(&format!("ALTER ROLE {role} PASSWORD {}", literal(password)))
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Runs the tenant migrations in the tenant's schema and the control migrations in its
    /// control schema, each as the schema's owner so later migrations can alter the tables.
    async fn migrate(&self, plan: &TenantPlan) -> Result<(), ProvisionError> {
        let transaction = self.scoped(Some(&plan.owner_role), &plan.schema).await?;
        TenantMigrator::up(&transaction, None)
            .await
            .map_err(|e| migration_error("tenant", &plan.schema, e))?;
        transaction.commit().await.map_err(db_error)?;
        let control_migrator = match plan.isolation {
            Isolation::Dedicated => Some(plan.owner_role.as_str()),
            Isolation::Shared => None,
        };
        let transaction = self.scoped(control_migrator, &plan.control_schema).await?;
        // Shared tenants share one control schema: reconciles running side by side would race
        // to create its migration table, so they take turns (the lock ends with the transaction).
        transaction
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                [format!("memoryc-migrate:{}", plan.control_schema).into()],
            ))
            .await
            .map_err(db_error)?;
        ControlMigrator::up(&transaction, None)
            .await
            .map_err(|e| migration_error("control", &plan.control_schema, e))?;
        transaction.commit().await.map_err(db_error)
    }

    /// The tenant's admin user in its own `users` table.
    async fn ensure_admin_user(&self, plan: &TenantPlan) -> Result<Uuid, ProvisionError> {
        let transaction = self.scoped(Some(&plan.role), &plan.schema).await?;
        transaction
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO users (user_id, username, email, created_at, last_active, preferences) \
                 VALUES ($1, $2, NULL, now(), NULL, '{}'::jsonb) ON CONFLICT (username) DO NOTHING",
                [Uuid::now_v7().into(), TENANT_ADMIN_USERNAME.into()],
            ))
            .await
            .map_err(db_error)?;
        let user_id = transaction
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT user_id FROM users WHERE username = $1",
                [TENANT_ADMIN_USERNAME.into()],
            ))
            .await
            .map_err(db_error)?
            .map(|row| row.try_get_by_index::<Uuid>(0))
            .transpose()
            .map_err(db_error)?
            .ok_or_else(|| {
                ProvisionError::Database(DbErr::RecordNotFound(
                    "the tenant's admin user vanished".into(),
                ))
            })?;
        transaction.commit().await.map_err(db_error)?;
        Ok(user_id)
    }

    /// The tenant's row in the control tables; an existing row (registered earlier, or kept by
    /// `Retain`) is adopted with its id.
    async fn ensure_tenant_row(
        &self,
        plan: &TenantPlan,
        report: &mut DatabaseReport,
    ) -> Result<Uuid, ProvisionError> {
        let transaction = self
            .scoped(control_owner(plan), &plan.control_schema)
            .await?;
        let registration = tenants::Registration {
            name: &plan.tenant,
            display_name: &plan.display_name,
            isolation: plan.isolation,
            schema_name: &plan.schema,
            collection_name: &plan.collection,
        };
        let proposed = Uuid::parse_str(&plan.uid).unwrap_or_else(|_| Uuid::now_v7());
        let registered = tenants::ensure(&transaction, proposed, &registration)
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        report.tenant_registered |= registered.created;
        Ok(registered.tenant_id)
    }

    /// The tenant's settings row as the spec says; written only when it differs, so a
    /// tenant-admin's change through the API is drift the next reconcile corrects.
    async fn ensure_settings(
        &self,
        plan: &TenantPlan,
        tenant_id: Uuid,
        report: &mut DatabaseReport,
    ) -> Result<(), ProvisionError> {
        let plan_settings = &plan.platform_settings;
        let wanted = Settings {
            tenant_id,
            updated_at: Utc::now(),
            pii_policy: Some(plan_settings.pii_policy.to_string()),
            rate_limit_per_minute: Some(plan_settings.rate_limit_per_minute),
            analytics_schedule: Some(plan_settings.analytics_schedule.clone()),
            search_ef: Some(plan_settings.search_ef),
            max_memories: plan_settings.max_memories,
            insight_ttl_hours: Some(
                i32::try_from(plan_settings.insight_ttl_hours).unwrap_or(i32::MAX),
            ),
            insight_min_confidence: Some(plan_settings.insight_min_confidence),
            rate_limit_burst: Some(plan_settings.burst),
        };
        let transaction = self
            .scoped(control_owner(plan), &plan.control_schema)
            .await?;
        let written = settings::apply(&transaction, &wanted)
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        report.settings_applied = written;
        Ok(())
    }

    /// Keeps the presented key if it is this tenant's, unrevoked and matches; otherwise issues a
    /// new tenant-admin key and revokes the operator's earlier ones.
    async fn ensure_api_key(
        &self,
        plan: &TenantPlan,
        tenant_id: Uuid,
        user_id: Uuid,
        presented: Option<&str>,
        report: &mut DatabaseReport,
    ) -> Result<String, ProvisionError> {
        let transaction = self
            .scoped(control_owner(plan), &plan.control_schema)
            .await?;
        if let Some(presented) = presented
            && let Some(prefix) = api_key::prefix_of(presented)
            && api_keys::is_live(
                &transaction,
                tenant_id,
                prefix,
                &api_key::hash(presented),
                Utc::now(),
            )
            .await
            .map_err(db_error)?
        {
            transaction.commit().await.map_err(db_error)?;
            return Ok(presented.to_string());
        }
        let issued = api_key::generate();
        let now = Utc::now();
        api_keys::revoke_named(&transaction, tenant_id, OPERATOR_KEY_NAME, now)
            .await
            .map_err(db_error)?;
        let key = api_key_entity::Model {
            key_id: Uuid::now_v7(),
            tenant_id,
            user_id,
            name: OPERATOR_KEY_NAME.to_string(),
            prefix: issued.prefix.clone(),
            key_hash: issued.hash.clone(),
            role: TENANT_ADMIN_ROLE.to_string(),
            created_at: now,
            expires_at: None,
            revoked_at: None,
        };
        api_keys::insert(&transaction, key)
            .await
            .map_err(db_error)?;
        transaction.commit().await.map_err(db_error)?;
        report.key_issued = true;
        Ok(issued.plaintext)
    }

    /// `Retain`: the data and the registration stay; the role can no longer log in nor be
    /// become by the shared platform, and every API key of the tenant is revoked, so deleting
    /// the tenant still shuts its doors.
    pub async fn retain(&self, plan: &TenantPlan) -> Result<(), ProvisionError> {
        let standing = roles::role_standing(&self.admin, &plan.role)
            .await
            .map_err(db_error)?;
        if standing == RoleStanding::Adoptable && self.platform_role() != Some(plan.role.as_str()) {
            self.admin
                .execute_unprepared(&format!("ALTER ROLE {} NOLOGIN", ident(&plan.role)))
                .await
                .map_err(db_error)?;
            // A shared platform login of an earlier version could still become the role.
            if let Some(platform) = self.platform_role() {
                roles::revoke_membership(&self.admin, &plan.role, platform)
                    .await
                    .map_err(db_error)?;
            }
        }
        // The shared platform can no longer act for the tenant.
        self.remove_platform_login(plan).await?;
        if self.schema_exists(&plan.control_schema).await? {
            // As the operator, not the role: a retained role may own nothing we can reach.
            let transaction = self.scoped(None, &plan.control_schema).await?;
            let revoked = match tenants::find_by_name(&transaction, plan.tenant.as_str()).await {
                Ok(Some(registered)) => {
                    api_keys::revoke_all(&transaction, registered.tenant_id, Utc::now())
                        .await
                        .map(|_| ())
                }
                Ok(None) => Ok(()),
                Err(error) => Err(error),
            };
            match revoked {
                Ok(_) => transaction.commit().await.map_err(db_error)?,
                // The control tables were never created: nothing to revoke.
                Err(error) if is_undefined_table(&error) => {}
                Err(error) => return Err(db_error(error)),
            }
        }
        Ok(())
    }

    /// `Delete`: the tenant's schemas, registration and roles are dropped. A schema is dropped
    /// only when this tenant's roles own it: a spec naming another's schema erases nothing.
    pub async fn erase(&self, plan: &TenantPlan) -> Result<(), ProvisionError> {
        self.drop_own_schema(plan, &plan.schema).await?;
        match plan.isolation {
            Isolation::Dedicated => {
                self.drop_own_schema(plan, &plan.control_schema).await?;
            }
            Isolation::Shared if self.schema_exists(&plan.control_schema).await? => {
                let transaction = self.scoped(None, &plan.control_schema).await?;
                let unregistered = match tenants::find_by_name(&transaction, plan.tenant.as_str())
                    .await
                {
                    Ok(Some(registered)) => tenants::unregister(&transaction, &registered).await,
                    Ok(None) => Ok(()),
                    Err(error) => Err(error),
                };
                match unregistered {
                    Ok(()) => transaction.commit().await.map_err(db_error)?,
                    // The control tables were never created: nothing is registered.
                    Err(error) if is_undefined_table(&error) => {}
                    Err(error) => return Err(db_error(error)),
                }
            }
            Isolation::Shared => {}
        }
        self.remove_platform_login(plan).await?;
        // Privileges (CONNECT, memberships) and anything else they still own go with the roles;
        // a privileged role of the same name is never the tenant's.
        if roles::role_standing(&self.admin, &plan.role)
            .await
            .map_err(db_error)?
            == RoleStanding::Adoptable
        {
            roles::drop_role(&self.admin, &plan.role)
                .await
                .map_err(db_error)?;
        }
        roles::drop_role(&self.admin, &plan.owner_role)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// A Shared tenant's platform login and its row in the control tables, removed.
    async fn remove_platform_login(&self, plan: &TenantPlan) -> Result<(), ProvisionError> {
        if plan.isolation != Isolation::Shared {
            return Ok(());
        }
        roles::remove_platform_login(
            &self.admin,
            &plan.control_schema,
            plan.tenant.as_str(),
            &plan.platform_login,
        )
        .await
        .map_err(db_error)
    }

    async fn drop_own_schema(&self, plan: &TenantPlan, schema: &str) -> Result<(), ProvisionError> {
        let owner = roles::schema_owner(&self.admin, schema)
            .await
            .map_err(db_error)?;
        match owner {
            Some(owner) if owner == plan.owner_role || owner == plan.role => {
                self.admin
                    .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(schema)))
                    .await
                    .map_err(db_error)?;
            }
            Some(owner) => {
                tracing::warn!(
                    tenant = %plan.tenant,
                    schema,
                    owner,
                    "schema not dropped: it does not belong to the tenant"
                );
            }
            None => {}
        }
        Ok(())
    }

    pub async fn role_exists(&self, role: &str) -> Result<bool, ProvisionError> {
        self.exists("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
            .await
    }

    pub async fn schema_exists(&self, schema: &str) -> Result<bool, ProvisionError> {
        self.exists("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
            .await
    }

    async fn exists(&self, sql: &str, name: &str) -> Result<bool, ProvisionError> {
        Ok(self
            .admin
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                [name.into()],
            ))
            .await
            .map_err(db_error)?
            .is_some())
    }

    /// A transaction acting as `role` (the operator itself when `None`) with unqualified names
    /// resolving in `schema`. Both settings end with the transaction.
    pub async fn scoped(
        &self,
        role: Option<&str>,
        schema: &str,
    ) -> Result<DatabaseTransaction, ProvisionError> {
        let transaction = self.admin.begin().await.map_err(db_error)?;
        if let Some(role) = role {
            transaction
                .execute_unprepared(&format!("SET LOCAL ROLE {}", ident(role)))
                .await
                .map_err(db_error)?;
        }
        transaction
            .execute_unprepared(&format!("SET LOCAL search_path TO {}", ident(schema)))
            .await
            .map_err(db_error)?;
        Ok(transaction)
    }
}

/// Who writes the control tables: the tenant's login when it has its own platform, the
/// operator (like the shared platform) otherwise.
pub(super) fn control_owner(plan: &TenantPlan) -> Option<&str> {
    match plan.isolation {
        Isolation::Dedicated => Some(&plan.role),
        Isolation::Shared => None,
    }
}

fn raw(sql: &str) -> Statement {
    Statement::from_string(DbBackend::Postgres, sql.to_string())
}

pub use roles::{ident, literal};

fn is_duplicate(error: &DbErr) -> bool {
    let text = error.to_string();
    text.contains("already exists") || text.contains("42710")
}

pub(super) fn is_undefined_table(error: &DbErr) -> bool {
    let text = error.to_string();
    text.contains("does not exist") || text.contains("42P01")
}

fn migration_error(set: &'static str, schema: &str, error: DbErr) -> ProvisionError {
    ProvisionError::Migration {
        set,
        schema: schema.to_string(),
        source: error,
    }
}

fn db_error(error: DbErr) -> ProvisionError {
    ProvisionError::Database(error)
}
