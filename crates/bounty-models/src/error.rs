//! Typed errors: configuration (at startup) and provider (per call).

use std::time::Duration;

/// A model declared in configuration cannot be used. Reported at startup,
/// naming the table, the model and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{section}.{model}.{key}: {message}")]
pub struct ConfigError {
    /// `models` or `embeddings`.
    pub section: &'static str,
    pub model: String,
    pub key: &'static str,
    pub message: String,
}

impl ConfigError {
    /// An error of `[models.NAME]`.
    pub fn new(model: &str, key: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            section: "models",
            model: model.to_owned(),
            key,
            message: message.into(),
        }
    }

    /// An error of `[embeddings.NAME]`.
    pub fn embedding(model: &str, key: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            section: "embeddings",
            ..ConfigError::new(model, key, message)
        }
    }
}

/// One provider call failed. The variant decides whether the call may be
/// retried and is recorded on the task by [`ProviderError::code`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// No answer within the request timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// 429 from the endpoint, after our retries ran out.
    #[error("rate limited: {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// 5xx from the endpoint, after our retries ran out.
    #[error("server error {status}: {message}")]
    Server { status: u16, message: String },
    /// Any other 4xx: the request itself was refused; retrying will not help.
    #[error("request rejected with {status}: {message}")]
    Rejected { status: u16, message: String },
    /// The endpoint answered something that is not the OpenAI wire format.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The endpoint could not be reached at all.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The prompt does not fit the model's context.
    #[error("prompt of {prompt_tokens} tokens does not fit a context of {context} tokens")]
    ContextOverflow { prompt_tokens: u64, context: u64 },
    /// The local model failed to load or to run.
    #[error("local inference failed: {0}")]
    Local(String),
    /// The route names a model that configuration no longer declares.
    #[error("{0}")]
    NotConfigured(String),
    /// A BYOK model, and the account has set no key of its own.
    #[error("model {0:?} runs on the account's own key, and none is set (PUT /v1/byok)")]
    ByokKeyMissing(String),
    /// The account's own endpoint refused its key (401 or 403): revoked,
    /// expired or wrong. Retrying will not help until the key is replaced.
    #[error("the account's own key was refused ({status}): replace it with PUT /v1/byok ({message})")]
    ByokKeyRejected { status: u16, message: String },
    /// The account's own endpoint is, resolves to, or redirects to an
    /// address customer-directed HTTP may not reach (loopback, private,
    /// link-local, cloud metadata, …). Permanent until the endpoint or its
    /// DNS changes.
    #[error("the account's own endpoint may not be reached: {0}")]
    AddressRefused(String),
    /// One of the agent's tools is down (5xx, 429, no answer, too slow or
    /// too large): the task is retried later, never resolved on it.
    #[error("a tool is unavailable: {0}")]
    ToolUnavailable(String),
    /// One of the agent's tools cannot be called as it is defined: its
    /// address is one tools may not reach, or a header does not open.
    /// Permanent until the agent changes.
    #[error("a tool cannot be called: {0}")]
    ToolRefused(String),
}

impl ProviderError {
    /// Stable code recorded on model calls and tasks.
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::Timeout(_) => "provider_timeout",
            ProviderError::RateLimited { .. } => "provider_rate_limited",
            ProviderError::Server { .. } => "provider_server_error",
            ProviderError::Rejected { .. } => "provider_rejected",
            ProviderError::Malformed(_) => "provider_malformed_response",
            ProviderError::Unreachable(_) => "provider_unreachable",
            ProviderError::ContextOverflow { .. } => "context_overflow",
            ProviderError::Local(_) => "local_inference_failed",
            ProviderError::NotConfigured(_) => "model_not_configured",
            ProviderError::ByokKeyMissing(_) => "byok_key_missing",
            ProviderError::ByokKeyRejected { .. } => "byok_key_rejected",
            ProviderError::AddressRefused(_) => "outbound_address_refused",
            ProviderError::ToolUnavailable(_) => "tool_unavailable",
            ProviderError::ToolRefused(_) => "tool_refused",
        }
    }

    /// Whether running the task again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProviderError::Timeout(_)
                | ProviderError::RateLimited { .. }
                | ProviderError::Server { .. }
                | ProviderError::Malformed(_)
                | ProviderError::Unreachable(_)
                | ProviderError::ToolUnavailable(_)
        )
    }
}
