//! Conversations end to end: a task continued over three turns (through
//! the API and a helpdesk's `customer_replied`) and charged once; a
//! reopen that reverses the charge and resumes the conversation for free;
//! the agent's hand-off, escalated and never charged, with a note to the
//! helpdesk; a closed conversation refusing messages; a message racing a
//! running turn, answered by the next one; a redelivered reply that adds
//! nothing; validation, idempotency and tenant isolation of
//! `POST /v1/tasks/{id}/messages`.

use std::time::Duration;

use bounty_agents::finish::finish_attempt;
use bounty_core::ledger::TransferKind;
use bounty_core::outbox::OutboxKind;
use bounty_core::{Decision, TaskId};
use bounty_models::testing::openai::{Behavior, FakeOpenAi};
use bounty_store::AttemptEnd;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::billing::answered;
use crate::support::{Backend, TestApp, TestOptions, assert_error, json_of, test_worker, verified_at_once};

backend_tests!(
    a_conversation_over_three_turns_is_charged_once,
    a_reopen_inside_the_window_reverses_the_charge_and_resumes_for_free,
    a_hand_off_is_escalated_never_charged_and_noted_to_the_helpdesk,
    a_closed_conversation_refuses_messages,
    a_message_racing_a_running_turn_is_answered_by_the_next_turn,
    a_redelivered_customer_reply_adds_nothing,
    messages_are_validated_idempotent_and_tenant_scoped,
    a_later_turn_gets_fresh_attempts_and_its_failure_ends_the_conversation_uncharged,
);

const WAIT: Duration = Duration::from_secs(30);

/// Answers wait for the helpdesk (an `external` verifier), so a reply to
/// them continues the conversation.
fn awaiting() -> Value {
    json!({"verifiers": [{"kind": "rules", "non_empty": true}, {"kind": "external"}], "window_hours": 72})
}

async fn app(backend: Backend, fake: Option<&FakeOpenAi>) -> TestApp {
    let url = fake.map_or_else(|| crate::support::NOWHERE.to_owned(), |f| f.base_url());
    let opts = TestOptions {
        worker: fake.is_some().then(test_worker),
        ..TestOptions::remote_models(&[("fake", &url)])
    };
    TestApp::spawn_with(backend, opts).await
}

async fn agent(app: &TestApp, key: &str, policy: Value) {
    let body = json!({
        "name": "support",
        "instructions": "Answer the ticket.",
        "model_route": ["fake"],
        "verifier_policy": policy,
    });
    json_of(app.create_agent(key, &body).await, 201).await;
}

async fn message(
    app: &TestApp,
    key: &str,
    task: &str,
    body: Value,
    idempotency: Option<&str>,
) -> reqwest::Response {
    let mut rb = app
        .request(Method::POST, &format!("/v1/tasks/{task}/messages"), Some(key))
        .json(&body);
    if let Some(k) = idempotency {
        rb = rb.header("idempotency-key", k);
    }
    rb.send().await.unwrap()
}

/// Polls the task until `done` holds; panics after [`WAIT`].
async fn wait_until(
    app: &TestApp,
    key: &str,
    task: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let t = app.get_task(key, task).await;
        if done(&t) {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {task}: not {what}: {t}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until `turn` has answered and its answer waits for the customer.
async fn waiting_on_turn(app: &TestApp, key: &str, task: &str, turn: i64) -> Value {
    wait_until(app, key, task, &format!("waiting after turn {turn}"), |t| {
        t["turn"] == turn && t["status"] == "completed" && t["outcome"]["status"] == "provisional"
    })
    .await
}

fn roles(task: &Value) -> Vec<(String, i64, String)> {
    task["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["turn"].as_i64().unwrap(),
                m["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn signal(app: &TestApp, key: &str, outcome: &str, kind: &str) -> reqwest::Response {
    app.request(
        Method::POST,
        &format!("/v1/outcomes/{outcome}/signals"),
        Some(key),
    )
    .json(&json!({"kind": kind}))
    .send()
    .await
    .unwrap()
}

/// A Standard integration for `support` and its inbound secret.
async fn standard(app: &TestApp, key: &str) -> (Value, String) {
    let body = json!({"kind": "standard", "name": "std", "agent": "support",
        "reply": {"callback_url": "http://127.0.0.1:9/hook"}});
    let created = json_of(crate::helpdesk::integration(app, key, body).await, 201).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    (created, secret)
}

/// Delivers a Standard event of `kind` with `data`, signed, with
/// `delivery` as its id; returns the answer's JSON.
async fn deliver(
    app: &TestApp,
    created: &Value,
    secret: &str,
    kind: &str,
    data: Value,
    delivery: &str,
) -> Value {
    let body = json!({"type": kind, "timestamp": chrono::Utc::now().to_rfc3339(), "data": data})
        .to_string()
        .into_bytes();
    let resp = crate::helpdesk::deliver(app, created, secret, &body, delivery, 0).await;
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.json().await.unwrap()
}

/// The helpdesk replies queued for the account: `(idempotency key, payload)`.
async fn replies(app: &TestApp, account: bounty_core::AccountId) -> Vec<(String, Value)> {
    app.store
        .outbox_of(account)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.kind == OutboxKind::HelpdeskReply)
        .map(|o| (o.idempotency_key, o.payload))
        .collect()
}

async fn transfers(app: &TestApp, account: bounty_core::AccountId, kind: TransferKind) -> usize {
    app.store
        .transfers(account, None, Some(kind))
        .await
        .unwrap()
        .len()
}

/// The user messages the fake model was last asked with.
fn last_prompt(fake: &FakeOpenAi) -> Vec<(String, String)> {
    let requests = fake.requests();
    let last = requests.last().expect("the model was asked");
    last.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn a_conversation_over_three_turns_is_charged_once(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, Some(&fake)).await;
    let (account, key) = app.create_account("Acme").await;
    agent(&app, &key, awaiting()).await;
    let (created, secret) = standard(&app, &key).await;
    let ticket = json!({"ticket_id": "T-1", "subject": "Order", "body": "Where is my order?"});
    let first = deliver(&app, &created, &secret, "ticket.created", ticket, "d-1").await;
    let task = first["task_id"].as_str().unwrap().to_owned();
    let t1 = waiting_on_turn(&app, &key, &task, 1).await;
    let outcome = t1["outcome"]["id"].as_str().unwrap().to_owned();

    // Turn 2 through the API.
    let resp = message(&app, &key, &task, json!({"body": "It is order 1042."}), None).await;
    let queued = json_of(resp, 202).await;
    assert_eq!(
        (queued["turn"].as_i64(), queued["status"].as_str()),
        (Some(2), Some("queued"))
    );
    waiting_on_turn(&app, &key, &task, 2).await;

    // Turn 3 through the helpdesk.
    let reply = json!({"ticket_id": "T-1", "body": "And can I change the address?"});
    let added = deliver(&app, &created, &secret, "ticket.customer_replied", reply, "d-2").await;
    assert_eq!(added["result"], "message_added", "{added}");
    assert_eq!(added["task_id"].as_str(), Some(task.as_str()));
    let t3 = waiting_on_turn(&app, &key, &task, 3).await;
    // The third turn read the whole conversation.
    let prompt = last_prompt(&fake);
    let said: Vec<&str> = prompt.iter().map(|(role, _)| role.as_str()).collect();
    assert_eq!(
        said,
        ["system", "user", "assistant", "user", "assistant", "user"],
        "{prompt:?}"
    );
    assert!(prompt[1].1.contains("Where is my order?"));
    assert_eq!(prompt[3].1, "It is order 1042.");
    assert_eq!(prompt[5].1, "And can I change the address?");
    assert_eq!(
        roles(&t3),
        [
            ("agent".to_owned(), 1, "agent".to_owned()),
            ("customer".to_owned(), 2, "api".to_owned()),
            ("agent".to_owned(), 2, "agent".to_owned()),
            ("customer".to_owned(), 3, "helpdesk".to_owned()),
            ("agent".to_owned(), 3, "agent".to_owned()),
        ]
    );
    assert_eq!(
        t3["outcome"]["id"].as_str(),
        Some(outcome.as_str()),
        "one outcome per conversation"
    );
    assert_eq!(
        transfers(&app, account, TransferKind::Charge).await,
        0,
        "nothing charged while it goes on"
    );

    // Solved: the conversation is charged, once.
    let solved = deliver(
        &app,
        &created,
        &secret,
        "ticket.solved",
        json!({"ticket_id": "T-1"}),
        "d-3",
    )
    .await;
    assert_eq!(solved["result"], "signal_applied", "{solved}");
    let receipt = app.get_outcome(&key, &outcome).await;
    assert_eq!(receipt["status"], "resolved", "{receipt}");
    assert_eq!(transfers(&app, account, TransferKind::Charge).await, 1);
    let events: Vec<&str> = receipt["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "verified",
            "continued",
            "verified",
            "continued",
            "verified",
            "signal"
        ]
    );
    // One reply per turn, each under its own key.
    let keys: Vec<String> = replies(&app, account).await.into_iter().map(|(k, _)| k).collect();
    let mut expected = vec![
        format!("helpdesk_reply:{task}"),
        format!("helpdesk_reply:{task}:2"),
        format!("helpdesk_reply:{task}:3"),
    ];
    let mut keys_sorted = keys.clone();
    keys_sorted.sort();
    expected.sort();
    assert_eq!(keys_sorted, expected);
    // The conversation is over: another message is refused.
    let closed = message(&app, &key, &task, json!({"body": "One more thing"}), None).await;
    assert_error(closed, 409, "conversation_closed").await;
}

async fn a_reopen_inside_the_window_reverses_the_charge_and_resumes_for_free(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, Some(&fake)).await;
    let (account, key) = app.create_account("Acme").await;
    agent(&app, &key, awaiting()).await;
    let task = app.task(&key, "support", "My invoice is wrong.").await;
    let task = task["id"].as_str().unwrap().to_owned();
    let t1 = waiting_on_turn(&app, &key, &task, 1).await;
    let outcome = t1["outcome"]["id"].as_str().unwrap().to_owned();
    json_of(signal(&app, &key, &outcome, "solved").await, 200).await;
    assert_eq!(transfers(&app, account, TransferKind::Charge).await, 1);

    // Reopened inside the window: the charge is reversed, and the
    // conversation resumes as turn 2.
    let reopened = json_of(signal(&app, &key, &outcome, "reopened").await, 200).await;
    assert_eq!(reopened["status"], "failed", "{reopened}");
    let t2 = wait_until(&app, &key, &task, "resumed and answered", |t| {
        t["turn"] == 2 && t["status"] == "completed"
    })
    .await;
    // The resumed turn was told why it runs again.
    let prompt = last_prompt(&fake);
    assert_eq!(prompt.last().unwrap().1, bounty_agents::prompt::REOPENED_NOTE);
    assert_eq!(
        roles(&t2),
        [
            ("agent".to_owned(), 1, "agent".to_owned()),
            ("agent".to_owned(), 2, "agent".to_owned()),
        ]
    );
    // Worked for free: the outcome stays final, charged once and reversed
    // once, never again.
    let receipt = app.get_outcome(&key, &outcome).await;
    assert_eq!(receipt["status"], "failed", "{receipt}");
    assert_eq!(receipt["amount_micros"], 0);
    assert_eq!(transfers(&app, account, TransferKind::Charge).await, 1);
    assert_eq!(
        transfers(
            &app,
            account,
            TransferKind::Reversal(bounty_core::ledger::BaseKind::Charge)
        )
        .await,
        1
    );
    assert_eq!(t2["outcome"]["status"], "failed");
    // Signals after it change nothing either.
    json_of(signal(&app, &key, &outcome, "solved").await, 200).await;
    assert_eq!(transfers(&app, account, TransferKind::Charge).await, 1);
}

async fn a_hand_off_is_escalated_never_charged_and_noted_to_the_helpdesk(backend: Backend) {
    let app = app(backend, None).await;
    let (account, key) = app.create_account("Acme").await;
    agent(&app, &key, verified_at_once()).await;
    let (created, secret) = standard(&app, &key).await;
    let ticket = json!({"ticket_id": "T-7", "subject": "Legal", "body": "I want to talk to a lawyer."});
    let first = deliver(&app, &created, &secret, "ticket.created", ticket, "d-1").await;
    let task: TaskId = first["task_id"].as_str().unwrap().parse().unwrap();
    // The verifiers would pass; the hand-off wins.
    let mut end = answered("I am handing you to a colleague.", Decision::Pass);
    if let AttemptEnd::Completed(out) = &mut end {
        out.handoff = Some("the customer asked for a person".into());
    }
    let claimed = run_turn(&app, end).await;
    assert_eq!(claimed.task.id, task);
    let done = app.get_task(&key, &task.to_string()).await;
    assert_eq!(done["outcome"]["status"], "escalated", "{done}");
    assert_eq!(done["outcome"]["cu"], "0.000");
    let receipt = app
        .get_outcome(&key, done["outcome"]["id"].as_str().unwrap())
        .await;
    let events = receipt["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{receipt}");
    assert_eq!(events[0]["event"], "handed_off");
    assert_eq!(events[0]["to_status"], "escalated");
    assert_eq!(events[0]["effect"], "none");
    assert!(
        events[0]["reason"]
            .as_str()
            .unwrap()
            .contains("the customer asked for a person"),
        "{receipt}"
    );
    assert_eq!(receipt["amount_micros"], 0);
    assert_eq!(transfers(&app, account, TransferKind::Charge).await, 0);
    // The helpdesk gets an internal note naming the reason.
    let replies = replies(&app, account).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    let (reply_key, payload) = &replies[0];
    assert_eq!(reply_key, &format!("helpdesk_reply:{task}"));
    assert_eq!(payload["action"], "handoff", "{payload}");
    assert!(
        payload["note"]
            .as_str()
            .unwrap()
            .contains("the customer asked for a person")
    );
    // Counted as escalated in usage.
    let usage = json_of(
        app.request(Method::GET, "/v1/usage", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(usage["total"]["outcomes_escalated"], 1, "{usage}");
    assert_eq!(usage["total"]["outcomes_resolved"], 0);
    // And the conversation is closed.
    let closed = message(&app, &key, &task.to_string(), json!({"body": "Hello?"}), None).await;
    assert_error(closed, 409, "conversation_closed").await;
}

async fn a_closed_conversation_refuses_messages(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, Some(&fake)).await;
    let (_, key) = app.create_account("Acme").await;
    // Resolved at once: the conversation is over when it is charged.
    agent(&app, &key, verified_at_once()).await;
    let task = app.task(&key, "support", "Reset my password.").await;
    let task = task["id"].as_str().unwrap().to_owned();
    let done = app.wait_for_task(&key, &task, WAIT).await;
    assert_eq!(done["outcome"]["status"], "resolved", "{done}");
    let closed = message(&app, &key, &task, json!({"body": "Thanks!"}), None).await;
    let body = assert_error(closed, 409, "conversation_closed").await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("resolved"),
        "{body}"
    );
    let after = app.get_task(&key, &task).await;
    assert_eq!(
        after["messages"].as_array().unwrap().len(),
        1,
        "only the answer: {after}"
    );
    assert_eq!(after["turn"], 1);
}

async fn a_message_racing_a_running_turn_is_answered_by_the_next_turn(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    // The first turn's model call takes a while; the next answers at once.
    fake.push(Behavior::Delay(Duration::from_millis(1500)));
    let app = app(backend, Some(&fake)).await;
    let (_, key) = app.create_account("Acme").await;
    agent(&app, &key, awaiting()).await;
    let task = app.task(&key, "support", "My parcel is late.").await;
    let task = task["id"].as_str().unwrap().to_owned();
    wait_until(&app, &key, &task, "running", |t| t["status"] == "running").await;
    let resp = message(&app, &key, &task, json!({"body": "It was due Monday."}), None).await;
    let appended = json_of(resp, 202).await;
    assert_eq!(appended["turn"], 1, "the running turn is not changed: {appended}");
    // Turn 1's finish sees the message and queues turn 2 instead of
    // settling; turn 2 answers it.
    let t2 = waiting_on_turn(&app, &key, &task, 2).await;
    assert_eq!(
        roles(&t2),
        [
            ("agent".to_owned(), 1, "agent".to_owned()),
            ("customer".to_owned(), 2, "api".to_owned()),
            ("agent".to_owned(), 2, "agent".to_owned()),
        ]
    );
    assert_eq!(last_prompt(&fake).last().unwrap().1, "It was due Monday.");
    // Turn 1 never settled: the outcome has one verdict, turn 2's.
    let receipt = app.get_outcome(&key, t2["outcome"]["id"].as_str().unwrap()).await;
    assert_eq!(receipt["events"].as_array().unwrap().len(), 1, "{receipt}");
}

async fn a_redelivered_customer_reply_adds_nothing(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = app(backend, Some(&fake)).await;
    let (_, key) = app.create_account("Acme").await;
    agent(&app, &key, awaiting()).await;
    let (created, secret) = standard(&app, &key).await;
    let ticket = json!({"ticket_id": "T-2", "subject": "Refund", "body": "Refund please."});
    let first = deliver(&app, &created, &secret, "ticket.created", ticket, "d-1").await;
    let task = first["task_id"].as_str().unwrap().to_owned();
    waiting_on_turn(&app, &key, &task, 1).await;
    let reply = json!({"ticket_id": "T-2", "body": "Order 77."});
    let added = deliver(
        &app,
        &created,
        &secret,
        "ticket.customer_replied",
        reply.clone(),
        "d-2",
    )
    .await;
    assert_eq!(added["result"], "message_added", "{added}");
    waiting_on_turn(&app, &key, &task, 2).await;
    // The same delivery again: answered as the first time, nothing added.
    let again = deliver(&app, &created, &secret, "ticket.customer_replied", reply, "d-2").await;
    assert_eq!(again["delivery_id"], added["delivery_id"], "{again}");
    assert_eq!(again["result"], "message_added");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = app.get_task(&key, &task).await;
    assert_eq!(after["turn"], 2, "{after}");
    let customers = roles(&after)
        .into_iter()
        .filter(|(r, _, _)| r == "customer")
        .count();
    assert_eq!(customers, 1, "{after}");
}

async fn messages_are_validated_idempotent_and_tenant_scoped(backend: Backend) {
    // No worker: the task stays queued.
    let app = app(backend, None).await;
    let (account, key) = app.create_account("Acme").await;
    agent(&app, &key, awaiting()).await;
    let task = app.task(&key, "support", "Hello").await;
    let task = task["id"].as_str().unwrap().to_owned();
    for (body, why) in [
        (json!({"body": ""}), "empty"),
        (json!({"body": "  \n "}), "blank"),
        (json!({"body": "a\u{0}b"}), "NUL"),
        (json!({"body": "x".repeat(32_001)}), "too long"),
    ] {
        let resp = message(&app, &key, &task, body, None).await;
        let err = assert_error(resp, 422, "validation_failed").await;
        assert_eq!(err["error"]["param"], "body", "{why}: {err}");
    }
    let missing = message(&app, &key, &task, json!({}), None).await;
    assert_eq!(missing.status(), 400);
    // A queued task takes the message for the turn it will run.
    let first = message(&app, &key, &task, json!({"body": "Also: order 9."}), Some("m-1")).await;
    let first = json_of(first, 202).await;
    assert_eq!(
        (first["turn"].as_i64(), first["status"].as_str()),
        (Some(1), Some("queued"))
    );
    // The same key and body: replayed, nothing added.
    let again = message(&app, &key, &task, json!({"body": "Also: order 9."}), Some("m-1")).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.status(), 202);
    let other = message(&app, &key, &task, json!({"body": "Something else"}), Some("m-1")).await;
    assert_error(other, 422, "idempotency_mismatch").await;
    let shown = app.get_task(&key, &task).await;
    assert_eq!(roles(&shown), [("customer".to_owned(), 1, "api".to_owned())]);
    assert_eq!(shown["messages"][0]["body"], "Also: order 9.");

    // Another account's task is not there; nor is a live task for a
    // test-mode key of the same account.
    let (_, other_key) = app.create_account("Globex").await;
    let resp = message(&app, &other_key, &task, json!({"body": "hi"}), None).await;
    assert_error(resp, 404, "not_found").await;
    let created = json_of(
        app.create_key(&key, &json!({"name": "test", "mode": "test"}))
            .await,
        201,
    )
    .await;
    let test_key = created["secret"].as_str().unwrap();
    let resp = message(&app, test_key, &task, json!({"body": "hi"}), None).await;
    assert_error(resp, 404, "not_found").await;
    let unknown = message(
        &app,
        &key,
        &TaskId::new().to_string(),
        json!({"body": "hi"}),
        None,
    )
    .await;
    assert_error(unknown, 404, "not_found").await;
    assert_eq!(
        app.store
            .conversation(account, task.parse().unwrap())
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Claims the one due task and finishes its attempt with `end`.
async fn run_turn(app: &TestApp, end: AttemptEnd) -> bounty_store::ClaimedTask {
    let claimed = app
        .store
        .claim_tasks("w-1", 1, Duration::from_secs(30))
        .await
        .unwrap()
        .pop()
        .expect("a task is due");
    assert!(finish_attempt(&app.store, &claimed, &end, &[]).await.unwrap());
    claimed
}

async fn a_later_turn_gets_fresh_attempts_and_its_failure_ends_the_conversation_uncharged(backend: Backend) {
    let app = app(backend, None).await;
    let (account, key) = app.create_account("Acme").await;
    agent(&app, &key, awaiting()).await;
    let task = app.task(&key, "support", "Cancel my plan.").await;
    let task = task["id"].as_str().unwrap().to_owned();
    let failure = |code: &str| bounty_store::TaskError {
        code: code.into(),
        message: "the model was unreachable".into(),
    };
    // Turn 1 uses two of its three attempts.
    let first = run_turn(
        &app,
        AttemptEnd::Retry {
            error: failure("provider_unreachable"),
            run_at: chrono::Utc::now(),
        },
    )
    .await;
    assert_eq!((first.attempt, first.task.max_attempts), (1, 3));
    run_turn(&app, answered("Which plan?", Decision::Pending)).await;
    let t1 = app.get_task(&key, &task).await;
    assert_eq!(t1["outcome"]["status"], "provisional", "{t1}");

    // The customer answers: turn 2 gets three attempts of its own, and
    // attempt numbers go on counting.
    json_of(
        message(&app, &key, &task, json!({"body": "The team plan."}), None).await,
        202,
    )
    .await;
    let second = run_turn(&app, AttemptEnd::Failed(failure("provider_error"))).await;
    assert_eq!(second.task.turn, 2);
    assert_eq!((second.attempt, second.task.max_attempts), (3, 5), "{second:?}");

    // Turn 2 failed for good: the conversation ends, never charged.
    let done = app.get_task(&key, &task).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["outcome"]["status"], "failed");
    let receipt = app
        .get_outcome(&key, done["outcome"]["id"].as_str().unwrap())
        .await;
    let events: Vec<&str> = receipt["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["verified", "continued", "task_failed"], "{receipt}");
    assert_eq!(transfers(&app, account, TransferKind::Charge).await, 0);
    let closed = message(&app, &key, &task, json!({"body": "Hello?"}), None).await;
    assert_error(closed, 409, "conversation_closed").await;
}
