//! Billing integrity, black-box on both backends: test mode is a book of
//! its own that never reaches live figures, caps or the live Stripe
//! sender; no customer key can reverse its own charge; a helpdesk signal
//! applies only where the policy awaits one; one ticket is one task, even
//! when its `created` event arrives under several delivery ids at once.

use std::time::Duration;

use bounty_core::ApiKeyMode;
use bounty_integrations::{Delivery, IntegrationKind, sign};
use bounty_models::testing::openai::FakeOpenAi;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, TestOptions, assert_error, json_of, test_worker};

backend_tests!(
    test_mode_runs_the_whole_path_in_a_book_of_its_own,
    a_customer_key_cannot_reverse_its_own_charge,
    a_signal_applies_only_when_the_policy_awaits_one,
    one_ticket_is_one_task_whatever_its_delivery_ids,
);

const WAIT: Duration = Duration::from_secs(30);

async fn app(backend: Backend, fake: &FakeOpenAi) -> TestApp {
    let url = fake.base_url();
    let opts = TestOptions {
        worker: Some(test_worker()),
        ..TestOptions::remote_models(&[("fake", &url)])
    };
    TestApp::spawn_with(backend, opts).await
}

/// An agent whose verifiers alone decide: resolved and charged at once.
async fn verified_agent(app: &TestApp, key: &str, name: &str) {
    let body = json!({
        "name": name,
        "instructions": "Answer the ticket.",
        "model_route": ["fake"],
        "verifier_policy": {"verifiers": [{"kind": "rules", "non_empty": true}]},
    });
    json_of(app.create_agent(key, &body).await, 201).await;
}

/// A test-mode key of the account `live_key` belongs to.
async fn test_key(app: &TestApp, live_key: &str) -> String {
    let created = json_of(
        app.create_key(live_key, &json!({"name": "test", "mode": "test"}))
            .await,
        201,
    )
    .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("bk_test_"), "{created}");
    secret
}

async fn finished_outcome(app: &TestApp, key: &str, agent: &str, body: &str) -> (Value, Value) {
    let task = app.task(key, agent, body).await;
    let done = app.wait_for_task(key, task["id"].as_str().unwrap(), WAIT).await;
    let outcome = app
        .get_outcome(key, done["outcome"]["id"].as_str().expect("an outcome"))
        .await;
    (done, outcome)
}

async fn get(app: &TestApp, key: &str, path: &str) -> reqwest::Response {
    app.request(Method::GET, path, Some(key)).send().await.unwrap()
}

async fn test_mode_runs_the_whole_path_in_a_book_of_its_own(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, &fake).await;
    let (account, live) = app.create_account("Acme").await;
    let test = test_key(&app, &live).await;
    verified_agent(&app, &live, "support").await;
    // A live cap smaller than one charge: test tasks never count against it.
    app.store.set_cap(account, Some(1), &[50, 100]).await.unwrap();

    let mut test_outcomes = Vec::new();
    for i in 0..3 {
        let (task, outcome) = finished_outcome(&app, &test, "support", &format!("test ticket {i}")).await;
        assert_eq!(task["livemode"], false, "{task}");
        assert_eq!(outcome["livemode"], false, "{outcome}");
        // The whole rating and ledger path ran, in the test book.
        assert_eq!(outcome["status"], "resolved", "{outcome}");
        assert!(outcome["amount_micros"].as_i64().unwrap() > 0, "{outcome}");
        assert!(
            crate::support::transfer_kinds(&outcome).contains(&"charge".to_owned()),
            "{outcome}"
        );
        test_outcomes.push(outcome["id"].as_str().unwrap().to_owned());
    }

    // Live keys see live data only, test keys test data only.
    let live_tasks = json_of(get(&app, &live, "/v1/tasks").await, 200).await;
    assert_eq!(live_tasks["data"], json!([]), "{live_tasks}");
    let test_tasks = json_of(get(&app, &test, "/v1/tasks").await, 200).await;
    assert_eq!(test_tasks["data"].as_array().unwrap().len(), 3);
    let live_outcomes = json_of(get(&app, &live, "/v1/outcomes").await, 200).await;
    assert_eq!(live_outcomes["data"], json!([]));
    assert_error(
        get(&app, &live, &format!("/v1/outcomes/{}", test_outcomes[0])).await,
        404,
        "not_found",
    )
    .await;

    // Live usage, spend and credits are untouched; test mode has its own.
    let live_usage = json_of(get(&app, &live, "/v1/usage").await, 200).await;
    assert_eq!(live_usage["total"]["outcomes_resolved"], 0, "{live_usage}");
    let test_usage = json_of(get(&app, &test, "/v1/usage").await, 200).await;
    assert_eq!(test_usage["total"]["outcomes_resolved"], 3, "{test_usage}");
    let live_info = app.store.billing_info(account, ApiKeyMode::Live).await.unwrap();
    assert_eq!(live_info.month_spend.micros, 0);
    let test_info = app.store.billing_info(account, ApiKeyMode::Test).await.unwrap();
    assert!(test_info.month_spend.micros > 0);
    assert!(
        app.store.billing_events(account).await.unwrap().is_empty(),
        "no cap alert from test charges"
    );

    // Test credits pay test charges only.
    let granted = app
        .request(Method::POST, "/v1/credits/grants", Some(&test))
        .json(&json!({"cu": "10"}))
        .send()
        .await
        .unwrap();
    json_of(granted, 201).await;
    let live_credits = json_of(get(&app, &live, "/v1/credits").await, 200).await;
    assert_eq!(live_credits["grants"], json!([]), "a live key sees no test grant");
    assert_eq!(live_credits["balance_cu"], "0.000");
    let test_credits = json_of(get(&app, &test, "/v1/credits").await, 200).await;
    assert_eq!(test_credits["grants"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.store
            .billing_info(account, ApiKeyMode::Live)
            .await
            .unwrap()
            .credit_balance
            .milli(),
        0
    );

    // No meter event for the live sender; the test-mode sender's rows go to
    // the account's test-mode customer.
    let live_claims = app
        .store
        .claim_outbox(ApiKeyMode::Live, 100, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        live_claims
            .iter()
            .all(|c| c.item.kind != bounty_core::outbox::OutboxKind::MeterEvent),
        "{live_claims:?}"
    );
    let test_claims = app
        .store
        .claim_outbox(ApiKeyMode::Test, 100, Duration::from_secs(60))
        .await
        .unwrap();
    let meter_events = test_claims
        .iter()
        .filter(|c| c.item.kind == bounty_core::outbox::OutboxKind::MeterEvent)
        .count();
    assert_eq!(meter_events, 3, "{test_claims:?}");
    assert!(test_claims.iter().all(|c| c.item.mode == ApiKeyMode::Test));
    assert!(
        test_claims
            .iter()
            .all(|c| !c.item.idempotency_key.starts_with("meter_event:")
                || c.item.idempotency_key.contains(":test:")),
        "test keys never collide with live ones in Stripe"
    );
    assert_eq!(
        test_claims
            .iter()
            .filter(|c| c.item.kind == bounty_core::outbox::OutboxKind::StripeCustomer)
            .count(),
        1,
        "one test-mode customer, made with the first test charge"
    );

    // The live cap still refuses live work; test work is never refused by it.
    let body = json!({"agent": "support", "input": {"subject": "s", "body": "b"}});
    json_of(app.create_task(&test, &body, None).await, 202).await;
}

async fn a_customer_key_cannot_reverse_its_own_charge(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, &fake).await;
    let (account, key) = app.create_account("Acme").await;
    verified_agent(&app, &key, "support").await;
    let (_, outcome) = finished_outcome(&app, &key, "support", "Where is my order?").await;
    assert_eq!(outcome["status"], "resolved");
    let id = outcome["id"].as_str().unwrap().to_owned();

    let refused = app
        .request(Method::POST, &format!("/v1/outcomes/{id}/signals"), Some(&key))
        .json(&json!({"kind": "goodwill_reversal"}))
        .send()
        .await
        .unwrap();
    assert_error(refused, 403, "operator_only").await;
    let after = app.get_outcome(&key, &id).await;
    assert_eq!(after["status"], "resolved", "nothing changed: {after}");
    assert_eq!(after["transfers"], outcome["transfers"]);

    // The operator's reversal records who and why.
    let applied = bounty_billing::settle::goodwill_reversal(
        &app.store,
        account,
        id.parse().unwrap(),
        bounty_core::Actor::operator("alice").unwrap(),
        "the answer was wrong",
    )
    .await
    .unwrap();
    assert_eq!(applied.outcome.status.as_str(), "reversed");
    let after = app.get_outcome(&key, &id).await;
    let last = after["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event"], "goodwill_reversal", "{after:#}");
    assert_eq!(last["actor"], "operator:alice");
    let reason = last["reason"].as_str().unwrap();
    assert!(
        reason.contains("alice") && reason.contains("the answer was wrong"),
        "{reason}"
    );
}

async fn a_signal_applies_only_when_the_policy_awaits_one(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, &fake).await;
    let (_, key) = app.create_account("Acme").await;
    verified_agent(&app, &key, "support").await;
    let (_, outcome) = finished_outcome(&app, &key, "support", "Where is my order?").await;
    let id = outcome["id"].as_str().unwrap().to_owned();
    let refused = app
        .request(Method::POST, &format!("/v1/outcomes/{id}/signals"), Some(&key))
        .json(&json!({"kind": "reopened"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(refused, 409, "signal_not_applicable").await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("external"),
        "{body}"
    );
    let after = app.get_outcome(&key, &id).await;
    assert_eq!(after["status"], "resolved", "still charged: {after}");
    assert_eq!(after["transfers"], outcome["transfers"]);
    let last = after["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event"], "signal_refused", "recorded: {after:#}");
    assert!(
        last["actor"].as_str().unwrap().starts_with("api_key:key_"),
        "{last}"
    );
}

/// The headers a Standard Webhooks sender puts on `body`.
fn signed(secret: &str, body: &[u8], delivery_id: &str) -> Vec<(String, String)> {
    sign(
        IntegrationKind::Standard,
        secret.as_bytes(),
        body,
        &Delivery {
            id: delivery_id,
            timestamp: chrono::Utc::now(),
        },
    )
    .unwrap()
}

async fn deliver(app: &TestApp, inbound: &str, secret: &str, body: &[u8], delivery_id: &str) -> Value {
    send_delivery(
        app.client.clone(),
        format!("{}{inbound}", app.base),
        secret.to_owned(),
        body.to_vec(),
        delivery_id.to_owned(),
    )
    .await
}

async fn send_delivery(
    client: reqwest::Client,
    url: String,
    secret: String,
    body: Vec<u8>,
    delivery_id: String,
) -> Value {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.clone());
    for (name, value) in signed(&secret, &body, &delivery_id) {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    // 202 when the delivery made the task, 200 for everything else.
    let expected = if body["result"] == "task_created" {
        202
    } else {
        200
    };
    assert_eq!(status, expected, "{body}");
    body
}

async fn one_ticket_is_one_task_whatever_its_delivery_ids(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, &fake).await;
    let (account, key) = app.create_account("Acme").await;
    verified_agent(&app, &key, "support").await;
    let created = json_of(
        app.request(Method::POST, "/v1/integrations", Some(&key))
            .json(&json!({"kind": "standard", "name": "std", "agent": "support"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    let inbound = created["inbound_url"].as_str().unwrap().to_owned();
    let ticket = |t: &str| {
        json!({"type": "ticket.created", "timestamp": "2026-12-01T22:00:00Z",
               "data": {"ticket_id": t, "subject": "Refund", "body": "Where is my refund?"}})
        .to_string()
        .into_bytes()
    };
    // The same ticket's `created`, sent again under another delivery id.
    let first = deliver(&app, &inbound, &secret, &ticket("T-1"), "d-1").await;
    assert_eq!(first["result"], "task_created", "{first}");
    let again = deliver(&app, &inbound, &secret, &ticket("T-1"), "d-2").await;
    assert_eq!(again["result"], "task_exists", "{again}");
    assert_eq!(again["task_id"], first["task_id"]);

    // Many deliveries of one new ticket at once, each with its own id.
    let body = ticket("T-2");
    let mut set = tokio::task::JoinSet::new();
    for i in 0..12 {
        set.spawn(send_delivery(
            app.client.clone(),
            format!("{}{inbound}", app.base),
            secret.clone(),
            body.clone(),
            format!("storm-{i}"),
        ));
    }
    let mut answers = Vec::new();
    while let Some(answer) = set.join_next().await {
        answers.push(answer.unwrap());
    }
    let created_now = answers.iter().filter(|a| a["result"] == "task_created").count();
    assert_eq!(created_now, 1, "{answers:?}");
    let ids: std::collections::BTreeSet<String> = answers.iter().map(|a| a["task_id"].to_string()).collect();
    assert_eq!(ids.len(), 1, "every answer names the one task: {answers:?}");

    let tasks = app
        .store
        .list_tasks(
            account,
            &Default::default(),
            bounty_core::PageLimit::new(100).unwrap(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(tasks.items.len(), 2, "one task per ticket");
    // Wait for both to finish: two tickets, two charges.
    for t in &tasks.items {
        app.wait_for_task(&key, &t.id.to_string(), WAIT).await;
    }
    let charges = app
        .store
        .transfers(account, None, Some(bounty_core::ledger::TransferKind::Charge))
        .await
        .unwrap();
    assert_eq!(charges.len(), 2);
}
