//! Tenant registration: the `tenants` row that tells a platform where a tenant's data lives.
//! Removing it takes the tenant's policy rules and queued vector syncs along; API keys,
//! settings and integrations go with the row (`ON DELETE CASCADE`).

use chrono::{DateTime, Utc};
use memoryc_crds::layout::{Isolation, TenantName};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use crate::entities::{outbox, policy_rule, tenant};

/// Where a tenant's data lives, as its registration records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration<'a> {
    pub name: &'a TenantName,
    pub display_name: &'a str,
    pub isolation: Isolation,
    pub schema_name: &'a str,
    pub collection_name: &'a str,
}

/// What [`ensure`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub tenant_id: Uuid,
    /// The row was inserted now (rather than adopted).
    pub created: bool,
}

/// Registers a tenant that is not registered yet under `tenant_id`. A second registration of the
/// name fails on the table's unique constraint.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
    registration: &Registration<'_>,
    created_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    active(tenant_id, registration, created_at)
        .insert(db)
        .await?;
    Ok(())
}

/// Registers the tenant, or adopts the row already registered under its name (by an earlier
/// reconcile, or kept by `Retain`) with its id, writing only what differs. A new row gets
/// `proposed_id`.
pub async fn ensure<C: ConnectionTrait>(
    db: &C,
    proposed_id: Uuid,
    registration: &Registration<'_>,
) -> Result<Registered, DbErr> {
    let Some(existing) = find_by_name(db, registration.name.as_str()).await? else {
        insert(db, proposed_id, registration, Utc::now()).await?;
        return Ok(Registered {
            tenant_id: proposed_id,
            created: true,
        });
    };
    let tenant_id = existing.tenant_id;
    let wanted = tenant::Model {
        tenant_id,
        name: existing.name.clone(),
        display_name: registration.display_name.to_string(),
        isolation: registration.isolation.as_str().to_string(),
        schema_name: registration.schema_name.to_string(),
        collection_name: registration.collection_name.to_string(),
        created_at: existing.created_at,
    };
    if wanted != existing {
        let mut row = existing.into_active_model();
        row.display_name = Set(wanted.display_name);
        row.isolation = Set(wanted.isolation);
        row.schema_name = Set(wanted.schema_name);
        row.collection_name = Set(wanted.collection_name);
        row.update(db).await?;
    }
    Ok(Registered {
        tenant_id,
        created: false,
    })
}

pub async fn find_by_name<C: ConnectionTrait>(
    db: &C,
    name: &str,
) -> Result<Option<tenant::Model>, DbErr> {
    tenant::Entity::find()
        .filter(tenant::Column::Name.eq(name))
        .one(db)
        .await
}

pub async fn find_by_id<C: ConnectionTrait>(
    db: &C,
    tenant_id: Uuid,
) -> Result<Option<tenant::Model>, DbErr> {
    tenant::Entity::find_by_id(tenant_id).one(db).await
}

/// Every registered tenant, by name.
pub async fn list<C: ConnectionTrait>(db: &C) -> Result<Vec<tenant::Model>, DbErr> {
    tenant::Entity::find()
        .order_by_asc(tenant::Column::Name)
        .all(db)
        .await
}

/// The name of a tenant other than `except` whose data is registered in `schema`, if any.
pub async fn registered_to_schema<C: ConnectionTrait>(
    db: &C,
    schema: &str,
    except: &str,
) -> Result<Option<String>, DbErr> {
    Ok(tenant::Entity::find()
        .filter(tenant::Column::SchemaName.eq(schema))
        .filter(tenant::Column::Name.ne(except))
        .one(db)
        .await?
        .map(|row| row.name))
}

/// Unregisters the tenant in one transaction: its policy rules (grants and extra permissions,
/// which name it by id), its queued vector syncs, then its row. A tenant registered later under
/// the same name starts with none of them.
pub async fn unregister<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    registered: &tenant::Model,
) -> Result<(), DbErr> {
    use policy_rule::Column;
    let domain = registered.tenant_id.to_string();
    let transaction = db.begin().await?;
    policy_rule::Entity::delete_many()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(Column::Ptype.like("g%"))
                        .add(Column::V2.eq(domain.clone())),
                )
                .add(
                    Condition::all()
                        .add(Column::Ptype.like("p%"))
                        .add(Column::V1.eq(domain)),
                ),
        )
        .exec(&transaction)
        .await?;
    outbox::Entity::delete_many()
        .filter(outbox::Column::TenantName.eq(registered.name.as_str()))
        .exec(&transaction)
        .await?;
    tenant::Entity::delete_by_id(registered.tenant_id)
        .exec(&transaction)
        .await?;
    transaction.commit().await
}

fn active(
    tenant_id: Uuid,
    registration: &Registration<'_>,
    created_at: DateTime<Utc>,
) -> tenant::ActiveModel {
    tenant::ActiveModel {
        tenant_id: Set(tenant_id),
        name: Set(registration.name.to_string()),
        display_name: Set(registration.display_name.to_string()),
        isolation: Set(registration.isolation.as_str().to_string()),
        schema_name: Set(registration.schema_name.to_string()),
        collection_name: Set(registration.collection_name.to_string()),
        created_at: Set(created_at),
    }
}
