//! Gives each integration its credential and its state: the platform acts on integrations now
//! (a webhook signs with its secret), and reports how each one fares (`connected`, the last
//! error, items synchronised). The credential is written by the operator from the binding's
//! Secret, or through the API on installations without the operator; it is never read back out
//! through the API.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use super::m20261124_000002_create_integrations::Integrations;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Added {
    Secret,
    Connected,
    LastError,
    LastSyncAt,
    ItemsSynced,
    NextRunAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one column at a time.
        for column in [
            text_null(Added::Secret),
            boolean_null(Added::Connected),
            text_null(Added::LastError),
            timestamp_with_time_zone_null(Added::LastSyncAt),
            big_integer(Added::ItemsSynced).default(0).to_owned(),
            timestamp_with_time_zone_null(Added::NextRunAt),
        ] {
            crate::add_column(manager, Integrations::Table, column).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Added::NextRunAt,
            Added::ItemsSynced,
            Added::LastSyncAt,
            Added::LastError,
            Added::Connected,
            Added::Secret,
        ] {
            crate::drop_column(manager, Integrations::Table, column).await?;
        }
        Ok(())
    }
}
