//! API keys of a tenant: issuing them with a role and an optional expiry, listing them (public
//! prefix only), revoking them, and resolving a presented key to its [`Principal`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use quick_cache::sync::Cache;
use uuid::Uuid;

use super::ServiceError;
use super::known_tenants::KnownTenants;
use crate::auth::{Credential, Principal, Role, api_key};
use crate::domain::validation::InputError;
use crate::stores::{StoredApiKey, Tenant, TenantRegistry};

/// Longest key name.
const MAX_KEY_NAME_CHARS: usize = 128;
/// Verified keys kept; a key past this many is looked up again.
const VERIFIED_KEYS: usize = 100_000;

/// A key to issue.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub user_id: Uuid,
    pub name: String,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A freshly issued key: the only time its plaintext exists outside the caller.
#[derive(Debug, Clone)]
pub struct IssuedApiKey {
    pub key: StoredApiKey,
    pub plaintext: String,
}

/// A key the database confirmed, and until when that answer is trusted.
#[derive(Clone)]
struct VerifiedKey {
    principal: Principal,
    key_id: Uuid,
    expires_at: Option<DateTime<Utc>>,
    trusted_until: Instant,
}

pub struct ApiKeyService {
    registry: Arc<dyn TenantRegistry>,
    tenants: Arc<KnownTenants>,
    /// Keyed by the presented key's hash (never its plaintext). Only keys that verified are
    /// kept, so guessing keys cannot fill it.
    verified: Cache<String, VerifiedKey>,
    trust_for: Duration,
    /// Bumped by every revocation: a lookup that raced one does not cache what it read.
    revocations: AtomicU64,
}

impl ApiKeyService {
    /// `trust_for`: how long a verified key is used without asking the database again
    /// (zero asks every time).
    pub fn new(
        registry: Arc<dyn TenantRegistry>,
        tenants: Arc<KnownTenants>,
        trust_for: Duration,
    ) -> Self {
        Self {
            registry,
            tenants,
            verified: Cache::new(VERIFIED_KEYS),
            trust_for,
            revocations: AtomicU64::new(0),
        }
    }

    pub async fn issue(
        &self,
        tenant: &Tenant,
        new: NewApiKey,
    ) -> Result<IssuedApiKey, ServiceError> {
        let name = new.name.trim();
        if name.is_empty() {
            return Err(InputError::Blank { field: "name" }.into());
        }
        if name.chars().count() > MAX_KEY_NAME_CHARS {
            return Err(InputError::TooLarge {
                field: "name",
                actual: name.chars().count(),
                limit: MAX_KEY_NAME_CHARS,
                unit: "characters",
            }
            .into());
        }
        if !new.role.is_tenant_role() {
            return Err(InputError::Invalid {
                field: "role",
                reason: format!("{} cannot be given to a tenant's key", new.role),
            }
            .into());
        }
        let now = Utc::now();
        if new.expires_at.is_some_and(|at| at <= now) {
            return Err(InputError::Invalid {
                field: "expires_at",
                reason: "must be in the future".to_string(),
            }
            .into());
        }
        let issued = api_key::generate();
        let key = StoredApiKey {
            key_id: Uuid::now_v7(),
            tenant_id: tenant.tenant_id,
            user_id: new.user_id,
            name: name.to_string(),
            prefix: issued.prefix,
            key_hash: issued.hash,
            role: new.role.as_str().to_string(),
            created_at: now,
            expires_at: new.expires_at,
            revoked_at: None,
        };
        self.registry.insert_api_key(&key).await?;
        Ok(IssuedApiKey {
            key,
            plaintext: issued.plaintext,
        })
    }

    /// The tenant's keys, newest first, revoked and expired ones included.
    pub async fn list(&self, tenant: &Tenant) -> Result<Vec<StoredApiKey>, ServiceError> {
        Ok(self.registry.list_api_keys(tenant.tenant_id).await?)
    }

    /// Revokes one of the tenant's keys; keys of other tenants are "not found". The key stops
    /// working on this replica at once.
    pub async fn revoke(&self, tenant: &Tenant, key_id: Uuid) -> Result<(), ServiceError> {
        if self
            .registry
            .revoke_api_key(tenant.tenant_id, key_id, Utc::now())
            .await?
        {
            self.revocations.fetch_add(1, Ordering::SeqCst);
            self.verified
                .retain(|_, verified| verified.key_id != key_id);
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("API key {key_id}")))
        }
    }

    /// The principal behind a presented API key, or `None` when the key is not valid.
    /// Revocation and expiry are read from the database, at most `trust_for` ago; expiry is
    /// also checked on every call.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Principal>, ServiceError> {
        let Some(prefix) = api_key::prefix_of(presented) else {
            return Ok(None);
        };
        let presented_hash = api_key::hash(presented);
        let now = Utc::now();
        if let Some(principal) = self.trusted(&presented_hash, now) {
            return Ok(Some(principal));
        }
        let revocations = self.revocations.load(Ordering::SeqCst);
        let Some(key) = self.registry.find_api_key(prefix).await? else {
            return Ok(None);
        };
        if !api_key::verify(
            presented,
            &key.key_hash,
            key.expires_at,
            key.revoked_at,
            now,
        ) {
            return Ok(None);
        }
        let Some(tenant) = self.tenants.by_id(key.tenant_id).await? else {
            return Ok(None);
        };
        let principal = Principal {
            user_id: key.user_id,
            tenant: Some(tenant),
            roles: vec![key.role],
            credential: Credential::ApiKey {
                key_id: key.key_id,
                prefix: key.prefix,
            },
        };
        if !self.trust_for.is_zero() {
            self.verified.insert(
                presented_hash.clone(),
                VerifiedKey {
                    principal: principal.clone(),
                    key_id: key.key_id,
                    expires_at: key.expires_at,
                    trusted_until: Instant::now() + self.trust_for,
                },
            );
            // A revocation since the lookup may have missed the entry just added.
            if self.revocations.load(Ordering::SeqCst) != revocations {
                self.verified.remove(&presented_hash);
            }
        }
        Ok(Some(principal))
    }

    /// The principal of a key verified recently enough and not expired since.
    fn trusted(&self, presented_hash: &str, now: DateTime<Utc>) -> Option<Principal> {
        let verified = self.verified.get(presented_hash)?;
        let fresh = Instant::now() < verified.trusted_until
            && verified.expires_at.is_none_or(|at| now < at);
        if fresh {
            Some(verified.principal)
        } else {
            self.verified.remove(presented_hash);
            None
        }
    }
}
