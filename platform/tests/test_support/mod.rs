//! Test harness: a real platform on a random port, backed by real databases.
#![allow(dead_code)]

pub mod fake_github;
pub mod fake_openai;
pub mod matrix;
pub mod proxy;

use std::path::PathBuf;
use std::time::Duration;

use memoryc_platform::app::Platform;
use memoryc_platform::config::{Config, LogFormat, RelationalBackend, VectorBackend};
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;
use uuid::Uuid;

/// Which backends a test platform runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backends {
    /// SQLite files and the embedded vector index.
    Embedded,
    /// PostgreSQL schemas and Milvus collections.
    PostgresMilvus,
}

/// One test per backend for an async function taking [`Backends`]: `on_each_backend!(f);`
/// makes `f::embedded` and `f::postgres_milvus`, each a `#[tokio::test]`, or a test with the
/// attribute given: `on_each_backend!(f, tokio::test(flavor = "multi_thread"));`.
#[allow(unused_macros)]
macro_rules! on_each_backend {
    ($test:ident) => {
        $crate::test_support::on_each_backend!($test, tokio::test);
    };
    ($test:ident, $($attribute:tt)+) => {
        mod $test {
            #[$($attribute)+]
            async fn embedded() {
                super::$test($crate::test_support::Backends::Embedded).await;
            }

            #[$($attribute)+]
            async fn postgres_milvus() {
                super::$test($crate::test_support::Backends::PostgresMilvus).await;
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_each_backend;

/// `MEMORYC_MODEL_DIR`, else the package in the virtualenv `MEMORYC_VENV` names or in the
/// checkout's `.venv`.
pub fn model_dir() -> PathBuf {
    let checkout = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    memoryc_platform::embedding::model_location::for_checkout(checkout).unwrap_or_default()
}

pub fn postgres_url() -> String {
    std::env::var("MEMORYC_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

pub fn milvus_url() -> String {
    std::env::var("MEMORYC_TEST_MILVUS_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:19530".to_string())
}

/// A short random suffix so parallel tests never share names.
pub fn redis_url() -> String {
    std::env::var("MEMORYC_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
}

/// PostgreSQL, Milvus and Redis (events on Redis Streams, locks in Redis), with Redis keys of
/// this test only.
pub fn production_config(data_dir: PathBuf) -> Config {
    let mut config = test_config(Backends::PostgresMilvus, data_dir);
    config.storage.redis_url = Some(redis_url());
    config.storage.redis_key_prefix = format!("{}:", unique("memoryc-test-"));
    config
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &Uuid::new_v4().simple().to_string()[..10])
}

/// The HS256 secret of every test platform.
pub const JWT_SECRET: &str = "test-only-hs256-secret-of-at-least-32-bytes";

/// An HS256 token for `claims` (add `exp` yourself to test expiry; one hour is the default).
pub fn hs256_token(mut claims: Value) -> String {
    if claims.get("exp").is_none() {
        claims["exp"] = Value::from(chrono::Utc::now().timestamp() + 3600);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("token signs")
}

/// A token of a platform operator (no tenant).
pub fn platform_admin_token() -> String {
    hs256_token(serde_json::json!({"sub": "operator-1", "roles": ["platform-admin"]}))
}

/// A credential to call the API with.
#[derive(Debug, Clone)]
pub enum Caller {
    Nobody,
    Key(String),
    Bearer(String),
}

/// A key issued through the API.
#[derive(Debug, Clone)]
pub struct TestKey {
    pub api_key: String,
    pub key_id: String,
    pub user_id: Uuid,
    pub prefix: String,
}

pub fn test_config(backends: Backends, data_dir: PathBuf) -> Config {
    let mut config = Config::default();
    config.security.jwt_hs256_secret =
        Some(memoryc_platform::auth::secret::Secret::new(JWT_SECRET));
    config.server.listen = "127.0.0.1:0".parse().expect("static address");
    config.server.data_dir = data_dir;
    config.server.demo_tenant = false;
    config.server.log_format = LogFormat::Text;
    config.embedding.model_dir = model_dir();
    config.storage.outbox_interval = Duration::from_millis(100);
    config.storage.outbox_min_retry = Duration::from_millis(100);
    config.storage.outbox_max_retry = Duration::from_secs(1);
    // Tests run analytics on demand as often as they need; `analytics_api` tests the limit.
    config.analytics.min_interval = Duration::ZERO;
    // Tests probe with bad credentials on purpose; `rate_limits` tests the lockout.
    config.limits.auth_failures_per_minute = 0;
    // GitHub faults are retried at once; tests point `github_api_url` at a local board.
    config.integrations.github_retry_min = Duration::from_millis(10);
    config.integrations.github_api_url = "http://127.0.0.1:9/graphql".to_string();
    // Tests that configure Redis get keys (event stream, locks) of their own.
    config.storage.redis_key_prefix = format!("{}:", unique("memoryc-test-"));
    if backends == Backends::PostgresMilvus {
        config.storage.relational_backend = RelationalBackend::Postgres;
        config.storage.vector_backend = VectorBackend::Milvus;
        config.storage.database_url = postgres_url();
        config.storage.control_schema = unique("memoryc_test_");
        config.storage.milvus_url = milvus_url();
    }
    config
}

/// A platform serving on 127.0.0.1 until dropped or shut down.
pub struct TestPlatform {
    pub base_url: String,
    pub client: Client,
    pub config: Config,
    pub data_dir: tempfile::TempDir,
    /// The running platform's services (e.g. to read its cache counters).
    pub state: memoryc_platform::api::AppState,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// A connection of the test's own to the platform's databases, for seeding.
    databases: tokio::sync::OnceCell<memoryc_platform::stores::relational::Databases>,
}

/// A tenant created through the platform, with its admin key.
#[derive(Debug, Clone)]
pub struct TestTenant {
    pub name: String,
    pub api_key: String,
    pub user_id: Uuid,
}

impl TestPlatform {
    pub async fn start(backends: Backends) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config = test_config(backends, data_dir.path().to_path_buf());
        Self::start_with(config, data_dir).await
    }

    pub async fn start_with(config: Config, data_dir: tempfile::TempDir) -> Self {
        memoryc_platform::logging::init(LogFormat::Text);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let platform = Platform::build(config.clone())
            .await
            .expect("platform starts");
        let state = platform.state.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(error) = platform.serve(listener, shutdown).await {
                panic!("server failed: {error}");
            }
        });
        let client = Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        Self {
            base_url,
            client,
            config,
            data_dir,
            state,
            stop: Some(stop),
            server: Some(server),
            databases: tokio::sync::OnceCell::new(),
        }
    }

    pub async fn create_tenant(&self, isolation: &str) -> TestTenant {
        let platform = Platform::build(self.config.clone())
            .await
            .expect("platform builds");
        let isolation = memoryc_crds::layout::Isolation::parse(isolation).expect("isolation");
        let name = unique("t-");
        let created = platform
            .state
            .tenants
            .create(&name, None, isolation)
            .await
            .expect("tenant created");
        platform.databases.close().await.expect("close");
        TestTenant {
            name,
            api_key: created.api_key,
            user_id: created.user_id,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let caller = match key {
            Some(key) => Caller::Key(key.to_string()),
            None => Caller::Nobody,
        };
        self.call_as(&caller, method, path, body).await
    }

    pub async fn call_as(
        &self,
        caller: &Caller,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        match caller {
            Caller::Nobody => {}
            Caller::Key(key) => request = request.header("X-API-Key", key),
            Caller::Bearer(token) => request = request.bearer_auth(token),
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body read");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    /// The platform's databases, as the test sees them.
    pub async fn databases(&self) -> &memoryc_platform::stores::relational::Databases {
        use memoryc_platform::stores::relational::{Databases, RelationalConfig};
        self.databases
            .get_or_init(|| async {
                let config = match self.config.storage.relational_backend {
                    RelationalBackend::Sqlite => RelationalConfig::Sqlite {
                        dir: self.config.sqlite_dir(),
                    },
                    RelationalBackend::Postgres => RelationalConfig::Postgres {
                        url: self.config.storage.database_url.clone(),
                        control_schema: self.config.storage.control_schema.clone(),
                        max_connections: 4,
                        tenant_connections: 8,
                        acquire_timeout: Duration::from_secs(5),
                        schema_trust: self.config.storage.tenant_cache,
                    },
                };
                Databases::connect(&config).await.expect("test connection")
            })
            .await
    }

    /// Stores an unexpired insight (confidence 0.9) about `memory_id` straight into the
    /// tenant's tables, as an analytics run would.
    pub async fn seed_insight(&self, tenant: &str, content: &str, memory_id: &str) -> Uuid {
        use memoryc_platform::domain::analytics::{InsightType, PredictiveInsight};
        use memoryc_platform::stores::analytics::AnalyticsRepository;
        use memoryc_platform::stores::relational::analytics_repository::SqlAnalyticsRepository;
        let repository = SqlAnalyticsRepository::new(self.databases().await.clone());
        let now = chrono::Utc::now();
        let insight = PredictiveInsight {
            insight_id: Uuid::now_v7(),
            insight_type: InsightType::Pattern,
            content: content.to_string(),
            confidence: 0.9,
            supporting_memories: vec![Uuid::parse_str(memory_id).expect("memory id")],
            created_at: now,
            expires_at: Some(now + chrono::Duration::hours(1)),
            action_taken: false,
            user_id: None,
        };
        let name = memoryc_crds::layout::TenantName::parse(tenant).expect("tenant name");
        repository
            .save_insights(&name, std::slice::from_ref(&insight))
            .await
            .expect("insight stored");
        insight.insight_id
    }

    /// Stores a failed delivery of the tenant's integration `integration`, its next attempt a day
    /// away, as a delivery whose receiver refused it would be.
    pub async fn seed_failed_delivery(&self, tenant: &str, integration: &str) -> Uuid {
        use memoryc_control::webhook_deliveries::{self, Attempt, NewDelivery};
        let control = self.databases().await.control();
        let registered = memoryc_control::tenants::find_by_name(control, tenant)
            .await
            .expect("read")
            .expect("tenant");
        let integration =
            memoryc_control::integrations::find(control, registered.tenant_id, integration)
                .await
                .expect("read")
                .expect("integration");
        let now = chrono::Utc::now();
        let delivery_id = Uuid::now_v7();
        webhook_deliveries::enqueue(
            control,
            &[NewDelivery {
                delivery_id,
                tenant_id: registered.tenant_id,
                integration_id: integration.integration_id,
                event_id: Uuid::now_v7(),
                memory_id: None,
                event_type: "memory.created".to_string(),
                payload: "{\"type\":\"memory.created\",\"data\":{}}".to_string(),
            }],
            now,
        )
        .await
        .expect("delivery stored");
        webhook_deliveries::record_attempt(
            control,
            delivery_id,
            &Attempt::Failed {
                response_status: Some(503),
                error: "the receiver answered 503".to_string(),
                retry_at: Some(now + chrono::Duration::days(1)),
            },
            now,
        )
        .await
        .expect("attempt recorded");
        delivery_id
    }

    /// Issues a key with `role` through the API, as the tenant's admin.
    pub async fn issue_key(&self, admin_key: &str, role: &str) -> TestKey {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/keys",
                Some(admin_key),
                Some(serde_json::json!({"name": format!("{role} key"), "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "issuing a {role} key: {body}");
        TestKey {
            api_key: body["api_key"].as_str().expect("api_key").to_string(),
            key_id: body["key_id"].as_str().expect("key_id").to_string(),
            user_id: body["user_id"]
                .as_str()
                .and_then(|id| Uuid::parse_str(id).ok())
                .expect("user_id"),
            prefix: body["prefix"].as_str().expect("prefix").to_string(),
        }
    }

    pub async fn create_memory(&self, key: &str, body: Value) -> Value {
        let (status, json) = self
            .call(Method::POST, "/api/v1/memories", Some(key), Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "create failed: {json}");
        json
    }

    pub async fn search(&self, key: &str, query: &str) -> Vec<Value> {
        let (status, json) = self
            .call(
                Method::GET,
                &format!("/api/v1/memories?{query}"),
                Some(key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "search failed: {json}");
        json["results"].as_array().cloned().expect("results array")
    }

    /// Shuts the server down gracefully and waits for it, keeping its data for the test to
    /// read through [`databases`](Self::databases).
    pub async fn stop_server(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// Stops the server but leaves the databases to another platform sharing them.
    pub async fn shutdown_keeping_data(mut self) {
        self.stop_server().await;
    }

    pub async fn shutdown(mut self) {
        self.stop_server().await;
        if self.config.storage.relational_backend == RelationalBackend::Postgres {
            drop_postgres_schemas(&self.config).await;
        }
    }
}

/// Removes the control schema and every tenant schema a test created.
pub async fn drop_postgres_schemas(config: &Config) {
    use sea_orm::{ConnectionTrait, Database};
    let Ok(db) = Database::connect(config.storage.database_url.clone()).await else {
        return;
    };
    let query = format!(
        "SELECT name, schema_name FROM \"{}\".tenants",
        config.storage.control_schema
    );
    let _ = async {
        let tenants = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                query,
            ))
            .await?;
        for row in tenants {
            let schema: String = row.try_get("", "schema_name")?;
            db.execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .await?;
            let name: String = row.try_get("", "name")?;
            if let Ok(tenant) = memoryc_crds::layout::TenantName::parse(&name) {
                for role in [
                    tenant.role_name(),
                    tenant.owner_role_name(),
                    tenant.platform_login_name(),
                ] {
                    memoryc_control::roles::drop_role(&db, &role).await?;
                }
            }
        }
        Ok::<(), sea_orm::DbErr>(())
    }
    .await;
    let _ = db
        .execute_unprepared(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            config.storage.control_schema
        ))
        .await;
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}
