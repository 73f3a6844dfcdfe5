//! Stripe billing from the outside: `GET /v1/invoices` fetching what
//! webhooks never delivered, and the operator commands `bounty stripe
//! setup` and `bounty billing reconcile` as the real binary runs them
//! against the fake Stripe.

use bounty_billing::stripe::{IdempotencyKey, MeterEvent};
use bounty_billing::testing::{FakeStripe, Fault};
use bounty_store::METER_EVENT_NAME;
use reqwest::Method;

use crate::support::stripe::{charge_one, client, drain, sender, setup};
use crate::support::{Backend, TestApp, TestOptions, assert_error, json_of};

backend_tests!(
    invoices_are_fetched_from_stripe_when_none_were_delivered,
    setup_and_reconcile_from_the_command_line,
);

async fn invoices(app: &TestApp, key: &str, query: &str) -> reqwest::Response {
    app.request(Method::GET, &format!("/v1/invoices{query}"), Some(key))
        .send()
        .await
        .unwrap()
}

async fn invoices_are_fetched_from_stripe_when_none_were_delivered(backend: Backend) {
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            stripe_base_url: Some(fake.base_url()),
            ..TestOptions::default()
        },
    )
    .await;
    let (account, key) = app.create_account("Acme").await;
    let (_, other_key) = app.create_account("Globex").await;
    setup(&app, &fake).await;
    drain(&sender(&app.store, &fake), &app.store).await;
    let customer = app.store.stripe_ids(account).await.unwrap().customer.unwrap();
    let first = fake.add_invoice(&customer, "paid", 1_234);

    // None kept yet: the first page is fetched from Stripe and stored.
    let list = json_of(invoices(&app, &key, "").await, 200).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["data"][0]["id"], first);
    assert_eq!(list["data"][0]["status"], "paid");
    assert_eq!(list["data"][0]["total"], 1_234);
    assert_eq!(list["data"][0]["amount_paid"], 1_234);
    assert!(
        list["data"][0]["hosted_invoice_url"]
            .as_str()
            .unwrap()
            .contains(&first)
    );
    // Another tenant sees none of it.
    let theirs = json_of(invoices(&app, &other_key, "").await, 200).await;
    assert_eq!(theirs["data"], serde_json::json!([]));

    // Kept now: a new Stripe invoice shows after an explicit refresh only.
    let second = fake.add_invoice(&customer, "open", 500);
    let list = json_of(invoices(&app, &key, "").await, 200).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let list = json_of(invoices(&app, &key, "?refresh=true").await, 200).await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&second.as_str()) && ids.contains(&first.as_str()));

    // Stripe failing: an explicit refresh says so; a plain list serves
    // what is kept.
    fake.push_fault(Fault::Status(500, None));
    let down = assert_error(
        invoices(&app, &key, "?refresh=true").await,
        503,
        "stripe_unavailable",
    )
    .await;
    assert!(!down.to_string().contains(FakeStripe::SECRET_KEY));
    fake.push_fault(Fault::Status(500, None));
    let list = json_of(invoices(&app, &other_key, "").await, 200).await;
    assert_eq!(list["data"], serde_json::json!([]));
    // A bad flag names itself.
    let bad = assert_error(
        invoices(&app, &key, "?refresh=maybe").await,
        400,
        "invalid_request",
    )
    .await;
    assert!(bad.to_string().contains("refresh"), "{bad}");
}

async fn setup_and_reconcile_from_the_command_line(backend: Backend) {
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let url = app.database_url().to_owned();
    let run = |args: &[&str], stripe: bool| {
        let mut cmd = crate::support::bounty_command(dir.path());
        cmd.arg("--database-url").arg(&url).args(args);
        if stripe {
            cmd.env("BOUNTY_STRIPE__SECRET_KEY", FakeStripe::SECRET_KEY)
                .env("BOUNTY_STRIPE__BASE_URL", fake.base_url());
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Not configured: one clear line, exit 1.
    let (code, _, stderr) = run(&["stripe", "setup"], false);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("stripe.secret_key"), "{stderr}");

    let (account, agent) = setup(&app, &fake).await;
    let (code, stdout, stderr) = run(&["stripe", "setup"], true);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("meter   found"), "{stdout}");
    assert!(stdout.contains("price   found"), "{stdout}");
    let (code, stdout, _) = run(&["stripe", "setup", "--json"], true);
    assert_eq!(code, Some(0));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["meter"]["created"], false);
    assert_eq!(report["lookup_key"], "bounty_cu_usd_1000000");

    for n in 0..3 {
        charge_one(&app.store, account, agent, n).await;
    }
    drain(&sender(&app.store, &fake), &app.store).await;
    let today = app.store.now().date_naive();
    let (from, to) = (
        (today - chrono::Days::new(1)).to_string(),
        (today + chrono::Days::new(1)).to_string(),
    );
    let (code, stdout, stderr) = run(&["billing", "reconcile", "--from", &from, "--to", &to], true);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("1 account-day(s) compared"), "{stdout}");
    assert!(stdout.contains(": 0 differ"), "{stdout}");

    // Usage Stripe has that the ledger never charged: a difference, exit 1.
    let customer = app.store.stripe_ids(account).await.unwrap().customer.unwrap();
    client(&fake)
        .create_meter_event(
            &IdempotencyKey::new("stray").unwrap(),
            &MeterEvent {
                event_name: METER_EVENT_NAME,
                identifier: "stray-event",
                stripe_customer_id: &customer,
                value: 5,
                timestamp_unix: app.store.now().timestamp(),
            },
        )
        .await
        .unwrap();
    let (code, stdout, stderr) = run(&["billing", "reconcile", "--from", &from, "--to", &to], true);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains(&account.to_string()) && stdout.contains("3000") && stdout.contains("3005"));
    assert!(stdout.contains("-5"), "{stdout}");
    assert!(stderr.contains("differ"), "{stderr}");
    let (code, stdout, _) = run(
        &["billing", "reconcile", "--from", &from, "--to", &to, "--json"],
        true,
    );
    assert_eq!(code, Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["differences"], 1);
    assert_eq!(report["days"][0]["difference_milli_cu"], -5);
    assert_eq!(report["days"][0]["in_flight"], 0);

    // Bad flags: clap's exit 2, or a message naming the flag.
    let (code, _, stderr) = run(
        &["billing", "reconcile", "--from", "2026-13-01", "--to", &to],
        true,
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--from"), "{stderr}");
    let (code, _, stderr) = run(&["billing", "reconcile", "--from", &to, "--to", &from], true);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("must be before"), "{stderr}");
}
