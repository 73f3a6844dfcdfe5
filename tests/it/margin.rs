//! The margin engine end to end, on both backends: a cascade tries the
//! cheap model first and escalates on a rejected output, charging once and
//! recording every attempt's cost; a model under its pass-rate floor is
//! skipped; the verified-answer cache serves only answers whose outcome was
//! verified resolved, only within one account and one agent version, and
//! forgets an answer whose outcome is reversed; a shadow student runs
//! beside live tasks without touching their outcomes or charges, and is
//! promoted by `bounty distill promote` once its pass rate is close enough.

use std::time::Duration;

use bounty_models::testing::openai::{Behavior, FakeOpenAi};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, TestOptions, json_of, test_worker};

backend_tests!(
    a_cascade_escalates_a_rejected_answer_and_charges_once,
    a_cascade_whose_every_step_is_rejected_costs_nothing,
    a_model_under_its_pass_rate_floor_is_skipped,
    the_cache_serves_verified_answers_within_one_account_and_version,
    the_cache_never_holds_an_unverified_or_reversed_answer,
    shadow_runs_never_change_an_outcome_or_a_charge_and_earn_promotion,
    the_margin_report_compares_pricing_models_from_recorded_history,
);

const WAIT: Duration = Duration::from_secs(30);

/// A remote model on the fake, with its own name on the wire and prices
/// (USD per million tokens).
fn model(url: &str, wire_name: &str, input: &str, output: &str) -> Value {
    json!({
        "provider": "openai",
        "base_url": url,
        "model": wire_name,
        "api_key": "sk-test-secret",
        "request_timeout_ms": 2000,
        "max_retries": 0,
        "price": {"input_per_million": input, "output_per_million": output}
    })
}

async fn app(backend: Backend, fake: &FakeOpenAi) -> TestApp {
    let url = fake.base_url();
    let opts = TestOptions {
        worker: Some(test_worker()),
        models: vec![
            ("cheap".to_owned(), model(&url, "cheap-llm", "0.10", "0.40")),
            (
                "frontier".to_owned(),
                model(&url, "frontier-llm", "5.00", "20.00"),
            ),
        ],
        ..TestOptions::default()
    };
    TestApp::spawn_with(backend, opts).await
}

/// An agent on `[cheap, frontier]` whose rules reject "not sure".
async fn agent(app: &TestApp, key: &str, name: &str, routing: Value, verifiers: Value) -> Value {
    let body = json!({
        "name": name,
        "instructions": "Answer the ticket.",
        "model_route": ["cheap", "frontier"],
        "verifier_policy": {"verifiers": verifiers, "window_hours": 1},
        "routing": routing,
    });
    json_of(app.create_agent(key, &body).await, 201).await
}

fn rules() -> Value {
    json!([{"kind": "rules", "non_empty": true, "forbidden_phrases": ["not sure"]}])
}

/// Queues a task and waits for its end; returns the task's JSON.
async fn run(app: &TestApp, key: &str, agent: &str, subject: &str, body: &str) -> Value {
    let req = json!({"agent": agent, "input": {"subject": subject, "body": body}});
    let task = json_of(app.create_task(key, &req, None).await, 202).await;
    app.wait_for_task(key, task["id"].as_str().unwrap(), WAIT).await
}

async fn outcome(app: &TestApp, key: &str, task: &Value) -> Value {
    let id = task["outcome"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no outcome: {task}"));
    app.get_outcome(key, id).await
}

/// The models the fake was asked for, in order.
fn asked(fake: &FakeOpenAi) -> Vec<String> {
    fake.requests()
        .iter()
        .filter_map(|r| r.body["model"].as_str().map(str::to_owned))
        .collect()
}

/// Each model call as the API shows it, with what it cost us (the
/// operator's figure, from the store: the customer's API never shows it).
async fn calls(app: &TestApp, key: &str, task: &Value) -> Vec<(String, Value, bool, i64)> {
    let costs = app.call_costs(key, task).await;
    let calls = task["model_calls"].as_array().unwrap();
    assert_eq!(calls.len(), costs.len());
    assert!(
        calls
            .iter()
            .all(|c| c.get("cost_micros").is_none() && c.get("byok_cost").is_none()),
        "no cost of ours reaches the customer: {task}"
    );
    calls
        .iter()
        .zip(costs)
        .map(|(c, cost)| {
            (
                c["model"].as_str().unwrap().to_owned(),
                c["verdict"].clone(),
                c["cache_hit"].as_bool().unwrap(),
                cost,
            )
        })
        .collect()
}

fn kinds(outcome: &Value) -> Vec<String> {
    crate::support::transfer_kinds(outcome)
}

async fn a_cascade_escalates_a_rejected_answer_and_charges_once(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, &fake).await;
    let (_, key) = app.create_account("Acme").await;
    agent(&app, &key, "support", json!({"cascade": {}}), rules()).await;

    // The cheap model is not sure; the frontier answers.
    fake.push(Behavior::reply("I am not sure.", 1000, 100));
    fake.push(Behavior::reply("Your refund was issued today.", 1000, 200));
    let task = run(&app, &key, "support", "Refund", "Where is my refund?").await;
    assert_eq!(asked(&fake), ["cheap-llm", "frontier-llm"]);
    assert_eq!(task["output"]["text"], "Your refund was issued today.", "{task}");
    assert_eq!(task["output"]["model"], "frontier");
    // cheap: 1000 × 0.10 + 100 × 0.40 = 140; frontier: 1000 × 5 + 200 × 20 = 9,000.
    assert_eq!(
        calls(&app, &key, &task).await,
        [
            ("cheap".to_owned(), json!("fail"), false, 140),
            ("frontier".to_owned(), json!("pass"), false, 9_000),
        ]
    );
    let out = outcome(&app, &key, &task).await;
    assert_eq!(out["status"], "resolved", "{out}");
    assert_eq!(kinds(&out), ["charge", "charge_money"], "one charge");
    assert_eq!(out["amount_micros"], 1_000_000);
    assert_eq!(
        app.inference_cost(&key, &out).await,
        9_140,
        "every attempt's cost"
    );

    // An answer the cheap model gets right never reaches the frontier.
    fake.clear_requests();
    fake.push(Behavior::reply("Your parcel ships tomorrow.", 500, 50));
    let task = run(&app, &key, "support", "Parcel", "Where is my parcel?").await;
    assert_eq!(asked(&fake), ["cheap-llm"]);
    let out = outcome(&app, &key, &task).await;
    assert_eq!(out["status"], "resolved");
    assert_eq!(app.inference_cost(&key, &out).await, 70);
}

async fn a_cascade_whose_every_step_is_rejected_costs_nothing(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, &fake).await;
    let (_, key) = app.create_account("Acme").await;
    agent(
        &app,
        &key,
        "support",
        json!({"cascade": {"max_steps": 2}}),
        rules(),
    )
    .await;
    fake.set_default(Behavior::reply("I am not sure.", 100, 10));
    let task = run(&app, &key, "support", "Hard", "A hard one").await;
    assert_eq!(asked(&fake), ["cheap-llm", "frontier-llm"]);
    assert_eq!(
        task["output"]["model"], "frontier",
        "the last step's output stands"
    );
    let out = outcome(&app, &key, &task).await;
    assert_eq!(out["status"], "failed");
    assert_eq!(out["transfers"], json!([]));
    assert_eq!(out["charge_summary"], "No charge — not resolved");
    // cheap 100 × 0.10 + 10 × 0.40 = 14; frontier 100 × 5 + 10 × 20 = 700.
    assert_eq!(app.inference_cost(&key, &out).await, 714);
}

async fn a_model_under_its_pass_rate_floor_is_skipped(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, &fake).await;
    let (account, key) = app.create_account("Acme").await;
    let routing = json!({"cascade": {"pass_rate_floor_bp": 5000, "min_samples": 2}});
    let agent = agent(&app, &key, "support", routing, rules()).await;
    for i in 0..2 {
        fake.push(Behavior::reply("I am not sure.", 100, 10));
        fake.push(Behavior::reply("Done.", 100, 10));
        let task = run(&app, &key, "support", "T", &format!("ticket {i}")).await;
        assert_eq!(task["status"], "completed");
    }
    let rates = app
        .store
        .model_pass_rates(account, agent["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    assert_eq!((rates["cheap"].live.tried, rates["cheap"].live.passed), (2, 0));
    assert_eq!(
        (rates["frontier"].live.tried, rates["frontier"].live.passed),
        (2, 2)
    );
    // 0% on 2 samples is under the 50% floor: the cheap model is skipped.
    fake.clear_requests();
    fake.push(Behavior::reply("Done.", 100, 10));
    let task = run(&app, &key, "support", "T", "ticket 3").await;
    assert_eq!(asked(&fake), ["frontier-llm"]);
    assert_eq!(task["output"]["model"], "frontier");
}

async fn the_cache_serves_verified_answers_within_one_account_and_version(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::reply("Your refund was issued today.", 1000, 100));
    let app = app(backend, &fake).await;
    let (account, key) = app.create_account("Acme").await;
    let (_, other_key) = app.create_account("Globex").await;
    let routing = json!({"cascade": {}, "cache": {"ttl_hours": 24}});
    let acme_agent = agent(&app, &key, "support", routing.clone(), rules()).await;
    agent(&app, &other_key, "support", routing, rules()).await;

    let first = run(&app, &key, "support", "Refund", "Where is my refund?").await;
    assert_eq!(fake.request_count(), 1);
    // The same request, spaced and cased differently: served from the
    // cache, verified again, charged as its own resolved outcome.
    let second = run(&app, &key, "support", "  refund", "where is   my REFUND?").await;
    assert_eq!(fake.request_count(), 1, "no model was asked");
    assert_eq!(second["output"]["text"], "Your refund was issued today.");
    assert_eq!(
        calls(&app, &key, &second).await,
        [("cheap".to_owned(), json!("pass"), true, 0)]
    );
    let out = outcome(&app, &key, &second).await;
    assert_eq!(out["status"], "resolved");
    assert_eq!(kinds(&out), ["charge", "charge_money"]);
    assert_eq!(app.inference_cost(&key, &out).await, 0);
    let summary = app
        .store
        .cache_summary(
            account,
            app.store.now().date_naive(),
            app.store.now().date_naive(),
        )
        .await
        .unwrap();
    assert_eq!((summary.lookups, summary.hits), (2, 1));
    assert_eq!(summary.saved_micros["USD"], 140, "the first answer's cost");
    assert_ne!(first["id"], second["id"]);

    // Another account asking the same never sees Acme's answer.
    run(&app, &other_key, "support", "Refund", "Where is my refund?").await;
    assert_eq!(fake.request_count(), 2, "Globex's request went to a model");

    // A new version of the agent never serves the old version's answers.
    let id = acme_agent["id"].as_str().unwrap();
    let patched = app
        .request(Method::PATCH, &format!("/v1/agents/{id}"), Some(&key))
        .json(&json!({"instructions": "Answer the ticket politely."}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    run(&app, &key, "support", "Refund", "Where is my refund?").await;
    assert_eq!(fake.request_count(), 3, "version 2 asked a model");
}

async fn the_cache_never_holds_an_unverified_or_reversed_answer(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, &fake).await;
    let (_, key) = app.create_account("Acme").await;
    // A rejected answer is never cached.
    agent(&app, &key, "strict", json!({"cache": {"ttl_hours": 24}}), rules()).await;
    fake.set_default(Behavior::reply("I am not sure.", 100, 10));
    run(&app, &key, "strict", "Q", "question").await;
    run(&app, &key, "strict", "Q", "question").await;
    assert_eq!(fake.request_count(), 2, "a failed answer was not served");

    // An answer waiting for the customer's signal is not cached until the
    // outcome resolves; a reopen removes it again.
    let external = json!([{"kind": "external"}]);
    agent(
        &app,
        &key,
        "signals",
        json!({"cache": {"ttl_hours": 24}}),
        external,
    )
    .await;
    fake.set_default(Behavior::reply("Try restarting the router.", 100, 10));
    let first = run(&app, &key, "signals", "Wifi", "My wifi is down").await;
    let out = outcome(&app, &key, &first).await;
    assert_eq!(out["status"], "provisional");
    run(&app, &key, "signals", "Wifi", "My wifi is down").await;
    assert_eq!(fake.request_count(), 4, "a provisional answer is not served");

    let signal = |id: String, kind: &'static str| {
        let app = &app;
        let key = key.clone();
        async move {
            let resp = app
                .request(Method::POST, &format!("/v1/outcomes/{id}/signals"), Some(&key))
                .json(&json!({"kind": kind}))
                .send()
                .await
                .unwrap();
            json_of(resp, 200).await
        }
    };
    let id = out["id"].as_str().unwrap().to_owned();
    assert_eq!(signal(id.clone(), "solved").await["status"], "resolved");
    let hit = run(&app, &key, "signals", "Wifi", "My wifi is down").await;
    assert_eq!(fake.request_count(), 4, "served once resolved");
    assert!(calls(&app, &key, &hit).await[0].2, "a cache hit");

    assert_eq!(
        signal(id, "reopened").await["status"],
        "failed",
        "reopened inside the window"
    );
    // The reopen resumes the first task's conversation: its second turn
    // asks the model (a conversation never reads the cache).
    let first_id = first["id"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let t = app.get_task(&key, first_id).await;
        if t["turn"] == 2 && t["status"] == "completed" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the resumed turn did not finish: {t}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(fake.request_count(), 5, "the resumed turn asked the model");
    run(&app, &key, "signals", "Wifi", "My wifi is down").await;
    assert_eq!(fake.request_count(), 6, "a reversed answer is no longer served");
}

/// Waits until the task has a shadow call; returns the task.
async fn with_shadow(app: &TestApp, key: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let task = app.get_task(key, id).await;
        if task["model_calls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["shadow"] == true)
        {
            return task;
        }
        assert!(tokio::time::Instant::now() < deadline, "no shadow call: {task}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn shadow_runs_never_change_an_outcome_or_a_charge_and_earn_promotion(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, &fake).await;
    let (account, key) = app.create_account("Acme").await;
    let body = json!({
        "name": "support",
        "instructions": "Answer the ticket.",
        "model_route": ["frontier"],
        "verifier_policy": {"verifiers": rules()},
        "routing": {"shadow": {"model": "cheap", "share_bp": 10000}},
    });
    let agent = json_of(app.create_agent(&key, &body).await, 201).await;
    let agent_id = agent["id"].as_str().unwrap().parse().unwrap();

    // The teacher resolves; the student's answer is rejected.
    fake.push(Behavior::reply("Your refund was issued.", 1000, 100));
    fake.push(Behavior::reply("I am not sure.", 1000, 100));
    let task = run(&app, &key, "support", "Refund", "Where is my refund?").await;
    let task = with_shadow(&app, &key, task["id"].as_str().unwrap()).await;
    let shadow: Vec<&Value> = task["model_calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["shadow"] == true)
        .collect();
    assert_eq!(shadow.len(), 1);
    assert_eq!(shadow[0]["model"], "cheap");
    assert_eq!(shadow[0]["verdict"], "fail");
    assert_eq!(task["output"]["model"], "frontier");
    assert_eq!(
        task["usage"]["model_calls"], 1,
        "the shadow is not the task's usage"
    );
    let out = outcome(&app, &key, &task).await;
    assert_eq!(out["status"], "resolved");
    assert_eq!(kinds(&out), ["charge", "charge_money"]);
    // 1000 × 5 + 100 × 20: the teacher's call alone.
    assert_eq!(app.inference_cost(&key, &out).await, 7_000);

    // The teacher's answer is rejected; the student's would have passed:
    // the outcome still fails and costs nothing.
    fake.push(Behavior::reply("I am not sure.", 100, 10));
    fake.push(Behavior::reply("Your parcel ships today.", 100, 10));
    let task = run(&app, &key, "support", "Parcel", "Where is my parcel?").await;
    let task = with_shadow(&app, &key, task["id"].as_str().unwrap()).await;
    let out = outcome(&app, &key, &task).await;
    assert_eq!(out["status"], "failed");
    assert_eq!(out["transfers"], json!([]));
    let rates = app.store.model_pass_rates(account, agent_id).await.unwrap();
    assert_eq!(
        (rates["cheap"].shadow.tried, rates["cheap"].shadow.passed),
        (2, 1)
    );
    assert_eq!((rates["cheap"].live.tried, rates["frontier"].live.tried), (0, 2));

    // `distill status` shows both; `promote` refuses until the student is
    // within the margin with enough samples, then makes a new version.
    let dir = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        crate::support::bounty_command(dir.path())
            .args(["--database-url", app.database_url(), "distill"])
            .args(args)
            .output()
            .unwrap()
    };
    let acct = account.to_string();
    let status = cli(&["status", "--account", &acct, "--agent", "support", "--json"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["student"], "cheap");
    assert_eq!(status["models"][0]["role"], "teacher");
    assert_eq!(status["models"][1]["pass_rate_bp"], 5000);
    let promote = |min_samples: &str| {
        cli(&[
            "promote",
            "--account",
            &acct,
            "--agent",
            "support",
            "--min-samples",
            min_samples,
        ])
    };
    let refused = promote("3");
    assert_eq!(refused.status.code(), Some(1));
    let why = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(why.contains("2 shadow verdicts; 3 are needed"), "{why}");
    // Student and teacher both pass 50% (1 of 2): within the default margin.
    let promoted = promote("2");
    assert!(
        promoted.status.success(),
        "{}",
        String::from_utf8_lossy(&promoted.stderr)
    );
    let agent = app
        .store
        .get_agent(account, agent_id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(agent.version, 2);
    assert_eq!(agent.model_route, ["cheap", "frontier"]);
    assert!(agent.routing.cascade.is_some() && agent.routing.shadow.is_none());
}

async fn the_margin_report_compares_pricing_models_from_recorded_history(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, &fake).await;
    let (account, key) = app.create_account("Acme").await;
    agent(&app, &key, "support", json!({"cascade": {}}), rules()).await;
    // A: escalated, resolved (140 + 9,000). B: the cheap model resolves
    // (70). C: both rejected, failed (14 + 700).
    for (cheap, frontier) in [
        (
            Behavior::reply("I am not sure.", 1000, 100),
            Some(Behavior::reply("Refunded.", 1000, 200)),
        ),
        (Behavior::reply("It ships today.", 500, 50), None),
        (
            Behavior::reply("I am not sure.", 100, 10),
            Some(Behavior::reply("Not sure.", 100, 10)),
        ),
    ] {
        fake.push(cheap);
        if let Some(f) = frontier {
            fake.push(f);
        }
        run(
            &app,
            &key,
            "support",
            "T",
            &format!("ticket {}", fake.request_count()),
        )
        .await;
    }
    let now = chrono::Utc::now();
    let dir = tempfile::tempdir().unwrap();
    let out = crate::support::bounty_command(dir.path())
        .args([
            "--database-url",
            app.database_url(),
            "report",
            "margins",
            "--account",
        ])
        .arg(account.to_string())
        .args(["--from", &(now - chrono::Duration::hours(1)).to_rfc3339()])
        .args(["--to", &(now + chrono::Duration::hours(1)).to_rfc3339()])
        .args(["--markup-bp", "3000", "--platform-fee", "0.10", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let inputs = &r["inputs"];
    assert_eq!(
        (inputs["decided"].as_i64(), inputs["resolved"].as_i64()),
        (Some(3), Some(2))
    );
    assert_eq!(inputs["charges_micros"], 2_000_000);
    assert_eq!(inputs["delivered_cost_micros"], 9_924, "9,140 + 70 + 714");
    // The frontier answered twice (9,000 and 700): 4,850 a call, × 3 tasks.
    assert_eq!(r["frontier"][0]["average_call_micros"], 4_850);
    assert_eq!(inputs["raw_cost_micros"], 14_550);
    let c = &r["comparison"];
    assert_eq!(c["cost_plus"]["revenue_micros"], 12_901, "9,924 × 1.3, rounded");
    assert_eq!(c["cost_plus"]["margin_micros"], 2_977);
    assert_eq!(c["value_based"]["margin_micros"], 1_990_076);
    assert_eq!(c["value_based"]["margin_bp"], 9_950);
    assert_eq!(c["byok"]["revenue_micros"], 200_000);
    assert_eq!(c["byok"]["cost_micros"], 0);
    assert_eq!(c["raw_cost_micros"], 14_550);
    assert_eq!(c["cost_plus_price_micros"], 18_915);
    assert_eq!(c["delivered_cost_micros"], 9_924);

    // The table names all three models and the three lines.
    let table = crate::support::bounty_command(dir.path())
        .args([
            "--database-url",
            app.database_url(),
            "report",
            "margins",
            "--account",
        ])
        .arg(account.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    for needle in [
        "cost-plus (30.00% markup)",
        "value-based (the plan)",
        "BYOK",
        "raw inference cost",
        "delivered cost",
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    let bad = crate::support::bounty_command(dir.path())
        .args([
            "--database-url",
            app.database_url(),
            "report",
            "margins",
            "--account",
        ])
        .arg(account.to_string())
        .args(["--platform-fee", "ten"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--platform-fee"));
}
