//! An OpenAI-compatible API (`POST {base}/chat/completions`, `GET {base}/models`), as OpenAI,
//! Azure OpenAI's compatible endpoint, vLLM, Ollama, LiteLLM and others serve it. Answers are
//! asked for as a JSON object (`response_format: {"type": "json_object"}`).

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, RETRY_AFTER};
use serde::Deserialize;
use serde_json::json;

use crate::services::integrations::request_error;
use crate::services::integrations::webhook::destination::DestinationPolicy;

/// One provider as an integration configures it.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    /// `https://api.openai.com/v1`, without a trailing slash.
    pub base_url: String,
    pub model: String,
    pub api_key: String,
}

/// What a chat completion answered, with the tokens it used.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub content: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// Why a provider gave no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    #[error("{provider} refused the API key ({status}): {message}")]
    Unauthorized {
        provider: String,
        status: u16,
        message: String,
    },
    #[error("{provider} is rate limiting (429){}: {message}", retry_after.map(|s| format!(", retry after {s} s")).unwrap_or_default())]
    RateLimited {
        provider: String,
        retry_after: Option<u64>,
        message: String,
    },
    #[error("{provider} answered {status}: {message}")]
    Status {
        provider: String,
        status: u16,
        message: String,
    },
    #[error("{provider} could not be reached: {reason}")]
    Unreachable { provider: String, reason: String },
    #[error("{provider}'s answer was not understood: {reason}")]
    Malformed { provider: String, reason: String },
    #[error("{provider}'s base URL is refused: {reason}")]
    Refused { provider: String, reason: String },
}

/// Calls providers at the addresses the destination policy allows (as webhooks do: a
/// tenant's base URL cannot reach the platform's own network unless configured).
#[derive(Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    policy: Arc<DestinationPolicy>,
}

#[derive(Deserialize)]
struct ChatAnswer {
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    id: String,
}

impl LlmClient {
    pub fn new(timeout: Duration, policy: Arc<DestinationPolicy>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(policy.resolver())
            .build()?;
        Ok(Self { http, policy })
    }

    /// `{base}/{path}` when the policy allows the base URL.
    fn url(&self, provider: &Provider, path: &str) -> Result<reqwest::Url, LlmError> {
        self.policy
            .check_url(&format!("{}/{path}", provider.base_url))
            .map_err(|error| LlmError::Refused {
                provider: provider.name.clone(),
                reason: error.to_string(),
            })
    }

    /// Asks `provider` to answer `user` under `system`, as a JSON object.
    pub async fn chat_json(
        &self,
        provider: &Provider,
        system: &str,
        user: &str,
    ) -> Result<Completion, LlmError> {
        let body = json!({
            "model": provider.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
        });
        let response = self
            .http
            .post(self.url(provider, "chat/completions")?)
            .header(AUTHORIZATION, format!("Bearer {}", provider.api_key))
            .json(&body)
            .send()
            .await
            .map_err(|error| unreachable(provider, &error))?;
        let text = answered(provider, response).await?;
        let answer: ChatAnswer =
            serde_json::from_str(&text).map_err(|error| LlmError::Malformed {
                provider: provider.name.clone(),
                reason: error.to_string(),
            })?;
        let content = answer
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.message.content)
            .ok_or_else(|| LlmError::Malformed {
                provider: provider.name.clone(),
                reason: "no message in the answer".to_string(),
            })?;
        let usage = answer.usage.unwrap_or(Usage {
            prompt_tokens: 0,
            completion_tokens: 0,
        });
        Ok(Completion {
            content,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        })
    }

    /// The models the provider serves: whether it answers and takes the key.
    pub async fn models(&self, provider: &Provider) -> Result<Vec<String>, LlmError> {
        let response = self
            .http
            .get(self.url(provider, "models")?)
            .header(AUTHORIZATION, format!("Bearer {}", provider.api_key))
            .send()
            .await
            .map_err(|error| unreachable(provider, &error))?;
        let text = answered(provider, response).await?;
        let list: ModelList = serde_json::from_str(&text).map_err(|error| LlmError::Malformed {
            provider: provider.name.clone(),
            reason: error.to_string(),
        })?;
        Ok(list.data.into_iter().map(|model| model.id).collect())
    }
}

/// The body of a `2xx` answer, or the error it stands for.
async fn answered(provider: &Provider, response: reqwest::Response) -> Result<String, LlmError> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let text = response
        .text()
        .await
        .map_err(|error| LlmError::Unreachable {
            provider: provider.name.clone(),
            reason: error.to_string(),
        })?;
    if status.is_success() {
        return Ok(text);
    }
    let message = error_message(&text);
    let name = provider.name.clone();
    Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => LlmError::Unauthorized {
            provider: name,
            status: status.as_u16(),
            message,
        },
        StatusCode::TOO_MANY_REQUESTS => LlmError::RateLimited {
            provider: name,
            retry_after,
            message,
        },
        _ => LlmError::Status {
            provider: name,
            status: status.as_u16(),
            message,
        },
    })
}

/// `error.message` of an OpenAI error body, or the start of the body.
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|value| {
            value
                .pointer("/error/message")?
                .as_str()
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.chars().take(200).collect())
}

fn unreachable(provider: &Provider, error: &reqwest::Error) -> LlmError {
    LlmError::Unreachable {
        provider: provider.name.clone(),
        reason: request_error::describe(error, "no answer in time", "the request failed"),
    }
}

/// The JSON object in a model's answer, tolerating a Markdown code fence around it.
pub fn json_object(content: &str) -> Option<serde_json::Value> {
    let trimmed = content.trim();
    let inner = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.strip_suffix("```"))
        .unwrap_or(trimmed);
    serde_json::from_str::<serde_json::Value>(inner.trim())
        .ok()
        .filter(serde_json::Value::is_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_with_or_without_a_fence() {
        assert_eq!(json_object("{\"facts\": []}"), Some(json!({"facts": []})));
        assert_eq!(
            json_object("```json\n{\"facts\": [\"a\"]}\n```"),
            Some(json!({"facts": ["a"]}))
        );
        assert_eq!(json_object("[1, 2]"), None, "an object, not a list");
        assert_eq!(json_object("Sure! Here it is."), None);
    }

    #[test]
    fn openai_error_bodies_give_their_message() {
        let body = r#"{"error": {"message": "Incorrect API key provided: sk-...xyz.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}"#;
        assert_eq!(
            error_message(body),
            "Incorrect API key provided: sk-...xyz."
        );
        assert_eq!(error_message("Bad Gateway"), "Bad Gateway");
    }
}
