//! The platform's record of a tenant's integrations, through the control plane
//! (`memoryc_control::integrations`), in the control schema of the platform that serves it.

use uuid::Uuid;

pub use memoryc_control::integrations::{IntegrationRecord, IntegrationState};

use super::ProvisionError;
use super::postgres::{Postgres, control_owner, is_undefined_table};
use crate::tenant::plan::TenantPlan;

/// An integration as recorded: its id and how the platform says it fares.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredIntegration {
    pub id: Uuid,
    pub state: IntegrationState,
}

impl Postgres {
    /// Inserts or updates the integration of the tenant; returns its id and state. `None` when
    /// the tenant is not registered (yet).
    pub async fn register_integration(
        &self,
        plan: &TenantPlan,
        record: &IntegrationRecord,
    ) -> Result<Option<RegisteredIntegration>, ProvisionError> {
        let transaction = self
            .scoped(control_owner(plan), &plan.control_schema)
            .await?;
        let Some(id) =
            memoryc_control::integrations::register(&transaction, plan.tenant.as_str(), record)
                .await?
        else {
            return Ok(None);
        };
        let state = memoryc_control::integrations::find_by_id(&transaction, id)
            .await?
            .map(|integration| integration.state)
            .unwrap_or_default();
        transaction.commit().await?;
        Ok(Some(RegisteredIntegration { id, state }))
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
        match memoryc_control::integrations::unregister(&transaction, plan.tenant.as_str(), name)
            .await
        {
            Ok(()) => Ok(transaction.commit().await?),
            Err(error) if is_undefined_table(&error) => Ok(()),
            Err(error) => Err(ProvisionError::Database(error)),
        }
    }
}
