//! Turning a presented credential (an API key or a bearer JWT) into a [`Principal`].

use std::sync::Arc;

use memoryc_crds::layout::TenantName;
use quick_cache::sync::Cache;
use uuid::Uuid;

use super::ServiceError;
use super::api_keys::ApiKeyService;
use super::known_tenants::KnownTenants;
use super::tenant_service::TenantService;
use crate::auth::jwt::JwtVerifier;
use crate::auth::role::is_valid_role_name;
use crate::auth::{Credential, Principal, Role};
use crate::stores::{Tenant, TenantUser};

/// Namespace of the user ids derived from JWT subjects that are not UUIDs.
const JWT_SUBJECT_NAMESPACE: Uuid = Uuid::from_u128(0x6d656d6f_7279_4300_8a75_74686a777473);
/// JWT users already known to exist, so their first request is the only one that writes.
const KNOWN_USERS: usize = 100_000;

/// Why a credential was refused. Deliberately coarse: callers learn nothing about which part
/// of a credential was wrong.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("no credential was presented")]
    Missing,
    #[error("the credential is not valid")]
    Invalid,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

pub struct Authenticator {
    keys: Arc<ApiKeyService>,
    tenants: Arc<TenantService>,
    jwt: Option<JwtVerifier>,
    known_users: Cache<(Uuid, Uuid), ()>,
    known_tenants: Arc<KnownTenants>,
}

impl Authenticator {
    pub fn new(
        keys: Arc<ApiKeyService>,
        tenants: Arc<TenantService>,
        known_tenants: Arc<KnownTenants>,
        jwt: Option<JwtVerifier>,
    ) -> Self {
        Self {
            keys,
            tenants,
            jwt,
            known_users: Cache::new(KNOWN_USERS),
            known_tenants,
        }
    }

    pub async fn api_key(&self, presented: &str) -> Result<Principal, AuthFailure> {
        self.keys
            .authenticate(presented)
            .await?
            .ok_or(AuthFailure::Invalid)
    }

    pub async fn bearer(&self, token: &str) -> Result<Principal, AuthFailure> {
        let Some(jwt) = &self.jwt else {
            return Err(AuthFailure::Invalid);
        };
        let claims = jwt.verify(token).await.map_err(|error| {
            tracing::debug!(%error, "bearer token refused");
            AuthFailure::Invalid
        })?;
        // Names that could pose as another subject are dropped, not trusted.
        let roles: Vec<String> = claims
            .roles
            .into_iter()
            .filter(|role| is_valid_role_name(role))
            .collect();
        let tenant = match &claims.tenant {
            Some(name) => Some(self.tenant(name).await?.ok_or(AuthFailure::Invalid)?),
            None if roles.iter().any(|r| r == Role::PlatformAdmin.as_str()) => None,
            None => return Err(AuthFailure::Invalid),
        };
        let user_id = Uuid::parse_str(&claims.sub).unwrap_or_else(|_| {
            let scope = tenant.as_ref().map_or("_platform", |t| t.name.as_str());
            Uuid::new_v5(
                &JWT_SUBJECT_NAMESPACE,
                format!("{scope}/{}", claims.sub).as_bytes(),
            )
        });
        if let Some(tenant) = &tenant {
            self.ensure_user(tenant, user_id).await?;
        }
        Ok(Principal {
            user_id,
            tenant,
            roles,
            credential: Credential::Jwt {
                subject: claims.sub,
            },
        })
    }

    async fn tenant(&self, name: &str) -> Result<Option<Tenant>, AuthFailure> {
        let Ok(parsed) = TenantName::parse(name) else {
            return Ok(None);
        };
        Ok(self
            .known_tenants
            .by_name(&parsed)
            .await
            .map_err(ServiceError::from)?)
    }

    /// Memories reference their user, so a JWT subject becomes a user of its tenant.
    async fn ensure_user(&self, tenant: &Tenant, user_id: Uuid) -> Result<(), AuthFailure> {
        if self.known_users.get(&(tenant.tenant_id, user_id)).is_some() {
            return Ok(());
        }
        let user = TenantUser {
            user_id,
            username: format!("jwt-{}", user_id.simple()),
            email: None,
        };
        self.tenants.ensure_user(&tenant.name, &user).await?;
        self.known_users.insert((tenant.tenant_id, user_id), ());
        Ok(())
    }
}
