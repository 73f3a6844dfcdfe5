//! `POST /webhooks/stripe`: signatures on the raw body, exactly-once
//! effects, account status and invoices.

use bounty_billing::signature::sign;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, NOWHERE, TestApp, TestOptions, assert_error, json_of};

backend_tests!(
    invoices_and_status_follow_signed_events_exactly_once,
    bad_signatures_store_nothing,
    a_suspended_account_cannot_queue_tasks,
);

const OLD: &str = "whsec_old_secret";
const NEW: &str = "whsec_new_secret";

async fn app(backend: Backend) -> TestApp {
    let opts = TestOptions {
        stripe_webhook_secrets: vec![OLD.to_owned(), NEW.to_owned()],
        ..TestOptions::remote_models(&[("fast", NOWHERE)])
    };
    TestApp::spawn_with(backend, opts).await
}

/// An account whose Stripe customer is `cus_…` (through the outbox's own
/// path); returns (account, key, customer).
async fn customer(app: &TestApp) -> (bounty_core::AccountId, String, String) {
    let (account, key) = app.create_account("Acme").await;
    let customer = app.stripe_customer(account).await;
    (account, key, customer)
}

async fn deliver(app: &TestApp, event: &Value, secret: &str, skew: i64) -> reqwest::Response {
    let body = event.to_string();
    let t = chrono::Utc::now().timestamp() + skew;
    app.client
        .post(format!("{}/webhooks/stripe", app.base))
        .header("stripe-signature", sign(body.as_bytes(), secret, t))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

fn invoice_event(id: &str, kind: &str, customer: &str, status: &str) -> Value {
    json!({
        "id": id, "object": "event", "type": kind, "livemode": false, "created": 1_795_000_000,
        "data": {"object": {
            "id": "in_1Test", "object": "invoice", "customer": customer, "status": status,
            "currency": "usd", "amount_due": 4200, "amount_paid": if status == "paid" { 4200 } else { 0 },
            "total": 4200, "period_start": 1_793_000_000, "period_end": 1_795_000_000,
            "hosted_invoice_url": "https://invoice.stripe.com/i/acct_test/in_1Test"
        }}
    })
}

async fn invoices_and_status_follow_signed_events_exactly_once(backend: Backend) {
    let app = app(backend).await;
    let (account, key, cus) = customer(&app).await;
    let created = invoice_event("evt_1", "invoice.finalized", &cus, "open");
    assert_eq!(
        json_of(deliver(&app, &created, NEW, 0).await, 200).await["status"],
        "handled"
    );
    // Redelivered: nothing twice.
    assert_eq!(
        json_of(deliver(&app, &created, NEW, 0).await, 200).await["status"],
        "duplicate"
    );
    let failed = invoice_event("evt_2", "invoice.payment_failed", &cus, "open");
    json_of(deliver(&app, &failed, OLD, 0).await, 200).await;
    assert_eq!(
        app.store
            .account_status(account)
            .await
            .unwrap()
            .map(|s| s.as_str()),
        Some("past_due")
    );
    let paid = invoice_event("evt_3", "invoice.paid", &cus, "paid");
    json_of(deliver(&app, &paid, NEW, 0).await, 200).await;
    assert_eq!(
        app.store
            .account_status(account)
            .await
            .unwrap()
            .map(|s| s.as_str()),
        Some("active")
    );
    let list = json_of(
        app.request(Method::GET, "/v1/invoices", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let invoices = list["data"].as_array().unwrap();
    assert_eq!(invoices.len(), 1, "one invoice, updated in place");
    assert_eq!(invoices[0]["id"], "in_1Test");
    assert_eq!(invoices[0]["status"], "paid");
    assert_eq!(invoices[0]["amount_paid"], 4200);
    assert_eq!(
        invoices[0]["hosted_invoice_url"],
        "https://invoice.stripe.com/i/acct_test/in_1Test"
    );
    // Types we do not act on: 200, ignored, counted.
    let other = json!({"id": "evt_4", "type": "charge.refunded", "data": {"object": {"object": "charge"}}});
    assert_eq!(
        json_of(deliver(&app, &other, NEW, 0).await, 200).await["status"],
        "ignored"
    );
    let counts = app.store.stripe_event_counts().await.unwrap();
    assert_eq!(counts, vec![("handled".to_owned(), 3), ("ignored".to_owned(), 1)]);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("bounty_stripe_events_total{outcome=\"ignored\"} 1"),
        "{metrics}"
    );
    let (_, bob) = app.create_account("Bob").await;
    let list = json_of(
        app.request(Method::GET, "/v1/invoices", Some(&bob))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(list["data"], json!([]), "invoices are per account");
}

async fn bad_signatures_store_nothing(backend: Backend) {
    let app = app(backend).await;
    let (_, key, cus) = customer(&app).await;
    let event = invoice_event("evt_bad", "invoice.finalized", &cus, "open");
    assert_error(
        deliver(&app, &event, "whsec_wrong", 0).await,
        400,
        "invalid_signature",
    )
    .await;
    assert_error(deliver(&app, &event, NEW, -301).await, 400, "invalid_signature").await;
    assert_error(deliver(&app, &event, NEW, 301).await, 400, "invalid_signature").await;
    // A tampered body.
    let body = event.to_string();
    let header = sign(body.as_bytes(), NEW, chrono::Utc::now().timestamp());
    let resp = app
        .client
        .post(format!("{}/webhooks/stripe", app.base))
        .header("stripe-signature", header)
        .body(body.replace("4200", "1"))
        .send()
        .await
        .unwrap();
    assert_error(resp, 400, "invalid_signature").await;
    let resp = app
        .client
        .post(format!("{}/webhooks/stripe", app.base))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_error(resp, 400, "invalid_signature").await;
    assert!(
        app.store.stripe_event_counts().await.unwrap().is_empty(),
        "nothing stored"
    );
    let list = json_of(
        app.request(Method::GET, "/v1/invoices", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(list["data"], json!([]));
}

async fn a_suspended_account_cannot_queue_tasks(backend: Backend) {
    let app = app(backend).await;
    let (account, key, cus) = customer(&app).await;
    app.agent(&key, "support", &["fast"], None).await;
    app.task(&key, "support", "before").await;
    let deleted = json!({
        "id": "evt_sub_deleted", "type": "customer.subscription.deleted",
        "data": {"object": {"id": "sub_1", "object": "subscription", "customer": cus, "status": "canceled"}}
    });
    json_of(deliver(&app, &deleted, NEW, 0).await, 200).await;
    assert_eq!(
        app.store
            .account_status(account)
            .await
            .unwrap()
            .map(|s| s.as_str()),
        Some("suspended")
    );
    let req = json!({"agent": "support", "input": {"body": "after"}});
    assert_error(app.create_task(&key, &req, None).await, 402, "account_suspended").await;
    // Reading still works, and the queued task is still there to finish.
    let list = json_of(
        app.request(Method::GET, "/v1/tasks", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let back = json!({
        "id": "evt_sub_back", "type": "customer.subscription.updated",
        "data": {"object": {"id": "sub_1", "object": "subscription", "customer": cus, "status": "active"}}
    });
    json_of(deliver(&app, &back, NEW, 0).await, 200).await;
    json_of(app.create_task(&key, &req, None).await, 202).await;
}
