//! Every route of `/api/v1`, declared once: its method and path, the permission the guard
//! enforces (and the role and isolation matrices test), its handler, from which the router is
//! built, and, for documented routes, its OpenAPI operation (the handler's `#[utoipa::path]`,
//! collected into [`RoutesDoc`]). A route cannot be served without a row here, so it cannot
//! exist without its permission.

use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};

use super::state::AppState;
use super::{
    admin, analytics, audit, grants, integrations, keys, memories, metrics, monitoring, openapi,
    settings,
};
use crate::auth::permission::Action::{Read, Write};
use crate::auth::permission::Requirement::{self, Memories, Platform, Public, Signed, Tenant};
use crate::auth::permission::{
    ANALYTICS, AUDIT, GRANTS, INTEGRATIONS, KEYS, PII_POLICY, RATE_LIMITS, TENANTS,
};

#[derive(Debug, Clone)]
pub struct RoutePermission {
    pub method: Method,
    /// The route as registered, e.g. `/api/v1/memories/{id}`.
    pub path: &'static str,
    pub requirement: Requirement,
    /// The handler, routed for `method` alone.
    pub serve: fn() -> MethodRouter<AppState>,
}

/// The table of routes: `METHOD "path" => module::handler, requirement;` per route, the
/// documented ones first (their handlers carry `#[utoipa::path]`), then the undocumented.
macro_rules! api_routes {
    (
        documented { $($method:ident $path:literal => $module:ident :: $handler:ident, $requirement:expr;)+ }
        undocumented { $($u_method:ident $u_path:literal => $u_module:ident :: $u_handler:ident, $u_requirement:expr;)* }
    ) => {
        /// Every route of `/api/v1` and what it needs.
        pub static ROUTES: &[RoutePermission] = &[
            $(RoutePermission {
                method: Method::$method,
                path: $path,
                requirement: $requirement,
                serve: || on(MethodFilter::$method, $module::$handler),
            },)+
            $(RoutePermission {
                method: Method::$u_method,
                path: $u_path,
                requirement: $u_requirement,
                serve: || on(MethodFilter::$u_method, $u_module::$u_handler),
            },)*
        ];

        /// The OpenAPI operations of the documented routes, with the schemas they use.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($module::$handler),+))]
        pub struct RoutesDoc;
    };
}

#[rustfmt::skip]
api_routes! {
    documented {
        GET "/api/v1/memories" => memories::search_memories, Memories(Read);
        POST "/api/v1/memories" => memories::create_memory, Memories(Write);
        GET "/api/v1/memories/{id}" => memories::get_memory, Memories(Read);
        PATCH "/api/v1/memories/{id}" => memories::update_memory, Memories(Write);
        DELETE "/api/v1/memories/{id}" => memories::delete_memory, Memories(Write);
        GET "/api/v1/memories/{id}/relationships" => analytics::memory_relationships, Memories(Read);
        GET "/api/v1/memories/{id}/history" => analytics::memory_history, Memories(Read);
        GET "/api/v1/analytics/insights" => analytics::list_insights, Tenant(ANALYTICS, Read);
        PATCH "/api/v1/analytics/insights/{insight_id}" => analytics::mark_insight, Tenant(ANALYTICS, Write);
        // Events name memories and queries of individual users: visible as memories are.
        GET "/api/v1/analytics/events" => analytics::list_events, Memories(Read);
        GET "/api/v1/analytics/summary" => analytics::usage_summary, Tenant(ANALYTICS, Read);
        POST "/api/v1/analytics/run" => analytics::run_analytics, Tenant(ANALYTICS, Write);
        GET "/api/v1/keys" => keys::list_keys, Tenant(KEYS, Read);
        POST "/api/v1/keys" => keys::issue_key, Tenant(KEYS, Write);
        DELETE "/api/v1/keys/{key_id}" => keys::revoke_key, Tenant(KEYS, Write);
        GET "/api/v1/grants" => grants::list_grants, Tenant(GRANTS, Read);
        POST "/api/v1/grants" => grants::add_grant, Tenant(GRANTS, Write);
        DELETE "/api/v1/grants/{user_id}/{role}" => grants::remove_grant, Tenant(GRANTS, Write);
        GET "/api/v1/audit" => audit::read_audit_log, Tenant(AUDIT, Read);
        GET "/api/v1/integrations" => integrations::list_integrations, Tenant(INTEGRATIONS, Read);
        POST "/api/v1/integrations" => integrations::create_integration, Tenant(INTEGRATIONS, Write);
        DELETE "/api/v1/integrations/{name}" => integrations::delete_integration, Tenant(INTEGRATIONS, Write);
        GET "/api/v1/integrations/{name}/deliveries" => integrations::list_deliveries, Tenant(INTEGRATIONS, Read);
        POST "/api/v1/integrations/{name}/deliveries/{delivery_id}/retry" => integrations::retry_delivery, Tenant(INTEGRATIONS, Write);
        POST "/api/v1/integrations/{name}/sync" => integrations::sync_integration, Tenant(INTEGRATIONS, Write);
        // GitHub sends no credential: the handler checks the body's signature.
        POST "/api/v1/integrations/{name}/github" => integrations::receive_github_delivery, Signed;
        GET "/api/v1/settings/pii-policy" => settings::read_pii_policy, Tenant(PII_POLICY, Read);
        PUT "/api/v1/settings/pii-policy" => settings::set_pii_policy, Tenant(PII_POLICY, Write);
        GET "/api/v1/settings/analytics" => settings::read_analytics_settings, Tenant(ANALYTICS, Read);
        PUT "/api/v1/settings/analytics" => settings::set_analytics_settings, Tenant(ANALYTICS, Write);
        GET "/api/v1/admin/tenants" => admin::list_tenants, Platform(TENANTS, Read);
        POST "/api/v1/admin/tenants" => admin::create_tenant, Platform(TENANTS, Write);
        GET "/api/v1/admin/tenants/{tenant}/rate-limit" => admin::read_rate_limit, Platform(RATE_LIMITS, Read);
        PUT "/api/v1/admin/tenants/{tenant}/rate-limit" => admin::set_rate_limit, Platform(RATE_LIMITS, Write);
        GET "/api/v1/monitoring/health" => monitoring::health, Public;
        // Scrapers hold no tenant credential; the handler checks the optional metrics token.
        GET "/api/v1/metrics" => metrics::metrics, Public;
    }
    undocumented {
        GET "/api/v1/openapi.json" => openapi::openapi_json, Public;
    }
}

/// The permission of a matched route, if the table has one.
pub fn lookup(method: &Method, path: &str) -> Option<&'static RoutePermission> {
    ROUTES
        .iter()
        .find(|route| route.method == *method && route.path == path)
}

/// The methods the table lists for a path; empty for unknown paths.
pub fn methods_of(path: &str) -> Vec<&'static Method> {
    ROUTES
        .iter()
        .filter(|route| route.path == path)
        .map(|route| &route.method)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_has_exactly_the_documented_routes() {
        use utoipa::OpenApi;
        let document = RoutesDoc::openapi();
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, item) in &document.paths.paths {
            let operations = [
                ("GET", item.get.is_some()),
                ("PUT", item.put.is_some()),
                ("POST", item.post.is_some()),
                ("DELETE", item.delete.is_some()),
                ("PATCH", item.patch.is_some()),
            ];
            for (method, present) in operations {
                if present {
                    documented.push((method.to_string(), path.clone()));
                }
            }
        }
        documented.sort();
        let mut expected: Vec<(String, String)> = ROUTES
            .iter()
            .filter(|route| route.path != "/api/v1/openapi.json")
            .map(|route| (route.method.to_string(), route.path.to_string()))
            .collect();
        expected.sort();
        assert_eq!(documented, expected, "each annotation's path is its row's");
    }

    #[test]
    fn every_route_appears_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
    }
}
