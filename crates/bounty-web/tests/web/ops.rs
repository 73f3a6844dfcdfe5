//! The operator console under `/ops`: an operator (not a user of any
//! account) signs in at `/ops/login` and sees every account with its
//! revenue, inference cost and margin, one account's detail, and the
//! pricing-model comparison. The two realms never mix: a customer's
//! session is sent to `/ops/login`, an operator's to `/login`, and a
//! customer's password does not open the console.

use bounty_store::{Email, UserRole};
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::seed::{self, PASSWORD};
use crate::support::{Backend, Browser, TestApp, cheap_hasher};

const OPERATOR: &str = "ops@bounty.test";

async fn operator(app: &TestApp) {
    let hash = cheap_hasher().hash(PASSWORD).expect("hash");
    app.store
        .create_operator(&Email::parse(OPERATOR).unwrap(), &hash)
        .await
        .unwrap()
        .expect("a new operator");
}

/// Loads the console's login form, then posts it.
async fn ops_login(b: &mut Browser, email: &str, password: &str) -> crate::support::Page {
    let form = b.get("/ops/login").await;
    form.assert_status(StatusCode::OK)
        .assert_contains("Operator console");
    let csrf = form.csrf();
    b.post(
        "/ops/login",
        &[("email", email), ("password", password), ("csrf", &csrf)],
    )
    .await
}

async fn the_console_shows_every_account_with_its_margin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = seed::tenant(&app.store, "Acme").await;
    let globex = seed::tenant(&app.store, "Globex").await;
    seed::resolved_task(&app.store, &acme, "Refund for order 1042").await;
    seed::failed_task(&app.store, &acme, "Where is my parcel").await;
    operator(&app).await;

    let mut b = app.browser();
    let r = b.get("/ops").await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/ops/login"));
    let r = ops_login(&mut b, OPERATOR, PASSWORD).await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/ops"));
    assert!(b.cookies.contains_key("bounty_ops_session"));
    assert!(!b.cookies.contains_key("bounty_session"), "no customer session");

    // Acme's resolved outcome was charged 1 USD; its two tasks' calls cost
    // 2,500 + 1,000 micros: a 99.65% margin.
    let accounts = b.get("/ops?from=2026-05-01&to=2026-05-10").await;
    accounts
        .assert_status(StatusCode::OK)
        .assert_contains("aria-current=\"page\">Accounts</a>")
        .assert_contains(&format!("href=\"/ops/accounts/{}?", acme.account))
        .assert_contains(&format!("<code>{}</code>", globex.account))
        .assert_contains("Inference cost")
        .assert_contains("1.00 USD")
        .assert_contains("0.0035 USD")
        .assert_contains("99.7%")
        .assert_contains("(operator)");
    let detail = b
        .get(&format!(
            "/ops/accounts/{}?from=2026-05-01&to=2026-05-10",
            acme.account
        ))
        .await;
    detail
        .assert_status(StatusCode::OK)
        .assert_contains("<h1>Acme</h1>")
        .assert_contains("Gross margin")
        .assert_contains("class=\"margin-line\"")
        .assert_contains("30% margin line")
        .assert_contains("CU included each month");
    b.get("/ops/accounts/acct_nope")
        .await
        .assert_status(StatusCode::NOT_FOUND);
    // The pricing comparison: the charge is the value-based revenue;
    // cost-plus is the 3,500 micros of inference marked up 30%: 4,550.
    b.get(&format!(
        "/ops/margins?account={}&from=2026-05-01&to=2026-05-10",
        acme.account
    ))
    .await
    .assert_status(StatusCode::OK)
    .assert_contains("aria-current=\"page\">Margins</a>")
    .assert_contains("Margins: Acme")
    .assert_contains("2 outcomes decided, 1 resolved")
    .assert_contains("<th scope=\"row\">Value-based (the plan)</th><td class=\"num\">1.00 USD</td>")
    .assert_contains("<th scope=\"row\">Cost-plus</th><td class=\"num\">0.00455 USD</td>")
    .assert_contains("<th scope=\"row\">BYOK (platform fee)</th><td class=\"num\">0.10 USD</td>")
    .assert_contains("class=\"hchart\"")
    .assert_contains("Raw inference cost")
    .assert_contains("<h2>By model</h2>");
    b.get("/ops/margins?markup=ten")
        .await
        .assert_status(StatusCode::BAD_REQUEST)
        .assert_contains("markup");
    b.get("/ops/margins?account=acct_nope")
        .await
        .assert_status(StatusCode::BAD_REQUEST)
        .assert_contains("account");

    // Health: the charge's meter event waits in the outbox (no Stripe
    // sender here), and the queue is counted.
    seed::queued_task(&app.store, &globex, "Still waiting").await;
    b.get("/ops/health")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("aria-current=\"page\">Health</a>")
        .assert_contains("<th scope=\"row\">meter_event</th><td class=\"num\">1</td>")
        .assert_contains("<div><dt>Queued</dt><dd>1</dd></div>")
        .assert_contains("No integration has refused a delivery.");

    // An operator is no customer: the customer's pages want their login.
    let r = b.get("/").await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/login"));

    // Logging out needs the session's CSRF token and ends the session.
    let csrf = accounts.csrf();
    b.post("/ops/logout", &[("csrf", "wrong")])
        .await
        .assert_status(StatusCode::FORBIDDEN);
    let r = b.post("/ops/logout", &[("csrf", &csrf)]).await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/ops/login"));
    let r = b.get("/ops").await;
    assert_eq!(r.location(), Some("/ops/login"));
}

async fn a_customer_never_reaches_the_console(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, acme.account, "ann@acme.test", UserRole::Owner).await;
    operator(&app).await;
    let mut b = app.logged_in("ann@acme.test", PASSWORD).await;
    for path in ["/ops", &format!("/ops/accounts/{}", acme.account), "/ops/margins"] {
        let r = b.get(path).await;
        r.assert_status(StatusCode::SEE_OTHER);
        assert_eq!(r.location(), Some("/ops/login"), "{path}");
    }
    // A customer's email and password do not open the console, and an
    // operator's do not open the customer's dashboard.
    let mut anon = app.browser();
    ops_login(&mut anon, "ann@acme.test", PASSWORD)
        .await
        .assert_status(StatusCode::UNAUTHORIZED)
        .assert_contains("do not match");
    anon.login(OPERATOR, PASSWORD)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    assert!(
        anon.cookies.keys().all(|k| !k.ends_with("session")),
        "{:?}",
        anon.cookies
    );
}

/// The operator changes an account's plan, cap, credits and status from
/// its page; a bad value is a 400 naming its field.
async fn the_operator_acts_on_an_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = seed::tenant(&app.store, "Acme").await;
    operator(&app).await;
    let mut b = app.browser();
    ops_login(&mut b, OPERATOR, PASSWORD).await;
    let path = format!("/ops/accounts/{}", acme.account);
    let page = b.get(&path).await;
    page.assert_contains("Save the plan")
        .assert_contains("Suspend the account");
    let csrf = page.csrf();
    let post = |what: &'static str| format!("{path}/{what}");
    b.post(
        &post("plan"),
        &[("csrf", &csrf), ("price_per_cu", "ten"), ("included_cu", "0")],
    )
    .await
    .assert_status(StatusCode::BAD_REQUEST)
    .assert_contains("price_per_cu");
    let r = b
        .post(
            &post("plan"),
            &[
                ("csrf", &csrf),
                ("price_per_cu", "2.50"),
                ("included_cu", "10"),
                ("dispute_days", "7"),
                ("dispute_max_percent", "5"),
            ],
        )
        .await;
    assert_eq!(r.location(), Some(path.as_str()));
    let plan = app.store.plan(acme.account).await.unwrap();
    assert_eq!(plan.price_per_cu.micros, 2_500_000);
    assert_eq!(plan.included_cu.milli(), 10_000);
    assert_eq!(plan.disputes.unwrap().max_accepted_bp, 500);
    b.post(
        &post("cap"),
        &[("csrf", &csrf), ("cap", "500"), ("alerts", "50, 90, 200")],
    )
    .await
    .assert_status(StatusCode::BAD_REQUEST)
    .assert_contains("alerts");
    b.post(
        &post("cap"),
        &[("csrf", &csrf), ("cap", "500"), ("alerts", "50, 90")],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    b.post(
        &post("credits"),
        &[("csrf", &csrf), ("cu", "25"), ("memo", "welcome")],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    let info = app
        .store
        .billing_info(acme.account, bounty_core::ApiKeyMode::Live)
        .await
        .unwrap();
    assert_eq!(info.monthly_cap.unwrap().micros, 500_000_000);
    assert_eq!(info.alert_percents, [50, 90]);
    assert_eq!(info.credit_balance.milli(), 25_000);
    b.post(&post("status"), &[("csrf", &csrf), ("status", "suspended")])
        .await
        .assert_status(StatusCode::SEE_OTHER);
    assert_eq!(
        app.store.account_status(acme.account).await.unwrap(),
        Some(bounty_core::AccountStatus::Suspended)
    );
    b.get(&path)
        .await
        .assert_contains("Reactivate the account")
        .assert_contains("suspended")
        .assert_contains("value=\"2.5")
        .assert_contains("25.000 CU");
    b.post(&post("status"), &[("csrf", "forged"), ("status", "active")])
        .await
        .assert_status(StatusCode::FORBIDDEN);
}

on_both_backends!(
    the_operator_acts_on_an_account,
    the_console_shows_every_account_with_its_margin,
    a_customer_never_reaches_the_console,
);
