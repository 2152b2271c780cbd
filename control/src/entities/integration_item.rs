//! The control schema's `integration_items` table: which item of an outside system (a GitHub
//! project item) became which memory, and what it looked like when last written.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "integration_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub integration_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub item_id: String,
    pub content_id: Option<String>,
    pub memory_id: Uuid,
    pub fingerprint: String,
    pub item_updated_at: DateTimeUtc,
    pub seen_pass: i64,
    pub removed: bool,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
