//! The per-charge export on both backends: one line per charged outcome,
//! each recomputable from the line alone (its amount from its metered CU
//! and price, its receipt hash from its events), and totals that agree
//! with what Stripe holds after the sender ran: the metered quantity less
//! the cancelled meter events, priced the way Stripe prices it.

use bounty_billing::exports::stripe_amount_minor;
use bounty_billing::testing::FakeStripe;
use bounty_core::outcome::Signal;
use bounty_core::{ApiKeyMode, ApiKeySecret, Currency, KeyName};
use reqwest::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::stripe::{charge_one, drain, outcome_ids, sender, setup};
use crate::support::{Backend, TestApp, assert_error, json_of};

backend_tests!(the_charge_export_recomputes_and_reconciles_with_stripe);

async fn the_charge_export_recomputes_and_reconciles_with_stripe(backend: Backend) {
    let stripe = FakeStripe::start().await;
    let app = TestApp::spawn(backend).await;
    let (account, agent) = setup(&app, &stripe).await;
    let key = ApiKeySecret::generate(ApiKeyMode::Live);
    app.store
        .create_api_key(account, &KeyName::parse("finance").unwrap(), &key)
        .await
        .unwrap()
        .unwrap();
    let key = key.secret.expose().to_owned();
    for n in 0..3 {
        charge_one(&app.store, account, agent, n).await;
    }
    // One charge is reopened inside the window: its meter event is cancelled.
    let reopened = outcome_ids(&app.store, account).await[0];
    bounty_billing::settle::apply_signal(
        &app.store,
        account,
        reopened,
        Signal::Reopened,
        bounty_core::Actor::Worker,
    )
    .await
    .unwrap();
    let sender = sender(&app.store, &stripe);
    drain(&sender, &app.store).await;

    let get = |q: &str| {
        app.request(Method::GET, &format!("/v1/exports/charges{q}"), Some(&key))
            .send()
    };
    let export = json_of(get("").await.unwrap(), 200).await;
    let lines = export["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 3, "{export}");
    for l in lines {
        // The amount, from the line alone.
        let metered = l["metered_mcu"].as_i64().unwrap();
        let price = l["price_per_cu_micros"].as_i64().unwrap();
        assert_eq!(
            l["amount_micros"].as_i64().unwrap(),
            (metered * price + 500) / 1000,
            "{l}"
        );
        // The receipt hash, from the line's events.
        let text = l["receipt"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let at = chrono::DateTime::parse_from_rfc3339(e["created_at"].as_str().unwrap())
                    .unwrap()
                    .to_utc();
                format!(
                    "{}|{}|{}|{}|{}|{}|{}",
                    e["seq"],
                    e["event"].as_str().unwrap(),
                    e["to_status"].as_str().unwrap(),
                    e["effect"].as_str().unwrap(),
                    e["policy_hash"].as_str().unwrap(),
                    e["inputs_hash"].as_str().unwrap(),
                    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            l["receipt_sha256"],
            format!("{:x}", Sha256::digest(text.as_bytes()))
        );
    }
    let reversed: Vec<&Value> = lines.iter().filter(|l| l["reversal"] == "cancel").collect();
    assert_eq!(reversed.len(), 1);
    assert_eq!(reversed[0]["outcome_id"], reopened.to_string());
    assert!(reversed[0]["reversed_at"].is_string());
    // The totals are Stripe's: the active metered quantity, priced once.
    let t = &export["totals"];
    let active: i64 = stripe.active_value_by_customer().values().sum();
    assert_eq!(t["invoiced_mcu"].as_i64().unwrap(), active, "{t}");
    assert_eq!(
        t["cancelled_mcu"].as_i64().unwrap(),
        reversed[0]["metered_mcu"].as_i64().unwrap()
    );
    let sum: i64 = lines.iter().map(|l| l["amount_micros"].as_i64().unwrap()).sum();
    assert_eq!(t["amount_micros"].as_i64().unwrap(), sum);
    let price = lines[0]["price_per_cu_micros"].as_i64().unwrap();
    assert_eq!(
        t["invoiced_amount_minor"].as_i64().unwrap(),
        stripe_amount_minor(active, price, Currency::USD)
    );
    assert_eq!(t["invoiced_amount_minor"].as_i64().unwrap(), 200, "2 CU at 1 USD");
    // The same as CSV: a header, a row per line, and the totals row.
    let r = get("?format=csv").await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.unwrap();
    let rows: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 5, "{csv}");
    assert!(rows[0].starts_with("outcome_id,task_id,ticket,resolved_at"));
    assert!(
        rows[4].starts_with("total,") && rows[4].contains("invoiced_amount_minor=200"),
        "{}",
        rows[4]
    );
    // An empty period, and a bad format.
    let none = json_of(
        get("?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z")
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(none["lines"], serde_json::json!([]));
    assert_error(get("?format=xml").await.unwrap(), 400, "invalid_request").await;
    // Another account's key sees none of it.
    let (_, other) = app.create_account("Globex").await;
    let theirs = json_of(
        app.request(Method::GET, "/v1/exports/charges", Some(&other))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(theirs["lines"], serde_json::json!([]));
}
