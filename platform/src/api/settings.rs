//! `/api/v1/settings`: a tenant admin's choices for its tenant (the PII policy).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::ApiJson;
use super::state::AppState;
use crate::auth::access::Access;
use crate::domain::pii::PiiPolicy;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/settings/pii-policy",
        get(read_pii_policy).put(set_pii_policy),
    )
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PiiPolicyBody {
    /// `allow` stores content as written, `mask` replaces e-mail addresses, phone numbers,
    /// card numbers, IBANs and secrets with markers, `reject` refuses such writes with 422.
    pub policy: PiiPolicy,
}

/// The PII policy in force for the tenant.
#[utoipa::path(get, path = "/api/v1/settings/pii-policy", tag = "settings",
    responses((status = 200, body = PiiPolicyBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn read_pii_policy(
    State(state): State<AppState>,
    access: Access,
) -> Result<axum::Json<PiiPolicyBody>, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    let policy = state.settings.pii_policy(tenant.tenant_id).await?;
    Ok(axum::Json(PiiPolicyBody { policy }))
}

/// Set the tenant's PII policy; applies to the next write.
#[utoipa::path(put, path = "/api/v1/settings/pii-policy", tag = "settings",
    request_body = PiiPolicyBody,
    responses((status = 200, body = PiiPolicyBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn set_pii_policy(
    State(state): State<AppState>,
    access: Access,
    ApiJson(body): ApiJson<PiiPolicyBody>,
) -> Result<axum::Json<PiiPolicyBody>, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    state
        .settings
        .set_pii_policy(tenant.tenant_id, body.policy)
        .await?;
    Ok(axum::Json(body))
}
