//! Deciding a request: the caller's roles and grants against what the route requires.

use uuid::Uuid;

use super::permission::{MEMORIES, OWN_MEMORIES, Requirement};
use super::policy::{PLATFORM_DOMAIN, PolicyEnforcer};
use super::principal::Principal;
use crate::auth::scope::TenantScope;
use crate::stores::Tenant;

/// What an allowed request may touch; handlers read it from the request.
#[derive(Debug, Clone)]
pub struct Access {
    pub principal: Principal,
    /// For memory routes: only this user's memories (the `own-memories` permission).
    pub owner_only: Option<Uuid>,
}

impl Access {
    /// The tenant the request acts in; `None` on platform routes of a platform operator.
    pub fn tenant(&self) -> Option<&Tenant> {
        self.principal.tenant.as_ref()
    }

    /// The scope every memory operation runs in.
    pub fn scope(&self) -> Option<TenantScope> {
        self.principal.tenant.clone().map(|tenant| TenantScope {
            tenant,
            user_id: self.principal.user_id,
            owner_only: self.owner_only,
            session_id: None,
        })
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("this route acts inside a tenant and the caller belongs to none")]
    NoTenant,
    #[error("the caller's roles do not allow this")]
    NotPermitted,
}

/// Allows or denies `requirement` for `principal`. Deny is the default: only a rule that names
/// one of the caller's subjects allows.
pub fn decide(
    policy: &PolicyEnforcer,
    principal: &Principal,
    requirement: Requirement,
) -> Result<Access, Denial> {
    let subject = principal.subject();
    let mut subjects: Vec<&str> = Vec::with_capacity(principal.roles.len() + 1);
    subjects.push(&subject);
    subjects.extend(principal.roles.iter().map(String::as_str));
    let allowed =
        |domain: &str, object: &str, action: &str| policy.allows(&subjects, domain, object, action);
    let access = |owner_only| Access {
        principal: principal.clone(),
        owner_only,
    };
    match requirement {
        Requirement::Public | Requirement::Signed => Ok(access(None)),
        Requirement::Platform(object, action) => {
            if allowed(PLATFORM_DOMAIN, object, action.as_str()) {
                Ok(access(None))
            } else {
                Err(Denial::NotPermitted)
            }
        }
        Requirement::Tenant(object, action) => {
            let tenant = principal.tenant.as_ref().ok_or(Denial::NoTenant)?;
            if allowed(&tenant.tenant_id.to_string(), object, action.as_str()) {
                Ok(access(None))
            } else {
                Err(Denial::NotPermitted)
            }
        }
        Requirement::Memories(action) => {
            let tenant = principal.tenant.as_ref().ok_or(Denial::NoTenant)?;
            let domain = tenant.tenant_id.to_string();
            if allowed(&domain, MEMORIES, action.as_str()) {
                Ok(access(None))
            } else if allowed(&domain, OWN_MEMORIES, action.as_str()) {
                Ok(access(Some(principal.user_id)))
            } else {
                Err(Denial::NotPermitted)
            }
        }
    }
}
