//! Shared state of every handler.

use std::sync::Arc;

use crate::services::health::HealthService;
use crate::services::memory_service::MemoryService;
use crate::services::tenant_service::TenantService;

#[derive(Clone)]
pub struct AppState {
    pub memories: Arc<MemoryService>,
    pub tenants: Arc<TenantService>,
    pub health: Arc<HealthService>,
}
