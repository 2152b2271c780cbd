//! Creates the tenant tables of the original design with their checks, keys and indexes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
pub enum Users {
    Table,
    UserId,
    Username,
    Email,
    CreatedAt,
    LastActive,
    Preferences,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum Memories {
    Table,
    MemoryId,
    Content,
    Category,
    Embedding,
    Metadata,
    CreatedAt,
    UpdatedAt,
    ConfidenceScore,
    AccessCount,
    UserId,
    IsDeleted,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum MemoryRelationships {
    Table,
    RelationshipId,
    SourceMemoryId,
    TargetMemoryId,
    RelationshipType,
    Strength,
    Context,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum AnalyticsEvents {
    Table,
    EventId,
    EventType,
    UserId,
    MemoryId,
    EventData,
    Timestamp,
    SessionId,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum PredictiveInsights {
    Table,
    InsightId,
    InsightType,
    Content,
    Confidence,
    SupportingMemories,
    CreatedAt,
    ExpiresAt,
    ActionTaken,
    UserId,
}

/// Longest memory content in characters; mirrors the API limit so no path can bypass it.
const MAX_CONTENT_CHARS: i64 = 50_000;
const CATEGORIES: [&str; 4] = ["TECHNICAL", "WORKFLOW", "PREFERENCE", "PROJECT"];
const RELATIONSHIP_TYPES: [&str; 4] = ["SIMILAR", "CONTRADICTS", "BUILDS_ON", "REFERENCES"];
const INSIGHT_TYPES: [&str; 3] = ["PATTERN", "RECOMMENDATION", "RISK_ASSESSMENT"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(users_table()).await?;
        manager.create_table(memories_table()).await?;
        manager.create_table(relationships_table()).await?;
        manager.create_table(events_table()).await?;
        manager.create_table(insights_table()).await?;
        for index in indexes() {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PredictiveInsights::Table.into_iden(),
            AnalyticsEvents::Table.into_iden(),
            MemoryRelationships::Table.into_iden(),
            Memories::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

fn between_zero_and_one<T: IntoIden + Copy + 'static>(column: T) -> SimpleExpr {
    Expr::col(column).gte(0.0).and(Expr::col(column).lte(1.0))
}

fn users_table() -> TableCreateStatement {
    Table::create()
        .table(Users::Table)
        .if_not_exists()
        .col(uuid(Users::UserId).primary_key())
        .col(string_len(Users::Username, 128).unique_key())
        .col(string_len_null(Users::Email, 320).unique_key())
        .col(timestamp_with_time_zone(Users::CreatedAt))
        .col(timestamp_with_time_zone_null(Users::LastActive))
        .col(json_binary(Users::Preferences))
        .to_owned()
}

fn memories_table() -> TableCreateStatement {
    Table::create()
        .table(Memories::Table)
        .if_not_exists()
        .col(uuid(Memories::MemoryId).primary_key())
        .col(
            text(Memories::Content).check(Expr::cust("length(trim(content)) > 0").and(Expr::cust(
                format!("length(content) <= {MAX_CONTENT_CHARS}"),
            ))),
        )
        .col(
            string_len(Memories::Category, 16)
                .check(Expr::col(Memories::Category).is_in(CATEGORIES)),
        )
        // Little-endian f32s: the source of truth the vector store is rebuilt from.
        .col(blob_null(Memories::Embedding))
        .col(json_binary(Memories::Metadata))
        .col(timestamp_with_time_zone(Memories::CreatedAt))
        .col(timestamp_with_time_zone(Memories::UpdatedAt))
        .col(
            double(Memories::ConfidenceScore)
                .check(between_zero_and_one(Memories::ConfidenceScore)),
        )
        .col(
            big_integer(Memories::AccessCount)
                .default(0)
                .check(Expr::col(Memories::AccessCount).gte(0)),
        )
        .col(uuid(Memories::UserId))
        .col(boolean(Memories::IsDeleted).default(false))
        .foreign_key(
            ForeignKey::create()
                .name("fk_memories_user")
                .from(Memories::Table, Memories::UserId)
                .to(Users::Table, Users::UserId),
        )
        .to_owned()
}

fn relationships_table() -> TableCreateStatement {
    Table::create()
        .table(MemoryRelationships::Table)
        .if_not_exists()
        .col(uuid(MemoryRelationships::RelationshipId).primary_key())
        .col(uuid(MemoryRelationships::SourceMemoryId))
        .col(uuid(MemoryRelationships::TargetMemoryId))
        .col(
            string_len(MemoryRelationships::RelationshipType, 16)
                .check(Expr::col(MemoryRelationships::RelationshipType).is_in(RELATIONSHIP_TYPES)),
        )
        .col(
            double(MemoryRelationships::Strength)
                .check(between_zero_and_one(MemoryRelationships::Strength)),
        )
        .col(text_null(MemoryRelationships::Context))
        .col(timestamp_with_time_zone(MemoryRelationships::CreatedAt))
        .check(Expr::cust("source_memory_id <> target_memory_id"))
        .index(
            Index::create()
                .name("uq_relationship")
                .col(MemoryRelationships::SourceMemoryId)
                .col(MemoryRelationships::TargetMemoryId)
                .col(MemoryRelationships::RelationshipType)
                .unique(),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_relationship_source")
                .from(
                    MemoryRelationships::Table,
                    MemoryRelationships::SourceMemoryId,
                )
                .to(Memories::Table, Memories::MemoryId)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_relationship_target")
                .from(
                    MemoryRelationships::Table,
                    MemoryRelationships::TargetMemoryId,
                )
                .to(Memories::Table, Memories::MemoryId)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

fn events_table() -> TableCreateStatement {
    Table::create()
        .table(AnalyticsEvents::Table)
        .if_not_exists()
        .col(uuid(AnalyticsEvents::EventId).primary_key())
        .col(string_len(AnalyticsEvents::EventType, 32))
        .col(uuid_null(AnalyticsEvents::UserId))
        .col(uuid_null(AnalyticsEvents::MemoryId))
        .col(json_binary(AnalyticsEvents::EventData))
        .col(timestamp_with_time_zone(AnalyticsEvents::Timestamp))
        .col(string_len_null(AnalyticsEvents::SessionId, 128))
        .to_owned()
}

fn insights_table() -> TableCreateStatement {
    Table::create()
        .table(PredictiveInsights::Table)
        .if_not_exists()
        .col(uuid(PredictiveInsights::InsightId).primary_key())
        .col(
            string_len(PredictiveInsights::InsightType, 24)
                .check(Expr::col(PredictiveInsights::InsightType).is_in(INSIGHT_TYPES)),
        )
        .col(text(PredictiveInsights::Content))
        .col(
            double(PredictiveInsights::Confidence)
                .check(between_zero_and_one(PredictiveInsights::Confidence)),
        )
        // A JSON array of memory ids: portable between PostgreSQL and SQLite.
        .col(json_binary(PredictiveInsights::SupportingMemories))
        .col(timestamp_with_time_zone(PredictiveInsights::CreatedAt))
        .col(timestamp_with_time_zone(PredictiveInsights::ExpiresAt))
        .col(boolean(PredictiveInsights::ActionTaken).default(false))
        .col(uuid_null(PredictiveInsights::UserId))
        .check(Expr::cust("expires_at > created_at"))
        .to_owned()
}

fn indexes() -> Vec<IndexCreateStatement> {
    let index = |name: &str| Index::create().name(name).if_not_exists().to_owned();
    vec![
        index("idx_memories_user")
            .table(Memories::Table)
            .col(Memories::UserId)
            .to_owned(),
        index("idx_memories_category")
            .table(Memories::Table)
            .col(Memories::Category)
            .to_owned(),
        index("idx_memories_live_created")
            .table(Memories::Table)
            .col(Memories::IsDeleted)
            .col(Memories::CreatedAt)
            .to_owned(),
        index("idx_relationships_target")
            .table(MemoryRelationships::Table)
            .col(MemoryRelationships::TargetMemoryId)
            .to_owned(),
        index("idx_events_timestamp")
            .table(AnalyticsEvents::Table)
            .col(AnalyticsEvents::Timestamp)
            .to_owned(),
        index("idx_events_type_timestamp")
            .table(AnalyticsEvents::Table)
            .col(AnalyticsEvents::EventType)
            .col(AnalyticsEvents::Timestamp)
            .to_owned(),
        index("idx_events_memory")
            .table(AnalyticsEvents::Table)
            .col(AnalyticsEvents::MemoryId)
            .to_owned(),
        index("idx_insights_type_expiry")
            .table(PredictiveInsights::Table)
            .col(PredictiveInsights::InsightType)
            .col(PredictiveInsights::ExpiresAt)
            .to_owned(),
    ]
}
