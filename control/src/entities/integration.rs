//! The control schema's `integrations` table: one row per IntegrationBinding. Credentials stay
//! in the Kubernetes Secret; the row names it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "integrations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub integration_id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub kind: String,
    pub settings: Json,
    pub secret_name: String,
    pub sync_schedule: Option<String>,
    pub paused: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
