//! The integration pages: create (the secret shown once, never again),
//! detail with recent deliveries, rotate, delete, the signed test
//! delivery sent over HTTP to a webhook receiver on the same server, and
//! an integration whose secret no configured key opens shown `broken`.

use bounty_core::IntegrationId;
use bounty_store::UserRole;
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::seed::{self, PASSWORD, Tenant};
use crate::support::{Backend, Browser, Page, TestApp};

async fn app_with(app: TestApp) -> (TestApp, Tenant, Browser) {
    let t = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    let b = app.logged_in("ann@acme.test", PASSWORD).await;
    (app, t, b)
}

/// The value of the read-only input `id` on a page.
pub fn input_value(page: &Page, id: &str) -> String {
    let marker = format!("id=\"{id}\" class=\"secret\" readonly value=\"");
    let at = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {}", page.body))
        + marker.len();
    page.body[at..at + page.body[at..].find('"').unwrap()].to_owned()
}

/// Creates an integration of `kind` through the form; its id and secret.
pub async fn create(
    b: &mut Browser,
    t: &Tenant,
    kind: &str,
    extra: &[(&str, &str)],
) -> (IntegrationId, String, Page) {
    let csrf = b.csrf().await;
    let agent = t.agent.to_string();
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("kind", kind),
        ("name", "Support desk"),
        ("agent", agent.as_str()),
    ];
    form.extend_from_slice(extra);
    let page = b.post("/integrations", &form).await;
    page.assert_status(StatusCode::OK);
    let url = input_value(&page, "inbound-url");
    let id = url
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .expect("an integration id in the URL");
    let secret = input_value(&page, "secret");
    (id, secret, page)
}

async fn the_secret_is_shown_once_and_never_again(backend: Backend) {
    let (app, t, mut b) = app_with(TestApp::spawn(backend).await).await;
    b.get("/integrations")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("No integrations yet.")
        .assert_contains("href=\"/integrations/new\"");
    b.get("/integrations/new")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("<label for=\"kind\">Helpdesk</label>")
        .assert_contains(&format!("<option value=\"{}\">support</option>", t.agent))
        .assert_contains("<summary>Standard Webhooks replies</summary>");
    let (id, secret, created) = create(
        &mut b,
        &t,
        "standard",
        &[("standard_callback_url", "https://hooks.example.com/bounty")],
    )
    .await;
    created
        .assert_contains("shown only once")
        .assert_contains(&format!("value=\"/webhooks/in/{id}\""));
    assert_eq!(created.headers.get("cache-control").unwrap(), "no-store");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let reply_secret = input_value(&created, "reply-secret");
    assert!(reply_secret.starts_with("whsec_") && reply_secret != secret);
    // Stored as the API stores it: sealed under the keys, bound to the
    // account, the integration and the purpose.
    let stored = app.store.get_integration(t.account, id).await.unwrap().unwrap();
    assert_eq!(
        (stored.kind.as_str(), stored.name.as_str()),
        ("standard", "Support desk")
    );
    assert!(!stored.secret_sealed.contains(&secret));
    let keys = app.keyring.clone().unwrap();
    let aad = |purpose| bounty_core::sealing_aad(t.account, id, purpose);
    let opened = keys
        .open(
            &stored.secret_sealed,
            aad(bounty_core::SealPurpose::Inbound).as_bytes(),
        )
        .unwrap();
    assert_eq!(opened.as_slice(), secret.as_bytes());
    let reply = keys
        .open(
            stored.reply_sealed.as_deref().unwrap(),
            aad(bounty_core::SealPurpose::Reply).as_bytes(),
        )
        .unwrap();
    let reply: bounty_integrations::ReplySettings = serde_json::from_slice(&reply).unwrap();
    assert!(
        matches!(reply, bounty_integrations::ReplySettings::Standard { secret: s, .. } if s == reply_secret)
    );
    // Never again: not on the detail page, not in the list.
    let detail = b.get(&format!("/integrations/{id}")).await;
    detail
        .assert_status(StatusCode::OK)
        .assert_contains("<h1>Integration Support desk</h1>")
        .assert_contains("https://hooks.example.com/bounty")
        .assert_contains("No deliveries yet.")
        .assert_lacks(&secret)
        .assert_lacks(&reply_secret);
    b.get("/integrations")
        .await
        .assert_contains(&format!("/webhooks/in/{id}"))
        .assert_contains("integration-active")
        .assert_lacks(&secret);
}

async fn a_wrong_field_is_named_and_no_secret_is_echoed(backend: Backend) {
    let (app, t, mut b) = app_with(TestApp::spawn(backend).await).await;
    let csrf = b.csrf().await;
    let agent = t.agent.to_string();
    let r = b
        .post(
            "/integrations",
            &[
                ("csrf", &csrf),
                ("kind", "zendesk"),
                ("name", "Zendesk"),
                ("agent", &agent),
                ("secret", "zendesk-webhook-secret-1"),
                ("zendesk_base_url", "https://acme.zendesk.com"),
                ("zendesk_api_token", "zd-token-very-secret"),
            ],
        )
        .await;
    r.assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("id=\"zendesk_email-error\">Zendesk agent email: is required")
        .assert_contains("<a href=\"#zendesk_email\">")
        .assert_contains("value=\"https://acme.zendesk.com\"")
        .assert_lacks("zendesk-webhook-secret-1")
        .assert_lacks("zd-token-very-secret");
    b.post(
        "/integrations",
        &[
            ("csrf", &csrf),
            ("kind", "freshdesk"),
            ("name", ""),
            ("agent", "agt_nope"),
        ],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("id=\"kind-error\"")
    .assert_contains("id=\"name-error\"")
    .assert_contains("id=\"agent-error\"");
    let page = app
        .store
        .list_integrations(t.account, bounty_core::PageLimit::new(10).unwrap(), None)
        .await
        .unwrap();
    assert!(page.items.is_empty(), "nothing was created");
}

async fn rotate_shows_the_new_secret_once_and_delete_is_a_404(backend: Backend) {
    let (app, t, mut b) = app_with(TestApp::spawn(backend).await).await;
    let (id, old, _) = create(&mut b, &t, "chatwoot", &[]).await;
    let csrf = b.csrf().await;
    b.post(
        &format!("/integrations/{id}/rotate-secret"),
        &[("csrf", &csrf), ("grace_hours", "500")],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("The grace period must be a whole number of hours, 0 to 168.");
    let rotated = b
        .post(
            &format!("/integrations/{id}/rotate-secret"),
            &[("csrf", &csrf), ("grace_hours", "")],
        )
        .await;
    rotated
        .assert_status(StatusCode::OK)
        .assert_contains("<h1>Secret rotated</h1>")
        .assert_contains("still accepted until 2026-05-11 12:00:00 UTC");
    assert_eq!(rotated.headers.get("cache-control").unwrap(), "no-store");
    let new = input_value(&rotated, "secret");
    assert_ne!(new, old);
    let stored = app.store.get_integration(t.account, id).await.unwrap().unwrap();
    assert!(stored.previous_secret_sealed.is_some());
    b.get(&format!("/integrations/{id}"))
        .await
        .assert_contains("2026-05-11 12:00:00 UTC")
        .assert_lacks(&new)
        .assert_lacks(&old);
    // A given secret is used as given.
    let given = b
        .post(
            &format!("/integrations/{id}/rotate-secret"),
            &[
                ("csrf", &csrf),
                ("secret", "chatwoot-made-this-1"),
                ("grace_hours", "0"),
            ],
        )
        .await;
    assert_eq!(input_value(&given, "secret"), "chatwoot-made-this-1");

    let r = b
        .post(&format!("/integrations/{id}/delete"), &[("csrf", &csrf)])
        .await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/integrations"));
    b.get(&format!("/integrations/{id}"))
        .await
        .assert_status(StatusCode::NOT_FOUND);
    b.get("/integrations").await.assert_lacks(&id.to_string());
    b.post(&format!("/integrations/{id}/delete"), &[("csrf", &csrf)])
        .await
        .assert_status(StatusCode::NOT_FOUND);
    b.post(&format!("/integrations/{id}/rotate-secret"), &[("csrf", &csrf)])
        .await
        .assert_status(StatusCode::NOT_FOUND);
    assert!(app.store.inbound_integration(id).await.unwrap().is_none());
}

async fn a_test_delivery_arrives_signed_for_every_kind(backend: Backend) {
    let (app, t, mut b) = app_with(TestApp::spawn_with_receiver(backend).await).await;
    let received = app.received.clone().unwrap();
    for (n, kind) in ["zendesk", "intercom", "chatwoot", "standard"]
        .into_iter()
        .enumerate()
    {
        let (id, _, created) = create(&mut b, &t, kind, &[]).await;
        created.assert_contains(&format!("value=\"http://{}/webhooks/in/{id}\"", app.addr));
        let detail = b.get(&format!("/integrations/{id}")).await;
        detail
            .assert_contains("Send a test delivery")
            .assert_contains("billed if it resolves");
        let csrf = detail.csrf();
        let r = b
            .post(&format!("/integrations/{id}/test-delivery"), &[("csrf", &csrf)])
            .await;
        r.assert_status(StatusCode::OK)
            .assert_contains("The webhook answered HTTP 202.")
            .assert_contains("was accepted");
        let got = received.lock().unwrap().clone();
        assert_eq!(got.len(), n + 1, "{kind}: one delivery arrived");
        let last = got.last().unwrap();
        assert_eq!((last.integration, last.kind.as_str()), (id, kind));
        assert_eq!(last.secret_index, 0, "{kind}: signed with the current secret");
        assert_eq!(last.subject.as_deref(), Some("Bounty test delivery"));
        r.assert_contains(&last.ticket);
    }
    // After a rotation the test is signed with the new secret.
    let (id, _, _) = create(&mut b, &t, "standard", &[]).await;
    let csrf = b.csrf().await;
    b.post(&format!("/integrations/{id}/rotate-secret"), &[("csrf", &csrf)])
        .await
        .assert_status(StatusCode::OK);
    b.post(&format!("/integrations/{id}/test-delivery"), &[("csrf", &csrf)])
        .await
        .assert_contains("HTTP 202");
    assert_eq!(received.lock().unwrap().last().unwrap().secret_index, 0);
}

async fn without_self_url_or_keys_the_pages_say_so(backend: Backend) {
    let (_app, t, mut b) = app_with(TestApp::spawn(backend).await).await;
    let (id, _, _) = create(&mut b, &t, "standard", &[]).await;
    let detail = b.get(&format!("/integrations/{id}")).await;
    detail
        .assert_contains("set the dashboard&#39;s `self_url`")
        .assert_lacks("Send a test delivery</button>");
    let csrf = detail.csrf();
    b.post(&format!("/integrations/{id}/test-delivery"), &[("csrf", &csrf)])
        .await
        .assert_status(StatusCode::SERVICE_UNAVAILABLE)
        .assert_contains("self_url");

    let (_app, _t, mut b) = app_with(TestApp::spawn_with(backend, |s| s.keyring = None).await).await;
    b.get("/integrations")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("secrets.master_keys")
        .assert_lacks("href=\"/integrations/new\"");
    b.get("/integrations/new")
        .await
        .assert_status(StatusCode::SERVICE_UNAVAILABLE)
        .assert_contains("secrets.master_keys");
    let csrf = b.csrf().await;
    b.post("/integrations", &[("csrf", &csrf), ("kind", "standard")])
        .await
        .assert_status(StatusCode::SERVICE_UNAVAILABLE);
}

async fn deliveries_are_listed_with_their_result(backend: Backend) {
    let (app, t, mut b) = app_with(TestApp::spawn(backend).await).await;
    let (id, _, _) = create(&mut b, &t, "standard", &[]).await;
    let integration = app.store.get_integration(t.account, id).await.unwrap().unwrap();
    // A customer's reply to a ticket with no task: recorded, nothing else
    // done.
    let delivery = bounty_integrations::VerifiedDelivery {
        dedupe_key: "evt_1".into(),
        event: bounty_integrations::TicketEvent {
            kind: bounty_integrations::TicketEventKind::CustomerReplied {
                body: "Any news?".into(),
            },
            vendor_event_id: Some("evt_1".into()),
            ticket: bounty_integrations::TicketRef {
                external_id: "T-1001".into(),
                url: None,
            },
            occurred_at: None,
        },
    };
    let result = bounty_integrations::intake::take(&app.store, &integration, delivery, 1)
        .await
        .expect("intake");
    assert!(
        matches!(
            result,
            bounty_integrations::IntakeResult::Recorded { why: Some(ref why), .. }
                if why == "the ticket has no task yet"
        ),
        "{result:?}"
    );
    b.get(&format!("/integrations/{id}"))
        .await
        .assert_contains("<code>T-1001</code>")
        .assert_contains(">recorded</span>")
        .assert_lacks("No deliveries yet.");
    app.store
        .record_rejected_delivery(id, "no_matching_signature")
        .await
        .unwrap();
    b.get("/integrations")
        .await
        .assert_contains("no_matching_signature");
}

async fn a_secret_no_key_opens_is_shown_broken(backend: Backend) {
    let (app, t, mut b) = app_with(TestApp::spawn_with_receiver(backend).await).await;
    let (id, secret, _) = create(&mut b, &t, "standard", &[]).await;
    b.get("/integrations")
        .await
        .assert_contains("integration-active")
        .assert_lacks("secret_unreadable");
    // The secret sealed under a key this server does not hold (same id,
    // other bytes: a restarted throwaway key); the old one's grace is over.
    let integration = app.store.get_integration(t.account, id).await.unwrap().unwrap();
    let gone = crate::support::test_keyring();
    let sealed = gone
        .seal(
            secret.as_bytes(),
            bounty_core::sealing_aad(
                integration.account_id,
                integration.id,
                bounty_core::SealPurpose::Inbound,
            )
            .as_bytes(),
        )
        .unwrap();
    let past = app.store.now() - chrono::Duration::hours(1);
    app.store
        .rotate_integration_secret(t.account, id, &sealed, past)
        .await
        .unwrap()
        .unwrap();
    b.get("/integrations")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("integration-broken")
        .assert_contains("secret_unreadable");
    let detail = b.get(&format!("/integrations/{id}")).await;
    detail
        .assert_status(StatusCode::OK)
        .assert_contains("This integration is broken.")
        .assert_contains("rotate the secret below")
        .assert_lacks("Send a test delivery</button>");
    let csrf = detail.csrf();
    b.post(&format!("/integrations/{id}/test-delivery"), &[("csrf", &csrf)])
        .await
        .assert_status(StatusCode::SERVICE_UNAVAILABLE)
        .assert_contains("No test delivery was sent: the integration is broken (secret_unreadable).");
    // Rotating the secret mends it.
    b.post(
        &format!("/integrations/{id}/rotate-secret"),
        &[("csrf", csrf.as_str()), ("grace_hours", "0")],
    )
    .await
    .assert_status(StatusCode::OK);
    b.get("/integrations")
        .await
        .assert_contains("integration-active")
        .assert_lacks("secret_unreadable");
}

on_both_backends!(
    a_secret_no_key_opens_is_shown_broken,
    the_secret_is_shown_once_and_never_again,
    a_wrong_field_is_named_and_no_secret_is_echoed,
    rotate_shows_the_new_secret_once_and_delete_is_a_404,
    a_test_delivery_arrives_signed_for_every_kind,
    without_self_url_or_keys_the_pages_say_so,
    deliveries_are_listed_with_their_result,
    re_enabling_pings_the_helpdesk_first,
);

/// A disabled integration is turned back on only once its helpdesk
/// answers the test ping, or when the owner asks to skip it.
async fn re_enabling_pings_the_helpdesk_first(backend: Backend) {
    use std::sync::{Arc, Mutex};
    let (app, t, mut b) = app_with(TestApp::spawn(backend).await).await;
    // A callback receiver: 401 to the first request, 200 after.
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let seen = got.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let mut seen = seen.lock().unwrap();
                seen.push(serde_json::from_slice(&body).unwrap_or_default());
                if seen.len() == 1 {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let (id, _, _) = create(&mut b, &t, "standard", &[("standard_callback_url", &callback)]).await;
    app.store
        .disable_integration(t.account, id, "the helpdesk answered 410 Gone")
        .await
        .unwrap();
    let detail = b.get(&format!("/integrations/{id}")).await;
    detail.assert_contains("Test the helpdesk, then re-enable replies");
    let csrf = detail.csrf();
    let refused = b
        .post(&format!("/integrations/{id}/enable"), &[("csrf", &csrf)])
        .await;
    refused
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("did not answer the test ping")
        .assert_contains("401")
        .assert_contains("name=\"skip_ping\"");
    let still = app.store.get_integration(t.account, id).await.unwrap().unwrap();
    assert_eq!(still.state, bounty_core::IntegrationState::Disabled);
    let ok = b
        .post(&format!("/integrations/{id}/enable"), &[("csrf", &csrf)])
        .await;
    ok.assert_status(StatusCode::SEE_OTHER);
    let on = app.store.get_integration(t.account, id).await.unwrap().unwrap();
    assert_eq!(on.state, bounty_core::IntegrationState::Active);
    let pings = got.lock().unwrap().clone();
    assert_eq!(pings.len(), 2);
    assert!(pings.iter().all(|p| p["type"] == "ping"), "{pings:?}");
    // Skipping the ping sends nothing.
    app.store
        .disable_integration(t.account, id, "again")
        .await
        .unwrap();
    b.post(
        &format!("/integrations/{id}/enable"),
        &[("csrf", &csrf), ("skip_ping", "on")],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    assert_eq!(got.lock().unwrap().len(), 2);
}
