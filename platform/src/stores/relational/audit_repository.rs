//! [`AuditStore`] on the control table `audit_log`.

use async_trait::async_trait;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::Databases;
use super::codec::clip;
use super::entities::audit_entry::{self, Column, Entity as AuditLog};
use crate::stores::{AuditEntry, AuditOutcome, AuditStore, StoreError};

#[derive(Clone)]
pub struct SqlAuditStore {
    databases: Databases,
}

impl SqlAuditStore {
    pub fn new(databases: Databases) -> Self {
        Self { databases }
    }
}

#[async_trait]
impl AuditStore for SqlAuditStore {
    async fn append(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        AuditLog::insert_many(entries.iter().map(to_row))
            .exec_without_returning(self.databases.control())
            .await?;
        Ok(())
    }

    async fn page(
        &self,
        tenant_id: Uuid,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut query = AuditLog::find().filter(Column::TenantId.eq(tenant_id));
        if let Some(before) = before {
            query = query.filter(Column::AuditId.lt(before));
        }
        let rows = query
            .order_by_desc(Column::AuditId)
            .limit(limit)
            .all(self.databases.control())
            .await?;
        rows.into_iter().map(to_entry).collect()
    }
}

fn to_row(entry: &AuditEntry) -> audit_entry::ActiveModel {
    audit_entry::ActiveModel {
        audit_id: Set(entry.audit_id),
        tenant_id: Set(entry.tenant_id),
        subject: Set(entry.subject.as_deref().map(|s| clip(s, 160))),
        user_id: Set(entry.user_id),
        roles: Set(clip(&entry.roles.join(","), 256)),
        method: Set(clip(&entry.method, 8)),
        route: Set(clip(&entry.route, 160)),
        path: Set(clip(&entry.path, 512)),
        outcome: Set(entry.outcome.as_str().to_string()),
        status: Set(i32::from(entry.status)),
        detail: Set(entry.detail.clone()),
        occurred_at: Set(entry.occurred_at),
    }
}

fn to_entry(row: audit_entry::Model) -> Result<AuditEntry, StoreError> {
    let outcome = AuditOutcome::parse(&row.outcome)
        .ok_or_else(|| StoreError::Corrupt(format!("audit outcome {:?}", row.outcome)))?;
    Ok(AuditEntry {
        audit_id: row.audit_id,
        tenant_id: row.tenant_id,
        subject: row.subject,
        user_id: row.user_id,
        roles: row
            .roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect(),
        method: row.method,
        route: row.route,
        path: row.path,
        outcome,
        status: u16::try_from(row.status).unwrap_or_default(),
        detail: row.detail,
        occurred_at: row.occurred_at,
    })
}
