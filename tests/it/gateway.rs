//! The OpenAI-compatible gateway, end to end on both backends: OpenAI's
//! wire format (golden pairs, streaming included, errors in OpenAI's
//! shape), the exact cost of each call (cached and reasoning tokens at
//! their own rates, a stream priced from its final usage chunk or counted
//! when there is none), calls grouped into a task whose reported outcome
//! is verified and charged once (and a failed one never), the plan's rule
//! for calls that name no task, upstream failures mapped to OpenAI's
//! statuses, and BYOK through the gateway.

use std::time::Duration;

use bounty_core::{GatewayTerms, Plan, Unattributed};
use bounty_models::testing::openai::{Behavior, FakeOpenAi};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, TestOptions, json_of, test_worker, transfer_kinds};

backend_tests!(
    chat_completions_pass_the_wire_format_through_and_price_each_token_class,
    streams_forward_events_and_are_priced_from_the_final_usage,
    models_list_in_openai_shape_and_the_catalog_moved,
    errors_are_in_openai_shape,
    upstream_failures_map_to_openai_statuses,
    unattributed_calls_follow_the_plan,
    calls_grouped_into_a_task_are_charged_once_when_verified,
    a_reported_outcome_that_fails_verification_is_never_charged,
    byok_models_use_the_accounts_own_key_through_the_gateway,
    the_official_async_openai_client_works_unchanged,
    budgets_hold_under_200_concurrent_requests,
    a_dead_holders_reservation_expires,
    the_cache_serves_only_verified_answers_and_never_across_tenants,
    a_slow_model_is_not_cut_off_by_the_servers_request_limit,
    cost_plus_calls_are_billed_once_as_a_ledger_line_and_a_stripe_meter_event,
    concurrent_billing_sweeps_bill_each_call_once,
    a_cascade_escalates_answers_its_verifier_rejects,
);

const WAIT: Duration = Duration::from_secs(30);

/// `gpt` is a remote model priced with separate cached and reasoning
/// rates; `fast` is a gateway route that falls back from a dead model to
/// `gpt`.
async fn app(backend: Backend, upstream: &FakeOpenAi) -> TestApp {
    let mut gpt = crate::support::remote_model(&upstream.base_url());
    gpt["price"] = json!({
        "input_per_million": "2.50",
        "cached_input_per_million": "1.25",
        "output_per_million": "10.00",
        "reasoning_per_million": "12.00"
    });
    let mut cheap = crate::support::remote_model(&upstream.base_url());
    cheap["price"] = json!({"input_per_million": "0.10", "output_per_million": "0.40"});
    let mut dead = crate::support::remote_model(crate::support::NOWHERE);
    dead["max_retries"] = json!(0);
    dead["connect_timeout_ms"] = json!(200);
    let opts = TestOptions {
        worker: Some(test_worker()),
        allow_private: true,
        models: vec![
            ("gpt".to_owned(), gpt),
            ("dead".to_owned(), dead),
            ("cheap".to_owned(), cheap),
            (
                "own".to_owned(),
                json!({
                    "provider": "openai",
                    "byok": true,
                    "model": "customer-gpt",
                    "request_timeout_ms": 2000,
                    "max_retries": 0,
                    "price": {"input_per_million": "1.00", "output_per_million": "1.00"}
                }),
            ),
        ],
        gateway: serde_json::from_value(json!({"models": {
            "fast": {"route": ["dead", "gpt"]},
            "cached": {"route": ["gpt"], "cache": true},
            // A cascade: `cheap` first, escalated to `gpt` when the rules or
            // the judge (itself `gpt`) reject its answer.
            "smart": {"route": ["cheap", "gpt"], "verifier": {"verifiers": [
                {"kind": "rules", "non_empty": true, "forbidden_phrases": ["I cannot"]},
                {"kind": "judge", "model": "gpt", "rubric": "The answer answers the question.", "threshold": 0.7},
            ]}},
        }}))
        .unwrap(),
        ..TestOptions::default()
    };
    TestApp::spawn_with(backend, opts).await
}

/// An account whose plan serves calls that name no task (`free`).
async fn free_account(app: &TestApp, name: &str) -> (bounty_core::AccountId, String) {
    let (account, key) = app.create_account(name).await;
    set_unattributed(app, account, Unattributed::Free, 0).await;
    (account, key)
}

async fn set_unattributed(
    app: &TestApp,
    account: bounty_core::AccountId,
    rule: Unattributed,
    markup_bp: u32,
) {
    let plan = Plan {
        gateway: Some(GatewayTerms {
            unattributed: rule,
            markup_bp,
        }),
        ..Plan::default_value_plan()
    };
    app.store.set_plan(account, &plan).await.unwrap();
}

fn chat_body(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]})
}

async fn post(
    app: &TestApp,
    path: &str,
    key: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app.request(Method::POST, path, Some(key)).json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The gateway calls recorded for the account and not part of a task.
async fn open_calls(
    app: &TestApp,
    account: bounty_core::AccountId,
) -> Vec<bounty_store::gateway::GatewayCallRow> {
    app.gateway.flush().await;
    app.store
        .open_gateway_calls(account, bounty_core::ApiKeyMode::Live, 100)
        .await
        .unwrap()
}

async fn chat_completions_pass_the_wire_format_through_and_price_each_token_class(backend: Backend) {
    let upstream = FakeOpenAi::start().await;
    let app = app(backend, &upstream).await;
    let (account, key) = free_account(&app, "Acme").await;
    upstream.push(Behavior::Detailed {
        text: "Your refund was issued.".into(),
        prompt_tokens: 1000,
        completion_tokens: 500,
        cached_tokens: 400,
        reasoning_tokens: 200,
    });
    let mut body = chat_body("gpt", "Where is my refund?");
    body["temperature"] = json!(0.3);
    body["top_p"] = json!(0.9);
    body["logit_bias"] = json!({"50256": -100});
    body["metadata"] = json!({"user_ref": "u1"});
    let response = post(&app, "/v1/chat/completions", &key, &body, &[]).await;
    let call_id = response.headers()["bounty-call-id"].to_str().unwrap().to_owned();
    assert!(call_id.starts_with("gwc_"), "{call_id}");
    let answer = json_of(response, 200).await;
    // The provider's answer, as it sent it.
    assert_eq!(answer["object"], "chat.completion");
    assert!(answer["id"].as_str().unwrap().starts_with("chatcmpl-fake"));
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "Your refund was issued."
    );
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(answer["usage"]["prompt_tokens_details"]["cached_tokens"], 400);
    // The request went on as the client wrote it, under the endpoint's
    // own model name, parameters Bounty does not know included.
    let sent = upstream.requests().last().unwrap().body.clone();
    assert_eq!(sent["model"], "fake-gpt");
    assert_eq!(sent["top_p"], json!(0.9));
    assert_eq!(sent["logit_bias"], json!({"50256": -100}));
    assert_eq!(sent["metadata"], json!({"user_ref": "u1"}));
    assert_eq!(sent["messages"], body["messages"]);
    // 600 × 2.50 + 400 × 1.25 + 300 × 10 + 200 × 12 = 7,400 µ$ per 10⁶:
    // 1500 + 500 + 3000 + 2400 micros / 1 = 7.4e9 / 1e6 = 7,400 µ$.
    let calls = open_calls(&app, account).await;
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.id, call_id);
    assert_eq!(
        (
            call.prompt_tokens,
            call.cached_tokens,
            call.completion_tokens,
            call.reasoning_tokens
        ),
        (1000, 400, 500, 200)
    );
    assert_eq!(call.cost_micros, 7_400);
    assert_eq!((call.billing.as_str(), call.charge_micros), ("free", 0));
    assert!(!call.usage_counted && !call.streamed);

    // A route falls back from a dead model to the next.
    let fast = json_of(
        post(
            &app,
            "/v1/chat/completions",
            &key,
            &chat_body("fast", "hello there"),
            &[],
        )
        .await,
        200,
    )
    .await;
    assert_eq!(fast["choices"][0]["message"]["content"], "hello there");
    let calls = open_calls(&app, account).await;
    let served: Vec<_> = calls
        .iter()
        .map(|c| (c.served_model.clone(), c.error_code.clone()))
        .collect();
    assert!(
        served.contains(&(Some("dead".into()), Some("provider_unreachable".into()))),
        "{served:?}"
    );
    assert!(served.contains(&(Some("gpt".into()), None)), "{served:?}");

    // Tools and tool calls pass through both ways.
    upstream.push(Behavior::ToolCalls(vec![(
        "lookup".into(),
        "{\"order\":\"A1\"}".into(),
    )]));
    let mut tools = chat_body("gpt", "order A1?");
    tools["tools"] =
        json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]);
    let called = json_of(post(&app, "/v1/chat/completions", &key, &tools, &[]).await, 200).await;
    assert_eq!(called["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        called["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "lookup"
    );
    assert_eq!(upstream.requests().last().unwrap().body["tools"], tools["tools"]);

    // Embeddings, priced at the input rate.
    let embedded = json_of(
        post(
            &app,
            "/v1/embeddings",
            &key,
            &json!({"model": "gpt", "input": ["one two", "three"]}),
            &[],
        )
        .await,
        200,
    )
    .await;
    assert_eq!(embedded["object"], "list");
    assert_eq!(embedded["data"].as_array().unwrap().len(), 2);
    let calls = open_calls(&app, account).await;
    let embedding = calls.iter().find(|c| c.endpoint == "embeddings").unwrap();
    assert_eq!(embedding.prompt_tokens, 3);
    assert_eq!(
        embedding.cost_micros, 8,
        "3 tokens × 2.50 $/M = 7.5 µ$, rounded up"
    );
}

/// A stream's chunks (it must end with `[DONE]`) and the content of
/// their deltas.
async fn streamed_chunks(response: reqwest::Response) -> (Vec<Value>, String) {
    let text = response.text().await.unwrap();
    let data = events(&text);
    assert_eq!(data.last().unwrap(), "[DONE]", "{text}");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    (chunks, content)
}

/// The `data:` payloads of an event stream.
fn events(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|e| {
            e.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
        })
        .collect()
}

async fn streams_forward_events_and_are_priced_from_the_final_usage(backend: Backend) {
    let upstream = FakeOpenAi::start().await;
    let app = app(backend, &upstream).await;
    let (account, key) = free_account(&app, "Acme").await;

    // Asked for usage: the client gets the usage chunk.
    upstream.push(Behavior::Detailed {
        text: "one two three".into(),
        prompt_tokens: 10,
        completion_tokens: 3,
        cached_tokens: 0,
        reasoning_tokens: 0,
    });
    let mut body = chat_body("gpt", "count");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = post(&app, "/v1/chat/completions", &key, &body, &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (chunks, content) = streamed_chunks(response).await;
    assert_eq!(content, "one two three");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 3);

    // Not asked: Bounty still asks (it is the price) but drops the chunk.
    upstream.push(Behavior::Detailed {
        text: "four five".into(),
        prompt_tokens: 20,
        completion_tokens: 2,
        cached_tokens: 10,
        reasoning_tokens: 0,
    });
    body["stream_options"] = Value::Null;
    let response = post(&app, "/v1/chat/completions", &key, &body, &[]).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let data = events(&text);
    assert!(data.iter().all(|d| !d.contains("\"prompt_tokens\"")), "{text}");
    assert_eq!(
        upstream.requests().last().unwrap().body["stream_options"]["include_usage"],
        true
    );

    // No usage at all: counted, and flagged.
    upstream.push(Behavior::NoUsage("six seven eight nine".into()));
    let response = post(&app, "/v1/chat/completions", &key, &body, &[]).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().ends_with("data: [DONE]\n\n"));

    let mut calls = open_calls(&app, account).await;
    calls.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(calls.iter().all(|c| c.streamed));
    // 10 × 2.50 + 3 × 10 = 55 µ$.
    assert_eq!(calls[0].cost_micros, 55);
    assert_eq!(
        (
            calls[0].prompt_tokens,
            calls[0].completion_tokens,
            calls[0].usage_counted
        ),
        (10, 3, false)
    );
    assert_eq!((calls[1].prompt_tokens, calls[1].cached_tokens), (20, 10));
    assert!(calls[2].usage_counted);
    assert_eq!(calls[2].completion_tokens, 4, "one token per streamed delta");
    assert!(calls[2].prompt_tokens > 0);
}

async fn models_list_in_openai_shape_and_the_catalog_moved(backend: Backend) {
    let upstream = FakeOpenAi::start().await;
    let app = app(backend, &upstream).await;
    let (_, key) = app.create_account("Acme").await;
    let list = json_of(app.call(Method::GET, "/v1/models", &key, None).await, 200).await;
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    // The BYOK-only model is not usable without the account's key.
    assert_eq!(ids, ["cached", "cheap", "dead", "fast", "gpt", "smart"]);
    for m in list["data"].as_array().unwrap() {
        assert_eq!(m["object"], "model");
        assert!(m["created"].as_i64().unwrap() > 0);
        assert_eq!(m["owned_by"], "bounty");
    }
    let one = json_of(app.call(Method::GET, "/v1/models/fast", &key, None).await, 200).await;
    assert_eq!(one["id"], "fast");
    let missing = json_of(app.call(Method::GET, "/v1/models/nope", &key, None).await, 404).await;
    assert_eq!(missing["error"]["code"], "model_not_found");
    // Bounty's own listing, with providers and prices, moved.
    let catalog = json_of(app.call(Method::GET, "/v1/catalog/models", &key, None).await, 200).await;
    let gpt = catalog["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "gpt")
        .unwrap();
    assert_eq!(gpt["price"]["cached_input"]["micros"], 1_250_000);
}

async fn errors_are_in_openai_shape(backend: Backend) {
    let upstream = FakeOpenAi::start().await;
    let app = app(backend, &upstream).await;
    let (_, key) = free_account(&app, "Acme").await;
    let error = |v: &Value| {
        let e = &v["error"];
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert!(e["type"].is_string(), "{v}");
        assert!(
            e.as_object().unwrap().contains_key("param") && e.as_object().unwrap().contains_key("code"),
            "{v}"
        );
        (e["param"].clone(), e["code"].clone())
    };
    let no_key = app
        .request(Method::POST, "/v1/chat/completions", None)
        .json(&chat_body("gpt", "x"))
        .send()
        .await
        .unwrap();
    let (_, code) = error(&json_of(no_key, 401).await);
    assert_eq!(code, "missing_api_key");
    let bad_key = post(
        &app,
        "/v1/chat/completions",
        "bk_live_nope",
        &chat_body("gpt", "x"),
        &[],
    )
    .await;
    assert_eq!(error(&json_of(bad_key, 401).await).1, "invalid_api_key");
    let unknown = post(&app, "/v1/chat/completions", &key, &chat_body("gpt-9", "x"), &[]).await;
    assert_eq!(
        error(&json_of(unknown, 404).await),
        (json!("model"), json!("model_not_found"))
    );
    let no_model = post(&app, "/v1/chat/completions", &key, &json!({"messages": []}), &[]).await;
    assert_eq!(error(&json_of(no_model, 400).await).0, "model");
    let no_messages = post(&app, "/v1/chat/completions", &key, &json!({"model": "gpt"}), &[]).await;
    assert_eq!(error(&json_of(no_messages, 400).await).0, "messages");
    let not_json = app
        .request(Method::POST, "/v1/chat/completions", Some(&key))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error(&json_of(not_json, 400).await).0, "body");
    let bad_stream = post(
        &app,
        "/v1/chat/completions",
        &key,
        &json!({"model": "gpt", "messages": [], "stream": "yes"}),
        &[],
    )
    .await;
    assert_eq!(error(&json_of(bad_stream, 400).await).0, "stream");
    let bad_task = post(
        &app,
        "/v1/chat/completions",
        &key,
        &chat_body("gpt", "x"),
        &[("Bounty-Task", "")],
    )
    .await;
    assert_eq!(error(&json_of(bad_task, 400).await).0, "Bounty-Task");
}

async fn upstream_failures_map_to_openai_statuses(backend: Backend) {
    let upstream = FakeOpenAi::start().await;
    let app = app(backend, &upstream).await;
    let (account, key) = free_account(&app, "Acme").await;
    // 500 on every try (one retry): 502 upstream_error.
    upstream.push(Behavior::status(500));
    upstream.push(Behavior::status(500));
    let failed = json_of(
        post(&app, "/v1/chat/completions", &key, &chat_body("gpt", "x"), &[]).await,
        502,
    )
    .await;
    assert_eq!(failed["error"]["code"], "upstream_error");
    assert_eq!(failed["error"]["type"], "api_error");
    // 429 on every try: 429 with Retry-After, OpenAI's shape.
    upstream.push(Behavior::rate_limited("0"));
    upstream.push(Behavior::rate_limited("3"));
    let limited = post(&app, "/v1/chat/completions", &key, &chat_body("gpt", "x"), &[]).await;
    assert_eq!(limited.status(), 429);
    let after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(after >= 1, "{after}");
    let limited = json_of(limited, 429).await;
    assert_eq!(limited["error"]["code"], "upstream_rate_limited");
    // A request the provider refuses (4xx) keeps its status, no fallback.
    upstream.push(Behavior::error(400, "max_tokens is too large"));
    let refused = json_of(
        post(&app, "/v1/chat/completions", &key, &chat_body("gpt", "x"), &[]).await,
        400,
    )
    .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens is too large")
    );
    // A timeout: 504.
    upstream.push(Behavior::Hang);
    upstream.push(Behavior::Hang);
    let slow = json_of(
        post(&app, "/v1/chat/completions", &key, &chat_body("gpt", "x"), &[]).await,
        504,
    )
    .await;
    assert_eq!(slow["error"]["code"], "upstream_timeout");
    // Every failure is recorded, at no cost (no tokens).
    let calls = open_calls(&app, account).await;
    assert_eq!(calls.len(), 4);
    assert!(
        calls.iter().all(|c| c.error_code.is_some() && c.cost_micros == 0),
        "{calls:?}"
    );
}

async fn unattributed_calls_follow_the_plan(backend: Backend) {
    let upstream = FakeOpenAi::start().await;
    let app = app(backend, &upstream).await;
    let (account, key) = app.create_account("Acme").await;
    // The default: refused, before any upstream call.
    let before = upstream.request_count();
    let refused = json_of(
        post(&app, "/v1/chat/completions", &key, &chat_body("gpt", "x"), &[]).await,
        400,
    )
    .await;
    assert_eq!(refused["error"]["code"], "task_required");
    assert_eq!(refused["error"]["param"], "Bounty-Task");
    assert_eq!(upstream.request_count(), before);
    // cost_plus: the charge is the cost plus the markup, rounded up.
    set_unattributed(&app, account, Unattributed::CostPlus, 2_000).await;
    upstream.push(Behavior::reply("ok", 1_000_000, 0));
    json_of(
        post(&app, "/v1/chat/completions", &key, &chat_body("gpt", "x"), &[]).await,
        200,
    )
    .await;
    let calls = open_calls(&app, account).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].cost_micros, 2_500_000);
    assert_eq!(
        (calls[0].billing.as_str(), calls[0].charge_micros),
        ("cost_plus", 3_000_000)
    );
    // free: the operator's cost only, beside cost_plus in its view.
    set_unattributed(&app, account, Unattributed::Free, 0).await;
    upstream.push(Behavior::reply("ok", 400_000, 0));
    json_of(
        post(&app, "/v1/chat/completions", &key, &chat_body("gpt", "x"), &[]).await,
        200,
    )
    .await;
    app.gateway.flush().await;
    let day = chrono::Duration::days(1);
    let figures = app
        .store
        .gateway_open_figures(account, chrono::Utc::now() - day, chrono::Utc::now() + day)
        .await
        .unwrap();
    let row = |billing: &str| figures.iter().find(|f| f.billing == billing).cloned().unwrap();
    assert_eq!(
        (
            row("cost_plus").calls,
            row("cost_plus").cost_micros,
            row("cost_plus").charge_micros
        ),
        (1, 2_500_000, 3_000_000)
    );
    assert_eq!(
        (
            row("free").calls,
            row("free").cost_micros,
            row("free").charge_micros
        ),
        (1, 1_000_000, 0)
    );
    // A task's calls are billed through the task, whatever the rule.
    json_of(
        app.create_agent(
            &key,
            &json!({
                "name": "gateway", "instructions": "-", "model_route": ["gpt"],
                "verifier_policy": crate::support::verified_at_once(),
            }),
        )
        .await,
        201,
    )
    .await;
    json_of(
        post(
            &app,
            "/v1/chat/completions",
            &key,
            &chat_body("gpt", "y"),
            &[("Bounty-Task", "T-1")],
        )
        .await,
        200,
    )
    .await;
    let calls = open_calls(&app, account).await;
    assert_eq!(calls.len(), 3);
    let task_call = calls
        .iter()
        .find(|c| c.task_ref.as_deref() == Some("T-1"))
        .unwrap();
    assert_eq!((task_call.billing.as_str(), task_call.charge_micros), ("task", 0));
    // Another tenant's plan is its own.
    let (_, other) = app.create_account("Globex").await;
    assert_eq!(
        json_of(
            post(&app, "/v1/chat/completions", &other, &chat_body("gpt", "x"), &[]).await,
            400
        )
        .await["error"]["code"],
        "task_required"
    );
}

async fn calls_grouped_into_a_task_are_charged_once_when_verified(backend: Backend) {
    let upstream = FakeOpenAi::start().await;
    let app = app(backend, &upstream).await;
    let (account, key) = app.create_account("Acme").await;
    // Without a default agent or Bounty-Agent, a task's call is refused.
    let no_agent = json_of(
        post(
            &app,
            "/v1/chat/completions",
            &key,
            &chat_body("gpt", "x"),
            &[("Bounty-Task", "T-1")],
        )
        .await,
        400,
    )
    .await;
    assert_eq!(no_agent["error"]["code"], "agent_required");
    let unknown = json_of(
        post(
            &app,
            "/v1/chat/completions",
            &key,
            &chat_body("gpt", "x"),
            &[("Bounty-Task", "T-1"), ("Bounty-Agent", "nope")],
        )
        .await,
        400,
    )
    .await;
    assert_eq!(unknown["error"]["code"], "agent_not_found");
    json_of(
        app.create_agent(
            &key,
            &json!({
                "name": "support", "instructions": "-", "model_route": ["gpt"],
                "verifier_policy": {"verifiers": [{"kind": "rules", "must_match": ["refund"]}]},
            }),
        )
        .await,
        201,
    )
    .await;
    upstream.push(Behavior::reply("Let me check.", 100, 10));
    upstream.push(Behavior::reply("Your refund was issued.", 200, 20));
    let agent = [("Bounty-Task", "T-1"), ("Bounty-Agent", "support")];
    json_of(
        post(
            &app,
            "/v1/chat/completions",
            &key,
            &chat_body("gpt", "refund?"),
            &agent,
        )
        .await,
        200,
    )
    .await;
    // metadata names the task as well as the header does.
    let mut second = chat_body("gpt", "and?");
    second["metadata"] = json!({"bounty_task": "T-1", "bounty_agent": "support"});
    json_of(post(&app, "/v1/chat/completions", &key, &second, &[]).await, 200).await;
    assert!(
        upstream.requests().last().unwrap().body.get("metadata").is_none(),
        "bounty_* keys are ours"
    );
    // A call of another task, to see the grouping.
    json_of(
        post(
            &app,
            "/v1/chat/completions",
            &key,
            &chat_body("gpt", "other"),
            &[("Bounty-Task", "T-2"), ("Bounty-Agent", "support")],
        )
        .await,
        200,
    )
    .await;

    let report = json!({"output": "Your refund was issued.", "input": {"subject": "Refund", "body": "Where is my refund?"}});
    let created = json_of(
        app.call(Method::POST, "/v1/tasks/T-1/outcome", &key, Some(&report))
            .await,
        201,
    )
    .await;
    let task = app
        .wait_for_task(&key, created["id"].as_str().unwrap(), WAIT)
        .await;
    assert_eq!(task["status"], "completed");
    let outcome = app
        .get_outcome(&key, task["outcome"]["id"].as_str().unwrap())
        .await;
    assert_eq!(outcome["status"], "resolved");
    let charged = transfer_kinds(&outcome);
    assert_eq!(charged, ["charge", "charge_money"]);
    // The task's calls are the two of T-1, each with its exact cost:
    // 100 × 2.50 + 10 × 10 = 350 µ$ and 200 × 2.50 + 20 × 10 = 700 µ$.
    let costs = app.call_costs(&key, &task).await;
    assert_eq!(costs, [350, 700]);
    let receipt = app.get_task(&key, task["id"].as_str().unwrap()).await;
    assert_eq!(receipt["usage"]["prompt_tokens"], 300, "{receipt}");
    let listed = receipt["model_calls"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|c| c["gateway"] == true && c["attempt"] == 0),
        "{receipt}"
    );
    // Our inference cost stays off the customer's receipt (BYOK excepted).
    assert!(listed.iter().all(|c| c.get("byok_cost").is_none()), "{receipt}");
    // Not in the open calls any more; T-2's still is.
    let open = open_calls(&app, account).await;
    assert!(
        open.iter().all(|c| c.task_ref.as_deref() == Some("T-2")),
        "{open:?}"
    );
    // The same report again: the same task, nothing new.
    let again = json_of(
        app.call(Method::POST, "/v1/tasks/T-1/outcome", &key, Some(&report))
            .await,
        200,
    )
    .await;
    assert_eq!(again["id"], created["id"]);
    // Another answer for it: refused.
    let mut other = report.clone();
    other["output"] = json!("Something else.");
    let conflict = json_of(
        app.call(Method::POST, "/v1/tasks/T-1/outcome", &key, Some(&other))
            .await,
        409,
    )
    .await;
    assert_eq!(conflict["error"]["code"], "outcome_already_reported");
    // A call made after the report joins the task's record, not a new task.
    json_of(
        post(
            &app,
            "/v1/chat/completions",
            &key,
            &chat_body("gpt", "late"),
            &agent,
        )
        .await,
        200,
    )
    .await;
    app.gateway.flush().await;
    assert_eq!(app.call_costs(&key, &task).await.len(), 3);
    let outcome = app
        .get_outcome(&key, task["outcome"]["id"].as_str().unwrap())
        .await;
    assert_eq!(transfer_kinds(&outcome), charged, "charged once");
    // Another tenant cannot report (or see) this task.
    let (_, globex) = app.create_account("Globex").await;
    let theirs = app
        .call(Method::POST, "/v1/tasks/T-1/outcome", &globex, Some(&report))
        .await;
    assert_eq!(theirs.status(), 422, "Globex has no agent: its own, separate T-1");
}

async fn a_reported_outcome_that_fails_verification_is_never_charged(backend: Backend) {
    let upstream = FakeOpenAi::start().await;
    let app = app(backend, &upstream).await;
    let (_, key) = app.create_account("Acme").await;
    json_of(
        app.create_agent(
            &key,
            &json!({
                "name": "gateway", "instructions": "-", "model_route": ["gpt"],
                "verifier_policy": {"verifiers": [{"kind": "rules", "must_match": ["refund"]}]},
            }),
        )
        .await,
        201,
    )
    .await;
    json_of(
        post(
            &app,
            "/v1/chat/completions",
            &key,
            &chat_body("gpt", "hi"),
            &[("Bounty-Task", "T-9")],
        )
        .await,
        200,
    )
    .await;
    let report =
        json!({"output": "I cannot help.", "input": {"subject": "Refund", "body": "Where is my refund?"}});
    let created = json_of(
        app.call(Method::POST, "/v1/tasks/T-9/outcome", &key, Some(&report))
            .await,
        201,
    )
    .await;
    let task = app
        .wait_for_task(&key, created["id"].as_str().unwrap(), WAIT)
        .await;
    let outcome = app
        .get_outcome(&key, task["outcome"]["id"].as_str().unwrap())
        .await;
    assert_eq!(outcome["status"], "failed");
    assert!(transfer_kinds(&outcome).is_empty(), "{outcome}");
    assert_eq!(
        app.call_costs(&key, &task).await.len(),
        1,
        "the call is still on the task's record"
    );
}

async fn byok_models_use_the_accounts_own_key_through_the_gateway(backend: Backend) {
    let upstream = FakeOpenAi::start().await;
    let own = FakeOpenAi::start().await;
    let app = app(backend, &upstream).await;
    let (account, key) = free_account(&app, "Acme").await;
    // Without the account's key the model is not listed, and fails clearly.
    let missing = json_of(
        post(&app, "/v1/chat/completions", &key, &chat_body("own", "x"), &[]).await,
        400,
    )
    .await;
    assert_eq!(missing["error"]["code"], "byok_key_missing");
    let secret = "sk-customer-own-0123456789";
    json_of(
        app.call(
            Method::PUT,
            "/v1/byok",
            &key,
            Some(&json!({"base_url": own.base_url(), "api_key": secret})),
        )
        .await,
        200,
    )
    .await;
    let list = json_of(app.call(Method::GET, "/v1/models", &key, None).await, 200).await;
    assert!(list["data"].as_array().unwrap().iter().any(|m| m["id"] == "own"));
    let answer = json_of(
        post(&app, "/v1/chat/completions", &key, &chat_body("own", "mine"), &[]).await,
        200,
    )
    .await;
    assert_eq!(answer["choices"][0]["message"]["content"], "mine");
    let sent = own.requests().last().unwrap().clone();
    assert_eq!(
        sent.authorization.as_deref(),
        Some(format!("Bearer {secret}").as_str())
    );
    assert_eq!(sent.body["model"], "customer-gpt");
    let calls = open_calls(&app, account).await;
    assert!(calls[0].byok);
    assert!(!format!("{calls:?}").contains(secret));
    // Its own key, refused by its endpoint: OpenAI's 400 naming it.
    own.push(Behavior::error(401, "bad key"));
    let rejected = json_of(
        post(&app, "/v1/chat/completions", &key, &chat_body("own", "x"), &[]).await,
        400,
    )
    .await;
    assert_eq!(rejected["error"]["code"], "byok_key_rejected");
    assert!(!rejected.to_string().contains(secret));
}

async fn the_official_async_openai_client_works_unchanged(backend: Backend) {
    use async_openai::Client;
    use async_openai::config::OpenAIConfig;
    use async_openai::types::chat::{ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs};
    use async_openai::types::embeddings::CreateEmbeddingRequestArgs;

    let upstream = FakeOpenAi::start().await;
    let app = app(backend, &upstream).await;
    let (_, key) = free_account(&app, "Acme").await;
    let client = Client::with_config(
        OpenAIConfig::new()
            .with_api_base(format!("{}/v1", app.base))
            .with_api_key(key.clone()),
    );
    let request = CreateChatCompletionRequestArgs::default()
        .model("gpt")
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("hello from the sdk")
            .build()
            .unwrap()
            .into()])
        .build()
        .unwrap();
    let response = client.chat().create(request).await.unwrap();
    assert_eq!(
        response.choices[0].message.content.as_deref(),
        Some("hello from the sdk")
    );
    assert!(response.usage.is_some());
    let embeddings = client
        .embeddings()
        .create(
            CreateEmbeddingRequestArgs::default()
                .model("gpt")
                .input(vec!["a b", "c"])
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(embeddings.data.len(), 2);
    // Its error type sees OpenAI's error shape.
    let missing = CreateChatCompletionRequestArgs::default()
        .model("gpt-9")
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("x")
            .build()
            .unwrap()
            .into()])
        .build()
        .unwrap();
    match client.chat().create(missing).await {
        Err(async_openai::error::OpenAIError::ApiError(api)) => {
            assert_eq!(api.api_error.code.as_deref(), Some("model_not_found"));
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Fires `n` identical chat requests at once; returns each status and
/// `Retry-After`.
async fn burst(app: &TestApp, key: &str, body: &Value, n: usize) -> Vec<(u16, Option<String>, Value)> {
    let requests = (0..n).map(|_| {
        let request = app
            .request(Method::POST, "/v1/chat/completions", Some(key))
            .json(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, after, response.json::<Value>().await.unwrap())
        }
    });
    futures_util::future::join_all(requests).await
}

async fn budgets_hold_under_200_concurrent_requests(backend: Backend) {
    let upstream = FakeOpenAi::start().await;
    upstream.set_recording(false);
    let app = app(backend, &upstream).await;
    let (account, key) = free_account(&app, "Acme").await;
    let key_id = json_of(app.call(Method::GET, "/v1/api-keys", &key, None).await, 200).await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Stay inside one minute window: the burst takes well under 10 s.
    while chrono::Utc::now().timestamp() % 60 > 45 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let limits = json_of(
        app.call(
            Method::PUT,
            "/v1/gateway/limits",
            &key,
            Some(&json!({"api_key": key_id, "requests_per_minute": 50})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(limits["data"][0]["scope"], key_id.as_str());
    let before = upstream.request_count();
    let mut body = chat_body("gpt", "hi");
    body["max_tokens"] = json!(10);
    let results = burst(&app, &key, &body, 200).await;
    let ok = results.iter().filter(|(s, _, _)| *s == 200).count();
    assert_eq!(ok, 50, "exactly the limit passes");
    for (status, after, body) in results.iter().filter(|(s, _, _)| *s != 200) {
        assert_eq!(*status, 429, "{body}");
        assert!(
            after.as_deref().is_some_and(|a| a.parse::<u64>().unwrap() >= 1),
            "{after:?}"
        );
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(body["error"]["type"], "rate_limit_error");
    }
    assert_eq!(
        upstream.request_count() - before,
        50,
        "a refused call never reaches the provider"
    );

    // A money cap on the account: never passed, though 200 race for it.
    json_of(
        app.call(
            Method::PUT,
            "/v1/gateway/limits",
            &key,
            Some(&json!({"api_key": key_id})),
        )
        .await,
        200,
    )
    .await;
    json_of(
        app.call(
            Method::PUT,
            "/v1/gateway/limits",
            &key,
            Some(&json!({"monthly_spend": {"micros": 2_000, "currency": "USD"}})),
        )
        .await,
        200,
    )
    .await;
    let results = burst(&app, &key, &body, 200).await;
    let ok = results.iter().filter(|(s, _, _)| *s == 200).count();
    assert!(ok > 0, "some calls fit under the cap");
    let refused: Vec<_> = results.iter().filter(|(s, _, _)| *s == 429).collect();
    assert_eq!(ok + refused.len(), 200);
    assert!(
        refused
            .iter()
            .all(|(_, _, b)| b["error"]["code"] == "budget_exceeded"),
        "{refused:?}"
    );
    // Let the commits land, then compare what was spent with the cap.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls = open_calls(&app, account).await;
    let spent: i64 = calls.iter().skip(50).map(|c| c.cost_micros).sum();
    assert_eq!(calls.len(), 50 + ok);
    assert!(spent <= 2_000, "spent {spent} µ$ of a 2,000 µ$ cap");
}

async fn a_dead_holders_reservation_expires(backend: Backend) {
    use bounty_store::gateway_budget::{ACCOUNT_SCOPE, GatewayLimit};
    let upstream = FakeOpenAi::start().await;
    let app = app(backend, &upstream).await;
    let (account, _) = app.create_account("Acme").await;
    let clock = std::sync::Arc::new(bounty_core::ManualClock::new(chrono::Utc::now()));
    let store = app.store_with_clock(clock.clone()).await;
    let cap = GatewayLimit {
        scope: ACCOUNT_SCOPE.to_owned(),
        requests_per_minute: None,
        tokens_per_minute: None,
        monthly_spend: Some(bounty_core::Money::from_micros(100, bounty_core::Currency::USD)),
    };
    store.set_gateway_limit(account, &cap).await.unwrap();
    let hold = Duration::from_secs(60);
    // A holder reserves 80 µ$ and dies without committing.
    let held = store
        .reserve_gateway(account, std::slice::from_ref(&cap), 10, Some(80), hold)
        .await
        .unwrap();
    assert!(held.is_ok());
    // While it lives, the next 80 µ$ do not fit.
    let refused = store
        .reserve_gateway(account, std::slice::from_ref(&cap), 10, Some(80), hold)
        .await
        .unwrap();
    assert_eq!(refused.unwrap_err().limit, "monthly_spend");
    // Once it expires, the budget is whole again: no false 429s.
    clock.advance(chrono::Duration::seconds(61));
    let fits = store
        .reserve_gateway(account, std::slice::from_ref(&cap), 10, Some(80), hold)
        .await
        .unwrap();
    let reservation = fits.expect("the dead holder's reservation expired");
    // Committed, the real cost counts and the hold goes.
    store.commit_gateway(&reservation, 10, 30).await.unwrap();
    let next = store
        .reserve_gateway(account, std::slice::from_ref(&cap), 10, Some(70), hold)
        .await
        .unwrap();
    assert!(next.is_ok(), "30 committed + 70 reserved fits 100");
    let over = store
        .reserve_gateway(account, &[cap], 10, Some(1), hold)
        .await
        .unwrap();
    assert!(over.is_err());
}

async fn the_cache_serves_only_verified_answers_and_never_across_tenants(backend: Backend) {
    let upstream = FakeOpenAi::start().await;
    let app = app(backend, &upstream).await;
    let (account, key) = free_account(&app, "Acme").await;
    json_of(
        app.create_agent(
            &key,
            &json!({
                "name": "gateway", "instructions": "-", "model_route": ["gpt"],
                "verifier_policy": {"verifiers": [{"kind": "rules", "must_match": ["refund"]}]},
            }),
        )
        .await,
        201,
    )
    .await;
    let mut ask = chat_body("cached", "Where is my refund?");
    ask["temperature"] = json!(0);
    ask["seed"] = json!(7);
    let calls_upstream = || upstream.request_count();

    // Answered by the model for task T-1; nothing is served from the
    // cache before T-1 is verified.
    upstream.push(Behavior::reply("Your refund was issued.", 10, 5));
    let first = json_of(
        post(
            &app,
            "/v1/chat/completions",
            &key,
            &ask,
            &[("Bounty-Task", "T-1")],
        )
        .await,
        200,
    )
    .await;
    let n = calls_upstream();
    json_of(post(&app, "/v1/chat/completions", &key, &ask, &[]).await, 200).await;
    assert_eq!(calls_upstream(), n + 1, "an unverified answer is not served");
    let report = json!({"output": "Your refund was issued.", "input": {"subject": "Refund", "body": "Where is my refund?"}});
    let task = json_of(
        app.call(Method::POST, "/v1/tasks/T-1/outcome", &key, Some(&report))
            .await,
        201,
    )
    .await;
    let task = app.wait_for_task(&key, task["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(
        app.get_outcome(&key, task["outcome"]["id"].as_str().unwrap())
            .await["status"],
        "resolved"
    );

    // Resolved: the same request is served from the cache, at no cost;
    // streamed as well.
    let n = calls_upstream();
    let hit = post(&app, "/v1/chat/completions", &key, &ask, &[]).await;
    let hit = json_of(hit, 200).await;
    assert_eq!(hit["choices"], first["choices"]);
    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    let text = post(&app, "/v1/chat/completions", &key, &streamed, &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("Your refund was issued.") && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );
    assert_eq!(calls_upstream(), n, "both served from the cache");
    let hits: Vec<_> = open_calls(&app, account)
        .await
        .into_iter()
        .filter(|c| c.served_model.is_none())
        .collect();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|c| c.cost_micros == 0));

    // Any parameter that changes the answer misses.
    for (field, value) in [
        ("temperature", json!(0.5)),
        ("seed", json!(8)),
        ("max_tokens", json!(3)),
    ] {
        let mut other = ask.clone();
        other[field] = value;
        let n = calls_upstream();
        json_of(post(&app, "/v1/chat/completions", &key, &other, &[]).await, 200).await;
        assert_eq!(calls_upstream(), n + 1, "{field} is in the key");
    }
    let mut tools = ask.clone();
    tools["tools"] =
        json!([{"type": "function", "function": {"name": "t", "parameters": {"type": "object"}}}]);
    let n = calls_upstream();
    json_of(post(&app, "/v1/chat/completions", &key, &tools, &[]).await, 200).await;
    assert_eq!(calls_upstream(), n + 1, "tools are in the key");
    // Key order does not matter.
    let reordered: Value = serde_json::from_str(&format!(
        r#"{{"seed": 7, "temperature": 0, "messages": {}, "model": "cached"}}"#,
        ask["messages"]
    ))
    .unwrap();
    let n = calls_upstream();
    json_of(
        post(&app, "/v1/chat/completions", &key, &reordered, &[]).await,
        200,
    )
    .await;
    assert_eq!(calls_upstream(), n, "the same request in another key order hits");
    // A model that does not cache never hits.
    let mut plain = ask.clone();
    plain["model"] = json!("gpt");
    let n = calls_upstream();
    json_of(post(&app, "/v1/chat/completions", &key, &plain, &[]).await, 200).await;
    assert_eq!(calls_upstream(), n + 1);

    // Another tenant, the same request: its own miss.
    let (_, globex) = free_account(&app, "Globex").await;
    let n = calls_upstream();
    json_of(post(&app, "/v1/chat/completions", &globex, &ask, &[]).await, 200).await;
    assert_eq!(calls_upstream(), n + 1, "no entry crosses tenants");

    // A failed task's answer is never served.
    let mut failing = chat_body("cached", "Something else entirely");
    failing["seed"] = json!(1);
    upstream.push(Behavior::reply("I cannot help.", 10, 5));
    json_of(
        post(
            &app,
            "/v1/chat/completions",
            &key,
            &failing,
            &[("Bounty-Task", "T-2")],
        )
        .await,
        200,
    )
    .await;
    let report = json!({"output": "I cannot help.", "input": {"subject": "x", "body": "x"}});
    let task = json_of(
        app.call(Method::POST, "/v1/tasks/T-2/outcome", &key, Some(&report))
            .await,
        201,
    )
    .await;
    let task = app.wait_for_task(&key, task["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(
        app.get_outcome(&key, task["outcome"]["id"].as_str().unwrap())
            .await["status"],
        "failed"
    );
    let n = calls_upstream();
    json_of(post(&app, "/v1/chat/completions", &key, &failing, &[]).await, 200).await;
    assert_eq!(calls_upstream(), n + 1, "a failed task's answer is not served");
}

/// The `PYTHONPATH` under which `python3` imports the official `openai`
/// client: as installed, else installed once under the test target
/// directory from PyPI. `None` (the test says why) without python3 or
/// without a way to install it.
fn python_with_openai() -> Option<Option<std::path::PathBuf>> {
    let imports = |path: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new("python3");
        cmd.args(["-c", "import openai"]);
        if let Some(path) = path {
            cmd.env("PYTHONPATH", path);
        }
        cmd.output().is_ok_and(|o| o.status.success())
    };
    if imports(None) {
        return Some(None);
    }
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("pydeps");
    if imports(Some(&target)) {
        return Some(Some(target));
    }
    let installed = std::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&target)
        .arg("openai")
        .status()
        .is_ok_and(|s| s.success());
    if installed && imports(Some(&target)) {
        Some(Some(target))
    } else {
        eprintln!("SKIPPED: python3 with the `openai` package is not available and could not be installed");
        None
    }
}

#[tokio::test]
async fn the_official_openai_python_client_works_unchanged() {
    let Some(pythonpath) = python_with_openai() else {
        return;
    };
    let upstream = FakeOpenAi::start().await;
    let app = app(Backend::Sqlite, &upstream).await;
    let (_, key) = app.create_account("Acme").await;
    json_of(
        app.create_agent(
            &key,
            &json!({
                "name": "gateway", "instructions": "-", "model_route": ["gpt"],
                "verifier_policy": crate::support::verified_at_once(),
            }),
        )
        .await,
        201,
    )
    .await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/openai_client.py");
    let mut cmd = tokio::process::Command::new("python3");
    cmd.arg(&script).arg(format!("{}/v1", app.base)).arg(&key);
    if let Some(path) = pythonpath {
        cmd.env("PYTHONPATH", path);
    }
    let out = cmd.output().await.expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim() == "ok",
        "stdout: {stdout}\nstderr: {stderr}"
    );
}

async fn a_slow_model_is_not_cut_off_by_the_servers_request_limit(backend: Backend) {
    let upstream = FakeOpenAi::start().await;
    let opts = TestOptions {
        limits: bounty_server::Limits {
            request_timeout: Duration::from_millis(200),
            ..bounty_server::Limits::default()
        },
        models: vec![(
            "gpt".to_owned(),
            crate::support::remote_model(&upstream.base_url()),
        )],
        ..TestOptions::default()
    };
    let app = TestApp::spawn_with(backend, opts).await;
    let (_, key) = free_account(&app, "Acme").await;
    upstream.push(Behavior::Delay(Duration::from_millis(600)));
    let answer = json_of(
        post(
            &app,
            "/v1/chat/completions",
            &key,
            &chat_body("gpt", "slow one"),
            &[],
        )
        .await,
        200,
    )
    .await;
    assert_eq!(answer["choices"][0]["message"]["content"], "slow one");
    // The rest of the API keeps the server's limit.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

/// Waits until the account's cost-plus lines (in `key`'s book) bill
/// `calls` calls and nothing is left unbilled; returns the list.
async fn billed_lines(app: &TestApp, key: &str, calls: i64) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        app.gateway.flush().await;
        let list = json_of(app.call(Method::GET, "/v1/gateway/charges", key, None).await, 200).await;
        let billed: i64 = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["calls"].as_i64().unwrap())
            .sum();
        if billed == calls && list["unbilled"].as_array().unwrap().is_empty() {
            return list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cost-plus calls not billed: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn cost_plus_calls_are_billed_once_as_a_ledger_line_and_a_stripe_meter_event(backend: Backend) {
    use crate::support::stripe::{client, drain, sender};
    let upstream = FakeOpenAi::start().await;
    let stripe = bounty_billing::testing::FakeStripe::start().await;
    let app = app(backend, &upstream).await;
    let (account, key) = app.create_account("Acme").await;
    let report = bounty_billing::catalog::setup(
        &client(&stripe),
        &app.store,
        &Plan::default_value_plan().price_per_cu,
    )
    .await
    .unwrap();
    assert_eq!(report.gateway_lookup_key, "bounty_gateway_usd");
    set_unattributed(&app, account, Unattributed::CostPlus, 2_000).await;
    // Three calls of 1M input tokens at 2.50 USD per million, +20%: 3 USD
    // each.
    for _ in 0..3 {
        upstream.push(Behavior::reply("ok", 1_000_000, 0));
        json_of(
            post(&app, "/v1/chat/completions", &key, &chat_body("gpt", "x"), &[]).await,
            200,
        )
        .await;
    }
    // A test key's call is billed in the test book only.
    let test_key = json_of(
        app.create_key(&key, &json!({"name": "test", "mode": "test"}))
            .await,
        201,
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    upstream.push(Behavior::reply("ok", 1_000_000, 0));
    json_of(
        post(
            &app,
            "/v1/chat/completions",
            &test_key,
            &chat_body("gpt", "x"),
            &[],
        )
        .await,
        200,
    )
    .await;

    // The worker's sweep bills them: lines of the charges' sum, and the
    // customer sees money and calls, never the cost or the markup.
    let live = billed_lines(&app, &key, 3).await;
    let total: i64 = live["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount"]["micros"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 9_000_000, "{live}");
    assert_eq!(live["data"][0]["amount"]["currency"], "USD");
    let text = live.to_string();
    assert!(!text.contains("cost") && !text.contains("markup"), "{text}");
    let test = billed_lines(&app, &test_key, 1).await;
    assert_eq!(test["data"][0]["amount"]["micros"], 3_000_000);
    let live_ids: Vec<&str> = live["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert!(!live_ids.contains(&test["data"][0]["id"].as_str().unwrap()));
    // A second sweep finds nothing left to bill.
    assert!(
        bounty_billing::gateway::bill_cost_plus(&app.store)
            .await
            .unwrap()
            .is_empty()
    );

    // Each line is a meter event on the gateway's meter, sent once.
    let rows = app.store.outbox_of(account).await.unwrap();
    let meter_rows: Vec<_> = rows
        .iter()
        .filter(|o| o.kind == bounty_core::outbox::OutboxKind::MeterEvent)
        .collect();
    assert_eq!(meter_rows.len(), live_ids.len() + 1, "{meter_rows:?}");
    assert!(
        meter_rows
            .iter()
            .all(|o| o.payload["event_name"] == "bounty_gateway_cost_plus")
    );
    let sender = sender(&app.store, &stripe);
    drain(&sender, &app.store).await;
    // The subscription carries the gateway's price, one micro per unit.
    let ids = app.store.stripe_ids(account).await.unwrap();
    let subs = stripe.subscriptions();
    let sub = subs
        .iter()
        .find(|s| s["id"].as_str() == ids.subscription.as_deref())
        .unwrap();
    let gateway_item = sub["items"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["price"]["lookup_key"] == "bounty_gateway_usd")
        .unwrap_or_else(|| panic!("no gateway price on {sub}"));
    assert_eq!(gateway_item["price"]["unit_amount_decimal"], "0.0001");
    let events: Vec<_> = stripe
        .meter_events()
        .into_iter()
        .filter(|e| {
            e.event_name == "bounty_gateway_cost_plus" && Some(&e.stripe_customer_id) == ids.customer.as_ref()
        })
        .collect();
    assert_eq!(events.iter().map(|e| e.value).sum::<i64>(), 9_000_000);
    let mut identifiers: Vec<&str> = events.iter().map(|e| e.identifier.as_str()).collect();
    identifiers.sort_unstable();
    let mut expected = live_ids.clone();
    expected.sort_unstable();
    assert_eq!(identifiers, expected);
    // Setup again queues nothing more.
    let again = bounty_billing::catalog::setup(
        &client(&stripe),
        &app.store,
        &Plan::default_value_plan().price_per_cu,
    )
    .await
    .unwrap();
    assert_eq!((again.subscriptions_queued, again.items_queued), (0, 0));
    // The money is spend, as a spending cap counts it: the live book's
    // only.
    let now = app.store.now();
    let mut tx = app.store.begin().await.unwrap();
    let spent = bounty_store::ledger::money_spent_since(
        &mut tx,
        account,
        bounty_core::ApiKeyMode::Live,
        bounty_store::ledger::period_start(now),
    )
    .await
    .unwrap();
    assert_eq!(spent, 9_000_000);
}

/// Sweeps that run at once (several workers) bill each call once: the
/// account's billing lock orders them, and the second finds the calls
/// marked.
async fn concurrent_billing_sweeps_bill_each_call_once(backend: Backend) {
    let upstream = FakeOpenAi::start().await;
    let opts = TestOptions {
        allow_private: true,
        models: vec![(
            "gpt".to_owned(),
            crate::support::remote_model(&upstream.base_url()),
        )],
        ..TestOptions::default()
    };
    // No worker: the sweeps below are the only billers.
    let app = TestApp::spawn_with(backend, opts).await;
    let (account, key) = app.create_account("Acme").await;
    set_unattributed(&app, account, Unattributed::CostPlus, 1_000).await;
    let n = 40;
    for i in 0..n {
        upstream.push(Behavior::reply("ok", 10_000 + i, 0));
    }
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..n {
        let request = app
            .request(Method::POST, "/v1/chat/completions", Some(&key))
            .json(&chat_body("gpt", "x"));
        calls.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    while let Some(status) = calls.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    app.gateway.flush().await;
    let charged: i64 = open_calls(&app, account)
        .await
        .iter()
        .map(|c| c.charge_micros)
        .sum();
    assert!(charged > 0);
    let sweeps: Vec<_> = (0..4)
        .map(|_| {
            let store = app.store.clone();
            tokio::spawn(async move { bounty_billing::gateway::bill_cost_plus(&store).await.unwrap() })
        })
        .collect();
    let mut billed = Vec::new();
    for s in sweeps {
        billed.extend(s.await.unwrap());
    }
    assert_eq!(
        billed.iter().map(|b| b.calls).sum::<i64>(),
        n as i64,
        "{billed:?}"
    );
    assert_eq!(billed.iter().map(|b| b.amount.micros).sum::<i64>(), charged);
    let list = billed_lines(&app, &key, n as i64).await;
    let listed: i64 = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount"]["micros"].as_i64().unwrap())
        .sum();
    assert_eq!(listed, charged);
}

/// A judge's answer, as the fake upstream sends it.
fn judge(resolved: bool, confidence: f64) -> Behavior {
    let answer = json!({"resolved": resolved, "confidence": confidence, "reason": "checked"});
    Behavior::reply(answer.to_string(), 50, 10)
}

async fn a_cascade_escalates_answers_its_verifier_rejects(backend: Backend) {
    let upstream = FakeOpenAi::start().await;
    let app = app(backend, &upstream).await;
    let (account, key) = app.create_account("Acme").await;
    json_of(
        app.create_agent(
            &key,
            &json!({
                "name": "gateway", "instructions": "-", "model_route": ["gpt"],
                "verifier_policy": {"verifiers": [{"kind": "rules", "non_empty": true}]},
            }),
        )
        .await,
        201,
    )
    .await;
    let task = [("Bounty-Task", "C-1")];
    let ask = |text: &str| chat_body("smart", text);

    // 1. The rules reject the cheap answer (the judge is not asked): the
    // next model answers, unchecked (the last step).
    upstream.push(Behavior::reply("Sorry, I cannot help.", 10, 5));
    upstream.push(Behavior::reply("Your order ships today.", 10, 5));
    let response = post(&app, "/v1/chat/completions", &key, &ask("order?"), &task).await;
    assert_eq!(response.headers()["bounty-cascade-step"], "2");
    assert!(response.headers().get("bounty-verdict").is_none());
    let body = json_of(response, 200).await;
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Your order ships today."
    );
    assert_eq!(upstream.request_count(), 2);

    // 2. The rules hold and the judge passes it: the cheap answer is served.
    upstream.push(Behavior::reply("It ships today.", 10, 5));
    upstream.push(judge(true, 0.9));
    let response = post(&app, "/v1/chat/completions", &key, &ask("order?"), &task).await;
    assert_eq!(response.headers()["bounty-cascade-step"], "1");
    assert_eq!(response.headers()["bounty-verdict"], "pass");
    let body = json_of(response, 200).await;
    assert_eq!(body["choices"][0]["message"]["content"], "It ships today.");
    let judged = upstream.requests().last().unwrap().body.clone();
    let prompt = judged["messages"].to_string();
    assert!(
        prompt.contains("The answer answers the question.") && prompt.contains("It ships today."),
        "{judged}"
    );
    assert!(prompt.contains("order?"), "the judge sees the question: {judged}");

    // 3. The judge is sure, but not sure enough: escalated. Streamed: the
    // stream is the accepted answer, with its usage.
    upstream.push(Behavior::reply("Maybe tomorrow.", 10, 5));
    upstream.push(judge(true, 0.5));
    upstream.push(Behavior::reply("It ships today at 5 pm.", 12, 6));
    let mut streamed = ask("when?");
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let response = post(&app, "/v1/chat/completions", &key, &streamed, &task).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["bounty-cascade-step"], "2");
    let (chunks, content) = streamed_chunks(response).await;
    assert_eq!(content, "It ships today at 5 pm.");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 6);
    assert!(
        upstream
            .requests()
            .iter()
            .rev()
            .take(3)
            .all(|r| r.body.get("stream").is_none()),
        "a cascade's steps are asked whole, to be checked before they are sent"
    );

    // 4. Rejected, and the next model fails: the checked answer beats an error.
    upstream.push(Behavior::reply("I cannot say.", 10, 5));
    upstream.push(Behavior::status(503));
    upstream.push(Behavior::status(503)); // its one retry
    let response = post(&app, "/v1/chat/completions", &key, &ask("hm?"), &task).await;
    assert_eq!(response.headers()["bounty-cascade-step"], "1");
    assert_eq!(response.headers()["bounty-verdict"], "fail");
    let body = json_of(response, 200).await;
    assert_eq!(body["choices"][0]["message"]["content"], "I cannot say.");

    // Every call is recorded: answers with their verdicts, judges as such.
    let mut calls = open_calls(&app, account).await;
    calls.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let seen: Vec<(String, String, Option<String>, bool)> = calls
        .iter()
        .map(|c| {
            (
                c.served_model.clone().unwrap_or_default(),
                c.role.clone(),
                c.verdict.clone(),
                c.error_code.is_some(),
            )
        })
        .collect();
    let row = |m: &str, role: &str, verdict: Option<&str>, failed: bool| {
        (m.to_owned(), role.to_owned(), verdict.map(str::to_owned), failed)
    };
    let mut expected = vec![
        row("cheap", "answer", Some("fail"), false),
        row("gpt", "answer", None, false),
        row("gpt", "judge", None, false),
        row("cheap", "answer", Some("pass"), false),
        row("gpt", "judge", None, false),
        row("cheap", "answer", Some("fail"), false),
        row("gpt", "answer", None, false),
        row("cheap", "answer", Some("fail"), false),
        row("gpt", "answer", None, true),
    ];
    // A judge's call is recorded before the answer it checked.
    let mut got = seen.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "{seen:?}");
    // Cheap answers cost cheap prices: 10 × 0.10 + 5 × 0.40 = 3 µ$.
    assert!(
        calls
            .iter()
            .filter(|c| c.served_model.as_deref() == Some("cheap"))
            .all(|c| c.cost_micros == 3)
    );

    // The task's receipt lists every call, each step with its verdict.
    let report = json!({"output": "It ships today.", "input": {"body": "order?"}});
    let created = json_of(
        app.call(Method::POST, "/v1/tasks/C-1/outcome", &key, Some(&report))
            .await,
        201,
    )
    .await;
    let done = app
        .wait_for_task(&key, created["id"].as_str().unwrap(), WAIT)
        .await;
    assert_eq!(done["status"], "completed");
    let receipt = app.get_task(&key, done["id"].as_str().unwrap()).await;
    let listed = receipt["model_calls"].as_array().unwrap();
    let gateway: Vec<&Value> = listed.iter().filter(|c| c["gateway"] == true).collect();
    assert_eq!(gateway.len(), 9, "{receipt}");
    let verdicts = gateway.iter().filter(|c| c["verdict"].is_string()).count();
    assert_eq!(verdicts, 4, "{receipt}");
    assert!(open_calls(&app, account).await.is_empty());
}
