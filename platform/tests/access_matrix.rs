//! Every route × every role over HTTP, on SQLite + the embedded index and on PostgreSQL +
//! Milvus:
//! * the role matrix: each role gets exactly what `test_support::matrix::EXPECTED` says in its own
//!   tenant (members only their own memories);
//! * the isolation matrix: a principal of tenant A never reads, lists, searches, changes or
//!   deletes tenant B's data; B's ids answer exactly like ids that exist nowhere (404 where the
//!   role may use the route, 403 where it may not), so existence does not leak;
//! * a property test with random ids, tenants, roles and credential kinds backs both.
//!
//! Routes come from `api::permissions::ROUTES`; a new route needs a row in `EXPECTED` and, if
//! it has a new path parameter, a line in `fill_path`.

mod test_support;

use std::collections::HashMap;

use memoryc_platform::api::permissions::{ROUTES, RoutePermission};
use memoryc_platform::auth::Role;
use memoryc_platform::auth::permission::Requirement;
use proptest::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::fake_github::{FakeGitHub, FakeItem};
use test_support::matrix::{Outcome, expected};
use test_support::{
    Backends, Caller, TestPlatform, hs256_token, platform_admin_token, test_config, unique,
};
use uuid::Uuid;

/// Words only tenant B's memories contain, to catch them in any response.
const B_MARKER: &str = "zebracorn";

/// What a probe points its path parameters and body at.
#[derive(Debug, Clone)]
struct Target {
    memory_id: String,
    key_id: String,
    user_id: Uuid,
    tenant: String,
    insight_id: String,
    integration: String,
    delivery_id: String,
}

impl Target {
    fn nowhere() -> Self {
        Target {
            memory_id: Uuid::now_v7().to_string(),
            key_id: Uuid::now_v7().to_string(),
            user_id: Uuid::now_v7(),
            tenant: unique("nowhere-"),
            insight_id: Uuid::now_v7().to_string(),
            integration: unique("nowhere-"),
            delivery_id: Uuid::now_v7().to_string(),
        }
    }
}

/// The route's path with its parameters pointing at `target`.
fn fill_path(route: &RoutePermission, target: &Target) -> String {
    let filled = route
        .path
        .replace("{id}", &target.memory_id)
        .replace("{insight_id}", &target.insight_id)
        .replace("{key_id}", &target.key_id)
        .replace("{user_id}", &target.user_id.to_string())
        .replace("{role}", "reader")
        .replace("{tenant}", &target.tenant)
        .replace("{name}", &target.integration)
        .replace("{delivery_id}", &target.delivery_id);
    // GitHub's webhooks name the tenant in the query (GitHub sends no credential).
    let filled = if route.path.ends_with("/github") {
        format!("{filled}?tenant={}", target.tenant)
    } else {
        filled
    };
    assert!(
        !filled.contains('{'),
        "no probe value for a parameter of {}: add it to fill_path",
        route.path
    );
    filled
}

/// A request body that would act on `target` if isolation failed.
fn body_for(route: &RoutePermission, target: &Target) -> Option<Value> {
    match (route.method.as_str(), route.path) {
        ("POST", "/api/v1/memories") => {
            Some(json!({"content": "A note about the quarterly roadmap.", "category": "PROJECT"}))
        }
        ("PATCH", "/api/v1/memories/{id}") => Some(json!({"content": "overwritten by a probe"})),
        ("POST", "/api/v1/keys") => {
            Some(json!({"name": "probe", "role": "reader", "user_id": target.user_id}))
        }
        ("POST", "/api/v1/grants") => Some(json!({"user_id": target.user_id, "role": "reader"})),
        ("POST", "/api/v1/admin/tenants") => Some(json!({"tenant": unique("p-")})),
        ("PUT", "/api/v1/settings/pii-policy") => Some(json!({"policy": "mask"})),
        ("PUT", "/api/v1/settings/analytics") => Some(json!({"schedule": "0 30 2 * * *"})),
        ("PATCH", "/api/v1/analytics/insights/{insight_id}") => Some(json!({"action_taken": true})),
        ("POST", "/api/v1/analytics/run") => None,
        ("POST", "/api/v1/integrations") => {
            Some(json!({"name": unique("probe-"), "kind": "Webhook",
            "webhook": {"url": "https://hooks.example/probe", "events": ["insight.generated"]}}))
        }
        ("POST", "/api/v1/integrations/{name}/deliveries/{delivery_id}/retry") => None,
        ("POST", "/api/v1/integrations/{name}/sync") => None,
        // Unsigned: GitHub's webhook route refuses it whoever sends it.
        ("POST", "/api/v1/integrations/{name}/github") => {
            Some(json!({"zen": "Keep it logically awesome."}))
        }
        ("PUT", "/api/v1/admin/tenants/{tenant}/rate-limit") => Some(json!({"per_minute": 5000})),
        (method, _) if method == "POST" || method == "PATCH" || method == "PUT" => {
            panic!(
                "no probe body for {} {}: add it to body_for",
                method, route.path
            )
        }
        _ => None,
    }
}

/// One tenant with a caller for every role and some data of its own.
struct TenantWorld {
    name: String,
    callers: HashMap<Role, Caller>,
    users: HashMap<Role, Uuid>,
    admin_key: String,
}

impl TenantWorld {
    async fn create(platform: &TestPlatform) -> Self {
        let tenant = platform.create_tenant("Shared").await;
        let mut callers = HashMap::new();
        let mut users = HashMap::new();
        callers.insert(Role::TenantAdmin, Caller::Key(tenant.api_key.clone()));
        users.insert(Role::TenantAdmin, tenant.user_id);
        for role in [Role::Member, Role::Reader, Role::Service] {
            let key = platform.issue_key(&tenant.api_key, role.as_str()).await;
            callers.insert(role, Caller::Key(key.api_key));
            users.insert(role, key.user_id);
        }
        // Operators act without a tenant; the tenant is irrelevant to their caller.
        callers.insert(Role::PlatformAdmin, Caller::Bearer(platform_admin_token()));
        TenantWorld {
            name: tenant.name,
            callers,
            users,
            admin_key: tenant.api_key,
        }
    }

    fn caller(&self, role: Role) -> &Caller {
        &self.callers[&role]
    }

    /// A JWT caller of this tenant with `role` (the property test mixes credential kinds).
    fn jwt_caller(&self, role: Role, subject: &str) -> Caller {
        Caller::Bearer(hs256_token(
            json!({"sub": subject, "tenant": self.name, "roles": [role.as_str()]}),
        ))
    }

    /// Fresh data for one probe: a memory owned by `owner`, a key and a granted user, and a
    /// webhook with a failed delivery.
    async fn target(&self, platform: &TestPlatform, owner: Role, content: &str) -> Target {
        let mut target = self.target_without_webhook(platform, owner, content).await;
        target.integration = unique("hook-");
        // A webhook nothing is sent to unless asked (insights only), with a failed delivery.
        let (status, created) = platform
            .call(
                Method::POST,
                "/api/v1/integrations",
                Some(&self.admin_key),
                Some(json!({"name": target.integration, "kind": "Webhook",
                    "webhook": {"url": "https://hooks.example/matrix", "events": ["insight.generated"]}})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        target.delivery_id = platform
            .seed_failed_delivery(&self.name, &target.integration)
            .await
            .to_string();
        target
    }

    /// Fresh data for one probe whose integration is a GitHub board (on the fake GitHub).
    async fn github_target(&self, platform: &TestPlatform, owner: Role, content: &str) -> Target {
        let mut target = self.target_without_webhook(platform, owner, content).await;
        target.integration = unique("board-");
        let (status, created) = platform
            .call(
                Method::POST,
                "/api/v1/integrations",
                Some(&self.admin_key),
                Some(json!({"name": target.integration, "kind": "GitHubProjects",
                    "github": {"owner": "acme-robotics", "projectNumber": 7},
                    "secret": MATRIX_GITHUB_TOKEN, "webhookSecret": unique("hook-secret-")})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        target
    }

    /// The target a route needs: without the webhook unless its path names one (creating it
    /// for every probe would only slow the matrices down), a GitHub board for its sync and
    /// webhook routes.
    async fn target_for(
        &self,
        platform: &TestPlatform,
        route: &RoutePermission,
        owner: Role,
        content: &str,
    ) -> Target {
        if route.path.ends_with("/sync") || route.path.ends_with("/github") {
            self.github_target(platform, owner, content).await
        } else if route.path.contains("{name}") {
            self.target(platform, owner, content).await
        } else {
            self.target_without_webhook(platform, owner, content).await
        }
    }

    async fn target_without_webhook(
        &self,
        platform: &TestPlatform,
        owner: Role,
        content: &str,
    ) -> Target {
        let owner_caller = if owner == Role::PlatformAdmin || owner == Role::Reader {
            Caller::Key(self.admin_key.clone())
        } else {
            self.caller(owner).clone()
        };
        let (status, memory) = platform
            .call_as(
                &owner_caller,
                Method::POST,
                "/api/v1/memories",
                Some(json!({"content": content, "category": "PROJECT"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{memory}");
        let key = platform.issue_key(&self.admin_key, "service").await;
        let (status, grant) = platform
            .call(
                Method::POST,
                "/api/v1/grants",
                Some(&self.admin_key),
                Some(json!({"user_id": key.user_id, "role": "reader"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{grant}");
        let memory_id = memory["memory_id"].as_str().expect("id").to_string();
        let insight_id = platform.seed_insight(&self.name, content, &memory_id).await;
        Target {
            memory_id,
            key_id: key.key_id,
            user_id: key.user_id,
            tenant: self.name.clone(),
            insight_id: insight_id.to_string(),
            integration: unique("hook-"),
            delivery_id: Uuid::now_v7().to_string(),
        }
    }
}

struct World {
    platform: TestPlatform,
    a: TenantWorld,
    b: TenantWorld,
    _github: FakeGitHub,
}

impl World {
    async fn create(backends: Backends) -> Self {
        let (platform, github) = start_platform(backends).await;
        let a = TenantWorld::create(&platform).await;
        let b = TenantWorld::create(&platform).await;
        World {
            platform,
            a,
            b,
            _github: github,
        }
    }
}

/// The token the matrices' GitHub boards are read with.
const MATRIX_GITHUB_TOKEN: &str = "ghp_matrixtoken";

/// A platform whose GitHub is a local board with a few items.
async fn start_platform(backends: Backends) -> (TestPlatform, FakeGitHub) {
    let github = FakeGitHub::start(MATRIX_GITHUB_TOKEN).await;
    github.set_items(vec![FakeItem::issue(1, "Matrix probe issue")]);
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(backends, data_dir.path().to_path_buf());
    config.integrations.github_api_url = github.url.clone();
    (TestPlatform::start_with(config, data_dir).await, github)
}

fn is_success(status: StatusCode) -> bool {
    status.is_success()
}

async fn role_matrix_in_own_tenant(backends: Backends) {
    let world = World::create(backends).await;
    let (platform, a) = (&world.platform, &world.a);
    for route in ROUTES {
        for role in Role::ALL {
            let want = expected(route.method.as_str(), route.path, role)
                .unwrap_or_else(|| panic!("no expectation for {} {}", route.method, route.path));
            let label = format!("{role} on {} {}", route.method, route.path);
            let caller = a.caller(role);
            // A target the caller owns, where ownership matters.
            let own = a
                .target_for(platform, route, role, "Own target of the role matrix.")
                .await;
            let path = fill_path(route, &own);
            let (status, body) = platform
                .call_as(caller, route.method.clone(), &path, body_for(route, &own))
                .await;
            match want {
                Outcome::Denied => assert_eq!(status, StatusCode::FORBIDDEN, "{label}: {body}"),
                Outcome::Signed => {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{label}: {body}")
                }
                Outcome::Allowed | Outcome::Own => {
                    assert!(is_success(status), "{label}: {status} {body}")
                }
            }
            if want == Outcome::Own {
                // Someone else's memory in the same tenant does not exist for a member.
                let others = a
                    .target_for(platform, route, Role::Service, "Another user's note.")
                    .await;
                let path = fill_path(route, &others);
                let (status, body) = platform
                    .call_as(
                        caller,
                        route.method.clone(),
                        &path,
                        body_for(route, &others),
                    )
                    .await;
                if route.path.contains("{id}") {
                    assert_eq!(
                        status,
                        StatusCode::NOT_FOUND,
                        "{label} on another's: {body}"
                    );
                } else {
                    assert!(is_success(status), "{label}: {status} {body}");
                    assert!(
                        !body.to_string().contains(&others.memory_id),
                        "{label} listed another user's memory"
                    );
                }
            }
        }
    }
    world.platform.shutdown().await;
}

test_support::on_each_backend!(role_matrix_in_own_tenant);

/// Everything of B that must never appear in an answer to A. The audit log echoes the paths
/// A itself requested (B's ids among them); those are A's own words, not B's data. (A's
/// searches never name the marker, so its search events and insights may be scanned whole.)
fn leaks(body: &Value, b_targets: &[Target]) -> Option<String> {
    let mut body = body.clone();
    if let Some(entries) = body.get_mut("entries").and_then(Value::as_array_mut) {
        for entry in entries {
            if let Some(entry) = entry.as_object_mut() {
                entry.remove("path");
            }
        }
    }
    let text = body.to_string();
    let shown: String = text.chars().take(2_000).collect();
    if text.contains(B_MARKER) {
        return Some(format!("B's content: {shown}"));
    }
    for target in b_targets {
        for secret in [
            &target.memory_id,
            &target.key_id,
            &target.user_id.to_string(),
        ] {
            if text.contains(secret.as_str()) {
                return Some(format!("B's id {secret}: {shown}"));
            }
        }
    }
    None
}

async fn isolation_matrix(backends: Backends) {
    let world = World::create(backends).await;
    let (platform, a, b) = (&world.platform, &world.a, &world.b);
    let b_target = b
        .target(
            platform,
            Role::Member,
            &format!("The {B_MARKER} launch plan is secret."),
        )
        .await;
    let b_memory_of_admin = b
        .target(
            platform,
            Role::TenantAdmin,
            &format!("{B_MARKER} budget figures."),
        )
        .await;
    let b_targets = [b_target.clone(), b_memory_of_admin.clone()];
    let searches = [
        // Words of B's memory but not the marker: found by meaning or by text if isolation
        // failed, and never echoed back as B's marker in A's own events or insights.
        "?query=secret%20launch%20plan".to_string(),
        "?query=launch%20plan%20is%20secret&mode=exact".to_string(),
        format!("?user_id={}", b.users[&Role::Member]),
        "?limit=100".to_string(),
        String::new(),
    ];
    for route in ROUTES {
        for role in Role::ALL {
            let want = expected(route.method.as_str(), route.path, role).expect("expectation");
            let label = format!("{role} of A on {} {}", route.method, route.path);
            let caller = a.caller(role);
            let has_params = route.path.contains('{');
            let operator_route = matches!(route.requirement, Requirement::Platform(..));
            if operator_route && role == Role::PlatformAdmin {
                // Operators work across tenants by design; these routes hold no tenant content
                // (checked by the leak scan below on their answers).
                let (status, body) = platform
                    .call_as(
                        caller,
                        route.method.clone(),
                        &fill_path(route, &b_target),
                        body_for(route, &b_target),
                    )
                    .await;
                assert!(status.is_success(), "{label}: {status} {body}");
                if let Some(leak) = leaks(&body, &b_targets) {
                    panic!("{label} leaked {leak}");
                }
                continue;
            }
            if has_params {
                // B's real ids and ids that exist nowhere must be indistinguishable.
                let nowhere = Target::nowhere();
                let (on_b, body_b) = platform
                    .call_as(
                        caller,
                        route.method.clone(),
                        &fill_path(route, &b_target),
                        body_for(route, &b_target),
                    )
                    .await;
                let (on_nothing, body_n) = platform
                    .call_as(
                        caller,
                        route.method.clone(),
                        &fill_path(route, &nowhere),
                        body_for(route, &nowhere),
                    )
                    .await;
                assert_eq!(
                    on_b, on_nothing,
                    "{label}: B's ids are told apart ({body_b} vs {body_n})"
                );
                assert_eq!(body_b["error_code"], body_n["error_code"], "{label}");
                let expected_status = match want {
                    Outcome::Denied => StatusCode::FORBIDDEN,
                    Outcome::Signed => StatusCode::UNAUTHORIZED,
                    Outcome::Allowed | Outcome::Own => StatusCode::NOT_FOUND,
                };
                assert_eq!(on_b, expected_status, "{label}: {body_b}");
            } else {
                let variants: Vec<String> =
                    if route.method == Method::GET && route.path == "/api/v1/memories" {
                        searches
                            .iter()
                            .map(|q| format!("{}{q}", route.path))
                            .collect()
                    } else {
                        vec![route.path.to_string()]
                    };
                for path in variants {
                    let (status, body) = platform
                        .call_as(
                            caller,
                            route.method.clone(),
                            &path,
                            body_for(route, &b_target),
                        )
                        .await;
                    if want == Outcome::Denied {
                        assert_eq!(status, StatusCode::FORBIDDEN, "{label} {path}: {body}");
                    } else if status.is_success() {
                        // Admin routes list tenants (names only); everything else is A's own.
                        if let Some(leak) = leaks(&body, &b_targets) {
                            panic!("{label} {path} leaked {leak}");
                        }
                    } else {
                        // A refusal must be about the request, never about B's data.
                        assert!(
                            status == StatusCode::NOT_FOUND,
                            "{label} {path}: {status} {body}"
                        );
                    }
                }
            }
        }
    }
    // B's data is untouched.
    let b_admin = Caller::Key(b.admin_key.clone());
    for target in &b_targets {
        let (status, memory) = platform
            .call_as(
                &b_admin,
                Method::GET,
                &format!("/api/v1/memories/{}", target.memory_id),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{memory}");
        assert!(
            memory["content"]
                .as_str()
                .is_some_and(|c| c.contains(B_MARKER))
        );
    }
    let (_, keys) = platform
        .call_as(&b_admin, Method::GET, "/api/v1/keys", None)
        .await;
    let key = keys["keys"]
        .as_array()
        .and_then(|keys| {
            keys.iter()
                .find(|k| k["key_id"] == b_target.key_id.as_str())
        })
        .cloned()
        .expect("B's key still listed");
    assert_eq!(key["status"], "active");
    let (_, grants) = platform
        .call_as(&b_admin, Method::GET, "/api/v1/grants", None)
        .await;
    assert!(
        grants["grants"].as_array().is_some_and(|g| g
            .iter()
            .any(|g| g["user_id"] == b_target.user_id.to_string())),
        "B's grant still there: {grants}"
    );
    // And nothing A did shows up in B.
    let (_, listed) = platform
        .call_as(&b_admin, Method::GET, "/api/v1/memories?limit=100", None)
        .await;
    assert!(
        !listed.to_string().contains("quarterly roadmap"),
        "A's writes landed in B"
    );
    world.platform.shutdown().await;
}

test_support::on_each_backend!(isolation_matrix);

/// One random probe: who calls, with which credential kind, on which route, with which id.
#[derive(Debug, Clone)]
struct Probe {
    route: usize,
    role: Role,
    caller_tenant: usize,
    owner_tenant: usize,
    jwt: bool,
    random_id: Option<u128>,
}

fn probes() -> impl Strategy<Value = Probe> {
    let id_routes: Vec<usize> = ROUTES
        .iter()
        .enumerate()
        .filter(|(_, r)| r.path.contains('{'))
        .map(|(i, _)| i)
        .collect();
    (
        proptest::sample::select(id_routes),
        proptest::sample::select(Role::ALL.to_vec()),
        0..3usize,
        0..3usize,
        any::<bool>(),
        proptest::option::of(any::<u128>()),
    )
        .prop_map(
            |(route, role, caller_tenant, owner_tenant, jwt, random_id)| Probe {
                route,
                role,
                caller_tenant,
                owner_tenant,
                jwt,
                random_id,
            },
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_ids_and_tenants_never_cross_a_tenant() {
    let (platform, _github) = start_platform(Backends::Embedded).await;
    let mut tenants = Vec::new();
    for _ in 0..3 {
        tenants.push(TenantWorld::create(&platform).await);
    }
    let handle = tokio::runtime::Handle::current();
    let cases = std::env::var("MEMORYC_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let result = runner.run(&probes(), |probe| {
        let outcome =
            tokio::task::block_in_place(|| handle.block_on(run_probe(&platform, &tenants, &probe)));
        prop_assert!(
            outcome.is_ok(),
            "{:?}: {}",
            probe,
            outcome.err().unwrap_or_default()
        );
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    platform.shutdown().await;
}

async fn run_probe(
    platform: &TestPlatform,
    tenants: &[TenantWorld],
    probe: &Probe,
) -> Result<(), String> {
    let route = &ROUTES[probe.route];
    let caller_world = &tenants[probe.caller_tenant];
    let owner_world = &tenants[probe.owner_tenant];
    let caller = if probe.jwt && probe.role != Role::PlatformAdmin {
        caller_world.jwt_caller(probe.role, &format!("prop-{}", probe.role))
    } else {
        caller_world.caller(probe.role).clone()
    };
    let target = match probe.random_id {
        Some(id) => Target {
            memory_id: Uuid::from_u128(id).to_string(),
            key_id: Uuid::from_u128(id.rotate_left(7)).to_string(),
            user_id: Uuid::from_u128(id.rotate_left(13)),
            tenant: format!("t-{:x}", id % 0xffff_ffff),
            insight_id: Uuid::from_u128(id.rotate_left(29)).to_string(),
            integration: format!("hook-{:x}", id % 0xffff_ffff),
            delivery_id: Uuid::from_u128(id.rotate_left(41)).to_string(),
        },
        None => {
            owner_world
                .target_for(
                    platform,
                    route,
                    Role::Service,
                    "A note of the property test.",
                )
                .await
        }
    };
    let (status, body) = platform
        .call_as(
            &caller,
            route.method.clone(),
            &fill_path(route, &target),
            body_for(route, &target),
        )
        .await;
    let want = expected(route.method.as_str(), route.path, probe.role).ok_or("no expectation")?;
    let same_tenant = probe.random_id.is_none() && probe.caller_tenant == probe.owner_tenant;
    let operator_route = matches!(route.requirement, Requirement::Platform(..));
    let expected_status = match want {
        Outcome::Denied => Some(StatusCode::FORBIDDEN),
        Outcome::Signed => Some(StatusCode::UNAUTHORIZED),
        // Operators reach any existing tenant; unknown tenants are 404.
        _ if operator_route && probe.random_id.is_none() => None,
        _ if operator_route => Some(StatusCode::NOT_FOUND),
        // Members never see the service user's memory, even in their own tenant.
        Outcome::Own if route.path.contains("{id}") => Some(StatusCode::NOT_FOUND),
        _ if !same_tenant => Some(StatusCode::NOT_FOUND),
        _ => None,
    };
    match expected_status {
        Some(expected) if status != expected => {
            Err(format!("{status} (wanted {expected}): {body}"))
        }
        None if !status.is_success() => Err(format!("own tenant refused: {status} {body}")),
        _ => Ok(()),
    }
}
