//! Who is acting, inside which tenant: what every tenant-scoped operation is given.

use uuid::Uuid;

use crate::domain::Memory;
use crate::stores::Tenant;
use crate::stores::vector::VectorSpace;

/// Who is acting, inside which tenant. Every operation is scoped by it.
#[derive(Debug, Clone)]
pub struct TenantScope {
    pub tenant: Tenant,
    pub user_id: Uuid,
    /// Only this user's memories are visible (a member acting on its own); others answer as
    /// if they did not exist.
    pub owner_only: Option<Uuid>,
    /// The caller's session (`X-Session-Id`), recorded with analytics events.
    pub session_id: Option<String>,
}

impl TenantScope {
    /// Whether the caller may see this memory at all.
    pub fn sees(&self, memory: &Memory) -> bool {
        self.owner_only.is_none_or(|owner| owner == memory.user_id)
    }

    /// Where the tenant's vectors are.
    pub fn space(&self) -> VectorSpace {
        VectorSpace {
            tenant: self.tenant.name.clone(),
            isolation: self.tenant.isolation,
        }
    }
}
