//! Fact extraction on add (`"infer": true`), with mem0's semantics: the tenant's LLM provider
//! extracts the facts of a message; the memories nearest to each fact are found; the provider
//! decides for each whether to ADD a new memory, UPDATE or DELETE an existing one, or do NONE;
//! the decisions are applied through the memory service as the caller, each memory's metadata
//! keeping the event, the reason and the provider (so its history shows why it changed). When
//! no provider answers, the message is stored as it is: nothing is lost.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::providers::{Answer, AskError, LlmProviders};
use crate::auth::scope::TenantScope;
use crate::domain::validation::{InputError, validate_content};
use crate::domain::{Memory, MemoryFilter};
use crate::services::ServiceError;
use crate::services::memory_service::{
    CreateMemory, MemoryService, SearchMode, SearchRequest, UpdateMemory,
};

const EXTRACT_PROMPT: &str = include_str!("../../../../prompts/extract_facts.md");
const UPDATE_PROMPT: &str = include_str!("../../../../prompts/update_memory.md");
/// Most facts taken from one message.
const MAX_FACTS: usize = 20;
/// Nearest memories looked at per fact.
const NEIGHBOURS: u64 = 5;
/// Most existing memories shown to the provider.
const MAX_SHOWN: usize = 30;
/// Longest reason kept.
const MAX_REASON_CHARS: usize = 300;

/// What happened to one memory.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InferredChange {
    /// `ADD`, `UPDATE`, `DELETE` or `NONE`.
    pub event: String,
    pub memory_id: Option<Uuid>,
    pub content: String,
    /// An updated or deleted memory's text before.
    pub previous_content: Option<String>,
    pub reason: Option<String>,
}

/// The outcome of an add with inference.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Inferred {
    pub facts: Vec<String>,
    pub results: Vec<InferredChange>,
    /// The provider that answered; absent when none did.
    pub provider: Option<String>,
    /// Why the message was stored as it is, without inference.
    pub fallback: Option<String>,
}

pub struct Inference {
    providers: Arc<LlmProviders>,
    memories: Arc<MemoryService>,
}

impl Inference {
    pub fn new(providers: Arc<LlmProviders>, memories: Arc<MemoryService>) -> Self {
        Self {
            providers,
            memories,
        }
    }

    /// Adds `input` through the tenant's LLM provider.
    pub async fn add(
        &self,
        scope: &TenantScope,
        input: CreateMemory,
    ) -> Result<Inferred, ServiceError> {
        validate_content(&input.content)?;
        let extracted = match self.ask(scope, EXTRACT_PROMPT, &input.content).await? {
            Ok(answer) => answer,
            Err(reasons) => return self.fallback(scope, input, reasons).await,
        };
        let facts = facts_of(&extracted.json);
        if facts.is_empty() {
            return Ok(Inferred {
                facts,
                results: Vec::new(),
                provider: Some(extracted.provider),
                fallback: None,
            });
        }
        let existing = self.neighbours(scope, &facts).await?;
        let shown: Vec<Value> = existing
            .iter()
            .enumerate()
            .map(|(index, memory)| json!({"id": index.to_string(), "text": memory.content}))
            .collect();
        let question = json!({"existing_memories": shown, "new_facts": facts}).to_string();
        let decided = match self.ask(scope, UPDATE_PROMPT, &question).await? {
            Ok(answer) => answer,
            Err(reasons) => return self.fallback(scope, input, reasons).await,
        };
        let mut results = Vec::new();
        for decision in decisions_of(&decided.json) {
            let applied = self
                .apply(scope, &input, &existing, &decision, &decided.provider)
                .await?;
            results.extend(applied);
        }
        Ok(Inferred {
            facts,
            results,
            provider: Some(decided.provider),
            fallback: None,
        })
    }

    /// The tenant's providers' answer, or why none answered (the content is then stored as
    /// sent); no provider at all is the caller's mistake.
    async fn ask(
        &self,
        scope: &TenantScope,
        system: &str,
        user: &str,
    ) -> Result<Result<Answer, Vec<String>>, ServiceError> {
        let tenant = &scope.tenant;
        match self
            .providers
            .ask_json(tenant.name.as_str(), tenant.tenant_id, system, user)
            .await
        {
            Ok(answer) => Ok(Ok(answer)),
            Err(AskError::AllFailed(reasons)) => Ok(Err(reasons)),
            Err(AskError::NoProvider) => Err(no_provider()),
            Err(AskError::Store(error)) => Err(error.into()),
        }
    }

    /// The caller's live memories nearest to the facts, each once.
    async fn neighbours(
        &self,
        scope: &TenantScope,
        facts: &[String],
    ) -> Result<Vec<Memory>, ServiceError> {
        let mut found: Vec<Memory> = Vec::new();
        for fact in facts {
            let hits = self
                .memories
                .search(
                    scope,
                    SearchRequest {
                        query: Some(fact.clone()),
                        mode: SearchMode::Semantic,
                        filter: MemoryFilter::default(),
                        limit: NEIGHBOURS,
                    },
                )
                .await?;
            for hit in hits {
                if found.len() < MAX_SHOWN
                    && !found.iter().any(|m| m.memory_id == hit.memory.memory_id)
                {
                    found.push(hit.memory);
                }
            }
        }
        Ok(found)
    }

    async fn apply(
        &self,
        scope: &TenantScope,
        input: &CreateMemory,
        existing: &[Memory],
        decision: &Decision,
        provider: &str,
    ) -> Result<Option<InferredChange>, ServiceError> {
        let known = decision
            .id
            .parse::<usize>()
            .ok()
            .and_then(|index| existing.get(index));
        let note =
            |event: &str| json!({"event": event, "reason": decision.reason, "provider": provider});
        let change = |event: &str, memory_id, content: String, previous| InferredChange {
            event: event.to_string(),
            memory_id,
            content,
            previous_content: previous,
            reason: decision.reason.clone(),
        };
        Ok(match (decision.event.as_str(), known) {
            ("ADD", _) if !decision.text.trim().is_empty() => {
                let metadata = with_inference(input.metadata.clone(), note("ADD"));
                let (memory, _) = self
                    .memories
                    .create(
                        scope,
                        CreateMemory {
                            content: decision.text.clone(),
                            category: input.category,
                            metadata: Some(metadata),
                        },
                    )
                    .await?;
                Some(change("ADD", Some(memory.memory_id), memory.content, None))
            }
            ("UPDATE", Some(current)) if !decision.text.trim().is_empty() => {
                let metadata = with_inference(Some(current.metadata.clone()), note("UPDATE"));
                let (memory, _) = self
                    .memories
                    .update(
                        scope,
                        current.memory_id,
                        UpdateMemory {
                            content: Some(decision.text.clone()),
                            category: None,
                            metadata: Some(metadata),
                        },
                    )
                    .await?;
                Some(change(
                    "UPDATE",
                    Some(current.memory_id),
                    memory.content,
                    Some(current.content.clone()),
                ))
            }
            ("DELETE", Some(current)) => {
                // The reason is written to the memory before it goes, so its history keeps it.
                let metadata = with_inference(Some(current.metadata.clone()), note("DELETE"));
                self.memories
                    .update(
                        scope,
                        current.memory_id,
                        UpdateMemory {
                            metadata: Some(metadata),
                            ..UpdateMemory::default()
                        },
                    )
                    .await?;
                self.memories
                    .delete(scope, current.memory_id, false)
                    .await?;
                Some(change(
                    "DELETE",
                    Some(current.memory_id),
                    current.content.clone(),
                    Some(current.content.clone()),
                ))
            }
            ("NONE", Some(current)) => Some(change(
                "NONE",
                Some(current.memory_id),
                current.content.clone(),
                None,
            )),
            // Ids the provider made up, events it should not give, empty texts: skipped.
            _ => None,
        })
    }

    /// Stores the message as it is when no provider answered, saying why.
    async fn fallback(
        &self,
        scope: &TenantScope,
        input: CreateMemory,
        reasons: Vec<String>,
    ) -> Result<Inferred, ServiceError> {
        let reason = format!(
            "no LLM provider answered ({}); stored as sent",
            reasons.join("; ")
        );
        let (memory, _) = self.memories.create(scope, input).await?;
        Ok(Inferred {
            facts: Vec::new(),
            results: vec![InferredChange {
                event: "ADD".to_string(),
                memory_id: Some(memory.memory_id),
                content: memory.content,
                previous_content: None,
                reason: None,
            }],
            provider: None,
            fallback: Some(reason),
        })
    }
}

/// One decision of the provider.
#[derive(Debug, Clone)]
struct Decision {
    id: String,
    text: String,
    event: String,
    reason: Option<String>,
}

fn facts_of(answer: &Value) -> Vec<String> {
    answer["facts"]
        .as_array()
        .map(|facts| {
            facts
                .iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|fact| !fact.is_empty())
                .take(MAX_FACTS)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn decisions_of(answer: &Value) -> Vec<Decision> {
    answer["memory"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|entry| Decision {
                    id: match &entry["id"] {
                        Value::String(id) => id.clone(),
                        Value::Number(number) => number.to_string(),
                        _ => String::new(),
                    },
                    text: entry["text"].as_str().unwrap_or_default().to_string(),
                    event: entry["event"]
                        .as_str()
                        .unwrap_or_default()
                        .to_ascii_uppercase(),
                    reason: entry["reason"]
                        .as_str()
                        .map(|reason| reason.chars().take(MAX_REASON_CHARS).collect()),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata` with `inference` set to `note`.
fn with_inference(metadata: Option<Value>, note: Value) -> Value {
    let mut metadata = match metadata {
        Some(Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    metadata.insert("inference".to_string(), note);
    Value::Object(metadata)
}

fn no_provider() -> ServiceError {
    InputError::Invalid {
        field: "infer",
        reason: "needs an LLM provider: create an LLMProvider integration for this tenant (POST /api/v1/integrations, or an IntegrationBinding), or add the memory without infer".to_string(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_mem0_gives_them() {
        let facts = facts_of(
            &json!({"facts": ["The user likes tea.", "  ", 3, "The user lives in Lyon."]}),
        );
        assert_eq!(
            facts,
            vec!["The user likes tea.", "The user lives in Lyon."]
        );
        let decisions = decisions_of(&json!({"memory": [
            {"id": 0, "text": "The user likes green tea.", "event": "update", "old_memory": "The user likes tea.", "reason": "more precise"},
            {"id": "new-1", "text": "The user lives in Lyon.", "event": "ADD"}
        ]}));
        assert_eq!(decisions.len(), 2);
        assert_eq!(
            (decisions[0].id.as_str(), decisions[0].event.as_str()),
            ("0", "UPDATE")
        );
        assert_eq!(decisions[1].reason, None);
        assert!(decisions_of(&json!({"nothing": true})).is_empty());
    }
}
