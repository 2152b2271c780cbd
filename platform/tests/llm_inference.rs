//! LLM providers end to end: a platform on its embedded defaults asks local OpenAI-compatible
//! servers (`test_support::fake_openai`, OpenAI's wire format and error bodies) to extract the
//! facts of an add and decide what becomes of the nearest memories; a failing provider's
//! breaker opens and the next provider answers; with none answering, the memory is stored as
//! sent.

mod test_support;

use std::time::Duration;

use memoryc_crds::contract::platform_metrics::{LLM_BREAKER_STATE, LLM_CALLS, LLM_TOKENS};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::fake_openai::{FakeOpenAi, LlmFault, MODEL};
use test_support::{Backends, TestPlatform, TestTenant, test_config};

const KEY: &str = "sk-test-0123456789";

async fn platform(breaker_failures: u32) -> TestPlatform {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(Backends::Embedded, data_dir.path().to_path_buf());
    // The providers listen on loopback.
    config.integrations.allowed_networks = vec!["127.0.0.1/32".to_string()];
    config.integrations.llm_breaker_failures = breaker_failures;
    config.integrations.llm_breaker_open = Duration::from_secs(600);
    TestPlatform::start_with(config, data_dir).await
}

async fn bind(
    platform: &TestPlatform,
    tenant: &TestTenant,
    name: &str,
    llm: &FakeOpenAi,
    key: &str,
) -> Value {
    let (status, body) = platform
        .call(
            Method::POST,
            "/api/v1/integrations",
            Some(&tenant.api_key),
            Some(json!({"name": name, "kind": "LLMProvider", "secret": key,
                "llmProvider": {"baseUrl": llm.base_url, "model": MODEL}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["integration"].clone()
}

async fn infer(platform: &TestPlatform, tenant: &TestTenant, content: &str) -> (StatusCode, Value) {
    platform
        .call(
            Method::POST,
            "/api/v1/memories",
            Some(&tenant.api_key),
            Some(json!({"content": content, "infer": true, "metadata": {"channel": "chat"}})),
        )
        .await
}

fn events(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .map(|r| r["event"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn metric(platform: &TestPlatform, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let text = platform
        .client
        .get(format!("{}/metrics", platform.base_url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .find(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn infer_without_a_provider_is_refused_and_stores_nothing() {
    let platform = platform(5).await;
    let tenant = platform.create_tenant("Shared").await;
    let (status, refused) = infer(&platform, &tenant, "Alice prefers tea.").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["context"]["field"], "infer");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("LLMProvider")),
        "{refused}"
    );
    let (_, listed) = platform
        .call(Method::GET, "/api/v1/memories", Some(&tenant.api_key), None)
        .await;
    assert_eq!(listed["count"], 0, "{listed}");
    platform.shutdown().await;
}

#[tokio::test]
async fn facts_are_added_updated_deleted_or_left_as_the_provider_decides() {
    let platform = platform(5).await;
    let llm = FakeOpenAi::start(KEY).await;
    let tenant = platform.create_tenant("Shared").await;
    let created = bind(&platform, &tenant, "openai", &llm, KEY).await;
    assert_eq!(
        created["state"]["connected"], true,
        "checked at once: {created}"
    );

    let (status, first) = infer(
        &platform,
        &tenant,
        "Alice prefers tea. Alice works on the gripper firmware.",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["facts"].as_array().map(Vec::len), Some(2), "{first}");
    assert_eq!(events(&first), ["ADD", "ADD"], "{first}");
    assert_eq!(first["provider"], "openai");
    let tea = first["results"][0]["memory_id"]
        .as_str()
        .expect("id")
        .to_string();
    let work = first["results"][1]["memory_id"]
        .as_str()
        .expect("id")
        .to_string();
    let (_, memory) = platform
        .call(
            Method::GET,
            &format!("/api/v1/memories/{tea}"),
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert_eq!(
        memory["metadata"]["channel"], "chat",
        "the request's metadata is kept"
    );
    assert_eq!(memory["metadata"]["inference"]["event"], "ADD");

    let (status, second) = infer(&platform, &tenant, "Alice prefers green tea.").await;
    assert_eq!(status, StatusCode::OK, "nothing added: {second}");
    assert_eq!(events(&second), ["UPDATE"], "{second}");
    assert_eq!(second["results"][0]["memory_id"], tea.as_str());
    assert_eq!(
        second["results"][0]["previous_content"],
        "Alice prefers tea."
    );
    let (_, memory) = platform
        .call(
            Method::GET,
            &format!("/api/v1/memories/{tea}"),
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert_eq!(memory["content"], "Alice prefers green tea.");
    assert_eq!(
        memory["metadata"]["inference"]["reason"],
        "the new fact is more precise"
    );
    let (_, history) = platform
        .call(
            Method::GET,
            &format!("/api/v1/memories/{tea}/history"),
            Some(&tenant.api_key),
            None,
        )
        .await;
    let history = history.to_string();
    assert!(
        history.contains("Alice prefers tea.") && history.contains("the new fact is more precise"),
        "the history shows the change and why: {history}"
    );

    let (status, third) = infer(
        &platform,
        &tenant,
        "Alice no longer works on the gripper firmware.",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{third}");
    assert_eq!(events(&third), ["DELETE"], "{third}");
    let (status, _) = platform
        .call(
            Method::GET,
            &format!("/api/v1/memories/{work}"),
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the contradicted memory is deleted"
    );

    let (status, fourth) = infer(&platform, &tenant, "Alice prefers green tea.").await;
    assert_eq!(status, StatusCode::OK, "{fourth}");
    assert_eq!(events(&fourth), ["NONE"], "{fourth}");

    let tenant_name = tenant.name.as_str();
    let prompt_tokens = metric(
        &platform,
        LLM_TOKENS,
        &[("tenant", tenant_name), ("kind", "prompt")],
    )
    .await;
    assert!(
        prompt_tokens.is_some_and(|tokens| tokens > 0.0),
        "tokens are counted per tenant"
    );
    assert_eq!(
        metric(&platform, LLM_CALLS, &[("outcome", "answered")]).await,
        Some(8.0),
        "two calls per add"
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn a_failing_provider_opens_its_breaker_and_the_next_one_answers() {
    let platform = platform(2).await;
    let (primary, fallback) = (FakeOpenAi::start(KEY).await, FakeOpenAi::start(KEY).await);
    let tenant = platform.create_tenant("Shared").await;
    // Fallback order is by name.
    let first = bind(&platform, &tenant, "a-primary", &primary, KEY).await;
    bind(&platform, &tenant, "b-fallback", &fallback, KEY).await;
    primary.set_down(true);

    let (status, answer) = infer(&platform, &tenant, "Bob maintains the CAN bus driver.").await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["provider"], "b-fallback", "{answer}");
    assert_eq!(
        primary.chat_calls(),
        2,
        "one failure per question (facts, then decisions)"
    );
    let calls_before = primary.chat_calls();
    let (status, answer) = infer(&platform, &tenant, "Carol reviews the torque tables.").await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(
        primary.chat_calls(),
        calls_before,
        "the open breaker keeps calls away from it"
    );
    assert_eq!(answer["provider"], "b-fallback");
    let id = first["integration_id"].as_str().expect("id");
    assert_eq!(
        metric(&platform, LLM_BREAKER_STATE, &[("integration", id)]).await,
        Some(1.0)
    );
    assert!(
        metric(&platform, LLM_CALLS, &[("outcome", "rejected")])
            .await
            .is_some_and(|n| n >= 2.0)
    );
    let (_, listed) = platform
        .call(
            Method::GET,
            "/api/v1/integrations",
            Some(&tenant.api_key),
            None,
        )
        .await;
    let state = listed["integrations"]
        .as_array()
        .and_then(|all| all.iter().find(|i| i["name"] == "a-primary"))
        .map(|i| i["state"].clone())
        .expect("listed");
    assert_eq!(state["connected"], false, "{state}");
    assert_eq!(state["breaker"], "open", "{state}");
    let fallback_state = listed["integrations"]
        .as_array()
        .and_then(|all| all.iter().find(|i| i["name"] == "b-fallback"))
        .map(|i| i["state"].clone())
        .expect("listed");
    assert_eq!(fallback_state["breaker"], "closed", "{fallback_state}");
    assert!(
        state["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("503") && e.contains("circuit open")),
        "{state}"
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn with_no_provider_answering_the_memory_is_stored_as_sent() {
    let platform = platform(5).await;
    let llm = FakeOpenAi::start(KEY).await;
    let tenant = platform.create_tenant("Shared").await;
    bind(&platform, &tenant, "openai", &llm, KEY).await;
    llm.push_fault(LlmFault::RateLimited { retry_after: 7 });
    let (status, answer) = infer(&platform, &tenant, "Dave ships the release on Friday.").await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let fallback = answer["fallback"].as_str().expect("a fallback reason");
    assert!(
        fallback.contains("429") && fallback.contains("retry after 7 s"),
        "{fallback}"
    );
    assert_eq!(events(&answer), ["ADD"]);
    let id = answer["results"][0]["memory_id"].as_str().expect("stored");
    let (status, memory) = platform
        .call(
            Method::GET,
            &format!("/api/v1/memories/{id}"),
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(memory["content"], "Dave ships the release on Friday.");
    // The provider answers again: the next add is inferred.
    llm.push_fault(LlmFault::ServerError);
    let (status, answer) = infer(&platform, &tenant, "Erin owns the test rig.").await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert!(
        answer["fallback"]
            .as_str()
            .is_some_and(|f| f.contains("500")),
        "{answer}"
    );
    let (_, answer) = infer(&platform, &tenant, "Frank tunes the PID loop.").await;
    assert_eq!(answer["provider"], "openai", "{answer}");
    platform.shutdown().await;
}

#[tokio::test]
async fn a_provider_is_checked_before_and_after_it_is_kept() {
    let platform = platform(5).await;
    let llm = FakeOpenAi::start(KEY).await;
    let tenant = platform.create_tenant("Shared").await;
    for (body, field) in [
        (
            json!({"name": "x", "kind": "LLMProvider", "secret": KEY, "llmProvider": {"baseUrl": llm.base_url}}),
            "llmProvider.model",
        ),
        (
            json!({"name": "x", "kind": "LLMProvider", "llmProvider": {"baseUrl": llm.base_url, "model": MODEL}}),
            "secret",
        ),
        (
            json!({"name": "x", "kind": "LLMProvider", "secret": KEY,
            "llmProvider": {"baseUrl": "http://10.1.2.3/v1", "model": MODEL}}),
            "llmProvider.baseUrl",
        ),
        (
            json!({"name": "x", "kind": "LLMProvider", "secret": KEY}),
            "llmProvider",
        ),
    ] {
        let (status, refused) = platform
            .call(
                Method::POST,
                "/api/v1/integrations",
                Some(&tenant.api_key),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {refused}"
        );
        assert_eq!(refused["context"]["field"], field, "{body}: {refused}");
    }
    let wrong_key = bind(&platform, &tenant, "wrong-key", &llm, "sk-not-the-key").await;
    assert_eq!(wrong_key["state"]["connected"], false, "{wrong_key}");
    assert!(
        wrong_key["state"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("Incorrect API key")),
        "{wrong_key}"
    );
    let (status, other_model) = platform
        .call(
            Method::POST,
            "/api/v1/integrations",
            Some(&tenant.api_key),
            Some(
                json!({"name": "other-model", "kind": "LLMProvider", "secret": KEY,
                "llmProvider": {"baseUrl": llm.base_url, "model": "gpt-unknown"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{other_model}");
    let state = &other_model["integration"]["state"];
    assert_eq!(state["connected"], false, "{state}");
    assert!(
        state["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("does not serve the model gpt-unknown")),
        "{state}"
    );
    let (_, listed) = platform
        .call(
            Method::GET,
            "/api/v1/integrations",
            Some(&tenant.api_key),
            None,
        )
        .await;
    assert!(
        !listed.to_string().contains("sk-not-the-key"),
        "keys are never shown"
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn a_provider_registered_by_the_operator_is_checked_without_being_called() {
    let platform = platform(5).await;
    let llm = FakeOpenAi::start(KEY).await;
    let tenant = platform.create_tenant("Shared").await;
    let control = platform.databases().await.control();
    memoryc_control::integrations::register(
        control,
        &tenant.name,
        &memoryc_control::integrations::IntegrationRecord {
            name: "from-binding".into(),
            kind: "LLMProvider".into(),
            settings: json!({"baseUrl": llm.base_url, "model": MODEL}),
            secret_name: "openai-key".into(),
            secret: Some(KEY.into()),
            inbound_secret: None,
            sync_schedule: None,
            paused: false,
        },
    )
    .await
    .expect("registered")
    .expect("tenant exists");
    let checked = test_support::eventually(Duration::from_secs(30), || async {
        let (_, listed) = platform
            .call(
                Method::GET,
                "/api/v1/integrations",
                Some(&tenant.api_key),
                None,
            )
            .await;
        listed["integrations"][0]["state"]["connected"] == true
            && listed["integrations"][0]["state"]["next_run_at"].is_string()
    })
    .await;
    assert!(
        checked,
        "the scheduler checks it (GET /models) and plans the next check"
    );
    assert_eq!(llm.chat_calls(), 0, "a check asks no completion");
    platform.shutdown().await;
}
