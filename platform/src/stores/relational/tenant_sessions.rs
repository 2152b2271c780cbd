//! The shared platform's PostgreSQL sessions for each Shared tenant, logged in as the login made
//! for that tenant alone (`memoryc_control::roles::ensure_platform_login`).
//!
//! PostgreSQL decides who a session may become by its login, not by its current role: a session
//! of a login that were a member of every tenant's role would let anything running inside a
//! tenant's transaction (a trigger a superuser planted, say) `SET ROLE` to another tenant. A
//! session of the tenant's own login, member of no role, can only ever be that tenant.
//!
//! Each tenant gets a small pool, opened on first use, whose connections close after a short
//! idle time and start with the tenant's schema on their `search_path`. When the open
//! connections would exceed the budget, pools of the tenants idle longest (with no connection
//! in use) are closed; their next statement opens a new pool.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use memoryc_crds::layout::TenantName;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sea_orm::{DatabaseConnection, SqlxPostgresConnector};

/// How long a tenant's connection may sit unused before it is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The login the shared platform uses for one tenant, as the control table records it.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct PlatformLogin {
    pub(super) role: String,
    pub(super) password: String,
}

impl std::fmt::Debug for PlatformLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformLogin")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Sizes of the tenants' pools.
#[derive(Debug, Clone, Copy)]
pub(super) struct SessionLimits {
    /// Most connections of one tenant at once.
    pub(super) per_tenant: u32,
    /// Most connections open at once over all tenants (exceeded only while every pool has a
    /// connection in use).
    pub(super) budget: u32,
    pub(super) acquire_timeout: Duration,
}

struct Held {
    connection: DatabaseConnection,
    pool: PgPool,
    schema: String,
    login: PlatformLogin,
    last_used: Instant,
}

pub(super) struct TenantSessions {
    server: PgConnectOptions,
    limits: SessionLimits,
    held: Mutex<HashMap<TenantName, Held>>,
}

impl TenantSessions {
    /// `server`: where the platform's own login connects (host, port, database, TLS); the
    /// user, password and options are replaced per tenant.
    pub(super) fn new(server: PgConnectOptions, limits: SessionLimits) -> Self {
        Self {
            server,
            limits,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's pool, logged in as `login` with `schema` first on the search path. A pool
    /// made for another schema or login (the tenant was created again, its password was
    /// replaced) is closed and a new one made. Connections open on first use.
    pub(super) fn connection(
        &self,
        tenant: &TenantName,
        schema: &str,
        login: &PlatformLogin,
    ) -> DatabaseConnection {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(current) = held.get_mut(tenant)
            && current.schema == schema
            && current.login == *login
        {
            current.last_used = Instant::now();
            let connection = current.connection.clone();
            self.shed(&mut held, tenant);
            return connection;
        }
        if let Some(replaced) = held.remove(tenant) {
            close_in_background(replaced.pool);
        }
        let options = self
            .server
            .clone()
            .username(&login.role)
            .password(&login.password)
            .options([("search_path", format!("\"{schema}\",pg_temp"))]);
        let pool = PgPoolOptions::new()
            .max_connections(self.limits.per_tenant.max(1))
            .min_connections(0)
            .idle_timeout(IDLE_TIMEOUT)
            .acquire_timeout(self.limits.acquire_timeout)
            .connect_lazy_with(options);
        let connection = SqlxPostgresConnector::from_sqlx_postgres_pool(pool.clone());
        held.insert(
            tenant.clone(),
            Held {
                connection: connection.clone(),
                pool,
                schema: schema.to_string(),
                login: login.clone(),
                last_used: Instant::now(),
            },
        );
        self.shed(&mut held, tenant);
        connection
    }

    /// Closes the tenant's pool (its login failed, or the tenant is gone).
    pub(super) fn forget(&self, tenant: &TenantName) {
        let removed = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(tenant);
        if let Some(removed) = removed {
            close_in_background(removed.pool);
        }
    }

    /// Closes every pool and waits for their connections to end.
    pub(super) async fn close(&self) {
        let pools: Vec<PgPool> = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, held)| held.pool)
            .collect();
        for pool in pools {
            pool.close().await;
        }
    }

    /// Connections open over every tenant, and the tenants whose pools are held.
    #[cfg(test)]
    fn open(&self) -> (u32, Vec<String>) {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let mut tenants: Vec<String> = held.keys().map(|t| t.to_string()).collect();
        tenants.sort();
        (held.values().map(|held| held.pool.size()).sum(), tenants)
    }

    /// Closes idle pools, longest unused first, while a new connection of `keep` could take the
    /// open connections past the budget or more pools are held than the budget.
    fn shed(&self, held: &mut HashMap<TenantName, Held>, keep: &TenantName) {
        loop {
            let open: u32 = held.values().map(|held| held.pool.size()).sum();
            let over = open.saturating_add(1) > self.limits.budget
                || held.len() > self.limits.budget as usize;
            if !over {
                return;
            }
            let idle_longest = held
                .iter()
                .filter(|(tenant, held)| {
                    *tenant != keep && held.pool.num_idle() as u32 == held.pool.size()
                })
                .min_by_key(|(_, held)| held.last_used)
                .map(|(tenant, _)| tenant.clone());
            let Some(tenant) = idle_longest else {
                return;
            };
            if let Some(removed) = held.remove(&tenant) {
                close_in_background(removed.pool);
            }
        }
    }
}

fn close_in_background(pool: PgPool) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move { pool.close().await });
    }
}

#[cfg(test)]
mod servers {
    //! Against the PostgreSQL at `MEMORYC_TEST_DATABASE_URL`.

    use std::str::FromStr;

    use sea_orm::ConnectionTrait;

    use super::*;

    fn server() -> PgConnectOptions {
        let url = std::env::var("MEMORYC_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        PgConnectOptions::from_str(&url).expect("url")
    }

    /// Connections stay within the budget: the pool of the tenant idle longest is closed when
    /// another tenant needs a connection, and a tenant whose login changed gets a new pool.
    #[tokio::test]
    async fn pools_of_the_tenants_idle_longest_make_room_within_the_budget() {
        let login = PlatformLogin {
            role: server().get_username().to_string(),
            password: String::new(),
        };
        let sessions = TenantSessions::new(
            server(),
            SessionLimits {
                per_tenant: 2,
                budget: 2,
                acquire_timeout: Duration::from_secs(5),
            },
        );
        let names = ["t-one", "t-two", "t-three"];
        for name in names {
            let tenant = TenantName::parse(name).expect("name");
            let connection = sessions.connection(&tenant, "public", &login);
            let row = connection
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT current_setting('search_path')".to_string(),
                ))
                .await
                .expect("query")
                .expect("row");
            let path: String = row.try_get_by_index(0).expect("text");
            assert_eq!(
                path, "\"public\",pg_temp",
                "the tenant's schema comes first"
            );
            let (open, _) = sessions.open();
            assert!(open <= 2, "{open} connections open");
        }
        let (_, held) = sessions.open();
        assert_eq!(held, vec!["t-three", "t-two"], "t-one was idle longest");
        let two = TenantName::parse("t-two").expect("name");
        let replaced = PlatformLogin {
            role: login.role.clone(),
            password: "another".to_string(),
        };
        sessions.connection(&two, "public", &replaced);
        let held_login = sessions
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&two)
            .map(|held| held.login.clone());
        assert_eq!(
            held_login,
            Some(replaced),
            "a changed login gets a new pool"
        );
        sessions.close().await;
        assert_eq!(sessions.open(), (0, Vec::new()));
    }
}
