//! Permissions as Casbin sees them: objects, actions and what a route requires.

/// What Casbin is asked about (`enforce(subject, domain, object, action)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    /// Create, change or delete.
    Write,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
        }
    }
}

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// No credential at all (health, the OpenAPI document).
    Public,
    /// No credential: the sender signs the body with a secret it shares with the tenant (GitHub's
    /// webhooks), which the handler verifies. Failed signatures count towards the client's
    /// lockout like failed credentials.
    Signed,
    /// `object` in the caller's own tenant.
    Tenant(&'static str, Action),
    /// Memories: object `memories` grants any of the tenant's, else `own-memories` grants the
    /// caller's own only.
    Memories(Action),
    /// `object` in the platform operators' domain.
    Platform(&'static str, Action),
}

impl Requirement {
    /// Requests that change state; every one of them is audited.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Requirement::Tenant(_, Action::Write)
                | Requirement::Memories(Action::Write)
                | Requirement::Platform(_, Action::Write)
        )
    }
}

pub const MEMORIES: &str = "memories";
pub const OWN_MEMORIES: &str = "own-memories";
pub const KEYS: &str = "keys";
pub const GRANTS: &str = "grants";
pub const AUDIT: &str = "audit";
pub const ANALYTICS: &str = "analytics";
pub const INTEGRATIONS: &str = "integrations";
pub const PII_POLICY: &str = "pii-policy";
pub const TENANTS: &str = "tenants";
pub const RATE_LIMITS: &str = "rate-limits";
