//! Each PostgreSQL tenant's schema as its registration names it, remembered for a while.
//!
//! Every tenant statement needs its schema, so the registration is not read each time. Only
//! for a while, though: the operator may delete a tenant and create it again under the same
//! name with another `spec.storage.schemaName`, and a replica that kept the old name for good
//! would send that tenant's statements to a dropped schema until it restarted.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use memoryc_crds::layout::TenantName;

struct Remembered {
    schema: String,
    trusted_until: Instant,
}

pub(super) struct RegisteredSchemas {
    known: RwLock<HashMap<TenantName, Remembered>>,
    trust_for: Duration,
}

impl RegisteredSchemas {
    /// `trust_for`: how long a schema is used before the registration is read again (zero
    /// reads it for every statement).
    pub(super) fn new(trust_for: Duration) -> Self {
        Self {
            known: RwLock::new(HashMap::new()),
            trust_for,
        }
    }

    /// The tenant's schema while it is still trusted.
    pub(super) fn get(&self, tenant: &TenantName) -> Option<String> {
        let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
        known
            .get(tenant)
            .filter(|remembered| Instant::now() < remembered.trusted_until)
            .map(|remembered| remembered.schema.clone())
    }

    pub(super) fn remember(&self, tenant: &TenantName, schema: &str) {
        if self.trust_for.is_zero() {
            return;
        }
        let remembered = Remembered {
            schema: schema.to_string(),
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

    #[test]
    fn a_schema_is_used_until_its_trust_runs_out() {
        let tenant = TenantName::parse("acme").expect("name");
        let brief = RegisteredSchemas::new(Duration::from_millis(50));
        let never = RegisteredSchemas::new(Duration::ZERO);
        assert_eq!(brief.get(&tenant), None);
        brief.remember(&tenant, "acme_data");
        never.remember(&tenant, "acme_data");
        assert_eq!(brief.get(&tenant).as_deref(), Some("acme_data"));
        assert_eq!(never.get(&tenant), None, "zero trust keeps nothing");
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(brief.get(&tenant), None);
        brief.remember(&tenant, "acme_v2");
        assert_eq!(brief.get(&tenant).as_deref(), Some("acme_v2"));
        brief.forget(&tenant);
        assert_eq!(brief.get(&tenant), None);
    }
}
