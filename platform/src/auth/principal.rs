//! The authenticated caller of a request.

use uuid::Uuid;

use crate::stores::Tenant;

/// How the caller proved who it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    /// An API key; `prefix` is its public part (never the secret).
    ApiKey { key_id: Uuid, prefix: String },
    /// A JWT; `subject` is its `sub` claim.
    Jwt { subject: String },
}

#[derive(Debug, Clone)]
pub struct Principal {
    /// The user acting: memories it writes carry this id.
    pub user_id: Uuid,
    /// The tenant the caller belongs to; `None` for platform operators without one.
    pub tenant: Option<Tenant>,
    /// Roles the credential carries; database grants may add more.
    pub roles: Vec<String>,
    pub credential: Credential,
}

impl Principal {
    /// The Casbin subject of this caller; database grants name it.
    pub fn subject(&self) -> String {
        policy_subject(self.user_id)
    }

    /// A stable, non-secret name of the credential, for audit records and rate limits.
    pub fn credential_label(&self) -> String {
        match &self.credential {
            Credential::ApiKey { prefix, .. } => format!("key:{prefix}"),
            Credential::Jwt { subject } => format!("jwt:{subject}"),
        }
    }
}

/// The Casbin subject of a user.
pub fn policy_subject(user_id: Uuid) -> String {
    format!("user:{user_id}")
}
