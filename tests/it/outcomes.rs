//! Outcomes end to end: a verified task is resolved and charged exactly
//! once with a receipt; a failing one costs nothing; a reopen inside the
//! window reverses the charge; external signals and window lapses;
//! prepaid credits; spending caps under concurrency.

use std::sync::Arc;
use std::time::Duration;

use bounty_core::ManualClock;
use bounty_models::testing::openai::{Behavior, FakeOpenAi};
use bounty_store::{DatabaseOptions, Store};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, TestOptions, assert_error, json_of, test_worker, verified_at_once};

backend_tests!(
    a_verified_task_is_resolved_with_a_receipt_and_one_charge,
    a_task_the_verifier_rejects_costs_nothing,
    a_failed_task_has_a_failed_outcome,
    a_reopen_inside_the_window_reverses_the_charge,
    external_signals_decide_provisional_outcomes,
    a_hand_off_to_a_person_is_escalated_and_never_charged,
    a_lapsed_window_applies_the_lapse_decision,
    credits_are_drawn_before_anything_is_metered,
    the_spending_cap_holds_under_concurrent_tasks,
    usage_reports_charges_and_never_our_cost,
    a_customer_key_never_receives_our_cost_or_margin,
    an_effort_plan_charges_the_work_of_resolved_tasks_only,
    cap_alerts_are_recorded_once_per_threshold,
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

async fn agent_with_policy(app: &TestApp, key: &str, name: &str, policy: Value) -> Value {
    let body = json!({
        "name": name,
        "instructions": "Answer the ticket.",
        "model_route": ["fake"],
        "verifier_policy": policy,
    });
    json_of(app.create_agent(key, &body).await, 201).await
}

/// An agent `support` whose outcomes wait on the helpdesk: a non-empty
/// reply, then a signal (or the window's lapse) decides.
async fn agent_awaiting_the_helpdesk(app: &TestApp, key: &str) -> Value {
    agent_with_policy(
        app,
        key,
        "support",
        json!({"verifiers": [{"kind": "rules", "non_empty": true}, {"kind": "external"}]}),
    )
    .await
}

/// An agent `passing` whose verifier passes at once, and an agent `strict`
/// whose verifier wants `min_length` characters (which the fake's short
/// replies never reach).
async fn agents_that_pass_and_fail(app: &TestApp, key: &str, passing: &str, min_length: u32) -> Value {
    let agent = agent_with_policy(app, key, passing, verified_at_once()).await;
    agent_with_policy(
        app,
        key,
        "strict",
        json!({"verifiers": [{"kind": "rules", "min_length": min_length}]}),
    )
    .await;
    agent
}

/// Runs a task to the end and returns its outcome's receipt.
async fn outcome_of(app: &TestApp, key: &str, agent: &str, body: &str) -> Value {
    let task = app.task(key, agent, body).await;
    let done = app.wait_for_task(key, task["id"].as_str().unwrap(), WAIT).await;
    let id = done["outcome"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no outcome: {done}"))
        .to_owned();
    get_outcome(app, key, &id).await
}

async fn get_outcome(app: &TestApp, key: &str, id: &str) -> Value {
    app.get_outcome(key, id).await
}

async fn signal(app: &TestApp, key: &str, id: &str, body: Value) -> reqwest::Response {
    app.request(Method::POST, &format!("/v1/outcomes/{id}/signals"), Some(key))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn kinds(outcome: &Value) -> Vec<String> {
    crate::support::transfer_kinds(outcome)
}

async fn a_verified_task_is_resolved_with_a_receipt_and_one_charge(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::reply("Your refund was issued today.", 1000, 100));
    let app = app(backend, &fake).await;
    let (account, key) = app.create_account("Acme").await;
    let policy =
        json!({"verifiers": [{"kind": "rules", "non_empty": true, "forbidden_phrases": ["as an AI"]}]});
    agent_with_policy(&app, &key, "support", policy).await;
    let out = outcome_of(&app, &key, "support", "Where is my refund?").await;
    assert_eq!(out["status"], "resolved", "{out}");
    assert_eq!(out["outcome_type"], "ticket.resolved");
    assert_eq!(out["cu"], "1.000");
    assert_eq!(out["amount_micros"], 1_000_000, "default plan: 1 CU at 1 USD");
    assert_eq!(out["currency"], "USD");
    // 1000 × 0.15 + 100 × 0.60 per million = 210 micros of inference:
    // recorded for the operator, never shown to the customer.
    assert_eq!(app.inference_cost(&key, &out).await, 210);
    assert!(out.get("inference_cost_micros").is_none() && out.get("margin_micros").is_none());
    let events = out["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event"], "verified");
    assert_eq!(events[0]["to_status"], "resolved");
    assert_eq!(events[0]["effect"], "charge");
    assert_eq!(events[0]["policy_version"], 1);
    let verdicts = events[0]["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 1);
    assert_eq!(verdicts[0]["verifier"], "rules");
    assert_eq!(verdicts[0]["decision"], "pass");
    assert_eq!(verdicts[0]["inputs_hash"].as_str().unwrap().len(), 64);
    assert!(
        out["rating"]["formula"]
            .as_str()
            .unwrap()
            .contains("ticket.resolved"),
        "{out}"
    );
    assert!(
        out["charge_summary"]
            .as_str()
            .unwrap()
            .starts_with("Charged 1.000 CU")
    );
    assert_eq!(kinds(&out), vec!["charge", "charge_money"]);
    let by_kind = |kind: &str| {
        out["transfers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["kind"] == kind)
            .unwrap()
            .clone()
    };
    let charge = &by_kind("charge");
    assert_eq!(
        (charge["amount"].as_i64(), charge["unit"].as_str()),
        (Some(1000), Some("mCU"))
    );
    let money = &by_kind("charge_money");
    assert_eq!(
        (money["amount"].as_i64(), money["unit"].as_str()),
        (Some(1_000_000), Some("USD"))
    );
    // The charge and its meter event were committed together; the event
    // waits in the outbox (no Stripe sender yet: ledger-only).
    let outbox = app.store.outbox_of(account).await.unwrap();
    let kinds: Vec<&str> = outbox.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "stripe_customer",
            "stripe_subscription",
            "stripe_subscription_item",
            "meter_event"
        ]
    );
    let meter = &outbox[3];
    assert_eq!(meter.status, bounty_core::outbox::OutboxStatus::Pending);
    assert_eq!(meter.payload["identifier"], charge["id"]);
    assert_eq!(meter.payload["value"], 1000);
    assert_eq!(meter.payload["event_name"], "bounty_compute_units");
    assert_eq!(
        meter.idempotency_key,
        format!("meter_event:{}", charge["id"].as_str().unwrap())
    );
    // Listed, and linked from the task.
    let list = json_of(
        app.request(Method::GET, "/v1/outcomes?status=resolved", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list["data"][0].get("events").is_none(), "lists show summaries");
}

async fn a_task_the_verifier_rejects_costs_nothing(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::reply("As an AI, I cannot help.", 50, 10));
    let app = app(backend, &fake).await;
    let (_, key) = app.create_account("Acme").await;
    let policy = json!({"verifiers": [{"kind": "rules", "forbidden_phrases": ["as an ai"]}]});
    agent_with_policy(&app, &key, "support", policy).await;
    let out = outcome_of(&app, &key, "support", "help").await;
    assert_eq!(out["status"], "failed", "{out}");
    assert_eq!(out["cu"], "0.000");
    assert_eq!(out["amount_micros"], 0);
    assert_eq!(out["transfers"], json!([]));
    assert_eq!(out["charge_summary"], "No charge — not resolved");
    assert_eq!(
        app.inference_cost(&key, &out).await,
        14,
        "the failed work's cost is still recorded"
    );
    let verdict = &out["events"][0]["verdicts"][0];
    assert_eq!(verdict["decision"], "fail");
    assert!(
        verdict["reason"].as_str().unwrap().contains("as an ai"),
        "{verdict}"
    );
    // Signals cannot resurrect a failed outcome.
    let id = out["id"].as_str().unwrap();
    let after = json_of(signal(&app, &key, id, json!({"kind": "solved"})).await, 200).await;
    assert_eq!(after["status"], "failed");
    assert_eq!(after["transfers"], json!([]));
    // A goodwill reversal is the operator's alone.
    assert_error(
        signal(&app, &key, id, json!({"kind": "goodwill_reversal"})).await,
        403,
        "operator_only",
    )
    .await;
}

async fn a_failed_task_has_a_failed_outcome(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::error(400, "bad request"));
    let app = app(backend, &fake).await;
    let (_, key) = app.create_account("Acme").await;
    agent_with_policy(&app, &key, "support", verified_at_once()).await;
    let out = outcome_of(&app, &key, "support", "help").await;
    assert_eq!(out["status"], "failed");
    assert_eq!(out["events"][0]["event"], "task_failed");
    assert!(
        out["events"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("bad request"),
        "{out}"
    );
    assert_eq!(out["transfers"], json!([]));
}

async fn a_reopen_inside_the_window_reverses_the_charge(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, &fake).await;
    let (account, key) = app.create_account("Acme").await;
    // Assumed resolution: charged when the helpdesk says solved, reversed
    // when it reopens the ticket inside the window.
    agent_awaiting_the_helpdesk(&app, &key).await;
    let out = outcome_of(&app, &key, "support", "help").await;
    assert_eq!(out["status"], "provisional");
    let id = out["id"].as_str().unwrap();
    let solved = json_of(signal(&app, &key, id, json!({"kind": "solved"})).await, 200).await;
    assert_eq!(solved["status"], "resolved", "{solved}");
    assert_error(
        signal(&app, &key, id, json!({"kind": "csat"})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        signal(&app, &key, id, json!({"kind": "maybe"})).await,
        422,
        "validation_failed",
    )
    .await;
    let reopened = json_of(signal(&app, &key, id, json!({"kind": "reopened"})).await, 200).await;
    assert_eq!(reopened["status"], "failed", "{reopened}");
    assert_eq!(reopened["cu"], "0.000");
    assert_eq!(
        kinds(&reopened),
        vec![
            "charge",
            "charge_money",
            "charge_money_reversal",
            "charge_reversal"
        ]
    );
    let t = reopened["transfers"].as_array().unwrap();
    for rev in t
        .iter()
        .filter(|t| t["kind"].as_str().unwrap().ends_with("_reversal"))
    {
        let orig = t
            .iter()
            .find(|o| o["id"] == rev["reverses"])
            .expect("a reversal names its original");
        assert_eq!(rev["amount"], orig["amount"]);
        assert_eq!(rev["debit"], orig["credit"]);
        assert_eq!(rev["credit"], orig["debit"]);
    }
    let last = reopened["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event"], "signal");
    assert_eq!(last["signal"], json!({"kind": "reopened"}));
    assert_eq!(last["effect"], "reverse");
    let charge = t.iter().find(|t| t["kind"] == "charge").unwrap();
    let outbox = app.store.outbox_of(account).await.unwrap();
    let reversal = outbox
        .iter()
        .find(|o| o.kind == bounty_core::outbox::OutboxKind::MeterEventReversal)
        .expect("the meter event is undone");
    assert_eq!(
        reversal.payload["identifier"], charge["id"],
        "names the original meter event"
    );
    assert_eq!(reversal.payload["value"], 1000);
    // A second reopen changes nothing and charges nothing.
    let again = json_of(signal(&app, &key, id, json!({"kind": "reopened"})).await, 200).await;
    assert_eq!(again["transfers"].as_array().unwrap().len(), 4);
    let (_, bob) = app.create_account("Bob").await;
    assert_error(
        signal(&app, &bob, id, json!({"kind": "solved"})).await,
        404,
        "not_found",
    )
    .await;
}

async fn external_signals_decide_provisional_outcomes(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, &fake).await;
    let (_, key) = app.create_account("Acme").await;
    agent_awaiting_the_helpdesk(&app, &key).await;
    let a = outcome_of(&app, &key, "support", "one").await;
    assert_eq!(a["status"], "provisional", "{a}");
    assert_eq!(
        a["transfers"],
        json!([]),
        "nothing is charged while the window is open"
    );
    let verdicts = a["events"][0]["verdicts"].as_array().unwrap();
    assert_eq!(verdicts[1]["decision"], "pending");
    let solved = json_of(
        signal(&app, &key, a["id"].as_str().unwrap(), json!({"kind": "solved"})).await,
        200,
    )
    .await;
    assert_eq!(solved["status"], "resolved");
    assert_eq!(kinds(&solved), vec!["charge", "charge_money"]);

    let b = outcome_of(&app, &key, "support", "two").await;
    let low = json_of(
        signal(
            &app,
            &key,
            b["id"].as_str().unwrap(),
            json!({"kind": "csat", "score": 2}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(low["status"], "failed");
    assert_eq!(low["transfers"], json!([]));

    let c = outcome_of(&app, &key, "support", "three").await;
    let high = json_of(
        signal(
            &app,
            &key,
            c["id"].as_str().unwrap(),
            json!({"kind": "csat", "score": 5}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(high["status"], "resolved");
}

async fn a_hand_off_to_a_person_is_escalated_and_never_charged(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, &fake).await;
    let (account, key) = app.create_account("Acme").await;
    agent_awaiting_the_helpdesk(&app, &key).await;
    // Waiting on the helpdesk, which hands the ticket to a person.
    let a = outcome_of(&app, &key, "support", "one").await;
    assert_eq!(a["status"], "provisional", "{a}");
    let a_id = a["id"].as_str().unwrap();
    let handed = json_of(signal(&app, &key, a_id, json!({"kind": "escalated"})).await, 200).await;
    assert_eq!(handed["status"], "escalated", "{handed}");
    assert_eq!(handed["transfers"], json!([]), "escalation is never charged");
    assert_eq!(handed["cu"], "0.000");
    assert!(
        handed["charge_summary"]
            .as_str()
            .unwrap()
            .contains("handed to a person"),
        "{handed}"
    );
    // Final: a later solve is only evidence.
    let late = json_of(signal(&app, &key, a_id, json!({"kind": "solved"})).await, 200).await;
    assert_eq!(late["status"], "escalated");
    assert_eq!(late["transfers"], json!([]));
    assert_error(
        signal(&app, &key, a_id, json!({"kind": "escalated", "score": 3})).await,
        422,
        "validation_failed",
    )
    .await;
    // Charged, then handed to a person inside the window: reversed once.
    let b = outcome_of(&app, &key, "support", "two").await;
    let b_id = b["id"].as_str().unwrap();
    let solved = json_of(signal(&app, &key, b_id, json!({"kind": "solved"})).await, 200).await;
    assert_eq!(kinds(&solved), vec!["charge", "charge_money"]);
    let handed = json_of(signal(&app, &key, b_id, json!({"kind": "escalated"})).await, 200).await;
    assert_eq!(handed["status"], "escalated", "{handed}");
    assert_eq!(
        kinds(&handed),
        vec![
            "charge",
            "charge_money",
            "charge_money_reversal",
            "charge_reversal"
        ]
    );
    let again = json_of(signal(&app, &key, b_id, json!({"kind": "escalated"})).await, 200).await;
    assert_eq!(again["transfers"].as_array().unwrap().len(), 4, "reversed once");
    let outbox = app.store.outbox_of(account).await.unwrap();
    assert_eq!(
        outbox
            .iter()
            .filter(|o| o.kind == bounty_core::outbox::OutboxKind::MeterEventReversal)
            .count(),
        1
    );
    // Usage counts the hand-offs apart from failures.
    let usage = json_of(
        app.request(Method::GET, "/v1/usage?group_by=agent", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(usage["total"]["outcomes_escalated"], 2, "{usage}");
    assert_eq!(usage["total"]["outcomes_failed"], 0, "{usage}");
    assert_eq!(usage["total"]["outcomes_resolved"], 0, "{usage}");
}

/// Moves a second store's clock past the window to lapse provisional
/// outcomes, as a worker's sweep would.
async fn a_lapsed_window_applies_the_lapse_decision(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, &fake).await;
    let (account, key) = app.create_account("Acme").await;
    agent_with_policy(
        &app,
        &key,
        "lapse-pass",
        json!({"verifiers": [{"kind": "external"}], "window_hours": 1}),
    )
    .await;
    agent_with_policy(
        &app,
        &key,
        "lapse-fail",
        json!({"verifiers": [{"kind": "external"}], "window_hours": 1, "lapse_decision": "fail"}),
    )
    .await;
    let pass = outcome_of(&app, &key, "lapse-pass", "one").await;
    let fail = outcome_of(&app, &key, "lapse-fail", "two").await;
    assert_eq!(pass["status"], "provisional");
    let clock = Arc::new(ManualClock::new(
        chrono::Utc::now() + chrono::Duration::minutes(30),
    ));
    let later = Store::connect(
        &DatabaseOptions {
            url: app.database_url().to_owned(),
            max_connections: 2,
            acquire_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
        },
        clock.clone(),
    )
    .await
    .unwrap();
    assert!(
        bounty_billing::settle::lapse_outcomes(&later, 10)
            .await
            .unwrap()
            .is_empty(),
        "the window is still open"
    );
    clock.advance(chrono::Duration::minutes(31));
    assert_eq!(
        bounty_billing::settle::lapse_outcomes(&later, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    let pass = get_outcome(&app, &key, pass["id"].as_str().unwrap()).await;
    assert_eq!(pass["status"], "resolved", "no reopen means resolved: {pass:#}");
    assert_eq!(pass["events"][1]["event"], "window_lapsed");
    assert_eq!(kinds(&pass), vec!["charge", "charge_money"]);
    let fail = get_outcome(&app, &key, fail["id"].as_str().unwrap()).await;
    assert_eq!(fail["status"], "failed");
    assert_eq!(fail["transfers"], json!([]));
    // After the window (by the later clock), a reopen is refused, recorded,
    // and reverses nothing.
    let late = bounty_billing::settle::apply_signal(
        &later,
        account,
        pass["id"].as_str().unwrap().parse().unwrap(),
        bounty_core::outcome::Signal::Reopened,
        bounty_core::Actor::Worker,
    )
    .await;
    assert!(
        matches!(late, Err(bounty_billing::settle::OutcomeError::NotApplicable(ref why)) if why.contains("window")),
        "{late:?}"
    );
    let pass = get_outcome(&app, &key, pass["id"].as_str().unwrap()).await;
    assert_eq!(pass["status"], "resolved");
    assert_eq!(pass["events"][2]["event"], "signal_refused", "{pass:#}");
    assert_eq!(kinds(&pass), vec!["charge", "charge_money"]);
    assert!(
        bounty_billing::settle::lapse_outcomes(&later, 10)
            .await
            .unwrap()
            .is_empty(),
        "lapsed once"
    );
    later.close().await;
}

async fn credits_are_drawn_before_anything_is_metered(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, &fake).await;
    let (account, key) = app.create_account("Acme").await;
    agent_with_policy(&app, &key, "support", verified_at_once()).await;
    app.store
        .grant_credits(
            account,
            bounty_core::ApiKeyMode::Live,
            bounty_core::ComputeUnits::parse_decimal("1.5").unwrap(),
            Some("pilot".into()),
        )
        .await
        .unwrap();
    let credits = json_of(
        app.request(Method::GET, "/v1/credits", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(credits["balance_cu"], "1.500");
    assert_eq!(credits["grants"][0]["memo"], "pilot");
    let first = outcome_of(&app, &key, "support", "one").await;
    assert_eq!(
        kinds(&first),
        vec!["credit_draw"],
        "fully paid by credits: nothing metered"
    );
    assert_eq!(first["transfers"][0]["amount"], 1000);
    let second = outcome_of(&app, &key, "support", "two").await;
    let k = kinds(&second);
    assert_eq!(k, vec!["charge", "charge_money", "credit_draw"], "{second}");
    let t = |kind: &str| {
        second["transfers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["kind"] == kind)
            .unwrap()["amount"]
            .clone()
    };
    assert_eq!(t("credit_draw"), 500);
    assert_eq!(t("charge"), 500);
    assert_eq!(t("charge_money"), 500_000);
    let credits = json_of(
        app.request(Method::GET, "/v1/credits", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(credits["balance_cu"], "0.000", "never below zero");
    // An operator's goodwill reversal gives the drawn credits back.
    bounty_billing::settle::goodwill_reversal(
        &app.store,
        account,
        first["id"].as_str().unwrap().parse().unwrap(),
        bounty_core::Actor::operator("ops").unwrap(),
        "pilot ticket answered wrongly",
    )
    .await
    .unwrap();
    let credits = json_of(
        app.request(Method::GET, "/v1/credits", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(credits["balance_cu"], "1.000");
    // Live keys cannot grant themselves credits.
    let resp = app
        .request(Method::POST, "/v1/credits/grants", Some(&key))
        .json(&json!({"cu": "100"}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 403, "live_key_cannot_grant").await;
}

async fn the_spending_cap_holds_under_concurrent_tasks(backend: Backend) {
    // No worker: reservations stay held, as for long-running tasks.
    let app = TestApp::spawn_with(
        backend,
        TestOptions::remote_models(&[("fake", crate::support::NOWHERE)]),
    )
    .await;
    let (account, key) = app.create_account("Acme").await;
    agent_with_policy(&app, &key, "support", verified_at_once()).await;
    // 3.00 USD a month: three tasks at 1 CU × 1 USD.
    app.store
        .set_cap(account, Some(3_000_000), &[50, 100])
        .await
        .unwrap();
    let mut handles = Vec::new();
    for i in 0..10 {
        let (client, url, key) = (app.client.clone(), format!("{}/v1/tasks", app.base), key.clone());
        handles.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(key)
                .json(&json!({"agent": "support", "input": {"body": format!("ticket {i}")}}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for h in handles {
        statuses.push(h.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 402).count(), 7, "{statuses:?}");
    let resp = app
        .create_task(
            &key,
            &json!({"agent": "support", "input": {"body": "more"}}),
            None,
        )
        .await;
    let e = assert_error(resp, 402, "budget_exhausted").await;
    assert!(e["error"]["message"].as_str().unwrap().contains("3000000"), "{e}");
    let billing = json_of(
        app.request(Method::GET, "/v1/billing", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(billing["reserved_micros"], 3_000_000);
    assert_eq!(billing["monthly_cap_micros"], 3_000_000);
    let listed = json_of(
        app.request(Method::GET, "/v1/tasks", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        3,
        "refused tasks are not stored"
    );
}

/// Every customer-facing read, walked with a customer key, holds no field
/// or text about what the work cost us or what we earned on it.
async fn a_customer_key_never_receives_our_cost_or_margin(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::reply("Done.", 1000, 100));
    let app = app(backend, &fake).await;
    let (_, key) = app.create_account("Acme").await;
    agents_that_pass_and_fail(&app, &key, "good", 100).await;
    let resolved = outcome_of(&app, &key, "good", "a").await;
    let failed = outcome_of(&app, &key, "strict", "b").await;
    assert!(
        app.inference_cost(&key, &resolved).await > 0,
        "the cost is recorded"
    );
    let mut paths = vec![
        "/v1/tasks".to_owned(),
        "/v1/outcomes".to_owned(),
        "/v1/usage".to_owned(),
        "/v1/usage?group_by=agent".to_owned(),
        "/v1/billing".to_owned(),
        "/v1/credits".to_owned(),
        "/v1/account".to_owned(),
    ];
    for o in [&resolved, &failed] {
        paths.push(format!("/v1/outcomes/{}", o["id"].as_str().unwrap()));
        paths.push(format!("/v1/tasks/{}", o["task_id"].as_str().unwrap()));
    }
    for path in paths {
        let body = json_of(
            app.request(Method::GET, &path, Some(&key)).send().await.unwrap(),
            200,
        )
        .await;
        let text = body.to_string().to_lowercase();
        for word in ["inference", "margin", "cost_micros", "\"cost\""] {
            assert!(!text.contains(word), "{path} shows {word}: {body}");
        }
    }
}

async fn usage_reports_charges_and_never_our_cost(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::reply("Done.", 1000, 100));
    let app = app(backend, &fake).await;
    let (_, key) = app.create_account("Acme").await;
    let good = agents_that_pass_and_fail(&app, &key, "good", 100).await;
    outcome_of(&app, &key, "good", "a").await;
    outcome_of(&app, &key, "good", "b").await;
    outcome_of(&app, &key, "strict", "c").await;
    let report = json_of(
        app.request(Method::GET, "/v1/usage?group_by=agent", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let total = &report["total"];
    assert_eq!(total["outcomes_resolved"], 2, "{report}");
    assert_eq!(total["outcomes_failed"], 1);
    assert_eq!(total["cu"], "2.000");
    assert_eq!(total["charges_micros"]["USD"], 2_000_000);
    let text = report.to_string();
    assert!(
        !text.contains("cost") && !text.contains("margin"),
        "a customer key never sees our cost or margin: {report}"
    );
    assert_eq!(total["resolution_rate_pct"], 66.7);
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    let g = groups.iter().find(|g| g["key"] == good["id"]).unwrap();
    assert_eq!(g["outcomes_resolved"], 2);
    let by_day = json_of(
        app.request(Method::GET, "/v1/usage", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(by_day["group_by"], "day");
    assert_eq!(by_day["groups"].as_array().unwrap().len(), 1);
    let resp = app
        .request(Method::GET, "/v1/usage?group_by=week", Some(&key))
        .send()
        .await
        .unwrap();
    assert_error(resp, 400, "invalid_request").await;
}

async fn an_effort_plan_charges_the_work_of_resolved_tasks_only(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::reply("Done.", 1500, 500));
    let app = app(backend, &fake).await;
    let (account, key) = app.create_account("Acme").await;
    let plan: bounty_core::plan::Plan = serde_json::from_value(json!({
        "name": "acu",
        "kind": "effort",
        "cu_per_million_tokens": {"fake": 250_000},
        "default_cu_per_million_tokens": 1_000,
        "cu_per_tool_second": 0,
        "price_per_cu": {"micros": 2_000_000, "currency": "USD"},
        "included_cu": 0
    }))
    .unwrap();
    app.store.set_plan(account, &plan).await.unwrap();
    agents_that_pass_and_fail(&app, &key, "support", 50).await;
    // 2000 tokens × 250 CU per million = 0.500 CU, at 2 USD per CU.
    let out = outcome_of(&app, &key, "support", "one").await;
    assert_eq!(out["status"], "resolved");
    assert_eq!(out["cu"], "0.500", "{out}");
    assert_eq!(out["amount_micros"], 1_000_000);
    assert!(
        out["rating"]["formula"]
            .as_str()
            .unwrap()
            .starts_with("effort plan"),
        "{out}"
    );
    let failed = outcome_of(&app, &key, "strict", "two").await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["cu"], "0.000", "the same work, not resolved, is 0 CU");
    assert_eq!(failed["transfers"], json!([]));
}

async fn cap_alerts_are_recorded_once_per_threshold(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, &fake).await;
    let (account, key) = app.create_account("Acme").await;
    agent_with_policy(&app, &key, "support", verified_at_once()).await;
    // 4.00 USD a month, alerts at 50% and 75%: each charge is 1.00 USD.
    app.store
        .set_cap(account, Some(4_000_000), &[50, 75])
        .await
        .unwrap();
    outcome_of(&app, &key, "support", "one").await;
    let billing = json_of(
        app.request(Method::GET, "/v1/billing", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(billing["alerts"], json!([]), "25% crosses nothing");
    outcome_of(&app, &key, "support", "two").await;
    outcome_of(&app, &key, "support", "three").await;
    let billing = json_of(
        app.request(Method::GET, "/v1/billing", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let mut percents: Vec<i64> = billing["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["percent"].as_i64().unwrap())
        .collect();
    percents.sort();
    assert_eq!(percents, vec![50, 75], "{billing}");
    assert_eq!(billing["month_spend_micros"], 3_000_000);
    assert_eq!(
        billing["reserved_micros"], 0,
        "charges release their reservations"
    );
}
