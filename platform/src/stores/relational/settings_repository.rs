//! [`TenantSettingsStore`] on the control plane's tenant settings (`memoryc_control::settings`).

use async_trait::async_trait;
use memoryc_control::settings::{self, Setting};
use uuid::Uuid;

use super::Databases;
use crate::domain::pii::PiiPolicy;
use crate::stores::{StoreError, TenantSettings, TenantSettingsStore};

#[derive(Clone)]
pub struct SqlTenantSettings {
    databases: Databases,
}

impl SqlTenantSettings {
    pub fn new(databases: Databases) -> Self {
        Self { databases }
    }

    async fn set(&self, tenant_id: Uuid, setting: Setting) -> Result<(), StoreError> {
        settings::set(self.databases.control(), tenant_id, setting).await?;
        Ok(())
    }
}

#[async_trait]
impl TenantSettingsStore for SqlTenantSettings {
    async fn get(&self, tenant_id: Uuid) -> Result<TenantSettings, StoreError> {
        let Some(row) = settings::get(self.databases.control(), tenant_id).await? else {
            return Ok(TenantSettings::default());
        };
        let pii_policy = match row.pii_policy.as_deref() {
            None => None,
            Some(value) => Some(PiiPolicy::parse(value).ok_or_else(|| {
                StoreError::Corrupt(format!("tenant {tenant_id}: PII policy {value:?}"))
            })?),
        };
        Ok(TenantSettings {
            pii_policy,
            rate_limit_per_minute: row
                .rate_limit_per_minute
                .and_then(|limit| u32::try_from(limit).ok()),
            analytics_schedule: row.analytics_schedule,
            search_ef: row.search_ef.and_then(|ef| usize::try_from(ef).ok()),
            max_memories: row.max_memories.and_then(|max| u64::try_from(max).ok()),
            insight_ttl_hours: row
                .insight_ttl_hours
                .and_then(|hours| u32::try_from(hours).ok())
                .filter(|hours| *hours > 0),
            insight_min_confidence: row
                .insight_min_confidence
                .filter(|confidence| (0.0..=1.0).contains(confidence)),
            rate_limit_burst: row
                .rate_limit_burst
                .and_then(|burst| u32::try_from(burst).ok())
                .filter(|burst| *burst > 0),
        })
    }

    async fn set_pii_policy(
        &self,
        tenant_id: Uuid,
        policy: Option<PiiPolicy>,
    ) -> Result<(), StoreError> {
        let policy = policy.map(|p| p.as_str().to_string());
        self.set(tenant_id, Setting::PiiPolicy(policy)).await
    }

    async fn set_rate_limit(
        &self,
        tenant_id: Uuid,
        per_minute: Option<u32>,
    ) -> Result<(), StoreError> {
        let limit = per_minute
            .map(i32::try_from)
            .transpose()
            .map_err(|_| StoreError::Conflict("rate limit is too large".to_string()))?;
        self.set(tenant_id, Setting::RateLimitPerMinute(limit))
            .await
    }

    async fn set_analytics_schedule(
        &self,
        tenant_id: Uuid,
        schedule: Option<String>,
    ) -> Result<(), StoreError> {
        self.set(tenant_id, Setting::AnalyticsSchedule(schedule))
            .await
    }

    async fn set_search_ef(&self, tenant_id: Uuid, ef: Option<usize>) -> Result<(), StoreError> {
        let ef = ef
            .map(i32::try_from)
            .transpose()
            .map_err(|_| StoreError::Conflict("search ef is too large".to_string()))?;
        self.set(tenant_id, Setting::SearchEf(ef)).await
    }
}
