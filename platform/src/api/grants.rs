//! `/api/v1/grants`: a tenant admin gives the tenant's users roles, stored in the database and
//! applied without a restart.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use super::state::AppState;
use crate::auth::Role;
use crate::auth::access::Access;
use crate::services::grants::Grant;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    pub user_id: Uuid,
    /// tenant-admin, member, reader or service.
    pub role: Role,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantList {
    pub grants: Vec<GrantBody>,
}

/// The roles the tenant's users hold through grants.
#[utoipa::path(get, path = "/api/v1/grants", tag = "grants",
    responses((status = 200, body = GrantList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_grants(
    State(state): State<AppState>,
    access: Access,
) -> Result<axum::Json<GrantList>, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    let grants = state
        .grants
        .list(&tenant)
        .await?
        .into_iter()
        .filter_map(|grant| {
            Role::parse(&grant.role).map(|role| GrantBody {
                user_id: grant.user_id,
                role,
            })
        })
        .collect();
    Ok(axum::Json(GrantList { grants }))
}

/// Give a user of the tenant a role in this tenant.
#[utoipa::path(post, path = "/api/v1/grants", tag = "grants", request_body = GrantBody,
    responses((status = 201, body = GrantBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such user in the tenant"),
        (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn add_grant(
    State(state): State<AppState>,
    access: Access,
    ApiJson(body): ApiJson<GrantBody>,
) -> Result<impl IntoResponse, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    let grant = Grant {
        user_id: body.user_id,
        role: body.role.as_str().to_string(),
    };
    state.grants.grant(&tenant, &grant).await?;
    Ok((StatusCode::CREATED, axum::Json(body)))
}

/// Take a role back.
#[utoipa::path(delete, path = "/api/v1/grants/{user_id}/{role}", tag = "grants",
    params(("user_id" = Uuid, Path), ("role" = Role, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn remove_grant(
    State(state): State<AppState>,
    access: Access,
    ApiPath((user_id, role)): ApiPath<(Uuid, Role)>,
) -> Result<StatusCode, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    let grant = Grant {
        user_id,
        role: role.as_str().to_string(),
    };
    state.grants.revoke(&tenant, &grant).await?;
    Ok(StatusCode::NO_CONTENT)
}
