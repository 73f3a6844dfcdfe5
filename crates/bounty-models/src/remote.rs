//! OpenAI-compatible endpoints (OpenAI itself, vLLM, llama.cpp server, …)
//! through `async-openai`, with timeouts and one jittered retry loop that
//! honours `Retry-After`.
//!
//! # Why the client gets our own transport
//!
//! async-openai 0.43 wraps every client made with `Client::build` or
//! `with_http_client` in its `OpenAIRetryLayer`: three hidden retries on
//! 429, 5xx and connect errors, 100 ms × 2ⁿ backoff without jitter. And when
//! it turns an error response into `OpenAIError::ApiError`, it keeps the
//! status and the body but drops the headers, so `Retry-After` never reaches
//! the caller. Neither suits us. The retry budget is configured per model
//! and must be the only one: hidden retries would multiply it, up to 16
//! requests for our 3. And a rate-limited endpoint tells us how long to
//! wait.
//!
//! So the client gets our own transport through `Client::with_http_service`
//! (async-openai's `middleware` feature). That tower service replaces the
//! crate's default executor, retry layer included, and does one thing: it
//! sends the request with our reqwest client (connect timeout, plus a
//! timeout for each attempt). A 2xx response goes back to async-openai,
//! which decodes it into its typed response. For any other status, the
//! transport reads the status, `Retry-After` and the OpenAI error body
//! itself. It returns them as a typed [`HttpFailure`] inside
//! `OpenAIError::Boxed`, which async-openai passes up untouched. Our loop in
//! [`RemoteModel`] downcasts that error and decides:
//!
//! - **Retried, up to `max_retries` times:** 429, 5xx, timeouts and
//!   connection errors. The wait is full-jitter exponential backoff,
//!   `uniform(0, min(retry_max_ms, retry_base_ms × 2ⁿ))`. When a 429 or 503
//!   carries `Retry-After` (delta-seconds or an HTTP date), we wait that
//!   long instead, capped at `retry_max_ms`.
//! - **Not retried:** any other 4xx (`Rejected`, with the message of the
//!   OpenAI error body), a 429 whose error type is `insufficient_quota`
//!   (the quota will not come back by waiting; also `Rejected`), and a body
//!   that is not the OpenAI wire format (`Malformed`).
//!
//! Below us, reqwest and hyper still resend a request that the server
//! provably never received: a pooled connection that closed before the
//! request went out, or an HTTP/2 `REFUSED_STREAM`. That is safe, and
//! invisible to the server, so we keep it.
//!
//! We chose this over a `byot` call or raw reqwest because async-openai
//! stays the only code that speaks the wire format, both its request and
//! response types. Only the status line and headers, which it does not
//! expose, are read by us.
//!
//! # The key
//!
//! The API key is secret. `OpenAIConfig::new()` reads `OPENAI_API_KEY`,
//! `OPENAI_ORG_ID` and `OPENAI_PROJECT_ID` from the environment, so we
//! always overwrite all three. An operator's own OpenAI key must never go
//! to a third-party endpoint that was configured without one. With no key
//! configured, the transport sends no `Authorization` header at all. When
//! there is a key, the header is marked sensitive, so that `Debug` output
//! redacts it. A server that echoes the key in an error message has it
//! replaced by `<redacted>`. Our `tracing` events carry the attempt, the
//! status and the wait, and never the key or any prompt text.
//! async-openai itself logs a 2xx body it cannot decode, at `error` level
//! under its own target. That text is the provider's answer, never our
//! request.
//!
//! # Token limit
//!
//! OpenAI has deprecated `max_tokens` in favour of `max_completion_tokens`,
//! and rejects `max_tokens` on its reasoning models. Several compatible
//! servers read only `max_tokens` and silently ignore the new field:
//! llama.cpp server before February 2026, llama-cpp-python, llamafile.
//! Every compatible server we know of, vLLM included, accepts `max_tokens`.
//! So we send `max_completion_tokens` to `api.openai.com` and `max_tokens`
//! everywhere else. `seed` is deprecated upstream too, but vLLM
//! and llama.cpp honour it, so we always send it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::{OpenAIError, WrappedError};
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessage,
    ChatCompletionRequestAssistantMessageContent, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestUserMessage, ChatCompletionTool,
    ChatCompletionToolChoiceOption, ChatCompletionTools, CreateChatCompletionRequest,
    CreateChatCompletionResponse, FinishReason as WireFinishReason, FunctionCall, FunctionObject,
    ResponseFormat, ResponseFormatJsonSchema, ToolChoiceOptions,
};
use async_openai::types::embeddings::{CreateEmbeddingRequest, EmbeddingInput};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};

use crate::config::RemoteModelConfig;
use crate::error::{ConfigError, ProviderError};
use crate::types::{FinishReason, GenerateRequest, Generation, Message, Role, ToolCall, Usage};

/// Longest provider message we keep in an error.
const MAX_MESSAGE_CHARS: usize = 500;

/// One model behind an OpenAI-compatible endpoint.
pub struct RemoteModel {
    name: String,
    base_url: String,
    model: String,
    client: Client<OpenAIConfig>,
    /// The same HTTP client, for the gateway's pass-through
    /// ([`crate::passthrough`]).
    pub(crate) http: reqwest::Client,
    /// Only for redacting the key from provider messages; never shown.
    api_key: Option<SecretString>,
    connect_timeout: Duration,
    request_timeout: Duration,
    retry: RetryPolicy,
    token_limit: TokenLimitField,
}

impl fmt::Debug for RemoteModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteModel")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("token_limit", &self.token_limit)
            .finish()
    }
}

/// Which request field carries `max_tokens`; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenLimitField {
    MaxTokens,
    MaxCompletionTokens,
}

impl RemoteModel {
    /// Builds the client. Sends nothing: an endpoint that is down is found
    /// at the first call, not at startup.
    pub fn new(name: &str, config: &RemoteModelConfig) -> Result<RemoteModel, ConfigError> {
        RemoteModel::build(name, config, None)
    }

    /// [`RemoteModel::new`] for an endpoint a customer chose (BYOK): the
    /// client resolves names through `bounty_outbound`'s guarded resolver
    /// and re-checks every redirect, so the endpoint, or a later change of
    /// its DNS, can never reach a private address unless `outbound`
    /// allows it. A refusal fails the call as `outbound_address_refused`,
    /// not retried. The caller checks an IP-literal host itself
    /// (`bounty_outbound::check_literal`): no resolver sees it.
    pub fn guarded(
        name: &str,
        config: &RemoteModelConfig,
        outbound: &bounty_outbound::OutboundPolicy,
    ) -> Result<RemoteModel, ConfigError> {
        RemoteModel::build(name, config, Some(outbound))
    }

    fn build(
        name: &str,
        config: &RemoteModelConfig,
        outbound: Option<&bounty_outbound::OutboundPolicy>,
    ) -> Result<RemoteModel, ConfigError> {
        let base_url = config.base_url.trim().trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base_url)
            .map_err(|e| ConfigError::new(name, "base_url", format!("{base_url:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ConfigError::new(
                name,
                "base_url",
                format!("{base_url:?} is not an http(s) URL"),
            ));
        }
        let api_key = match &config.api_key {
            Some(key) if !key.expose_secret().is_empty() => {
                // async-openai unwraps the header parse on every request: a
                // key that is not a valid header value would panic there.
                if HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())).is_err() {
                    return Err(ConfigError::new(
                        name,
                        "api_key",
                        "contains characters that cannot be sent in an HTTP header",
                    ));
                }
                Some(key.clone())
            }
            _ => None,
        };
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms.max(1));
        let request_timeout = Duration::from_millis(config.request_timeout_ms.max(1));
        let http = outbound
            .map_or_else(reqwest::Client::builder, bounty_outbound::guarded_client_builder)
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ConfigError::new(name, "base_url", format!("cannot build an HTTP client: {e}")))?;

        // Every field set explicitly: `new()` would read OPENAI_* from the
        // environment (see the module docs).
        let openai = OpenAIConfig::new()
            .with_api_base(base_url.clone())
            .with_api_key(
                api_key
                    .as_ref()
                    .map(|k| k.expose_secret().to_owned())
                    .unwrap_or_default(),
            )
            .with_org_id("")
            .with_project_id("");
        let transport = Transport {
            http: http.clone(),
            send_key: api_key.is_some(),
        };
        // `build` installs async-openai's retrying executor; `with_http_service`
        // replaces it with ours, so the only retries are `generate`'s.
        let client = Client::build(http.clone(), openai).with_http_service(transport);

        let token_limit = if url.host_str() == Some("api.openai.com") {
            TokenLimitField::MaxCompletionTokens
        } else {
            TokenLimitField::MaxTokens
        };
        Ok(RemoteModel {
            name: name.to_owned(),
            base_url,
            model: config.model.clone(),
            client,
            http,
            api_key,
            connect_timeout,
            request_timeout,
            retry: RetryPolicy {
                max_retries: config.max_retries,
                base: Duration::from_millis(config.retry_base_ms),
                cap: Duration::from_millis(config.retry_max_ms),
            },
            token_limit,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// A POST of `body` to `{base_url}/{path}`, with the key (marked
    /// sensitive) when one is configured.
    pub(crate) fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::RequestBuilder {
        let request = self.http.post(format!("{}/{path}", self.base_url)).json(body);
        match &self.api_key {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                    .unwrap_or_else(|_| HeaderValue::from_static(""));
                value.set_sensitive(true);
                request.header(AUTHORIZATION, value)
            }
            None => request,
        }
    }

    /// One chat completion, retried as the module docs describe.
    /// `latency` covers every attempt and every wait.
    pub async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
        let started = Instant::now();
        let wire = self.chat_request(request);
        let (client, wire) = (&self.client, &wire);
        let response = self
            .with_retries("chat", || async move { client.chat().create(wire.clone()).await })
            .await?;
        let mut generation = generation_from(response)?;
        generation.latency = started.elapsed();
        Ok(generation)
    }

    /// Embeds each text, in order, in one request.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, ProviderError> {
        self.embed_with(texts, None).await
    }

    /// Embeds each text, in order, in one request, asking for `dimensions`
    /// when set. The vectors come back as the endpoint sent them.
    pub async fn embed_with(
        &self,
        texts: Vec<String>,
        dimensions: Option<u32>,
    ) -> Result<Vec<Vec<f32>>, ProviderError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let expected = texts.len();
        let wire = CreateEmbeddingRequest {
            model: self.model.clone(),
            input: EmbeddingInput::StringArray(texts),
            dimensions,
            ..Default::default()
        };
        let (client, wire) = (&self.client, &wire);
        let response = self
            .with_retries("embeddings", || async move {
                client.embeddings().create(wire.clone()).await
            })
            .await?;
        let mut data = response.data;
        if data.len() != expected {
            return Err(ProviderError::Malformed(format!(
                "asked for {expected} embeddings, got {}",
                data.len()
            )));
        }
        data.sort_by_key(|e| e.index);
        if data.iter().enumerate().any(|(i, e)| e.index as usize != i) {
            return Err(ProviderError::Malformed(
                "embedding indices are not 0..n".to_owned(),
            ));
        }
        Ok(data.into_iter().map(|e| e.embedding).collect())
    }

    fn chat_request(&self, request: GenerateRequest) -> CreateChatCompletionRequest {
        let messages = request.messages.into_iter().map(wire_message).collect();
        let tools: Vec<ChatCompletionTools> = request
            .tools
            .into_iter()
            .map(|t| {
                ChatCompletionTools::Function(ChatCompletionTool {
                    function: FunctionObject {
                        name: t.name,
                        description: Some(t.description),
                        parameters: Some(t.parameters),
                        strict: None,
                    },
                })
            })
            .collect();
        let mut wire = CreateChatCompletionRequest {
            model: self.model.clone(),
            messages,
            tool_choice: (!tools.is_empty())
                .then_some(ChatCompletionToolChoiceOption::Mode(ToolChoiceOptions::Auto)),
            tools: (!tools.is_empty()).then_some(tools),
            temperature: Some(request.temperature),
            response_format: request.json_schema.map(|schema| ResponseFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    description: None,
                    name: "output".to_owned(),
                    schema,
                    strict: Some(true),
                },
            }),
            ..Default::default()
        };
        // Deprecated upstream but still what most compatible servers read:
        // see the module docs.
        #[allow(deprecated)]
        {
            wire.seed = Some(i64::from(request.seed));
            match self.token_limit {
                TokenLimitField::MaxTokens => wire.max_tokens = Some(request.max_tokens),
                TokenLimitField::MaxCompletionTokens => wire.max_completion_tokens = Some(request.max_tokens),
            }
        }
        wire
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries run
    /// out.
    pub(crate) async fn with_retries<T, F, Fut>(
        &self,
        op: &'static str,
        mut attempt: F,
    ) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OpenAIError>>,
    {
        let mut retries = 0u32;
        loop {
            let number = retries + 1;
            let failure = match attempt().await {
                Ok(value) => {
                    tracing::debug!(model = %self.name, op, attempt = number, status = 200u16, "provider call succeeded");
                    return Ok(value);
                }
                Err(error) => self.classify(error),
            };
            let status = failure.status.map(|s| s.as_u16());
            if !failure.retryable || retries >= self.retry.max_retries {
                tracing::debug!(
                    model = %self.name, op, attempt = number, status, code = failure.error.code(),
                    retryable = failure.retryable, "provider call failed; not retrying"
                );
                return Err(failure.error);
            }
            let wait = self.retry.wait(retries, failure.retry_after);
            tracing::debug!(
                model = %self.name, op, attempt = number, status, code = failure.error.code(),
                retry_after_ms = failure.retry_after.map(|d| d.as_millis() as u64),
                wait_ms = wait.as_millis() as u64, "provider call failed; retrying"
            );
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }

    /// What one failed attempt means.
    fn classify(&self, error: OpenAIError) -> Failure {
        match error {
            OpenAIError::Boxed(boxed) => match boxed.downcast::<HttpFailure>() {
                Ok(http) => self.classify_status(*http),
                Err(other) => Failure::fatal(ProviderError::Unreachable(self.redact(&chain(&*other)))),
            },
            OpenAIError::Reqwest(e) => self.classify_transport(e),
            OpenAIError::JSONDeserialize(e, _body) => {
                Failure::fatal(ProviderError::Malformed(format!("not an OpenAI response: {e}")))
            }
            // Our transport turns every non-2xx into `HttpFailure`; kept for
            // completeness should a future version route one here.
            OpenAIError::ApiError(api) => self.classify_status(HttpFailure {
                status: api.status_code,
                retry_after: None,
                quota_exhausted: api.api_error.r#type.as_deref() == Some("insufficient_quota"),
                message: api.api_error.message,
            }),
            OpenAIError::InvalidArgument(message) => Failure::fatal(ProviderError::Rejected {
                status: 0,
                message: format!("request not sent: {message}"),
            }),
            other => Failure::fatal(ProviderError::Malformed(other.to_string())),
        }
    }

    fn classify_status(&self, http: HttpFailure) -> Failure {
        let status = http.status;
        let message = self.redact(&http.message);
        let code = status.as_u16();
        // Honoured on 429 and 503 only: elsewhere it is not a promise.
        let honoured = matches!(code, 429 | 503).then_some(http.retry_after).flatten();
        let (error, retryable) = if code == 429 && http.quota_exhausted {
            (
                ProviderError::Rejected {
                    status: code,
                    message,
                },
                false,
            )
        } else if code == 429 {
            (
                ProviderError::RateLimited {
                    retry_after: http.retry_after,
                    message,
                },
                true,
            )
        } else if status.is_server_error() {
            (
                ProviderError::Server {
                    status: code,
                    message,
                },
                true,
            )
        } else {
            (
                ProviderError::Rejected {
                    status: code,
                    message,
                },
                false,
            )
        };
        Failure {
            error,
            status: Some(status),
            retry_after: honoured,
            retryable,
        }
    }

    fn classify_transport(&self, e: reqwest::Error) -> Failure {
        // What the guarded client (BYOK) refused: permanent. A name that
        // does not resolve stays a transient `Unreachable`, as before.
        match bounty_outbound::OutboundError::find_in(&e) {
            Some(refused @ bounty_outbound::OutboundError::Refused { .. }) => {
                return Failure::fatal(ProviderError::AddressRefused(refused.to_string()));
            }
            Some(
                other @ (bounty_outbound::OutboundError::TooManyRedirects { .. }
                | bounty_outbound::OutboundError::InvalidUrl { .. }),
            ) => {
                return Failure::fatal(ProviderError::Rejected {
                    status: 0,
                    message: other.to_string(),
                });
            }
            _ => {}
        }
        let e = e.without_url();
        if e.is_builder() {
            return Failure::fatal(ProviderError::Rejected {
                status: 0,
                message: format!("request not sent: {}", self.redact(&chain(&e))),
            });
        }
        let error = if e.is_timeout() {
            ProviderError::Timeout(if e.is_connect() {
                self.connect_timeout
            } else {
                self.request_timeout
            })
        } else {
            // Refused, reset, DNS, TLS, or the connection dropped mid-answer.
            ProviderError::Unreachable(self.redact(&chain(&e)))
        };
        Failure {
            error,
            status: None,
            retry_after: None,
            retryable: true,
        }
    }

    /// Removes the key from a provider's message, should one echo it, and
    /// any NUL character (the message is stored, and Postgres `text`
    /// refuses NUL; the endpoint may be a customer's own, under BYOK).
    fn redact(&self, message: &str) -> String {
        let message = match &self.api_key {
            Some(key) if message.contains(key.expose_secret()) => {
                message.replace(key.expose_secret(), "<redacted>")
            }
            _ => message.to_owned(),
        };
        if message.contains('\0') {
            message.replace('\0', "")
        } else {
            message
        }
    }
}

fn wire_message(message: Message) -> ChatCompletionRequestMessage {
    match message.role {
        Role::System => ChatCompletionRequestSystemMessage::from(message.content).into(),
        Role::User => ChatCompletionRequestUserMessage::from(message.content).into(),
        Role::Assistant if message.tool_calls.is_empty() => {
            ChatCompletionRequestAssistantMessage::from(message.content).into()
        }
        Role::Assistant => ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
            content: (!message.content.is_empty()).then_some(
                ChatCompletionRequestAssistantMessageContent::Text(message.content),
            ),
            tool_calls: Some(
                message
                    .tool_calls
                    .into_iter()
                    .map(|c| {
                        ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                            id: c.id,
                            function: FunctionCall {
                                name: c.name,
                                arguments: c.arguments,
                            },
                        })
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        Role::Tool => ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
            content: ChatCompletionRequestToolMessageContent::Text(message.content),
            tool_call_id: message.tool_call_id.unwrap_or_default(),
        }),
    }
}

fn generation_from(response: CreateChatCompletionResponse) -> Result<Generation, ProviderError> {
    let usage = response
        .usage
        .map(|u| Usage {
            prompt_tokens: u64::from(u.prompt_tokens),
            completion_tokens: u64::from(u.completion_tokens),
            cached_tokens: u
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .map_or(0, u64::from),
            reasoning_tokens: u
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .map_or(0, u64::from),
        })
        .unwrap_or_default();
    let mut choices = response.choices;
    if choices.is_empty() {
        return Err(ProviderError::Malformed("the response has no choices".to_owned()));
    }
    let position = choices.iter().position(|c| c.index == 0).unwrap_or(0);
    let choice = choices.swap_remove(position);
    // Function calls only: a custom tool was never offered.
    let tool_calls: Vec<ToolCall> = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| match c {
            ChatCompletionMessageToolCalls::Function(f) => Some(ToolCall {
                id: f.id,
                name: f.function.name,
                arguments: f.function.arguments,
            }),
            ChatCompletionMessageToolCalls::Custom(_) => None,
        })
        .collect();
    let finish_reason = match choice.finish_reason {
        Some(WireFinishReason::Length) => FinishReason::Length,
        _ if !tool_calls.is_empty() => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    };
    // A refusal (strict JSON schema) is the model's answer too: the
    // verifier will judge it.
    let text = choice
        .message
        .content
        .or(choice.message.refusal)
        .unwrap_or_default();
    Ok(Generation {
        text,
        tool_calls,
        usage,
        latency: Duration::ZERO,
        finish_reason,
        timings: None,
    })
}

/// The error and its causes, on one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// One failed attempt, classified.
struct Failure {
    error: ProviderError,
    status: Option<StatusCode>,
    /// The server's `Retry-After`, when it is to be honoured.
    retry_after: Option<Duration>,
    retryable: bool,
}

impl Failure {
    fn fatal(error: ProviderError) -> Self {
        Failure {
            error,
            status: None,
            retry_after: None,
            retryable: false,
        }
    }
}

/// Backoff of the retry loop.
#[derive(Debug, Clone, Copy)]
struct RetryPolicy {
    max_retries: u32,
    base: Duration,
    cap: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `retry + 1`: the server's
    /// `Retry-After` if it sent one, else full jitter; both capped.
    fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(after) => after.min(self.cap),
            None => {
                let ceiling = self.backoff_ceiling(retry);
                let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
                Duration::from_millis(random_u64() % ceiling_ms.saturating_add(1))
            }
        }
    }

    fn backoff_ceiling(&self, retry: u32) -> Duration {
        self.base.saturating_mul(2u32.saturating_pow(retry)).min(self.cap)
    }
}

fn random_u64() -> u64 {
    // getrandom only fails where the OS has no entropy source; the clock
    // still spreads retries apart there.
    getrandom::u64().unwrap_or_else(|_| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos().into())
            .unwrap_or(0)
    })
}

/// `Retry-After`: delta-seconds (fractions tolerated) or an HTTP date.
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A non-2xx answer, read by [`Transport`] before async-openai drops its
/// headers.
#[derive(Debug)]
pub(crate) struct HttpFailure {
    status: StatusCode,
    retry_after: Option<Duration>,
    /// A 429 of type `insufficient_quota`: waiting will not help.
    quota_exhausted: bool,
    /// The OpenAI error message, else the start of the body.
    message: String,
}

impl fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.message)
    }
}

impl std::error::Error for HttpFailure {}

impl HttpFailure {
    pub(crate) async fn read(response: reqwest::Response) -> Result<HttpFailure, reqwest::Error> {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = response.bytes().await?;
        let (message, quota_exhausted) = match serde_json::from_slice::<WrappedError>(&body) {
            Ok(wrapped) => {
                let quota = wrapped.error.r#type.as_deref() == Some("insufficient_quota")
                    || wrapped.error.code.as_deref() == Some("insufficient_quota");
                (wrapped.error.message, quota)
            }
            Err(_) => (String::from_utf8_lossy(&body).trim().to_owned(), false),
        };
        let message = if message.is_empty() {
            status.canonical_reason().unwrap_or("no message").to_owned()
        } else if message.chars().count() > MAX_MESSAGE_CHARS {
            let mut cut: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
            cut.push('…');
            cut
        } else {
            message
        };
        Ok(HttpFailure {
            status,
            retry_after,
            quota_exhausted,
            message,
        })
    }
}

/// The tower service that async-openai sends through; see the module docs.
#[derive(Clone)]
struct Transport {
    http: reqwest::Client,
    send_key: bool,
}

type TransportFuture = Pin<Box<dyn Future<Output = Result<reqwest::Response, OpenAIError>> + Send + 'static>>;

impl tower::Service<HttpRequestFactory> for Transport {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = TransportFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Self::Future {
        let http = self.http.clone();
        let send_key = self.send_key;
        Box::pin(async move {
            let mut request = factory.build().await?;
            if send_key {
                if let Some(value) = request.headers_mut().get_mut(AUTHORIZATION) {
                    value.set_sensitive(true);
                }
            } else {
                request.headers_mut().remove(AUTHORIZATION);
            }
            let response = http.execute(request).await?;
            if response.status().is_success() {
                return Ok(response);
            }
            let failure = HttpFailure::read(response).await?;
            Err(OpenAIError::Boxed(Box::new(failure)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("0.5", now), Some(Duration::from_millis(500)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("NaN", now), None);
    }

    #[test]
    fn backoff_is_full_jitter_under_a_capped_ceiling() {
        let policy = RetryPolicy {
            max_retries: 10,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1_000),
        };
        assert_eq!(policy.backoff_ceiling(0), Duration::from_millis(100));
        assert_eq!(policy.backoff_ceiling(2), Duration::from_millis(400));
        assert_eq!(policy.backoff_ceiling(4), Duration::from_millis(1_000));
        assert_eq!(policy.backoff_ceiling(u32::MAX), Duration::from_millis(1_000));
        for retry in 0..8 {
            for _ in 0..50 {
                assert!(policy.wait(retry, None) <= policy.backoff_ceiling(retry));
            }
        }
        assert_eq!(
            policy.wait(0, Some(Duration::from_millis(300))),
            Duration::from_millis(300)
        );
        assert_eq!(
            policy.wait(0, Some(Duration::from_secs(60))),
            Duration::from_millis(1_000)
        );
    }

    #[test]
    fn keys_that_cannot_be_a_header_are_refused_without_being_shown() {
        let config: RemoteModelConfig = serde_json::from_value(serde_json::json!({
            "base_url": "http://127.0.0.1:9/v1",
            "model": "m",
            "api_key": "sk-bad\nkey",
            "price": { "input_per_million": "0", "output_per_million": "0" }
        }))
        .unwrap();
        let err = RemoteModel::new("m", &config).unwrap_err();
        assert_eq!(err.key, "api_key");
        assert!(!err.to_string().contains("sk-bad"));
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let config: RemoteModelConfig = serde_json::from_value(serde_json::json!({
            "base_url": "https://api.openai.com/v1/",
            "model": "gpt-4o-mini",
            "api_key": "sk-very-secret",
            "price": { "input_per_million": "0.15", "output_per_million": "0.60" }
        }))
        .unwrap();
        let model = RemoteModel::new("m", &config).unwrap();
        assert_eq!(model.base_url(), "https://api.openai.com/v1");
        assert_eq!(model.token_limit, TokenLimitField::MaxCompletionTokens);
        assert!(!format!("{model:?}").contains("sk-very-secret"));
        assert!(!format!("{config:?}").contains("sk-very-secret"));
        assert_eq!(model.redact("bad key sk-very-secret"), "bad key <redacted>");
    }
}
