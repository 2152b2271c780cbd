//! OpenAI-compatible LLM providers ([`client`]) behind a circuit breaker each ([`breaker`]), a
//! tenant's providers in fallback order ([`providers`]), and fact extraction on add
//! ([`inference`]). The prompts are files under `platform/prompts/`.

pub mod breaker;
pub mod client;
pub mod inference;
pub mod providers;
