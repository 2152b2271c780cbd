//! The `predictive_insights` table of a tenant.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "predictive_insights")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub insight_id: Uuid,
    pub insight_type: String,
    pub content: String,
    pub confidence: f64,
    /// A JSON array of memory ids.
    pub supporting_memories: Json,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub action_taken: bool,
    pub user_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
