//! Webhook deliveries in the control table `webhook_deliveries`: written before they are sent,
//! claimed by one dispatcher at a time (several replicas may run one each), retried until
//! delivered or out of attempts.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TryInsertResult,
};
use uuid::Uuid;

use crate::entities::webhook_delivery::{self, Column, Entity as Deliveries};

pub use webhook_delivery::Model as Delivery;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its first attempt, or for a retry someone asked for.
    Pending,
    /// The last attempt failed; another is due at `next_attempt_at`.
    Failed,
    Delivered,
    /// Out of attempts; only an explicit retry sends it again.
    Dead,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 4] = [Self::Pending, Self::Failed, Self::Delivered, Self::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Failed => "failed",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }
}

/// A delivery to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub delivery_id: Uuid,
    pub tenant_id: Uuid,
    pub integration_id: Uuid,
    pub event_id: Uuid,
    pub memory_id: Option<Uuid>,
    pub event_type: String,
    pub payload: String,
}

/// Writes deliveries due at once; one already written for the same integration and event is
/// left as it is. How many were new.
pub async fn enqueue<C: ConnectionTrait>(
    db: &C,
    deliveries: &[NewDelivery],
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let rows = deliveries.iter().map(|new| webhook_delivery::ActiveModel {
        delivery_id: sea_orm::Set(new.delivery_id),
        tenant_id: sea_orm::Set(new.tenant_id),
        integration_id: sea_orm::Set(new.integration_id),
        event_id: sea_orm::Set(new.event_id),
        memory_id: sea_orm::Set(new.memory_id),
        event_type: sea_orm::Set(new.event_type.clone()),
        payload: sea_orm::Set(new.payload.clone()),
        status: sea_orm::Set(DeliveryStatus::Pending.as_str().to_string()),
        attempts: sea_orm::Set(0),
        next_attempt_at: sea_orm::Set(now),
        last_attempt_at: sea_orm::Set(None),
        last_response_status: sea_orm::Set(None),
        last_error: sea_orm::Set(None),
        created_at: sea_orm::Set(now),
        delivered_at: sea_orm::Set(None),
    });
    let inserted = Deliveries::insert_many(rows)
        .on_conflict_do_nothing_on([Column::IntegrationId, Column::EventId])
        .exec_without_returning(db)
        .await?;
    Ok(match inserted {
        TryInsertResult::Inserted(count) => count,
        _ => 0,
    })
}

/// Deliveries waiting for an attempt that is due by `now`, soonest first.
pub async fn due<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Delivery>, DbErr> {
    Deliveries::find()
        .filter(Column::Status.is_in([
            DeliveryStatus::Pending.as_str(),
            DeliveryStatus::Failed.as_str(),
        ]))
        .filter(Column::NextAttemptAt.lte(now))
        .order_by_asc(Column::NextAttemptAt)
        .limit(limit)
        .all(db)
        .await
}

/// Takes a due delivery for one attempt by moving its next attempt to `lease_until`: of several
/// dispatchers that read it as due, exactly one succeeds. False when another took it first.
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    delivery_id: Uuid,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let claimed = Deliveries::update_many()
        .col_expr(Column::NextAttemptAt, Expr::value(lease_until))
        .filter(Column::DeliveryId.eq(delivery_id))
        .filter(Column::Status.is_in([
            DeliveryStatus::Pending.as_str(),
            DeliveryStatus::Failed.as_str(),
        ]))
        .filter(Column::NextAttemptAt.lte(now))
        .exec(db)
        .await?;
    Ok(claimed.rows_affected == 1)
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered {
        response_status: i32,
    },
    /// Failed; tried again at `retry_at`, or dead-lettered when `None`.
    Failed {
        response_status: Option<i32>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
}

/// Records an attempt of a claimed delivery.
pub async fn record_attempt<C: ConnectionTrait>(
    db: &C,
    delivery_id: Uuid,
    attempt: &Attempt,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let update = Deliveries::update_many()
        .filter(Column::DeliveryId.eq(delivery_id))
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .col_expr(Column::LastAttemptAt, Expr::value(at));
    let update = match attempt {
        Attempt::Delivered { response_status } => update
            .col_expr(
                Column::Status,
                Expr::value(DeliveryStatus::Delivered.as_str()),
            )
            .col_expr(Column::LastResponseStatus, Expr::value(*response_status))
            .col_expr(Column::LastError, Expr::value(Option::<String>::None))
            .col_expr(Column::DeliveredAt, Expr::value(at)),
        Attempt::Failed {
            response_status,
            error,
            retry_at,
        } => {
            let (status, next) = match retry_at {
                Some(retry_at) => (DeliveryStatus::Failed, *retry_at),
                None => (DeliveryStatus::Dead, at),
            };
            update
                .col_expr(Column::Status, Expr::value(status.as_str()))
                .col_expr(Column::NextAttemptAt, Expr::value(next))
                .col_expr(Column::LastResponseStatus, Expr::value(*response_status))
                .col_expr(Column::LastError, Expr::value(error.clone()))
        }
    };
    update.exec(db).await?;
    Ok(())
}

/// One integration's deliveries, newest first, optionally of one status, older than `before`
/// (a delivery id from the previous page).
pub async fn list<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    integration_id: Uuid,
    status: Option<DeliveryStatus>,
    before: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Delivery>, DbErr> {
    let mut query = Deliveries::find()
        .filter(Column::TenantId.eq(tenant_id))
        .filter(Column::IntegrationId.eq(integration_id));
    if let Some(status) = status {
        query = query.filter(Column::Status.eq(status.as_str()));
    }
    if let Some(before) = before {
        query = query.filter(Column::DeliveryId.lt(before));
    }
    query
        .order_by_desc(Column::DeliveryId)
        .limit(limit)
        .all(db)
        .await
}

/// The delivery, if it belongs to the tenant's integration.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    integration_id: Uuid,
    delivery_id: Uuid,
) -> Result<Option<Delivery>, DbErr> {
    Deliveries::find_by_id(delivery_id)
        .filter(Column::TenantId.eq(tenant_id))
        .filter(Column::IntegrationId.eq(integration_id))
        .one(db)
        .await
}

/// Queues a failed or dead delivery again, due now, with a fresh budget of attempts. False when
/// it is no longer failed or dead (delivered meanwhile, or queued already).
pub async fn requeue<C: ConnectionTrait>(
    db: &C,
    delivery_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let queued = Deliveries::update_many()
        .col_expr(
            Column::Status,
            Expr::value(DeliveryStatus::Pending.as_str()),
        )
        .col_expr(Column::Attempts, Expr::value(0))
        .col_expr(Column::NextAttemptAt, Expr::value(now))
        .filter(Column::DeliveryId.eq(delivery_id))
        .filter(Column::Status.is_in([
            DeliveryStatus::Failed.as_str(),
            DeliveryStatus::Dead.as_str(),
        ]))
        .exec(db)
        .await?;
    Ok(queued.rows_affected == 1)
}

/// Erases the deliveries that show a memory (it is being erased), sent or not.
pub async fn erase_memory<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    memory_id: Uuid,
) -> Result<u64, DbErr> {
    let erased = Deliveries::delete_many()
        .filter(Column::TenantId.eq(tenant_id))
        .filter(Column::MemoryId.eq(memory_id))
        .exec(db)
        .await?;
    Ok(erased.rows_affected)
}

/// Removes delivered and dead deliveries written before `before`; how many.
pub async fn prune<C: ConnectionTrait>(db: &C, before: DateTime<Utc>) -> Result<u64, DbErr> {
    let pruned = Deliveries::delete_many()
        .filter(Column::Status.is_in([
            DeliveryStatus::Delivered.as_str(),
            DeliveryStatus::Dead.as_str(),
        ]))
        .filter(Column::CreatedAt.lt(before))
        .exec(db)
        .await?;
    Ok(pruned.rows_affected)
}
