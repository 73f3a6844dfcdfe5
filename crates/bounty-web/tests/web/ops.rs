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
    .assert_contains("Raw inference cost");
    b.get("/ops/margins?markup=ten")
        .await
        .assert_status(StatusCode::BAD_REQUEST)
        .assert_contains("markup");
    b.get("/ops/margins?account=acct_nope")
        .await
        .assert_status(StatusCode::BAD_REQUEST)
        .assert_contains("account");

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

on_both_backends!(
    the_console_shows_every_account_with_its_margin,
    a_customer_never_reaches_the_console,
);
