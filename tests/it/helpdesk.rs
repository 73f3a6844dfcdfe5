//! Helpdesk integrations over HTTP: the `/v1/integrations` API, signed
//! vendor webhooks at `/webhooks/in/{id}` becoming tasks exactly once
//! (a duplicate storm included), refused signatures that store nothing
//! but a counter, resolution signals reaching the ticket's outcome, and
//! the reply written to the outbox when the task finishes.

use std::collections::BTreeMap;
use std::time::Duration;

use bounty_integrations::{Delivery, IntegrationKind, sign};
use bounty_models::testing::openai::FakeOpenAi;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, TestOptions, assert_error, json_of, test_worker, verified_at_once};

backend_tests!(
    integrations_are_created_shown_rotated_and_deleted,
    every_vendor_signed_delivery_becomes_one_task,
    refused_signatures_store_nothing_but_a_counter,
    a_rotated_secret_is_accepted_during_its_grace_period,
    another_process_rotating_or_deleting_is_seen_through_the_integration_cache,
    a_duplicate_storm_creates_exactly_one_task_per_ticket,
    solved_reopened_and_csat_reach_the_outcome_and_replies_are_queued,
    an_integration_whose_secret_no_key_opens_is_broken_not_a_500,
);

fn fixture(kind: IntegrationKind, name: &str) -> Vec<u8> {
    let path = format!(
        "{}/crates/bounty-integrations/tests/fixtures/{}/{name}.json",
        env!("CARGO_MANIFEST_DIR"),
        kind.as_str()
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn agent(app: &TestApp, key: &str, name: &str, policy: Value) -> Value {
    let body = json!({
        "name": name,
        "instructions": "Answer the ticket.",
        "model_route": ["fake"],
        "verifier_policy": policy,
    });
    json_of(app.create_agent(key, &body).await, 201).await
}

fn app_opts(fake: Option<&FakeOpenAi>, worker: bool) -> TestOptions {
    let url = fake
        .map(|f| f.base_url())
        .unwrap_or_else(|| "http://127.0.0.1:9".to_owned());
    TestOptions {
        worker: worker.then(test_worker),
        ..TestOptions::remote_models(&[("fake", &url)])
    }
}

pub(crate) async fn integration(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.request(Method::POST, "/v1/integrations", Some(key))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The headers `created`'s vendor sends with `body` signed with `secret`
/// at `now + skew`.
fn signed(created: &Value, secret: &str, body: &[u8], delivery_id: &str, skew: i64) -> Vec<(String, String)> {
    let kind: IntegrationKind = created["kind"].as_str().unwrap().parse().unwrap();
    let at = chrono::Utc::now() + chrono::Duration::seconds(skew);
    sign(
        kind,
        secret.as_bytes(),
        body,
        &Delivery {
            id: delivery_id,
            timestamp: at,
        },
    )
    .unwrap()
}

/// Posts `body` to the integration's inbound URL with `headers`.
async fn post_raw(
    app: &TestApp,
    created: &Value,
    headers: Vec<(String, String)>,
    body: &[u8],
) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!(
            "{}{}",
            app.base,
            created["inbound_url"].as_str().unwrap()
        ))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

/// Delivers `body` to the integration, signed with `secret` at `now + skew`.
pub(crate) async fn deliver(
    app: &TestApp,
    created: &Value,
    secret: &str,
    body: &[u8],
    delivery_id: &str,
    skew: i64,
) -> reqwest::Response {
    post_raw(
        app,
        created,
        signed(created, secret, body, delivery_id, skew),
        body,
    )
    .await
}

async fn integrations_are_created_shown_rotated_and_deleted(backend: Backend) {
    let app = TestApp::spawn_with(backend, app_opts(None, false)).await;
    let (_, key) = app.create_account("Acme").await;
    let (_, other) = app.create_account("Globex").await;
    agent(&app, &key, "support", verified_at_once()).await;

    let created = json_of(
        integration(
            &app,
            &key,
            json!({
                "kind": "zendesk",
                "name": "Acme Zendesk",
                "agent": "support",
                "reply": {"base_url": "https://acme.zendesk.com", "email": "bot@acme.test", "api_token": "zd-token-1"},
            }),
        )
        .await,
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("int_"));
    assert_eq!(created["inbound_url"], format!("/webhooks/in/{id}"));
    assert_eq!(created["reply_url"], "https://acme.zendesk.com");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32, "{secret}");
    // Never shown again, nor the vendor's token.
    let shown = json_of(
        app.request(Method::GET, &format!("/v1/integrations/{id}"), Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(shown.get("secret").is_none(), "{shown}");
    assert!(!shown.to_string().contains("zd-token-1"), "{shown}");
    let list = json_of(
        app.request(Method::GET, "/v1/integrations?limit=1", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert!(!list.to_string().contains(&secret));
    // The stored row holds no secret in the clear.
    let stored = app
        .store
        .get_integration(created_account(&app, &key).await, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.secret_sealed.contains(&secret));
    assert!(!stored.reply_sealed.unwrap().contains("zd-token-1"));

    // Rotation returns a new secret once.
    let rotated = json_of(
        app.request(
            Method::POST,
            &format!("/v1/integrations/{id}/rotate-secret"),
            Some(&key),
        )
        .json(&json!({"grace_hours": 2}))
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_ne!(rotated["secret"], secret.as_str());
    assert!(rotated["previous_secret_expires_at"].is_string());

    // Bad input names the field.
    for (body, param) in [
        (
            json!({"kind": "freshdesk", "name": "x", "agent": "support"}),
            "kind",
        ),
        (json!({"kind": "zendesk", "name": "", "agent": "support"}), "name"),
        (
            json!({"kind": "zendesk", "name": "x", "agent": "support", "reply": {"base_url": "https://a.zendesk.com"}}),
            "reply.email",
        ),
        (
            json!({"kind": "standard", "name": "x", "agent": "support", "reply": {"callback_url": "ftp://x"}}),
            "reply.callback_url",
        ),
        (
            json!({"kind": "intercom", "name": "x", "agent": "support", "secret": "short"}),
            "secret",
        ),
    ] {
        let err = assert_error(integration(&app, &key, body).await, 422, "validation_failed").await;
        assert_eq!(err["error"]["param"], param, "{err}");
    }
    assert_error(
        integration(
            &app,
            &key,
            json!({"kind": "zendesk", "name": "x", "agent": "nobody"}),
        )
        .await,
        422,
        "unknown_agent",
    )
    .await;
    assert_error(
        integration(
            &app,
            &key,
            json!({"kind": "zendesk", "name": "x", "agent": "support", "extra": 1}),
        )
        .await,
        400,
        "invalid_request",
    )
    .await;

    // Another tenant sees nothing of it.
    for (method, path) in [
        (Method::GET, format!("/v1/integrations/{id}")),
        (Method::DELETE, format!("/v1/integrations/{id}")),
        (Method::POST, format!("/v1/integrations/{id}/rotate-secret")),
        (Method::GET, format!("/v1/integrations/{id}/deliveries")),
    ] {
        let resp = app
            .request(method, &path, Some(&other))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_error(resp, 404, "not_found").await;
    }

    // Deleted: gone from the API and its URL.
    let resp = app
        .request(Method::DELETE, &format!("/v1/integrations/{id}"), Some(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = app
        .request(Method::GET, &format!("/v1/integrations/{id}"), Some(&key))
        .send()
        .await
        .unwrap();
    assert_error(resp, 404, "not_found").await;
    let resp = deliver(
        &app,
        &created,
        &secret,
        &fixture(IntegrationKind::Zendesk, "ticket_created"),
        "d1",
        0,
    )
    .await;
    assert_error(resp, 404, "not_found").await;

    // Without master keys, integrations cannot be made.
    let bare = TestApp::spawn_with(
        backend,
        TestOptions {
            master_key: false,
            ..app_opts(None, false)
        },
    )
    .await;
    let (_, bare_key) = bare.create_account("Bare").await;
    agent(&bare, &bare_key, "support", verified_at_once()).await;
    let err = assert_error(
        integration(
            &bare,
            &bare_key,
            json!({"kind": "standard", "name": "x", "agent": "support"}),
        )
        .await,
        503,
        "secrets_not_configured",
    )
    .await;
    assert!(err.to_string().contains("secrets.master_keys"), "{err}");
}

async fn created_account(app: &TestApp, key: &str) -> bounty_core::AccountId {
    let account = json_of(app.get_account(key).await, 200).await;
    account["id"].as_str().unwrap().parse().unwrap()
}

async fn every_vendor_signed_delivery_becomes_one_task(backend: Backend) {
    let app = TestApp::spawn_with(backend, app_opts(None, false)).await;
    let (account, key) = app.create_account("Acme").await;
    agent(&app, &key, "support", verified_at_once()).await;
    let cases = [
        (IntegrationKind::Zendesk, "ticket_created", "priority_changed"),
        (IntegrationKind::Intercom, "conversation_user_created", "ping"),
        (
            IntegrationKind::Chatwoot,
            "conversation_created",
            "conversation_typing_on",
        ),
        (IntegrationKind::Standard, "ticket_created", "ticket_assigned"),
    ];
    for (kind, created_fixture, ignored_fixture) in cases {
        let created = json_of(
            integration(
                &app,
                &key,
                json!({"kind": kind.as_str(), "name": kind.as_str(), "agent": "support"}),
            )
            .await,
            201,
        )
        .await;
        let secret = created["secret"].as_str().unwrap();
        let body = fixture(kind, created_fixture);
        let first = deliver(&app, &created, secret, &body, "delivery-1", 0).await;
        assert_eq!(first.status(), 202, "{kind:?}");
        let first: Value = first.json().await.unwrap();
        assert_eq!(first["result"], "task_created", "{kind:?}: {first}");
        let task_id = first["task_id"].as_str().unwrap().to_owned();
        // The same delivery again, even re-signed later: the first answer.
        let again = deliver(&app, &created, secret, &body, "delivery-1", 5).await;
        assert_eq!(again.status(), 200, "{kind:?}");
        assert_eq!(again.json::<Value>().await.unwrap(), first, "{kind:?}");
        let task = app.get_task(&key, &task_id).await;
        assert!(task["external_ref"].is_string(), "{task}");
        assert_eq!(task["input"]["metadata"]["source"], kind.as_str(), "{task}");
        assert!(!task["input"]["body"].as_str().unwrap().is_empty());
        // A type Bounty does not act on.
        let ignored = deliver(
            &app,
            &created,
            secret,
            &fixture(kind, ignored_fixture),
            "delivery-2",
            0,
        )
        .await;
        assert_eq!(ignored.status(), 202, "{kind:?}");
        assert_eq!(ignored.json::<Value>().await.unwrap()["status"], "ignored");
        // The delivery log shows the one accepted delivery.
        let deliveries = json_of(
            app.request(
                Method::GET,
                &format!("/v1/integrations/{}/deliveries", created["id"].as_str().unwrap()),
                Some(&key),
            )
            .send()
            .await
            .unwrap(),
            200,
        )
        .await;
        assert_eq!(deliveries["data"].as_array().unwrap().len(), 1, "{deliveries}");
        assert_eq!(deliveries["data"][0]["task_id"], task_id.as_str());
    }
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
    assert_eq!(tasks.items.len(), 4, "one task per vendor");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"bounty_helpdesk_deliveries_total{kind="zendesk",result="duplicate"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"bounty_helpdesk_deliveries_total{kind="standard",result="ignored"} 1"#),
        "{metrics}"
    );
}

async fn refused_signatures_store_nothing_but_a_counter(backend: Backend) {
    let app = TestApp::spawn_with(backend, app_opts(None, false)).await;
    let (account, key) = app.create_account("Acme").await;
    agent(&app, &key, "support", verified_at_once()).await;
    let created = json_of(
        integration(
            &app,
            &key,
            json!({"kind": "standard", "name": "std", "agent": "support"}),
        )
        .await,
        201,
    )
    .await;
    let secret = created["secret"].as_str().unwrap();
    let body = fixture(IntegrationKind::Standard, "ticket_created");
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    // Signed right, then changed on the way.
    let resp = post_raw(
        &app,
        &created,
        signed(&created, secret, &body, "bad-0", 0),
        &tampered,
    )
    .await;
    let err = assert_error(resp, 401, "invalid_signature").await;
    assert!(err.to_string().contains("no_matching_signature"), "{err}");
    let wrong = bounty_integrations::generate_secret(IntegrationKind::Standard).unwrap();
    use secrecy::ExposeSecret;
    let cases: Vec<(String, i64, &str)> = vec![
        (wrong.expose_secret().to_owned(), 0, "no_matching_signature"),
        (secret.to_owned(), 301, "timestamp_out_of_tolerance"),
        (secret.to_owned(), -301, "timestamp_out_of_tolerance"),
    ];
    for (i, (signing, skew, code)) in cases.iter().enumerate() {
        let resp = deliver(&app, &created, signing, &body, &format!("bad-{}", i + 1), *skew).await;
        let err = assert_error(resp, 401, "invalid_signature").await;
        assert!(err.to_string().contains(code), "{err}");
        assert!(
            !err.to_string().contains("Tracking page"),
            "no payload echoed: {err}"
        );
    }
    // Two signatures, one of them valid: accepted (rotation on the sender's side).
    let mut headers = signed(&created, secret, &body, "two", 0);
    let bogus = signed(&created, wrong.expose_secret(), &body, "two", 0);
    for (h, b) in headers.iter_mut().zip(bogus) {
        if h.0 == "webhook-signature" {
            h.1 = format!("{} {}", b.1, h.1);
        }
    }
    let resp = post_raw(&app, &created, headers, &body).await;
    assert_eq!(resp.status(), 202);
    // Missing headers entirely.
    let resp = app
        .client
        .post(format!(
            "{}{}",
            app.base,
            created["inbound_url"].as_str().unwrap()
        ))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let err = assert_error(resp, 401, "invalid_signature").await;
    assert!(err.to_string().contains("missing_header"), "{err}");
    // Nothing stored for the refused ones: only the valid delivery's task,
    // and the counter.
    let tasks = app
        .store
        .list_tasks(
            account,
            &Default::default(),
            bounty_core::PageLimit::new(10).unwrap(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(tasks.items.len(), 1);
    let shown = json_of(
        app.request(
            Method::GET,
            &format!("/v1/integrations/{}", created["id"].as_str().unwrap()),
            Some(&key),
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(shown["rejected_deliveries"], 5, "{shown}");
    assert_eq!(shown["last_rejected_code"], "missing_header");
    // A verified body that is not the vendor's: 400 naming the field.
    let resp = deliver(
        &app,
        &created,
        secret,
        br#"{"type": "ticket.created", "data": {}}"#,
        "b",
        0,
    )
    .await;
    let err = assert_error(resp, 400, "invalid_payload").await;
    assert!(err["error"]["param"].is_string(), "{err}");
    // An integration id that does not exist, or is malformed.
    for path in ["/webhooks/in/int_01JD3K8Q9V7Y2X4W6T5R3P1N0M", "/webhooks/in/nope"] {
        let resp = app
            .client
            .post(format!("{}{path}", app.base))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_error(resp, 404, "not_found").await;
    }
}

/// A server with an account, its agent `support`, and a Chatwoot
/// integration for it: (app, account, key, the created integration).
async fn chatwoot(backend: Backend) -> (TestApp, bounty_core::AccountId, String, Value) {
    let app = TestApp::spawn_with(backend, app_opts(None, false)).await;
    let (account, key) = app.create_account("Acme").await;
    agent(&app, &key, "support", verified_at_once()).await;
    let created = json_of(
        integration(
            &app,
            &key,
            json!({"kind": "chatwoot", "name": "cw", "agent": "support"}),
        )
        .await,
        201,
    )
    .await;
    (app, account, key, created)
}

async fn a_rotated_secret_is_accepted_during_its_grace_period(backend: Backend) {
    let (app, _, key, created) = chatwoot(backend).await;
    let old = created["secret"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap();
    let rotate = |grace: u32| {
        app.request(
            Method::POST,
            &format!("/v1/integrations/{id}/rotate-secret"),
            Some(&key),
        )
        .json(&json!({"grace_hours": grace}))
        .send()
    };
    let new = json_of(rotate(1).await.unwrap(), 200).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = fixture(IntegrationKind::Chatwoot, "conversation_created");
    assert_eq!(deliver(&app, &created, &old, &body, "r1", 0).await.status(), 202);
    let body2 = fixture(IntegrationKind::Chatwoot, "message_created_incoming");
    assert_eq!(deliver(&app, &created, &new, &body2, "r2", 0).await.status(), 200);
    // Rotating again with no grace: only the newest secret works.
    let newest = json_of(rotate(0).await.unwrap(), 200).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let body3 = fixture(IntegrationKind::Chatwoot, "conversation_status_resolved");
    assert_error(
        deliver(&app, &created, &new, &body3, "r3", 0).await,
        401,
        "invalid_signature",
    )
    .await;
    assert_eq!(
        deliver(&app, &created, &newest, &body3, "r3", 0).await.status(),
        200
    );
}

/// The server caches the integration a webhook URL names. Another
/// process (here a second store over the same database, with a cache of
/// its own) rotates the secret with no grace: the new secret is accepted
/// at once (a failed signature reads the integration again) and the old
/// one refused; it deletes the integration: the URL answers 404 within
/// the cache's bound.
async fn another_process_rotating_or_deleting_is_seen_through_the_integration_cache(backend: Backend) {
    let (app, account, _, created) = chatwoot(backend).await;
    let old = created["secret"].as_str().unwrap().to_owned();
    let id: bounty_core::IntegrationId = created["id"].as_str().unwrap().parse().unwrap();
    let body = fixture(IntegrationKind::Chatwoot, "conversation_created");
    // Read, and now cached by the server.
    assert_eq!(deliver(&app, &created, &old, &body, "c1", 0).await.status(), 202);

    let other = app
        .store_with_clock(std::sync::Arc::new(bounty_core::SystemClock))
        .await;
    let new = "whsec_rotated_by_another_process_0123456789";
    let sealed = app
        .keyring
        .as_ref()
        .unwrap()
        .seal_for(account, id, bounty_core::SealPurpose::Inbound, new.as_bytes())
        .unwrap();
    other
        .rotate_integration_secret(account, id, &sealed, other.now())
        .await
        .unwrap()
        .expect("rotated");
    let body2 = fixture(IntegrationKind::Chatwoot, "message_created_incoming");
    assert_eq!(
        deliver(&app, &created, new, &body2, "c2", 0).await.status(),
        200,
        "the new secret works at once"
    );
    assert_error(
        deliver(&app, &created, &old, &body2, "c3", 0).await,
        401,
        "invalid_signature",
    )
    .await;

    assert!(other.delete_integration(account, id).await.unwrap());
    tokio::time::sleep(bounty_store::integrations::INBOUND_CACHE_TTL).await;
    assert_error(
        deliver(&app, &created, new, &body2, "c4", 0).await,
        404,
        "not_found",
    )
    .await;
}

/// 1,000 tickets, each delivered 1 to 5 times in a random order, a tenth
/// of them with their duplicates sent at the same moment: exactly 1,000
/// tasks, and every duplicate answered with its first answer.
async fn a_duplicate_storm_creates_exactly_one_task_per_ticket(backend: Backend) {
    // Batchers side by side on Postgres (SQLite has one): copies of a
    // delivery must still meet on one of them.
    let opts = TestOptions {
        group: bounty_store::GroupCommit {
            batchers: 4,
            ..Default::default()
        },
        ..app_opts(None, false)
    };
    let app = TestApp::spawn_with(backend, opts).await;
    let (account, key) = app.create_account("Acme").await;
    agent(&app, &key, "support", verified_at_once()).await;
    let created = json_of(
        integration(
            &app,
            &key,
            json!({"kind": "standard", "name": "storm", "agent": "support"}),
        )
        .await,
        201,
    )
    .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    let tickets = 1_000;
    let mut seed: u64 = 0xd00d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // (ticket, copies, at once)
    let mut plan: Vec<(usize, u64, bool)> = (0..tickets)
        .map(|t| (t, 1 + next() % 5, next() % 10 == 0))
        .collect();
    for i in (1..plan.len()).rev() {
        plan.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    let body_of = |t: usize| {
        json!({
            "type": "ticket.created",
            "timestamp": "2026-12-01T22:00:00Z",
            "data": {"ticket_id": format!("T-{t}"), "subject": "Help", "body": format!("ticket number {t}")},
        })
        .to_string()
        .into_bytes()
    };
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    let answers = std::sync::Arc::new(tokio::sync::Mutex::new(BTreeMap::<usize, Vec<Value>>::new()));
    let mut jobs = Vec::new();
    let sequential: Vec<(usize, u64)> = plan.iter().filter(|p| !p.2).map(|p| (p.0, p.1)).collect();
    let concurrent: Vec<(usize, u64)> = plan.iter().filter(|p| p.2).map(|p| (p.0, p.1.max(2))).collect();
    let app = std::sync::Arc::new(app);
    let created = std::sync::Arc::new(created);
    for (t, copies) in sequential {
        let (app, created, secret, semaphore, answers) = (
            app.clone(),
            created.clone(),
            secret.clone(),
            semaphore.clone(),
            answers.clone(),
        );
        let body = body_of(t);
        jobs.push(tokio::spawn(async move {
            let _permit = semaphore.acquire().await.unwrap();
            for _ in 0..copies {
                let resp = deliver(&app, &created, &secret, &body, &format!("msg_{t}"), 0).await;
                assert!(resp.status() == 202 || resp.status() == 200, "{}", resp.status());
                answers
                    .lock()
                    .await
                    .entry(t)
                    .or_default()
                    .push(resp.json().await.unwrap());
            }
        }));
    }
    for (t, copies) in concurrent {
        let (app, created, secret, semaphore, answers) = (
            app.clone(),
            created.clone(),
            secret.clone(),
            semaphore.clone(),
            answers.clone(),
        );
        let body = body_of(t);
        jobs.push(tokio::spawn(async move {
            let _permit = semaphore.acquire().await.unwrap();
            // Every copy at the same moment.
            let sends: Vec<_> = (0..copies)
                .map(|_| {
                    let (app, created, secret, body) =
                        (app.clone(), created.clone(), secret.clone(), body.clone());
                    tokio::spawn(async move {
                        let resp = deliver(&app, &created, &secret, &body, &format!("msg_{t}"), 0).await;
                        assert!(resp.status() == 202 || resp.status() == 200, "{}", resp.status());
                        resp.json::<Value>().await.unwrap()
                    })
                })
                .collect();
            for send in sends {
                let answer = send.await.unwrap();
                answers.lock().await.entry(t).or_default().push(answer);
            }
        }));
    }
    for job in jobs {
        job.await.unwrap();
    }
    let mut count = 0;
    let mut after = None;
    loop {
        let page = app
            .store
            .list_tasks(
                account,
                &Default::default(),
                bounty_core::PageLimit::new(100).unwrap(),
                after,
            )
            .await
            .unwrap();
        count += page.items.len();
        match page.next_cursor {
            Some(c) => after = Some(c.parse().unwrap()),
            None => break,
        }
    }
    assert_eq!(count, tickets, "exactly one task per ticket");
    assert!(
        app.store.group_stats().set_units > 0,
        "new tickets arriving together were written set-wise"
    );
    for (t, answers) in answers.lock().await.iter() {
        assert!(
            answers.windows(2).all(|w| w[0] == w[1]),
            "ticket {t}: {answers:?}"
        );
        assert_eq!(answers[0]["result"], "task_created");
    }
}

async fn solved_reopened_and_csat_reach_the_outcome_and_replies_are_queued(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let app = TestApp::spawn_with(backend, app_opts(Some(&fake), true)).await;
    let (account, key) = app.create_account("Acme").await;
    // Outcomes wait for the helpdesk's word.
    agent(
        &app,
        &key,
        "support",
        json!({"verifiers": [{"kind": "external"}], "window_hours": 72, "lapse_decision": "fail"}),
    )
    .await;
    let created = json_of(
        integration(
            &app,
            &key,
            json!({"kind": "standard", "name": "std", "agent": "support", "reply": {"callback_url": "http://127.0.0.1:9/hook"}}),
        )
        .await,
        201,
    )
    .await;
    assert!(created["reply_secret"].as_str().unwrap().starts_with("whsec_"));
    let secret = created["secret"].as_str().unwrap().to_owned();
    let ticket = |t: &str, kind: &str, extra: Value| {
        let mut data = json!({"ticket_id": t, "subject": "Refund", "body": "Where is my refund?"});
        if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        json!({"type": kind, "timestamp": "2026-12-01T22:00:00Z", "data": data})
            .to_string()
            .into_bytes()
    };
    // A signal before any task: recorded, not lost silently.
    let early: Value = deliver(
        &app,
        &created,
        &secret,
        &ticket("T-9", "ticket.solved", json!({})),
        "e1",
        0,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(early["result"], "recorded", "{early}");

    let mut outcomes = BTreeMap::new();
    for t in ["T-1", "T-2", "T-3"] {
        let resp: Value = deliver(
            &app,
            &created,
            &secret,
            &ticket(t, "ticket.created", json!({})),
            &format!("c-{t}"),
            0,
        )
        .await
        .json()
        .await
        .unwrap();
        let task = app
            .wait_for_task(&key, resp["task_id"].as_str().unwrap(), Duration::from_secs(30))
            .await;
        assert_eq!(task["outcome"]["status"], "provisional", "{task}");
        outcomes.insert(t, task["outcome"]["id"].as_str().unwrap().to_owned());
    }
    // T-1 solved: charged. T-2 reopened inside the window: never charged.
    // T-3 rated 5/5 (100): confirmed by CSAT.
    for (t, kind, extra, id) in [
        ("T-1", "ticket.solved", json!({}), "s1"),
        ("T-2", "ticket.reopened", json!({}), "s2"),
        ("T-3", "ticket.satisfaction_rated", json!({"score": 100}), "s3"),
    ] {
        let resp: Value = deliver(&app, &created, &secret, &ticket(t, kind, extra), id, 0)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(resp["result"], "signal_applied", "{t}: {resp}");
    }
    let status = |id: &str| {
        let id = id.to_owned();
        let app = &app;
        let key = &key;
        async move {
            json_of(
                app.request(Method::GET, &format!("/v1/outcomes/{id}"), Some(key))
                    .send()
                    .await
                    .unwrap(),
                200,
            )
            .await
        }
    };
    assert_eq!(status(&outcomes["T-1"]).await["status"], "resolved");
    let reopened = status(&outcomes["T-2"]).await;
    assert_eq!(reopened["status"], "failed", "{reopened}");
    assert_eq!(reopened["amount_micros"], 0);
    assert_eq!(status(&outcomes["T-3"]).await["status"], "resolved");
    let charges = app
        .store
        .transfers(account, None, Some(bounty_core::ledger::TransferKind::Charge))
        .await
        .unwrap();
    assert_eq!(charges.len(), 2, "T-1 and T-3 charged once each, T-2 never");
    // Every finished ticket task queued exactly one reply to its ticket.
    let replies: Vec<_> = app
        .store
        .outbox_of(account)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.kind == bounty_core::outbox::OutboxKind::HelpdeskReply)
        .collect();
    assert_eq!(replies.len(), 3, "{replies:?}");
    for reply in &replies {
        assert_eq!(reply.payload["action"], "resolve", "{reply:?}");
        assert_eq!(reply.payload["integration_id"], created["id"]);
        assert!(reply.payload["body"].as_str().is_some_and(|b| !b.is_empty()));
    }
}

async fn an_integration_whose_secret_no_key_opens_is_broken_not_a_500(backend: Backend) {
    let app = TestApp::spawn_with(backend, app_opts(None, false)).await;
    let (account, key) = app.create_account("Acme").await;
    agent(&app, &key, "support", verified_at_once()).await;
    let created = json_of(
        integration(
            &app,
            &key,
            json!({"kind": "standard", "name": "Desk", "agent": "support"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["status"], "active", "{created}");
    assert!(created["reason"].is_null(), "{created}");
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    // Its secret sealed under a master key this server does not hold (the
    // same id, other bytes: as a demo's throwaway key was after a
    // restart), the old secret's grace already over.
    let stored = app
        .store
        .get_integration(account, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let gone = bounty_integrations::Keyring::new(
        "k1".parse().unwrap(),
        bounty_integrations::SealKey::generate().unwrap(),
    );
    let sealed = gone
        .seal(
            secret.as_bytes(),
            bounty_core::sealing_aad(stored.account_id, stored.id, bounty_core::SealPurpose::Inbound)
                .as_bytes(),
        )
        .unwrap();
    let past = app.store.now() - chrono::Duration::hours(1);
    app.store
        .rotate_integration_secret(account, stored.id, &sealed, past)
        .await
        .unwrap()
        .unwrap();

    let shown = json_of(
        app.request(Method::GET, &format!("/v1/integrations/{id}"), Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(shown["status"], "broken", "{shown}");
    assert_eq!(shown["reason"], "secret_unreadable", "{shown}");
    let listed = json_of(
        app.request(Method::GET, "/v1/integrations", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(listed["data"][0]["status"], "broken", "{listed}");
    assert_eq!(listed["data"][0]["reason"], "secret_unreadable", "{listed}");

    // A delivery, signed with the secret the helpdesk has: a 503 with a
    // stable code (retry later), not a 500; nothing is stored.
    let body = standard_ticket("T-1");
    let resp = deliver(&app, &created, secret, &body, "msg_broken_1", 0).await;
    assert_eq!(
        resp.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let e = assert_error(resp, 503, "secret_unreadable").await;
    assert!(e["error"]["message"].as_str().unwrap().contains(id), "{e}");
    let deliveries = json_of(
        app.request(
            Method::GET,
            &format!("/v1/integrations/{id}/deliveries"),
            Some(&key),
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(deliveries["data"], json!([]), "{deliveries}");

    // Rotating the secret mends it: the new one verifies.
    let rotated = json_of(
        app.request(
            Method::POST,
            &format!("/v1/integrations/{id}/rotate-secret"),
            Some(&key),
        )
        .json(&json!({"grace_hours": 0}))
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(rotated["status"], "active", "{rotated}");
    let fresh = rotated["secret"].as_str().unwrap();
    let resp = deliver(&app, &created, fresh, &body, "msg_broken_2", 0).await;
    assert_eq!(resp.status(), 202);
}

/// A Standard `ticket.created` body for ticket `id`.
fn standard_ticket(id: &str) -> Vec<u8> {
    json!({
        "type": "ticket.created",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "data": {"ticket_id": id, "subject": "Help", "body": "Where is my refund?"},
    })
    .to_string()
    .into_bytes()
}
