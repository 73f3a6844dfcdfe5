//! Writes under load: every write endpoint of the API and both webhook
//! routes, sent at once while in-process workers finish tasks, on both
//! backends, never answer a 5xx.
//!
//! On SQLite this is the test of `BEGIN IMMEDIATE` (DESIGN.md, "Traps"):
//! a transaction that read before it wrote used to fail at once with
//! "database is locked" when a finishing task held the write lock (67 of
//! 100 Stripe events answered 500 so). Every store transaction now takes
//! the write lock up front, where the busy timeout applies.

use std::time::Duration;

use bounty_billing::signature::sign as stripe_sign;
use bounty_integrations::{Delivery, IntegrationKind, sign};
use bounty_models::testing::openai::FakeOpenAi;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, TestOptions, json_of};

backend_tests!(every_write_survives_workers_finishing_tasks);

const STRIPE_SECRET: &str = "whsec_write_load";
/// Rounds of writes; each round sends one request of every kind at once.
const ROUNDS: usize = 12;

/// One request to send: method, URL, bearer key, JSON or raw body, headers.
struct Shot {
    method: Method,
    url: String,
    key: Option<String>,
    body: Option<Vec<u8>>,
    headers: Vec<(String, String)>,
    what: String,
}

async fn fire(client: reqwest::Client, shot: Shot) -> (String, u16, String) {
    let mut rb = client.request(shot.method, &shot.url);
    if let Some(k) = &shot.key {
        rb = rb.bearer_auth(k);
    }
    if let Some(body) = shot.body {
        rb = rb.header("content-type", "application/json").body(body);
    }
    for (name, value) in shot.headers {
        rb = rb.header(name, value);
    }
    let response = rb.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (shot.what, status, text)
}

async fn every_write_survives_workers_finishing_tasks(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let url = fake.base_url();
    let mut worker = crate::support::test_worker();
    worker.concurrency = 4;
    let opts = TestOptions {
        worker: Some(worker),
        stripe_webhook_secrets: vec![STRIPE_SECRET.to_owned()],
        ..TestOptions::remote_models(&[("fake", &url)])
    };
    let app = TestApp::spawn_with(backend, opts).await;
    let (account, key) = app.create_account("Acme").await;
    let test_key = json_of(
        app.create_key(&key, &json!({"name": "test", "mode": "test"}))
            .await,
        201,
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent = json_of(
        app.create_agent(
            &key,
            &json!({"name": "support", "instructions": "Answer.", "model_route": ["fake"],
                    "verifier_policy": {"verifiers": [{"kind": "rules", "non_empty": true}]}}),
        )
        .await,
        201,
    )
    .await;
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    let integration = json_of(
        app.request(Method::POST, "/v1/integrations", Some(&key))
            .json(&json!({"kind": "standard", "name": "std", "agent": "support"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let inbound = format!("{}{}", app.base, integration["inbound_url"].as_str().unwrap());
    let secret = integration["secret"].as_str().unwrap().to_owned();
    // The account's Stripe customer, for the Stripe events to name.
    let customer = app.stripe_customer(account).await;
    // Keep the workers finishing tasks the whole time.
    for i in 0..40 {
        let body = json!({"agent": "support", "input": {"subject": "busy", "body": format!("ticket {i}")}});
        json_of(app.create_task(&key, &body, None).await, 202).await;
    }
    // A resolved outcome to send signals to.
    let first = app.task(&key, "support", "first").await;
    let done = app
        .wait_for_task(&key, first["id"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    let outcome = done["outcome"]["id"].as_str().unwrap().to_owned();

    let base = app.base.clone();
    let mut set = tokio::task::JoinSet::new();
    let mut sent = 0;
    for round in 0..ROUNDS {
        let json_shot = |method: Method, path: &str, k: &str, body: Value, what: &str| Shot {
            method,
            url: format!("{base}{path}"),
            key: Some(k.to_owned()),
            body: Some(body.to_string().into_bytes()),
            headers: Vec::new(),
            what: format!("{what} #{round}"),
        };
        let ticket = json!({"type": "ticket.created", "timestamp": "2026-12-01T22:00:00Z",
            "data": {"ticket_id": format!("T-{round}"), "subject": "Refund", "body": "Where is my refund?"}})
        .to_string()
        .into_bytes();
        let solved = json!({"type": "ticket.solved", "timestamp": "2026-12-01T22:00:00Z",
            "data": {"ticket_id": format!("T-{round}")}})
        .to_string()
        .into_bytes();
        let stripe_event = json!({
            "id": format!("evt_load_{round}"), "object": "event", "type": "invoice.finalized",
            "livemode": false, "created": 1_795_000_000,
            "data": {"object": {
                "id": format!("in_load_{round}"), "object": "invoice", "customer": customer, "status": "open",
                "currency": "usd", "amount_due": 4200, "amount_paid": 0, "total": 4200,
                "period_start": 1_793_000_000, "period_end": 1_795_000_000, "hosted_invoice_url": null
            }}
        })
        .to_string()
        .into_bytes();
        let now = chrono::Utc::now();
        let shots = vec![
            json_shot(
                Method::POST,
                "/v1/tasks",
                &key,
                json!({"agent": "support", "input": {"subject": "load", "body": format!("load {round}")}}),
                "create task",
            ),
            json_shot(
                Method::POST,
                "/v1/tasks",
                &test_key,
                json!({"agent": "support", "input": {"subject": "test", "body": format!("test {round}")}}),
                "create test task",
            ),
            json_shot(
                Method::POST,
                "/v1/agents",
                &key,
                json!({"name": format!("agent-{round}"), "instructions": "Answer.", "model_route": ["fake"],
                       "verifier_policy": {"verifiers": [{"kind": "rules", "non_empty": true}]}}),
                "create agent",
            ),
            json_shot(
                Method::PATCH,
                &format!("/v1/agents/{agent_id}"),
                &key,
                json!({"instructions": format!("Answer, kindly ({round}).")}),
                "update agent",
            ),
            json_shot(
                Method::POST,
                "/v1/api-keys",
                &key,
                json!({"name": format!("key-{round}")}),
                "create key",
            ),
            json_shot(
                Method::POST,
                "/v1/integrations",
                &key,
                json!({"kind": "standard", "name": format!("std-{round}"), "agent": "support"}),
                "create integration",
            ),
            json_shot(
                Method::PUT,
                "/v1/byok",
                &key,
                json!({"base_url": "https://api.example.com/v1", "api_key": format!("sk-load-{round}")}),
                "put byok",
            ),
            json_shot(
                Method::POST,
                "/v1/credits/grants",
                &test_key,
                json!({"cu": "1"}),
                "grant test credits",
            ),
            json_shot(
                Method::POST,
                &format!("/v1/outcomes/{outcome}/signals"),
                &key,
                json!({"kind": "solved"}),
                "signal",
            ),
            Shot {
                method: Method::POST,
                url: inbound.clone(),
                key: None,
                headers: sign(
                    IntegrationKind::Standard,
                    secret.as_bytes(),
                    &ticket,
                    &Delivery {
                        id: &format!("load-c-{round}"),
                        timestamp: now,
                    },
                )
                .unwrap(),
                body: Some(ticket),
                what: format!("helpdesk created #{round}"),
            },
            Shot {
                method: Method::POST,
                url: inbound.clone(),
                key: None,
                headers: sign(
                    IntegrationKind::Standard,
                    secret.as_bytes(),
                    &solved,
                    &Delivery {
                        id: &format!("load-s-{round}"),
                        timestamp: now,
                    },
                )
                .unwrap(),
                body: Some(solved),
                what: format!("helpdesk solved #{round}"),
            },
            Shot {
                method: Method::POST,
                url: format!("{base}/webhooks/stripe"),
                key: None,
                headers: vec![(
                    "stripe-signature".to_owned(),
                    stripe_sign(&stripe_event, STRIPE_SECRET, now.timestamp()),
                )],
                body: Some(stripe_event),
                what: format!("stripe event #{round}"),
            },
        ];
        for shot in shots {
            sent += 1;
            set.spawn(fire(app.client.clone(), shot));
        }
    }
    let mut server_errors = Vec::new();
    let mut answered = 0;
    while let Some(result) = set.join_next().await {
        let (what, status, body) = result.unwrap();
        answered += 1;
        if status >= 500 {
            server_errors.push(format!("{what}: {status} {body}"));
        }
    }
    assert_eq!(answered, sent);
    assert!(
        server_errors.is_empty(),
        "{} of {sent} writes answered 5xx:\n{}",
        server_errors.len(),
        server_errors.join("\n")
    );
    // The workers were finishing tasks meanwhile, and still finish them all.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let queued = app
            .store
            .list_tasks(
                account,
                &bounty_store::TaskFilter {
                    status: Some(bounty_core::TaskStatus::Queued),
                    ..Default::default()
                },
                bounty_core::PageLimit::new(1).unwrap(),
                None,
            )
            .await
            .unwrap();
        if queued.items.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "tasks still queued");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
