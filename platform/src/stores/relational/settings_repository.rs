//! [`TenantSettingsStore`] on the control table `tenant_settings`.

use async_trait::async_trait;
use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};
use uuid::Uuid;

use super::Databases;
use super::entities::tenant_setting::{self, Column, Entity as TenantSetting};
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

    /// Creates the row or updates only `column`, so the two settings never overwrite each other.
    async fn upsert(
        &self,
        row: tenant_setting::ActiveModel,
        column: Column,
    ) -> Result<(), StoreError> {
        TenantSetting::insert(row)
            .on_conflict(
                OnConflict::column(Column::TenantId)
                    .update_columns([column, Column::UpdatedAt])
                    .to_owned(),
            )
            .exec_without_returning(self.databases.control())
            .await?;
        Ok(())
    }
}

#[async_trait]
impl TenantSettingsStore for SqlTenantSettings {
    async fn get(&self, tenant_id: Uuid) -> Result<TenantSettings, StoreError> {
        let Some(row) = TenantSetting::find_by_id(tenant_id)
            .one(self.databases.control())
            .await?
        else {
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
        let row = tenant_setting::ActiveModel {
            tenant_id: Set(tenant_id),
            pii_policy: Set(policy.map(|p| p.as_str().to_string())),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        self.upsert(row, Column::PiiPolicy).await
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
        let row = tenant_setting::ActiveModel {
            tenant_id: Set(tenant_id),
            rate_limit_per_minute: Set(limit),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        self.upsert(row, Column::RateLimitPerMinute).await
    }

    async fn set_analytics_schedule(
        &self,
        tenant_id: Uuid,
        schedule: Option<String>,
    ) -> Result<(), StoreError> {
        let row = tenant_setting::ActiveModel {
            tenant_id: Set(tenant_id),
            analytics_schedule: Set(schedule),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        self.upsert(row, Column::AnalyticsSchedule).await
    }

    async fn set_search_ef(&self, tenant_id: Uuid, ef: Option<usize>) -> Result<(), StoreError> {
        let ef = ef
            .map(i32::try_from)
            .transpose()
            .map_err(|_| StoreError::Conflict("search ef is too large".to_string()))?;
        let row = tenant_setting::ActiveModel {
            tenant_id: Set(tenant_id),
            search_ef: Set(ef),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        self.upsert(row, Column::SearchEf).await
    }
}
