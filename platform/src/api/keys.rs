//! `/api/v1/keys`: a tenant admin issues, lists (public prefix only) and revokes API keys.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use super::guard::AuditDetail;
use super::state::AppState;
use crate::auth::Role;
use crate::auth::access::Access;
use crate::services::ServiceError;
use crate::services::api_keys::NewApiKey;
use crate::stores::{StoredApiKey, TenantUser};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueKeyRequest {
    /// What the key is for, 1-128 characters.
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    pub name: String,
    /// tenant-admin, member, reader or service.
    pub role: Role,
    /// When the key stops working (RFC 3339); never when omitted.
    pub expires_at: Option<DateTime<Utc>>,
    /// The tenant user the key acts as; a new user when omitted.
    pub user_id: Option<Uuid>,
}

/// A key as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyInfo {
    pub key_id: Uuid,
    pub name: String,
    /// The public part of the key (`mck_<prefix>_…`).
    pub prefix: String,
    pub role: String,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedKeyResponse {
    #[serde(flatten)]
    pub key: ApiKeyInfo,
    /// The key itself. Shown this once; only a hash is stored.
    pub api_key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<ApiKeyInfo>,
}

impl ApiKeyInfo {
    fn from_stored(key: StoredApiKey, now: DateTime<Utc>) -> Self {
        let status = if key.revoked_at.is_some() {
            "revoked"
        } else if key.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else {
            "active"
        };
        Self {
            key_id: key.key_id,
            name: key.name,
            prefix: key.prefix,
            role: key.role,
            user_id: key.user_id,
            created_at: key.created_at,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
            status,
        }
    }
}

/// Issue an API key with a role and an optional expiry.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = IssueKeyRequest,
    responses((status = 201, body = IssuedKeyResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "user_id is not a user of the tenant"),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn issue_key(
    State(state): State<AppState>,
    access: Access,
    ApiJson(request): ApiJson<IssueKeyRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    let user_id = match request.user_id {
        Some(user_id) => {
            state
                .tenants
                .find_user(&tenant.name, user_id)
                .await?
                .ok_or_else(|| ServiceError::NotFound(format!("user {user_id}")))?;
            user_id
        }
        None => {
            // An agent's key gets a user of its own, so its memories are told apart.
            let user = TenantUser {
                user_id: Uuid::now_v7(),
                username: format!("key-{}", Uuid::now_v7().simple()),
                email: None,
            };
            state.tenants.create_user(&tenant.name, &user).await?;
            user.user_id
        }
    };
    let issued = state
        .keys
        .issue(
            &tenant,
            NewApiKey {
                user_id,
                name: request.name,
                role: request.role,
                expires_at: request.expires_at,
            },
        )
        .await?;
    let detail = AuditDetail(serde_json::json!({
        "key_id": issued.key.key_id,
        "prefix": issued.key.prefix,
        "role": issued.key.role,
        "user_id": issued.key.user_id,
        "expires_at": issued.key.expires_at,
    }));
    Ok((
        StatusCode::CREATED,
        Extension(detail),
        axum::Json(IssuedKeyResponse {
            key: ApiKeyInfo::from_stored(issued.key, Utc::now()),
            api_key: issued.plaintext,
        }),
    ))
}

/// List the tenant's API keys (public prefix only, never secrets).
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    responses((status = 200, body = KeyList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_keys(
    State(state): State<AppState>,
    access: Access,
) -> Result<axum::Json<KeyList>, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    let now = Utc::now();
    let keys = state
        .keys
        .list(&tenant)
        .await?
        .into_iter()
        .map(|key| ApiKeyInfo::from_stored(key, now))
        .collect();
    Ok(axum::Json(KeyList { keys }))
}

/// Revoke an API key; it stops working at once on every replica.
#[utoipa::path(delete, path = "/api/v1/keys/{key_id}", tag = "keys",
    params(("key_id" = Uuid, Path, description = "key_id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    access: Access,
    ApiPath(key_id): ApiPath<Uuid>,
) -> Result<impl IntoResponse, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    state.keys.revoke(&tenant, key_id).await?;
    let detail = AuditDetail(serde_json::json!({ "key_id": key_id, "revoked": true }));
    Ok((StatusCode::NO_CONTENT, Extension(detail)))
}
