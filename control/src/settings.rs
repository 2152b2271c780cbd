//! A tenant's settings in the control table `tenant_settings`: its choices over the platform's
//! defaults. `None` in a field is "the platform's default". The operator writes the whole row
//! from the MemoryTenant spec; a tenant-admin changes one setting at a time through the API.

use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};
use uuid::Uuid;

use crate::entities::tenant_setting::{self, Column, Entity as TenantSettings};

/// The stored settings of one tenant: its row, whose `updated_at` says when it last changed.
pub type Settings = tenant_setting::Model;

/// One setting a tenant-admin changes on its own; the others stay as they are.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    PiiPolicy(Option<String>),
    RateLimitPerMinute(Option<i32>),
    AnalyticsSchedule(Option<String>),
    SearchEf(Option<i32>),
}

/// The tenant's settings; `None` when it has never had any.
pub async fn get<C: ConnectionTrait>(db: &C, tenant_id: Uuid) -> Result<Option<Settings>, DbErr> {
    TenantSettings::find_by_id(tenant_id).one(db).await
}

/// Writes one setting, creating the row when the tenant has none, so two settings changed at
/// once never overwrite each other.
pub async fn set<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    setting: Setting,
) -> Result<(), DbErr> {
    let mut row = tenant_setting::ActiveModel {
        tenant_id: Set(tenant_id),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    let column = match setting {
        Setting::PiiPolicy(value) => {
            row.pii_policy = Set(value);
            Column::PiiPolicy
        }
        Setting::RateLimitPerMinute(value) => {
            row.rate_limit_per_minute = Set(value);
            Column::RateLimitPerMinute
        }
        Setting::AnalyticsSchedule(value) => {
            row.analytics_schedule = Set(value);
            Column::AnalyticsSchedule
        }
        Setting::SearchEf(value) => {
            row.search_ef = Set(value);
            Column::SearchEf
        }
    };
    TenantSettings::insert(row)
        .on_conflict(
            OnConflict::column(Column::TenantId)
                .update_columns([column, Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Makes the tenant's settings exactly `wanted` (whatever its `updated_at`), writing only when
/// they differ (so a change made through the API shows as drift the next time the whole row is
/// applied). Whether it wrote.
pub async fn apply<C: ConnectionTrait>(db: &C, wanted: &Settings) -> Result<bool, DbErr> {
    if let Some(stored) = get(db, wanted.tenant_id).await?
        && stored
            == (Settings {
                updated_at: stored.updated_at,
                ..wanted.clone()
            })
    {
        return Ok(false);
    }
    let row = tenant_setting::ActiveModel {
        tenant_id: Set(wanted.tenant_id),
        pii_policy: Set(wanted.pii_policy.clone()),
        rate_limit_per_minute: Set(wanted.rate_limit_per_minute),
        analytics_schedule: Set(wanted.analytics_schedule.clone()),
        search_ef: Set(wanted.search_ef),
        max_memories: Set(wanted.max_memories),
        insight_ttl_hours: Set(wanted.insight_ttl_hours),
        insight_min_confidence: Set(wanted.insight_min_confidence),
        rate_limit_burst: Set(wanted.rate_limit_burst),
        updated_at: Set(Utc::now()),
    };
    TenantSettings::insert(row)
        .on_conflict(
            OnConflict::column(Column::TenantId)
                .update_columns([
                    Column::PiiPolicy,
                    Column::RateLimitPerMinute,
                    Column::AnalyticsSchedule,
                    Column::SearchEf,
                    Column::MaxMemories,
                    Column::InsightTtlHours,
                    Column::InsightMinConfidence,
                    Column::RateLimitBurst,
                    Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(true)
}
