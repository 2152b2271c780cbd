//! The shipped policy files against every route and every role: the policy allows exactly
//! what `test_support::matrix::EXPECTED` says, and the route table and the expectations name the
//! same routes. The same table drives the HTTP role matrix in `access_matrix.rs`.

mod test_support;

use memoryc_crds::layout::{Isolation, TenantName};
use memoryc_platform::api::permissions::ROUTES;
use memoryc_platform::auth::access::{Denial, decide};
use memoryc_platform::auth::permission::Requirement;
use memoryc_platform::auth::policy::{PolicyEnforcer, PolicySource};
use memoryc_platform::auth::{Credential, Principal, Role};
use memoryc_platform::stores::Tenant;
use test_support::matrix::{EXPECTED, Outcome, expected};
use uuid::Uuid;

fn principal(role: Role, tenant: Option<&str>) -> Principal {
    Principal {
        user_id: Uuid::now_v7(),
        tenant: tenant.map(|name| Tenant {
            tenant_id: Uuid::now_v7(),
            name: TenantName::parse(name).expect("tenant name"),
            display_name: name.to_string(),
            isolation: Isolation::Shared,
            created_at: chrono::Utc::now(),
        }),
        roles: vec![role.as_str().to_string()],
        credential: Credential::Jwt {
            subject: "matrix".to_string(),
        },
    }
}

fn outcome_of(policy: &PolicyEnforcer, principal: &Principal, requirement: Requirement) -> Outcome {
    // No role counts where the sender's signature does (checked by the handler).
    if requirement == Requirement::Signed {
        return Outcome::Signed;
    }
    match decide(policy, principal, requirement) {
        Ok(access) if access.owner_only == Some(principal.user_id) => Outcome::Own,
        Ok(access) => {
            assert_eq!(access.owner_only, None);
            Outcome::Allowed
        }
        Err(Denial::NoTenant | Denial::NotPermitted) => Outcome::Denied,
    }
}

async fn shipped_policy() -> PolicyEnforcer {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    PolicyEnforcer::load(PolicySource::Directory(dir), None)
        .await
        .expect("the files in policies/ load")
}

#[tokio::test]
async fn every_route_allows_exactly_the_expected_roles() {
    let policy = shipped_policy().await;
    let mut checked = 0;
    for route in ROUTES {
        for role in Role::ALL {
            let want = expected(route.method.as_str(), route.path, role)
                .unwrap_or_else(|| panic!("no expectation for {} {}", route.method, route.path));
            // Platform operators act without a tenant; everyone else inside one.
            let tenant = (role != Role::PlatformAdmin).then_some("acme");
            let got = outcome_of(&policy, &principal(role, tenant), route.requirement);
            assert_eq!(got, want, "{role} on {} {}", route.method, route.path);
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len() * Role::ALL.len());
}

#[tokio::test]
async fn expectations_and_the_route_table_name_the_same_routes() {
    for (method, path, _) in EXPECTED {
        assert!(
            ROUTES
                .iter()
                .any(|r| r.method.as_str() == *method && r.path == *path),
            "{method} {path} is expected but not in the route table"
        );
    }
    assert_eq!(EXPECTED.len(), ROUTES.len());
}

#[tokio::test]
async fn a_platform_admin_inside_a_tenant_still_reads_no_content() {
    let policy = shipped_policy().await;
    for route in ROUTES {
        if matches!(
            route.requirement,
            Requirement::Memories(_) | Requirement::Tenant(..)
        ) {
            let admin = principal(Role::PlatformAdmin, Some("acme"));
            assert_eq!(
                outcome_of(&policy, &admin, route.requirement),
                Outcome::Denied,
                "{} {}",
                route.method,
                route.path
            );
        }
    }
}

#[tokio::test]
async fn tenant_roles_never_reach_platform_routes_even_without_a_tenant() {
    let policy = shipped_policy().await;
    for route in ROUTES {
        if let Requirement::Platform(..) = route.requirement {
            for role in Role::ALL.into_iter().filter(|r| *r != Role::PlatformAdmin) {
                for tenant in [None, Some("acme")] {
                    assert_eq!(
                        outcome_of(&policy, &principal(role, tenant), route.requirement),
                        Outcome::Denied,
                        "{role} on {} {}",
                        route.method,
                        route.path
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn unknown_and_forged_roles_are_denied_everywhere() {
    let policy = shipped_policy().await;
    for route in ROUTES {
        if matches!(route.requirement, Requirement::Public | Requirement::Signed) {
            continue;
        }
        let mut nobody = principal(Role::Reader, Some("acme"));
        nobody.roles = vec!["nobody".to_string(), "*".to_string(), "".to_string()];
        assert_eq!(
            outcome_of(&policy, &nobody, route.requirement),
            Outcome::Denied,
            "{} {}",
            route.method,
            route.path
        );
    }
}
