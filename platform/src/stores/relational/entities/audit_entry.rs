//! The control schema's `audit_log` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub audit_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub subject: Option<String>,
    pub user_id: Option<Uuid>,
    pub roles: String,
    pub method: String,
    pub route: String,
    pub path: String,
    pub outcome: String,
    pub status: i32,
    pub detail: Option<Json>,
    pub occurred_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
