//! Each PostgreSQL tenant's registration as the control tables hold it (its schema and the
//! login the shared platform uses for it), remembered for a while.
//!
//! Every tenant statement needs both, so the registration is not read each time. Only for a
//! while, though: the operator may delete a tenant and create it again under the same name with
//! another `spec.storage.schemaName` (and another login password), and a replica that kept the
//! old registration for good would send that tenant's statements to a dropped schema until it
//! restarted.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use memoryc_crds::layout::TenantName;

use super::tenant_sessions::PlatformLogin;

/// Where a tenant's statements go and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Registration {
    pub(super) schema: String,
    /// The tenant's own platform login; `None` where the platform acts as the tenant through
    /// its own login (a Dedicated platform logs in as its tenant).
    pub(super) login: Option<PlatformLogin>,
}

struct Remembered {
    registration: Registration,
    trusted_until: Instant,
}

pub(super) struct Registrations {
    known: RwLock<HashMap<TenantName, Remembered>>,
    trust_for: Duration,
}

impl Registrations {
    /// `trust_for`: how long a registration is used before it is read again (zero reads it for
    /// every statement).
    pub(super) fn new(trust_for: Duration) -> Self {
        Self {
            known: RwLock::new(HashMap::new()),
            trust_for,
        }
    }

    /// The tenant's registration while it is still trusted.
    pub(super) fn get(&self, tenant: &TenantName) -> Option<Registration> {
        let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
        known
            .get(tenant)
            .filter(|remembered| Instant::now() < remembered.trusted_until)
            .map(|remembered| remembered.registration.clone())
    }

    pub(super) fn remember(&self, tenant: &TenantName, registration: &Registration) {
        if self.trust_for.is_zero() {
            return;
        }
        let remembered = Remembered {
            registration: registration.clone(),
            trusted_until: Instant::now() + self.trust_for,
        };
        self.known
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tenant.clone(), remembered);
    }

    pub(super) fn forget(&self, tenant: &TenantName) {
        self.known
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(schema: &str) -> Registration {
        Registration {
            schema: schema.to_string(),
            login: None,
        }
    }

    #[test]
    fn a_registration_is_used_until_its_trust_runs_out() {
        let tenant = TenantName::parse("acme").expect("name");
        let brief = Registrations::new(Duration::from_millis(50));
        let never = Registrations::new(Duration::ZERO);
        assert_eq!(brief.get(&tenant), None);
        brief.remember(&tenant, &at("acme_data"));
        never.remember(&tenant, &at("acme_data"));
        assert_eq!(brief.get(&tenant), Some(at("acme_data")));
        assert_eq!(never.get(&tenant), None, "zero trust keeps nothing");
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(brief.get(&tenant), None);
        brief.remember(&tenant, &at("acme_v2"));
        assert_eq!(brief.get(&tenant), Some(at("acme_v2")));
        brief.forget(&tenant);
        assert_eq!(brief.get(&tenant), None);
    }
}
