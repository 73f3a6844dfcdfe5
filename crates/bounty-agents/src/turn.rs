//! One turn of an agent: the model, the tools it calls, and its answer.
//!
//! A turn is a loop of at most `max_steps` tool steps. Each step asks the
//! route's model with the agent's tools offered (remote models as OpenAI
//! `tools`, local ones through the step grammar of
//! `bounty_models::tool_grammar`). A step that calls tools runs each call
//! in order and shows the model its result; a step that answers ends the
//! turn. After `max_steps` tool steps the model is asked once more with
//! no tools, so it must answer.
//!
//! - **Errors are results.** A tool's 4xx, arguments its schema refuses,
//!   or an unknown tool are shown to the model as the call's result, so it
//!   can correct itself or say so.
//! - **A tool that is down** (5xx, 429, no answer, too slow, too large)
//!   ends the turn with [`ProviderError::ToolUnavailable`]: the attempt is
//!   retried later, and a task is never resolved on a broken tool.
//! - **A tool that cannot be called** as defined (an address tools may not
//!   reach, a header that does not open) ends it with
//!   [`ProviderError::ToolRefused`]: the task fails, uncharged.
//! - **Side effects happen once.** A side-effecting call carries an
//!   `Idempotency-Key` derived from the task, the turn, the tool and its
//!   canonical arguments ([`idempotency_key`]). A worker that crashes after
//!   the call and retries the attempt sends the same key, so the customer's
//!   system (which, like Stripe, dedupes on it) refunds once.
//! - **Hand-off.** When the agent allows it, a built-in `handoff` tool ends
//!   the turn as [`TurnEnd::Handoff`]: the conversation goes to a person.
//!
//! Every call is returned as a [`NewToolCall`] (arguments, status,
//! latency, redacted response) for the task's record and receipt, and the
//! messages the turn added are returned for its transcript.

use std::time::{Duration, Instant};

use bounty_core::TaskId;
use bounty_models::router::{Overrides, Router};
use bounty_models::{ByokKey, CallRecord, Message, ProviderError, ToolCall, ToolDefinition};
use bounty_outbound::Outbound;
use bounty_store::{NewToolCall, ToolCallOutcome};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::tools::{PreparedTool, ToolOutcome, call_tool};

/// The built-in hand-off tool's name.
pub const HANDOFF: &str = "handoff";

/// The built-in hand-off tool, as the model sees it.
pub fn handoff_definition() -> ToolDefinition {
    ToolDefinition {
        name: HANDOFF.to_owned(),
        description: "Hand the conversation to a human teammate when you cannot resolve it yourself \
                      (the request is outside what you can do, policy forbids it, or the customer asks \
                      for a person). Say why."
            .to_owned(),
        parameters: json!({
            "type": "object",
            "properties": {"reason": {"type": "string", "description": "Why a person is needed."}},
            "required": ["reason"],
            "additionalProperties": false,
        }),
    }
}

/// What a turn runs with.
pub struct TurnContext<'a> {
    pub router: &'a Router,
    /// The outbound client for tools; `None` when it could not be built
    /// (every tool call is then refused, shown to the model).
    pub outbound: Option<&'a Outbound>,
    pub tools: &'a [PreparedTool],
    /// The definitions offered: the tools', then `handoff` when allowed.
    pub definitions: &'a [ToolDefinition],
    pub max_steps: u32,
    pub overrides: Overrides,
    pub schema: Option<&'a Value>,
    pub byok: Option<&'a ByokKey>,
    pub task: TaskId,
    pub turn: i32,
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEnd {
    /// The model answered.
    Answer { text: String, model: String },
    /// The model called `handoff`.
    Handoff { reason: String, model: String },
}

/// A turn's result and everything it did.
#[derive(Debug)]
pub struct TurnRun {
    pub result: Result<TurnEnd, ProviderError>,
    /// Every model call, failed ones included.
    pub calls: Vec<CallRecord>,
    /// Every tool call, in order.
    pub tool_calls: Vec<NewToolCall>,
    /// The messages the turn added after the prompt: the model's calls,
    /// their results, and the answer.
    pub messages: Vec<Message>,
    /// Time spent in tools.
    pub tool_time: Duration,
}

/// Runs one turn on `route` (one cascade step: its models are fallbacks
/// for provider errors) from `prompt`.
pub async fn run_turn(ctx: &TurnContext<'_>, route: &[String], prompt: &[Message]) -> TurnRun {
    let mut run = TurnRun {
        result: Err(ProviderError::NotConfigured(
            "the model route is empty".to_owned(),
        )),
        calls: Vec::new(),
        tool_calls: Vec::new(),
        messages: Vec::new(),
        tool_time: Duration::ZERO,
    };
    let mut conversation: Vec<Message> = prompt.to_vec();
    // After a step that called tools: when its model answered, and how
    // long its tools took; the step's overhead is read at the next answer.
    let mut pending: Option<(Instant, Duration)> = None;
    for step in 0..=ctx.max_steps {
        let offered: &[ToolDefinition] = if step < ctx.max_steps {
            ctx.definitions
        } else {
            &[]
        };
        let routed = ctx
            .router
            .generate_tools(route, &conversation, ctx.overrides, ctx.schema, offered, ctx.byok)
            .await;
        let answered = Instant::now();
        if let Some((previous, tools)) = pending.take()
            && let Some(last) = run.tool_calls.last_mut()
        {
            // Bounty's own time in the step: everything since the last
            // answer but the tools and the model calls.
            let models: Duration = routed.calls.iter().map(|c| c.latency).sum();
            let own = answered.duration_since(previous).saturating_sub(models + tools);
            last.step_overhead_us = Some(i64::try_from(own.as_micros()).unwrap_or(i64::MAX));
        }
        run.calls.extend(routed.calls);
        let routed = match routed.result {
            Ok(routed) => routed,
            Err(e) => {
                run.result = Err(e);
                return run;
            }
        };
        let generation = routed.generation;
        if generation.tool_calls.is_empty() || offered.is_empty() {
            run.messages.push(Message::new(
                bounty_models::Role::Assistant,
                generation.text.clone(),
            ));
            run.result = Ok(TurnEnd::Answer {
                text: generation.text,
                model: routed.model,
            });
            return run;
        }
        let step_tools_before = run.tool_time;
        let calling = Message::calling(generation.text, generation.tool_calls.clone());
        conversation.push(calling.clone());
        run.messages.push(calling);
        for call in &generation.tool_calls {
            if call.name == HANDOFF && ctx.definitions.iter().any(|d| d.name == HANDOFF) {
                let reason = handoff_reason(&call.arguments);
                run.tool_calls.push(NewToolCall {
                    turn: ctx.turn,
                    tool: HANDOFF.to_owned(),
                    call_id: call.id.clone(),
                    arguments: call.arguments.clone(),
                    status: None,
                    outcome: ToolCallOutcome::Handoff,
                    latency_us: 0,
                    response: json!({"handed_off": true, "reason": reason}),
                    idempotency_key: None,
                    step_overhead_us: None,
                });
                let result = Message::tool_result(call.id.clone(), "Handed to a person.");
                run.messages.push(result);
                run.result = Ok(TurnEnd::Handoff {
                    reason,
                    model: routed.model,
                });
                return run;
            }
            let (shown, record, stop) = call_one(ctx, call).await;
            run.tool_time += Duration::from_micros(u64::try_from(record.latency_us).unwrap_or(0));
            run.tool_calls.push(record);
            let result = Message::tool_result(call.id.clone(), shown);
            conversation.push(result.clone());
            run.messages.push(result);
            if let Some(error) = stop {
                run.result = Err(error);
                return run;
            }
        }
        pending = Some((answered, run.tool_time - step_tools_before));
    }
    // The last step offers no tools, so it always answers: not reached.
    run
}

/// Runs one tool call: what the model is shown, the record, and the error
/// that ends the turn when the tool is down or cannot be called.
async fn call_one(ctx: &TurnContext<'_>, call: &ToolCall) -> (String, NewToolCall, Option<ProviderError>) {
    let mut record = NewToolCall {
        turn: ctx.turn,
        tool: call.name.clone(),
        call_id: call.id.clone(),
        arguments: call.arguments.clone(),
        status: None,
        outcome: ToolCallOutcome::ClientError,
        latency_us: 0,
        response: Value::Null,
        idempotency_key: None,
        step_overhead_us: None,
    };
    let refuse = |record: &mut NewToolCall, message: String| {
        record.response = json!({"error": message});
        format!("Error: {message}")
    };
    let Some(tool) = ctx.tools.iter().find(|t| t.name() == call.name) else {
        let shown = refuse(&mut record, format!("there is no tool named {:?}", call.name));
        return (shown, record, None);
    };
    let args: Value = match serde_json::from_str(&call.arguments) {
        Ok(v) => v,
        Err(e) => {
            let shown = refuse(&mut record, format!("the arguments are not JSON ({e})"));
            return (shown, record, None);
        }
    };
    let Some(outbound) = ctx.outbound else {
        record.outcome = ToolCallOutcome::Refused;
        let why = "this worker has no outbound HTTP client for tools".to_owned();
        let shown = refuse(&mut record, why.clone());
        return (shown, record, Some(ProviderError::ToolRefused(why)));
    };
    let key = idempotency_key(ctx.task, ctx.turn, &call.name, &args);
    if tool.side_effects() {
        record.idempotency_key = Some(key.clone());
    }
    let started = Instant::now();
    let result = call_tool(outbound, tool, &args, &key).await;
    let latency = if result.latency.is_zero() {
        started.elapsed()
    } else {
        result.latency
    };
    record.latency_us = i64::try_from(latency.as_micros()).unwrap_or(i64::MAX);
    record.status = result.status;
    record.response = result.redacted.clone();
    let why = || format!("{}: {}", call.name, first_line(&result.content));
    let (outcome, stop) = match result.outcome {
        ToolOutcome::Ok => (ToolCallOutcome::Ok, None),
        ToolOutcome::ClientError => (ToolCallOutcome::ClientError, None),
        ToolOutcome::Refused => (ToolCallOutcome::Refused, Some(ProviderError::ToolRefused(why()))),
        ToolOutcome::Down => (ToolCallOutcome::Down, Some(ProviderError::ToolUnavailable(why()))),
    };
    record.outcome = outcome;
    tracing::info!(
        tool = %call.name,
        status = result.status,
        outcome = outcome.as_str(),
        latency_ms = latency.as_millis() as u64,
        "tool called"
    );
    (result.content, record, stop)
}

fn first_line(s: &str) -> &str {
    let line = s.lines().next().unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((at, _)) => &line[..at],
        None => line,
    }
}

/// The reason a `handoff` call gives, or a default.
fn handoff_reason(arguments: &str) -> String {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_owned))
        .map(|r| r.trim().chars().take(500).collect::<String>())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "the agent asked for a person".to_owned())
}

/// The `Idempotency-Key` of a side-effecting call: `bounty_` and the hex
/// SHA-256 (first 32 digits) of the task, the turn, the tool and its
/// arguments in canonical JSON (object keys sorted). The same call in the
/// same turn, on any attempt, gets the same key, so a retry after a crash
/// cannot repeat the effect.
pub fn idempotency_key(task: TaskId, turn: i32, tool: &str, args: &Value) -> String {
    let mut h = Sha256::new();
    for part in [
        task.to_string(),
        turn.to_string(),
        tool.to_owned(),
        canonical(args),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    format!("bounty_{}", &hex::encode(h.finalize())[..32])
}

/// JSON with object keys sorted at every level.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_ignores_key_order_and_changes_with_each_part() {
        let task = TaskId::new();
        let a = json!({"order": "A1", "amount": {"value": 5, "currency": "usd"}});
        let b = json!({"amount": {"currency": "usd", "value": 5}, "order": "A1"});
        let key = idempotency_key(task, 1, "refund", &a);
        assert_eq!(key, idempotency_key(task, 1, "refund", &b));
        assert!(key.starts_with("bounty_") && key.len() == 39);
        assert_ne!(key, idempotency_key(task, 2, "refund", &a));
        assert_ne!(key, idempotency_key(task, 1, "refund2", &a));
        assert_ne!(key, idempotency_key(TaskId::new(), 1, "refund", &a));
        assert_ne!(key, idempotency_key(task, 1, "refund", &json!({"order": "A2"})));
    }

    #[test]
    fn a_handoff_reason_is_read_or_defaulted() {
        assert_eq!(
            handoff_reason(r#"{"reason": " Legal question "}"#),
            "Legal question"
        );
        assert_eq!(handoff_reason("{}"), "the agent asked for a person");
        assert_eq!(handoff_reason("not json"), "the agent asked for a person");
    }
}
