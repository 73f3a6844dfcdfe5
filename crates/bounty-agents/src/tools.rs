//! The tool executor: one call of an agent's HTTP tool, made safely, and
//! what it returns to the model and to the record.
//!
//! The agent loop prepares each tool of the version it runs once
//! ([`prepare_agent_tools`], [`PreparedTool::prepare`]: the arguments'
//! schema compiled, the sealed header values opened) and calls
//! [`call_tool`] for each tool call the model makes, with the key
//! [`idempotency_key`] derives from the task, turn and step. A call:
//!
//! 1. checks the arguments against the tool's schema; invalid ones are a
//!    [`ToolOutcome::ClientError`] the model is shown, and nothing is sent;
//! 2. fills the URL template's `{placeholders}`, each argument
//!    percent-encoded so that it stays inside its path segment (or query
//!    value) whatever it holds, and puts the other arguments in the query
//!    string (`GET`, `DELETE`) or a JSON body (`POST`, `PUT`, `PATCH`);
//! 3. sends it through [`bounty_outbound::Outbound`], which refuses
//!    private addresses (after DNS, on every redirect) unless the policy
//!    allows them, and caps the body and the time; the tool's own timeout
//!    applies on top;
//! 4. adds `Idempotency-Key: <key>` when the tool has side effects. The
//!    loop derives the key from the task, turn and step, so a step retried
//!    after a crash sends the same key and the receiver can refuse to
//!    refund twice.
//!
//! # What a call returns
//!
//! [`ToolResult::content`] is what the model is shown: the response body
//! (up to [`MAX_CONTENT_BYTES`]) or the error. [`ToolResult::redacted`] is
//! what the transcript and the receipt keep, a JSON object of stable shape:
//!
//! ```json
//! {
//!   "tool": "lookup_order",
//!   "method": "GET",
//!   "host": "shop.example",
//!   "status": 200,
//!   "outcome": "ok",
//!   "latency_ms": 41,
//!   "body": "{\"order\": …}",
//!   "truncated": false,
//!   "error": null
//! }
//! ```
//!
//! - `status`: the HTTP status, `null` when no response came (refused,
//!   timed out, unreachable, invalid arguments);
//! - `outcome`: [`ToolOutcome`] in snake case (`ok`, `client_error`,
//!   `down`, `refused`);
//! - `body`: the response body, lossily decoded as UTF-8, cut to
//!   [`MAX_REDACTED_BODY_BYTES`] (`truncated` says whether it was); empty
//!   when no response came;
//! - `error`: what went wrong when no response came, else `null`.
//!
//! Every header value of the tool (they are secrets) is replaced by
//! `[redacted]` wherever it appears in `content`, `body` and `error`,
//! before anything is cut, so no part of one survives a cut either. The
//! URL's path and query are not recorded: they carry the arguments, which
//! the loop records itself.

use std::time::{Duration, Instant};

use bounty_core::tool::{TemplatePart, encode_placeholder, template_parts, tool_header_aad};
use bounty_core::{AccountId, AgentId, ToolHeader, ToolMethod, ToolSpec};
use bounty_outbound::{Outbound, OutboundError, Url};
use serde::Serialize;
use serde_json::Value;

/// Most bytes of a response body the model is shown.
pub const MAX_CONTENT_BYTES: usize = 8 * 1024;
/// Most bytes of a response body the record keeps.
pub const MAX_REDACTED_BODY_BYTES: usize = 1024;
/// What a header value is replaced by in anything shown or kept.
pub const REDACTED: &str = "[redacted]";
/// Most schema violations named to the model for one call.
const MAX_VIOLATIONS: usize = 10;

/// How a call ended, and so what the loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolOutcome {
    /// A 2xx answer: the model is shown the body.
    Ok,
    /// A 4xx answer (but 429), or arguments the schema refused: the model
    /// is shown the problem and may try again.
    ClientError,
    /// A 5xx or 429 answer, no answer in time, a connection that failed,
    /// a body over the cap: the tool is down, and the task fails as
    /// transient (retried later), never resolved.
    Down,
    /// The call cannot be made as the tool is defined: the outbound policy
    /// refused its address, or a header value does not open under the
    /// configured master keys. Retrying does not help: the task fails, not
    /// as transient.
    Refused,
}

impl ToolOutcome {
    /// The outcome's name in [`ToolResult::redacted`] (`client_error`).
    pub fn as_str(self) -> &'static str {
        match self {
            ToolOutcome::Ok => "ok",
            ToolOutcome::ClientError => "client_error",
            ToolOutcome::Down => "down",
            ToolOutcome::Refused => "refused",
        }
    }

    /// Whether the task should fail as transient (and be retried).
    pub fn is_transient(self) -> bool {
        self == ToolOutcome::Down
    }

    /// Whether the loop goes on, showing the model [`ToolResult::content`].
    pub fn continues(self) -> bool {
        matches!(self, ToolOutcome::Ok | ToolOutcome::ClientError)
    }

    /// The outcome of an HTTP status.
    pub fn of_status(status: u16) -> ToolOutcome {
        match status {
            200..=299 => ToolOutcome::Ok,
            429 | 500..=599 => ToolOutcome::Down,
            _ => ToolOutcome::ClientError,
        }
    }

    fn of_error(e: &OutboundError) -> ToolOutcome {
        match e {
            OutboundError::Refused { .. } | OutboundError::InvalidUrl { .. } => ToolOutcome::Refused,
            OutboundError::Unresolved { .. }
            | OutboundError::TooManyRedirects { .. }
            | OutboundError::Timeout { .. }
            | OutboundError::TooLarge { .. }
            | OutboundError::Transport { .. } => ToolOutcome::Down,
        }
    }
}

/// One call's result.
#[derive(Debug, Clone)]
pub struct ToolResult {
    /// The HTTP status; `None` when no response came.
    pub status: Option<u16>,
    /// What the model is shown: the body (cut to [`MAX_CONTENT_BYTES`]) or
    /// the error, header values redacted.
    pub content: String,
    /// What the transcript and receipt keep (see the module docs).
    pub redacted: Value,
    /// From sending the request to its last byte (zero when nothing was
    /// sent): the time a plan's `tool_seconds` counts.
    pub latency: Duration,
    pub outcome: ToolOutcome,
}

/// [`ToolResult::redacted`], typed.
#[derive(Serialize)]
struct Record<'a> {
    tool: &'a str,
    method: &'static str,
    host: &'a str,
    status: Option<u16>,
    outcome: &'static str,
    latency_ms: u64,
    body: String,
    truncated: bool,
    error: Option<String>,
}

/// Why a tool could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    /// The stored schema does not compile (it did when it was saved).
    #[error("tool {tool:?}: its parameters schema {message}")]
    Schema { tool: String, message: String },
}

/// A tool ready to be called: its schema compiled and its header values
/// opened. `Debug` shows no header value.
pub struct PreparedTool {
    spec: ToolSpec,
    validator: jsonschema::Validator,
    /// Every opened header value, longest first, for redaction.
    secrets: Vec<String>,
    /// Why the tool cannot be called, when a header value did not open
    /// (never the value).
    unusable: Option<String>,
}

impl std::fmt::Debug for PreparedTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedTool")
            .field("name", &self.spec.name)
            .field("method", &self.spec.method)
            .field("host", &self.spec.host())
            .field("unusable", &self.unusable)
            .finish_non_exhaustive()
    }
}

impl PreparedTool {
    /// Prepares `spec`, a tool of agent `agent` of `account`: compiles its
    /// schema and opens each sealed header value with `open(sealed, aad)`
    /// (the worker's `OpenSecret`; the aad is
    /// [`bounty_core::tool::tool_header_aad`]). A value that does not open
    /// does not fail the preparation: the tool then fails each call as
    /// [`ToolOutcome::Refused`], with an error naming the header only.
    pub fn prepare(
        mut spec: ToolSpec,
        account: AccountId,
        agent: AgentId,
        open: impl Fn(&str, &[u8]) -> Option<String>,
    ) -> Result<PreparedTool, PrepareError> {
        let validator = jsonschema::validator_for(&spec.parameters).map_err(|e| PrepareError::Schema {
            tool: spec.name.clone(),
            message: format!("does not compile: {e}"),
        })?;
        let mut unusable = None;
        let mut secrets = Vec::new();
        for (name, value) in spec.headers.iter_mut() {
            let opened = match value {
                ToolHeader::Plain(v) => Some(v.clone()),
                ToolHeader::Sealed(sealed) => open(
                    sealed,
                    tool_header_aad(account, agent, &spec.name, name).as_bytes(),
                ),
                ToolHeader::Keep => None,
            };
            match opened {
                Some(v) => {
                    if !v.is_empty() {
                        secrets.push(v.clone());
                    }
                    *value = ToolHeader::Plain(v);
                }
                None => {
                    unusable.get_or_insert_with(|| {
                        format!(
                            "tool {:?} cannot be called: its header `{name}` does not open under the configured master keys",
                            spec.name
                        )
                    });
                }
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Ok(PreparedTool {
            spec,
            validator,
            secrets,
            unusable,
        })
    }

    /// The name the model calls it by.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// What it does, for the model.
    pub fn description(&self) -> &str {
        &self.spec.description
    }

    /// The JSON Schema of its arguments, for the model.
    pub fn parameters(&self) -> &Value {
        &self.spec.parameters
    }

    pub fn method(&self) -> ToolMethod {
        self.spec.method
    }

    /// Whether a call carries an `Idempotency-Key`.
    pub fn side_effects(&self) -> bool {
        self.spec.side_effects
    }

    /// The tool's own time limit.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.spec.timeout_ms))
    }

    /// `text` with every header value replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }

    /// The violations of `args` against the schema, at most
    /// [`MAX_VIOLATIONS`]; empty when they match.
    fn violations(&self, args: &Value) -> Vec<String> {
        crate::schema::violations(&self.validator, args, MAX_VIOLATIONS)
    }

    /// The request URL and the arguments the template did not use.
    fn url(
        &self,
        args: &serde_json::Map<String, Value>,
    ) -> Result<(Url, serde_json::Map<String, Value>), String> {
        let parts = template_parts(&self.spec.url).map_err(|e| format!("the tool's URL {e}"))?;
        let mut rest = args.clone();
        let mut filled = String::with_capacity(self.spec.url.len());
        for part in parts {
            match part {
                TemplatePart::Literal(text) => filled.push_str(text),
                TemplatePart::Placeholder(name) => {
                    let value = rest
                        .remove(name)
                        .ok_or_else(|| format!("argument `{name}` is required by the URL"))?;
                    let encoded = encode_placeholder(&scalar_text(&value))
                        .ok_or_else(|| format!("argument `{name}` may not be `.` or `..`"))?;
                    filled.push_str(&encoded);
                }
            }
        }
        let url = Url::parse(&filled).map_err(|e| format!("the filled URL does not parse: {e}"))?;
        Ok((url, rest))
    }
}

/// Every tool of `agent`'s version, prepared ([`PreparedTool::prepare`])
/// in the order the agent lists them.
pub fn prepare_agent_tools(
    agent: &bounty_store::Agent,
    open: impl Fn(&str, &[u8]) -> Option<String>,
) -> Result<Vec<PreparedTool>, PrepareError> {
    agent
        .tools
        .iter()
        .map(|t| PreparedTool::prepare(t.clone(), agent.account_id, agent.id, &open))
        .collect()
}

/// The `Idempotency-Key` of a side-effecting call: the task, the turn of
/// its conversation and the step within the turn. The same step retried
/// (after a crash, a lost lease, a transient failure) sends the same key;
/// any other step sends another.
pub fn idempotency_key(task: bounty_core::TaskId, turn: u32, step: u32) -> String {
    format!("{task}/turn-{turn}/step-{step}")
}

/// An argument as text in a URL: a string as it is, anything else as JSON.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `text` cut to at most `max` bytes on a character boundary, and whether
/// it was cut.
fn cut(mut text: String, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    (text, true)
}

/// What a call became before it is written down.
struct Ended {
    status: Option<u16>,
    body: String,
    error: Option<String>,
    latency: Duration,
    outcome: ToolOutcome,
}

fn finish(tool: &PreparedTool, ended: Ended) -> ToolResult {
    let body = tool.redact(&ended.body);
    let error = ended.error.map(|e| tool.redact(&e));
    let (content, content_cut) = match &error {
        Some(e) => (e.clone(), false),
        None => cut(body.clone(), MAX_CONTENT_BYTES),
    };
    let content = if content_cut {
        format!("{content}\n[response truncated to {MAX_CONTENT_BYTES} bytes]")
    } else {
        content
    };
    let (kept, truncated) = cut(body, MAX_REDACTED_BODY_BYTES);
    let record = Record {
        tool: &tool.spec.name,
        method: tool.spec.method.as_str(),
        host: tool.spec.host(),
        status: ended.status,
        outcome: ended.outcome.as_str(),
        latency_ms: u64::try_from(ended.latency.as_millis()).unwrap_or(u64::MAX),
        body: kept,
        truncated,
        error,
    };
    let redacted = serde_json::to_value(&record).unwrap_or(Value::Null);
    ToolResult {
        status: ended.status,
        content,
        redacted,
        latency: ended.latency,
        outcome: ended.outcome,
    }
}

/// A call that ended before anything was sent.
fn unsent(tool: &PreparedTool, outcome: ToolOutcome, error: String) -> ToolResult {
    finish(
        tool,
        Ended {
            status: None,
            body: String::new(),
            error: Some(error),
            latency: Duration::ZERO,
            outcome,
        },
    )
}

/// Calls `tool` with `args` (the model's arguments, a JSON object).
/// `idempotency_key` is sent as `Idempotency-Key` when the tool has side
/// effects; the same key for a retried step. Never panics and never
/// fails: every problem is a [`ToolResult`] with its [`ToolOutcome`].
pub async fn call_tool(
    outbound: &Outbound,
    tool: &PreparedTool,
    args: &Value,
    idempotency_key: &str,
) -> ToolResult {
    if let Some(why) = &tool.unusable {
        return unsent(tool, ToolOutcome::Refused, why.clone());
    }
    let violations = tool.violations(args);
    if !violations.is_empty() {
        return unsent(
            tool,
            ToolOutcome::ClientError,
            format!(
                "invalid arguments for tool {:?}: {}",
                tool.spec.name,
                violations.join("; ")
            ),
        );
    }
    let Some(map) = args.as_object() else {
        return unsent(
            tool,
            ToolOutcome::ClientError,
            format!(
                "invalid arguments for tool {:?}: must be a JSON object",
                tool.spec.name
            ),
        );
    };
    let (mut url, rest) = match tool.url(map) {
        Ok(v) => v,
        Err(e) => {
            return unsent(
                tool,
                ToolOutcome::ClientError,
                format!("invalid arguments for tool {:?}: {e}", tool.spec.name),
            );
        }
    };
    let method =
        reqwest::Method::from_bytes(tool.spec.method.as_str().as_bytes()).unwrap_or(reqwest::Method::GET);
    if !tool.spec.method.sends_body() && !rest.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (key, value) in &rest {
            match value {
                Value::Null => {}
                Value::Array(items) => {
                    for item in items {
                        pairs.append_pair(key, &scalar_text(item));
                    }
                }
                other => {
                    pairs.append_pair(key, &scalar_text(other));
                }
            }
        }
    }
    let mut builder = outbound.request(method, url);
    for (name, value) in &tool.spec.headers {
        if let ToolHeader::Plain(v) = value {
            builder = builder.header(name.as_str(), v.as_str());
        }
    }
    if tool.spec.side_effects {
        builder = builder.header("Idempotency-Key", idempotency_key);
    }
    if tool.spec.method.sends_body() {
        builder = builder.json(&Value::Object(rest));
    }
    let request = match builder.build() {
        Ok(r) => r,
        Err(_) => {
            // reqwest's error may quote a header value: never show it.
            return unsent(
                tool,
                ToolOutcome::Refused,
                format!(
                    "tool {:?} cannot be called: its request could not be built (a header name or value, or the idempotency key, is not valid HTTP)",
                    tool.spec.name
                ),
            );
        }
    };
    let started = Instant::now();
    let sent = tokio::time::timeout(tool.timeout(), outbound.send(request)).await;
    let latency = started.elapsed();
    let ended = match sent {
        Err(_) => Ended {
            status: None,
            body: String::new(),
            error: Some(format!(
                "tool {:?}: {} did not answer within its timeout of {} ms",
                tool.spec.name,
                tool.spec.host(),
                tool.spec.timeout_ms
            )),
            latency,
            outcome: ToolOutcome::Down,
        },
        Ok(Err(e)) => Ended {
            status: None,
            body: String::new(),
            error: Some(format!("tool {:?}: {e}", tool.spec.name)),
            latency,
            outcome: ToolOutcome::of_error(&e),
        },
        Ok(Ok(response)) => {
            let status = response.status.as_u16();
            Ended {
                status: Some(status),
                body: String::from_utf8_lossy(&response.body).into_owned(),
                error: None,
                latency: response.latency,
                outcome: ToolOutcome::of_status(status),
            }
        }
    };
    let result = finish(tool, ended);
    // Names and numbers only: never a value, an argument or a body.
    tracing::debug!(
        tool = %tool.spec.name,
        status = ?result.status,
        outcome = result.outcome.as_str(),
        latency_ms = u64::try_from(result.latency.as_millis()).unwrap_or(u64::MAX),
        "tool called"
    );
    result
}

#[cfg(test)]
#[path = "tools_tests.rs"]
mod tests;
