//! Replies back to the helpdesks: a ticket that arrives by webhook is
//! worked by the agent, and the reply sender posts the answer (or, when
//! verification fails, a hand-off note) onto the ticket of each vendor's
//! fake API, exactly once, through 429, "applied but answered 500" and
//! 410.

use std::sync::Arc;
use std::time::Duration;

use bounty_integrations::sender::{ReplySender, ReplySenderConfig};
use bounty_integrations::signature::Delivery;
use bounty_integrations::testing::{FakeHelpdesk, Fault, PostKind};
use bounty_integrations::{IntegrationKind, sign};
use bounty_models::testing::openai::FakeOpenAi;
use bounty_store::Store;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, TestOptions, json_of, test_worker, verified_at_once};

backend_tests!(
    answers_reach_every_vendor_once,
    a_failed_verification_hands_the_ticket_to_a_person,
    rate_limits_lost_answers_and_gone_endpoints,
    a_slow_helpdesk_delays_only_its_own_replies,
);

const WAIT: Duration = Duration::from_secs(30);

async fn app(backend: Backend, fake: &FakeOpenAi) -> TestApp {
    let url = fake.base_url();
    TestApp::spawn_with(
        backend,
        TestOptions {
            worker: Some(test_worker()),
            ..TestOptions::remote_models(&[("fake", &url)])
        },
    )
    .await
}

fn sender(app: &TestApp) -> ReplySender {
    sender_over(app, app.store.clone())
}

/// A reply sender over `store` (another clock, say) with the app's keys.
fn sender_over(app: &TestApp, store: Store) -> ReplySender {
    ReplySender::new(
        store,
        Arc::new(app.keyring.clone().expect("the test app has master keys")),
        reqwest::Client::new(),
        ReplySenderConfig {
            batch: 8,
            lease: Duration::from_millis(200),
            poll_interval: Duration::from_millis(10),
            ..ReplySenderConfig::default()
        },
    )
}

/// The reply settings pointing `kind` at the fake.
fn reply_of(kind: IntegrationKind, helpdesk: &FakeHelpdesk) -> Value {
    match kind {
        IntegrationKind::Zendesk => json!({
            "base_url": helpdesk.base_url(),
            "email": FakeHelpdesk::ZENDESK_EMAIL,
            "api_token": FakeHelpdesk::ZENDESK_API_TOKEN,
        }),
        IntegrationKind::Intercom => json!({
            "base_url": helpdesk.base_url(),
            "access_token": FakeHelpdesk::INTERCOM_ACCESS_TOKEN,
            "admin_id": FakeHelpdesk::INTERCOM_ADMIN_ID,
        }),
        IntegrationKind::Chatwoot => json!({
            "base_url": helpdesk.base_url(),
            "api_access_token": FakeHelpdesk::CHATWOOT_API_ACCESS_TOKEN,
            "account_id": FakeHelpdesk::CHATWOOT_ACCOUNT_ID,
        }),
        IntegrationKind::Standard => json!({
            "callback_url": helpdesk.standard_url(),
            "secret": FakeHelpdesk::STANDARD_SECRET,
        }),
    }
}

/// A ticket-created webhook body for `kind` with ticket `ticket`.
fn created(kind: IntegrationKind, ticket: &str) -> Vec<u8> {
    let body = match kind {
        IntegrationKind::Zendesk => json!({
            "type": "zen:event-type:ticket.created",
            "account_id": 10_233_456,
            "id": format!("evt-{ticket}"),
            "subject": format!("zen:ticket:{ticket}"),
            "time": "2026-12-01T22:00:00Z",
            "zendesk_event_version": "2022-11-06",
            "detail": {"id": ticket, "subject": "Refund", "description": "Where is my refund?", "status": "NEW",
                        "requester_id": "8", "created_at": "2026-12-01T22:00:00Z"},
            "event": {},
        }),
        IntegrationKind::Intercom => json!({
            "type": "notification_event",
            "topic": "conversation.user.created",
            "id": format!("notif_{ticket}"),
            "created_at": 1_796_162_400,
            "data": {"item": {"type": "conversation", "id": ticket, "state": "open",
                "source": {"subject": "Refund", "body": "<p>Where is my refund?</p>",
                           "author": {"type": "user", "id": "u1", "email": "a@b.test", "name": "A"}}}},
        }),
        IntegrationKind::Chatwoot => json!({
            "event": "conversation_created",
            "id": ticket.parse::<i64>().unwrap_or(1),
            "status": "open",
            "messages": [{"id": 1, "content": "Where is my refund?", "message_type": 0}],
            "meta": {"sender": {"id": 7, "name": "A", "email": "a@b.test"}},
            "account": {"id": 3},
        }),
        IntegrationKind::Standard => json!({
            "type": "ticket.created",
            "timestamp": "2026-12-01T22:00:00Z",
            "data": {"ticket_id": ticket, "subject": "Refund", "body": "Where is my refund?"},
        }),
    };
    body.to_string().into_bytes()
}

/// Creates an integration of `kind` replying to `helpdesk`, delivers a new
/// ticket and waits for its task; returns (integration, task).
async fn ticket_through(
    app: &TestApp,
    key: &str,
    kind: IntegrationKind,
    helpdesk: &FakeHelpdesk,
    agent: &str,
    ticket: &str,
) -> (Value, Value) {
    let integration = json_of(
        app.request(Method::POST, "/v1/integrations", Some(key))
            .json(&json!({"kind": kind.as_str(), "name": kind.as_str(), "agent": agent, "reply": reply_of(kind, helpdesk)}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let secret = integration["secret"].as_str().unwrap();
    let body = created(kind, ticket);
    let headers = sign(
        kind,
        secret.as_bytes(),
        &body,
        &Delivery {
            id: &format!("d-{ticket}"),
            timestamp: chrono::Utc::now(),
        },
    )
    .unwrap();
    let mut request = app
        .client
        .post(format!(
            "{}{}",
            app.base,
            integration["inbound_url"].as_str().unwrap()
        ))
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let resp = request.send().await.unwrap();
    assert_eq!(resp.status(), 202, "{kind:?}: {}", resp.text().await.unwrap());
    let accepted: Value = resp.json().await.unwrap_or_default();
    let task_id = match accepted["task_id"].as_str() {
        Some(id) => id.to_owned(),
        None => panic!("{kind:?}: no task in {accepted}"),
    };
    let task = app.wait_for_task(key, &task_id, WAIT).await;
    (integration, task)
}

/// Drains the reply rows until none is pending.
async fn drain(sender: &ReplySender, store: &Store) {
    for _ in 0..300 {
        sender.drain_once().await.unwrap();
        let pending = store
            .admin_list_outbox(
                Some(bounty_core::outbox::OutboxStatus::Pending),
                bounty_core::PageLimit::new(100).unwrap(),
                None,
            )
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|o| o.kind == bounty_core::outbox::OutboxKind::HelpdeskReply)
            .count();
        if pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the replies did not drain");
}

async fn agent(app: &TestApp, key: &str, name: &str, policy: Value) {
    let body =
        json!({"name": name, "instructions": "Answer.", "model_route": ["fake"], "verifier_policy": policy});
    json_of(app.create_agent(key, &body).await, 201).await;
}

async fn answers_reach_every_vendor_once(backend: Backend) {
    let model = FakeOpenAi::start().await;
    let app = app(backend, &model).await;
    let helpdesk = FakeHelpdesk::start().await;
    let (_, key) = app.create_account("Acme").await;
    agent(&app, &key, "support", verified_at_once()).await;
    let kinds = [
        (IntegrationKind::Zendesk, "4501"),
        (IntegrationKind::Intercom, "215467"),
        (IntegrationKind::Chatwoot, "88"),
        (IntegrationKind::Standard, "T-1"),
    ];
    for (kind, ticket) in kinds {
        let (_, task) = ticket_through(&app, &key, kind, &helpdesk, "support", ticket).await;
        assert_eq!(task["outcome"]["status"], "resolved", "{kind:?}: {task}");
    }
    let sender = sender(&app);
    drain(&sender, &app.store).await;
    // Draining again posts nothing more.
    sender.drain_once().await.unwrap();
    let posts = helpdesk.posts();
    for (kind, ticket) in kinds {
        let of_ticket: Vec<_> = posts
            .iter()
            .filter(|p| p.vendor == kind && p.ticket == ticket)
            .collect();
        let replies = of_ticket
            .iter()
            .filter(|p| matches!(p.kind, PostKind::Reply | PostKind::Webhook(_)))
            .count();
        assert_eq!(replies, 1, "{kind:?}: {of_ticket:?}");
        let done = of_ticket.iter().any(|p| {
            matches!(
                &p.kind,
                PostKind::Solve | PostKind::Close | PostKind::Resolve | PostKind::Webhook(_)
            )
        });
        assert!(done, "{kind:?} was not marked solved: {of_ticket:?}");
        assert!(
            of_ticket.iter().all(|p| p.kind != PostKind::Note),
            "{kind:?}: {of_ticket:?}"
        );
    }
}

async fn a_failed_verification_hands_the_ticket_to_a_person(backend: Backend) {
    let model = FakeOpenAi::start().await;
    let app = app(backend, &model).await;
    let helpdesk = FakeHelpdesk::start().await;
    let (account, key) = app.create_account("Acme").await;
    // The answer must mention a word it never will.
    agent(
        &app,
        &key,
        "strict",
        json!({"verifiers": [{"kind": "rules", "must_match": ["(?i)xyzzy-never"]}]}),
    )
    .await;
    let (_, task) = ticket_through(&app, &key, IntegrationKind::Zendesk, &helpdesk, "strict", "777").await;
    assert_eq!(task["outcome"]["status"], "failed", "{task}");
    drain(&sender(&app), &app.store).await;
    let posts = helpdesk.posts();
    assert_eq!(
        posts.iter().filter(|p| p.kind == PostKind::Note).count(),
        1,
        "{posts:?}"
    );
    assert!(
        posts
            .iter()
            .all(|p| p.kind != PostKind::Reply && p.kind != PostKind::Solve),
        "{posts:?}"
    );
    assert!(
        posts
            .iter()
            .any(|p| p.kind == PostKind::Tag("bounty_handoff".to_owned())),
        "{posts:?}"
    );
    let note = posts.iter().find(|p| p.kind == PostKind::Note).unwrap();
    assert!(
        note.body.as_deref().unwrap().contains("nothing is charged"),
        "{note:?}"
    );
    assert!(
        app.store
            .transfers(account, None, Some(bounty_core::ledger::TransferKind::Charge))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn rate_limits_lost_answers_and_gone_endpoints(backend: Backend) {
    let model = FakeOpenAi::start().await;
    let app = app(backend, &model).await;
    let helpdesk = FakeHelpdesk::start().await;
    let (account, key) = app.create_account("Acme").await;
    agent(&app, &key, "support", verified_at_once()).await;
    // 429 with Retry-After: the row waits at least that long.
    let (_, _) = ticket_through(&app, &key, IntegrationKind::Chatwoot, &helpdesk, "support", "41").await;
    // The sender reads time from a clock the test moves past backoffs.
    let clock = Arc::new(bounty_core::ManualClock::new(chrono::Utc::now()));
    let store = app.store_with_clock(clock.clone()).await;
    let sender = sender_over(&app, store.clone());
    helpdesk.push_fault(Fault::Status(429, Some(Duration::from_secs(120))));
    let before = store.now();
    sender.drain_once().await.unwrap();
    let row = app
        .store
        .outbox_of(account)
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.kind == bounty_core::outbox::OutboxKind::HelpdeskReply)
        .unwrap();
    assert_eq!(row.status, bounty_core::outbox::OutboxStatus::Pending);
    assert!(
        row.next_attempt_at >= before + chrono::Duration::seconds(119),
        "{row:?}"
    );
    assert!(helpdesk.posts().is_empty());

    // Applied, but the answer was lost: the resend finds the marker and
    // posts nothing twice.
    let (_, _) = ticket_through(&app, &key, IntegrationKind::Intercom, &helpdesk, "support", "42").await;
    helpdesk.push_fault(Fault::ApplyThenFail);
    sender.drain_once().await.unwrap();
    for _ in 0..50 {
        // Past the backoff (5 s on the first retry), not past the 429's 120 s.
        clock.advance(chrono::Duration::seconds(6));
        sender.drain_once().await.unwrap();
        if helpdesk
            .posts()
            .iter()
            .any(|p| p.ticket == "42" && p.kind == PostKind::Close)
        {
            break;
        }
    }
    let replies: Vec<_> = helpdesk
        .posts()
        .into_iter()
        .filter(|p| p.ticket == "42" && p.kind == PostKind::Reply)
        .collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    let sent = app
        .store
        .outbox_of(account)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| {
            o.kind == bounty_core::outbox::OutboxKind::HelpdeskReply
                && o.status == bounty_core::outbox::OutboxStatus::Sent
                && o.payload["ticket"] == "42"
        })
        .map(|o| o.sent_as.unwrap_or_default())
        .collect::<Vec<_>>();
    assert_eq!(sent, vec!["already_posted"], "{sent:?}");

    // 410: the integration's reply-back is disabled and the row parked.
    let (integration, _) =
        ticket_through(&app, &key, IntegrationKind::Zendesk, &helpdesk, "support", "43").await;
    helpdesk.push_fault(Fault::Gone);
    sender.drain_once().await.unwrap();
    let shown = json_of(
        app.request(
            Method::GET,
            &format!("/v1/integrations/{}", integration["id"].as_str().unwrap()),
            Some(&key),
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(shown["status"], "disabled", "{shown}");
    let parked = app
        .store
        .admin_list_outbox(
            Some(bounty_core::outbox::OutboxStatus::Failed),
            bounty_core::PageLimit::new(10).unwrap(),
            None,
        )
        .await
        .unwrap()
        .items;
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert!(
        parked[0].last_error.as_deref().unwrap().contains("410"),
        "{parked:?}"
    );
    // The helpdesk still refuses the test ping: it stays off, nothing is
    // queued, and the error names the ping.
    let id = integration["id"].as_str().unwrap();
    helpdesk.push_fault(Fault::Status(401, None));
    let refused = json_of(
        app.request(Method::POST, &format!("/v1/integrations/{id}/enable"), Some(&key))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(refused["error"]["code"], "integration_ping_failed", "{refused}");
    assert_eq!(refused["error"]["param"], "ping", "{refused}");
    assert!(
        refused["error"]["message"].as_str().unwrap().contains("401"),
        "{refused}"
    );
    let pinged = helpdesk.requests();
    assert_eq!(pinged.last().unwrap().path, "/api/v2/users/me.json");
    // Re-enabled once the ping is answered: the reply parked meanwhile is
    // queued again and posted.
    let enabled = json_of(
        app.request(Method::POST, &format!("/v1/integrations/{id}/enable"), Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(enabled["replies_queued"], 1, "{enabled}");
    assert_eq!(enabled["pinged"], true, "{enabled}");
    assert_eq!(enabled["integration"]["status"], "active", "{enabled}");
    assert!(!helpdesk.posts().iter().any(|p| p.ticket == "43"));
    for _ in 0..3 {
        sender.drain_once().await.unwrap();
    }
    assert!(
        helpdesk.posts().iter().any(|p| p.ticket == "43"),
        "the parked reply was not posted"
    );
    // Enabling again changes nothing; another tenant cannot.
    let again = json_of(
        app.request(Method::POST, &format!("/v1/integrations/{id}/enable"), Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(again["replies_queued"], 0);
    let (_, other) = app.create_account("Globex").await;
    let refused = app
        .request(
            Method::POST,
            &format!("/v1/integrations/{id}/enable"),
            Some(&other),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 404);
}

/// Head-of-line: one sender's batch holds replies to a slow helpdesk and
/// to a fast one; the fast one's reply is posted while the slow one's is
/// still waiting on its answer.
async fn a_slow_helpdesk_delays_only_its_own_replies(backend: Backend) {
    let model = FakeOpenAi::start().await;
    let app = app(backend, &model).await;
    let slow = FakeHelpdesk::start().await;
    let fast = FakeHelpdesk::start().await;
    let (_, key) = app.create_account("Acme").await;
    agent(&app, &key, "support", verified_at_once()).await;
    ticket_through(&app, &key, IntegrationKind::Standard, &slow, "support", "SLOW-1").await;
    ticket_through(&app, &key, IntegrationKind::Standard, &fast, "support", "FAST-1").await;
    slow.push_fault(Fault::Delay(Duration::from_secs(3)));
    let sender = sender(&app);
    let running = tokio::spawn(async move { sender.drain_once().await.unwrap() });
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while fast.posts().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        fast.posts().len(),
        1,
        "the fast helpdesk waited behind the slow one"
    );
    assert!(slow.posts().is_empty(), "the slow helpdesk answered early");
    assert_eq!(running.await.unwrap(), 2);
    assert_eq!(slow.posts().len(), 1);
}
