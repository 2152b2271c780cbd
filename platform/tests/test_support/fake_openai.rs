//! A local OpenAI-compatible API (`POST /v1/chat/completions`, `GET /v1/models`) in OpenAI's
//! wire format, errors included (`401 invalid_api_key`, `429` with `retry-after`, `5xx`). Its
//! "model" answers the platform's two prompts by rule, so tests know what it will decide:
//! facts are the message's sentences; a fact already held is NONE, one saying "no longer"
//! DELETEs the memory about the same subject, one sharing a memory's first two words UPDATEs
//! it, any other is ADDed.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const MODEL: &str = "gpt-4o-mini";

/// An answer given instead of the next real one.
#[derive(Debug, Clone)]
pub enum LlmFault {
    ServerError,
    RateLimited { retry_after: u64 },
}

struct Model {
    api_key: String,
    faults: VecDeque<LlmFault>,
    /// Answers `503` to everything while true.
    down: bool,
    chat_calls: u64,
}

#[derive(Clone)]
pub struct FakeOpenAi {
    model: Arc<Mutex<Model>>,
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
}

impl FakeOpenAi {
    pub async fn start(api_key: &str) -> Self {
        let model = Arc::new(Mutex::new(Model {
            api_key: api_key.to_string(),
            faults: VecDeque::new(),
            down: false,
            chat_calls: 0,
        }));
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/models", get(models))
            .with_state(model.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            model,
            base_url: format!("http://{address}/v1"),
        }
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        self.model
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_down(&self, down: bool) {
        self.model().down = down;
    }

    pub fn push_fault(&self, fault: LlmFault) {
        self.model().faults.push_back(fault);
    }

    /// Chat completions asked for so far.
    pub fn chat_calls(&self) -> u64 {
        self.model().chat_calls
    }
}

fn error(status: StatusCode, message: &str, kind: &str, code: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
        ),
    )
        .into_response()
}

fn refused(model: &Model, headers: &HeaderMap) -> Option<Response> {
    let authorised = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        == Some(format!("Bearer {}", model.api_key).as_str());
    if !authorised {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided: sk-...****. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        ));
    }
    if model.down {
        return Some(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is overloaded or not ready yet.",
            "server_error",
            "service_unavailable",
        ));
    }
    None
}

async fn models(State(model): State<Arc<Mutex<Model>>>, headers: HeaderMap) -> Response {
    let model = model
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(refusal) = refused(&model, &headers) {
        return refusal;
    }
    axum::Json(json!({"object": "list", "data": [
        {"id": MODEL, "object": "model", "created": 1721172741, "owned_by": "system"},
        {"id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system"}
    ]}))
    .into_response()
}

async fn chat(
    State(model): State<Arc<Mutex<Model>>>,
    headers: HeaderMap,
    axum::Json(request): axum::Json<Value>,
) -> Response {
    let mut model = model
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    model.chat_calls += 1;
    if let Some(refusal) = refused(&model, &headers) {
        return refusal;
    }
    match model.faults.pop_front() {
        Some(LlmFault::ServerError) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                "internal_error",
            );
        }
        Some(LlmFault::RateLimited { retry_after }) => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit reached for gpt-4o-mini in organization org-test on requests per min (RPM): Limit 3, Used 3, Requested 1.",
                "requests",
                "rate_limit_exceeded",
            );
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(retry_after));
            return response;
        }
        None => {}
    }
    let system = request["messages"][0]["content"]
        .as_str()
        .unwrap_or_default();
    let user = request["messages"][1]["content"]
        .as_str()
        .unwrap_or_default();
    let answer = if system.contains("facts worth remembering") {
        json!({"facts": sentences(user)})
    } else {
        decide(user)
    };
    let content = answer.to_string();
    let prompt_tokens = (system.len() + user.len()) as u64 / 4;
    let completion_tokens = content.len() as u64 / 4;
    axum::Json(json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1733347200,
        "model": request["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens}
    }))
    .into_response()
}

fn sentences(text: &str) -> Vec<String> {
    text.split_inclusive('.')
        .map(str::trim)
        .filter(|sentence| sentence.len() > 1)
        .map(str::to_string)
        .collect()
}

fn subject(text: &str) -> String {
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn decide(question: &str) -> Value {
    let question: Value = serde_json::from_str(question).unwrap_or(Value::Null);
    let existing: Vec<(String, String)> = question["existing_memories"]
        .as_array()
        .map(|memories| {
            memories
                .iter()
                .map(|m| {
                    (
                        m["id"].as_str().unwrap_or_default().to_string(),
                        m["text"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut events = Vec::new();
    let mut added = 0;
    for fact in question["new_facts"].as_array().into_iter().flatten() {
        let fact = fact.as_str().unwrap_or_default();
        let same_subject = existing.iter().find(|(_, text)| {
            subject(text) == subject(fact)
                || subject(&text.replace(" no longer", ""))
                    == subject(&fact.replace(" no longer", ""))
        });
        if let Some((id, text)) = existing
            .iter()
            .find(|(_, text)| text.eq_ignore_ascii_case(fact))
        {
            events.push(json!({"id": id, "text": text, "event": "NONE", "reason": "already held"}));
        } else if fact.contains(" no longer ") {
            if let Some((id, text)) = existing.iter().find(|(_, text)| {
                let rest = fact.replacen(" no longer", "", 1);
                text.to_lowercase()
                    .contains(&rest.trim_end_matches('.').to_lowercase())
            }) {
                events.push(json!({"id": id, "text": text, "event": "DELETE", "reason": "the new fact contradicts it"}));
            }
        } else if let Some((id, text)) = same_subject {
            events.push(
                json!({"id": id, "text": fact, "event": "UPDATE", "old_memory": text,
                               "reason": "the new fact is more precise"}),
            );
        } else {
            added += 1;
            events.push(json!({"id": format!("new-{added}"), "text": fact, "event": "ADD", "reason": "new information"}));
        }
    }
    json!({"memory": events})
}
