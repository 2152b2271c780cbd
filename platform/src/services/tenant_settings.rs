//! Per-tenant settings (PII policy, rate limit) with the platform's defaults, cached briefly so
//! the hot path does not read the database; other replicas see a change within the cache age.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use uuid::Uuid;

use super::ServiceError;
use crate::domain::pii::PiiPolicy;
use crate::stores::{TenantSettings, TenantSettingsStore};

const CACHED_TENANTS: usize = 10_000;

pub struct TenantSettingsService {
    store: Arc<dyn TenantSettingsStore>,
    default_pii_policy: PiiPolicy,
    max_age: Duration,
    cache: Cache<Uuid, (Instant, TenantSettings)>,
}

impl TenantSettingsService {
    pub fn new(
        store: Arc<dyn TenantSettingsStore>,
        default_pii_policy: PiiPolicy,
        max_age: Duration,
    ) -> Self {
        Self {
            store,
            default_pii_policy,
            max_age,
            cache: Cache::new(CACHED_TENANTS),
        }
    }

    pub async fn settings(&self, tenant_id: Uuid) -> Result<TenantSettings, ServiceError> {
        if let Some((at, settings)) = self.cache.get(&tenant_id)
            && at.elapsed() < self.max_age
        {
            return Ok(settings);
        }
        let settings = self.store.get(tenant_id).await?;
        self.cache
            .insert(tenant_id, (Instant::now(), settings.clone()));
        Ok(settings)
    }

    /// The policy in force: the tenant's own, else the platform default.
    pub async fn pii_policy(&self, tenant_id: Uuid) -> Result<PiiPolicy, ServiceError> {
        Ok(self
            .settings(tenant_id)
            .await?
            .pii_policy
            .unwrap_or(self.default_pii_policy))
    }

    pub async fn set_pii_policy(
        &self,
        tenant_id: Uuid,
        policy: PiiPolicy,
    ) -> Result<(), ServiceError> {
        self.store.set_pii_policy(tenant_id, Some(policy)).await?;
        self.cache.remove(&tenant_id);
        Ok(())
    }

    pub async fn set_rate_limit(
        &self,
        tenant_id: Uuid,
        per_minute: Option<u32>,
    ) -> Result<(), ServiceError> {
        self.store.set_rate_limit(tenant_id, per_minute).await?;
        self.cache.remove(&tenant_id);
        Ok(())
    }

    /// The tenant's own analytics schedule, if it set one.
    pub async fn analytics_schedule(
        &self,
        tenant_id: Uuid,
    ) -> Result<Option<String>, ServiceError> {
        Ok(self.settings(tenant_id).await?.analytics_schedule)
    }

    /// Sets (or with `None` clears) the tenant's analytics schedule; validated by the caller.
    pub async fn set_analytics_schedule(
        &self,
        tenant_id: Uuid,
        schedule: Option<String>,
    ) -> Result<(), ServiceError> {
        self.store
            .set_analytics_schedule(tenant_id, schedule)
            .await?;
        self.cache.remove(&tenant_id);
        Ok(())
    }

    /// The HNSW search-time candidate list size of the tenant's searches, if it chose one.
    pub async fn search_ef(&self, tenant_id: Uuid) -> Result<Option<usize>, ServiceError> {
        Ok(self.settings(tenant_id).await?.search_ef)
    }

    pub async fn set_search_ef(
        &self,
        tenant_id: Uuid,
        ef: Option<usize>,
    ) -> Result<(), ServiceError> {
        self.store.set_search_ef(tenant_id, ef).await?;
        self.cache.remove(&tenant_id);
        Ok(())
    }
}
