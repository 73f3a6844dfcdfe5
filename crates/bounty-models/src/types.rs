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
    /// The result of a tool call, answering an assistant message's
    /// `tool_calls` by `tool_call_id`.
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One chat message. An assistant message may call tools instead of (or
/// besides) answering; a `tool` message carries one call's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// The tools an assistant message calls, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Which call a `tool` message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// An assistant message that calls `calls`.
    pub fn calling(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Message {
            tool_calls: calls,
            ..Message::new(Role::Assistant, content)
        }
    }

    /// The result of the call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            tool_call_id: Some(call_id.into()),
            ..Message::new(Role::Tool, content)
        }
    }
}

/// A tool the model may call: OpenAI's function tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// `^[a-zA-Z0-9_-]{1,64}$`.
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments (an object).
    pub parameters: serde_json::Value,
}

/// One call of a tool, as the model asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id, which its result names.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, as the JSON text the model wrote (not yet checked).
    pub arguments: String,
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
    /// Tools the model may call instead of answering. Remote models get
    /// them as OpenAI `tools`; local ones a grammar that allows one call of
    /// a declared tool with valid arguments, or the answer
    /// ([`crate::tool_grammar`]).
    pub tools: Vec<ToolDefinition>,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its answer (end-of-generation token or stop).
    Stop,
    /// `max_tokens` (or the context) ran out first.
    Length,
    /// The model called tools ([`Generation::tool_calls`]).
    ToolCalls,
}

/// Token counts of one call, as OpenAI counts them: `cached_tokens` are
/// part of `prompt_tokens` (the share the provider served from its prompt
/// cache, at its cached rate), and `reasoning_tokens` are part of
/// `completion_tokens` (hidden reasoning, billed as output unless the
/// price book gives them a rate of their own). Each token is therefore
/// priced once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Of `prompt_tokens`, those read from the provider's prompt cache.
    #[serde(default)]
    pub cached_tokens: u64,
    /// Of `completion_tokens`, the model's hidden reasoning.
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Prompt and completion counts only.
    pub const fn tokens(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            cached_tokens: 0,
            reasoning_tokens: 0,
        }
    }
}

/// What a provider answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub text: String,
    /// The tools the model called, in order; empty when it answered.
    pub tool_calls: Vec<ToolCall>,
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
