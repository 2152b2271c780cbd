//! The control schema's `tenant_settings` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    pub pii_policy: Option<String>,
    pub rate_limit_per_minute: Option<i32>,
    pub analytics_schedule: Option<String>,
    pub search_ef: Option<i32>,
    pub max_memories: Option<i64>,
    pub insight_ttl_hours: Option<i32>,
    pub insight_min_confidence: Option<f64>,
    pub rate_limit_burst: Option<i32>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
