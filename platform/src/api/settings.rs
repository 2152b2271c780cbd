//! `/api/v1/settings`: a tenant admin's choices for its tenant (the PII policy, the analytics
//! schedule).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::ApiJson;
use super::state::AppState;
use crate::auth::access::Access;
use crate::domain::pii::PiiPolicy;
use crate::domain::validation::InputError;
use crate::services::analytics::schedule::Schedule;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsSettingsBody {
    /// When the tenant's analytics run: a cron expression (`sec min hour day month weekday`,
    /// seconds optional), in UTC, or `never`; `null` follows the platform's default.
    #[schema(max_length = 128)]
    pub schedule: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyticsSettingsView {
    /// The tenant's own schedule, `null` when it follows the default.
    pub schedule: Option<String>,
    /// The schedule in force.
    pub effective_schedule: String,
}

/// The tenant's analytics schedule.
#[utoipa::path(get, path = "/api/v1/settings/analytics", tag = "settings",
    responses((status = 200, body = AnalyticsSettingsView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn read_analytics_settings(
    State(state): State<AppState>,
    access: Access,
) -> Result<axum::Json<AnalyticsSettingsView>, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    let schedule = state.settings.analytics_schedule(tenant.tenant_id).await?;
    Ok(axum::Json(AnalyticsSettingsView {
        effective_schedule: schedule
            .clone()
            .unwrap_or_else(|| state.default_analytics_schedule.clone()),
        schedule,
    }))
}

/// Set the tenant's analytics schedule; the scheduler follows it from its next tick.
#[utoipa::path(put, path = "/api/v1/settings/analytics", tag = "settings",
    request_body = AnalyticsSettingsBody,
    responses((status = 200, body = AnalyticsSettingsView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn set_analytics_settings(
    State(state): State<AppState>,
    access: Access,
    ApiJson(body): ApiJson<AnalyticsSettingsBody>,
) -> Result<axum::Json<AnalyticsSettingsView>, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    let schedule = body.schedule.map(|s| s.trim().to_string());
    if let Some(expression) = &schedule {
        if expression.chars().count() > 128 {
            return Err(InputError::TooLarge {
                field: "schedule",
                actual: expression.chars().count(),
                limit: 128,
                unit: "characters",
            }
            .into());
        }
        Schedule::parse(expression).map_err(|e| InputError::Invalid {
            field: "schedule",
            reason: e.reason,
        })?;
    }
    state
        .settings
        .set_analytics_schedule(tenant.tenant_id, schedule.clone())
        .await?;
    Ok(axum::Json(AnalyticsSettingsView {
        effective_schedule: schedule
            .clone()
            .unwrap_or_else(|| state.default_analytics_schedule.clone()),
        schedule,
    }))
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
