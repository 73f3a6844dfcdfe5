//! Gateway cascades: checking one step's answer.
//!
//! A gateway model with a verifier (`[gateway.models.NAME.verifier]`)
//! walks its route cheapest first. Each answer but the last model's is
//! run through the verifier ([`check`]); an answer it rejects is recorded
//! (with its verdict and its judges' calls) and the next model is asked.
//! The verifier sees what an agent's verifier sees, read off the OpenAI
//! request:
//!
//! - the *ticket*: the last user message (its text parts);
//! - the *instructions*: the system and developer messages;
//! - the *output*: the answer's `content`, or its `tool_calls` as JSON
//!   when it has no content;
//! - the *output schema* (`rules.schema`): the request's
//!   `response_format` (`json_schema`'s schema, or any JSON object for
//!   `json_object`). A request with neither skips that rule: there is
//!   nothing to check the answer against.

use bounty_agents::schema::OutputSchema;
use bounty_agents::verify::{PolicyRun, VerifyInput, run_policy};
use bounty_core::TaskInput;
use bounty_core::verification::{VerificationPolicy, VerifierSpec};
use bounty_models::Router;
use serde_json::{Map, Value, json};

/// Runs `policy` on `answer` (a `chat.completion`) to `request`.
pub(crate) async fn check(
    policy: &VerificationPolicy,
    request: &Map<String, Value>,
    answer: &Value,
    router: &Router,
) -> PolicyRun {
    let schema = request_schema(request).and_then(|s| OutputSchema::compile(&s).ok());
    let skip_schema = schema.is_none()
        && policy
            .verifiers
            .iter()
            .any(|v| matches!(v, VerifierSpec::Rules(r) if r.schema));
    let without_schema;
    let policy = if skip_schema {
        without_schema = VerificationPolicy {
            verifiers: policy
                .verifiers
                .iter()
                .cloned()
                .map(|v| match v {
                    VerifierSpec::Rules(mut r) => {
                        r.schema = false;
                        VerifierSpec::Rules(r)
                    }
                    other => other,
                })
                .collect(),
            ..policy.clone()
        };
        &without_schema
    } else {
        policy
    };
    let (instructions, task) = conversation(request);
    let output = answer_text(answer);
    let input = VerifyInput {
        output: &output,
        output_schema: schema.as_ref(),
        task: &task,
        instructions: &instructions,
        retrieved: &[],
        tool_results: &[],
    };
    run_policy(policy, &input, router).await
}

/// What the verifier judges of a `chat.completion`: the first choice's
/// content, or its tool calls as JSON when it has none.
pub(crate) fn answer_text(answer: &Value) -> String {
    let Some(message) = answer.pointer("/choices/0/message") else {
        return String::new();
    };
    let content = message.get("content").map(text_of).unwrap_or_default();
    if !content.trim().is_empty() {
        return content;
    }
    match message.get("tool_calls") {
        Some(calls @ Value::Array(list)) if !list.is_empty() => calls.to_string(),
        _ => content,
    }
}

/// The schema `response_format` asks for: `json_schema`'s, or any object
/// for `json_object`.
fn request_schema(request: &Map<String, Value>) -> Option<Value> {
    let format = request.get("response_format")?;
    match format.get("type").and_then(Value::as_str)? {
        "json_schema" => format.pointer("/json_schema/schema").cloned(),
        "json_object" => Some(json!({"type": "object"})),
        _ => None,
    }
}

/// The request's instructions (system and developer messages) and its
/// ticket (the last user message).
fn conversation(request: &Map<String, Value>) -> (String, TaskInput) {
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let role = |m: &Value| {
        m.get("role")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let instructions: Vec<String> = messages
        .iter()
        .filter(|m| matches!(role(m).as_str(), "system" | "developer"))
        .filter_map(|m| m.get("content").map(text_of))
        .collect();
    let body = messages
        .iter()
        .rev()
        .find(|m| role(m) == "user")
        .and_then(|m| m.get("content").map(text_of))
        .unwrap_or_default();
    let task = TaskInput {
        subject: String::new(),
        body,
        customer: None,
        metadata: Map::new(),
    };
    (instructions.join("\n\n"), task)
}

/// A message's text: a string, or the `text` of its parts.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bounty_core::verdict::Decision;
    use bounty_core::verification::RulesSpec;
    use std::sync::Arc;

    fn request(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn completion(content: Value, tool_calls: Option<Value>) -> Value {
        let mut message = json!({"role": "assistant", "content": content});
        if let Some(calls) = tool_calls {
            message["tool_calls"] = calls;
        }
        json!({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})
    }

    fn rules(spec: RulesSpec) -> VerificationPolicy {
        VerificationPolicy {
            verifiers: vec![VerifierSpec::Rules(spec)],
            ..VerificationPolicy::default()
        }
    }

    fn router() -> Router {
        Router::new(Arc::new(bounty_models::ModelRegistry::default()))
    }

    #[test]
    fn the_ticket_is_the_last_user_message_and_the_instructions_the_system_ones() {
        let (instructions, task) = conversation(&request(json!({"messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "a"},
            {"role": "developer", "content": [{"type": "text", "text": "Cite sources."}]},
            {"role": "user", "content": [{"type": "text", "text": "where is"}, {"type": "text", "text": "my order?"}]},
        ]})));
        assert_eq!(instructions, "Be brief.\n\nCite sources.");
        assert_eq!(task.body, "where is\nmy order?");
    }

    #[test]
    fn an_answer_of_tool_calls_is_judged_as_their_json() {
        let calls =
            json!([{"id": "c1", "type": "function", "function": {"name": "refund", "arguments": "{}"}}]);
        let text = answer_text(&completion(Value::Null, Some(calls.clone())));
        assert_eq!(serde_json::from_str::<Value>(&text).ok(), Some(calls));
        assert_eq!(answer_text(&completion(json!("hi"), None)), "hi");
        assert_eq!(answer_text(&json!({"choices": []})), "");
    }

    #[tokio::test]
    async fn rules_reject_and_pass_answers() {
        let policy = rules(RulesSpec {
            non_empty: true,
            forbidden_phrases: vec!["I cannot".to_owned()],
            ..RulesSpec::default()
        });
        let req = request(json!({"messages": [{"role": "user", "content": "q"}]}));
        let run = check(
            &policy,
            &req,
            &completion(json!("Sorry, I cannot help."), None),
            &router(),
        )
        .await;
        assert_eq!(run.decision, Decision::Fail);
        assert!(run.verdicts[0].reason.contains("I cannot"), "{:?}", run.verdicts);
        let run = check(&policy, &req, &completion(json!("Here it is."), None), &router()).await;
        assert_eq!(run.decision, Decision::Pass);
        let run = check(&policy, &req, &completion(json!("  "), None), &router()).await;
        assert_eq!(run.decision, Decision::Fail);
    }

    #[tokio::test]
    async fn the_schema_rule_checks_the_requests_response_format_or_is_skipped() {
        let policy = rules(RulesSpec {
            schema: true,
            ..RulesSpec::default()
        });
        let schema =
            json!({"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}});
        let with_schema = request(json!({
            "messages": [{"role": "user", "content": "q"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        }));
        let bad = check(
            &policy,
            &with_schema,
            &completion(json!("{\"answer\": 3}"), None),
            &router(),
        )
        .await;
        assert_eq!(bad.decision, Decision::Fail);
        let good = check(
            &policy,
            &with_schema,
            &completion(json!("{\"answer\": \"x\"}"), None),
            &router(),
        )
        .await;
        assert_eq!(good.decision, Decision::Pass);
        let object = request(json!({
            "messages": [{"role": "user", "content": "q"}],
            "response_format": {"type": "json_object"},
        }));
        let prose = check(&policy, &object, &completion(json!("not json"), None), &router()).await;
        assert_eq!(prose.decision, Decision::Fail);
        let plain = request(json!({"messages": [{"role": "user", "content": "q"}]}));
        let skipped = check(&policy, &plain, &completion(json!("not json"), None), &router()).await;
        assert_eq!(skipped.decision, Decision::Pass, "{:?}", skipped.verdicts);
    }
}
