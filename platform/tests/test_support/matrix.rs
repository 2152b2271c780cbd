//! The expected outcome of every route for every role: the one table the role matrix and the
//! isolation matrix read. A new route gets a row here and in `api::permissions::ROUTES`; the
//! tests fail until both agree.

use memoryc_platform::auth::Role;

/// What a role may do on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Refused with 403 whatever the request.
    Denied,
    /// Allowed on everything of its tenant.
    Allowed,
    /// Allowed on the caller's own memories only; others answer 404.
    Own,
    /// No credential counts: the sender's signature of the body does. Every caller without
    /// one is refused with 401, whichever tenant's names it uses.
    Signed,
}

/// `(method, path, [(role, outcome)])`; roles not listed are denied.
pub type Expectation = (&'static str, &'static str, &'static [(Role, Outcome)]);

use Outcome::{Allowed, Own, Signed};
use Role::{Member, PlatformAdmin, Reader, Service, TenantAdmin};

#[rustfmt::skip]
pub const EXPECTED: &[Expectation] = &[
    ("GET", "/api/v1/memories", &[(TenantAdmin, Allowed), (Service, Allowed), (Reader, Allowed), (Member, Own)]),
    ("POST", "/api/v1/memories", &[(TenantAdmin, Allowed), (Service, Allowed), (Member, Own)]),
    ("GET", "/api/v1/memories/{id}", &[(TenantAdmin, Allowed), (Service, Allowed), (Reader, Allowed), (Member, Own)]),
    ("PATCH", "/api/v1/memories/{id}", &[(TenantAdmin, Allowed), (Service, Allowed), (Member, Own)]),
    ("DELETE", "/api/v1/memories/{id}", &[(TenantAdmin, Allowed), (Service, Allowed), (Member, Own)]),
    ("GET", "/api/v1/memories/{id}/relationships", &[(TenantAdmin, Allowed), (Service, Allowed), (Reader, Allowed), (Member, Own)]),
    ("GET", "/api/v1/memories/{id}/history", &[(TenantAdmin, Allowed), (Service, Allowed), (Reader, Allowed), (Member, Own)]),
    ("GET", "/api/v1/analytics/insights", &[(TenantAdmin, Allowed), (Reader, Allowed)]),
    ("PATCH", "/api/v1/analytics/insights/{insight_id}", &[(TenantAdmin, Allowed)]),
    ("GET", "/api/v1/analytics/events", &[(TenantAdmin, Allowed), (Service, Allowed), (Reader, Allowed), (Member, Own)]),
    ("GET", "/api/v1/analytics/summary", &[(TenantAdmin, Allowed), (Reader, Allowed)]),
    ("POST", "/api/v1/analytics/run", &[(TenantAdmin, Allowed)]),
    ("GET", "/api/v1/keys", &[(TenantAdmin, Allowed)]),
    ("POST", "/api/v1/keys", &[(TenantAdmin, Allowed)]),
    ("DELETE", "/api/v1/keys/{key_id}", &[(TenantAdmin, Allowed)]),
    ("GET", "/api/v1/grants", &[(TenantAdmin, Allowed)]),
    ("POST", "/api/v1/grants", &[(TenantAdmin, Allowed)]),
    ("DELETE", "/api/v1/grants/{user_id}/{role}", &[(TenantAdmin, Allowed)]),
    ("GET", "/api/v1/audit", &[(TenantAdmin, Allowed)]),
    ("GET", "/api/v1/integrations", &[(TenantAdmin, Allowed), (Reader, Allowed)]),
    ("POST", "/api/v1/integrations", &[(TenantAdmin, Allowed)]),
    ("DELETE", "/api/v1/integrations/{name}", &[(TenantAdmin, Allowed)]),
    ("GET", "/api/v1/integrations/{name}/deliveries", &[(TenantAdmin, Allowed), (Reader, Allowed)]),
    ("POST", "/api/v1/integrations/{name}/deliveries/{delivery_id}/retry", &[(TenantAdmin, Allowed)]),
    ("POST", "/api/v1/integrations/{name}/sync", &[(TenantAdmin, Allowed)]),
    ("POST", "/api/v1/integrations/{name}/github", &[(TenantAdmin, Signed), (Service, Signed), (Reader, Signed), (Member, Signed), (PlatformAdmin, Signed)]),
    ("GET", "/api/v1/settings/pii-policy", &[(TenantAdmin, Allowed)]),
    ("PUT", "/api/v1/settings/pii-policy", &[(TenantAdmin, Allowed)]),
    ("GET", "/api/v1/settings/analytics", &[(TenantAdmin, Allowed), (Reader, Allowed)]),
    ("PUT", "/api/v1/settings/analytics", &[(TenantAdmin, Allowed)]),
    ("GET", "/api/v1/admin/tenants", &[(PlatformAdmin, Allowed)]),
    ("POST", "/api/v1/admin/tenants", &[(PlatformAdmin, Allowed)]),
    ("GET", "/api/v1/admin/tenants/{tenant}/rate-limit", &[(PlatformAdmin, Allowed)]),
    ("PUT", "/api/v1/admin/tenants/{tenant}/rate-limit", &[(PlatformAdmin, Allowed)]),
    ("GET", "/api/v1/monitoring/health", &[(TenantAdmin, Allowed), (Service, Allowed), (Reader, Allowed), (Member, Allowed), (PlatformAdmin, Allowed)]),
    ("GET", "/api/v1/openapi.json", &[(TenantAdmin, Allowed), (Service, Allowed), (Reader, Allowed), (Member, Allowed), (PlatformAdmin, Allowed)]),
    ("GET", "/api/v1/metrics", &[(TenantAdmin, Allowed), (Service, Allowed), (Reader, Allowed), (Member, Allowed), (PlatformAdmin, Allowed)]),
];

/// The expected outcome of `role` on `method path`; `None` when the table has no row.
pub fn expected(method: &str, path: &str, role: Role) -> Option<Outcome> {
    let (_, _, allowed) = EXPECTED
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)?;
    Some(
        allowed
            .iter()
            .find(|(r, _)| *r == role)
            .map_or(Outcome::Denied, |(_, outcome)| *outcome),
    )
}
