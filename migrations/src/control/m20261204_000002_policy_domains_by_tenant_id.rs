//! Casbin domains of tenant rules become the tenant's id instead of its name: a tenant deleted
//! and created again under the same name is another tenant, and none of the old one's grants
//! may apply to it. Rewrites `g` rules (domain in v2) and `p` rules (domain in v1) of every
//! registered tenant; rules of names no longer registered belonged to deleted tenants and go.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::prelude::Uuid;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

use super::m20261124_000001_create_control_tables::Tenants;
use super::m20261125_000001_create_policy_rules::PolicyRules;

#[derive(DeriveMigrationName)]
pub struct Migration;

struct Registered {
    tenant_id: Uuid,
    name: String,
}

/// Every registered tenant's id and name.
async fn registered<C: ConnectionTrait>(
    db: &C,
    backend: DatabaseBackend,
) -> Result<Vec<Registered>, DbErr> {
    let select = Query::select()
        .columns([Tenants::TenantId, Tenants::Name])
        .from(Tenants::Table)
        .to_owned();
    db.query_all_raw(backend.build(&select))
        .await?
        .into_iter()
        .map(|row| {
            Ok(Registered {
                tenant_id: row.try_get_by_index(0)?,
                name: row.try_get_by_index(1)?,
            })
        })
        .collect()
}

/// Domains that are no tenant: every tenant (`*`) and the platform operators'.
const SHARED_DOMAINS: [&str; 2] = ["*", "_platform"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        let registered = registered(db, backend).await?;
        let mut kept: Vec<String> = SHARED_DOMAINS.iter().map(|d| String::from(*d)).collect();
        for tenant in registered {
            let id = tenant.tenant_id.to_string();
            for (ptype, column) in [("g", PolicyRules::V2), ("p", PolicyRules::V1)] {
                let update = Query::update()
                    .table(PolicyRules::Table)
                    .value(column, id.clone())
                    .and_where(Expr::col(PolicyRules::Ptype).like(format!("{ptype}%")))
                    .and_where(Expr::col(column).eq(tenant.name.clone()))
                    .to_owned();
                db.execute_raw(backend.build(&update)).await?;
            }
            kept.push(id);
        }
        for (ptype, column) in [("g", PolicyRules::V2), ("p", PolicyRules::V1)] {
            let delete = Query::delete()
                .from_table(PolicyRules::Table)
                .and_where(Expr::col(PolicyRules::Ptype).like(format!("{ptype}%")))
                .and_where(Expr::col(column).is_not_in(kept.clone()))
                .to_owned();
            db.execute_raw(backend.build(&delete)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        for tenant in registered(db, backend).await? {
            for column in [PolicyRules::V2, PolicyRules::V1] {
                let update = Query::update()
                    .table(PolicyRules::Table)
                    .value(column, tenant.name.clone())
                    .and_where(Expr::col(column).eq(tenant.tenant_id.to_string()))
                    .to_owned();
                db.execute_raw(backend.build(&update)).await?;
            }
        }
        Ok(())
    }
}
