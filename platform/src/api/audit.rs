//! `/api/v1/audit`: the tenant's audit log for its admins, newest first, paginated.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::ApiQuery;
use super::state::AppState;
use crate::auth::access::Access;
use crate::services::audit::DEFAULT_AUDIT_PAGE;
use crate::stores::{AuditEntry, AuditOutcome};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// 1..500, default 50.
    pub limit: Option<u64>,
    /// `next_before` of the previous page.
    pub before: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecord {
    pub audit_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// `key:<prefix>` or `jwt:<subject>`; never a secret.
    pub subject: Option<String>,
    pub user_id: Option<Uuid>,
    pub roles: Vec<String>,
    pub method: String,
    /// The route template, e.g. `/api/v1/memories/{id}`.
    pub route: String,
    pub path: String,
    pub outcome: AuditOutcome,
    pub status: u16,
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

impl From<AuditEntry> for AuditRecord {
    fn from(entry: AuditEntry) -> Self {
        Self {
            audit_id: entry.audit_id,
            occurred_at: entry.occurred_at,
            subject: entry.subject,
            user_id: entry.user_id,
            roles: entry.roles,
            method: entry.method,
            route: entry.route,
            path: entry.path,
            outcome: entry.outcome,
            status: entry.status,
            detail: entry.detail,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLogPage {
    pub entries: Vec<AuditRecord>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<Uuid>,
}

/// The tenant's audit log: writes, denied requests and key changes, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditLogPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn read_audit_log(
    State(state): State<AppState>,
    access: Access,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<axum::Json<AuditLogPage>, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    let page = state
        .audit
        .page(
            &tenant,
            params.before,
            params.limit.unwrap_or(DEFAULT_AUDIT_PAGE),
        )
        .await?;
    Ok(axum::Json(AuditLogPage {
        entries: page.entries.into_iter().map(AuditRecord::from).collect(),
        next_before: page.next_before,
    }))
}
