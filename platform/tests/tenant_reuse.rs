//! A tenant erased and created again under the same name is another tenant: a JWT with the
//! `sub` of a user who held a grant in the old one gets none of its rights in the new one.

mod test_support;

use memoryc_crds::layout::{Isolation, TenantName};
use reqwest::{Method, StatusCode};
use serde_json::json;
use test_support::{Backends, Caller, TestPlatform, hs256_token};

async fn no_grant_outlives_its_tenant(backends: Backends) {
    let platform = TestPlatform::start(backends).await;
    let old = platform.create_tenant("Shared").await;
    let alice = Caller::Bearer(hs256_token(
        json!({"sub": "alice", "tenant": old.name, "roles": ["member"]}),
    ));
    let (status, memory) = platform
        .call_as(
            &alice,
            Method::POST,
            "/api/v1/memories",
            Some(json!({"content": "Alice's note in the old tenant."})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{memory}");
    let alice_id = memory["user_id"].as_str().expect("user id").to_string();
    let (status, _) = platform
        .call_as(&alice, Method::GET, "/api/v1/keys", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a member manages no keys");
    let (status, grant) = platform
        .call(
            Method::POST,
            "/api/v1/grants",
            Some(&old.api_key),
            Some(json!({"user_id": alice_id, "role": "tenant-admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{grant}");
    let (status, _) = platform
        .call_as(&alice, Method::GET, "/api/v1/keys", None)
        .await;
    assert_eq!(status, StatusCode::OK, "the grant makes her a tenant admin");

    // The tenant is erased and another created under its name.
    let name = TenantName::parse(&old.name).expect("name");
    platform.state.tenants.erase(&name).await.expect("erased");
    let new = platform
        .state
        .tenants
        .create(&old.name, None, Isolation::Shared)
        .await
        .expect("created again");
    // Replicas learn of the new registration within storage.tenant_cache.
    let reused = test_support::eventually(std::time::Duration::from_secs(10), || async {
        let (status, _) = platform
            .call(Method::GET, "/api/v1/memories", Some(&new.api_key), None)
            .await;
        status == StatusCode::OK
    })
    .await;
    assert!(reused, "the new tenant answers");
    let (status, body) = platform
        .call_as(&alice, Method::GET, "/api/v1/keys", None)
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "no old right applies: {body}"
    );
    let (status, grants) = platform
        .call(Method::GET, "/api/v1/grants", Some(&new.api_key), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        grants["grants"],
        json!([]),
        "the new tenant starts without grants"
    );
    let (status, listed) = platform
        .call_as(&alice, Method::GET, "/api/v1/memories", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["count"], 0, "nothing of the old tenant: {listed}");
    platform.shutdown().await;
}

test_support::on_each_backend!(no_grant_outlives_its_tenant);
