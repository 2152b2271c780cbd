//! The platform's record of a tenant's integrations (control table `integrations`). Credentials
//! stay in the Kubernetes Secret; the row names it.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

use super::ProvisionError;
use super::postgres::Postgres;
use crate::tenant::plan::TenantPlan;

/// One IntegrationBinding as the platform stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationRecord {
    pub name: String,
    pub kind: String,
    pub settings: serde_json::Value,
    pub secret_name: String,
    pub sync_schedule: Option<String>,
    pub paused: bool,
}

impl Postgres {
    /// Inserts or updates the integration of the tenant; returns its id. `None` when the tenant
    /// is not registered (yet).
    pub async fn register_integration(
        &self,
        plan: &TenantPlan,
        record: &IntegrationRecord,
    ) -> Result<Option<Uuid>, ProvisionError> {
        let transaction = self
            .scoped(control_owner(plan), &plan.control_schema)
            .await?;
        let row = transaction
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO integrations (integration_id, tenant_id, name, kind, settings, \
                 secret_name, sync_schedule, paused, created_at, updated_at) \
                 SELECT $1, tenant_id, $3, $4, $5, $6, $7, $8, now(), now() FROM tenants WHERE name = $2 \
                 ON CONFLICT (tenant_id, name) DO UPDATE SET kind = EXCLUDED.kind, \
                 settings = EXCLUDED.settings, secret_name = EXCLUDED.secret_name, \
                 sync_schedule = EXCLUDED.sync_schedule, paused = EXCLUDED.paused, updated_at = now() \
                 WHERE (integrations.kind, integrations.settings, integrations.secret_name, \
                 integrations.sync_schedule, integrations.paused) IS DISTINCT FROM \
                 (EXCLUDED.kind, EXCLUDED.settings, EXCLUDED.secret_name, EXCLUDED.sync_schedule, EXCLUDED.paused) \
                 RETURNING integration_id",
                [
                    Uuid::now_v7().into(),
                    plan.tenant.to_string().into(),
                    record.name.clone().into(),
                    record.kind.clone().into(),
                    record.settings.clone().into(),
                    record.secret_name.clone().into(),
                    record.sync_schedule.clone().into(),
                    record.paused.into(),
                ],
            ))
            .await
            .map_err(ProvisionError::Database)?;
        // No row back: unchanged (read its id) or the tenant is not registered.
        let id = match row {
            Some(row) => Some(
                row.try_get_by_index::<Uuid>(0)
                    .map_err(ProvisionError::Database)?,
            ),
            None => transaction
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT i.integration_id FROM integrations i JOIN tenants t USING (tenant_id) \
                     WHERE t.name = $1 AND i.name = $2",
                    [plan.tenant.to_string().into(), record.name.clone().into()],
                ))
                .await
                .map_err(ProvisionError::Database)?
                .map(|row| row.try_get_by_index::<Uuid>(0))
                .transpose()
                .map_err(ProvisionError::Database)?,
        };
        transaction
            .commit()
            .await
            .map_err(ProvisionError::Database)?;
        Ok(id)
    }

    /// Removes the integration; nothing to do when it or its tenant is gone.
    pub async fn unregister_integration(
        &self,
        plan: &TenantPlan,
        name: &str,
    ) -> Result<(), ProvisionError> {
        if !self.schema_exists(&plan.control_schema).await? {
            return Ok(());
        }
        let transaction = self.scoped(None, &plan.control_schema).await?;
        let deleted = transaction
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "DELETE FROM integrations WHERE name = $2 AND tenant_id IN \
                 (SELECT tenant_id FROM tenants WHERE name = $1)",
                [plan.tenant.to_string().into(), name.into()],
            ))
            .await;
        match deleted {
            Ok(_) => transaction.commit().await.map_err(ProvisionError::Database),
            Err(error) if error.to_string().contains("does not exist") => Ok(()),
            Err(error) => Err(ProvisionError::Database(error)),
        }
    }
}

fn control_owner(plan: &TenantPlan) -> Option<&str> {
    plan.is_dedicated().then_some(plan.role.as_str())
}
