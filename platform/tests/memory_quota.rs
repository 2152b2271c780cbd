//! A tenant's memory quota (`spec.storage.maxMemories`, written by the operator to its settings)
//! is enforced: adds past it answer 403 QUOTA_EXCEEDED and store nothing; soft-deleted memories
//! count until they are purged.

mod test_support;

use memoryc_crds::layout::TenantName;
use memoryc_platform::stores::relational::entities::tenant_setting;
use reqwest::{Method, StatusCode};
use sea_orm::{ActiveModelTrait, ActiveValue::Set};
use serde_json::json;
use test_support::{Backends, TestPlatform};

async fn quota_is_enforced(backends: Backends) {
    let platform = TestPlatform::start(backends).await;
    check_quota(&platform).await;
    platform.shutdown().await;
}

async fn check_quota(platform: &TestPlatform) {
    let tenant = platform.create_tenant("Shared").await;
    let name = TenantName::parse(&tenant.name).expect("name");
    let registered = platform
        .state
        .tenants
        .find(&name)
        .await
        .expect("lookup")
        .expect("registered");
    // What the operator writes for `spec.storage.maxMemories: 2`.
    tenant_setting::ActiveModel {
        tenant_id: Set(registered.tenant_id),
        max_memories: Set(Some(2)),
        updated_at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(platform.databases().await.control())
    .await
    .expect("quota set");

    let key = tenant.api_key.as_str();
    let add = |content: &'static str| async move {
        platform
            .call(
                Method::POST,
                "/api/v1/memories",
                Some(key),
                Some(json!({ "content": content })),
            )
            .await
    };
    let (status, first) = add("The first memory within the quota.").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, _) = add("The second memory within the quota.").await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, refused) = add("A third memory, past the quota.").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error_code"], "QUOTA_EXCEEDED");
    assert_eq!(refused["context"]["max_memories"], 2);
    assert_eq!(refused["context"]["stored"], 2);
    let (_, listed) = platform
        .call(Method::GET, "/api/v1/memories?limit=10", Some(key), None)
        .await;
    assert_eq!(
        listed["results"].as_array().map(Vec::len),
        Some(2),
        "nothing of the refused add was stored: {listed}"
    );

    // A soft-deleted memory still counts; a purged one frees its place.
    let first_id = first["memory_id"].as_str().expect("id").to_string();
    let (status, _) = platform
        .call(
            Method::DELETE,
            &format!("/api/v1/memories/{first_id}"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = add("Still past the quota after a soft delete.").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = platform
        .call(
            Method::DELETE,
            &format!("/api/v1/memories/{first_id}?purge=true"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = add("Within the quota again after a purge.").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

test_support::on_each_backend!(quota_is_enforced);
