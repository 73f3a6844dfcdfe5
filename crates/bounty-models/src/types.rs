//! The request and response types every provider speaks.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
        }
    }
}

/// One generation request.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    /// The conversation, system prompt first.
    pub messages: Vec<Message>,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Sampling temperature; 0 means greedy.
    pub temperature: f32,
    /// Seed of the sampler, for reproducible output.
    pub seed: u32,
    /// When set, output is constrained to (local) or requested as (remote)
    /// JSON matching this schema.
    pub json_schema: Option<serde_json::Value>,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its answer (end-of-generation token or stop).
    Stop,
    /// `max_tokens` (or the context) ran out first.
    Length,
}

/// Token counts of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// What a provider answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub text: String,
    pub usage: Usage,
    /// Wall-clock time of the call, as the caller saw it (retries included).
    pub latency: Duration,
    pub finish_reason: FinishReason,
    /// Where the time went, when the provider can tell (local models).
    pub timings: Option<Timings>,
}

/// Time split of a local generation, for tokens/s figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// Prompt processing (prefill) of `usage.prompt_tokens` tokens.
    pub prompt: Duration,
    /// Decoding of `usage.completion_tokens` tokens.
    pub generation: Duration,
}

/// Which kind of provider serves a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// llama.cpp in this process.
    Llama,
    /// An OpenAI-compatible HTTP endpoint.
    Openai,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Llama => "llama",
            ProviderKind::Openai => "openai",
        }
    }
}

/// An account's own OpenAI-compatible endpoint and key, for the models
/// configured with `byok = true`. The key is a secret: `Debug` redacts it.
#[derive(Clone)]
pub struct ByokKey {
    pub base_url: String,
    pub api_key: secrecy::SecretString,
}

impl std::fmt::Debug for ByokKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByokKey")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .finish()
    }
}
