//! The roles the platform knows. Policies may grant further, tenant-defined roles; these are the
//! ones keys are issued with and the role matrix is tested against.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything inside its tenant: memories, keys, grants, audit log, PII policy.
    TenantAdmin,
    /// Reads and writes its own memories and reads what derives from them (relationships,
    /// history, events); never the tenant's analytics, which draw on every user's memories.
    Member,
    /// Reads the tenant's memories and analytics.
    Reader,
    /// An agent: reads and writes any memory of its tenant.
    Service,
    /// The platform's operators: admin routes across tenants, never tenant content.
    PlatformAdmin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::TenantAdmin,
        Role::Member,
        Role::Reader,
        Role::Service,
        Role::PlatformAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::TenantAdmin => "tenant-admin",
            Role::Member => "member",
            Role::Reader => "reader",
            Role::Service => "service",
            Role::PlatformAdmin => "platform-admin",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == value)
    }

    /// Roles a tenant admin may hand out: everything but the operators' role.
    pub fn is_tenant_role(self) -> bool {
        self != Role::PlatformAdmin
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a role name from a token may be used as a Casbin subject. Names with `:` are
/// refused so a token cannot pose as another subject (`user:<id>`) and inherit its grants.
pub fn is_valid_role_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(
                serde_json::to_value(role).expect("serialise"),
                serde_json::json!(role.as_str())
            );
        }
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn token_role_names_cannot_pose_as_subjects() {
        assert!(is_valid_role_name("tenant-admin"));
        assert!(is_valid_role_name("auditor2"));
        assert!(!is_valid_role_name("user:0190"));
        assert!(!is_valid_role_name(""));
        assert!(!is_valid_role_name("Admin"));
        assert!(!is_valid_role_name("-x"));
        assert!(!is_valid_role_name(&"a".repeat(65)));
    }
}
