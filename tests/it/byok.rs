//! Bring your own key, end to end on both backends: the key is sealed and
//! never returned; calls on it go to the account's own endpoint with its
//! key, are flagged BYOK and are not our inference cost; the plan's BYOK
//! fee replaces or adds to the CU price; a refused or missing key fails
//! the task with a clear code and never charges. The endpoint is the
//! customer's, so it may not be on our own network (loopback, private,
//! link-local, metadata): refused at `PUT` and again at every call, unless
//! `tools.allow_private` (which the other tests set: the fakes listen on
//! loopback).

use std::time::Duration;

use bounty_core::plan::{ByokFee, ByokFeeMode};
use bounty_core::{ComputeUnits, Plan};
use bounty_models::testing::openai::{Behavior, FakeOpenAi};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, TestOptions, assert_error, json_of, test_worker, transfer_kinds};

backend_tests!(
    the_key_is_sealed_and_never_returned,
    byok_calls_are_flagged_and_are_not_our_cost,
    the_plan_fee_replaces_or_adds_to_the_cu_price,
    a_refused_or_missing_key_fails_the_task_uncharged,
    endpoints_on_our_own_network_are_refused_unless_allowed,
    a_private_endpoint_is_refused_at_call_time_too,
);

const WAIT: Duration = Duration::from_secs(30);

/// `own` runs on each account's own key; `house` on ours, at the same price.
/// Private addresses allowed: the fakes listen on loopback.
async fn app(backend: Backend, house: &FakeOpenAi) -> TestApp {
    app_with(backend, house, true).await
}

async fn app_with(backend: Backend, house: &FakeOpenAi, allow_private: bool) -> TestApp {
    let opts = TestOptions {
        allow_private,
        worker: Some(test_worker()),
        models: vec![
            (
                "own".to_owned(),
                json!({
                    "provider": "openai",
                    "byok": true,
                    "model": "customer-gpt",
                    "request_timeout_ms": 2000,
                    "max_retries": 0,
                    "price": {"input_per_million": "2.50", "output_per_million": "10.00"}
                }),
            ),
            (
                "house".to_owned(),
                crate::support::remote_model(&house.base_url()),
            ),
        ],
        ..TestOptions::default()
    };
    TestApp::spawn_with(backend, opts).await
}

async fn put_byok(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.request(Method::PUT, "/v1/byok", Some(key))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Sets the account's own key for its endpoint `own`.
async fn own_key(app: &TestApp, key: &str, own: &FakeOpenAi, secret: &str) {
    let body = json!({"base_url": own.base_url(), "api_key": secret});
    json_of(put_byok(app, key, body).await, 200).await;
}

async fn agent(app: &TestApp, key: &str, route: &[&str]) {
    let body = json!({
        "name": "support",
        "instructions": "Answer the ticket.",
        "model_route": route,
        "verifier_policy": {"verifiers": [{"kind": "rules", "non_empty": true}]},
    });
    json_of(app.create_agent(key, &body).await, 201).await;
}

async fn run(app: &TestApp, key: &str) -> (Value, Value) {
    let task = app.task(key, "support", "Where is my refund?").await;
    let task = app.wait_for_task(key, task["id"].as_str().unwrap(), WAIT).await;
    let outcome = match task["outcome"]["id"].as_str() {
        Some(id) => app.get_outcome(key, id).await,
        None => Value::Null,
    };
    (task, outcome)
}

async fn the_key_is_sealed_and_never_returned(backend: Backend) {
    let house = FakeOpenAi::start().await;
    let app = app(backend, &house).await;
    let (account, key) = app.create_account("Acme").await;
    assert_error(
        app.request(Method::GET, "/v1/byok", Some(&key))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    let secret = "sk-customer-0123456789abcd";
    let set = json_of(
        put_byok(
            &app,
            &key,
            json!({"base_url": "https://llm.acme.test/v1/", "api_key": secret}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(set["base_url"], "https://llm.acme.test/v1");
    assert_eq!(set["key_hint"], "…abcd");
    assert!(!set.to_string().contains(secret));
    let got = json_of(
        app.request(Method::GET, "/v1/byok", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(!got.to_string().contains(secret), "{got}");
    // Stored sealed: the row does not hold the key.
    let record = app.store.byok(account).await.unwrap().unwrap();
    assert!(!record.sealed_key.contains(secret));
    assert!(!record.sealed_key.contains("0123456789"));
    // Another account sees none of it.
    let (_, other) = app.create_account("Globex").await;
    assert_error(
        app.request(Method::GET, "/v1/byok", Some(&other))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;
    // Bad input names the field.
    let bad = put_byok(&app, &key, json!({"base_url": "ftp://x", "api_key": "k"})).await;
    assert_eq!(
        assert_error(bad, 422, "validation_failed").await["error"]["param"],
        "base_url"
    );
    let bad = put_byok(&app, &key, json!({"base_url": "https://x/v1", "api_key": "a b"})).await;
    assert_eq!(
        assert_error(bad, 422, "validation_failed").await["error"]["param"],
        "api_key"
    );
    let deleted = app
        .request(Method::DELETE, "/v1/byok", Some(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(app.store.byok(account).await.unwrap().is_none());
}

async fn byok_calls_are_flagged_and_are_not_our_cost(backend: Backend) {
    let house = FakeOpenAi::start().await;
    let own = FakeOpenAi::start().await;
    own.set_default(Behavior::reply("Your refund was issued.", 1000, 100));
    let app = app(backend, &house).await;
    let (_, key) = app.create_account("Acme").await;
    own_key(&app, &key, &own, "sk-acme-own").await;
    agent(&app, &key, &["own"]).await;
    let (task, outcome) = run(&app, &key).await;
    // The account's endpoint got the call, with the account's key.
    let asked = own.requests();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].authorization.as_deref(), Some("Bearer sk-acme-own"));
    assert_eq!(asked[0].body["model"], "customer-gpt");
    assert_eq!(house.request_count(), 0);
    let call = &task["model_calls"][0];
    assert_eq!(call["byok"], true);
    // 1000 × 2.50 + 100 × 10.00 per million: recorded, paid by the customer.
    assert_eq!(call["byok_cost"], json!({"micros": 3_500, "currency": "USD"}));
    assert_eq!(task["usage"]["byok_cost_micros"]["USD"], 3_500);
    assert!(task["usage"].get("cost_micros").is_none());
    assert_eq!(outcome["status"], "resolved");
    assert_eq!(app.inference_cost(&key, &outcome).await, 0, "not our cost");
    assert_eq!(transfer_kinds(&outcome), ["charge", "charge_money"]);
    assert_eq!(
        outcome["amount_micros"], 1_000_000,
        "no BYOK fee in the plan: the CU price"
    );
}

async fn the_plan_fee_replaces_or_adds_to_the_cu_price(backend: Backend) {
    let house = FakeOpenAi::start().await;
    let own = FakeOpenAi::start().await;
    own.set_default(Behavior::reply("Done.", 100, 10));
    house.set_default(Behavior::reply("Done.", 100, 10));
    let app = app(backend, &house).await;
    let (account, key) = app.create_account("Acme").await;
    own_key(&app, &key, &own, "sk-own").await;
    agent(&app, &key, &["own"]).await;
    let with_fee = |mode| Plan {
        byok_fee: Some(ByokFee {
            cu: ComputeUnits::from_milli(200),
            mode,
        }),
        ..Plan::default_value_plan()
    };
    app.store
        .set_plan(account, &with_fee(ByokFeeMode::Instead))
        .await
        .unwrap();
    let (_, outcome) = run(&app, &key).await;
    assert_eq!(outcome["cu"], "0.200", "the fee instead of 1 CU");
    assert_eq!(outcome["amount_micros"], 200_000);
    app.store
        .set_plan(account, &with_fee(ByokFeeMode::OnTop))
        .await
        .unwrap();
    let (_, outcome) = run(&app, &key).await;
    assert_eq!(outcome["cu"], "1.200", "1 CU and the fee");
    assert_eq!(outcome["amount_micros"], 1_200_000);
    // A task on our own model is rated without the fee.
    let id = json_of(
        app.request(Method::GET, "/v1/agents", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let patched = app
        .request(Method::PATCH, &format!("/v1/agents/{id}"), Some(&key))
        .json(&json!({"model_route": ["house"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let (task, outcome) = run(&app, &key).await;
    assert_eq!(task["model_calls"][0]["byok"], false);
    assert_eq!(outcome["cu"], "1.000");
    assert!(
        app.inference_cost(&key, &outcome).await > 0,
        "our model: our cost"
    );
    assert!(
        task["model_calls"][0].get("byok_cost").is_none(),
        "our cost is never shown"
    );
}

async fn a_refused_or_missing_key_fails_the_task_uncharged(backend: Backend) {
    let house = FakeOpenAi::start().await;
    let own = FakeOpenAi::start().await;
    own.set_default(Behavior::error(401, "Incorrect API key provided"));
    let app = app(backend, &house).await;
    let (_, key) = app.create_account("Acme").await;
    agent(&app, &key, &["own"]).await;
    // No key set at all.
    let (task, outcome) = run(&app, &key).await;
    assert_eq!(task["status"], "failed");
    assert_eq!(task["error"]["code"], "byok_key_missing", "{task}");
    assert_eq!(outcome["status"], "failed");
    assert_eq!(outcome["transfers"], json!([]));
    // A revoked key: the endpoint answers 401.
    own_key(&app, &key, &own, "sk-revoked").await;
    let (task, outcome) = run(&app, &key).await;
    assert_eq!(task["status"], "failed");
    assert_eq!(task["attempts"], 1, "not retried: a refused key stays refused");
    assert_eq!(task["error"]["code"], "byok_key_rejected", "{task}");
    assert!(
        task["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PUT /v1/byok")
    );
    assert!(!task.to_string().contains("sk-revoked"), "the key is never shown");
    assert_eq!(outcome["status"], "failed");
    assert_eq!(outcome["transfers"], json!([]));
    assert_eq!(outcome["charge_summary"], "No charge — not resolved");
}

/// Our own network, as a customer might name it.
fn private_endpoints(port: u16) -> Vec<String> {
    vec![
        format!("http://127.0.0.1:{port}/v1"),
        "http://169.254.169.254/".to_owned(),
        format!("http://localhost:{port}/v1"),
        "http://[::1]/".to_owned(),
    ]
}

async fn endpoints_on_our_own_network_are_refused_unless_allowed(backend: Backend) {
    let house = FakeOpenAi::start().await;
    let own = FakeOpenAi::start().await;
    let port = reqwest::Url::parse(&own.base_url()).unwrap().port().unwrap();
    let app = app_with(backend, &house, false).await;
    let (account, key) = app.create_account("Acme").await;
    for url in private_endpoints(port) {
        let refused = put_byok(&app, &key, json!({"base_url": url, "api_key": "sk-own"})).await;
        let body = assert_error(refused, 422, "outbound_address_refused").await;
        assert_eq!(body["error"]["param"], "base_url", "{url}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            ["loopback", "cloud metadata"]
                .iter()
                .any(|class| message.contains(class)),
            "{url}: {message}"
        );
        assert!(!message.contains("sk-own"));
    }
    assert!(app.store.byok(account).await.unwrap().is_none(), "nothing stored");
    // A public endpoint is accepted, and so is a name that does not
    // resolve today (the call checks whatever it resolves to then).
    for url in ["https://1.1.1.1/v1", "https://llm.acme.invalid/v1"] {
        json_of(
            put_byok(&app, &key, json!({"base_url": url, "api_key": "sk-own"})).await,
            200,
        )
        .await;
    }

    // With `tools.allow_private`, all of them are accepted.
    let open = app_with(backend, &house, true).await;
    let (_, key) = open.create_account("Acme").await;
    for url in private_endpoints(port) {
        let set = json_of(
            put_byok(&open, &key, json!({"base_url": url, "api_key": "sk-own"})).await,
            200,
        )
        .await;
        assert_eq!(set["base_url"], url.trim_end_matches('/'));
    }
}

/// An endpoint stored before its name pointed at our network (or one whose
/// DNS changed after `PUT`): the call refuses it, never reaching it, and
/// the task fails uncharged and is not retried.
async fn a_private_endpoint_is_refused_at_call_time_too(backend: Backend) {
    let house = FakeOpenAi::start().await;
    let own = FakeOpenAi::start().await;
    own.set_default(Behavior::reply("Your refund was issued.", 1000, 100));
    let port = reqwest::Url::parse(&own.base_url()).unwrap().port().unwrap();
    let app = app_with(backend, &house, false).await;
    let (account, key) = app.create_account("Acme").await;
    agent(&app, &key, &["own"]).await;
    let keyring = app.keyring.as_ref().expect("a master key");
    let aad = bounty_store::byok_sealing_aad(account);
    for url in [
        format!("http://localhost:{port}/v1"),
        format!("http://127.0.0.1:{port}/v1"),
    ] {
        let sealed = keyring.seal(b"sk-own", aad.as_bytes()).unwrap();
        app.store.set_byok(account, &url, &sealed, "-own").await.unwrap();
        let (task, outcome) = run(&app, &key).await;
        assert_eq!(task["status"], "failed", "{url}: {task}");
        assert_eq!(task["error"]["code"], "outbound_address_refused", "{url}: {task}");
        assert_eq!(task["attempts"], 1, "not retried: the address stays refused");
        assert!(!task.to_string().contains("sk-own"), "the key is never shown");
        assert_eq!(outcome["status"], "failed");
        assert_eq!(outcome["transfers"], json!([]));
    }
    assert_eq!(own.request_count(), 0, "the endpoint was never reached");
}
