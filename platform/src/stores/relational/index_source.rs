//! [`IndexSource`] on the tenants' memory tables: what the embedded vector index is rebuilt from.
//!
//! The same statements serve SQLite and PostgreSQL, each run as the tenant (see
//! [`Databases::tenant_transaction`]), so a tenant's index can only ever be filled from that
//! tenant's rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use memoryc_crds::layout::TenantName;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::Databases;
use super::codec::decode_embedding;
use super::entities::memory::{Column, Entity as Memories};
use crate::stores::StoreError;
use crate::stores::vector::{
    IndexSource, PointVersion, VectorPoint, VectorStoreError, point_version,
};

/// Ids per `IN` list: far below either database's bound-parameter limit.
const IDS_PER_STATEMENT: usize = 1_000;

/// A memory row as far as its point needs it: id, category, embedding, user, created and
/// updated at, and whether it is deleted.
type PointRow = (
    Uuid,
    String,
    Option<Vec<u8>>,
    Uuid,
    DateTime<Utc>,
    DateTime<Utc>,
    bool,
);

/// The live memories with an embedding of each tenant, as vector points.
#[derive(Clone)]
pub struct SqlIndexSource {
    databases: Databases,
}

impl SqlIndexSource {
    pub fn new(databases: Databases) -> Self {
        Self { databases }
    }

    async fn read_versions(&self, tenant: &TenantName) -> Result<Vec<PointVersion>, StoreError> {
        let transaction = self.databases.tenant_transaction(tenant).await?;
        let rows: Vec<(Uuid, DateTime<Utc>)> = Memories::find()
            .select_only()
            .columns([Column::MemoryId, Column::UpdatedAt])
            .filter(Column::IsDeleted.eq(false))
            .filter(Column::Embedding.is_not_null())
            .into_tuple::<(Uuid, DateTime<Utc>)>()
            .all(&transaction)
            .await?;
        transaction.commit().await?;
        Ok(rows
            .into_iter()
            .map(|(memory_id, updated_at)| PointVersion {
                memory_id,
                version: point_version(&updated_at),
            })
            .collect())
    }

    async fn read_points(
        &self,
        tenant: &TenantName,
        ids: &[Uuid],
    ) -> Result<Vec<VectorPoint>, StoreError> {
        let mut points = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let transaction = self.databases.tenant_transaction(tenant).await?;
            // Only the primary key in SQL: with `is_deleted` beside it SQLite would rather scan
            // the live-rows index (see `find_live`). Deleted rows are dropped below.
            let rows: Vec<PointRow> = Memories::find()
                .select_only()
                .columns([
                    Column::MemoryId,
                    Column::Category,
                    Column::Embedding,
                    Column::UserId,
                    Column::CreatedAt,
                    Column::UpdatedAt,
                    Column::IsDeleted,
                ])
                .filter(Column::MemoryId.is_in(chunk.iter().copied()))
                .into_tuple::<PointRow>()
                .all(&transaction)
                .await?;
            transaction.commit().await?;
            points.extend(rows.into_iter().filter_map(to_point));
        }
        Ok(points)
    }
}

/// The row's point; `None` for a row the index must not hold (deleted, no embedding) or whose
/// embedding cannot be read, which no sync could index either.
fn to_point(row: PointRow) -> Option<VectorPoint> {
    let (memory_id, category, embedding, user_id, created_at, updated_at, is_deleted) = row;
    if is_deleted {
        return None;
    }
    let vector = match decode_embedding(embedding.as_deref()?) {
        Ok(vector) => vector,
        Err(error) => {
            tracing::warn!(%memory_id, %error, "memory's embedding is unreadable; leaving it out of the vector index");
            return None;
        }
    };
    Some(VectorPoint {
        memory_id,
        vector,
        category,
        user_id,
        created_at_ms: created_at.timestamp_millis(),
        version: point_version(&updated_at),
    })
}

/// A tenant without storage has no points; any other failure means the source cannot answer.
fn unless_unknown<T: Default>(read: Result<T, StoreError>) -> Result<T, VectorStoreError> {
    match read {
        Ok(found) => Ok(found),
        Err(StoreError::UnknownTenant(_)) => Ok(T::default()),
        Err(error) => Err(VectorStoreError::Source(error.to_string())),
    }
}

#[async_trait]
impl IndexSource for SqlIndexSource {
    async fn versions(&self, tenant: &TenantName) -> Result<Vec<PointVersion>, VectorStoreError> {
        unless_unknown(self.read_versions(tenant).await)
    }

    async fn points(
        &self,
        tenant: &TenantName,
        ids: &[Uuid],
    ) -> Result<Vec<VectorPoint>, VectorStoreError> {
        unless_unknown(self.read_points(tenant, ids).await)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use chrono::Duration;
    use sea_orm::sea_query::Expr;

    use super::*;
    use crate::domain::{Category, MemoryPatch, NewMemory};
    use crate::stores::relational::RelationalConfig;
    use crate::stores::relational::control_repository::SqlTenantRegistry;
    use crate::stores::relational::memory_repository::SqlMemoryRepository;
    use crate::stores::{MemoryRepository, TenantRegistry, TenantUser};

    struct Fixture {
        _dir: tempfile::TempDir,
        databases: Databases,
        memories: SqlMemoryRepository,
    }

    async fn fixture(tenants: &[&TenantName]) -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let databases = Databases::connect(&RelationalConfig::Sqlite {
            dir: dir.path().to_path_buf(),
        })
        .await
        .expect("sqlite databases");
        for tenant in tenants {
            databases.provision_tenant(tenant).await.expect("provision");
        }
        Fixture {
            _dir: dir,
            memories: SqlMemoryRepository::new(databases.clone()),
            databases,
        }
    }

    fn name(value: &str) -> TenantName {
        TenantName::parse(value).expect("tenant name")
    }

    fn vector(seed: usize) -> Vec<f32> {
        (0..8).map(|i| (seed * 8 + i) as f32 / 100.0).collect()
    }

    async fn add_user(databases: &Databases, tenant: &TenantName) -> Uuid {
        let user = TenantUser {
            user_id: Uuid::now_v7(),
            username: format!("user-{}", Uuid::now_v7().simple()),
            email: None,
        };
        SqlTenantRegistry::new(databases.clone())
            .create_user(tenant, &user)
            .await
            .expect("user");
        user.user_id
    }

    async fn insert(
        fixture: &Fixture,
        tenant: &TenantName,
        user_id: Uuid,
        seed: usize,
        category: Category,
    ) -> Uuid {
        let memory_id = Uuid::now_v7();
        let new = NewMemory {
            memory_id,
            content: format!("memory number {seed}"),
            category,
            confidence_score: 1.0,
            metadata: serde_json::json!({}),
            embedding: vector(seed),
            user_id,
            created_at: Utc::now() - Duration::minutes(seed as i64),
        };
        fixture.memories.insert(tenant, &new).await.expect("insert");
        memory_id
    }

    /// A live row without an embedding, which no write path makes today but the index must
    /// still leave out.
    async fn drop_embedding(databases: &Databases, tenant: &TenantName, memory_id: Uuid) {
        let transaction = databases
            .tenant_write_transaction(tenant)
            .await
            .expect("transaction");
        Memories::update_many()
            .col_expr(Column::Embedding, Expr::value(Option::<Vec<u8>>::None))
            .filter(Column::MemoryId.eq(memory_id))
            .exec(&transaction)
            .await
            .expect("update");
        transaction.commit().await.expect("commit");
    }

    #[tokio::test]
    async fn the_source_lists_and_returns_exactly_the_tenants_live_embedded_memories() {
        let (acme, globex) = (name("acme"), name("globex"));
        let fixture = fixture(&[&acme, &globex]).await;
        let alice = add_user(&fixture.databases, &acme).await;
        let bob = add_user(&fixture.databases, &globex).await;
        let kept = insert(&fixture, &acme, alice, 1, Category::Technical).await;
        let edited = insert(&fixture, &acme, alice, 2, Category::Technical).await;
        let deleted = insert(&fixture, &acme, alice, 3, Category::Workflow).await;
        let bare = insert(&fixture, &acme, alice, 4, Category::Project).await;
        let foreign = insert(&fixture, &globex, bob, 5, Category::Technical).await;
        let later = Utc::now() + Duration::seconds(5);
        let patch = MemoryPatch {
            content: Some("memory number two, edited".to_string()),
            embedding: Some(vector(20)),
            category: Some((Category::Preference, 0.9)),
            metadata: None,
        };
        let updated = fixture
            .memories
            .update(&acme, edited, &patch, alice, later)
            .await
            .expect("update")
            .expect("live memory");
        assert!(
            fixture
                .memories
                .soft_delete(&acme, deleted, alice, later)
                .await
                .expect("delete")
        );
        drop_embedding(&fixture.databases, &acme, bare).await;
        let source = SqlIndexSource::new(fixture.databases.clone());

        let versions = source.versions(&acme).await.expect("versions");
        let points = source
            .points(
                &acme,
                &[kept, edited, deleted, bare, foreign, Uuid::now_v7()],
            )
            .await
            .expect("points");

        let listed: HashMap<Uuid, i64> = versions
            .iter()
            .map(|point| (point.memory_id, point.version))
            .collect();
        assert_eq!(
            listed.keys().copied().collect::<HashSet<_>>(),
            HashSet::from([kept, edited]),
            "live rows with an embedding of this tenant only"
        );
        assert_eq!(listed[&edited], point_version(&updated.updated_at));
        let kept_row = fixture
            .memories
            .find(&acme, kept)
            .await
            .expect("find")
            .expect("stored");
        assert_eq!(listed[&kept], point_version(&kept_row.updated_at));
        assert_ne!(listed[&edited], listed[&kept]);

        let by_id: HashMap<Uuid, &VectorPoint> = points
            .iter()
            .map(|point| (point.memory_id, point))
            .collect();
        assert_eq!(
            by_id.keys().copied().collect::<HashSet<_>>(),
            HashSet::from([kept, edited]),
            "another tenant's id, deleted and unknown ids are left out"
        );
        let edited_point = by_id[&edited];
        assert_eq!(edited_point.vector, vector(20));
        assert_eq!(edited_point.category, "PREFERENCE");
        assert_eq!(edited_point.user_id, alice);
        assert_eq!(edited_point.version, listed[&edited]);
        assert_eq!(
            edited_point.created_at_ms,
            updated.created_at.timestamp_millis()
        );
        assert_eq!(by_id[&kept].vector, vector(1));
        assert_eq!(by_id[&kept].category, "TECHNICAL");

        let other = source.versions(&globex).await.expect("versions");
        assert_eq!(
            other
                .iter()
                .map(|point| point.memory_id)
                .collect::<Vec<_>>(),
            vec![foreign]
        );
        let none_of_theirs = source
            .points(&globex, &[kept, edited])
            .await
            .expect("points");
        assert!(none_of_theirs.is_empty(), "{none_of_theirs:?}");
    }

    #[tokio::test]
    async fn a_tenant_without_storage_has_no_points() {
        let fixture = fixture(&[]).await;
        let source = SqlIndexSource::new(fixture.databases.clone());
        let ghost = name("ghost");

        assert!(source.versions(&ghost).await.expect("versions").is_empty());
        assert!(
            source
                .points(&ghost, &[Uuid::now_v7()])
                .await
                .expect("points")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn points_are_fetched_across_several_statements() {
        let acme = name("acme");
        let fixture = fixture(&[&acme]).await;
        let alice = add_user(&fixture.databases, &acme).await;
        let mut ids = Vec::new();
        for seed in 0..(IDS_PER_STATEMENT + 5) {
            ids.push(insert(&fixture, &acme, alice, seed, Category::Technical).await);
        }
        let source = SqlIndexSource::new(fixture.databases.clone());

        let points = source.points(&acme, &ids).await.expect("points");

        assert_eq!(
            points
                .iter()
                .map(|point| point.memory_id)
                .collect::<HashSet<_>>(),
            ids.iter().copied().collect::<HashSet<_>>()
        );
    }
}
