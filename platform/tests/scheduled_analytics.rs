//! Scheduled analytics, with the scheduler's clock driven by the test: nothing runs before a
//! slot, one run per slot across two replicas, insights appear for a seeded tenant, expired
//! insights are never listed and are pruned, and a rerun does not repeat known insights.

mod test_support;

use std::sync::Arc;

use chrono::{Duration, Utc};
use memoryc_crds::layout::{Isolation, TenantName};
use memoryc_platform::app::Platform;
use memoryc_platform::auth::scope::TenantScope;
use memoryc_platform::domain::analytics::{InsightType, PredictiveInsight};
use memoryc_platform::services::analytics::clock::ManualClock;
use memoryc_platform::services::analytics::schedule::Schedule;
use memoryc_platform::services::analytics::scheduler::AnalyticsScheduler;
use memoryc_platform::services::memory_service::CreateMemory;
use memoryc_platform::stores::run_lock::{InProcessLock, RedisRunLock, RunLock};
use test_support::{Backends, production_config, test_config, unique};
use uuid::Uuid;

const DEPLOYS: [&str; 4] = [
    "Rolling back a failed deployment of the payments service takes ten minutes with Helm.",
    "To roll back the payments deployment run helm rollback and watch the pods restart.",
    "Last week's payments deployment failed and we rolled it back with Helm.",
    "Helm rollback of the payments service deployment needs the previous release number.",
];
const OTHERS: [&str; 2] = [
    "Alice prefers tea over coffee in the afternoon.",
    "The office plants need watering on Fridays.",
];

async fn scheduled_run_produces_insights(backends: Backends) {
    // Production: PostgreSQL, Milvus and Redis; otherwise the embedded defaults.
    let production = backends == Backends::PostgresMilvus;
    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = if production {
        production_config(data_dir.path().to_path_buf())
    } else {
        test_config(Backends::Embedded, data_dir.path().to_path_buf())
    };
    let platform = Platform::build(config.clone()).await.expect("platform");
    let name = unique("sched-");
    let created = platform
        .state
        .tenants
        .create(&name, None, Isolation::Shared)
        .await
        .expect("tenant");
    let tenant_name = TenantName::parse(&name).expect("name");
    let tenant = platform
        .state
        .tenants
        .find(&tenant_name)
        .await
        .expect("lookup")
        .expect("tenant exists");
    let scope = TenantScope {
        tenant: tenant.clone(),
        user_id: created.user_id,
        owner_only: None,
        session_id: None,
    };
    let mut deploy_ids = Vec::new();
    for text in DEPLOYS {
        let (memory, _) = platform
            .state
            .memories
            .create(
                &scope,
                CreateMemory {
                    content: text.to_string(),
                    category: None,
                    metadata: None,
                },
            )
            .await
            .expect("memory");
        deploy_ids.push(memory.memory_id);
    }
    for text in OTHERS {
        platform
            .state
            .memories
            .create(
                &scope,
                CreateMemory {
                    content: text.to_string(),
                    category: None,
                    metadata: None,
                },
            )
            .await
            .expect("memory");
    }
    // An insight that expired an hour ago: never listed, pruned by the next run.
    let now = Utc::now();
    let expired = PredictiveInsight {
        insight_id: Uuid::now_v7(),
        insight_type: InsightType::Recommendation,
        content: "An old recommendation".to_string(),
        confidence: 0.99,
        supporting_memories: vec![deploy_ids[0]],
        created_at: now - Duration::hours(3),
        expires_at: Some(now - Duration::hours(1)),
        action_taken: false,
        user_id: None,
    };
    platform
        .state
        .analytics
        .repository()
        .save_insights(&tenant_name, std::slice::from_ref(&expired))
        .await
        .expect("seeded");
    let listed = platform
        .state
        .analytics
        .insights(&scope, None, Some(0.0), None)
        .await
        .expect("insights");
    assert!(
        listed.is_empty(),
        "expired insights are never listed: {listed:?}"
    );

    let clock = Arc::new(ManualClock::new(now));
    let lock: Arc<dyn RunLock> = if production {
        Arc::new(
            RedisRunLock::connect(&test_support::redis_url(), &config.storage.redis_key_prefix)
                .expect("lock"),
        )
    } else {
        Arc::new(InProcessLock::default())
    };
    let replica = |lock: Arc<dyn RunLock>| {
        AnalyticsScheduler::new(
            clock.clone(),
            lock,
            platform.state.tenants.clone(),
            platform.state.analytics.clone(),
            platform.state.settings.clone(),
            Schedule::parse("0 0 * * * *").expect("hourly"),
        )
    };
    // Two replicas; in production they share only Redis.
    let first = replica(lock.clone());
    let second = replica(if production {
        Arc::new(
            RedisRunLock::connect(&test_support::redis_url(), &config.storage.redis_key_prefix)
                .expect("lock"),
        )
    } else {
        lock.clone()
    });

    let before = first.tick().await;
    assert!(before.ran.is_empty(), "nothing is due before the next slot");

    clock.advance(Duration::hours(1));
    let ran = first.tick().await;
    assert!(ran.failed.is_empty(), "{:?}", ran.failed);
    let (ran_tenant, report) = ran
        .ran
        .iter()
        .find(|(t, _)| *t == tenant_name)
        .expect("the tenant ran");
    assert_eq!(*ran_tenant, tenant_name);
    assert_eq!(report.pruned, 1, "the expired insight was pruned");
    let elsewhere = second.tick().await;
    assert!(
        elsewhere.claimed_elsewhere.contains(&tenant_name),
        "the second replica must not run the same slot"
    );
    assert!(!elsewhere.ran.iter().any(|(t, _)| *t == tenant_name));

    let patterns = platform
        .state
        .analytics
        .insights(&scope, Some(InsightType::Pattern), Some(0.0), None)
        .await
        .expect("insights");
    let pattern = patterns
        .iter()
        .find(|p| {
            p.supporting_memories
                .iter()
                .all(|id| deploy_ids.contains(id))
        })
        .unwrap_or_else(|| panic!("a PATTERN over the deployment memories: {patterns:?}"));
    assert!(pattern.supporting_memories.len() >= 3, "{pattern:?}");
    assert!(pattern.expires_at.is_some_and(|e| e > pattern.created_at));
    assert!(
        pattern.content.to_lowercase().contains("rollback")
            || pattern.content.to_lowercase().contains("helm")
            || pattern.content.to_lowercase().contains("payment")
            || pattern.content.to_lowercase().contains("deploy"),
        "the topic names what the memories share: {}",
        pattern.content
    );
    assert!(
        report
            .insights
            .iter()
            .any(|i| i.insight_id == pattern.insight_id),
        "the run reports what it produced"
    );

    // The next slot finds nothing new to say about unchanged memories.
    clock.advance(Duration::hours(1));
    let again = first.tick().await;
    let (_, rerun) = again
        .ran
        .iter()
        .find(|(t, _)| *t == tenant_name)
        .expect("ran again");
    assert!(
        !rerun
            .insights
            .iter()
            .any(|i| i.insight_type == InsightType::Pattern && i.content == pattern.content),
        "known insights are not repeated: {:?}",
        rerun.insights
    );
    if production {
        use sea_orm::ConnectionTrait;
        platform
            .databases
            .drop_tenant(&tenant_name)
            .await
            .expect("drop tenant");
        platform
            .databases
            .control()
            .execute_unprepared(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                config.storage.control_schema
            ))
            .await
            .expect("drop control schema");
    }
    platform.databases.close().await.expect("close");
}

test_support::on_each_backend!(scheduled_run_produces_insights);

/// A tenant's own insight lifetime and confidence floor (what the operator writes from
/// `spec.analytics.insightTtl` and `confidenceThreshold`) shape its runs; other tenants keep
/// the platform's.
#[tokio::test]
async fn a_tenants_own_insight_ttl_and_confidence_floor_apply() {
    use memoryc_platform::services::analytics::scheduler::AnalyticsRunner;
    use memoryc_platform::stores::relational::entities::tenant_setting;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};

    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = test_config(Backends::Embedded, data_dir.path().to_path_buf());
    let platform = Platform::build(config).await.expect("platform");
    let mut tenants = Vec::new();
    for (ttl, floor) in [(Some(2), None), (None, Some(1.0)), (None, None)] {
        let name = unique("own-");
        let created = platform
            .state
            .tenants
            .create(&name, None, Isolation::Shared)
            .await
            .expect("tenant");
        let tenant = platform
            .state
            .tenants
            .find(&TenantName::parse(&name).expect("name"))
            .await
            .expect("lookup")
            .expect("tenant");
        tenant_setting::ActiveModel {
            tenant_id: Set(tenant.tenant_id),
            insight_ttl_hours: Set(ttl),
            insight_min_confidence: Set(floor),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(platform.databases.control())
        .await
        .expect("settings");
        let scope = TenantScope {
            tenant: tenant.clone(),
            user_id: created.user_id,
            owner_only: None,
            session_id: None,
        };
        for text in DEPLOYS.iter().chain(OTHERS.iter()) {
            platform
                .state
                .memories
                .create(
                    &scope,
                    CreateMemory {
                        content: text.to_string(),
                        category: None,
                        metadata: None,
                    },
                )
                .await
                .expect("memory");
        }
        let report = platform
            .state
            .analytics
            .run(&tenant, Utc::now())
            .await
            .expect("run");
        tenants.push(report.insights);
    }
    let (short_lived, confident, default) = (&tenants[0], &tenants[1], &tenants[2]);
    assert!(
        !default.is_empty() && !short_lived.is_empty(),
        "the memories make insights"
    );
    for insight in short_lived {
        assert_eq!(
            insight
                .expires_at
                .map(|expires| expires - insight.created_at),
            Some(Duration::hours(2))
        );
    }
    for insight in default {
        assert_eq!(
            insight
                .expires_at
                .map(|expires| expires - insight.created_at),
            Some(Duration::hours(168)),
            "the platform's default lifetime"
        );
    }
    assert!(
        default.iter().any(|insight| insight.confidence < 1.0),
        "some insights are less than certain"
    );
    assert!(
        confident.iter().all(|insight| insight.confidence >= 1.0),
        "below the floor nothing is kept: {confident:?}"
    );
    assert!(confident.len() < default.len());
    platform.databases.close().await.expect("close");
}
