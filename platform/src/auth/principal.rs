//! The authenticated caller of a request.

use uuid::Uuid;

use crate::services::memory_service::TenantScope;
use crate::stores::Tenant;

#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: Tenant,
    pub user_id: Uuid,
    pub role: String,
    pub key_id: Uuid,
}

impl Principal {
    pub fn scope(&self) -> TenantScope {
        TenantScope {
            tenant: self.tenant.clone(),
            user_id: self.user_id,
        }
    }
}
