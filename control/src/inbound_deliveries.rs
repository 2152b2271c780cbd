//! Deliveries an outside system sent that were handled (`inbound_deliveries`): GitHub sends
//! each webhook delivery with an id (`X-GitHub-Delivery`) and redelivers it on request or after
//! a failure; one seen before changes nothing.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, TryInsertResult};
use uuid::Uuid;

use crate::entities::inbound_delivery::{self, Column, Entity as Deliveries};

/// Records the delivery; false when it was recorded before (a redelivery).
pub async fn record<C: ConnectionTrait>(
    db: &C,
    integration_id: Uuid,
    delivery_id: &str,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let row = inbound_delivery::ActiveModel {
        integration_id: sea_orm::Set(integration_id),
        delivery_id: sea_orm::Set(delivery_id.to_string()),
        received_at: sea_orm::Set(at),
    };
    let inserted = Deliveries::insert_many([row])
        .on_conflict_do_nothing_on([Column::IntegrationId, Column::DeliveryId])
        .exec_without_returning(db)
        .await?;
    Ok(match inserted {
        TryInsertResult::Inserted(rows) => rows > 0,
        _ => false,
    })
}

/// Forgets the delivery, so that GitHub's redelivery of one that could not be handled is.
pub async fn forget<C: ConnectionTrait>(
    db: &C,
    integration_id: Uuid,
    delivery_id: &str,
) -> Result<(), DbErr> {
    Deliveries::delete_many()
        .filter(Column::IntegrationId.eq(integration_id))
        .filter(Column::DeliveryId.eq(delivery_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Removes records received before `before`.
pub async fn prune<C: ConnectionTrait>(db: &C, before: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(Deliveries::delete_many()
        .filter(Column::ReceivedAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}
