//! The `memory_history` table of a tenant.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "memory_history")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub history_id: Uuid,
    pub memory_id: Uuid,
    pub action: String,
    pub old_value: Option<Json>,
    pub new_value: Option<Json>,
    pub changed_by: Uuid,
    pub changed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
