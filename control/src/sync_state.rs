//! Where an integration's synchronisation stands, on its `integrations` row: which pass it is
//! in, the cursor the pass goes on from, the outside object's id, when the next run is due, and
//! the lease of the replica running it (one at a time, whichever replica it is).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::entities::integration::{Column, Entity as Integrations};
use crate::integrations::Integration;

/// A sync's place, saved after every page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncProgress {
    /// Counts passes over the whole item list; items a finished pass did not see are gone.
    pub pass: i64,
    /// Where the pass goes on; `None` when the next run starts a new pass.
    pub cursor: Option<String>,
    /// The outside object's id (a GitHub project's node id), once read.
    pub external_id: Option<String>,
}

/// Integrations of `kind` whose next run is due at `now` (or was never planned), not paused
/// and not held by a running sync.
pub async fn due<C: ConnectionTrait>(
    db: &C,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Integration>, DbErr> {
    Ok(Integrations::find()
        .filter(Column::Kind.eq(kind))
        .filter(Column::Paused.eq(false))
        .filter(
            Condition::any()
                .add(Column::NextRunAt.is_null())
                .add(Column::NextRunAt.lte(now)),
        )
        .filter(not_held(now))
        .all(db)
        .await?
        .into_iter()
        .map(Integration::from)
        .collect())
}

fn not_held(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(Column::SyncLeaseUntil.is_null())
        .add(Column::SyncLeaseUntil.lt(now))
}

/// Takes the integration's sync until `lease_until`, with its progress; `None` when a running
/// sync holds it (or the integration is gone).
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    integration_id: Uuid,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<SyncProgress>, DbErr> {
    let taken = Integrations::update_many()
        .col_expr(Column::SyncLeaseUntil, Expr::value(lease_until))
        .filter(Column::IntegrationId.eq(integration_id))
        .filter(not_held(now))
        .exec(db)
        .await?;
    if taken.rows_affected == 0 {
        return Ok(None);
    }
    Ok(Integrations::find_by_id(integration_id)
        .one(db)
        .await?
        .map(|row| SyncProgress {
            pass: row.sync_pass,
            cursor: row.sync_cursor,
            external_id: row.external_id,
        }))
}

/// Saves the sync's place and keeps holding it until `lease_until`.
pub async fn save_progress<C: ConnectionTrait>(
    db: &C,
    integration_id: Uuid,
    progress: &SyncProgress,
    lease_until: DateTime<Utc>,
) -> Result<(), DbErr> {
    Integrations::update_many()
        .col_expr(Column::SyncPass, Expr::value(progress.pass))
        .col_expr(Column::SyncCursor, Expr::value(progress.cursor.clone()))
        .col_expr(
            Column::ExternalId,
            Expr::value(progress.external_id.clone()),
        )
        .col_expr(Column::SyncLeaseUntil, Expr::value(lease_until))
        .filter(Column::IntegrationId.eq(integration_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Lets go of the sync and plans the next run.
pub async fn release<C: ConnectionTrait>(
    db: &C,
    integration_id: Uuid,
    next_run_at: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    Integrations::update_many()
        .col_expr(
            Column::SyncLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(Column::NextRunAt, Expr::value(next_run_at))
        .filter(Column::IntegrationId.eq(integration_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Records an error in the integration's state without marking it disconnected (a sync paused
/// by a rate limit is connected, and says why it waits).
pub async fn note<C: ConnectionTrait>(
    db: &C,
    integration_id: Uuid,
    message: &str,
) -> Result<(), DbErr> {
    Integrations::update_many()
        .col_expr(Column::LastError, Expr::value(message.to_string()))
        .filter(Column::IntegrationId.eq(integration_id))
        .exec(db)
        .await?;
    Ok(())
}

/// How many items the integration has synchronised in all (its live items), set rather than
/// added: a sync counts what the board holds.
pub async fn set_items<C: ConnectionTrait>(
    db: &C,
    integration_id: Uuid,
    items: i64,
) -> Result<(), DbErr> {
    Integrations::update_many()
        .col_expr(Column::ItemsSynced, Expr::value(items))
        .filter(Column::IntegrationId.eq(integration_id))
        .exec(db)
        .await?;
    Ok(())
}
