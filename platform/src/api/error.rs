//! The one error type of the HTTP API: `{error_code, message, context}` with the right status.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::domain::validation::InputError;
use crate::services::ServiceError;
use crate::stores::StoreError;

/// Body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code, e.g. `VALIDATION_FAILED`.
    pub error_code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// Details that help fix the request (field, limit, ...).
    #[schema(value_type = Object)]
    pub context: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, error_code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error_code,
                message: message.into(),
                context: json!({}),
            },
        }
    }

    pub fn with_context(mut self, context: serde_json::Value) -> Self {
        self.body.context = context;
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "a valid API key (X-API-Key) or JWT (Authorization: Bearer) is required",
        )
    }

    /// The caller is known but its roles do not allow the route. Only ever about the route,
    /// never about a particular record, so it reveals nothing about what exists.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "the caller's roles do not allow this request",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<InputError> for ApiError {
    fn from(error: InputError) -> Self {
        let message = error.to_string();
        match error {
            InputError::Blank { field } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_FAILED",
                message,
            )
            .with_context(json!({ "field": field })),
            InputError::TooLarge {
                field,
                actual,
                limit,
                unit,
            } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", message)
                .with_context(
                    json!({ "field": field, "actual": actual, "limit": limit, "unit": unit }),
                ),
            InputError::Invalid { field, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_FAILED",
                message,
            )
            .with_context(json!({ "field": field })),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Input(input) => input.into(),
            ServiceError::NotFound(what) => ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("{what} not found"),
            ),
            ServiceError::QuotaExceeded { max, stored } => ApiError::new(
                StatusCode::FORBIDDEN,
                "QUOTA_EXCEEDED",
                "the tenant stores as many memories as its quota allows; purge memories \
                 (soft-deleted ones count until purged) or raise spec.storage.maxMemories",
            )
            .with_context(json!({ "max_memories": max, "stored": stored })),
            ServiceError::PiiRejected { field, kinds } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "PII_DETECTED",
                format!(
                    "the {field} holds personal data or secrets, which this tenant's PII policy rejects"
                ),
            )
            .with_context(json!({
                "field": field,
                "kinds": kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            })),
            ServiceError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "CONFLICT", message)
            }
            ServiceError::Store(StoreError::Unavailable(detail)) => {
                tracing::error!(%detail, "relational store unavailable");
                unavailable("relational")
            }
            ServiceError::Store(StoreError::Conflict(detail)) => {
                ApiError::new(StatusCode::CONFLICT, "CONFLICT", detail)
            }
            // The credential names a tenant whose storage is gone (erased while the request
            // was on its way): as absent as any other unknown thing, not a server fault.
            ServiceError::Store(StoreError::UnknownTenant(tenant)) => ApiError::new(
                StatusCode::NOT_FOUND,
                "TENANT_NOT_FOUND",
                format!("tenant {tenant} has no storage on this platform"),
            ),
            ServiceError::Vector(error) => {
                tracing::error!(%error, "vector store failed");
                unavailable("vector")
            }
            ServiceError::Embedding(error) => {
                tracing::error!(%error, "embedding failed");
                unavailable("embedding")
            }
            ServiceError::Store(error) => {
                tracing::error!(%error, "store failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "the request could not be completed",
                )
            }
        }
    }
}

fn unavailable(backend: &'static str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "BACKEND_UNAVAILABLE",
        format!("the {backend} backend is unavailable; retry later"),
    )
    .with_context(json!({ "backend": backend }))
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let message = rejection.body_text();
        match rejection {
            JsonRejection::JsonDataError(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_FAILED",
                message,
            ),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                message,
            ),
            JsonRejection::BytesRejection(_) if rejection_is_too_large(&message) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "request body is too large",
            )
            .with_context(json!({ "limit_bytes": crate::domain::limits::MAX_REQUEST_BODY_BYTES })),
            _ => ApiError::new(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST", message),
        }
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        let message = rejection.body_text();
        if rejection_is_too_large(&message) {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "request body is too large",
            )
            .with_context(json!({ "limit_bytes": crate::domain::limits::MAX_REQUEST_BODY_BYTES }))
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST", message)
        }
    }
}

fn rejection_is_too_large(message: &str) -> bool {
    message.contains("length limit") || message.contains("too large")
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY",
            rejection.body_text(),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_PATH",
            rejection.body_text(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_without_storage_is_not_found_rather_than_a_server_fault() {
        let error: ApiError =
            ServiceError::Store(StoreError::UnknownTenant("acme".to_string())).into();
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
