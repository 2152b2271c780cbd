//! Creates the tenant tables of the original design with their checks, keys and indexes.

use sea_orm_migration::prelude::*;

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
        .col(
            ColumnDef::new(Users::UserId)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new(Users::Username)
                .string_len(128)
                .not_null()
                .unique_key(),
        )
        .col(
            ColumnDef::new(Users::Email)
                .string_len(320)
                .null()
                .unique_key(),
        )
        .col(
            ColumnDef::new(Users::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Users::LastActive)
                .timestamp_with_time_zone()
                .null(),
        )
        .col(ColumnDef::new(Users::Preferences).json_binary().not_null())
        .to_owned()
}

fn memories_table() -> TableCreateStatement {
    Table::create()
        .table(Memories::Table)
        .if_not_exists()
        .col(
            ColumnDef::new(Memories::MemoryId)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(Memories::Content).text().not_null().check(
            Expr::cust("length(trim(content)) > 0").and(Expr::cust(format!(
                "length(content) <= {MAX_CONTENT_CHARS}"
            ))),
        ))
        .col(
            ColumnDef::new(Memories::Category)
                .string_len(16)
                .not_null()
                .check(Expr::col(Memories::Category).is_in(CATEGORIES)),
        )
        // Little-endian f32s: the source of truth the vector store is rebuilt from.
        .col(ColumnDef::new(Memories::Embedding).blob().null())
        .col(ColumnDef::new(Memories::Metadata).json_binary().not_null())
        .col(
            ColumnDef::new(Memories::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Memories::UpdatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Memories::ConfidenceScore)
                .double()
                .not_null()
                .check(between_zero_and_one(Memories::ConfidenceScore)),
        )
        .col(
            ColumnDef::new(Memories::AccessCount)
                .big_integer()
                .not_null()
                .default(0)
                .check(Expr::col(Memories::AccessCount).gte(0)),
        )
        .col(ColumnDef::new(Memories::UserId).uuid().not_null())
        .col(
            ColumnDef::new(Memories::IsDeleted)
                .boolean()
                .not_null()
                .default(false),
        )
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
        .col(
            ColumnDef::new(MemoryRelationships::RelationshipId)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new(MemoryRelationships::SourceMemoryId)
                .uuid()
                .not_null(),
        )
        .col(
            ColumnDef::new(MemoryRelationships::TargetMemoryId)
                .uuid()
                .not_null(),
        )
        .col(
            ColumnDef::new(MemoryRelationships::RelationshipType)
                .string_len(16)
                .not_null()
                .check(Expr::col(MemoryRelationships::RelationshipType).is_in(RELATIONSHIP_TYPES)),
        )
        .col(
            ColumnDef::new(MemoryRelationships::Strength)
                .double()
                .not_null()
                .check(between_zero_and_one(MemoryRelationships::Strength)),
        )
        .col(ColumnDef::new(MemoryRelationships::Context).text().null())
        .col(
            ColumnDef::new(MemoryRelationships::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
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
        .col(
            ColumnDef::new(AnalyticsEvents::EventId)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new(AnalyticsEvents::EventType)
                .string_len(32)
                .not_null(),
        )
        .col(ColumnDef::new(AnalyticsEvents::UserId).uuid().null())
        .col(ColumnDef::new(AnalyticsEvents::MemoryId).uuid().null())
        .col(
            ColumnDef::new(AnalyticsEvents::EventData)
                .json_binary()
                .not_null(),
        )
        .col(
            ColumnDef::new(AnalyticsEvents::Timestamp)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(AnalyticsEvents::SessionId)
                .string_len(128)
                .null(),
        )
        .to_owned()
}

fn insights_table() -> TableCreateStatement {
    Table::create()
        .table(PredictiveInsights::Table)
        .if_not_exists()
        .col(
            ColumnDef::new(PredictiveInsights::InsightId)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new(PredictiveInsights::InsightType)
                .string_len(24)
                .not_null()
                .check(Expr::col(PredictiveInsights::InsightType).is_in(INSIGHT_TYPES)),
        )
        .col(
            ColumnDef::new(PredictiveInsights::Content)
                .text()
                .not_null(),
        )
        .col(
            ColumnDef::new(PredictiveInsights::Confidence)
                .double()
                .not_null()
                .check(between_zero_and_one(PredictiveInsights::Confidence)),
        )
        // A JSON array of memory ids: portable between PostgreSQL and SQLite.
        .col(
            ColumnDef::new(PredictiveInsights::SupportingMemories)
                .json_binary()
                .not_null(),
        )
        .col(
            ColumnDef::new(PredictiveInsights::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(PredictiveInsights::ExpiresAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(PredictiveInsights::ActionTaken)
                .boolean()
                .not_null()
                .default(false),
        )
        .col(ColumnDef::new(PredictiveInsights::UserId).uuid().null())
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
