//! Events out, end to end on both backends: webhook endpoints (created
//! with a secret shown once, rotated, isolated per tenant, bad URLs
//! refused naming the field), events written in the transaction of their
//! change and listed by `GET /v1/events`, and their delivery: signed to
//! the Standard Webhooks spec (checked here with the reference algorithm
//! written out on its own), each event once, retried on the schedule,
//! 429's `Retry-After` honoured, 410 disabling the endpoint.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use bounty_core::Decision;
use bounty_integrations::webhooks::{WebhookSender, WebhookSenderConfig};
use hmac::Mac as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::billing::{add_agent, answered, queue_and_claim, store_test_policy};
use crate::support::{Backend, TestApp, TestOptions, assert_error, json_of};

backend_tests!(
    endpoints_are_made_shown_once_rotated_and_kept_per_tenant,
    bad_endpoint_urls_are_refused_naming_the_field,
    every_event_reaches_its_endpoint_once_signed_and_listed,
    failures_are_retried_on_the_schedule_429_waits_and_410_disables,
    an_event_exists_only_with_its_change,
    the_standard_schedule_runs_on_the_stores_clock,
    every_event_type_is_written_once_per_change_and_delivered_across_crashes,
    sixteen_endpoints_at_most_and_events_can_be_turned_off,
);

/// A receiver on loopback: records each delivery (headers, body) and
/// answers each with the next scripted status (200 when none is left).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Scripted>>>,
    /// Requests still to hold for 5 s before answering (a sender that
    /// dies meanwhile never hears back).
    stall: Arc<std::sync::atomic::AtomicUsize>,
}

/// A delivery as it arrived: its headers and body.
type Received = (HeaderMap, Vec<u8>);
/// An answer to give: a status, and maybe a `Retry-After`.
type Scripted = (u16, Option<&'static str>);

impl Receiver {
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let r = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let r = r.clone();
                async move {
                    r.got.lock().unwrap().push((headers, body.to_vec()));
                    let stalled = r
                        .stall
                        .fetch_update(
                            std::sync::atomic::Ordering::SeqCst,
                            std::sync::atomic::Ordering::SeqCst,
                            |n| n.checked_sub(1),
                        )
                        .is_ok();
                    if stalled {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                    let (status, retry_after) = r.script.lock().unwrap().pop_front().unwrap_or((200, None));
                    let mut response = axum::response::Response::new(axum::body::Body::from("thanks"));
                    *response.status_mut() = StatusCode::from_u16(status).unwrap();
                    if let Some(after) = retry_after {
                        response
                            .headers_mut()
                            .insert("retry-after", after.parse().unwrap());
                    }
                    response
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn script(&self, replies: &[Scripted]) {
        self.script.lock().unwrap().extend(replies.iter().copied());
    }

    fn deliveries(&self) -> Vec<(HeaderMap, Value)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(h, b)| (h.clone(), serde_json::from_slice(b).unwrap()))
            .collect()
    }

    fn raw(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// The Standard Webhooks reference check, written from the spec: the
/// HMAC-SHA256 of `{id}.{timestamp}.{body}` under the base64 key after
/// `whsec_`, base64, matched against any `v1,` signature in the header.
fn verifies(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp, signatures) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    signatures
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn_with(
        backend,
        TestOptions {
            webhooks_allow_private: true,
            ..TestOptions::default()
        },
    )
    .await
}

/// A sender with a fast schedule: 0, 50 ms, 100 ms, then give up.
fn sender(app: &TestApp) -> WebhookSender {
    WebhookSender::new(
        app.store.clone(),
        Arc::new(app.keyring.clone().unwrap()),
        WebhookSenderConfig {
            batch: 16,
            lease: Duration::from_millis(500),
            poll_interval: Duration::from_millis(10),
            schedule: vec![
                Duration::ZERO,
                Duration::from_millis(50),
                Duration::from_millis(100),
            ],
            allow_private: true,
            timeout: Duration::from_secs(5),
            ..WebhookSenderConfig::default()
        },
    )
    .unwrap()
}

/// Delivers until nothing is due for `settle`.
async fn deliver_all(sender: &WebhookSender, settle: Duration) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut idle_since = std::time::Instant::now();
    while std::time::Instant::now() < deadline {
        if sender.drain_once().await.unwrap() > 0 {
            idle_since = std::time::Instant::now();
        } else if idle_since.elapsed() >= settle {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn create(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.call(Method::POST, "/v1/webhook-endpoints", key, Some(body))
        .await
}

/// One task of `account` finished and verified: an outcome, its charge,
/// the task's completion.
async fn finish_one(app: &TestApp, account: bounty_core::AccountId, n: usize) {
    let agent = match app
        .store
        .list_agents(account, bounty_core::PageLimit::new(1).unwrap(), None)
        .await
    {
        Ok(page) if !page.items.is_empty() => page.items[0].id,
        _ => add_agent(&app.store, account, store_test_policy()).await,
    };
    let claimed = queue_and_claim(&app.store, account, agent, format!("ticket {n}")).await;
    assert!(
        bounty_agents::finish::finish_attempt(&app.store, &claimed, &answered("done", Decision::Pass), &[])
            .await
            .unwrap()
    );
}

async fn endpoints_are_made_shown_once_rotated_and_kept_per_tenant(backend: Backend) {
    let app = app(backend).await;
    let (_, key) = app.create_account("Acme").await;
    let (_, url) = Receiver::start().await;
    let made = json_of(
        create(&app, &key, &json!({"url": url, "event_types": ["charge.created", "outcome.resolved"], "description": "finance"})).await,
        201,
    )
    .await;
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("we_"));
    let secret = made["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{made}");
    assert_eq!(made["event_types"], json!(["charge.created", "outcome.resolved"]));
    assert_eq!(
        (made["enabled"].as_bool(), made["livemode"].as_bool()),
        (Some(true), Some(true))
    );
    // Never shown again: not on get, list or change.
    let got = json_of(
        app.call(Method::GET, &format!("/v1/webhook-endpoints/{id}"), &key, None)
            .await,
        200,
    )
    .await;
    assert!(got.get("secret").is_none() && !got.to_string().contains(&secret));
    let list = json_of(
        app.call(Method::GET, "/v1/webhook-endpoints", &key, None).await,
        200,
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("whsec_"));
    let changed = json_of(
        app.call(
            Method::PATCH,
            &format!("/v1/webhook-endpoints/{id}"),
            &key,
            Some(&json!({"event_types": ["*"], "enabled": false})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (changed["event_types"].clone(), changed["enabled"].clone()),
        (json!([]), json!(false))
    );
    assert!(!changed.to_string().contains("whsec_"));
    // Rotation: a new secret, shown once.
    let rotated = json_of(
        app.call(
            Method::POST,
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            &key,
            None,
        )
        .await,
        200,
    )
    .await;
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    // Another tenant sees none of it; a test key sees the test book only.
    let (_, other) = app.create_account("Globex").await;
    assert_error(
        app.call(Method::GET, &format!("/v1/webhook-endpoints/{id}"), &other, None)
            .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.call(
            Method::DELETE,
            &format!("/v1/webhook-endpoints/{id}"),
            &other,
            None,
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let test_key = json_of(
        app.create_key(&key, &json!({"name": "t", "mode": "test"})).await,
        201,
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let test_list = json_of(
        app.call(Method::GET, "/v1/webhook-endpoints", &test_key, None)
            .await,
        200,
    )
    .await;
    assert!(test_list["data"].as_array().unwrap().is_empty());
    // Deleted: gone.
    let deleted = app
        .call(Method::DELETE, &format!("/v1/webhook-endpoints/{id}"), &key, None)
        .await;
    assert_eq!(deleted.status(), 204);
    assert_error(
        app.call(Method::GET, &format!("/v1/webhook-endpoints/{id}"), &key, None)
            .await,
        404,
        "not_found",
    )
    .await;
}

async fn bad_endpoint_urls_are_refused_naming_the_field(backend: Backend) {
    // The default: private addresses refused.
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.create_account("Acme").await;
    for (url, code) in [
        ("ftp://example.com/hook", "validation_failed"),
        ("javascript:alert(1)", "validation_failed"),
        ("not a url", "validation_failed"),
        ("https://user:pw@example.com/hook", "validation_failed"),
        ("http://127.0.0.1:9/hook", "outbound_address_refused"),
        ("http://[::1]/hook", "outbound_address_refused"),
        (
            "http://169.254.169.254/latest/meta-data",
            "outbound_address_refused",
        ),
        ("http://10.1.2.3/hook", "outbound_address_refused"),
    ] {
        let body = assert_error(create(&app, &key, &json!({"url": url})).await, 422, code).await;
        assert_eq!(body["error"]["param"], "url", "{url}: {body}");
    }
    let body = assert_error(
        create(
            &app,
            &key,
            &json!({"url": "https://example.com/hook", "event_types": ["charge.created", "charge.refunded"]}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["param"], "event_types[1]", "{body}");
    // Nothing was made.
    let list = json_of(
        app.call(Method::GET, "/v1/webhook-endpoints", &key, None).await,
        200,
    )
    .await;
    assert!(list["data"].as_array().unwrap().is_empty());
}

async fn every_event_reaches_its_endpoint_once_signed_and_listed(backend: Backend) {
    let app = app(backend).await;
    let (account, key) = app.create_account("Acme").await;
    let (receiver, url) = Receiver::start().await;
    let all = json_of(create(&app, &key, &json!({"url": url})).await, 201).await;
    let secret = all["secret"].as_str().unwrap().to_owned();
    // A second endpoint for charges only.
    let (charges_only, charges_url) = Receiver::start().await;
    let charges_secret = json_of(
        create(
            &app,
            &key,
            &json!({"url": charges_url, "event_types": ["charge.created"]}),
        )
        .await,
        201,
    )
    .await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another tenant's endpoint hears nothing of this account.
    let (globex, globex_url) = Receiver::start().await;
    let (_, other) = app.create_account("Globex").await;
    json_of(create(&app, &other, &json!({"url": globex_url})).await, 201).await;

    finish_one(&app, account, 1).await;
    let sender = sender(&app);
    deliver_all(&sender, Duration::from_millis(300)).await;

    let events = json_of(
        app.call(Method::GET, "/v1/events?limit=100", &key, None).await,
        200,
    )
    .await;
    let listed: Vec<Value> = events["data"].as_array().unwrap().clone();
    let types: Vec<&str> = listed.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(
        types.contains(&"task.completed") && types.contains(&"charge.created"),
        "{types:?}"
    );
    // Each event, once, to the endpoint that takes every type, signed.
    let got = receiver.raw();
    assert_eq!(got.len(), listed.len(), "{types:?}");
    let mut ids: Vec<String> = Vec::new();
    for (headers, body) in &got {
        assert!(verifies(&secret, headers, body), "a bad signature: {headers:?}");
        assert!(!verifies(&charges_secret, headers, body));
        let id = headers["webhook-id"].to_str().unwrap().to_owned();
        let event: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(event["id"], id);
        assert_eq!(event["object"], "event");
        assert_eq!(event["livemode"], true);
        assert!(event["created"].as_i64().unwrap() > 0);
        let text = event.to_string();
        assert!(
            !text.contains("inference_cost") && !text.contains("margin"),
            "{text}"
        );
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "an event was delivered twice");
    // The charges-only endpoint got the charge only.
    let charges = charges_only.deliveries();
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].1["type"], "charge.created");
    assert!(globex.deliveries().is_empty());
    // Nothing more to send; `GET /v1/events/{id}` and `?type=` work.
    assert_eq!(sender.drain_once().await.unwrap(), 0);
    let one = &listed[0];
    let fetched = json_of(
        app.call(
            Method::GET,
            &format!("/v1/events/{}", one["id"].as_str().unwrap()),
            &key,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(&fetched, one);
    let only = json_of(
        app.call(Method::GET, "/v1/events?type=charge.created", &key, None)
            .await,
        200,
    )
    .await;
    assert_eq!(only["data"].as_array().unwrap().len(), 1);
    assert_error(
        app.call(Method::GET, "/v1/events?type=charge.refunded", &key, None)
            .await,
        400,
        "invalid_request",
    )
    .await;
    let none = json_of(app.call(Method::GET, "/v1/events", &other, None).await, 200).await;
    assert!(none["data"].as_array().unwrap().is_empty());
    assert_error(
        app.call(
            Method::GET,
            &format!("/v1/events/{}", one["id"].as_str().unwrap()),
            &other,
            None,
        )
        .await,
        404,
        "not_found",
    )
    .await;

    // After a rotation each delivery carries both signatures; either
    // secret verifies it.
    let id = all["id"].as_str().unwrap();
    let rotated = json_of(
        app.call(
            Method::POST,
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            &key,
            None,
        )
        .await,
        200,
    )
    .await;
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    let before = receiver.raw().len();
    let resend = app
        .call(
            Method::POST,
            &format!("/v1/webhook-endpoints/{id}/resend"),
            &key,
            Some(&json!({"event_id": one["id"]})),
        )
        .await;
    assert_eq!(resend.status(), 202);
    deliver_all(&sender, Duration::from_millis(200)).await;
    let got = receiver.raw();
    assert_eq!(got.len(), before + 1);
    let (headers, body) = got.last().unwrap();
    assert_eq!(
        headers["webhook-id"].to_str().unwrap(),
        one["id"].as_str().unwrap()
    );
    assert_eq!(
        headers["webhook-signature"].to_str().unwrap().split(' ').count(),
        2
    );
    assert!(verifies(&new_secret, headers, body) && verifies(&secret, headers, body));
    // Every try is on the endpoint's page.
    let attempts = json_of(
        app.call(
            Method::GET,
            &format!("/v1/webhook-endpoints/{id}/attempts?limit=100"),
            &key,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(attempts["data"].as_array().unwrap().len(), before + 1);
    assert!(
        attempts["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == 200 && a["response"] == "thanks")
    );
}

async fn failures_are_retried_on_the_schedule_429_waits_and_410_disables(backend: Backend) {
    let app = app(backend).await;
    let (account, key) = app.create_account("Acme").await;
    let (receiver, url) = Receiver::start().await;
    let endpoint = json_of(
        create(
            &app,
            &key,
            &json!({"url": url, "event_types": ["task.completed"]}),
        )
        .await,
        201,
    )
    .await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    // 500, then a timeout-free 503, then 200: three tries of one event.
    receiver.script(&[(500, None), (503, None)]);
    finish_one(&app, account, 1).await;
    let sender = sender(&app);
    deliver_all(&sender, Duration::from_millis(400)).await;
    let got = receiver.deliveries();
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.iter().all(|(h, _)| h["webhook-id"] == got[0].0["webhook-id"]));
    let attempts = json_of(
        app.call(
            Method::GET,
            &format!("/v1/webhook-endpoints/{id}/attempts"),
            &key,
            None,
        )
        .await,
        200,
    )
    .await;
    let statuses: Vec<i64> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, vec![200, 503, 500]);
    // It recovered: not failing any more.
    let now = json_of(
        app.call(Method::GET, &format!("/v1/webhook-endpoints/{id}"), &key, None)
            .await,
        200,
    )
    .await;
    assert!(now["failing_since"].is_null(), "{now}");

    // 429 with Retry-After: 2 waits at least 2 s, past the 50 ms step.
    receiver.script(&[(429, Some("2"))]);
    finish_one(&app, account, 2).await;
    sender.drain_once().await.unwrap();
    let rows = app.store.outbox_of(account).await.unwrap();
    let waiting = rows
        .iter()
        .find(|o| {
            o.kind == bounty_core::outbox::OutboxKind::WebhookEvent
                && o.status == bounty_core::outbox::OutboxStatus::Pending
        })
        .expect("the rate-limited delivery waits");
    let wait = waiting.next_attempt_at - app.store.now();
    assert!(
        wait >= chrono::Duration::milliseconds(1_800),
        "waited only {wait}"
    );
    assert_eq!(waiting.attempts, 1, "{rows:#?}");

    // 410: the endpoint is disabled and its deliveries parked; nothing
    // more is sent to it.
    let (gone, gone_url) = Receiver::start().await;
    gone.script(&[(410, None)]);
    let gone_endpoint = json_of(
        create(
            &app,
            &key,
            &json!({"url": gone_url, "event_types": ["task.completed"]}),
        )
        .await,
        201,
    )
    .await;
    let gone_id = gone_endpoint["id"].as_str().unwrap();
    finish_one(&app, account, 3).await;
    deliver_all(&sender, Duration::from_millis(200)).await;
    let after = json_of(
        app.call(
            Method::GET,
            &format!("/v1/webhook-endpoints/{gone_id}"),
            &key,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(after["enabled"], false);
    assert!(
        after["disabled_reason"].as_str().unwrap().contains("410"),
        "{after}"
    );
    assert_eq!(gone.deliveries().len(), 1);
    finish_one(&app, account, 4).await;
    deliver_all(&sender, Duration::from_millis(200)).await;
    assert_eq!(gone.deliveries().len(), 1, "a disabled endpoint got a delivery");
    // Re-enabled by the account, it receives new events again.
    let enabled = json_of(
        app.call(
            Method::PATCH,
            &format!("/v1/webhook-endpoints/{gone_id}"),
            &key,
            Some(&json!({"enabled": true})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        (enabled["enabled"].clone(), enabled["disabled_reason"].clone()),
        (json!(true), Value::Null)
    );
    finish_one(&app, account, 5).await;
    deliver_all(&sender, Duration::from_millis(200)).await;
    assert!(gone.deliveries().len() > 1);
}

/// The event and its deliveries are written in the change's transaction:
/// a change rolled back (the future dropped before commit) leaves neither.
async fn an_event_exists_only_with_its_change(backend: Backend) {
    let app = app(backend).await;
    let (account, key) = app.create_account("Acme").await;
    let (_, url) = Receiver::start().await;
    json_of(create(&app, &key, &json!({"url": url})).await, 201).await;
    {
        let mut tx = app.store.begin().await.unwrap();
        bounty_store::webhooks::emit_event(
            &mut tx,
            account,
            bounty_core::ApiKeyMode::Live,
            bounty_core::event::EventType::CreditsLow,
            json!({"object": "credits"}),
            app.store.now(),
        )
        .await
        .unwrap();
        // Dropped uncommitted: a crash between the change and its commit.
    }
    let events = json_of(app.call(Method::GET, "/v1/events", &key, None).await, 200).await;
    assert!(events["data"].as_array().unwrap().is_empty());
    let rows = app.store.outbox_of(account).await.unwrap();
    assert!(
        !rows
            .iter()
            .any(|o| o.kind == bounty_core::outbox::OutboxKind::WebhookEvent)
    );
    // Committed, it is there once, with one delivery per endpoint.
    let mut tx = app.store.begin().await.unwrap();
    bounty_store::webhooks::emit_event(
        &mut tx,
        account,
        bounty_core::ApiKeyMode::Live,
        bounty_core::event::EventType::CreditsLow,
        json!({"object": "credits"}),
        app.store.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let events = json_of(app.call(Method::GET, "/v1/events", &key, None).await, 200).await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    let rows = app.store.outbox_of(account).await.unwrap();
    assert_eq!(
        rows.iter()
            .filter(|o| o.kind == bounty_core::outbox::OutboxKind::WebhookEvent)
            .count(),
        1
    );
}

/// The retry schedule with an injected clock: Standard Webhooks' own
/// steps (immediately, 5 s, 5 min), never due early, due once the clock
/// passes each step.
async fn the_standard_schedule_runs_on_the_stores_clock(backend: Backend) {
    let app = app(backend).await;
    let (account, key) = app.create_account("Acme").await;
    let (receiver, url) = Receiver::start().await;
    json_of(
        create(
            &app,
            &key,
            &json!({"url": url, "event_types": ["task.completed"]}),
        )
        .await,
        201,
    )
    .await;
    receiver.script(&[(500, None), (503, None)]);
    finish_one(&app, account, 1).await;
    let clock = Arc::new(bounty_core::ManualClock::new(chrono::Utc::now()));
    let store = app.store_with_clock(clock.clone()).await;
    let sender = WebhookSender::new(
        store,
        Arc::new(app.keyring.clone().unwrap()),
        WebhookSenderConfig {
            allow_private: true,
            ..WebhookSenderConfig::default()
        },
    )
    .unwrap();
    assert_eq!(sender.drain_once().await.unwrap(), 1);
    assert_eq!(receiver.raw().len(), 1);
    // 5 s ± 10%: not due at 4 s, due at 6 s.
    clock.advance(chrono::Duration::seconds(4));
    assert_eq!(sender.drain_once().await.unwrap(), 0);
    clock.advance(chrono::Duration::seconds(2));
    assert_eq!(sender.drain_once().await.unwrap(), 1);
    assert_eq!(receiver.raw().len(), 2);
    // 5 min ± 10%: not due at 4 min, due at 6 min.
    clock.advance(chrono::Duration::minutes(4));
    assert_eq!(sender.drain_once().await.unwrap(), 0);
    clock.advance(chrono::Duration::minutes(2));
    assert_eq!(sender.drain_once().await.unwrap(), 1);
    let got = receiver.raw();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|(h, _)| h["webhook-id"] == got[0].0["webhook-id"]));
}

/// Every event type, each written exactly once per change that makes it
/// (a change replayed writes nothing more), then delivered across a
/// sender dropped mid-send: each event reaches the endpoint, signed, and
/// a redelivery carries the same `webhook-id`, so the receiver holds each
/// event once.
async fn every_event_type_is_written_once_per_change_and_delivered_across_crashes(backend: Backend) {
    use bounty_billing::disputes::{DisputeRequest, decide_dispute, open_dispute};
    use bounty_core::ApiKeyMode;
    use bounty_core::event::EventType;

    const STRIPE_SECRET: &str = "whsec_events_test";
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            webhooks_allow_private: true,
            stripe_webhook_secrets: vec![STRIPE_SECRET.to_owned()],
            ..TestOptions::default()
        },
    )
    .await;
    let (account, key) = app.create_account("Acme").await;
    let (receiver, url) = Receiver::start().await;
    let endpoint = json_of(create(&app, &key, &json!({"url": url})).await, 201).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    // The secret (and its key alone) is never logged, at any level.
    let key_part = secret.trim_start_matches("whsec_").to_owned();
    crate::support::logged::watch(&secret);
    crate::support::logged::watch(&key_part);
    // A cap of 1.50 USD alerting at 50%: the first 1 USD charge crosses it.
    app.store.set_cap(account, Some(1_500_000), &[50]).await.unwrap();
    let agent = add_agent(&app.store, account, store_test_policy()).await;
    let finish = |n: usize, end: bounty_store::AttemptEnd| {
        let app = &app;
        async move {
            let claimed = queue_and_claim(&app.store, account, agent, format!("ticket {n}")).await;
            assert!(
                bounty_agents::finish::finish_attempt(&app.store, &claimed, &end, &[])
                    .await
                    .unwrap()
            );
            // The same finish again (a worker's retry after a lost answer).
            assert!(
                !bounty_agents::finish::finish_attempt(&app.store, &claimed, &end, &[])
                    .await
                    .unwrap()
            );
        }
    };
    let escalated = bounty_store::AttemptEnd::Completed(bounty_store::TaskOutput {
        handoff: Some("a refund over the limit".into()),
        ..match answered("Passing you to a person.", Decision::Fail) {
            bounty_store::AttemptEnd::Completed(output) => output,
            _ => unreachable!(),
        }
    });
    finish(1, answered("done", Decision::Pass)).await;
    finish(2, answered("no", Decision::Fail)).await;
    finish(3, escalated).await;
    finish(4, answered("done", Decision::Pass)).await;
    let mut outcomes: Vec<bounty_core::OutcomeId> =
        crate::support::stripe::outcome_ids(&app.store, account).await;
    outcomes.sort_by_key(|o| o.to_string());
    let charged: Vec<bounty_core::OutcomeId> = {
        let mut ids = Vec::new();
        for id in &outcomes {
            let o = app.store.get_outcome(account, *id).await.unwrap().unwrap();
            if o.status == bounty_core::OutcomeStatus::Resolved {
                ids.push(*id);
            }
        }
        ids
    };
    assert_eq!(charged.len(), 2);
    let request = DisputeRequest {
        reason: bounty_core::dispute::DisputeReason::NotResolved,
        comment: None,
        actor: bounty_core::Actor::ApiKey(bounty_core::ApiKeyId::new()),
    };
    let operator = bounty_core::Actor::operator("alice").unwrap();
    let accepted = open_dispute(&app.store, account, charged[0], &request)
        .await
        .unwrap();
    assert!(
        open_dispute(&app.store, account, charged[0], &request)
            .await
            .is_err()
    );
    let accept = || {
        decide_dispute(
            &app.store,
            account,
            accepted.id,
            bounty_billing::disputes::Decision::Accept,
            &operator,
            None,
        )
    };
    accept().await.unwrap();
    assert!(accept().await.is_err(), "decided once");
    let rejected = open_dispute(&app.store, account, charged[1], &request)
        .await
        .unwrap();
    decide_dispute(
        &app.store,
        account,
        rejected.id,
        bounty_billing::disputes::Decision::Reject,
        &operator,
        Some("it was resolved"),
    )
    .await
    .unwrap();
    // Credits of 1.2 CU; one outcome draws 1 CU, leaving under a fifth.
    app.store
        .grant_credits(
            account,
            ApiKeyMode::Live,
            bounty_core::ComputeUnits::parse_decimal("1.2").unwrap(),
            None,
        )
        .await
        .unwrap();
    finish(5, answered("done", Decision::Pass)).await;
    // Stripe's invoice events, each delivered twice.
    let customer = app.stripe_customer(account).await;
    for (id, kind, status) in [
        ("evt_fin", "invoice.finalized", "open"),
        ("evt_paid", "invoice.paid", "paid"),
    ] {
        let event = json!({
            "id": id, "object": "event", "type": kind, "livemode": true, "created": 1_795_000_000,
            "data": {"object": {
                "id": "in_1Events", "object": "invoice", "customer": customer, "status": status,
                "currency": "usd", "amount_due": 100, "amount_paid": if status == "paid" { 100 } else { 0 },
                "total": 100, "period_start": 1_793_000_000, "period_end": 1_795_000_000,
                "hosted_invoice_url": "https://invoice.stripe.com/i/acct_test/in_1Events"
            }}
        });
        for _ in 0..2 {
            let body = event.to_string();
            let at = chrono::Utc::now().timestamp();
            let response = app
                .client
                .post(format!("{}/webhooks/stripe", app.base))
                .header(
                    "stripe-signature",
                    bounty_billing::signature::sign(body.as_bytes(), STRIPE_SECRET, at),
                )
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    }

    // Each type, exactly as many times as its changes.
    let events = app
        .store
        .list_events(
            account,
            ApiKeyMode::Live,
            None,
            bounty_core::PageLimit::new(100).unwrap(),
            None,
        )
        .await
        .unwrap()
        .items;
    let count = |kind: EventType| events.iter().filter(|e| e.kind == kind).count();
    let expected = [
        (EventType::TaskCompleted, 5),
        (EventType::OutcomeResolved, 3),
        (EventType::OutcomeFailed, 1),
        (EventType::OutcomeEscalated, 1),
        (EventType::OutcomeReversed, 1),
        (EventType::ChargeCreated, 3),
        (EventType::ChargeReversed, 1),
        (EventType::DisputeOpened, 2),
        (EventType::DisputeAccepted, 1),
        (EventType::DisputeRejected, 1),
        (EventType::BudgetThresholdReached, 1),
        (EventType::CreditsLow, 1),
        (EventType::InvoiceFinalized, 1),
        (EventType::InvoicePaid, 1),
    ];
    assert_eq!(expected.len(), EventType::ALL.len(), "every type is covered");
    let got: Vec<(EventType, usize)> = expected.iter().map(|(k, _)| (*k, count(*k))).collect();
    assert_eq!(
        got,
        expected,
        "{:?}",
        events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>()
    );
    let total: usize = expected.iter().map(|(_, n)| n).sum();
    assert_eq!(events.len(), total);

    // Delivery: the first two requests stall, and the sender sending them
    // is dropped mid-send (a crash); another sender takes over once their
    // lease runs out.
    receiver.stall.store(2, std::sync::atomic::Ordering::SeqCst);
    let crashed = sender(&app);
    let _ = tokio::time::timeout(Duration::from_millis(300), crashed.drain_once()).await;
    drop(crashed);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let survivor = sender(&app);
    deliver_all(&survivor, Duration::from_millis(400)).await;
    let got = receiver.raw();
    let mut ids: Vec<String> = Vec::new();
    for (headers, body) in &got {
        assert!(verifies(&secret, headers, body), "a bad signature: {headers:?}");
        ids.push(headers["webhook-id"].to_str().unwrap().to_owned());
    }
    let delivered = got.len();
    ids.sort();
    ids.dedup();
    let mut listed: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
    listed.sort();
    assert_eq!(ids, listed, "each event reaches the endpoint, under its own id");
    assert!(
        delivered > ids.len() && delivered <= ids.len() + 2,
        "only the sends cut off by the crash are repeated ({delivered} for {} events)",
        ids.len()
    );
    assert_eq!(survivor.drain_once().await.unwrap(), 0, "nothing left to send");
    assert_eq!(
        crate::support::logged::hits(&secret),
        0,
        "the endpoint's secret was logged"
    );
    assert_eq!(
        crate::support::logged::hits(&key_part),
        0,
        "the endpoint's key was logged"
    );
    // Nor is it shown again.
    let id = endpoint["id"].as_str().unwrap();
    let shown = app
        .call(Method::GET, &format!("/v1/webhook-endpoints/{id}"), &key, None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!shown.contains(&key_part), "{shown}");
}

/// An account has at most 16 endpoints per mode; each of them gets its
/// delivery of one change's events, written together at commit. With
/// events off, a change writes none.
async fn sixteen_endpoints_at_most_and_events_can_be_turned_off(backend: Backend) {
    let app = app(backend).await;
    let (account, key) = app.create_account("Acme").await;
    for i in 0..16 {
        let url = format!("https://hooks{i}.example.com/bounty");
        json_of(create(&app, &key, &json!({"url": url})).await, 201).await;
    }
    let refused = create(&app, &key, &json!({"url": "https://hooks16.example.com/bounty"})).await;
    assert_error(refused, 409, "conflict").await;
    finish_one(&app, account, 1).await;
    let rows = app.store.outbox_of(account).await.unwrap();
    let deliveries = rows
        .iter()
        .filter(|o| o.kind == bounty_core::outbox::OutboxKind::WebhookEvent)
        .count();
    let listed = || async {
        app.store
            .list_events(
                account,
                bounty_core::ApiKeyMode::Live,
                None,
                bounty_core::PageLimit::new(100).unwrap(),
                None,
            )
            .await
            .unwrap()
            .items
            .len()
    };
    assert_eq!(
        listed().await,
        3,
        "task.completed, outcome.resolved, charge.created"
    );
    assert_eq!(deliveries, 16 * 3, "each event to each of the 16 endpoints");
    // Events off: the same change writes neither events nor deliveries.
    let quiet = app.store.clone().with_events(false);
    let agent = app
        .store
        .list_agents(account, bounty_core::PageLimit::new(1).unwrap(), None)
        .await
        .unwrap()
        .items[0]
        .id;
    let claimed = queue_and_claim(&quiet, account, agent, "ticket quiet".into()).await;
    assert!(
        bounty_agents::finish::finish_attempt(&quiet, &claimed, &answered("done", Decision::Pass), &[])
            .await
            .unwrap()
    );
    assert_eq!(listed().await, 3);
    let rows = app.store.outbox_of(account).await.unwrap();
    let after = rows
        .iter()
        .filter(|o| o.kind == bounty_core::outbox::OutboxKind::WebhookEvent)
        .count();
    assert_eq!(after, deliveries);
}
