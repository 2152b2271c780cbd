//! The `memory_relationships` table of a tenant.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "memory_relationships")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub relationship_id: Uuid,
    pub source_memory_id: Uuid,
    pub target_memory_id: Uuid,
    pub relationship_type: String,
    pub strength: f64,
    pub context: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
