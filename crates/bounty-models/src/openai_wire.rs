//! OpenAI's chat wire format, for the gateway's local models: an OpenAI
//! request read into a [`GenerateRequest`], and a [`Generation`] written
//! back as a `chat.completion` or as `chat.completion.chunk` events.
//!
//! Remote models never go through here: their requests are passed through
//! as the client wrote them ([`crate::passthrough`]).

use serde_json::{Map, Value, json};

use crate::config::GenerationDefaults;
use crate::types::{
    FinishReason, GenerateRequest, Generation, Message, Role, ToolCall, ToolDefinition, Usage,
};

/// A request field that cannot be read: which one (`messages[2].role`)
/// and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub param: String,
    pub message: String,
}

fn bad(param: impl Into<String>, message: impl Into<String>) -> WireError {
    WireError {
        param: param.into(),
        message: message.into(),
    }
}

/// The text of a message's `content`: a string, null, or an array of
/// parts of which the `text` ones are joined (other parts, such as images,
/// are refused: the local models read text only).
fn content_text(content: Option<&Value>, param: &str) -> Result<String, WireError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = String::new();
            for (i, part) in parts.iter().enumerate() {
                match (part.get("type").and_then(Value::as_str), part.get("text")) {
                    (Some("text"), Some(Value::String(text))) => out.push_str(text),
                    (Some(kind), _) => {
                        return Err(bad(
                            format!("{param}[{i}].type"),
                            format!(
                                "content parts of type {kind:?} are not supported by this model (text only)"
                            ),
                        ));
                    }
                    _ => return Err(bad(format!("{param}[{i}]"), "a content part needs a `type`")),
                }
            }
            Ok(out)
        }
        Some(_) => Err(bad(param, "must be a string, an array of content parts, or null")),
    }
}

fn message_of(i: usize, m: &Value) -> Result<Message, WireError> {
    let at = |field: &str| format!("messages[{i}].{field}");
    let role = match m.get("role").and_then(Value::as_str) {
        Some("system" | "developer") => Role::System,
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some("tool") => Role::Tool,
        Some(other) => {
            return Err(bad(
                at("role"),
                format!("{other:?} is not a role: expected system, developer, user, assistant or tool"),
            ));
        }
        None => return Err(bad(at("role"), "is required")),
    };
    let content = content_text(m.get("content"), &at("content"))?;
    let mut message = Message::new(role, content);
    if role == Role::Assistant
        && let Some(calls) = m.get("tool_calls").filter(|v| !v.is_null())
    {
        let calls = calls
            .as_array()
            .ok_or_else(|| bad(at("tool_calls"), "must be an array"))?;
        for (j, call) in calls.iter().enumerate() {
            let field = |f: &str| format!("messages[{i}].tool_calls[{j}].{f}");
            let text = |v: Option<&Value>, f: &str| {
                v.and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| bad(field(f), "must be a string"))
            };
            message.tool_calls.push(ToolCall {
                id: text(call.get("id"), "id")?,
                name: text(call.pointer("/function/name"), "function.name")?,
                arguments: text(call.pointer("/function/arguments"), "function.arguments")?,
            });
        }
    }
    if role == Role::Tool {
        let id = m
            .get("tool_call_id")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(at("tool_call_id"), "is required on a tool message"))?;
        message.tool_call_id = Some(id.to_owned());
    }
    Ok(message)
}

fn tools_of(tools: Option<&Value>) -> Result<Vec<ToolDefinition>, WireError> {
    let Some(tools) = tools.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let tools = tools.as_array().ok_or_else(|| bad("tools", "must be an array"))?;
    tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(bad(
                    format!("tools[{i}].type"),
                    "only `function` tools are supported",
                ));
            }
            let name = t
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("tools[{i}].function.name"), "is required"))?;
            Ok(ToolDefinition {
                name: name.to_owned(),
                description: t
                    .pointer("/function/description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                parameters: t
                    .pointer("/function/parameters")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            })
        })
        .collect()
}

fn schema_of(format: Option<&Value>) -> Result<Option<Value>, WireError> {
    let Some(format) = format.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "object"}))),
        Some("json_schema") => format
            .pointer("/json_schema/schema")
            .cloned()
            .map(Some)
            .ok_or_else(|| bad("response_format.json_schema.schema", "is required")),
        Some(other) => Err(bad(
            "response_format.type",
            format!("{other:?} is not a response format: expected text, json_object or json_schema"),
        )),
        None => Err(bad("response_format.type", "is required")),
    }
}

/// Reads an OpenAI chat request for a local model, filling what it leaves
/// out from the model's `defaults`.
pub fn generate_request(
    body: &Map<String, Value>,
    defaults: GenerationDefaults,
) -> Result<GenerateRequest, WireError> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("messages", "is required: an array of messages"))?;
    if messages.is_empty() {
        return Err(bad("messages", "must not be empty"));
    }
    let messages = messages
        .iter()
        .enumerate()
        .map(|(i, m)| message_of(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    let number = |key: &str| body.get(key).filter(|v| !v.is_null());
    let max_tokens = match number("max_completion_tokens").or_else(|| number("max_tokens")) {
        Some(v) => {
            let n = v
                .as_u64()
                .filter(|n| *n >= 1)
                .ok_or_else(|| bad("max_tokens", "must be a positive integer"))?;
            u32::try_from(n).unwrap_or(u32::MAX)
        }
        None => defaults.max_tokens,
    };
    let temperature = match number("temperature") {
        Some(v) => {
            let t = v
                .as_f64()
                .filter(|t| (0.0..=2.0).contains(t))
                .ok_or_else(|| bad("temperature", "must be a number between 0 and 2"))?;
            t as f32
        }
        None => defaults.temperature,
    };
    let seed = match number("seed") {
        Some(v) => {
            let s = v.as_i64().ok_or_else(|| bad("seed", "must be an integer"))?;
            // llama.cpp's sampler takes 32 bits; wider seeds fold in.
            (s as u64 ^ ((s as u64) >> 32)) as u32
        }
        None => defaults.seed,
    };
    Ok(GenerateRequest {
        messages,
        max_tokens,
        temperature,
        seed,
        json_schema: schema_of(body.get("response_format"))?,
        tools: tools_of(body.get("tools"))?,
    })
}

/// OpenAI's `usage` object for `usage`.
pub fn usage_json(usage: Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens.saturating_add(usage.completion_tokens),
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    })
}

fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
    }
}

fn tool_calls_json(calls: &[ToolCall]) -> Value {
    Value::Array(
        calls
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                })
            })
            .collect(),
    )
}

/// The first choice of a `chat.completion` as a [`Generation`] (to
/// stream a stored answer); `None` when it has none.
pub fn generation_of(completion: &Value) -> Option<Generation> {
    let choice = completion.get("choices")?.as_array()?.first()?;
    let message = choice.get("message")?;
    let tool_calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .filter_map(|c| {
                    Some(ToolCall {
                        id: c.get("id")?.as_str()?.to_owned(),
                        name: c.pointer("/function/name")?.as_str()?.to_owned(),
                        arguments: c.pointer("/function/arguments")?.as_str()?.to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let finish_reason = match choice.get("finish_reason").and_then(Value::as_str) {
        Some("length") => FinishReason::Length,
        Some("tool_calls") => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    };
    Some(Generation {
        text: message
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        tool_calls,
        usage: completion
            .get("usage")
            .and_then(crate::passthrough::usage_of)
            .unwrap_or_default(),
        latency: std::time::Duration::ZERO,
        finish_reason,
        timings: None,
    })
}

/// A `chat.completion` of one choice.
pub fn completion(id: &str, created: i64, model: &str, generation: &Generation) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": if generation.tool_calls.is_empty() { Value::String(generation.text.clone()) } else { Value::Null },
        "refusal": null,
    });
    if !generation.tool_calls.is_empty() {
        message["tool_calls"] = tool_calls_json(&generation.tool_calls);
    }
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(generation.finish_reason),
        }],
        "usage": usage_json(generation.usage),
        "system_fingerprint": null,
    })
}

/// The `chat.completion.chunk` events of a finished generation, in order:
/// the role, the content (or each tool call), the finish reason and, when
/// `include_usage`, a last chunk with no choices and the usage (every
/// other chunk then carries `"usage": null`, as OpenAI's do).
pub fn chunks(
    id: &str,
    created: i64,
    model: &str,
    generation: &Generation,
    include_usage: bool,
) -> Vec<Value> {
    let chunk = |choices: Value| {
        let mut c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": null,
            "choices": choices,
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let delta = |delta: Value, finish: Option<&str>| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    let mut out = vec![chunk(delta(json!({"role": "assistant", "content": ""}), None))];
    if generation.tool_calls.is_empty() {
        if !generation.text.is_empty() {
            out.push(chunk(delta(json!({"content": generation.text}), None)));
        }
    } else {
        for (i, c) in generation.tool_calls.iter().enumerate() {
            out.push(chunk(delta(
                json!({"tool_calls": [{
                    "index": i,
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }]}),
                None,
            )));
        }
    }
    out.push(chunk(delta(
        json!({}),
        Some(finish_reason(generation.finish_reason)),
    )));
    if include_usage {
        let mut last = chunk(json!([]));
        last["usage"] = usage_json(generation.usage);
        out.push(last);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_request_reads_messages_tools_and_format() {
        let request = generate_request(
            &body(json!({
                "model": "m",
                "messages": [
                    {"role": "developer", "content": "be brief"},
                    {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "found"}
                ],
                "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
                "response_format": {"type": "json_object"},
                "max_completion_tokens": 9,
                "temperature": 0.5,
                "seed": 42
            })),
            GenerationDefaults::default(),
        )
        .unwrap();
        assert_eq!(request.messages.len(), 4);
        assert_eq!(request.messages[0].role, Role::System);
        assert_eq!(request.messages[1].content, "hi there");
        assert_eq!(request.messages[2].tool_calls[0].name, "look");
        assert_eq!(request.messages[3].tool_call_id.as_deref(), Some("call_1"));
        assert_eq!(request.tools[0].name, "look");
        assert_eq!(request.json_schema, Some(json!({"type": "object"})));
        assert_eq!((request.max_tokens, request.seed), (9, 42));
        assert!((request.temperature - 0.5).abs() < 1e-6);
    }

    #[test]
    fn a_bad_field_is_named() {
        let err = |v: Value| generate_request(&body(v), GenerationDefaults::default()).unwrap_err();
        assert_eq!(err(json!({"model": "m"})).param, "messages");
        assert_eq!(err(json!({"messages": []})).param, "messages");
        assert_eq!(
            err(json!({"messages": [{"role": "user", "content": "x"}, {"role": "robot", "content": "x"}]}))
                .param,
            "messages[1].role"
        );
        assert_eq!(
            err(json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}))
                .param,
            "messages[0].content[0].type"
        );
        assert_eq!(
            err(json!({"messages": [{"role": "tool", "content": "x"}]})).param,
            "messages[0].tool_call_id"
        );
        assert_eq!(
            err(json!({"messages": [{"role": "user", "content": "x"}], "temperature": 3})).param,
            "temperature"
        );
        assert_eq!(
            err(json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})).param,
            "max_tokens"
        );
        assert_eq!(
            err(json!({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}}))
                .param,
            "response_format.type"
        );
    }

    #[test]
    fn a_generation_streams_as_openai_chunks_with_usage_last() {
        let generation = Generation {
            text: "hello".to_owned(),
            tool_calls: Vec::new(),
            usage: Usage::tokens(5, 2),
            latency: Duration::ZERO,
            finish_reason: FinishReason::Stop,
            timings: None,
        };
        let events = chunks("chatcmpl-1", 7, "tiny", &generation, true);
        assert_eq!(events.len(), 4);
        assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(events[1]["choices"][0]["delta"]["content"], "hello");
        assert_eq!(events[2]["choices"][0]["finish_reason"], "stop");
        assert!(events[2]["usage"].is_null());
        assert_eq!(events[3]["choices"], json!([]));
        assert_eq!(events[3]["usage"]["total_tokens"], 7);
        let plain = chunks("chatcmpl-1", 7, "tiny", &generation, false);
        assert_eq!(plain.len(), 3);
        assert!(plain.iter().all(|c| c.get("usage").is_none()));
        let whole = completion("chatcmpl-1", 7, "tiny", &generation);
        assert_eq!(whole["choices"][0]["message"]["content"], "hello");
        assert_eq!(whole["usage"]["prompt_tokens"], 5);
    }
}
