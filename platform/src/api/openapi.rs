//! The OpenAPI document, generated from the handlers and types.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, audit, grants, keys, memories, monitoring, settings};

#[derive(OpenApi)]
#[openapi(
    info(title = "Memory-C* platform API", description = "Tenant-scoped memories for AI agents."),
    paths(
        memories::create_memory,
        memories::search_memories,
        memories::get_memory,
        memories::update_memory,
        memories::delete_memory,
        monitoring::health,
        keys::issue_key,
        keys::list_keys,
        keys::revoke_key,
        grants::list_grants,
        grants::add_grant,
        grants::remove_grant,
        admin::list_tenants,
        admin::create_tenant,
        admin::read_rate_limit,
        admin::set_rate_limit,
        audit::read_audit_log,
        settings::read_pii_policy,
        settings::set_pii_policy,
    ),
    modifiers(&SecuritySchemes),
    tags((name = "memories"), (name = "monitoring"),
        (name = "keys", description = "API keys of the tenant (tenant-admin)"),
        (name = "grants", description = "Roles of the tenant's users (tenant-admin)"),
        (name = "admin", description = "Platform operators (platform-admin)"),
        (name = "audit", description = "The tenant's audit log (tenant-admin)"),
        (name = "settings", description = "The tenant's PII policy (tenant-admin)"))
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
    }
}

pub async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
