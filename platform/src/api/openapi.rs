//! The OpenAPI document, generated from the handlers and types of the route table.

use axum::http::Method;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::memories;
use super::permissions;
use crate::auth::permission::Requirement;

#[derive(OpenApi)]
#[openapi(
    info(title = "Memory-C* platform API", description = "Tenant-scoped memories for AI agents."),
    // Types used only in query and path parameters are not collected on their own.
    components(schemas(memories::SearchModeParam, crate::domain::Category, crate::auth::Role,
        crate::domain::analytics::EventType, crate::domain::analytics::InsightType,
        super::integrations::DeliveryState,
        // The answer of `POST /memories` with `infer`.
        crate::services::integrations::llm::inference::Inferred,
        crate::services::integrations::llm::inference::InferredChange)),
    modifiers(&SecuritySchemes),
    tags((name = "memories"), (name = "monitoring"),
        (name = "analytics", description = "Insights, events and usage of the tenant"),
        (name = "keys", description = "API keys of the tenant (tenant-admin)"),
        (name = "grants", description = "Roles of the tenant's users (tenant-admin)"),
        (name = "admin", description = "Platform operators (platform-admin)"),
        (name = "audit", description = "The tenant's audit log (tenant-admin)"),
        (name = "integrations", description = "Webhooks and other integrations of the tenant, with their deliveries (tenant-admin; readers may list)"),
        (name = "settings", description = "The tenant's PII policy and analytics schedule (tenant-admin)"))
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The configured metrics_token; only when one is set"))
                    .build(),
            ),
        );
    }
}

/// Documents the answers every guarded route can give whatever its handler does (401, 403,
/// 429 from the guard; 400, 413, 415, 422 from the extractors), so the document matches what
/// clients and the fuzzer see, and a new route gets them without repeating them.
struct GuardResponses;

impl Modify for GuardResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (Method::GET, item.get.as_mut()),
                (Method::PUT, item.put.as_mut()),
                (Method::POST, item.post.as_mut()),
                (Method::DELETE, item.delete.as_mut()),
                (Method::PATCH, item.patch.as_mut()),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else {
                    continue;
                };
                let guarded = permissions::lookup(&method, path).is_some_and(|route| {
                    !matches!(route.requirement, Requirement::Public | Requirement::Signed)
                });
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(description).into());
                };
                if guarded {
                    add("400", "Malformed path, query or body");
                    add("401", "No valid API key or JWT");
                    add("403", "The caller's roles do not allow this route");
                    add("429", "Over the rate limit; see Retry-After");
                }
                if operation.request_body.is_some() {
                    add("413", "Body larger than the limit");
                    add("415", "Body is not application/json");
                    add("422", "Body does not match the schema");
                }
            }
        }
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
}

/// The whole document: the API's description and schemas, every documented route's operation
/// (see `permissions::RoutesDoc`), and the answers the guard and extractors add to each.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    document.merge(permissions::RoutesDoc::openapi());
    GuardResponses.modify(&mut document);
    document
}

pub async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(document())
}
