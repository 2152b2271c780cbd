//! Cost of the access decision on the hot path: `decide()` against the shared Casbin enforcer
//! (an `ArcSwap` load, then one `enforce` per subject), single-threaded and from many threads
//! at once, and while the policy is being reloaded in a loop (readers never wait for it).
//!
//! `cargo bench -p memoryc-platform --bench policy_bench`; `BENCH_DECISIONS` (default 200000).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use memoryc_crds::layout::{Isolation, TenantName};
use memoryc_platform::auth::access::decide;
use memoryc_platform::auth::permission::{Action, Requirement};
use memoryc_platform::auth::policy::{PolicyEnforcer, PolicySource};
use memoryc_platform::auth::{Credential, Principal};
use memoryc_platform::stores::Tenant;
use uuid::Uuid;

fn principal(role: &str) -> Principal {
    Principal {
        user_id: Uuid::now_v7(),
        tenant: Some(Tenant {
            tenant_id: Uuid::now_v7(),
            name: TenantName::parse("acme").unwrap_or_else(|e| panic!("{e}")),
            display_name: "acme".to_string(),
            isolation: Isolation::Shared,
            created_at: chrono::Utc::now(),
        }),
        roles: vec![role.to_string()],
        credential: Credential::Jwt {
            subject: "bench".to_string(),
        },
    }
}

fn run(policy: &PolicyEnforcer, decisions: usize) -> f64 {
    // A member falls through to `own-memories`: the most enforce calls a memory route makes.
    let member = principal("member");
    let started = Instant::now();
    let mut allowed = 0usize;
    for _ in 0..decisions {
        if decide(policy, &member, Requirement::Memories(Action::Write)).is_ok() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, decisions);
    started.elapsed().as_nanos() as f64 / decisions as f64
}

/// Every decision for a user never seen before: its `user:<id>` questions reach Casbin.
fn run_new_users(policy: &PolicyEnforcer, decisions: usize) -> f64 {
    let members: Vec<Principal> = (0..decisions).map(|_| principal("member")).collect();
    let started = Instant::now();
    for member in &members {
        assert!(decide(policy, member, Requirement::Memories(Action::Write)).is_ok());
    }
    started.elapsed().as_nanos() as f64 / decisions as f64
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let decisions: usize = std::env::var("BENCH_DECISIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let policy = Arc::new(
        PolicyEnforcer::load(PolicySource::Shipped, None)
            .await
            .unwrap_or_else(|e| panic!("policy loads: {e}")),
    );
    println!(
        "decide, first request of each user (Casbin evaluates the user's questions): {:.0} ns/decision",
        run_new_users(&policy, (decisions / 20).max(1))
    );
    println!(
        "decide (member, 2 subjects, falls through to own-memories): {:.0} ns/decision on 1 thread",
        run(&policy, decisions)
    );
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let policy = policy.clone();
            scope.spawn(move || run(&policy, decisions / threads));
        }
    });
    let per = started.elapsed().as_nanos() as f64 / decisions as f64;
    println!(
        "{threads} threads sharing the enforcer: {per:.0} ns/decision (wall clock, all threads)"
    );

    let reloading = Arc::new(AtomicBool::new(true));
    let reloads = {
        let policy = policy.clone();
        let reloading = reloading.clone();
        tokio::spawn(async move {
            let mut count = 0u32;
            while reloading.load(Ordering::Relaxed) {
                if policy.reload().await.is_ok() {
                    count += 1;
                }
            }
            count
        })
    };
    let during = {
        let policy = policy.clone();
        tokio::task::spawn_blocking(move || run(&policy, decisions))
            .await
            .unwrap_or(f64::NAN)
    };
    reloading.store(false, Ordering::Relaxed);
    let count = reloads.await.unwrap_or(0);
    println!("while the policy reloads continuously ({count} reloads): {during:.0} ns/decision");
}
