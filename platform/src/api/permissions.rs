//! Which permission every route needs: the one table the guard enforces and the role and
//! isolation matrices test. A route missing here is denied, so adding a route means adding a
//! row.

use axum::http::Method;

use crate::auth::permission::Action::{Read, Write};
use crate::auth::permission::Requirement::{self, Memories, Platform, Public, Tenant};
use crate::auth::permission::{ANALYTICS, AUDIT, GRANTS, KEYS, PII_POLICY, RATE_LIMITS, TENANTS};

#[derive(Debug, Clone)]
pub struct RoutePermission {
    pub method: Method,
    /// The route as registered, e.g. `/api/v1/memories/{id}`.
    pub path: &'static str,
    pub requirement: Requirement,
}

const fn route(method: Method, path: &'static str, requirement: Requirement) -> RoutePermission {
    RoutePermission {
        method,
        path,
        requirement,
    }
}

/// Every route of `/api/v1` and what it needs.
#[rustfmt::skip]
pub static ROUTES: &[RoutePermission] = &[
    route(Method::GET, "/api/v1/memories", Memories(Read)),
    route(Method::POST, "/api/v1/memories", Memories(Write)),
    route(Method::GET, "/api/v1/memories/{id}", Memories(Read)),
    route(Method::PATCH, "/api/v1/memories/{id}", Memories(Write)),
    route(Method::DELETE, "/api/v1/memories/{id}", Memories(Write)),
    route(Method::GET, "/api/v1/memories/{id}/relationships", Memories(Read)),
    route(Method::GET, "/api/v1/memories/{id}/history", Memories(Read)),
    route(Method::GET, "/api/v1/analytics/insights", Tenant(ANALYTICS, Read)),
    route(Method::PATCH, "/api/v1/analytics/insights/{insight_id}", Tenant(ANALYTICS, Write)),
    // Events name memories and queries of individual users: visible as memories are.
    route(Method::GET, "/api/v1/analytics/events", Memories(Read)),
    route(Method::GET, "/api/v1/analytics/summary", Tenant(ANALYTICS, Read)),
    route(Method::POST, "/api/v1/analytics/run", Tenant(ANALYTICS, Write)),
    route(Method::GET, "/api/v1/keys", Tenant(KEYS, Read)),
    route(Method::POST, "/api/v1/keys", Tenant(KEYS, Write)),
    route(Method::DELETE, "/api/v1/keys/{key_id}", Tenant(KEYS, Write)),
    route(Method::GET, "/api/v1/grants", Tenant(GRANTS, Read)),
    route(Method::POST, "/api/v1/grants", Tenant(GRANTS, Write)),
    route(Method::DELETE, "/api/v1/grants/{user_id}/{role}", Tenant(GRANTS, Write)),
    route(Method::GET, "/api/v1/audit", Tenant(AUDIT, Read)),
    route(Method::GET, "/api/v1/settings/pii-policy", Tenant(PII_POLICY, Read)),
    route(Method::PUT, "/api/v1/settings/pii-policy", Tenant(PII_POLICY, Write)),
    route(Method::GET, "/api/v1/settings/analytics", Tenant(ANALYTICS, Read)),
    route(Method::PUT, "/api/v1/settings/analytics", Tenant(ANALYTICS, Write)),
    route(Method::GET, "/api/v1/admin/tenants", Platform(TENANTS, Read)),
    route(Method::POST, "/api/v1/admin/tenants", Platform(TENANTS, Write)),
    route(Method::GET, "/api/v1/admin/tenants/{tenant}/rate-limit", Platform(RATE_LIMITS, Read)),
    route(Method::PUT, "/api/v1/admin/tenants/{tenant}/rate-limit", Platform(RATE_LIMITS, Write)),
    route(Method::GET, "/api/v1/monitoring/health", Public),
    route(Method::GET, "/api/v1/openapi.json", Public),
    // Scrapers hold no tenant credential; the handler checks the optional metrics token.
    route(Method::GET, "/api/v1/metrics", Public),
];

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
