//! A [`Provisioner`] that keeps tenants in memory, for reconcile scenarios that test what the
//! controllers decide rather than what the servers do. It follows the real one's rules: each
//! step reports what it had to create, a schema belongs to one tenant, a presented key is kept
//! while it is live, `Retain` revokes keys and `Delete` forgets the tenant. A failure can be
//! injected per step.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use memoryc_crds::api_key;
use sea_orm::DbErr;
use uuid::Uuid;

use super::ProvisionError;
use super::integrations::{IntegrationRecord, IntegrationState, RegisteredIntegration};
use super::milvus::{CollectionPlan, CollectionReport};
use super::postgres::{DatabaseReport, Registration};
use super::provisioner::Provisioner;
use crate::tenant::plan::TenantPlan;

/// A step that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Database,
    VectorStore,
}

#[derive(Debug, Clone)]
struct StoredTenant {
    tenant_id: Uuid,
    schema: String,
    password: String,
    /// Hashes of the live API keys.
    live_keys: BTreeSet<String>,
    can_log_in: bool,
}

#[derive(Default)]
struct State {
    tenants: HashMap<String, StoredTenant>,
    /// Schemas that exist, with the tenant owning each.
    schemas: HashMap<String, String>,
    collections: BTreeSet<String>,
    integrations: HashMap<(String, String), (Uuid, IntegrationRecord, IntegrationState)>,
    failing: HashMap<Step, String>,
}

#[derive(Default)]
pub struct InMemoryProvisioner {
    state: Mutex<State>,
}

impl InMemoryProvisioner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes every call of `step` fail with `message` until [`Self::heal`].
    pub fn fail(&self, step: Step, message: &str) {
        self.state().failing.insert(step, message.to_string());
    }

    pub fn heal(&self, step: Step) {
        self.state().failing.remove(&step);
    }

    /// Drops a schema behind the provisioner's back (drift).
    pub fn drop_schema(&self, schema: &str) {
        self.state().schemas.remove(schema);
    }

    /// Drops a collection behind the provisioner's back (drift).
    pub fn drop_collection(&self, collection: &str) {
        self.state().collections.remove(collection);
    }

    pub fn is_registered(&self, plan: &TenantPlan) -> bool {
        self.state().tenants.contains_key(plan.tenant.as_str())
    }

    pub fn can_log_in(&self, plan: &TenantPlan) -> bool {
        self.state()
            .tenants
            .get(plan.tenant.as_str())
            .is_some_and(|tenant| tenant.can_log_in)
    }

    /// The name of the tenant owning `schema`, if it exists.
    pub fn schema_owner(&self, schema: &str) -> Option<String> {
        self.state().schemas.get(schema).cloned()
    }

    pub fn schema_exists(&self, schema: &str) -> bool {
        self.state().schemas.contains_key(schema)
    }

    pub fn has_collection(&self, collection: &str) -> bool {
        self.state().collections.contains(collection)
    }

    /// Whether `key` is a live API key of the tenant.
    pub fn key_is_live(&self, plan: &TenantPlan, key: &str) -> bool {
        self.state()
            .tenants
            .get(plan.tenant.as_str())
            .is_some_and(|tenant| tenant.live_keys.contains(&api_key::hash(key)))
    }

    /// The tenant's login password, as last set.
    pub fn password(&self, plan: &TenantPlan) -> Option<String> {
        self.state()
            .tenants
            .get(plan.tenant.as_str())
            .map(|tenant| tenant.password.clone())
    }

    pub fn integration(&self, plan: &TenantPlan, name: &str) -> Option<IntegrationRecord> {
        self.state()
            .integrations
            .get(&(plan.tenant.to_string(), name.to_string()))
            .map(|(_, record, _)| record.clone())
    }

    /// Sets an integration's state, as the platform would after reaching the outside system.
    pub fn set_integration_state(&self, plan: &TenantPlan, name: &str, state: IntegrationState) {
        if let Some(entry) = self
            .state()
            .integrations
            .get_mut(&(plan.tenant.to_string(), name.to_string()))
        {
            entry.2 = state;
        }
    }

    /// The injected failure of `step`, as the real step would report it.
    fn check(state: &State, step: Step) -> Result<(), ProvisionError> {
        let Some(message) = state.failing.get(&step).cloned() else {
            return Ok(());
        };
        Err(match step {
            Step::Database => ProvisionError::Database(DbErr::Custom(message)),
            Step::VectorStore => ::milvus::v2::prelude::Error::Timeout(message).into(),
        })
    }
}

#[async_trait]
impl Provisioner for InMemoryProvisioner {
    async fn check_claims(&self, plan: &TenantPlan) -> Result<(), ProvisionError> {
        let state = self.state();
        Self::check(&state, Step::Database)?;
        match state.schemas.get(&plan.schema) {
            Some(owner) if owner != plan.tenant.as_str() => Err(ProvisionError::Conflict(format!(
                "schema {} is registered to tenant {owner}; choose another \
                 spec.storage.schemaName",
                plan.schema
            ))),
            _ => Ok(()),
        }
    }

    async fn provision(
        &self,
        plan: &TenantPlan,
        password: &str,
        password_current: bool,
        presented_key: Option<&str>,
    ) -> Result<(DatabaseReport, Registration), ProvisionError> {
        self.check_claims(plan).await?;
        let mut state = self.state();
        let mut report = DatabaseReport::default();
        let name = plan.tenant.to_string();
        let mut schemas = vec![&plan.schema];
        if plan.is_dedicated() {
            schemas.push(&plan.control_schema);
        }
        for schema in schemas {
            if !state.schemas.contains_key(schema.as_str()) {
                state.schemas.insert(schema.clone(), name.clone());
                report.schemas_created.push(schema.clone());
            }
        }
        let tenant = state.tenants.entry(name).or_insert_with(|| {
            report.role_created = true;
            report.tenant_registered = true;
            report.settings_applied = true;
            StoredTenant {
                tenant_id: Uuid::parse_str(&plan.uid).unwrap_or_else(|_| Uuid::now_v7()),
                schema: plan.schema.clone(),
                password: String::new(),
                live_keys: BTreeSet::new(),
                can_log_in: true,
            }
        });
        if !tenant.can_log_in {
            tenant.can_log_in = true;
            report.role_repaired = true;
        }
        if !password_current || tenant.password != password {
            tenant.password = password.to_string();
            report.password_set = true;
        }
        tenant.schema = plan.schema.clone();
        let kept = presented_key.filter(|key| tenant.live_keys.contains(&api_key::hash(key)));
        let api_key = match kept {
            Some(key) => key.to_string(),
            None => {
                let issued = api_key::generate();
                tenant.live_keys.clear();
                tenant.live_keys.insert(issued.hash);
                report.key_issued = true;
                issued.plaintext
            }
        };
        Ok((
            report,
            Registration {
                tenant_id: tenant.tenant_id,
                api_key,
            },
        ))
    }

    async fn ensure_collection(
        &self,
        plan: &CollectionPlan,
    ) -> Result<CollectionReport, ProvisionError> {
        let mut state = self.state();
        Self::check(&state, Step::VectorStore)?;
        let created = state.collections.insert(plan.collection.clone());
        Ok(CollectionReport {
            created,
            loaded: created,
        })
    }

    async fn retain(&self, plan: &TenantPlan) -> Result<(), ProvisionError> {
        let mut state = self.state();
        Self::check(&state, Step::Database)?;
        if let Some(tenant) = state.tenants.get_mut(plan.tenant.as_str()) {
            tenant.can_log_in = false;
            tenant.live_keys.clear();
        }
        Ok(())
    }

    async fn erase(
        &self,
        plan: &TenantPlan,
        collection: &CollectionPlan,
    ) -> Result<(), ProvisionError> {
        let mut state = self.state();
        Self::check(&state, Step::VectorStore)?;
        Self::check(&state, Step::Database)?;
        if plan.is_dedicated() {
            state.collections.remove(&collection.collection);
        }
        let name = plan.tenant.as_str();
        // Only the tenant's own schemas: a spec naming another's erases nothing of it.
        state.schemas.retain(|_, owner| owner != name);
        state.tenants.remove(name);
        state.integrations.retain(|(tenant, _), _| tenant != name);
        Ok(())
    }

    async fn register_integration(
        &self,
        plan: &TenantPlan,
        record: &IntegrationRecord,
    ) -> Result<Option<RegisteredIntegration>, ProvisionError> {
        let mut state = self.state();
        Self::check(&state, Step::Database)?;
        if !state.tenants.contains_key(plan.tenant.as_str()) {
            return Ok(None);
        }
        let key = (plan.tenant.to_string(), record.name.clone());
        let (id, observed) = state.integrations.get(&key).map_or_else(
            || (Uuid::now_v7(), IntegrationState::default()),
            |(id, _, observed)| (*id, observed.clone()),
        );
        state
            .integrations
            .insert(key, (id, record.clone(), observed.clone()));
        Ok(Some(RegisteredIntegration {
            id,
            state: observed,
        }))
    }

    async fn unregister_integration(
        &self,
        plan: &TenantPlan,
        name: &str,
    ) -> Result<(), ProvisionError> {
        let mut state = self.state();
        Self::check(&state, Step::Database)?;
        state
            .integrations
            .remove(&(plan.tenant.to_string(), name.to_string()));
        Ok(())
    }
}
