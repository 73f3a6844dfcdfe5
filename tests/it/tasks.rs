//! `/v1/tasks`: queueing with idempotency, listing with filters, and the
//! whole pipeline: a worker runs tasks on a remote (fake OpenAI) model and
//! on a real local llama.cpp model, with retries, fallbacks and leases.

use std::time::Duration;

use bounty_models::testing::openai::{Behavior, FakeOpenAi};
use reqwest::Method;
use serde_json::json;

use crate::support::{
    Backend, NOWHERE, TestApp, TestOptions, assert_error, json_of, local_model, remote_model, test_worker,
};

backend_tests!(
    tasks_are_committed_before_202,
    bad_tasks_are_refused_naming_the_field,
    idempotency_key_replays_and_refuses_mismatches,
    concurrent_identical_requests_create_one_task,
    list_filters_by_status_agent_and_time,
    worker_runs_a_task_on_a_remote_model,
    transient_failures_retry_then_fail_with_the_error_recorded,
    route_falls_back_to_the_next_model,
    output_that_breaks_the_schema_is_recorded,
    worker_runs_a_task_on_a_local_gguf,
    an_expired_lease_is_claimed_again_and_completes_once,
    an_expired_lease_with_no_attempts_left_fails_the_task,
);

const WAIT: Duration = Duration::from_secs(30);

async fn queue_only(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, TestOptions::remote_models(&[("fast", NOWHERE)])).await
}

async fn with_fake(backend: Backend, fake: &FakeOpenAi, max_attempts: u32) -> TestApp {
    let url = fake.base_url();
    let opts = TestOptions {
        worker: Some(test_worker()),
        max_attempts,
        ..TestOptions::remote_models(&[("fake", &url), ("down", NOWHERE)])
    };
    TestApp::spawn_with(backend, opts).await
}

async fn tasks_are_committed_before_202(backend: Backend) {
    let app = queue_only(backend).await;
    let (account, key) = app.create_account("Acme").await;
    let agent = app.agent(&key, "support", &["fast"], None).await;
    let body = json!({
        "agent": "support",
        "input": {
            "subject": "Refund",
            "body": "Where is my refund?",
            "customer": {"email": "ann@example.com", "name": "Ann"},
            "metadata": {"plan": "pro", "seats": 3}
        },
        "external_ref": "zd-1042"
    });
    let task = json_of(app.create_task(&key, &body, None).await, 202).await;
    assert!(task["id"].as_str().unwrap().starts_with("task_"));
    assert_eq!(task["status"], "queued");
    assert_eq!(task["agent"]["id"], agent["id"]);
    assert_eq!(task["agent"]["version"], 1);
    assert_eq!(task["input"], body["input"]);
    assert_eq!(task["external_ref"], "zd-1042");
    assert_eq!(task["attempts"], 0);
    assert_eq!(task["max_attempts"], 3);
    // Committed: the store has it, without going through the API.
    let id = task["id"].as_str().unwrap().parse().unwrap();
    let stored = app
        .store
        .get_task(account, id)
        .await
        .unwrap()
        .expect("the task is committed");
    assert_eq!(stored.status, bounty_core::TaskStatus::Queued);
    // By agent id too.
    let by_id = json!({"agent": agent["id"], "input": {"body": "hi"}});
    json_of(app.create_task(&key, &by_id, None).await, 202).await;
    let shown = app.get_task(&key, task["id"].as_str().unwrap()).await;
    assert_eq!(shown["status"], "queued");
    assert_eq!(shown["attempt_history"], json!([]));
    assert_eq!(shown["model_calls"], json!([]));
}

async fn bad_tasks_are_refused_naming_the_field(backend: Backend) {
    let app = queue_only(backend).await;
    let (_, key) = app.create_account("Acme").await;
    app.agent(&key, "support", &["fast"], None).await;
    let e = assert_error(
        app.create_task(&key, &json!({"agent": "nobody", "input": {"body": "x"}}), None)
            .await,
        422,
        "unknown_agent",
    )
    .await;
    assert_eq!(e["error"]["param"], "agent");
    assert!(e["error"]["message"].as_str().unwrap().contains("nobody"));
    let e = assert_error(
        app.create_task(&key, &json!({"agent": "support", "input": {"body": "  "}}), None)
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(e["error"]["param"], "input.body");
    let e = assert_error(
        app.create_task(
            &key,
            &json!({"agent": "support", "input": {"subject": "x"}}),
            None,
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(e["error"]["message"].as_str().unwrap().contains("body"), "{e}");
    let e = assert_error(
        app.create_task(
            &key,
            &json!({"agent": "support", "input": {"body": "x", "colour": 1}}),
            None,
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(e["error"]["message"].as_str().unwrap().contains("colour"), "{e}");
    let e = assert_error(
        app.create_task(
            &key,
            &json!({"agent": "support", "input": {"body": "x"}}),
            Some("has space"),
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(e["error"]["param"], "Idempotency-Key");
    let resp = app
        .request(Method::GET, "/v1/tasks/task_nope", Some(&key))
        .send()
        .await
        .unwrap();
    assert_error(resp, 404, "not_found").await;
    let resp = app
        .request(Method::GET, "/v1/tasks?status=done", Some(&key))
        .send()
        .await
        .unwrap();
    let e = assert_error(resp, 400, "invalid_request").await;
    assert_eq!(e["error"]["param"], "status");
    let resp = app
        .request(Method::GET, "/v1/tasks?created_from=yesterday", Some(&key))
        .send()
        .await
        .unwrap();
    let e = assert_error(resp, 400, "invalid_request").await;
    assert_eq!(e["error"]["param"], "created_from");
}

async fn idempotency_key_replays_and_refuses_mismatches(backend: Backend) {
    let app = queue_only(backend).await;
    let (_, key) = app.create_account("Acme").await;
    app.agent(&key, "support", &["fast"], None).await;
    let body = json!({"agent": "support", "input": {"body": "hello", "metadata": {"a": 1, "b": 2}}});
    let first = app.create_task(&key, &body, Some("req-1")).await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = json_of(first, 202).await;
    // The same request, keys in another order: the same task.
    let again = json!({"input": {"metadata": {"b": 2, "a": 1}, "body": "hello"}, "agent": "support"});
    let second = app.create_task(&key, &again, Some("req-1")).await;
    assert_eq!(second.headers().get("idempotent-replayed").unwrap(), "true");
    let second = json_of(second, 202).await;
    assert_eq!(first["id"], second["id"]);
    // The key with a different request.
    let other = json!({"agent": "support", "input": {"body": "something else"}});
    let e = assert_error(
        app.create_task(&key, &other, Some("req-1")).await,
        422,
        "idempotency_mismatch",
    )
    .await;
    assert_eq!(e["error"]["param"], "Idempotency-Key");
    // Keys are per account.
    let (_, bob) = app.create_account("Bob").await;
    app.agent(&bob, "support", &["fast"], None).await;
    let bobs = json_of(app.create_task(&bob, &body, Some("req-1")).await, 202).await;
    assert_ne!(bobs["id"], first["id"]);
    let list = json_of(
        app.request(Method::GET, "/v1/tasks", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

async fn concurrent_identical_requests_create_one_task(backend: Backend) {
    let app = queue_only(backend).await;
    let (_, key) = app.create_account("Acme").await;
    app.agent(&key, "support", &["fast"], None).await;
    let body = json!({"agent": "support", "input": {"body": "once"}});
    let mut handles = Vec::new();
    for _ in 0..12 {
        let (client, url, key, body) = (
            app.client.clone(),
            format!("{}/v1/tasks", app.base),
            key.clone(),
            body.clone(),
        );
        handles.push(tokio::spawn(async move {
            let resp = client
                .post(url)
                .bearer_auth(key)
                .header("idempotency-key", "same")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 202);
            resp.json::<serde_json::Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.push(h.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every request got the same task: {ids:?}");
    let list = json_of(
        app.request(Method::GET, "/v1/tasks", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

async fn list_filters_by_status_agent_and_time(backend: Backend) {
    let app = queue_only(backend).await;
    let (_, key) = app.create_account("Acme").await;
    let a = app.agent(&key, "a", &["fast"], None).await;
    app.agent(&key, "b", &["fast"], None).await;
    let before = chrono::Utc::now();
    for i in 0..5 {
        app.task(&key, if i % 2 == 0 { "a" } else { "b" }, &format!("t{i}"))
            .await;
    }
    let after = chrono::Utc::now();
    let (app, key) = (&app, &key);
    let get = |q: String| async move {
        json_of(
            app.request(Method::GET, &format!("/v1/tasks?{q}"), Some(key))
                .send()
                .await
                .unwrap(),
            200,
        )
        .await
    };
    let all = get("limit=100".into()).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 5);
    assert_eq!(all["data"][0]["input"]["body"], "t4", "newest first");
    let by_agent = get("agent=a".into()).await;
    assert_eq!(by_agent["data"].as_array().unwrap().len(), 3);
    let by_id = get(format!("agent={}", a["id"].as_str().unwrap())).await;
    assert_eq!(by_id["data"], by_agent["data"]);
    assert_eq!(
        get("status=queued".into()).await["data"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        get("status=completed".into()).await["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let enc = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let window = get(format!("created_from={}&created_to={}", enc(before), enc(after))).await;
    assert_eq!(window["data"].as_array().unwrap().len(), 5);
    let none = get(format!("created_to={}", enc(before))).await;
    assert_eq!(none["data"].as_array().unwrap().len(), 0);
    // Pages of 2 cover everything once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".to_owned(),
        };
        let page = get(q).await;
        for t in page["data"].as_array().unwrap() {
            seen.push(t["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    seen.dedup();
    assert_eq!(seen.len(), 5);
    let e = assert_error(
        app.request(Method::GET, "/v1/tasks?agent=ghost", Some(key))
            .send()
            .await
            .unwrap(),
        422,
        "unknown_agent",
    )
    .await;
    assert_eq!(e["error"]["param"], "agent");
}

async fn worker_runs_a_task_on_a_remote_model(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::reply("Your refund was sent on Monday.", 1200, 300));
    let app = with_fake(backend, &fake, 3).await;
    let (_, key) = app.create_account("Acme").await;
    app.agent(&key, "support", &["fake"], None).await;
    let task = app.task(&key, "support", "Where is my refund?").await;
    let done = app.wait_for_task(&key, task["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"]["text"], "Your refund was sent on Monday.");
    assert_eq!(done["output"]["model"], "fake");
    assert!(done["output"]["schema_errors"].is_null());
    assert!(done["error"].is_null());
    assert_eq!(done["attempts"], 1);
    let transcript = done["transcript"].as_array().unwrap();
    assert_eq!(transcript.len(), 3);
    assert_eq!(transcript[0]["role"], "system");
    assert_eq!(transcript[1]["role"], "user");
    assert!(
        transcript[1]["content"]
            .as_str()
            .unwrap()
            .contains("Where is my refund?")
    );
    assert_eq!(
        transcript[2],
        json!({"role": "assistant", "content": "Your refund was sent on Monday."})
    );
    let calls = done["model_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["model"], "fake");
    assert_eq!(calls[0]["provider"], "openai");
    assert_eq!(calls[0]["prompt_tokens"], 1200);
    assert_eq!(calls[0]["completion_tokens"], 300);
    // 1200 × 0.15 + 300 × 0.60 per million = 180 + 180 = 360 micros: our
    // cost, recorded, never shown to the customer.
    assert_eq!(app.call_costs(&key, &done).await, [360]);
    assert!(calls[0].get("cost_micros").is_none() && calls[0].get("byok_cost").is_none());
    assert_eq!(calls[0]["cache_hit"], false);
    assert_eq!(calls[0]["byok"], false);
    assert!(calls[0]["error"].is_null());
    assert_eq!(
        done["usage"],
        json!({"model_calls": 1, "prompt_tokens": 1200, "completion_tokens": 300, "tool_ms": 0})
    );
    let history = done["attempt_history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["outcome"], "completed");
    // The model saw the agent's instructions and the ticket, with our key.
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Bearer sk-test-secret")
    );
    assert_eq!(
        requests[0].body["messages"][0]["content"],
        "You are a helpful support agent."
    );
    let listed = json_of(
        app.request(Method::GET, "/v1/tasks?status=completed", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(
        listed["data"][0].get("transcript").is_none(),
        "lists show summaries"
    );
}

async fn transient_failures_retry_then_fail_with_the_error_recorded(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::error(500, "the model server fell over"));
    let app = with_fake(backend, &fake, 2).await;
    let (_, key) = app.create_account("Acme").await;
    app.agent(&key, "support", &["fake"], None).await;
    let task = app.task(&key, "support", "hello").await;
    let done = app.wait_for_task(&key, task["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error"]["code"], "provider_server_error");
    assert!(
        done["error"]["message"].as_str().unwrap().contains("500"),
        "{done}"
    );
    assert_eq!(done["attempts"], 2);
    assert!(done["output"].is_null());
    let history = done["attempt_history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["outcome"], "retry");
    assert_eq!(history[1]["outcome"], "failed");
    let calls = done["model_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "one recorded call per attempt");
    assert!(
        calls
            .iter()
            .all(|c| c["error"]["code"] == "provider_server_error")
    );
    // Each attempt's provider retried once (max_retries = 1): 4 requests.
    assert_eq!(fake.request_count(), 4);

    // A permanent refusal is not retried at the task level.
    fake.set_default(Behavior::error(400, "bad request"));
    let task = app.task(&key, "support", "again").await;
    let done = app.wait_for_task(&key, task["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["error"]["code"], "provider_rejected");
    assert_eq!(done["attempts"], 1);
}

async fn route_falls_back_to_the_next_model(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = with_fake(backend, &fake, 1).await;
    let (_, key) = app.create_account("Acme").await;
    app.agent(&key, "support", &["down", "fake"], None).await;
    let task = app.task(&key, "support", "echo me").await;
    let done = app.wait_for_task(&key, task["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"]["model"], "fake");
    let calls = done["model_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["model"], "down");
    assert_eq!(calls[0]["error"]["code"], "provider_unreachable");
    assert_eq!(calls[1]["model"], "fake");
    assert!(calls[1]["error"].is_null());
    assert!(calls[1]["completion_tokens"].as_i64().unwrap() > 0);
}

async fn output_that_breaks_the_schema_is_recorded(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    fake.push(Behavior::reply("sure, here you go", 10, 5));
    fake.push(Behavior::reply(r#"{"reply": "Refund sent."}"#, 10, 5));
    let app = with_fake(backend, &fake, 3).await;
    let (_, key) = app.create_account("Acme").await;
    let schema =
        json!({"type": "object", "properties": {"reply": {"type": "string"}}, "required": ["reply"]});
    app.agent(&key, "support", &["fake"], Some(schema.clone())).await;
    let bad = app.task(&key, "support", "one").await;
    let bad = app.wait_for_task(&key, bad["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(bad["status"], "completed");
    let errors = bad["output"]["schema_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].as_str().unwrap().contains("not valid JSON"), "{bad}");
    assert!(bad["output"]["json"].is_null());
    let good = app.task(&key, "support", "two").await;
    let good = app.wait_for_task(&key, good["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(good["output"]["schema_errors"], json!([]));
    assert_eq!(good["output"]["json"], json!({"reply": "Refund sent."}));
    // The schema was asked for through the API.
    let req = &fake.requests()[1].body;
    assert_eq!(req["response_format"]["type"], "json_schema");
    assert_eq!(req["response_format"]["json_schema"]["schema"], schema);
}

async fn worker_runs_a_task_on_a_local_gguf(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = bounty_models::testing::gguf::write_tiny_llama(dir.path()).unwrap();
    let models = vec![("tiny".to_owned(), local_model(&path))];
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            models,
            worker: Some(test_worker()),
            ..Default::default()
        },
    )
    .await;
    let (_, key) = app.create_account("Acme").await;
    let schema =
        json!({"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"]});
    app.agent(&key, "plain", &["tiny"], None).await;
    // Tokens of the tiny model are single characters: give the object room.
    let structured = json!({
        "name": "structured", "instructions": "Answer.", "model_route": ["tiny"],
        "output_schema": schema, "params": {"max_tokens": 64}
    });
    json_of(app.create_agent(&key, &structured).await, 201).await;
    let plain = app.task(&key, "plain", "hello there").await;
    let structured = app.task(&key, "structured", "is it done").await;
    let plain = app.wait_for_task(&key, plain["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(plain["status"], "completed", "{plain}");
    let calls = plain["model_calls"].as_array().unwrap();
    assert_eq!(calls[0]["provider"], "llama");
    assert!(calls[0]["prompt_tokens"].as_i64().unwrap() > 0);
    assert_eq!(
        calls[0]["completion_tokens"], 16,
        "max_tokens from the model's defaults"
    );
    assert!(
        app.call_costs(&key, &plain).await[0] >= 1,
        "local calls cost their CPU time"
    );
    let structured = app
        .wait_for_task(&key, structured["id"].as_str().unwrap(), WAIT)
        .await;
    assert_eq!(structured["status"], "completed", "{structured}");
    assert_eq!(
        structured["output"]["schema_errors"],
        json!([]),
        "grammar-constrained output matches: {structured}"
    );
    assert!(matches!(
        structured["output"]["json"]["answer"].as_str(),
        Some("yes" | "no")
    ));
}

async fn an_expired_lease_is_claimed_again_and_completes_once(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    // No in-process worker: this test plays the crashed worker itself.
    let app = TestApp::spawn_with(backend, TestOptions::remote_models(&[("fake", &fake.base_url())])).await;
    let (_, key) = app.create_account("Acme").await;
    app.agent(&key, "support", &["fake"], None).await;
    let task = app.task(&key, "support", "hello").await;
    let id = task["id"].as_str().unwrap();
    // A worker claims it with a short lease, then "crashes".
    let crashed = app
        .store
        .claim_tasks("crashed-worker", 10, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(crashed.len(), 1);
    assert_eq!(crashed[0].attempt, 1);
    // While the lease holds, nobody else can claim it.
    assert!(
        app.store
            .claim_tasks("other", 10, Duration::from_secs(10))
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // A live worker now claims and completes it.
    let registry = std::sync::Arc::new(
        bounty_models::ModelRegistry::from_config(
            &[(
                "fake".to_owned(),
                serde_json::from_value(remote_model(&fake.base_url())).unwrap(),
            )]
            .into_iter()
            .collect(),
        )
        .unwrap(),
    );
    let worker = bounty_agents::Worker::new(
        app.store.clone(),
        bounty_models::Router::new(registry),
        test_worker(),
    );
    let cancel = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(worker.run(cancel.clone()));
    let done = app.wait_for_task(&key, id, WAIT).await;
    cancel.cancel();
    running.await.unwrap();
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["attempts"], 2);
    let history = done["attempt_history"].as_array().unwrap();
    assert_eq!(history[0]["worker"], "crashed-worker");
    assert_eq!(history[0]["outcome"], "lease_expired");
    assert_eq!(history[1]["outcome"], "completed");
    // The crashed worker comes back and tries to finish: fenced out.
    let late = bounty_store::AttemptEnd::Failed(bounty_store::TaskError {
        code: "late".into(),
        message: "too late".into(),
    });
    assert!(
        !bounty_agents::finish::finish_attempt(&app.store, &crashed[0], &late, &[])
            .await
            .unwrap()
    );
    assert!(
        !app.store
            .renew_lease(&crashed[0], Duration::from_secs(10))
            .await
            .unwrap()
    );
    let after = app.get_task(&key, id).await;
    assert_eq!(after["status"], "completed");
    assert_eq!(fake.request_count(), 1);
}

async fn an_expired_lease_with_no_attempts_left_fails_the_task(backend: Backend) {
    let opts = TestOptions {
        max_attempts: 1,
        ..TestOptions::remote_models(&[("fast", NOWHERE)])
    };
    let app = TestApp::spawn_with(backend, opts).await;
    let (account, key) = app.create_account("Acme").await;
    app.agent(&key, "support", &["fast"], None).await;
    let task = app.task(&key, "support", "hello").await;
    let id = task["id"].as_str().unwrap();
    let claimed = app
        .store
        .claim_tasks("doomed", 10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // Not yet expired: nothing to fail.
    assert!(
        bounty_agents::finish::fail_expired_tasks(&app.store)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    // Expired, and its one attempt is spent: not claimable, but failed.
    assert!(
        app.store
            .claim_tasks("other", 10, Duration::from_secs(10))
            .await
            .unwrap()
            .is_empty()
    );
    let failed = bounty_agents::finish::fail_expired_tasks(&app.store)
        .await
        .unwrap();
    assert_eq!(failed, vec![(account, claimed[0].task.id)]);
    let shown = app.get_task(&key, id).await;
    assert_eq!(shown["status"], "failed");
    assert_eq!(shown["error"]["code"], "lease_expired");
    assert_eq!(shown["attempt_history"][0]["outcome"], "lease_expired");
    assert!(shown["finished_at"].is_string());
    assert!(
        bounty_agents::finish::fail_expired_tasks(&app.store)
            .await
            .unwrap()
            .is_empty(),
        "only once"
    );
}
