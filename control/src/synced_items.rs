//! Which item of an outside system became which memory (`integration_items`): looked up to
//! update a memory in place, to skip an item that did not change, and to find the memories of
//! items a finished pass no longer saw.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::entities::integration_item::{self, Column, Entity as Items};

pub use integration_item::Model as SyncedItem;

/// The integration's records of these items (those it has).
pub async fn find_many<C: ConnectionTrait>(
    db: &C,
    integration_id: Uuid,
    item_ids: &[String],
) -> Result<Vec<SyncedItem>, DbErr> {
    if item_ids.is_empty() {
        return Ok(Vec::new());
    }
    Items::find()
        .filter(Column::IntegrationId.eq(integration_id))
        .filter(Column::ItemId.is_in(item_ids.iter().cloned()))
        .all(db)
        .await
}

/// The integration's items showing this content (an issue or pull request may sit on a board
/// once; the list allows for more).
pub async fn find_by_content<C: ConnectionTrait>(
    db: &C,
    integration_id: Uuid,
    content_id: &str,
) -> Result<Vec<SyncedItem>, DbErr> {
    Items::find()
        .filter(Column::IntegrationId.eq(integration_id))
        .filter(Column::ContentId.eq(content_id))
        .all(db)
        .await
}

/// Writes the item's record, replacing the one there was.
pub async fn save<C: ConnectionTrait>(db: &C, item: &SyncedItem) -> Result<(), DbErr> {
    let row = integration_item::ActiveModel::from(item.clone());
    Items::insert(row)
        .on_conflict(
            OnConflict::columns([Column::IntegrationId, Column::ItemId])
                .update_columns([
                    Column::ContentId,
                    Column::MemoryId,
                    Column::Fingerprint,
                    Column::ItemUpdatedAt,
                    Column::SeenPass,
                    Column::Removed,
                    Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Marks items as seen by `pass` (they did not change).
pub async fn mark_seen<C: ConnectionTrait>(
    db: &C,
    integration_id: Uuid,
    item_ids: &[String],
    pass: i64,
) -> Result<(), DbErr> {
    if item_ids.is_empty() {
        return Ok(());
    }
    Items::update_many()
        .col_expr(Column::SeenPass, Expr::value(pass))
        .filter(Column::IntegrationId.eq(integration_id))
        .filter(Column::ItemId.is_in(item_ids.iter().cloned()))
        .exec(db)
        .await?;
    Ok(())
}

/// Live items that `pass` did not see: removed from the board since.
pub async fn unseen<C: ConnectionTrait>(
    db: &C,
    integration_id: Uuid,
    pass: i64,
) -> Result<Vec<SyncedItem>, DbErr> {
    Items::find()
        .filter(Column::IntegrationId.eq(integration_id))
        .filter(Column::Removed.eq(false))
        .filter(Column::SeenPass.lt(pass))
        .order_by_asc(Column::ItemId)
        .all(db)
        .await
}

/// Marks an item removed (its memory was deleted).
pub async fn mark_removed<C: ConnectionTrait>(
    db: &C,
    integration_id: Uuid,
    item_id: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    Items::update_many()
        .col_expr(Column::Removed, Expr::value(true))
        .col_expr(Column::UpdatedAt, Expr::value(at))
        .filter(Column::IntegrationId.eq(integration_id))
        .filter(Column::ItemId.eq(item_id))
        .exec(db)
        .await?;
    Ok(())
}

/// How many of the integration's items are live.
pub async fn count_live<C: ConnectionTrait>(db: &C, integration_id: Uuid) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    Items::find()
        .filter(Column::IntegrationId.eq(integration_id))
        .filter(Column::Removed.eq(false))
        .count(db)
        .await
}
