//! The remote provider against the fake OpenAI server: wire format, retries,
//! `Retry-After`, timeouts, error mapping, and the router's fallback.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bounty_models::remote::RemoteModel;
use bounty_models::router::Overrides;
use bounty_models::testing::openai::{Behavior, EMBEDDING_DIM, FakeOpenAi, embedding_of};
use bounty_models::{
    EmbedError, Embedder, EmbeddingConfig, FinishReason, GenerateRequest, Message, ModelConfig,
    ModelRegistry, ProviderError, ProviderKind, RemoteModelConfig, Role, Router, Usage,
};
use serde_json::{Value, json};

const KEY: &str = "sk-test-0123456789";

/// A model on `base_url` with small timeouts and backoff; `tweak` overrides
/// any key.
fn config_json(base_url: &str, tweak: Value) -> Value {
    let mut config = json!({
        "provider": "openai",
        "base_url": base_url,
        "model": "fake-model",
        "api_key": KEY,
        "connect_timeout_ms": 500,
        "request_timeout_ms": 2_000,
        "max_retries": 2,
        "retry_base_ms": 5,
        "retry_max_ms": 3_000,
        "price": { "input_per_million": "0.15", "output_per_million": "0.60" },
    });
    for (key, value) in tweak.as_object().expect("tweak is an object") {
        if value.is_null() {
            config.as_object_mut().unwrap().remove(key);
        } else {
            config[key] = value.clone();
        }
    }
    config
}

fn model(base_url: &str, tweak: Value) -> RemoteModel {
    let mut config = config_json(base_url, tweak);
    config.as_object_mut().unwrap().remove("provider");
    let config: RemoteModelConfig = serde_json::from_value(config).expect("a valid remote config");
    RemoteModel::new("fake", &config).expect("the model builds")
}

fn registry(models: &[(&str, Value)]) -> Arc<ModelRegistry> {
    let models: BTreeMap<String, ModelConfig> = models
        .iter()
        .map(|(name, config)| {
            (
                (*name).to_owned(),
                serde_json::from_value(config.clone()).expect("a valid model"),
            )
        })
        .collect();
    Arc::new(ModelRegistry::from_config(&models).expect("the registry builds"))
}

fn request(user: &str) -> GenerateRequest {
    GenerateRequest {
        messages: vec![
            Message::new(Role::System, "You are terse."),
            Message::new(Role::User, user),
        ],
        max_tokens: 64,
        temperature: 0.0,
        seed: 7,
        json_schema: None,
        tools: Vec::new(),
    }
}

/// A port nobody listens on.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/v1")
}

fn gap(fake: &FakeOpenAi, first: usize, second: usize) -> Duration {
    let requests = fake.requests();
    requests[second]
        .received_at
        .duration_since(requests[first].received_at)
}

#[tokio::test]
async fn a_reply_carries_text_usage_and_the_wire_request() {
    let fake = FakeOpenAi::start().await;
    fake.push(Behavior::reply("Refund issued.", 1_000, 500));
    let model = model(&fake.base_url(), json!({}));

    let generation = model.generate(request("Where is my refund?")).await.unwrap();
    assert_eq!(generation.text, "Refund issued.");
    assert_eq!(generation.usage, Usage::tokens(1_000, 500));
    assert_eq!(generation.finish_reason, FinishReason::Stop);
    assert!(generation.timings.is_none());
    assert!(generation.latency > Duration::ZERO);

    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    let body = &sent.body;
    assert_eq!(body["model"], "fake-model");
    assert_eq!(
        body["messages"],
        json!([
            { "role": "system", "content": "You are terse." },
            { "role": "user", "content": "Where is my refund?" },
        ])
    );
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(body["seed"], 7);
    assert!(body.get("response_format").is_none());
    assert!(body.get("stream").is_none());

    // The default behaviour echoes the last user message.
    let echoed = model.generate(request("ticket 42")).await.unwrap();
    assert_eq!(echoed.text, "ticket 42");
    assert_eq!(echoed.usage, Usage::tokens(5, 2));
}

#[tokio::test]
async fn the_router_prices_a_successful_call() {
    let fake = FakeOpenAi::start().await;
    fake.push(Behavior::reply("done", 1_000, 500));
    let router = Router::new(registry(&[(
        "gpt-small",
        config_json(&fake.base_url(), json!({})),
    )]));
    let messages = [Message::new(Role::User, "hello")];

    let routed = router
        .generate(&["gpt-small".to_owned()], &messages, Overrides::default(), None)
        .await;
    let answer = routed.result.unwrap();
    assert_eq!(answer.model, "gpt-small");
    assert_eq!(answer.generation.text, "done");
    assert_eq!(routed.calls.len(), 1);
    let call = &routed.calls[0];
    assert_eq!(call.provider, Some(ProviderKind::Openai));
    assert_eq!(call.usage, Usage::tokens(1_000, 500));
    // 1000 × 0.15 + 500 × 0.60 per million = 450 µ$.
    assert_eq!(call.cost.micros, 450);
    assert!(call.error.is_none());
    // The model's defaults fill what the agent did not override.
    assert_eq!(fake.requests()[0].body["max_tokens"], 256);
}

#[tokio::test]
async fn a_429_with_retry_after_in_seconds_is_waited_out() {
    let fake = FakeOpenAi::start().await;
    fake.push(Behavior::rate_limited("1"));
    let model = model(&fake.base_url(), json!({}));

    let started = Instant::now();
    let generation = model.generate(request("rate me")).await.unwrap();
    assert_eq!(generation.text, "rate me");
    assert_eq!(fake.request_count(), 2);
    let waited = gap(&fake, 0, 1);
    assert!(
        waited >= Duration::from_millis(990),
        "retried after {waited:?}, not after Retry-After: 1"
    );
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    assert!(
        generation.latency >= Duration::from_secs(1),
        "latency counts the wait"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    for sent in fake.requests() {
        assert_eq!(
            sent.authorization.as_deref(),
            Some(format!("Bearer {KEY}").as_str())
        );
    }
}

#[tokio::test]
async fn a_503_with_retry_after_as_an_http_date_is_waited_out() {
    let fake = FakeOpenAi::start().await;
    // HTTP dates have whole seconds: 3 s ahead waits between 2 and 3 s, less
    // the time the request took.
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3));
    fake.push(Behavior::Status {
        code: 503,
        retry_after: Some(at),
        body: None,
    });
    let model = model(&fake.base_url(), json!({}));

    model.generate(request("date")).await.unwrap();
    assert_eq!(fake.request_count(), 2);
    let waited = gap(&fake, 0, 1);
    assert!(waited >= Duration::from_millis(1_500), "waited {waited:?}");
    assert!(waited < Duration::from_millis(3_900), "waited {waited:?}");
}

#[tokio::test]
async fn retry_after_is_capped_at_retry_max_ms() {
    let fake = FakeOpenAi::start().await;
    fake.push(Behavior::rate_limited("30"));
    let model = model(&fake.base_url(), json!({ "retry_max_ms": 150 }));

    model.generate(request("capped")).await.unwrap();
    let waited = gap(&fake, 0, 1);
    assert!(waited >= Duration::from_millis(150), "waited {waited:?}");
    assert!(
        waited < Duration::from_secs(2),
        "waited {waited:?}: the cap was ignored"
    );
}

#[tokio::test]
async fn rate_limits_that_persist_end_as_rate_limited() {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::rate_limited("0"));
    let model = model(&fake.base_url(), json!({}));

    let error = model.generate(request("again")).await.unwrap_err();
    match error {
        ProviderError::RateLimited { retry_after, message } => {
            assert_eq!(retry_after, Some(Duration::ZERO));
            assert_eq!(message, "fake 429: Too Many Requests");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn server_errors_are_retried_until_one_succeeds() {
    let fake = FakeOpenAi::start().await;
    fake.push(Behavior::status(500));
    fake.push(Behavior::status(502));
    let model = model(&fake.base_url(), json!({}));

    let generation = model.generate(request("third time lucky")).await.unwrap();
    assert_eq!(generation.text, "third time lucky");
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn server_errors_that_persist_end_after_max_retries_plus_one_requests() {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::Status {
        code: 500,
        retry_after: None,
        body: Some("upstream exploded".to_owned()),
    });
    let model = model(&fake.base_url(), json!({ "max_retries": 3 }));

    let error = model.generate(request("doomed")).await.unwrap_err();
    assert_eq!(
        error,
        ProviderError::Server {
            status: 500,
            message: "upstream exploded".to_owned()
        }
    );
    assert!(error.is_transient());
    assert_eq!(fake.request_count(), 4);
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::Delay(Duration::from_secs(5)));
    let model = model(
        &fake.base_url(),
        json!({ "request_timeout_ms": 200, "max_retries": 1 }),
    );

    let started = Instant::now();
    let error = model.generate(request("slow")).await.unwrap_err();
    assert_eq!(error, ProviderError::Timeout(Duration::from_millis(200)));
    assert_eq!(fake.request_count(), 2, "a timeout is retried");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::Hang);
    let model = model(
        &fake.base_url(),
        json!({ "request_timeout_ms": 150, "max_retries": 0 }),
    );

    let error = model.generate(request("hello?")).await.unwrap_err();
    assert_eq!(error, ProviderError::Timeout(Duration::from_millis(150)));
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn a_body_that_is_not_the_wire_format_is_malformed_and_not_retried() {
    let fake = FakeOpenAi::start().await;
    fake.push(Behavior::Malformed);
    let model = model(&fake.base_url(), json!({}));

    let error = model.generate(request("garbage")).await.unwrap_err();
    assert!(matches!(error, ProviderError::Malformed(_)), "got {error:?}");
    assert_eq!(fake.request_count(), 1);

    // Valid JSON of the wrong shape is malformed too.
    fake.push(Behavior::Status {
        code: 200,
        retry_after: None,
        body: Some(r#"{"hello":"world"}"#.to_owned()),
    });
    let error = model.generate(request("shape")).await.unwrap_err();
    assert!(matches!(error, ProviderError::Malformed(_)), "got {error:?}");
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let url = closed_port_url().await;
    let model = model(&url, json!({ "max_retries": 1 }));

    let error = model.generate(request("anyone?")).await.unwrap_err();
    match &error {
        ProviderError::Unreachable(message) => {
            assert!(!message.contains(KEY));
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(error.is_transient());
}

#[tokio::test]
async fn a_400_is_rejected_with_the_openai_message_and_not_retried() {
    let fake = FakeOpenAi::start().await;
    fake.push(Behavior::error(400, "max_tokens is too large: 999999."));
    let model = model(&fake.base_url(), json!({}));

    let error = model.generate(request("too long")).await.unwrap_err();
    assert_eq!(
        error,
        ProviderError::Rejected {
            status: 400,
            message: "max_tokens is too large: 999999.".to_owned()
        }
    );
    assert!(!error.is_transient());
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn an_exhausted_quota_is_rejected_not_retried() {
    let fake = FakeOpenAi::start().await;
    let body = json!({ "error": {
        "message": "You exceeded your current quota.", "type": "insufficient_quota",
        "param": null, "code": "insufficient_quota",
    }});
    fake.push(Behavior::Status {
        code: 429,
        retry_after: Some("1".to_owned()),
        body: Some(body.to_string()),
    });
    let model = model(&fake.base_url(), json!({}));

    let error = model.generate(request("broke")).await.unwrap_err();
    assert_eq!(
        error,
        ProviderError::Rejected {
            status: 429,
            message: "You exceeded your current quota.".to_owned()
        }
    );
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn the_key_never_shows_in_errors_and_is_not_sent_when_absent() {
    let fake = FakeOpenAi::start().await;
    fake.push(Behavior::error(
        401,
        &format!("Incorrect API key provided: {KEY}."),
    ));
    let with_key = model(&fake.base_url(), json!({}));
    let error = with_key.generate(request("who am i")).await.unwrap_err();
    assert_eq!(
        error,
        ProviderError::Rejected {
            status: 401,
            message: "Incorrect API key provided: <redacted>.".to_owned()
        }
    );
    assert!(!format!("{with_key:?}").contains(KEY));

    let without_key = model(&fake.base_url(), json!({ "api_key": null }));
    without_key.generate(request("anonymous")).await.unwrap();
    assert_eq!(fake.requests()[1].authorization, None);
}

#[tokio::test]
async fn a_json_schema_is_sent_as_a_strict_response_format() {
    let fake = FakeOpenAi::start().await;
    fake.push(Behavior::reply(r#"{"resolved":true}"#, 10, 4));
    let model = model(&fake.base_url(), json!({}));
    let schema = json!({
        "type": "object",
        "properties": { "resolved": { "type": "boolean" } },
        "required": ["resolved"],
        "additionalProperties": false,
    });
    let mut req = request("is it resolved?");
    req.json_schema = Some(schema.clone());

    let generation = model.generate(req).await.unwrap();
    assert_eq!(generation.text, r#"{"resolved":true}"#);
    assert_eq!(
        fake.requests()[0].body["response_format"],
        json!({ "type": "json_schema", "json_schema": { "name": "output", "schema": schema, "strict": true } })
    );
}

#[tokio::test]
async fn finish_reason_length_and_missing_usage_are_read() {
    let fake = FakeOpenAi::start().await;
    fake.push(Behavior::Truncated {
        text: "Once upon".to_owned(),
        prompt_tokens: 3,
        completion_tokens: 2,
    });
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "fake-model",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": "no usage" }, "finish_reason": "stop" }],
    });
    fake.push(Behavior::Status {
        code: 200,
        retry_after: None,
        body: Some(body.to_string()),
    });
    let model = model(&fake.base_url(), json!({}));

    let truncated = model.generate(request("tell me a story")).await.unwrap();
    assert_eq!(truncated.finish_reason, FinishReason::Length);
    let unmetered = model.generate(request("count me")).await.unwrap();
    assert_eq!(unmetered.text, "no usage");
    assert_eq!(unmetered.usage, Usage::default());
}

#[tokio::test]
async fn embeddings_come_back_in_order() {
    let fake = FakeOpenAi::start().await;
    let model = model(&fake.base_url(), json!({}));

    let texts = vec!["refund my order".to_owned(), "reset my password".to_owned()];
    let vectors = model.embed(texts.clone()).await.unwrap();
    assert_eq!(vectors, vec![embedding_of(&texts[0]), embedding_of(&texts[1])]);
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(sent.body["input"], json!(texts));
    assert_eq!(sent.body["model"], "fake-model");

    assert!(model.embed(Vec::new()).await.unwrap().is_empty());
    assert_eq!(fake.request_count(), 1);

    fake.push(Behavior::status(500));
    assert_eq!(model.embed(vec!["retried".to_owned()]).await.unwrap().len(), 1);
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn the_router_falls_back_to_the_next_model_and_records_both_calls() {
    let broken = FakeOpenAi::start().await;
    broken.set_default(Behavior::status(500));
    let healthy = FakeOpenAi::start().await;
    healthy.push(Behavior::reply("from the fallback", 2_000, 1_000));
    let router = Router::new(registry(&[
        (
            "first",
            config_json(&broken.base_url(), json!({ "max_retries": 1 })),
        ),
        ("second", config_json(&healthy.base_url(), json!({}))),
    ]));
    let route = ["first".to_owned(), "second".to_owned()];
    let messages = [Message::new(Role::User, "help")];

    let routed = router
        .generate(&route, &messages, Overrides::default(), None)
        .await;
    let answer = routed.result.unwrap();
    assert_eq!(answer.model, "second");
    assert_eq!(answer.generation.text, "from the fallback");
    assert_eq!(broken.request_count(), 2);

    assert_eq!(routed.calls.len(), 2);
    let (first, second) = (&routed.calls[0], &routed.calls[1]);
    assert_eq!(first.model, "first");
    assert!(
        matches!(first.error, Some(ProviderError::Server { status: 500, .. })),
        "{:?}",
        first.error
    );
    assert_eq!(first.usage, Usage::default());
    assert_eq!(first.cost.micros, 0);
    assert_eq!(second.model, "second");
    assert!(second.error.is_none());
    assert_eq!(second.usage, Usage::tokens(2_000, 1_000));
    // 2000 × 0.15 + 1000 × 0.60 per million = 900 µ$.
    assert_eq!(second.cost.micros, 900);
}

#[tokio::test]
async fn the_fake_counts_requests_in_flight_per_prompt() {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::Delay(Duration::from_millis(200)));
    let model = Arc::new(model(&fake.base_url(), json!({})));

    let calls: Vec<_> = ["same", "same", "same", "other"]
        .into_iter()
        .map(|prompt| {
            let model = model.clone();
            tokio::spawn(async move { model.generate(request(prompt)).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(fake.max_in_flight_per_prompt(), 3);
    assert_eq!(fake.in_flight(), 0);
    assert_eq!(fake.request_count(), 4);
}

/// An `[embeddings.NAME]` table on the fake, with `tweak` applied.
fn embedder(base_url: &str, tweak: Value) -> Arc<Embedder> {
    // A generation model's table, less what only generation has.
    let mut config = config_json(base_url, json!({ "model": "fake-embedding", "price": null }));
    for (key, value) in tweak.as_object().expect("tweak is an object") {
        config[key] = value.clone();
    }
    let embeddings: BTreeMap<String, EmbeddingConfig> = BTreeMap::from([(
        "docs".to_owned(),
        serde_json::from_value(config).expect("a valid embedding model"),
    )]);
    let registry = ModelRegistry::default()
        .with_embeddings(&embeddings)
        .expect("the registry builds");
    assert!(
        registry.get("docs").is_none(),
        "embedders are not routable models"
    );
    registry
        .embedder("docs")
        .expect("the embedder is registered")
        .clone()
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|t| (*t).to_owned()).collect()
}

#[tokio::test]
async fn an_embedder_batches_requests_and_keeps_the_order() {
    let fake = FakeOpenAi::start().await;
    let embedder = embedder(&fake.base_url(), json!({ "batch": 2 }));
    assert_eq!(embedder.name(), "docs");
    assert_eq!(embedder.provider(), ProviderKind::Openai);
    assert_eq!(embedder.dimensions(), None, "unknown until the endpoint answers");

    let input = texts(&[
        "refund policy",
        "shipping times",
        "reset password",
        "refund policy",
        "contact us",
    ]);
    let vectors = embedder.embed(&input).await.unwrap();
    let expected: Vec<Vec<f32>> = input.iter().map(|t| embedding_of(t)).collect();
    assert_eq!(vectors.len(), 5);
    for (got, want) in vectors.iter().zip(&expected) {
        let norm = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        assert!(bounty_core::vector::cosine(got, want) > 0.99999);
    }
    assert_eq!(vectors[0], vectors[3]);
    assert_eq!(embedder.dimensions(), Some(EMBEDDING_DIM));

    let sent = fake.requests();
    let batches: Vec<&Value> = sent.iter().map(|r| &r.body["input"]).collect();
    assert_eq!(
        batches,
        [
            &json!(["refund policy", "shipping times"]),
            &json!(["reset password", "refund policy"]),
            &json!(["contact us"]),
        ]
    );
    for request in &sent {
        assert_eq!(request.path, "/v1/embeddings");
        assert_eq!(request.body["model"], "fake-embedding");
        assert!(request.body.get("dimensions").is_none());
        assert_eq!(
            request.authorization.as_deref(),
            Some(format!("Bearer {KEY}").as_str())
        );
    }
    assert!(embedder.embed(&[]).await.unwrap().is_empty());
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn configured_dimensions_are_asked_for_and_enforced() {
    let fake = FakeOpenAi::start().await;
    let embedder = embedder(&fake.base_url(), json!({ "dimensions": 8 }));
    assert_eq!(embedder.dimensions(), Some(8));
    let vectors = embedder.embed(&texts(&["short vectors"])).await.unwrap();
    assert_eq!(vectors[0].len(), 8);
    assert_eq!(fake.requests()[0].body["dimensions"], 8);

    // An endpoint that ignores `dimensions` is caught, not stored.
    let body = json!({
        "object": "list",
        "model": "fake-embedding",
        "data": [{ "object": "embedding", "index": 0, "embedding": embedding_of("x") }],
        "usage": { "prompt_tokens": 1, "total_tokens": 1 },
    });
    fake.push(Behavior::Status {
        code: 200,
        retry_after: None,
        body: Some(body.to_string()),
    });
    let err = embedder.embed(&texts(&["x"])).await.unwrap_err();
    assert_eq!(
        err,
        EmbedError::Dimensions {
            expected: 8,
            got: EMBEDDING_DIM
        }
    );
    assert_eq!(err.code(), "embed_dimension_mismatch");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn remote_vectors_are_normalised_and_must_agree_in_width() {
    let fake = FakeOpenAi::start().await;
    let embedder = embedder(&fake.base_url(), json!({}));
    let answer = |vectors: Vec<Value>| {
        let data: Vec<Value> = vectors
            .into_iter()
            .enumerate()
            .map(
                |(index, embedding)| json!({ "object": "embedding", "index": index, "embedding": embedding }),
            )
            .collect();
        let body = json!({ "object": "list", "model": "m", "data": data, "usage": { "prompt_tokens": 1, "total_tokens": 1 } });
        Behavior::Status {
            code: 200,
            retry_after: None,
            body: Some(body.to_string()),
        }
    };
    // Out of order on the wire, not unit length: sorted by index, scaled.
    fake.push(Behavior::Status {
        code: 200,
        retry_after: None,
        body: Some(
            json!({
                "object": "list", "model": "m",
                "data": [
                    { "object": "embedding", "index": 1, "embedding": [0.0, 2.0] },
                    { "object": "embedding", "index": 0, "embedding": [3.0, 4.0] },
                ],
                "usage": { "prompt_tokens": 2, "total_tokens": 2 },
            })
            .to_string(),
        ),
    });
    let vectors = embedder.embed(&texts(&["a", "b"])).await.unwrap();
    assert!((vectors[0][0] - 0.6).abs() < 1e-6 && (vectors[0][1] - 0.8).abs() < 1e-6);
    assert_eq!(vectors[1], vec![0.0, 1.0]);
    assert_eq!(embedder.dimensions(), Some(2));

    fake.push(answer(vec![json!([1.0, 0.0, 0.0])]));
    assert_eq!(
        embedder.embed(&texts(&["c"])).await.unwrap_err(),
        EmbedError::Dimensions { expected: 2, got: 3 }
    );
    fake.push(answer(vec![json!([1.0, 0.0])]));
    assert_eq!(
        embedder.embed(&texts(&["a", "b"])).await.unwrap_err().code(),
        "provider_malformed_response"
    );
}

#[tokio::test]
async fn embedding_errors_map_like_generation_errors() {
    let fake = FakeOpenAi::start().await;
    let embedder = embedder(&fake.base_url(), json!({ "max_retries": 1 }));

    fake.push(Behavior::error(
        401,
        &format!("Incorrect API key provided: {KEY}"),
    ));
    let err = embedder.embed(&texts(&["hello"])).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::Provider(ProviderError::Rejected { status: 401, message }) if message.contains("<redacted>")),
        "{err:?}"
    );
    assert!(!err.to_string().contains(KEY) && !format!("{err:?}").contains(KEY));
    assert!(!err.is_transient());
    assert_eq!(fake.request_count(), 1, "a 401 is not retried");

    fake.push(Behavior::rate_limited("0"));
    assert_eq!(embedder.embed(&texts(&["hello"])).await.unwrap().len(), 1);
    assert_eq!(fake.request_count(), 3, "a 429 is retried");

    fake.push(Behavior::status(503));
    fake.push(Behavior::status(503));
    let err = embedder.embed(&texts(&["hello"])).await.unwrap_err();
    assert!(
        matches!(
            err,
            EmbedError::Provider(ProviderError::Server { status: 503, .. })
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(err.code(), "provider_server_error");

    fake.push(Behavior::Malformed);
    let err = embedder.embed(&texts(&["hello"])).await.unwrap_err();
    assert_eq!(err.code(), "provider_malformed_response");

    // The fake refuses what OpenAI refuses (here: more dimensions than the
    // model has), as a 400 naming the parameter.
    let wide = self::embedder(&fake.base_url(), json!({ "dimensions": EMBEDDING_DIM + 1 }));
    let err = wide.embed(&texts(&["hello"])).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::Provider(ProviderError::Rejected { status: 400, message }) if message.contains("dimensions")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_empty_text_is_refused_before_anything_is_sent() {
    let fake = FakeOpenAi::start().await;
    let embedder = embedder(&fake.base_url(), json!({}));
    let err = embedder.embed(&texts(&["fine", ""])).await.unwrap_err();
    assert_eq!(err, EmbedError::EmptyText { index: 1 });
    assert_eq!(err.code(), "embed_empty_text");
    assert_eq!(fake.request_count(), 0);
}

#[test]
fn embedding_configuration_errors_name_the_table_and_key() {
    let bad = |config: Value| {
        let embeddings: BTreeMap<String, EmbeddingConfig> =
            BTreeMap::from([("docs".to_owned(), serde_json::from_value(config).unwrap())]);
        ModelRegistry::default()
            .with_embeddings(&embeddings)
            .err()
            .expect("refused")
            .to_string()
    };
    assert_eq!(
        bad(json!({ "provider": "openai", "base_url": "nope", "model": "m" })),
        "embeddings.docs.base_url: \"nope\" is not an http(s) URL"
    );
    assert_eq!(
        bad(json!({ "provider": "openai", "base_url": "http://x.test/v1", "model": "m", "batch": 5000 })),
        "embeddings.docs.batch: must be between 1 and 2048"
    );
    let missing = bad(json!({ "provider": "llama", "path": "/nonexistent/e.gguf" }));
    assert!(
        missing.starts_with("embeddings.docs.path: cannot open"),
        "{missing}"
    );
}

#[tokio::test]
async fn tools_go_out_as_openai_tools_and_tool_calls_come_back() {
    let fake = FakeOpenAi::start().await;
    fake.push(Behavior::ToolCalls(vec![(
        "lookup_order".to_owned(),
        r#"{"order_id":"A1"}"#.to_owned(),
    )]));
    fake.push(Behavior::reply("It shipped.", 20, 3));
    let model = model(&fake.base_url(), json!({}));
    let parameters =
        json!({"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]});
    let mut req = request("Where is A1?");
    req.tools = vec![bounty_models::ToolDefinition {
        name: "lookup_order".into(),
        description: "Finds an order.".into(),
        parameters: parameters.clone(),
    }];
    let first = model.generate(req.clone()).await.unwrap();
    assert_eq!(first.finish_reason, FinishReason::ToolCalls);
    assert_eq!(first.tool_calls.len(), 1);
    let call = first.tool_calls[0].clone();
    assert_eq!(
        (call.name.as_str(), call.arguments.as_str()),
        ("lookup_order", r#"{"order_id":"A1"}"#)
    );
    let sent = &fake.requests()[0].body;
    assert_eq!(
        sent["tools"],
        json!([{"type": "function", "function": {"name": "lookup_order", "description": "Finds an order.", "parameters": parameters}}])
    );
    assert_eq!(sent["tool_choice"], "auto");

    // The call and its result go back in OpenAI's shapes.
    req.messages.push(Message::calling("", vec![call.clone()]));
    req.messages
        .push(Message::tool_result(call.id.clone(), r#"{"status":"shipped"}"#));
    let second = model.generate(req.clone()).await.unwrap();
    assert_eq!(
        (second.text.as_str(), second.finish_reason),
        ("It shipped.", FinishReason::Stop)
    );
    let sent = &fake.requests()[1].body["messages"];
    assert_eq!(sent[2]["role"], "assistant");
    assert_eq!(sent[2]["tool_calls"][0]["id"], json!(call.id));
    assert_eq!(sent[2]["tool_calls"][0]["type"], "function");
    assert_eq!(sent[2]["tool_calls"][0]["function"]["name"], "lookup_order");
    assert_eq!(
        sent[3],
        json!({"role": "tool", "tool_call_id": call.id, "content": r#"{"status":"shipped"}"#})
    );

    // A result that answers no call is refused, as OpenAI refuses it.
    let mut orphan = request("x");
    orphan.messages.push(Message::tool_result("call_nope", "{}"));
    let err = model.generate(orphan).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Rejected { status: 400, .. }),
        "{err:?}"
    );
}
