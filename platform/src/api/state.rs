//! Shared state of every handler.

use std::sync::Arc;

use crate::auth::policy::PolicyEnforcer;
use crate::metrics::PlatformMetrics;
use crate::metrics::token::MetricsToken;
use crate::services::analytics::AnalyticsService;
use crate::services::api_keys::ApiKeyService;
use crate::services::audit::AuditService;
use crate::services::authentication::Authenticator;
use crate::services::cache::ReadCache;
use crate::services::grants::GrantService;
use crate::services::health::HealthService;
use crate::services::integrations::IntegrationService;
use crate::services::integrations::llm::inference::Inference;
use crate::services::memory_service::MemoryService;
use crate::services::rate_limit::RateLimiter;
use crate::services::tenant_service::TenantService;
use crate::services::tenant_settings::TenantSettingsService;

#[derive(Clone)]
pub struct AppState {
    pub memories: Arc<MemoryService>,
    /// Adds with `infer`: facts extracted and reconciled by the tenant's LLM provider.
    pub inference: Arc<Inference>,
    pub analytics: Arc<AnalyticsService>,
    pub tenants: Arc<TenantService>,
    pub health: Arc<HealthService>,
    pub keys: Arc<ApiKeyService>,
    pub authenticator: Arc<Authenticator>,
    pub policy: Arc<PolicyEnforcer>,
    pub grants: Arc<GrantService>,
    pub settings: Arc<TenantSettingsService>,
    pub rate_limits: Arc<RateLimiter>,
    pub audit: Arc<AuditService>,
    pub integrations: Arc<IntegrationService>,
    /// Analytics schedule of tenants that set none.
    pub default_analytics_schedule: String,
    /// Cached reads; its `stats()` feed the metrics.
    pub cache: Arc<ReadCache>,
    /// Isolation of tenants created without one.
    pub default_isolation: memoryc_crds::layout::Isolation,
    pub metrics: PlatformMetrics,
    /// Required of scrapers when set; `/metrics` is public otherwise.
    pub metrics_token: Option<MetricsToken>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<[super::client_address::TrustedProxy]>,
}
