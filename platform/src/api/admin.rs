//! `/api/v1/admin`: the platform operators' routes across tenants. They never return tenant
//! content (memories); the policy keeps operators out of tenant routes unless a tenant grants.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::ApiJson;
use super::state::AppState;
use crate::auth::access::Access;
use crate::domain::validation::InputError;
use crate::stores::Tenant;

const MAX_DISPLAY_NAME_CHARS: usize = 256;

pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/tenants", get(list_tenants).post(create_tenant))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantInfo {
    pub tenant: String,
    pub tenant_id: Uuid,
    pub display_name: String,
    /// `Shared` or `Dedicated`.
    pub isolation: String,
    pub created_at: DateTime<Utc>,
}

impl From<Tenant> for TenantInfo {
    fn from(tenant: Tenant) -> Self {
        Self {
            tenant: tenant.name.to_string(),
            tenant_id: tenant.tenant_id,
            display_name: tenant.display_name,
            isolation: tenant.isolation.as_str().to_string(),
            created_at: tenant.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<TenantInfo>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    /// Lowercase letters, digits and '-', at most 40 characters.
    pub tenant: String,
    pub display_name: Option<String>,
    /// `Shared` (default) or `Dedicated`.
    pub isolation: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTenantResponse {
    pub tenant: String,
    pub tenant_id: Uuid,
    pub isolation: String,
    pub user_id: Uuid,
    /// The tenant's first tenant-admin key; shown this once.
    pub api_key: String,
}

/// Every tenant of the platform.
#[utoipa::path(get, path = "/api/v1/admin/tenants", tag = "admin",
    responses((status = 200, body = TenantList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_tenants(
    State(state): State<AppState>,
    _operator: Access,
) -> Result<axum::Json<TenantList>, ApiError> {
    let tenants = state.tenants.list().await?;
    Ok(axum::Json(TenantList {
        tenants: tenants.into_iter().map(TenantInfo::from).collect(),
    }))
}

/// Register a tenant: storage, an admin user and its first key.
#[utoipa::path(post, path = "/api/v1/admin/tenants", tag = "admin",
    request_body = CreateTenantRequest,
    responses((status = 201, body = CreatedTenantResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_tenant(
    State(state): State<AppState>,
    _operator: Access,
    ApiJson(request): ApiJson<CreateTenantRequest>,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(name) = &request.display_name {
        let chars = name.chars().count();
        if chars > MAX_DISPLAY_NAME_CHARS {
            return Err(InputError::TooLarge {
                field: "display_name",
                actual: chars,
                limit: MAX_DISPLAY_NAME_CHARS,
                unit: "characters",
            }
            .into());
        }
    }
    let isolation = match request.isolation.as_deref() {
        None => state.default_isolation,
        Some(value) => {
            memoryc_crds::layout::Isolation::parse(value).ok_or_else(|| InputError::Invalid {
                field: "isolation",
                reason: "must be Shared or Dedicated".to_string(),
            })?
        }
    };
    let created = state
        .tenants
        .create(&request.tenant, request.display_name.as_deref(), isolation)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedTenantResponse {
            tenant: created.tenant,
            tenant_id: created.tenant_id,
            isolation: created.isolation.to_string(),
            user_id: created.user_id,
            api_key: created.api_key,
        }),
    ))
}
