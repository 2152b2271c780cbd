//! `/api/v1/admin`: the platform operators' routes across tenants. They never return tenant
//! content (memories); the policy keeps operators out of tenant routes unless a tenant grants.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use super::state::AppState;
use crate::auth::access::Access;
use crate::domain::validation::InputError;
use crate::stores::Tenant;
use memoryc_crds::layout::TenantName;

const MAX_DISPLAY_NAME_CHARS: usize = 256;

/// Largest per-tenant limit accepted.
const MAX_RATE_LIMIT_PER_MINUTE: u32 = 1_000_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitRequest {
    /// Requests per credential, route and minute (1..1 000 000); null restores the default.
    pub per_minute: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RateLimitInfo {
    pub tenant: String,
    /// The limit in force.
    pub per_minute: u32,
    /// The tenant's own limit, if it has one.
    pub tenant_override: Option<u32>,
}

async fn tenant_named(state: &AppState, name: &str) -> Result<Tenant, ApiError> {
    let not_found = || {
        ApiError::from(crate::services::ServiceError::NotFound(format!(
            "tenant {name}"
        )))
    };
    let name = TenantName::parse(name).map_err(|_| not_found())?;
    state.tenants.find(&name).await?.ok_or_else(not_found)
}

async fn rate_limit_info(state: &AppState, tenant: &Tenant) -> Result<RateLimitInfo, ApiError> {
    let settings = state.settings.settings(tenant.tenant_id).await?;
    Ok(RateLimitInfo {
        tenant: tenant.name.to_string(),
        per_minute: settings
            .rate_limit_per_minute
            .unwrap_or(state.rate_limits.default_per_minute()),
        tenant_override: settings.rate_limit_per_minute,
    })
}

/// A tenant's rate limit.
#[utoipa::path(get, path = "/api/v1/admin/tenants/{tenant}/rate-limit", tag = "admin",
    params(("tenant" = String, Path, description = "tenant name")),
    responses((status = 200, body = RateLimitInfo), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn read_rate_limit(
    State(state): State<AppState>,
    _operator: Access,
    ApiPath(name): ApiPath<String>,
) -> Result<axum::Json<RateLimitInfo>, ApiError> {
    let tenant = tenant_named(&state, &name).await?;
    Ok(axum::Json(rate_limit_info(&state, &tenant).await?))
}

/// Set or clear a tenant's own rate limit; every replica applies it within the refresh time.
#[utoipa::path(put, path = "/api/v1/admin/tenants/{tenant}/rate-limit", tag = "admin",
    params(("tenant" = String, Path, description = "tenant name")),
    request_body = RateLimitRequest,
    responses((status = 200, body = RateLimitInfo), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_rate_limit(
    State(state): State<AppState>,
    _operator: Access,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<RateLimitRequest>,
) -> Result<axum::Json<RateLimitInfo>, ApiError> {
    if request
        .per_minute
        .is_some_and(|limit| limit == 0 || limit > MAX_RATE_LIMIT_PER_MINUTE)
    {
        return Err(InputError::Invalid {
            field: "per_minute",
            reason: format!("must be between 1 and {MAX_RATE_LIMIT_PER_MINUTE}, or null"),
        }
        .into());
    }
    let tenant = tenant_named(&state, &name).await?;
    state
        .settings
        .set_rate_limit(tenant.tenant_id, request.per_minute)
        .await?;
    Ok(axum::Json(rate_limit_info(&state, &tenant).await?))
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
    /// Lowercase letters, digits and '-', starting with a letter, at most 40 characters.
    #[schema(pattern = "^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")]
    pub tenant: String,
    #[schema(max_length = 256)]
    pub display_name: Option<String>,
    /// `Shared` (default) or `Dedicated`.
    #[schema(pattern = "^(Shared|Dedicated|shared|dedicated)$")]
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
