//! `/usage` and `/usage.csv`: the overview's numbers by day and by agent,
//! and the CSV's header and rows for seeded outcomes.

use bounty_store::UserRole;
use chrono::{TimeZone, Utc};
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::seed::{self, PASSWORD};
use crate::support::{Backend, TestApp};

/// Micros as the CSV writes them: six decimal places.
fn decimal(micros: i64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

async fn usage_by_day_and_agent_with_csv(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    seed::resolved_task(&app.store, &t, "Refund for order 1042").await;
    seed::failed_task(&app.store, &t, "Where is my parcel").await;
    let rows = app
        .store
        .usage(
            t.account,
            bounty_core::ApiKeyMode::Live,
            Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 5, 11, 0, 0, 0).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let charges: i64 = rows
        .iter()
        .filter(|r| r.status == bounty_core::outcome::OutcomeStatus::Resolved)
        .map(|r| r.amount.micros)
        .sum();
    let cu_milli: i64 = rows
        .iter()
        .filter(|r| r.status == bounty_core::outcome::OutcomeStatus::Resolved)
        .map(|r| r.cu.milli())
        .sum();
    let cu = format!("{}.{:03}", cu_milli / 1000, cu_milli % 1000);

    let mut b = app.logged_in("ann@acme.test", PASSWORD).await;
    let page = b.get("/usage").await;
    page.assert_status(StatusCode::OK)
        .assert_contains("aria-current=\"page\">Usage</a>")
        .assert_contains("From 2026-05-01 to 2026-05-10")
        .assert_contains("<th scope=\"row\" data-label=\"Day\">2026-05-10</th>")
        .assert_contains("<td class=\"num\" data-label=\"Escalated\">0</td>")
        .assert_contains("50.0%")
        .assert_lacks("argin")
        .assert_lacks("nference cost")
        .assert_contains("href=\"/usage.csv?from=2026-05-01&#38;to=2026-05-10&#38;group_by=day\"");
    b.get("/usage?group_by=agent")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains(&format!("<a href=\"/agents/{}\">support</a>", t.agent));
    b.get("/usage?from=2026-04-01&to=2026-04-30")
        .await
        .assert_contains("No outcome was decided in this period.");
    b.get("/usage?group_by=week")
        .await
        .assert_status(StatusCode::BAD_REQUEST)
        .assert_contains("`group_by`");

    let csv = b
        .get("/usage.csv?from=2026-05-01&to=2026-05-10&group_by=day")
        .await;
    csv.assert_status(StatusCode::OK);
    assert_eq!(
        csv.headers.get("content-type").unwrap(),
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        csv.headers.get("content-disposition").unwrap(),
        "attachment; filename=\"bounty-usage-2026-05-01-to-2026-05-10-by-day.csv\""
    );
    let lines: Vec<&str> = csv.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        [
            "day,currency,decided,resolved,failed,reversed,escalated,resolution_rate_percent,cu_billed,charges",
            format!("2026-05-10,USD,2,1,1,0,0,50.00,{cu},{}", decimal(charges)).as_str(),
        ]
    );
    let by_agent = b.get("/usage.csv?group_by=agent").await;
    let lines: Vec<&str> = by_agent.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("agent_id,agent_name,currency,decided,"));
    assert!(
        lines[1].starts_with(&format!("{},support,USD,2,1,1,0,0,50.00,", t.agent)),
        "{}",
        lines[1]
    );
    // An empty period is the header alone.
    let empty = b.get("/usage.csv?from=2026-04-01&to=2026-04-30").await;
    assert_eq!(empty.body.matches("\r\n").count(), 1);
    // Signed out, the CSV is not served.
    let r = app.browser().get("/usage.csv").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

/// The per-charge export from the dashboard: the usage page and every
/// invoice link to it, one line per charged outcome and a totals row.
async fn charges_export_from_usage_and_invoices(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    seed::resolved_task(&app.store, &t, "Refund for order 1042").await;
    seed::failed_task(&app.store, &t, "Where is my parcel").await;
    seed::invoice(&app.store, t.account, "in_acme_0001").await;
    let mut b = app.logged_in("ann@acme.test", PASSWORD).await;
    b.get("/usage")
        .await
        .assert_contains("href=\"/charges.csv?from=2026-05-01&amp;to=2026-05-10\"");
    // Stripe's May invoice (1 May to 1 June, end excluded) links to May's charges.
    b.get("/invoices")
        .await
        .assert_contains("href=\"/charges.csv?from=2026-05-01&#38;to=2026-05-31\"");
    let csv = b.get("/charges.csv?from=2026-05-01&to=2026-05-31").await;
    csv.assert_status(StatusCode::OK);
    assert_eq!(
        csv.headers.get("content-type").unwrap(),
        "text/csv; charset=utf-8"
    );
    let rows: Vec<&str> = csv.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 3, "the failed task is never a charge: {rows:?}");
    assert!(rows[1].contains("resolved"), "{}", rows[1]);
    assert!(rows[2].starts_with("total,"));
    let json = b.get("/charges.json?from=2026-05-01&to=2026-05-31").await;
    let v: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(v["lines"].as_array().unwrap().len(), 1);
    assert!(!json.body.contains("inference") && !json.body.contains("margin"));
    let r = app.browser().get("/charges.csv").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

/// Self-serve billing: an owner sets the monthly cap and its alerts; a
/// member cannot; a bad value names its field.
async fn an_owner_sets_the_cap(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    seed::user(&app.store, t.account, "bob@acme.test", UserRole::Member).await;
    let mut bob = app.logged_in("bob@acme.test", PASSWORD).await;
    let page = bob.get("/billing").await;
    page.assert_lacks("Save the cap");
    let csrf = page.csrf();
    bob.post(
        "/billing/cap",
        &[("csrf", &csrf), ("cap", "100"), ("alerts", "50")],
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    let mut ann = app.logged_in("ann@acme.test", PASSWORD).await;
    let page = ann.get("/billing").await;
    page.assert_contains("Save the cap");
    let csrf = page.csrf();
    ann.post(
        "/billing/cap",
        &[("csrf", &csrf), ("cap", "-5"), ("alerts", "50")],
    )
    .await
    .assert_status(StatusCode::BAD_REQUEST)
    .assert_contains("`cap`");
    let r = ann
        .post(
            "/billing/cap",
            &[("csrf", &csrf), ("cap", "250.50"), ("alerts", "50, 80, 100")],
        )
        .await;
    assert_eq!(r.location(), Some("/billing"));
    let info = app
        .store
        .billing_info(t.account, bounty_core::ApiKeyMode::Live)
        .await
        .unwrap();
    assert_eq!(info.monthly_cap.unwrap().micros, 250_500_000);
    assert_eq!(info.alert_percents, [50, 80, 100]);
    ann.get("/billing")
        .await
        .assert_contains("250.50 USD")
        .assert_contains("value=\"50, 80, 100\"");
    // No cap at all.
    ann.post("/billing/cap", &[("csrf", &csrf), ("cap", ""), ("alerts", "")])
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let info = app
        .store
        .billing_info(t.account, bounty_core::ApiKeyMode::Live)
        .await
        .unwrap();
    assert!(info.monthly_cap.is_none());
}

on_both_backends!(
    usage_by_day_and_agent_with_csv,
    charges_export_from_usage_and_invoices,
    an_owner_sets_the_cap,
    billing_shows_gateway_calls_billed_at_cost_plus,
    the_bell_shows_unread_notices_until_read,
    webhook_endpoints_are_listed_and_re_enabled
);

/// Gateway calls with no task on a cost-plus plan: the billing page shows
/// what is not billed yet, then the lines billed, in money and calls,
/// never the calls' cost.
async fn billing_shows_gateway_calls_billed_at_cost_plus(backend: Backend) {
    use bounty_core::{GatewayTerms, Money, Plan, Unattributed};
    use bounty_store::gateway::{GatewayBilling, NewGatewayCall};
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    let plan = Plan {
        gateway: Some(GatewayTerms {
            unattributed: Unattributed::CostPlus,
            markup_bp: 2_000,
        }),
        ..Plan::default_value_plan()
    };
    app.store.set_plan(t.account, &plan).await.unwrap();
    let usd = bounty_core::Currency::USD;
    let call = |cost: i64| NewGatewayCall {
        id: bounty_core::GatewayCallId::new(),
        account: t.account,
        mode: bounty_core::ApiKeyMode::Live,
        api_key: t.key.to_string(),
        task_ref: None,
        agent: None,
        endpoint: "chat",
        judge: false,
        model: "gpt".to_owned(),
        call: bounty_store::NewModelCall {
            model: "gpt".to_owned(),
            provider: Some("openai".to_owned()),
            prompt_tokens: 1_000,
            completion_tokens: 10,
            cached_tokens: 0,
            reasoning_tokens: 0,
            latency_us: 1_000,
            cost: Money::from_micros(cost, usd),
            cache_hit: false,
            byok: false,
            error: None,
            verdict: None,
            shadow: false,
        },
        usage_counted: false,
        streamed: false,
        billing: GatewayBilling::CostPlus,
        charge: GatewayTerms {
            unattributed: Unattributed::CostPlus,
            markup_bp: 2_000,
        }
        .cost_plus(Money::from_micros(cost, usd)),
        at: app.store.now(),
        cache: None,
    };
    app.store
        .record_gateway_calls(&[call(1_000_000), call(1_500_000)])
        .await
        .unwrap();
    let mut b = app.logged_in("ann@acme.test", PASSWORD).await;
    b.get("/billing")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Gateway calls without a task")
        .assert_contains("3.00 USD for 2 call(s)")
        .assert_contains("No lines billed yet.");
    let billed = bounty_billing::gateway::bill_cost_plus(&app.store).await.unwrap();
    assert_eq!(billed.len(), 1);
    b.get("/billing")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains(&billed[0].transfer.to_string())
        .assert_contains("<td class=\"num\">3.00 USD</td>")
        .assert_contains("<dd>nothing</dd>")
        // The cost (2.50 USD) and the markup are the operator's.
        .assert_lacks("2.50 USD")
        .assert_lacks("arkup_bp");
}

/// The bell: a notice to the account (a webhook endpoint disabled) shows
/// as an unread count on every page and on `/notifications`, until an
/// owner marks it read; the operator's notices are the console's alone.
async fn the_bell_shows_unread_notices_until_read(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    let endpoint = disabled_endpoint(&app, t.account, Vec::new()).await;
    let mut b = app.logged_in("ann@acme.test", PASSWORD).await;
    b.get("/billing")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("aria-label=\"1 unread\"");
    let page = b.get("/notifications").await;
    page.assert_status(StatusCode::OK)
        .assert_contains(&format!("Webhook endpoint {} was disabled", endpoint.id))
        .assert_contains("the endpoint answered 410 Gone")
        .assert_contains("Mark all 1 read");
    let csrf = b.csrf().await;
    b.post("/notifications/read", &[("csrf", &csrf)]).await;
    b.get("/billing").await.assert_lacks("unread\"");
    b.get("/notifications").await.assert_lacks("Mark all");
}

/// `/webhooks`: the account's endpoints, one's deliveries, re-enabling a
/// disabled one, and a resend of an unknown event refused in words.
async fn webhook_endpoints_are_listed_and_re_enabled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    let endpoint = disabled_endpoint(&app, t.account, vec!["charge.created".to_owned()]).await;
    let mut b = app.logged_in("ann@acme.test", PASSWORD).await;
    b.get("/webhooks")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("https://erp.acme.test/hook")
        .assert_contains("charge.created")
        .assert_lacks("sealed");
    let path = format!("/webhooks/{}", endpoint.id);
    b.get(&path)
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("the endpoint answered 410 Gone")
        .assert_contains("Re-enable");
    let csrf = b.csrf().await;
    b.post(
        &format!("{path}/enabled"),
        &[("csrf", &csrf), ("enabled", "true")],
    )
    .await;
    b.get(&path)
        .await
        .assert_contains(">enabled<")
        .assert_contains("Disable");
    b.post(
        &format!("{path}/resend"),
        &[("csrf", &csrf), ("event", "evt_nope")],
    )
    .await
    .assert_contains("is not an event of this account");
    // Another tenant's endpoint is not there.
    let other = seed::tenant(&app.store, "Globex").await;
    seed::user(&app.store, other.account, "gus@globex.test", UserRole::Owner).await;
    let mut g = app.logged_in("gus@globex.test", PASSWORD).await;
    g.get(&path).await.assert_status(StatusCode::NOT_FOUND);
}

/// A webhook endpoint of `account` taking `event_types`, disabled by a 410.
async fn disabled_endpoint(
    app: &TestApp,
    account: bounty_core::AccountId,
    event_types: Vec<String>,
) -> bounty_store::webhooks::WebhookEndpoint {
    let endpoint = app
        .store
        .create_webhook_endpoint(
            account,
            &bounty_store::webhooks::NewWebhookEndpoint {
                id: bounty_core::WebhookEndpointId::new(),
                mode: bounty_core::ApiKeyMode::Live,
                url: "https://erp.acme.test/hook".to_owned(),
                description: None,
                event_types,
                secret_sealed: "sealed".to_owned(),
            },
        )
        .await
        .unwrap();
    app.store
        .disable_webhook_endpoint(account, endpoint.id, "the endpoint answered 410 Gone")
        .await
        .unwrap();
    endpoint
}
