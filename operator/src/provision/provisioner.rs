//! Provisioning behind one trait, so the controllers decide *what* to do without knowing the
//! servers that do it: [`Backends`] (PostgreSQL and Milvus) in the operator, an in-memory
//! stand-in in the reconcile scenarios that need no server.

use async_trait::async_trait;

use super::ProvisionError;
use super::integrations::{IntegrationRecord, RegisteredIntegration};
use super::milvus::{CollectionPlan, CollectionReport, Milvus};
use super::postgres::{DatabaseReport, Postgres, Registration};
use crate::tenant::plan::TenantPlan;

/// A tenant's storage and registration, and its integrations' records. Every step checks
/// before it changes, so repeating one completes what is missing and changes nothing else.
#[async_trait]
pub trait Provisioner: Send + Sync {
    /// Refuses, before anything is changed, a tenant whose names reach what is not its own
    /// ([`ProvisionError::Conflict`]).
    async fn check_claims(&self, plan: &TenantPlan) -> Result<(), ProvisionError>;

    /// The tenant's roles, schemas, tables and registration. `password_current` says the login
    /// already has `password`; `presented_key` is the API key found in the Secret, kept while it
    /// is valid.
    async fn provision(
        &self,
        plan: &TenantPlan,
        password: &str,
        password_current: bool,
        presented_key: Option<&str>,
    ) -> Result<(DatabaseReport, Registration), ProvisionError>;

    /// The tenant's vector collection (or its place in the shared one), indexed and loaded.
    async fn ensure_collection(
        &self,
        plan: &CollectionPlan,
    ) -> Result<CollectionReport, ProvisionError>;

    /// `deletionPolicy: Retain`: data and registration stay; logins and API keys stop working.
    async fn retain(&self, plan: &TenantPlan) -> Result<(), ProvisionError>;

    /// `deletionPolicy: Delete`: the tenant's vectors, schemas, registration and roles go.
    async fn erase(
        &self,
        plan: &TenantPlan,
        collection: &CollectionPlan,
    ) -> Result<(), ProvisionError>;

    /// Records an integration of a registered tenant; its id and state, `None` while the tenant
    /// is not registered.
    async fn register_integration(
        &self,
        plan: &TenantPlan,
        record: &IntegrationRecord,
    ) -> Result<Option<RegisteredIntegration>, ProvisionError>;

    /// Removes an integration's record; nothing to do when it or its tenant is gone.
    async fn unregister_integration(
        &self,
        plan: &TenantPlan,
        name: &str,
    ) -> Result<(), ProvisionError>;
}

/// The real servers: PostgreSQL for roles, schemas and the control plane, Milvus for vectors.
pub struct Backends {
    pub postgres: Postgres,
    pub milvus: Milvus,
}

#[async_trait]
impl Provisioner for Backends {
    async fn check_claims(&self, plan: &TenantPlan) -> Result<(), ProvisionError> {
        self.postgres.check_claims(plan).await
    }

    async fn provision(
        &self,
        plan: &TenantPlan,
        password: &str,
        password_current: bool,
        presented_key: Option<&str>,
    ) -> Result<(DatabaseReport, Registration), ProvisionError> {
        self.postgres
            .provision(plan, password, password_current, presented_key)
            .await
    }

    async fn ensure_collection(
        &self,
        plan: &CollectionPlan,
    ) -> Result<CollectionReport, ProvisionError> {
        self.milvus.ensure_collection(plan).await
    }

    async fn retain(&self, plan: &TenantPlan) -> Result<(), ProvisionError> {
        self.postgres.retain(plan).await
    }

    async fn erase(
        &self,
        plan: &TenantPlan,
        collection: &CollectionPlan,
    ) -> Result<(), ProvisionError> {
        self.milvus.erase(collection).await?;
        self.postgres.erase(plan).await
    }

    async fn register_integration(
        &self,
        plan: &TenantPlan,
        record: &IntegrationRecord,
    ) -> Result<Option<RegisteredIntegration>, ProvisionError> {
        self.postgres.register_integration(plan, record).await
    }

    async fn unregister_integration(
        &self,
        plan: &TenantPlan,
        name: &str,
    ) -> Result<(), ProvisionError> {
        self.postgres.unregister_integration(plan, name).await
    }
}
