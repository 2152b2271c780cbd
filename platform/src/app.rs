//! Wires configuration into backends, services and the HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use memoryc_crds::layout::{Isolation, TenantName};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::analysis::RelationshipThresholds;
use crate::api::client_address::TrustedProxy;
use crate::api::{self, AppState};
use crate::auth::jwt::JwtVerifier;
use crate::auth::policy::{AdapterFactory, PolicyEnforcer, PolicyError, PolicySource};
use crate::config::{Config, RelationalBackend, VectorBackend};
use crate::embedding::batching::BatchingEmbedder;
use crate::embedding::cached::CachedEmbedder;
use crate::embedding::minilm::MiniLmEmbedder;
use crate::embedding::threads::InferencePlan;
use crate::embedding::{Embedder, EmbeddingError};
use crate::metrics::PlatformMetrics;
use crate::metrics::embedder::MeteredEmbedder;
use crate::metrics::inventory::InventoryRefresher;
use crate::metrics::token::MetricsToken;
use crate::services::ServiceError;
use crate::services::access_counts::AccessCounts;
use crate::services::analytics::AnalyticsService;
use crate::services::analytics::clock::SystemClock;
use crate::services::analytics::schedule::Schedule;
use crate::services::analytics::scheduler::AnalyticsScheduler;
use crate::services::analytics::service::AnalyticsSettings;
use crate::services::api_keys::{ApiKeyService, NewApiKey};
use crate::services::audit::AuditService;
use crate::services::authentication::Authenticator;
use crate::services::cache::ReadCache;
use crate::services::categorizer::Categorizer;
use crate::services::events::publisher::QUEUE_CAPACITY;
use crate::services::events::redis_stream;
use crate::services::events::{EventProcessor, EventPublisher, TenantEvent, in_process};
use crate::services::grants::GrantService;
use crate::services::health::HealthService;
use crate::services::integrations::IntegrationService;
use crate::services::integrations::github::client::{ClientSettings, GitHubClient};
use crate::services::integrations::github::scheduler::SyncScheduler;
use crate::services::integrations::github::sync::GitHubSync;
use crate::services::integrations::llm::breaker::Breakers;
use crate::services::integrations::llm::client::LlmClient;
use crate::services::integrations::llm::inference::Inference;
use crate::services::integrations::llm::providers::LlmProviders;
use crate::services::integrations::webhook::destination::DestinationPolicy;
use crate::services::integrations::webhook::dispatcher::{DispatchSettings, WebhookDispatcher};
use crate::services::integrations::webhook::fanout::WebhookFanout;
use crate::services::known_tenants::KnownTenants;
use crate::services::memory_service::MemoryService;
use crate::services::rate_limit::{RateLimiter, RateLimits};
use crate::services::relationships::RelationshipDiscovery;
use crate::services::tenant_service::{CreatedTenant, TenantService};
use crate::services::tenant_settings::TenantSettingsService;
use crate::services::vector_sync::VectorSync;
use crate::stores::IntegrationStore;
use crate::stores::StoreError;
use crate::stores::TenantRegistry;
use crate::stores::cache::in_process::InProcessMemoryCache;
use crate::stores::cache::redis::RedisMemoryCache;
use crate::stores::cache::{CacheError, MemoryCache};
use crate::stores::event_stream::{RedisEventStream, StreamSettings};
use crate::stores::rate_counter::RateCounter;
use crate::stores::rate_counter::in_process::InProcessCounter;
use crate::stores::rate_counter::redis::RedisCounter;
use crate::stores::relational::analytics_repository::SqlAnalyticsRepository;
use crate::stores::relational::audit_repository::SqlAuditStore;
use crate::stores::relational::control_repository::SqlTenantRegistry;
use crate::stores::relational::integration_repository::SqlIntegrationStore;
use crate::stores::relational::memory_repository::SqlMemoryRepository;
use crate::stores::relational::outbox_repository::SqlOutboxRepository;
use crate::stores::relational::policy_adapter::SqlPolicyAdapter;
use crate::stores::relational::settings_repository::SqlTenantSettings;
use crate::stores::relational::sync_repository::SqlSyncStore;
use crate::stores::relational::{Databases, RelationalConfig};
use crate::stores::run_lock::{InProcessLock, RedisRunLock, RunLock};
use crate::stores::vector::coalescing::CoalescingWrites;
use crate::stores::vector::embedded::EmbeddedVectorStore;
use crate::stores::vector::milvus::{MilvusConfig, MilvusVectorStore};
use crate::stores::vector::{VectorStore, VectorStoreError};

/// Name of the tenant created on embedded defaults.
pub const DEMO_TENANT: &str = "demo";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("relational store: {0}")]
    Store(#[from] StoreError),
    #[error("vector store: {0}")]
    Vector(#[from] VectorStoreError),
    #[error("embedding model: {0}")]
    Embedding(#[from] EmbeddingError),
    #[error("{0}")]
    Service(#[from] ServiceError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("access policy: {0}")]
    Policy(#[from] PolicyError),
    #[error("{0}")]
    Jwt(#[from] crate::auth::jwt::JwtError),
    #[error("{0}")]
    RateLimit(#[from] crate::stores::rate_counter::RateLimitError),
    #[error("{0}")]
    Schedule(#[from] crate::services::analytics::schedule::ScheduleError),
    #[error("{0}")]
    Events(#[from] crate::services::events::EventError),
    #[error("{0}")]
    Lock(#[from] crate::stores::run_lock::LockError),
    #[error("analytics scheduler: {0}")]
    Scheduler(String),
    #[error("{0}")]
    Cache(#[from] CacheError),
}

/// What the `tenant` commands need: storage and the tenant registry, with neither the
/// embedding model nor any background work, so managing tenants starts in moments.
pub struct TenantAdmin {
    pub tenants: Arc<TenantService>,
    pub default_isolation: Isolation,
    databases: Databases,
    embedded_vectors: Option<Arc<EmbeddedVectorStore>>,
}

impl TenantAdmin {
    /// Connects the databases and the vector store the configuration names.
    pub async fn connect(config: &Config) -> Result<Self, StartupError> {
        let databases = Databases::connect(&relational_config(config)).await?;
        let (vectors, embedded_vectors) = vector_store(config).await?;
        let registry = Arc::new(SqlTenantRegistry::new(databases.clone()));
        let known_tenants = Arc::new(KnownTenants::new(
            registry.clone(),
            config.storage.tenant_cache,
        ));
        let keys = Arc::new(ApiKeyService::new(
            registry.clone(),
            known_tenants,
            config.security.api_key_cache,
        ));
        let tenants = Arc::new(TenantService::new(
            registry,
            databases.clone(),
            vectors,
            keys,
        ));
        Ok(Self {
            tenants,
            default_isolation: config.storage.default_isolation,
            databases,
            embedded_vectors,
        })
    }

    /// Writes what the embedded vector index holds in memory and closes the databases.
    pub async fn close(self) -> Result<(), StartupError> {
        if let Some(embedded) = &self.embedded_vectors {
            embedded.flush().await?;
        }
        self.databases.close().await?;
        Ok(())
    }
}

/// Everything a running platform holds.
pub struct Platform {
    pub config: Config,
    pub state: AppState,
    pub databases: Databases,
    pub vector_sync: Arc<VectorSync>,
    vectors: Arc<dyn VectorStore>,
    embedded_vectors: Option<Arc<EmbeddedVectorStore>>,
    /// Runs every tenant's analytics on schedule (when analytics are on).
    pub analytics_scheduler: Arc<AnalyticsScheduler>,
    /// Records events and derives relationships, behind whichever transport is configured.
    pub event_processor: Arc<EventProcessor>,
    /// Sends webhook deliveries (when integrations are on).
    pub webhook_dispatcher: Option<Arc<WebhookDispatcher>>,
    /// Runs GitHub Projects syncs when due (when integrations are on); taken by `serve`.
    github_scheduler: Option<SyncScheduler>,
    /// Events published and not yet handed to the transport; taken by `serve`.
    event_queue: Option<tokio::sync::mpsc::Receiver<TenantEvent>>,
    inventory: Arc<InventoryRefresher>,
    /// Search results' access counts, written in the background.
    access_counts: Arc<AccessCounts>,
}

impl Platform {
    /// Connects every backend named by the configuration and loads the model.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let databases = Databases::connect(&relational_config(&config)).await?;
        let (vectors, embedded_vectors) = vector_store(&config).await?;
        let metrics = PlatformMetrics::new();
        let metrics_token = config
            .metrics
            .token
            .as_ref()
            .map(MetricsToken::new)
            .transpose()
            .map_err(|e| StartupError::Config(e.to_string()))?;
        let embedder = load_embedder(&config, &metrics).await?;
        let categorizer = Arc::new(Categorizer::new(&embedder).await?);

        let memories = Arc::new(SqlMemoryRepository::new(databases.clone()));
        let registry = Arc::new(SqlTenantRegistry::new(databases.clone()));
        let registered: Vec<_> = registry
            .list()
            .await?
            .into_iter()
            .map(|tenant| tenant.name)
            .collect();
        let repaired = databases.repair_tenants(&registered).await?;
        if repaired > 0 {
            tracing::info!(
                tenants = repaired,
                "tenants moved to their own database roles"
            );
        }
        let outbox = Arc::new(SqlOutboxRepository::new(databases.clone()));
        let cache = read_cache(&config, &metrics)?;
        let vector_sync = Arc::new(
            VectorSync::new(
                memories.clone(),
                vectors.clone(),
                outbox,
                registry.clone(),
                config.storage.outbox_min_retry,
                config.storage.outbox_max_retry,
            )
            .with_cache(cache.clone()),
        );
        let mut inventory = InventoryRefresher::new(
            metrics.clone(),
            registry.clone(),
            memories.clone(),
            vector_sync.clone(),
        );
        if config.metrics.token.is_none() && !config.metrics.tenant_series {
            inventory = inventory.without_tenant_series();
        }
        let inventory = Arc::new(inventory);
        let known_tenants = Arc::new(KnownTenants::new(
            registry.clone(),
            config.storage.tenant_cache,
        ));
        let keys = Arc::new(ApiKeyService::new(
            registry.clone(),
            known_tenants.clone(),
            config.security.api_key_cache,
        ));
        let settings = Arc::new(TenantSettingsService::new(
            Arc::new(SqlTenantSettings::new(databases.clone())),
            config.security.pii_default_policy,
            config.security.policy_refresh,
        ));
        let policy = Arc::new(load_policy(&config, &databases).await?);
        let rate_limits = Arc::new(RateLimiter::new(
            rate_counter(&config).await?,
            settings.clone(),
            RateLimits {
                per_minute: config.limits.rate_limit_per_minute,
                tenant_multiple: config.limits.rate_limit_tenant_multiple,
                auth_failures_per_minute: config.limits.auth_failures_per_minute,
            },
        ));
        let trusted_proxies = config
            .security
            .trusted_proxies
            .iter()
            .map(|proxy| TrustedProxy::parse(proxy))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StartupError::Config(e.to_string()))?;
        let jwt_settings = config.jwt_settings();
        let jwt = if jwt_settings.is_enabled() {
            Some(JwtVerifier::new(&jwt_settings).await?)
        } else {
            None
        };
        let grants = Arc::new(GrantService::new(
            Arc::new(SqlPolicyAdapter::new(databases.clone())),
            registry.clone(),
            policy.clone(),
        ));
        let default_isolation = config.storage.default_isolation;
        let tenants = Arc::new(TenantService::new(
            registry.clone(),
            databases.clone(),
            vectors.clone(),
            keys.clone(),
        ));
        let analytics_repository = Arc::new(SqlAnalyticsRepository::new(databases.clone()));
        let (events, event_queue) = EventPublisher::new(QUEUE_CAPACITY);
        let events = events.with_metrics(Arc::new(metrics.clone()));
        let relationships = RelationshipDiscovery::new(
            memories.clone(),
            vectors.clone(),
            RelationshipThresholds {
                similar: config.analytics.similar_threshold,
                related: config.analytics.related_threshold,
                ..RelationshipThresholds::default()
            },
        );
        let integration_store: Arc<dyn IntegrationStore> =
            Arc::new(SqlIntegrationStore::new(databases.clone()));
        let destinations = Arc::new(
            DestinationPolicy::new(&config.integrations.allowed_networks)
                .map_err(|e| StartupError::Config(format!("integrations.allowed_networks: {e}")))?,
        );
        let deliveries_queued = Arc::new(Notify::new());
        let mut event_processor = EventProcessor::new(
            analytics_repository.clone(),
            registry.clone(),
            Some(Arc::new(relationships)),
        )
        .with_observer(Arc::new(metrics.clone()));
        if !config.analytics.enabled {
            event_processor = event_processor.without_analytics();
        }
        let webhook_dispatcher = if config.integrations.enabled {
            event_processor = event_processor.with_webhooks(Arc::new(WebhookFanout::new(
                integration_store.clone(),
                memories.clone(),
                deliveries_queued.clone(),
            )));
            Some(Arc::new(
                WebhookDispatcher::new(
                    integration_store.clone(),
                    destinations.clone(),
                    dispatch_settings(&config),
                    deliveries_queued.clone(),
                )
                .map_err(|e| StartupError::Config(e.to_string()))?
                .with_observer(Arc::new(metrics.clone())),
            ))
        } else {
            None
        };
        let event_processor = Arc::new(event_processor);
        let access_counts = Arc::new(AccessCounts::new(memories.clone()));
        let mut memory_service = MemoryService::new(
            memories.clone(),
            vectors.clone(),
            embedder.clone(),
            categorizer,
            vector_sync.clone(),
            settings.clone(),
            access_counts.clone(),
        )
        .with_webhook_deliveries(integration_store.clone());
        let run_lock = run_lock(&config)?;
        let mut analytics =
            AnalyticsService::new(analytics_repository, memories, analytics_settings(&config))
                .with_tenant_settings(settings.clone())
                .with_on_demand_runs(run_lock.clone(), config.analytics.min_interval);
        // Events feed analytics and webhooks: published when either is on.
        if config.analytics.enabled || config.integrations.enabled {
            memory_service = memory_service.with_events(events.clone());
            analytics = analytics.with_events(events);
        }
        let analytics = Arc::new(analytics);
        let analytics_scheduler = Arc::new(
            AnalyticsScheduler::new(
                Arc::new(SystemClock),
                run_lock,
                tenants.clone(),
                analytics.clone(),
                settings.clone(),
                Schedule::parse(&config.analytics.schedule)?,
            )
            .with_observer(Arc::new(metrics.clone())),
        );
        let memory_service = Arc::new(memory_service.with_cache(cache.clone()));
        let llm = Arc::new(
            LlmProviders::new(
                integration_store.clone(),
                LlmClient::new(config.integrations.llm_timeout, destinations.clone())
                    .map_err(|e| StartupError::Config(format!("the LLM client: {e}")))?,
                Breakers::new(
                    config.integrations.llm_breaker_failures,
                    config.integrations.llm_breaker_open,
                ),
            )
            .with_observer(Arc::new(metrics.clone())),
        );
        let inference = Arc::new(Inference::new(llm.clone(), memory_service.clone()));
        let mut integrations =
            IntegrationService::new(integration_store.clone(), destinations, deliveries_queued)
                .with_llm(llm.clone());
        let github_scheduler = if config.integrations.enabled {
            let sync = Arc::new(GitHubSync::new(
                GitHubClient::new(github_client_settings(&config))
                    .map_err(|e| StartupError::Config(format!("the GitHub client: {e}")))?,
                Arc::new(SqlSyncStore::new(databases.clone())),
                integration_store,
                memory_service.clone(),
                known_tenants.clone(),
                tenants.clone(),
            ));
            // An on-demand sync answers before the request times out, or goes on in the
            // background.
            let wait = config
                .limits
                .request_timeout
                .saturating_sub(std::time::Duration::from_secs(5))
                .max(std::time::Duration::from_secs(1));
            integrations = integrations.with_github(sync.clone(), wait);
            Some(SyncScheduler::new(sync, config.integrations.poll_interval).with_llm_checks(llm))
        } else {
            None
        };
        let integrations = Arc::new(integrations);
        let state = AppState {
            memories: memory_service,
            inference,
            analytics,
            authenticator: Arc::new(Authenticator::new(
                keys.clone(),
                tenants.clone(),
                known_tenants,
                jwt,
            )),
            tenants,
            health: Arc::new(HealthService::new(
                databases.clone(),
                vectors.clone(),
                embedder,
                vector_sync.clone(),
            )),
            keys,
            policy,
            grants,
            settings,
            rate_limits,
            audit: Arc::new(AuditService::new(Arc::new(SqlAuditStore::new(
                databases.clone(),
            )))),
            integrations,
            cache,
            default_isolation,
            default_analytics_schedule: config.analytics.schedule.clone(),
            trusted_proxies: trusted_proxies.into(),
            metrics,
            metrics_token,
        };
        Ok(Self {
            config,
            state,
            databases,
            vector_sync,
            vectors,
            embedded_vectors,
            analytics_scheduler,
            event_processor,
            webhook_dispatcher,
            github_scheduler,
            event_queue: Some(event_queue),
            inventory,
            access_counts,
        })
    }

    /// The vector store this platform writes to.
    pub fn vector_store(&self) -> Arc<dyn VectorStore> {
        self.vectors.clone()
    }

    pub fn default_isolation(&self) -> Isolation {
        self.config.storage.default_isolation
    }

    /// Creates the demo tenant when missing and makes sure its key file holds a working key.
    pub async fn ensure_demo_tenant(&self) -> Result<(), StartupError> {
        let key_path = self.config.demo_key_path();
        let name =
            TenantName::parse(DEMO_TENANT).map_err(|e| StartupError::Config(e.to_string()))?;
        let key = match self.state.tenants.find(&name).await? {
            None => {
                let isolation = self.default_isolation();
                let created: CreatedTenant = self
                    .state
                    .tenants
                    .create(DEMO_TENANT, Some("Demo tenant"), isolation)
                    .await?;
                Some(created.api_key)
            }
            Some(tenant) => {
                let existing = tokio::fs::read_to_string(&key_path)
                    .await
                    .unwrap_or_default();
                match self.state.keys.authenticate(existing.trim()).await? {
                    Some(_) => None,
                    None => {
                        let admin = self.demo_admin_user(&tenant).await?;
                        let issued = self
                            .state
                            .keys
                            .issue(
                                &tenant,
                                NewApiKey {
                                    user_id: admin,
                                    name: "demo key".to_string(),
                                    role: crate::auth::Role::TenantAdmin,
                                    expires_at: None,
                                },
                            )
                            .await?;
                        Some(issued.plaintext)
                    }
                }
            }
        };
        if let Some(key) = key {
            write_secret_file(&key_path, &key).await?;
        }
        tracing::info!(path = %key_path.display(), "demo tenant ready; its API key is in this file");
        Ok(())
    }

    async fn demo_admin_user(
        &self,
        tenant: &crate::stores::Tenant,
    ) -> Result<uuid::Uuid, StartupError> {
        // A lost key file is replaced by a key for a fresh admin user of the demo tenant.
        let user = crate::stores::TenantUser {
            user_id: uuid::Uuid::now_v7(),
            username: format!("admin-{}", chrono::Utc::now().timestamp()),
            email: None,
        };
        self.state.tenants.create_user(&tenant.name, &user).await?;
        Ok(user.user_id)
    }

    /// Serves until `shutdown` resolves, then drains requests and flushes state.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = self
            .vector_sync
            .clone()
            .spawn_worker(self.config.storage.outbox_interval, stop_rx.clone());
        let policy_refresher = spawn_policy_refresh(
            self.state.policy.clone(),
            self.config.security.policy_refresh,
            stop_rx.clone(),
        );
        // Counted once before the first request, so the first scrape already has the gauges.
        self.inventory.refresh_logged().await;
        let inventory_refresher = self
            .inventory
            .clone()
            .spawn(self.config.metrics.refresh, stop_rx.clone());
        let access_writer = self
            .access_counts
            .clone()
            .spawn(self.config.storage.access_flush, stop_rx.clone());
        let dispatcher = self
            .webhook_dispatcher
            .clone()
            .map(|dispatcher| dispatcher.spawn(stop_rx.clone()));
        let github_syncs = self
            .github_scheduler
            .take()
            .map(|scheduler| scheduler.spawn(stop_rx.clone()));
        let event_tasks = self.start_event_transport(stop_rx)?;
        let mut scheduler = if self.config.analytics.enabled {
            let every = self.config.analytics.tick;
            Some(
                self.analytics_scheduler
                    .clone()
                    .start(every)
                    .await
                    .map_err(|e| StartupError::Scheduler(e.to_string()))?,
            )
        } else {
            None
        };
        let address: SocketAddr = listener.local_addr()?;
        tracing::info!(%address, "memoryc platform listening");
        let timeout = self.config.limits.request_timeout;
        let cors = api::hardening::cors(&self.config.security.cors_allowed_origins)
            .map_err(|e| StartupError::Config(e.to_string()))?;
        axum::serve(
            listener,
            api::router(self.state.clone(), timeout, cors)
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        let _ = worker.await;
        let _ = policy_refresher.await;
        if let Some(scheduler) = scheduler.as_mut()
            && let Err(error) = scheduler.shutdown().await
        {
            tracing::warn!(%error, "analytics scheduler did not stop cleanly");
        }
        for task in event_tasks {
            let _ = task.await;
        }
        let _ = inventory_refresher.await;
        if let Some(dispatcher) = dispatcher {
            let _ = dispatcher.await;
        }
        if let Some(syncs) = github_syncs {
            let _ = syncs.await;
        }
        let _ = access_writer.await;
        if let Some(embedded) = &self.embedded_vectors {
            embedded.flush().await?;
        }
        self.databases.close().await?;
        Ok(())
    }
}

impl Platform {
    /// Starts moving published events to the processor: through Redis Streams when Redis is
    /// configured (shared by every replica), in process otherwise.
    fn start_event_transport(
        &mut self,
        stop: watch::Receiver<bool>,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, StartupError> {
        let Some(queue) = self.event_queue.take() else {
            return Ok(Vec::new());
        };
        match &self.config.storage.redis_url {
            Some(url) => {
                let stream = RedisEventStream::connect(
                    url,
                    StreamSettings::new(&self.config.storage.redis_key_prefix),
                )?;
                Ok(vec![
                    redis_stream::spawn_forwarder(stream.clone(), queue, stop.clone()),
                    redis_stream::spawn_consumer(stream, self.event_processor.clone(), stop),
                ])
            }
            None => Ok(vec![in_process::spawn_consumer(
                queue,
                self.event_processor.clone(),
                stop,
            )]),
        }
    }
}

fn github_client_settings(config: &Config) -> ClientSettings {
    let integrations = &config.integrations;
    ClientSettings {
        endpoint: integrations.github_api_url.clone(),
        timeout: integrations.github_timeout,
        max_wait: integrations.github_max_wait,
        retry_min: integrations.github_retry_min,
        retries: 4,
    }
}

fn dispatch_settings(config: &Config) -> DispatchSettings {
    let integrations = &config.integrations;
    DispatchSettings {
        timeout: integrations.webhook_timeout,
        max_attempts: integrations.webhook_max_attempts,
        retry_min: integrations.webhook_retry_min,
        retry_max: integrations.webhook_retry_max,
        concurrency: integrations.webhook_concurrency,
        poll_interval: integrations.poll_interval,
        retention: integrations.delivery_retention,
    }
}

fn analytics_settings(config: &Config) -> AnalyticsSettings {
    AnalyticsSettings {
        insight_ttl: chrono_duration(config.analytics.insight_ttl),
        window: chrono_duration(config.analytics.window),
        ..AnalyticsSettings::default()
    }
}

/// Slots of scheduled analytics are claimed in Redis when configured (one run per slot across
/// replicas), in process otherwise.
fn run_lock(config: &Config) -> Result<Arc<dyn RunLock>, StartupError> {
    Ok(match &config.storage.redis_url {
        Some(url) => Arc::new(RedisRunLock::connect(
            url,
            &config.storage.redis_key_prefix,
        )?),
        None => Arc::new(InProcessLock::default()),
    })
}

/// The shipped (or configured) policy plus the tenants' rules from the control tables.
async fn load_policy(
    config: &Config,
    databases: &Databases,
) -> Result<PolicyEnforcer, StartupError> {
    let source = match &config.security.policy_dir {
        Some(dir) => PolicySource::Directory(dir.clone()),
        None => PolicySource::Shipped,
    };
    let databases = databases.clone();
    let stored: AdapterFactory =
        Arc::new(move || Box::new(SqlPolicyAdapter::new(databases.clone())));
    Ok(PolicyEnforcer::load(source, Some(stored)).await?)
}

/// Redis when configured (checked now, so a wrong URL stops the start), else in process.
async fn rate_counter(config: &Config) -> Result<Arc<dyn RateCounter>, StartupError> {
    match &config.storage.redis_url {
        Some(url) => {
            let counter = RedisCounter::connect(url)?;
            counter.ping().await?;
            Ok(Arc::new(counter))
        }
        None => Ok(Arc::new(InProcessCounter::default())),
    }
}

/// The read cache: off when `cache_enabled` is false, in Redis when one is configured (so
/// every replica sees every invalidation), in process otherwise.
fn read_cache(config: &Config, metrics: &PlatformMetrics) -> Result<Arc<ReadCache>, StartupError> {
    if !config.cache.enabled {
        return Ok(Arc::new(ReadCache::disabled()));
    }
    let store: Arc<dyn MemoryCache> = match &config.storage.redis_url {
        Some(url) => Arc::new(RedisMemoryCache::connect(url, &config.cache.key_prefix)?),
        None => Arc::new(InProcessMemoryCache::new(config.cache.max_entries)),
    };
    Ok(Arc::new(
        ReadCache::new(store, config.cache.ttl).with_metrics(Arc::new(metrics.clone())),
    ))
}

/// Re-reads the policy now and then, so rules another replica stored apply here too.
fn spawn_policy_refresh(
    policy: Arc<PolicyEnforcer>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every.max(Duration::from_millis(100)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    if let Err(error) = policy.reload().await {
                        tracing::warn!(%error, "could not refresh the access policy; keeping the current one");
                    }
                }
                _ = stop.changed() => break,
            }
        }
    })
}

/// A configured duration as chrono counts it; durations past chrono's range (hundreds of
/// millions of years) are as good as forever.
fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

fn relational_config(config: &Config) -> RelationalConfig {
    match config.storage.relational_backend {
        RelationalBackend::Sqlite => RelationalConfig::Sqlite {
            dir: config.sqlite_dir(),
        },
        RelationalBackend::Postgres => RelationalConfig::Postgres {
            url: config.storage.database_url.clone(),
            control_schema: config.storage.control_schema.clone(),
            max_connections: config.storage.database_max_connections,
            tenant_connections: config.storage.database_tenant_connections,
            acquire_timeout: config.storage.database_acquire_timeout,
            schema_trust: config.storage.tenant_cache,
        },
    }
}

async fn vector_store(
    config: &Config,
) -> Result<(Arc<dyn VectorStore>, Option<Arc<EmbeddedVectorStore>>), StartupError> {
    match config.storage.vector_backend {
        VectorBackend::Embedded => {
            let store = Arc::new(EmbeddedVectorStore::open(config.vector_dir())?);
            Ok((store.clone(), Some(store)))
        }
        VectorBackend::Milvus => {
            let mut milvus = MilvusConfig::new(config.storage.milvus_url.clone());
            milvus.token = config
                .storage
                .milvus_token
                .as_ref()
                .map(|t| t.expose().to_string());
            Ok((
                Arc::new(CoalescingWrites::new(MilvusVectorStore::with_config(
                    milvus,
                )?)?),
                None,
            ))
        }
    }
}

/// The model, metered, behind the batching and the cache: the metrics see real inference
/// batches, not cache hits.
async fn load_embedder(
    config: &Config,
    metrics: &PlatformMetrics,
) -> Result<Arc<dyn Embedder>, StartupError> {
    let model_dir = crate::embedding::model_location::locate(&config.embedding.model_dir);
    let model = tokio::task::spawn_blocking(move || MiniLmEmbedder::load(&model_dir))
        .await
        .map_err(|e| EmbeddingError::ModelLoad {
            path: String::new(),
            reason: e.to_string(),
        })??;
    let plan = InferencePlan::for_this_process(config.embedding.passes);
    tracing::info!(
        passes = plan.passes,
        threads_per_pass = plan.threads_per_pass,
        "embedding model loaded"
    );
    let model = model
        .with_concurrent_passes(plan.passes)
        .with_single_text_pass(config.embedding.single_text_pass);
    let metered = MeteredEmbedder::new(model, metrics.clone());
    let batching = BatchingEmbedder::new(metered, config.embedding.batch_size, plan.passes)?;
    Ok(Arc::new(CachedEmbedder::new(
        batching,
        config.embedding.cache_entries,
    )))
}

/// Writes `secret` to `path` readable by its owner only: into a new file created with mode 0600,
/// then renamed into place, so no one else can read it at any moment, not even half-written.
pub(crate) async fn write_secret_file(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".new");
    let temporary = std::path::PathBuf::from(temporary);
    // A leftover of a write that crashed half-way.
    match tokio::fs::remove_file(&temporary).await {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&temporary).await?;
    file.write_all(format!("{secret}\n").as_bytes()).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&temporary, path).await
}

#[cfg(test)]
mod secret_file_tests {
    use super::write_secret_file;

    #[tokio::test]
    async fn a_secret_file_is_its_owners_alone_and_replaced_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keys").join("demo-api-key");
        write_secret_file(&path, "first").await.expect("written");
        write_secret_file(&path, "second").await.expect("replaced");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "second\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("demo-api-key")]);
    }
}
