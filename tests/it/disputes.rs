//! Disputes end to end, on both backends: a customer contests a charge
//! through the API and downloads the evidence pack; the operator accepts
//! (the charge reversed once) or rejects (with a reason the customer
//! reads); the plan's dispute policy accepts on its own within its days
//! and its monthly rate; a second dispute of one outcome, or a second
//! decision, is refused. After every accepted dispute, the ledger holds
//! one reversal per charge and Stripe has each meter event cancelled once.

use std::time::Duration;

use bounty_billing::disputes::{Decision, DisputeError, DisputeRequest, decide_dispute, open_dispute};
use bounty_billing::testing::FakeStripe;
use bounty_core::dispute::{DisputePolicy, DisputeReason, DisputeStatus};
use bounty_core::ledger::{BaseKind, TransferKind};
use bounty_core::plan::Plan;
use bounty_core::{Actor, ApiKeySecret};
use bounty_models::testing::openai::{Behavior, FakeOpenAi};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Connection;

use crate::support::stripe::{assert_reconciled, charge_one, drain, outcome_ids, sender, setup};
use crate::support::{Backend, TestApp, TestOptions, assert_error, json_of, test_worker, verified_at_once};

backend_tests!(
    a_customer_disputes_and_the_operator_decides,
    the_dispute_policy_accepts_within_its_limits_and_stripe_stays_exactly_once,
);

const WAIT: Duration = Duration::from_secs(30);

async fn operator_key(app: &TestApp) -> String {
    let hash = bounty_web::PasswordHasher::default()
        .hash("a long operator password")
        .unwrap();
    let op = app
        .store
        .create_operator(&bounty_store::Email::parse("ops@bounty.test").unwrap(), &hash)
        .await
        .unwrap()
        .unwrap();
    let (secret, hash, prefix) = ApiKeySecret::generate_operator();
    app.store
        .create_operator_key(op.id, "tests", &hash, &prefix)
        .await
        .unwrap();
    secret.expose().to_owned()
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.request(method, path, Some(key));
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

/// Runs a task of `agent` to its outcome; the outcome's receipt.
async fn outcome_of(app: &TestApp, key: &str, agent: &str, body: &str) -> Value {
    let task = app.task(key, agent, body).await;
    let done = app.wait_for_task(key, task["id"].as_str().unwrap(), WAIT).await;
    app.get_outcome(key, done["outcome"]["id"].as_str().unwrap())
        .await
}

fn kinds_of(outcome: &Value) -> Vec<String> {
    crate::support::transfer_kinds(outcome)
}

async fn a_customer_disputes_and_the_operator_decides(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::reply("Your refund is on its way.", 100, 10));
    let opts = TestOptions {
        worker: Some(test_worker()),
        ..TestOptions::remote_models(&[("fake", &fake.base_url())])
    };
    let app = TestApp::spawn_with(backend, opts).await;
    let (_, key) = app.create_account("Acme").await;
    for (name, policy) in [
        ("good", verified_at_once()),
        (
            "strict",
            json!({"verifiers": [{"kind": "rules", "min_length": 500}]}),
        ),
    ] {
        let body = json!({"name": name, "instructions": "Answer.", "model_route": ["fake"], "verifier_policy": policy});
        json_of(app.create_agent(&key, &body).await, 201).await;
    }
    let a = outcome_of(&app, &key, "good", "Where is my refund?").await;
    let b = outcome_of(&app, &key, "good", "Cancel my order").await;
    let failed = outcome_of(&app, &key, "strict", "Hello").await;
    assert_eq!(
        (a["status"].as_str(), failed["status"].as_str()),
        (Some("resolved"), Some("failed"))
    );
    let path = |o: &Value| format!("/v1/outcomes/{}/disputes", o["id"].as_str().unwrap());

    // Bad input names its field; an uncharged outcome cannot be disputed.
    let r = send(
        &app,
        Method::POST,
        &path(&a),
        &key,
        Some(json!({"reason": "angry"})),
    )
    .await;
    let e = assert_error(r, 422, "validation_failed").await;
    assert_eq!(e["error"]["param"], "reason", "{e}");
    let r = send(
        &app,
        Method::POST,
        &path(&failed),
        &key,
        Some(json!({"reason": "not_resolved"})),
    )
    .await;
    assert_error(r, 409, "outcome_not_disputable").await;
    let r = send(
        &app,
        Method::POST,
        "/v1/outcomes/out_nope/disputes",
        &key,
        Some(json!({"reason": "other"})),
    )
    .await;
    assert_error(r, 404, "not_found").await;

    // Without a dispute policy, a dispute waits for the operator.
    let body = json!({"reason": "not_resolved", "comment": "The customer wrote back: no refund yet."});
    let da = json_of(
        send(&app, Method::POST, &path(&a), &key, Some(body.clone())).await,
        201,
    )
    .await;
    assert_eq!(da["status"], "open", "{da}");
    assert_eq!(da["reason"], "not_resolved");
    assert!(da["decided_by"].is_null());
    // One dispute per outcome.
    let r = send(&app, Method::POST, &path(&a), &key, Some(body)).await;
    assert_error(r, 409, "dispute_exists").await;

    // The evidence pack: the stored bytes, whose SHA-256 both sides hold.
    let da_id = da["id"].as_str().unwrap();
    let r = send(
        &app,
        Method::GET,
        &format!("/v1/disputes/{da_id}/evidence"),
        &key,
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment"),
        "a download"
    );
    let header_hash = r.headers()["x-evidence-sha256"].to_str().unwrap().to_owned();
    let bytes = r.bytes().await.unwrap();
    let hash = format!("{:x}", Sha256::digest(&bytes));
    assert_eq!(
        (hash.as_str(), header_hash.as_str()),
        (da["evidence_sha256"].as_str().unwrap(), hash.as_str())
    );
    let pack: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(pack["outcome"]["id"], a["id"]);
    assert_eq!(pack["dispute"]["reason"], "not_resolved");
    assert_eq!(pack["task"]["output"], "Your refund is on its way.");
    assert_eq!(pack["receipt"][0]["event"], "verified");
    assert!(pack["receipt"][0]["verdicts"].is_array());
    assert!(pack["receipt"][0]["inputs_hash"].is_string());
    assert!(pack["outcome"]["policy_hash"].is_string());
    assert!(pack["rating"]["formula"].is_string());
    assert_eq!(pack["transfers"].as_array().unwrap().len(), 2, "{pack}");
    let text = String::from_utf8(bytes.to_vec()).unwrap().to_lowercase();
    assert!(
        !text.contains("inference") && !text.contains("margin"),
        "no cost of ours in the pack"
    );

    // The operator's queue; a customer's key does not reach it.
    let op = operator_key(&app).await;
    let queue = json_of(
        send(&app, Method::GET, "/v1/ops/disputes?status=open", &op, None).await,
        200,
    )
    .await;
    assert_eq!(queue["data"].as_array().unwrap().len(), 1, "{queue}");
    assert!(
        queue["data"][0]["opened_by"]
            .as_str()
            .unwrap()
            .starts_with("api_key:key_")
    );
    let accept = format!("/v1/ops/disputes/{da_id}/accept");
    assert_error(
        send(&app, Method::POST, &accept, &key, Some(json!({}))).await,
        404,
        "route_not_found",
    )
    .await;
    let pack_by_operator = send(
        &app,
        Method::GET,
        &format!("/v1/ops/disputes/{da_id}/evidence"),
        &op,
        None,
    )
    .await
    .bytes()
    .await
    .unwrap();
    assert_eq!(pack_by_operator, bytes, "one file for both sides");

    // Accepted: the charge is reversed, once.
    let decided = json_of(
        send(&app, Method::POST, &accept, &op, Some(json!({"reason": "Fair."}))).await,
        200,
    )
    .await;
    assert_eq!(
        (decided["status"].as_str(), decided["decider"].as_str()),
        (Some("accepted"), Some("operator:ops@bounty.test"))
    );
    assert_error(
        send(&app, Method::POST, &accept, &op, Some(json!({}))).await,
        409,
        "dispute_decided",
    )
    .await;
    let a_now = app.get_outcome(&key, a["id"].as_str().unwrap()).await;
    assert_eq!(a_now["status"], "reversed", "{a_now}");
    assert_eq!(
        kinds_of(&a_now),
        [
            "charge",
            "charge_money",
            "charge_money_reversal",
            "charge_reversal"
        ]
    );
    let events: Vec<&str> = a_now["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["verified", "dispute_opened", "dispute_accepted"]);
    let seen = json_of(
        send(&app, Method::GET, &format!("/v1/disputes/{da_id}"), &key, None).await,
        200,
    )
    .await;
    assert_eq!(
        (seen["status"].as_str(), seen["decided_by"].as_str()),
        (Some("accepted"), Some("operator"))
    );

    // Rejected: the charge stands, and the customer reads why.
    let db = json_of(
        send(
            &app,
            Method::POST,
            &path(&b),
            &key,
            Some(json!({"reason": "wrong_answer"})),
        )
        .await,
        201,
    )
    .await;
    let reject = format!("/v1/ops/disputes/{}/reject", db["id"].as_str().unwrap());
    let r = send(&app, Method::POST, &reject, &op, Some(json!({}))).await;
    assert_error(r, 422, "validation_failed").await;
    let why = "The transcript shows the order was cancelled.";
    json_of(
        send(&app, Method::POST, &reject, &op, Some(json!({"reason": why}))).await,
        200,
    )
    .await;
    let seen = json_of(
        send(
            &app,
            Method::GET,
            &format!("/v1/disputes/{}", db["id"].as_str().unwrap()),
            &key,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (seen["status"].as_str(), seen["decision_reason"].as_str()),
        (Some("rejected"), Some(why))
    );
    let b_now = app.get_outcome(&key, b["id"].as_str().unwrap()).await;
    assert_eq!(b_now["status"], "resolved");
    assert_eq!(kinds_of(&b_now), ["charge", "charge_money"]);
    let list = json_of(send(&app, Method::GET, "/v1/disputes", &key, None).await, 200).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
}

async fn the_dispute_policy_accepts_within_its_limits_and_stripe_stays_exactly_once(backend: Backend) {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn(backend).await;
    let (account, agent) = setup(&app, &stripe).await;
    // Up to half the month's charges may be accepted without an operator.
    let plan = Plan {
        disputes: Some(DisputePolicy {
            auto_accept_within_days: 7,
            max_accepted_bp: 5_000,
        }),
        ..Plan::default_value_plan()
    };
    app.store.set_plan(account, &plan).await.unwrap();
    charge_one(&app.store, account, agent, 0).await;
    charge_one(&app.store, account, agent, 1).await;
    let sender = sender(&app.store, &stripe);
    drain(&sender, &app.store).await;
    assert_eq!(stripe.meter_events().len(), 2);
    let ids = outcome_ids(&app.store, account).await;
    let request = DisputeRequest {
        reason: DisputeReason::NotResolved,
        comment: None,
        actor: Actor::ApiKey(bounty_core::ApiKeyId::new()),
    };
    // 1 of 2 charged: 50%, within the policy: accepted at once.
    let first = open_dispute(&app.store, account, ids[0], &request).await.unwrap();
    assert_eq!(first.status, DisputeStatus::Accepted);
    assert_eq!(first.decided_by, Some(Actor::DisputePolicy));
    // A second would make 100%: it waits for the operator.
    let second = open_dispute(&app.store, account, ids[1], &request).await.unwrap();
    assert_eq!(second.status, DisputeStatus::Open);
    assert!(matches!(
        open_dispute(&app.store, account, ids[1], &request).await,
        Err(DisputeError::AlreadyDisputed(id)) if id == second.id
    ));
    let operator = Actor::operator("alice").unwrap();
    decide_dispute(&app.store, account, second.id, Decision::Accept, &operator, None)
        .await
        .unwrap();
    assert!(matches!(
        decide_dispute(
            &app.store,
            account,
            second.id,
            Decision::Reject,
            &operator,
            Some("late")
        )
        .await,
        Err(DisputeError::AlreadyDecided(DisputeStatus::Accepted))
    ));
    drain(&sender, &app.store).await;
    drain(&sender, &app.store).await;
    // Exactly once: one reversal per charge in the ledger, each meter
    // event cancelled once in Stripe, nothing active, nothing pending.
    let reversals = app
        .store
        .transfers(account, None, Some(TransferKind::Reversal(BaseKind::Charge)))
        .await
        .unwrap();
    assert_eq!(reversals.len(), 2);
    let events = stripe.meter_events();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.cancelled), "{events:?}");
    assert_eq!(stripe.active_value_by_customer().values().sum::<i64>(), 0);
    let stats = app.store.outbox_stats().await.unwrap();
    assert_eq!((stats.pending, stats.failed), (0, 0));
    assert_reconciled(&app.store, &stripe).await;
    // The evidence pack never changes, whoever writes to the database.
    let tamper = "update disputes set evidence = '{}', evidence_sha256 = 'x'";
    let refused = match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(app.database_url()).await.unwrap();
            sqlx::query(tamper).execute(&mut c).await.map(|_| ())
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(app.database_url()).await.unwrap();
            sqlx::query(tamper).execute(&mut c).await.map(|_| ())
        }
    };
    let e = refused.expect_err("the evidence is immutable").to_string();
    assert!(e.contains("never changes"), "{e}");
    let (_, hash) = app
        .store
        .dispute_evidence(account, first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash, first.evidence_sha256);
}
