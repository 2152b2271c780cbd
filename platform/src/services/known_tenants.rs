//! Tenants this replica resolved recently, by id (API keys) and by name (JWT claims).
//!
//! Every authenticated request resolves its tenant, and tenants rarely change, so an answer of
//! the control database is reused for a while. Only for a while: the operator deletes tenants,
//! and may create one again under the same name (a new tenant, with a new id), behind every
//! replica's back. A replica that kept the old record for good would go on serving a deleted
//! tenant, and would key the new tenant's cache entries and grants by the old tenant's id.

use std::sync::Arc;
use std::time::{Duration, Instant};

use memoryc_crds::layout::TenantName;
use quick_cache::sync::Cache;
use uuid::Uuid;

use crate::stores::{StoreError, Tenant, TenantRegistry};

/// Tenants kept per index; one past this many is looked up again.
const CAPACITY: usize = 10_000;

/// A tenant the control database returned, and until when that answer is used.
#[derive(Clone)]
struct Seen {
    tenant: Tenant,
    trusted_until: Instant,
}

pub struct KnownTenants {
    registry: Arc<dyn TenantRegistry>,
    by_id: Cache<Uuid, Seen>,
    by_name: Cache<TenantName, Seen>,
    trust_for: Duration,
}

impl KnownTenants {
    /// `trust_for`: how long a tenant is used without asking the control database again
    /// (zero asks every time). Tenants that do not exist are never remembered.
    pub fn new(registry: Arc<dyn TenantRegistry>, trust_for: Duration) -> Self {
        Self {
            registry,
            by_id: Cache::new(CAPACITY),
            by_name: Cache::new(CAPACITY),
            trust_for,
        }
    }

    pub async fn by_id(&self, tenant_id: Uuid) -> Result<Option<Tenant>, StoreError> {
        if let Some(tenant) = fresh(&self.by_id, &tenant_id) {
            return Ok(Some(tenant));
        }
        let tenant = self.registry.find_by_id(tenant_id).await?;
        self.remember(tenant.as_ref());
        Ok(tenant)
    }

    pub async fn by_name(&self, name: &TenantName) -> Result<Option<Tenant>, StoreError> {
        if let Some(tenant) = fresh(&self.by_name, name) {
            return Ok(Some(tenant));
        }
        let tenant = self.registry.find_by_name(name).await?;
        self.remember(tenant.as_ref());
        Ok(tenant)
    }

    /// Keeps the tenant under both its id and its name, so either lookup finds the same record.
    fn remember(&self, tenant: Option<&Tenant>) {
        let Some(tenant) = tenant else { return };
        if self.trust_for.is_zero() {
            return;
        }
        let seen = Seen {
            tenant: tenant.clone(),
            trusted_until: Instant::now() + self.trust_for,
        };
        self.by_id.insert(tenant.tenant_id, seen.clone());
        self.by_name.insert(tenant.name.clone(), seen);
    }
}

/// The kept tenant while it is still trusted; a stale one is dropped.
fn fresh<K>(cache: &Cache<K, Seen>, key: &K) -> Option<Tenant>
where
    K: Eq + std::hash::Hash + Clone,
{
    let seen = cache.get(key)?;
    if Instant::now() < seen.trusted_until {
        Some(seen.tenant)
    } else {
        cache.remove(key);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stores::relational::control_repository::SqlTenantRegistry;
    use crate::stores::relational::{Databases, RelationalConfig};
    use chrono::Utc;
    use memoryc_crds::layout::Isolation;

    async fn registry() -> (tempfile::TempDir, Arc<dyn TenantRegistry>) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let databases = Databases::connect(&RelationalConfig::Sqlite {
            dir: dir.path().to_path_buf(),
        })
        .await
        .expect("sqlite databases");
        (dir, Arc::new(SqlTenantRegistry::new(databases)))
    }

    fn tenant(name: &str) -> Tenant {
        Tenant {
            tenant_id: Uuid::now_v7(),
            name: TenantName::parse(name).expect("tenant name"),
            display_name: name.to_string(),
            isolation: Isolation::Shared,
            created_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_tenant_deleted_and_created_again_is_seen_once_its_trust_runs_out() {
        let (_dir, registry) = registry().await;
        let first = tenant("acme");
        registry.register(&first).await.expect("register");
        let brief = KnownTenants::new(registry.clone(), Duration::from_millis(100));
        let lasting = KnownTenants::new(registry.clone(), Duration::from_secs(600));
        let uncached = KnownTenants::new(registry.clone(), Duration::ZERO);
        for known in [&brief, &lasting, &uncached] {
            assert_eq!(
                known.by_name(&first.name).await.expect("lookup"),
                Some(first.clone())
            );
        }

        registry.remove(first.tenant_id).await.expect("remove");
        let second = tenant("acme");
        registry.register(&second).await.expect("register again");

        // The lasting cache still answers with the deleted tenant: the cache is what answers.
        assert_eq!(
            lasting.by_name(&first.name).await.expect("lookup"),
            Some(first.clone())
        );
        assert_eq!(
            lasting.by_id(first.tenant_id).await.expect("lookup"),
            Some(first.clone())
        );
        assert_eq!(
            uncached.by_name(&first.name).await.expect("lookup"),
            Some(second.clone())
        );
        assert_eq!(uncached.by_id(first.tenant_id).await.expect("lookup"), None);

        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(
            brief.by_name(&first.name).await.expect("lookup"),
            Some(second.clone())
        );
        assert_eq!(brief.by_id(first.tenant_id).await.expect("lookup"), None);
        assert_eq!(
            brief.by_id(second.tenant_id).await.expect("lookup"),
            Some(second)
        );
    }

    #[tokio::test]
    async fn unknown_tenants_are_not_remembered() {
        let (_dir, registry) = registry().await;
        let known = KnownTenants::new(registry.clone(), Duration::from_secs(600));
        let later = tenant("later");
        assert_eq!(known.by_name(&later.name).await.expect("lookup"), None);
        assert_eq!(known.by_id(later.tenant_id).await.expect("lookup"), None);
        registry.register(&later).await.expect("register");
        assert_eq!(
            known.by_name(&later.name).await.expect("lookup"),
            Some(later.clone())
        );
        assert_eq!(
            known.by_id(later.tenant_id).await.expect("lookup"),
            Some(later)
        );
    }
}
