//! How a local model calls tools: llama.cpp has no `tools` parameter, so
//! each step is constrained by a grammar to exactly one of
//!
//! - `{"tool": "<declared name>", "arguments": {…}}`, the arguments valid
//!   against that tool's JSON Schema, or
//! - `{"answer": …}`, the final answer (a string, or a value of the
//!   output schema when the request has one).
//!
//! [`step_schema`] builds that choice as one JSON Schema (`oneOf`), which
//! the local provider turns into a grammar with llama.cpp's own
//! `json_schema_to_grammar`, so a sampled step can name no undeclared tool
//! and no argument outside its schema. [`prepare`] rewrites the request
//! for a model that has never seen tool messages (the tools are described
//! in the system prompt; earlier calls and results become plain turns),
//! and [`finish`] reads the sampled step back as a [`ToolCall`] or the
//! answer's text, so the caller sees the same [`Generation`] a remote
//! model's `tool_calls` give.

use serde_json::{Value, json};

use crate::error::ProviderError;
use crate::types::{FinishReason, GenerateRequest, Generation, Message, Role, ToolCall, ToolDefinition};

/// The key of the final answer in a step.
pub const ANSWER: &str = "answer";

/// One step's JSON Schema: a call of one declared tool with arguments
/// valid against its schema, or the answer (`answer_schema`, or a string).
pub fn step_schema(tools: &[ToolDefinition], answer_schema: Option<&Value>) -> Value {
    let mut choices: Vec<Value> = tools
        .iter()
        .map(|t| {
            json!({
                "type": "object",
                "properties": {
                    "tool": {"const": t.name},
                    "arguments": t.parameters,
                },
                "required": ["tool", "arguments"],
                "additionalProperties": false,
            })
        })
        .collect();
    let answer = answer_schema
        .cloned()
        .unwrap_or_else(|| json!({"type": "string"}));
    choices.push(json!({
        "type": "object",
        "properties": {ANSWER: answer},
        "required": [ANSWER],
        "additionalProperties": false,
    }));
    json!({"oneOf": choices})
}

/// What the system prompt tells a local model about its tools.
pub fn describe(tools: &[ToolDefinition]) -> String {
    let mut out = String::from(
        "Reply with JSON: {\"tool\":NAME,\"arguments\":{...}} to call a tool, or {\"answer\":...}. Tools:",
    );
    for t in tools {
        out.push_str("\n- ");
        out.push_str(&t.name);
        out.push_str(": ");
        out.push_str(t.description.trim());
        out.push_str(" Arguments: ");
        out.push_str(&t.parameters.to_string());
    }
    out
}

/// The request as a local model without tool support takes it: the tools
/// described in the system prompt, earlier calls written as the JSON steps
/// the model produced, results as user turns, and the step schema as the
/// grammar. Without tools the request is returned unchanged.
pub fn prepare(mut request: GenerateRequest) -> GenerateRequest {
    if request.tools.is_empty() {
        return request;
    }
    let tools = std::mem::take(&mut request.tools);
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    let description = describe(&tools);
    let mut described = false;
    for m in request.messages.drain(..) {
        match m.role {
            Role::System if !described => {
                described = true;
                messages.push(Message::new(
                    Role::System,
                    format!("{}\n\n{description}", m.content.trim_end()),
                ));
            }
            Role::Assistant if !m.tool_calls.is_empty() => {
                let steps: Vec<String> = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        let args: Value = serde_json::from_str(&c.arguments).unwrap_or(Value::Null);
                        json!({"tool": c.name, "arguments": args}).to_string()
                    })
                    .collect();
                messages.push(Message::new(Role::Assistant, steps.join("\n")));
            }
            Role::Tool => messages.push(Message::new(
                Role::User,
                format!(
                    "Result of {}: {}",
                    m.tool_call_id.as_deref().unwrap_or("the tool call"),
                    m.content
                ),
            )),
            _ => messages.push(Message::new(m.role, m.content)),
        }
    }
    if !described {
        messages.insert(0, Message::new(Role::System, description));
    }
    request.json_schema = Some(step_schema(&tools, request.json_schema.as_ref()));
    request.messages = messages;
    request.tools = tools;
    request
}

/// Reads a sampled step back: a call becomes one [`ToolCall`] (its id
/// `call_N`, N counting the calls already in `history`) with
/// [`FinishReason::ToolCalls`]; an answer becomes the text (a string as
/// is, any other value as JSON). Output cut short by the token limit is
/// left as it came, for the verifiers to refuse.
pub fn finish(
    generation: &mut Generation,
    history: &[Message],
    has_answer_schema: bool,
) -> Result<(), ProviderError> {
    if generation.finish_reason == FinishReason::Length {
        return Ok(());
    }
    let step: Value = serde_json::from_str(generation.text.trim())
        .map_err(|e| ProviderError::Malformed(format!("the local model's tool step is not JSON ({e})")))?;
    if let Some(answer) = step.get(ANSWER) {
        generation.text = match answer {
            Value::String(s) if !has_answer_schema => s.clone(),
            other => other.to_string(),
        };
        return Ok(());
    }
    let (Some(Value::String(name)), Some(arguments)) = (step.get("tool"), step.get("arguments")) else {
        return Err(ProviderError::Malformed(
            "the local model's tool step is neither a call nor an answer".to_owned(),
        ));
    };
    let n = history.iter().map(|m| m.tool_calls.len()).sum::<usize>() + 1;
    generation.tool_calls = vec![ToolCall {
        id: format!("call_{n}"),
        name: name.clone(),
        arguments: arguments.to_string(),
    }];
    generation.text = String::new();
    generation.finish_reason = FinishReason::ToolCalls;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::types::Usage;

    fn tools() -> Vec<ToolDefinition> {
        vec![ToolDefinition {
            name: "lookup_order".into(),
            description: "Find an order.".into(),
            parameters: json!({"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}),
        }]
    }

    fn generation(text: &str) -> Generation {
        Generation {
            text: text.into(),
            tool_calls: vec![],
            usage: Usage::default(),
            latency: Duration::ZERO,
            finish_reason: FinishReason::Stop,
            timings: None,
        }
    }

    #[test]
    fn the_step_schema_offers_each_tool_and_the_answer() {
        let s = step_schema(&tools(), None);
        let choices = s["oneOf"].as_array().unwrap();
        assert_eq!(choices.len(), 2);
        assert_eq!(choices[0]["properties"]["tool"]["const"], "lookup_order");
        assert_eq!(choices[1]["properties"]["answer"]["type"], "string");
    }

    #[test]
    fn a_step_reads_back_as_a_call_or_an_answer() {
        let history = vec![Message::calling(
            "",
            vec![ToolCall {
                id: "call_1".into(),
                name: "lookup_order".into(),
                arguments: "{}".into(),
            }],
        )];
        let mut g = generation(r#"{"tool": "lookup_order", "arguments": {"order_id": "A1"}}"#);
        finish(&mut g, &history, false).unwrap();
        assert_eq!(g.finish_reason, FinishReason::ToolCalls);
        assert_eq!(g.tool_calls[0].id, "call_2");
        assert_eq!(g.tool_calls[0].arguments, r#"{"order_id":"A1"}"#);
        let mut g = generation(r#"{"answer": "Shipped."}"#);
        finish(&mut g, &history, false).unwrap();
        assert_eq!((g.text.as_str(), g.tool_calls.len()), ("Shipped.", 0));
        let mut g = generation(r#"{"answer": {"ok": true}}"#);
        finish(&mut g, &history, true).unwrap();
        assert_eq!(g.text, r#"{"ok":true}"#);
        assert!(finish(&mut generation("nope"), &history, false).is_err());
    }

    #[test]
    fn prepare_describes_tools_and_flattens_calls() {
        let request = GenerateRequest {
            messages: vec![
                Message::new(Role::System, "Help."),
                Message::new(Role::User, "Where is A1?"),
                Message::calling(
                    "",
                    vec![ToolCall {
                        id: "call_1".into(),
                        name: "lookup_order".into(),
                        arguments: r#"{"order_id":"A1"}"#.into(),
                    }],
                ),
                Message::tool_result("call_1", r#"{"status":"shipped"}"#),
            ],
            max_tokens: 10,
            temperature: 0.0,
            seed: 1,
            json_schema: None,
            tools: tools(),
        };
        let r = prepare(request);
        assert!(r.messages[0].content.contains("lookup_order: Find an order."));
        assert_eq!(r.messages[2].role, Role::Assistant);
        assert!(r.messages[2].content.contains(r#""tool":"lookup_order""#));
        assert_eq!(r.messages[3].role, Role::User);
        assert!(r.messages[3].content.starts_with("Result of call_1:"));
        assert!(r.json_schema.unwrap()["oneOf"].is_array());
        assert_eq!(r.tools.len(), 1);
    }
}
