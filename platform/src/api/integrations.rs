//! `/api/v1/integrations`: the tenant's integrations with their state, Webhook and
//! GitHubProjects integrations created and removed through the API (installations without the
//! operator), each webhook's deliveries with a retry for failed and dead ones, a GitHub board's
//! sync on demand, and GitHub's own webhooks for a synchronised board.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::state::AppState;
use crate::auth::access::Access;
use crate::services::integrations::github::inbound::{
    DELIVERY_HEADER, EVENT_HEADER, Handled, InboundDelivery, InboundError, SIGNATURE_HEADER,
};
use crate::services::integrations::github::sync::{GitHubSettings, SyncError, SyncReport};
use crate::services::integrations::llm::providers::LlmSettings;
use crate::services::integrations::webhook::payload::WebhookSettings;
use crate::services::integrations::{NewIntegration, SyncFailure, SyncRun};
use crate::stores::{Delivery, DeliveryStatus, Integration};

/// Deliveries one page lists unless `limit` says otherwise.
const DEFAULT_DELIVERIES_PAGE: u64 = 50;

/// Integration kinds, as the IntegrationBinding resource names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum IntegrationKind {
    GitHubProjects,
    Webhook,
    #[serde(rename = "LLMProvider")]
    LlmProvider,
}

impl IntegrationKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::GitHubProjects => "GitHubProjects",
            Self::Webhook => "Webhook",
            Self::LlmProvider => "LLMProvider",
        }
    }
}

/// Events a webhook can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum WebhookEvent {
    #[serde(rename = "memory.created")]
    MemoryCreated,
    #[serde(rename = "memory.updated")]
    MemoryUpdated,
    #[serde(rename = "memory.deleted")]
    MemoryDeleted,
    #[serde(rename = "insight.generated")]
    InsightGenerated,
}

impl WebhookEvent {
    fn as_str(self) -> &'static str {
        match self {
            Self::MemoryCreated => "memory.created",
            Self::MemoryUpdated => "memory.updated",
            Self::MemoryDeleted => "memory.deleted",
            Self::InsightGenerated => "insight.generated",
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// Where events are POSTed: https (plain http only to an address of a network the
    /// platform's `integrations.allowed_networks` allows).
    #[schema(max_length = 2048)]
    pub url: String,
    /// Events delivered; all of them when empty or absent.
    #[serde(default)]
    pub events: Vec<WebhookEvent>,
}

/// A GitHub Projects (v2) board.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitHubBody {
    /// The user or organisation owning the project.
    #[schema(min_length = 1, max_length = 39)]
    pub owner: String,
    /// The N in `https://github.com/orgs/OWNER/projects/N`.
    #[schema(minimum = 1)]
    pub project_number: i64,
}

/// An OpenAI-compatible provider.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LlmProviderBody {
    /// e.g. `https://api.openai.com/v1` (https; plain http only to an address of a network the
    /// platform's `integrations.allowed_networks` allows).
    #[schema(max_length = 2048)]
    pub base_url: String,
    /// The chat model, e.g. `gpt-4o-mini`.
    #[schema(max_length = 200)]
    pub model: Option<String>,
    /// The embedding model (recorded; embeddings come from the local model for now).
    #[schema(max_length = 200)]
    pub embedding_model: Option<String>,
}

/// An integration to create: the IntegrationBinding spec's own fields plus `name`, `secret`
/// and `webhookSecret`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IntegrationBody {
    /// Lowercase letters, digits and '-', starting with a letter; unique in the tenant.
    #[schema(min_length = 1, max_length = 63)]
    pub name: String,
    pub kind: IntegrationKind,
    pub webhook: Option<WebhookBody>,
    pub github: Option<GitHubBody>,
    pub llm_provider: Option<LlmProviderBody>,
    /// GitHubProjects: five-field cron schedule of the sync (UTC); hourly when absent.
    #[schema(max_length = 100)]
    pub sync_schedule: Option<String>,
    /// A paused webhook keeps its deliveries queued and sends none; a paused board is not
    /// synchronised on its schedule.
    #[serde(default)]
    pub paused: bool,
    /// For a webhook, the signing secret in Standard Webhooks form (`whsec_` and the base64 of
    /// a 24 to 64 byte key), generated and returned once when absent; for a GitHub board, a
    /// token that can read the project. Never shown again.
    #[schema(max_length = 255)]
    pub secret: Option<String>,
    /// GitHubProjects: the secret of the GitHub webhook pointed at
    /// `/api/v1/integrations/{name}/github?tenant=…` (16 to 255 characters). Never shown again.
    #[schema(max_length = 255)]
    pub webhook_secret: Option<String>,
}

/// How an integration fares.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationState {
    /// Whether the last attempt to reach the outside system succeeded; absent before any.
    pub connected: Option<bool>,
    /// Last successful sync or delivery.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// Items synchronised or events delivered.
    pub items_synced: i64,
    pub last_error: Option<String>,
    pub next_run_at: Option<DateTime<Utc>>,
    /// An LLM provider's circuit breaker on the replica that answers: `closed`, `open` (calls
    /// go to the next provider) or `half_open` (one probe is let through). Absent for other
    /// kinds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationView {
    pub integration_id: Uuid,
    pub name: String,
    pub kind: String,
    /// The kind's settings; credentials are never shown.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// `operator` (from an IntegrationBinding, whose Secret holds the credential) or `api`.
    pub managed_by: String,
    pub sync_schedule: Option<String>,
    pub paused: bool,
    pub state: IntegrationState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Integration> for IntegrationView {
    fn from(integration: Integration) -> Self {
        let record = integration.record;
        let state = integration.state;
        Self {
            integration_id: integration.integration_id,
            name: record.name,
            kind: record.kind,
            settings: record.settings,
            managed_by: if record.secret_name.is_empty() {
                "api"
            } else {
                "operator"
            }
            .to_string(),
            sync_schedule: record.sync_schedule,
            paused: record.paused,
            state: IntegrationState {
                connected: state.connected,
                last_sync_at: state.last_sync_at,
                items_synced: state.items_synced,
                last_error: state.last_error,
                next_run_at: state.next_run_at,
                breaker: None,
            },
            created_at: integration.created_at,
            updated_at: integration.updated_at,
        }
    }
}

/// An integration as the API shows it, with its breaker's state when it has one.
fn view(state: &AppState, integration: Integration) -> IntegrationView {
    let breaker = state.integrations.breaker_state(&integration);
    let mut view = IntegrationView::from(integration);
    view.state.breaker = breaker.map(str::to_string);
    view
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationList {
    pub integrations: Vec<IntegrationView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedIntegration {
    pub integration: IntegrationView,
    /// The signing secret the platform generated; shown this once. Absent when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The tenant's integrations with their state.
#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations",
    responses((status = 200, body = IntegrationList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_integrations(
    State(state): State<AppState>,
    access: Access,
) -> Result<axum::Json<IntegrationList>, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    let integrations = state.integrations.list(&tenant).await?;
    Ok(axum::Json(IntegrationList {
        integrations: integrations
            .into_iter()
            .map(|integration| view(&state, integration))
            .collect(),
    }))
}

/// Create a Webhook, GitHubProjects or LLMProvider integration (installations without the
/// operator). An LLM provider is checked at once (`GET {baseUrl}/models`); its state says how.
#[utoipa::path(post, path = "/api/v1/integrations", tag = "integrations",
    request_body = IntegrationBody,
    responses((status = 201, body = CreatedIntegration), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "an integration of that name exists"),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn create_integration(
    State(state): State<AppState>,
    access: Access,
    ApiJson(body): ApiJson<IntegrationBody>,
) -> Result<impl IntoResponse, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    let new = NewIntegration {
        name: body.name,
        kind: body.kind.as_str().to_string(),
        webhook: body.webhook.map(|webhook| WebhookSettings {
            url: webhook.url,
            events: webhook
                .events
                .iter()
                .map(|event| event.as_str().to_string())
                .collect(),
        }),
        github: body.github.map(|github| GitHubSettings {
            owner: github.owner,
            project_number: github.project_number,
        }),
        llm_provider: body.llm_provider.map(|llm| LlmSettings {
            base_url: llm.base_url,
            model: llm.model,
            embedding_model: llm.embedding_model,
        }),
        secret: body.secret,
        webhook_secret: body.webhook_secret,
        sync_schedule: body.sync_schedule,
        paused: body.paused,
    };
    let created = state.integrations.create(&tenant, new).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedIntegration {
            integration: view(&state, created.integration),
            secret: created.generated_secret,
        }),
    ))
}

/// Remove an integration created through the API, with its deliveries.
#[utoipa::path(delete, path = "/api/v1/integrations/{name}", tag = "integrations",
    params(("name" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "managed by an IntegrationBinding")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn delete_integration(
    State(state): State<AppState>,
    access: Access,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    state.integrations.remove(&tenant, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Failed,
    Delivered,
    Dead,
}

impl From<DeliveryState> for DeliveryStatus {
    fn from(state: DeliveryState) -> Self {
        match state {
            DeliveryState::Pending => DeliveryStatus::Pending,
            DeliveryState::Failed => DeliveryStatus::Failed,
            DeliveryState::Delivered => DeliveryStatus::Delivered,
            DeliveryState::Dead => DeliveryStatus::Dead,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only deliveries in this state.
    pub status: Option<DeliveryState>,
    /// `next_before` of the previous page.
    pub before: Option<Uuid>,
    /// 1..200, default 50.
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Sent as `webhook-id`.
    pub delivery_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    /// When the next attempt is due (pending and failed deliveries).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_response_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// The body sent.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<Delivery> for DeliveryView {
    fn from(delivery: Delivery) -> Self {
        let waiting = matches!(
            DeliveryStatus::parse(&delivery.status),
            Some(DeliveryStatus::Pending | DeliveryStatus::Failed)
        );
        Self {
            delivery_id: delivery.delivery_id,
            event_id: delivery.event_id,
            event_type: delivery.event_type,
            status: delivery.status,
            attempts: delivery.attempts,
            next_attempt_at: waiting.then_some(delivery.next_attempt_at),
            last_attempt_at: delivery.last_attempt_at,
            last_response_status: delivery.last_response_status,
            last_error: delivery.last_error,
            created_at: delivery.created_at,
            delivered_at: delivery.delivered_at,
            payload: serde_json::from_str(&delivery.payload).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<Uuid>,
}

/// A webhook's deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/integrations/{name}/deliveries", tag = "integrations",
    params(("name" = String, Path), DeliveryParams),
    responses((status = 200, body = DeliveryList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    access: Access,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<DeliveryParams>,
) -> Result<axum::Json<DeliveryList>, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    let limit = params.limit.unwrap_or(DEFAULT_DELIVERIES_PAGE);
    let deliveries = state
        .integrations
        .deliveries(
            &tenant,
            &name,
            params.status.map(DeliveryStatus::from),
            params.before,
            limit,
        )
        .await?;
    let full = deliveries.len() as u64 == limit;
    let next_before = full
        .then(|| deliveries.last().map(|delivery| delivery.delivery_id))
        .flatten();
    Ok(axum::Json(DeliveryList {
        deliveries: deliveries.into_iter().map(DeliveryView::from).collect(),
        next_before,
    }))
}

/// Send a failed or dead delivery again, with a fresh budget of attempts.
#[utoipa::path(post, path = "/api/v1/integrations/{name}/deliveries/{delivery_id}/retry",
    tag = "integrations",
    params(("name" = String, Path), ("delivery_id" = Uuid, Path)),
    responses((status = 202, body = DeliveryView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "neither failed nor dead")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn retry_delivery(
    State(state): State<AppState>,
    access: Access,
    ApiPath((name, delivery_id)): ApiPath<(String, Uuid)>,
) -> Result<impl IntoResponse, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    let delivery = state
        .integrations
        .retry(&tenant, &name, delivery_id)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(DeliveryView::from(delivery)),
    ))
}

/// Run a GitHubProjects integration's sync now: reads the board (from where a paused sync
/// stopped) and writes what changed.
#[utoipa::path(post, path = "/api/v1/integrations/{name}/sync", tag = "integrations",
    params(("name" = String, Path)),
    responses((status = 200, body = SyncReport),
        (status = 202, body = SyncStarted, description = "still running; the state will say how it ended"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "a sync of it is running"),
        (status = 422, body = ErrorBody, description = "not a GitHubProjects integration"),
        (status = 502, body = ErrorBody, description = "GitHub refused or failed; the state says why")),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn sync_integration(
    State(state): State<AppState>,
    access: Access,
    ApiPath(name): ApiPath<String>,
) -> Result<axum::response::Response, ApiError> {
    let tenant = access.tenant().cloned().ok_or_else(ApiError::forbidden)?;
    match state.integrations.sync_now(&tenant, &name).await {
        Ok(SyncRun::Finished(report)) => Ok(axum::Json(report).into_response()),
        Ok(SyncRun::Running) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(SyncStarted {
                status: "running".to_string(),
                message: format!(
                    "the sync of {name} goes on in the background; GET /api/v1/integrations shows its state"
                ),
            }),
        )
            .into_response()),
        Err(SyncFailure::Service(error)) => Err(error.into()),
        Err(SyncFailure::Sync(error)) => Err(sync_error(error)),
        Err(SyncFailure::Crashed(reason)) => {
            tracing::error!(%reason, "an on-demand GitHub sync stopped unexpectedly");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "the sync stopped unexpectedly; the next scheduled run goes on from its cursor",
            ))
        }
        Err(SyncFailure::Disabled) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "INTEGRATIONS_DISABLED",
            "integrations are switched off on this platform (integrations.enabled)",
        )),
    }
}

/// A sync that goes on in the background.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncStarted {
    /// `running`.
    pub status: String,
    pub message: String,
}

fn sync_error(error: SyncError) -> ApiError {
    match error {
        SyncError::Busy => ApiError::new(
            StatusCode::CONFLICT,
            "SYNC_RUNNING",
            "a sync of this integration is running; its report is in the integration's state",
        ),
        SyncError::Service(error) => error.into(),
        SyncError::NotSynchronised | SyncError::Settings(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_FAILED",
            error.to_string(),
        ),
        SyncError::GitHub(error) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "GITHUB_FAILED", error.to_string())
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GitHubDeliveryParams {
    /// The tenant the integration belongs to (GitHub sends no credential).
    pub tenant: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GitHubDeliveryAnswer {
    /// `created`, `updated`, `unchanged`, `removed`, `ignored`, `pong` or `duplicate`.
    pub outcome: String,
}

/// GitHub's webhook for a synchronised board (`projects_v2_item`, `issues`, `pull_request`,
/// `ping`): authenticated by `X-Hub-Signature-256` with the integration's webhook secret, not by
/// a credential. A delivery id seen before changes nothing.
#[utoipa::path(post, path = "/api/v1/integrations/{name}/github", tag = "integrations",
    params(("name" = String, Path), GitHubDeliveryParams,
        ("X-Hub-Signature-256" = String, Header), ("X-GitHub-Event" = String, Header),
        ("X-GitHub-Delivery" = String, Header)),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, body = GitHubDeliveryAnswer),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody, description = "the signature does not verify"),
        (status = 502, body = ErrorBody, description = "GitHub could not be asked about the item; redeliver later")))]
pub async fn receive_github_delivery(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(params): ApiQuery<GitHubDeliveryParams>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<axum::Json<GitHubDeliveryAnswer>, ApiError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let tenant = match memoryc_crds::layout::TenantName::parse(&params.tenant) {
        Ok(tenant_name) => state.tenants.find(&tenant_name).await?,
        Err(_) => None,
    };
    let (event, delivery_id, signature) = (
        header(EVENT_HEADER),
        header(DELIVERY_HEADER),
        header(SIGNATURE_HEADER),
    );
    let delivery = InboundDelivery {
        event: &event,
        delivery_id: &delivery_id,
        signature: &signature,
        body: &body,
    };
    let handled = state
        .integrations
        .receive_github(tenant.as_ref(), &name, delivery)
        .await;
    let outcome = match handled {
        Ok(Handled::Done(outcome)) => outcome,
        Ok(Handled::Duplicate) => "duplicate",
        Err(InboundError::BadSignature) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "BAD_SIGNATURE",
                "X-Hub-Signature-256 does not verify for this tenant and integration",
            ));
        }
        Err(InboundError::Malformed(reason)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "MALFORMED_DELIVERY",
                reason,
            ));
        }
        Err(InboundError::Sync(error)) => return Err(sync_error(error)),
    };
    Ok(axum::Json(GitHubDeliveryAnswer {
        outcome: outcome.to_string(),
    }))
}
