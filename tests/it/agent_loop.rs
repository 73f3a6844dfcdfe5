//! The agent loop end to end, on both backends: a real server and worker,
//! a fake OpenAI-wire model that really calls tools, a small shop API on
//! loopback (real HTTP), and knowledge in the store.
//!
//! - A ticket that needs an article and an order lookup is answered with
//!   a citation of the retrieved chunk, verified `grounded` and
//!   `tool_succeeded`, and charged once; the transcript records the
//!   retrieval and the receipt the tool call.
//! - A refund whose attempt dies after the call (the model fails, the
//!   attempt is retried) refunds once: the retry sends the same
//!   `Idempotency-Key`.
//! - A tool that is down fails the attempt as transient; the retry
//!   resolves it.
//! - The built-in `handoff`, and a rejected answer of an agent that may
//!   hand off, end the conversation escalated and uncharged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bounty_models::testing::openai::{Behavior, FakeOpenAi};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, TestOptions, json_of, local_model, test_worker, transfer_kinds};

backend_tests!(
    an_article_and_an_order_lookup_answer_with_a_citation_charged_once,
    a_retried_refund_refunds_once,
    a_tool_that_is_down_fails_the_attempt_as_transient,
    a_handoff_is_escalated_and_free,
    a_rejected_answer_is_handed_off_when_the_agent_may,
    a_local_model_steps_through_the_tool_grammar,
);

const WAIT: Duration = Duration::from_secs(30);

/// The shop: orders, and refunds deduplicated by `Idempotency-Key`.
#[derive(Default)]
struct Shop {
    /// Idempotency key → refund id.
    refunds: HashMap<String, String>,
    /// Refund requests received, keys included.
    refund_requests: Vec<Option<String>>,
    /// Answer this many order lookups with 503 first.
    down_for: usize,
    lookups: usize,
}

type ShopState = Arc<Mutex<Shop>>;

async fn order(State(shop): State<ShopState>, Path(id): Path<String>) -> axum::response::Response {
    let mut shop = shop.lock().unwrap();
    shop.lookups += 1;
    if shop.down_for > 0 {
        shop.down_for -= 1;
        return (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response();
    }
    axum::Json(json!({"order_id": id, "status": "shipped", "carrier": "UPS", "shipped_on": "May 2"}))
        .into_response()
}

async fn refund(
    State(shop): State<ShopState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> axum::response::Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut shop = shop.lock().unwrap();
    shop.refund_requests.push(key.clone());
    let Some(key) = key else {
        return (StatusCode::BAD_REQUEST, "Idempotency-Key required").into_response();
    };
    let n = shop.refunds.len();
    let (status, refund) = match shop.refunds.get(&key) {
        Some(existing) => (StatusCode::OK, existing.clone()),
        None => {
            let refund = format!("re_{id}_{n}");
            shop.refunds.insert(key, refund.clone());
            (StatusCode::CREATED, refund)
        }
    };
    (status, axum::Json(json!({"refund": refund, "order_id": id}))).into_response()
}

async fn shop(down_for: usize) -> (String, ShopState) {
    let state: ShopState = Arc::new(Mutex::new(Shop {
        down_for,
        ..Shop::default()
    }));
    let app = Router::new()
        .route("/orders/{id}", get(order))
        .route("/orders/{id}/refunds", post(refund))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), state)
}

async fn app(backend: Backend, model: &FakeOpenAi) -> TestApp {
    let opts = TestOptions {
        // The shop and the model listen on loopback.
        allow_private: true,
        master_key: true,
        worker: Some(test_worker()),
        ..TestOptions::remote_models(&[("gpt", &model.base_url())])
    };
    TestApp::spawn_with(backend, opts).await
}

fn tools(shop: &str) -> Value {
    let order = json!({
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
        "additionalProperties": false,
    });
    json!([
        {
            "name": "lookup_order",
            "description": "Finds an order's status and shipment.",
            "parameters": order,
            "method": "GET",
            "url": format!("{shop}/orders/{{order_id}}"),
            "headers": {"Authorization": "Bearer shop-secret-123"},
            "timeout_ms": 2000,
            "side_effects": false,
        },
        {
            "name": "issue_refund",
            "description": "Refunds an order in full.",
            "parameters": order,
            "method": "POST",
            "url": format!("{shop}/orders/{{order_id}}/refunds"),
            "timeout_ms": 2000,
            "side_effects": true,
        },
    ])
}

/// An upload source with the returns article; its id and the article's
/// chunk id.
async fn help_center(app: &TestApp, key: &str) -> (String, String) {
    let body = json!({
        "name": "help-center",
        "kind": "upload",
        "documents": [
            {"name": "returns.md", "format": "markdown", "content": "# Returns\nReturns are free within 30 days of delivery."},
            {"name": "billing.md", "format": "markdown", "content": "# Invoices\nInvoices are sent on the first of the month."},
        ]
    });
    let source = json_of(
        app.call(Method::POST, "/v1/knowledge", key, Some(&body)).await,
        201,
    )
    .await;
    let id = source["id"].as_str().unwrap().to_owned();
    let hits = json_of(
        app.call(
            Method::GET,
            &format!("/v1/knowledge/{id}/search?q=returns%20free"),
            key,
            None,
        )
        .await,
        200,
    )
    .await;
    let chunk = hits["data"][0]["chunk_id"].as_str().unwrap().to_owned();
    (id, chunk)
}

async fn agent(app: &TestApp, key: &str, extra: Value) {
    let mut body = json!({
        "name": "support",
        "instructions": "Resolve the ticket.",
        "model_route": ["gpt"],
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    json_of(app.create_agent(key, &body).await, 201).await;
}

async fn run(app: &TestApp, key: &str, ticket: &str) -> (Value, Value) {
    let task = app.task(key, "support", ticket).await;
    let task = app.wait_for_task(key, task["id"].as_str().unwrap(), WAIT).await;
    let outcome = app
        .get_outcome(key, task["outcome"]["id"].as_str().unwrap())
        .await;
    (task, outcome)
}

fn charges(outcome: &Value) -> usize {
    transfer_kinds(outcome).iter().filter(|k| *k == "charge").count()
}

async fn an_article_and_an_order_lookup_answer_with_a_citation_charged_once(backend: Backend) {
    let model = FakeOpenAi::start().await;
    let app = app(backend, &model).await;
    let (_, key) = app.create_account("acme").await;
    let (shop_url, shop) = shop(0).await;
    let (source, chunk) = help_center(&app, &key).await;
    agent(
        &app,
        &key,
        json!({
            "tools": tools(&shop_url),
            "knowledge": [source],
            "max_steps": 3,
            "verifier_policy": {"verifiers": [
                {"kind": "grounded"},
                {"kind": "tool_succeeded", "tools": ["lookup_order"]},
            ]},
        }),
    )
    .await;
    model.push(Behavior::ToolCalls(vec![(
        "lookup_order".into(),
        r#"{"order_id": "A100"}"#.into(),
    )]));
    let answer = format!("Order A100 shipped with UPS on May 2. Returns are free within 30 days [{chunk}].");
    model.push(Behavior::reply(answer.clone(), 40, 20));

    let (task, outcome) = run(&app, &key, "Where is order A100, and can I return it?").await;
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(task["output"]["text"], answer.as_str(), "{task}");
    assert_eq!(outcome["status"], "resolved", "{outcome}");
    assert_eq!(charges(&outcome), 1, "{outcome}");

    // The model saw the chunk under its id, the tools, and the shop's answer.
    let requests = model.requests();
    let first = &requests[0].body;
    let prompt = first["messages"].to_string();
    assert!(
        prompt.contains(&chunk),
        "the knowledge is in the prompt: {prompt}"
    );
    let offered: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["lookup_order", "issue_refund"]);
    let second = requests[1].body["messages"].as_array().unwrap().clone();
    let result = second.last().unwrap();
    assert_eq!(result["role"], "tool");
    assert!(
        result["content"].as_str().unwrap().contains("shipped"),
        "{result}"
    );
    assert_eq!(shop.lock().unwrap().lookups, 1);

    // The transcript records the retrieval; the task and receipt the call.
    let transcript = task["transcript"].as_array().unwrap();
    let retrieval = transcript
        .iter()
        .find_map(|m| m.get("retrieval"))
        .expect("the knowledge message carries its retrieval");
    assert_eq!(retrieval["chunks"][0]["id"], chunk.as_str(), "{retrieval}");
    assert!(retrieval["chunks"][0]["score"].as_f64().unwrap() > 0.0);
    assert!(retrieval["latency_ms"].as_f64().is_some());
    assert!(retrieval["query"].as_str().unwrap().contains("A100"));
    assert!(transcript.iter().any(|m| m["role"] == "tool"), "{transcript:?}");
    let steps = outcome["steps"]
        .as_array()
        .unwrap_or_else(|| panic!("no steps: {outcome}"));
    assert_eq!(steps.len(), 1, "{outcome}");
    assert_eq!(steps[0]["tool"], "lookup_order");
    assert_eq!(steps[0]["status"], 200);
    assert_eq!(steps[0]["outcome"], "ok");
    assert_eq!(steps[0]["idempotency_key"], Value::Null, "a read has no key");
    assert_eq!(task["tool_calls"].as_array().unwrap().len(), 1);
    let own = task["tool_calls"][0]["step_overhead_ms"].as_f64();
    assert!(
        own.is_some_and(|ms| ms >= 0.0),
        "the step's own time is recorded: {task}"
    );
    // The tool's secret header is never shown.
    let everything = format!("{task}{outcome}");
    assert!(!everything.contains("shop-secret-123"), "a tool secret leaked");
    let verified = outcome["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "verified")
        .unwrap_or_else(|| panic!("no verified event: {outcome}"));
    let verifiers: Vec<&str> = verified["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["verifier"].as_str().unwrap())
        .collect();
    assert_eq!(verifiers, ["grounded", "tool_succeeded"]);
}

async fn a_retried_refund_refunds_once(backend: Backend) {
    let model = FakeOpenAi::start().await;
    let app = app(backend, &model).await;
    let (_, key) = app.create_account("acme").await;
    let (shop_url, shop) = shop(0).await;
    agent(
        &app,
        &key,
        json!({
            "tools": tools(&shop_url),
            "verifier_policy": {"verifiers": [{"kind": "tool_succeeded", "tools": ["issue_refund"]}]},
        }),
    )
    .await;
    let refund = || Behavior::ToolCalls(vec![("issue_refund".into(), r#"{"order_id": "A100"}"#.into())]);
    // Attempt 1: the refund goes out, then the model fails (twice: the
    // client retries once), so the attempt is retried.
    model.push(refund());
    model.push(Behavior::status(500));
    model.push(Behavior::status(500));
    // Attempt 2: the same call (its arguments in another key order), then
    // the answer.
    model.push(Behavior::ToolCalls(vec![(
        "issue_refund".into(),
        r#"{ "order_id" : "A100" }"#.into(),
    )]));
    model.push(Behavior::reply("Your refund for A100 is on its way.", 30, 10));

    let (task, outcome) = run(&app, &key, "Please refund order A100.").await;
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(task["attempts"], 2, "{task}");
    assert_eq!(outcome["status"], "resolved", "{outcome}");
    assert_eq!(charges(&outcome), 1);
    let shop = shop.lock().unwrap();
    assert_eq!(shop.refunds.len(), 1, "refunded exactly once");
    assert_eq!(shop.refund_requests.len(), 2, "the retry called again");
    assert_eq!(
        shop.refund_requests[0], shop.refund_requests[1],
        "with the same key"
    );
    let calls = task["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0]["attempt"].as_i64(), calls[1]["attempt"].as_i64()),
        (Some(1), Some(2))
    );
    assert_eq!(calls[0]["status"], 201);
    assert_eq!(calls[1]["status"], 200);
    assert_eq!(calls[0]["idempotency_key"], calls[1]["idempotency_key"]);
    assert!(
        calls[0]["idempotency_key"]
            .as_str()
            .unwrap()
            .starts_with("bounty_")
    );
}

async fn a_tool_that_is_down_fails_the_attempt_as_transient(backend: Backend) {
    let model = FakeOpenAi::start().await;
    let app = app(backend, &model).await;
    let (_, key) = app.create_account("acme").await;
    let (shop_url, _shop) = shop(1).await;
    agent(
        &app,
        &key,
        json!({"tools": tools(&shop_url), "verifier_policy": {"verifiers": [{"kind": "rules", "non_empty": true}]}}),
    )
    .await;
    let lookup = || Behavior::ToolCalls(vec![("lookup_order".into(), r#"{"order_id": "A1"}"#.into())]);
    model.push(lookup());
    model.push(lookup());
    model.push(Behavior::reply("It shipped.", 10, 3));

    let (task, outcome) = run(&app, &key, "Where is A1?").await;
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(task["attempts"], 2, "the down tool cost one attempt: {task}");
    assert_eq!(
        task["attempt_history"][0]["error"]["code"], "tool_unavailable",
        "{task}"
    );
    assert_eq!(outcome["status"], "resolved");
    let calls = task["tool_calls"].as_array().unwrap();
    assert_eq!(calls[0]["outcome"], "down");
    assert_eq!(calls[0]["status"], 503);
    assert_eq!(calls[1]["outcome"], "ok");
}

async fn a_handoff_is_escalated_and_free(backend: Backend) {
    let model = FakeOpenAi::start().await;
    let app = app(backend, &model).await;
    let (_, key) = app.create_account("acme").await;
    agent(
        &app,
        &key,
        json!({"handoff": true, "verifier_policy": {"verifiers": [{"kind": "rules", "non_empty": true}]}}),
    )
    .await;
    model.push(Behavior::ToolCalls(vec![(
        "handoff".into(),
        r#"{"reason": "legal question"}"#.into(),
    )]));
    let (task, outcome) = run(&app, &key, "Can I sue you?").await;
    let offered = model.requests()[0].body["tools"].to_string();
    assert!(offered.contains("\"handoff\""), "{offered}");
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(outcome["status"], "escalated", "{outcome}");
    assert_eq!(charges(&outcome), 0);
    assert!(transfer_kinds(&outcome).is_empty(), "{outcome}");
    assert_eq!(task["tool_calls"][0]["outcome"], "handoff");
    assert!(outcome.to_string().contains("legal question"), "{outcome}");
    assert_eq!(model.request_count(), 1, "nothing after the hand-off");
}

async fn a_rejected_answer_is_handed_off_when_the_agent_may(backend: Backend) {
    let model = FakeOpenAi::start().await;
    let app = app(backend, &model).await;
    let (_, key) = app.create_account("acme").await;
    agent(
        &app,
        &key,
        json!({"handoff": true, "verifier_policy": {"verifiers": [{"kind": "rules", "min_length": 50}]}}),
    )
    .await;
    model.push(Behavior::reply("No idea.", 10, 3));
    let (task, outcome) = run(&app, &key, "Why was I charged twice?").await;
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(outcome["status"], "escalated", "{outcome}");
    assert_eq!(charges(&outcome), 0);
    assert!(
        outcome.to_string().contains("did not pass verification"),
        "{outcome}"
    );
}

/// The real tiny llama with a tool: every step is one call of the
/// declared tool with valid arguments, or the answer (the grammar), so
/// the task completes whatever the random weights choose, and any call it
/// makes reached the shop.
async fn a_local_model_steps_through_the_tool_grammar(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = bounty_models::testing::gguf::write_tiny_llama(dir.path()).unwrap();
    let opts = TestOptions {
        allow_private: true,
        worker: Some(test_worker()),
        models: vec![("tiny".to_owned(), local_model(&path))],
        ..TestOptions::default()
    };
    let app = TestApp::spawn_with(backend, opts).await;
    let (_, key) = app.create_account("acme").await;
    let (shop_url, shop) = shop(0).await;
    let tool = json!({
        "name": "find",
        "description": "Find.",
        "parameters": {"type": "object", "properties": {"id": {"enum": ["A1", "B2"]}}, "required": ["id"], "additionalProperties": false},
        "method": "GET",
        "url": format!("{shop_url}/orders/{{id}}"),
        "side_effects": false,
    });
    let body = json!({
        "name": "support", "instructions": "Help.", "model_route": ["tiny"],
        "tools": [tool], "max_steps": 1, "params": {"max_tokens": 48},
        "verifier_policy": {"verifiers": [{"kind": "rules", "non_empty": true}]},
    });
    json_of(app.create_agent(&key, &body).await, 201).await;
    let task = app.task(&key, "support", "A1?").await;
    let task = app.wait_for_task(&key, task["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(task["status"], "completed", "{task}");
    let calls = task["tool_calls"].as_array().unwrap();
    for call in calls {
        assert_eq!(call["tool"], "find", "{call}");
        let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
        assert!(["A1", "B2"].contains(&args["id"].as_str().unwrap()), "{args}");
        assert_eq!(call["status"], 200, "{call}");
    }
    assert_eq!(shop.lock().unwrap().lookups, calls.len());
    let model_calls = task["model_calls"].as_array().unwrap();
    assert!(model_calls.iter().all(|c| c["provider"] == "llama"));
    assert_eq!(
        model_calls.len(),
        calls.len() + 1,
        "one step per call, then the answer"
    );
}
