//! Password resets by one-time link, for users and operators, over real
//! HTTP: the request tells nothing about the email, the link is logged (no
//! mailer) and works once, for an hour, in its own realm only; using it
//! sets the password and ends every session; requests are rate-limited.

use bounty_store::UserRole;
use chrono::Duration;
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::seed::{self, PASSWORD};
use crate::support::{Backend, Browser, Page, TestApp, logged};

const REQUESTED: &str = "If that email belongs to a user, a one-time link";
const CHANGED: &str = "Your password was changed";
const DEAD_LINK: &str = "This link does not work";
const NEW_PASSWORD: &str = "a brand new password";
const OPERATOR: &str = "ops@bounty.test";

/// Asks for a reset link at `{prefix}/forgot`.
async fn ask(b: &mut Browser, prefix: &str, email: &str) -> Page {
    let form = b.get(&format!("{prefix}/forgot")).await;
    form.assert_status(StatusCode::OK);
    let csrf = form.csrf();
    b.post(&format!("{prefix}/forgot"), &[("email", email), ("csrf", &csrf)])
        .await
}

/// The path of a logged link (its server part, if any, left off).
fn path_of(link: &str) -> String {
    let at = link.find("/password/").expect("a reset path");
    let start = if link[..at].ends_with("/ops") { at - 4 } else { at };
    link[start..].to_owned()
}

/// Sets `password` through the reset link at `path`.
async fn reset(b: &mut Browser, path: &str, password: &str) -> Page {
    let form = b.get(path).await;
    form.assert_status(StatusCode::OK);
    let csrf = form.csrf();
    b.post(
        path,
        &[("password", password), ("confirm", password), ("csrf", &csrf)],
    )
    .await
}

async fn a_reset_link_sets_the_password_once_and_ends_every_session(backend: Backend) {
    logged::capture();
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    let ann = seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    let mut signed_in = app.logged_in("ann@acme.test", PASSWORD).await;

    // The login page links to the form.
    app.browser()
        .get("/login")
        .await
        .assert_contains("href=\"/password/forgot\"");
    // Known or not, the answer is the same.
    let mut b = app.browser();
    let known = ask(&mut b, "/password", "Ann@Acme.test").await;
    known.assert_status(StatusCode::OK).assert_contains(REQUESTED);
    let unknown = ask(&mut app.browser(), "/password", "nobody@acme.test").await;
    unknown.assert_status(StatusCode::OK).assert_contains(REQUESTED);
    assert_eq!(
        known.body.replace(&known.csrf(), ""),
        unknown.body.replace(&unknown.csrf(), ""),
        "the page tells nothing about the email"
    );
    ask(&mut app.browser(), "/password", "not an email")
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("`email` is not an email address.");

    let link = logged::link_for("user.id", &ann.to_string()).expect("the link is logged");
    let path = path_of(&link);
    let token = path.trim_start_matches("/password/reset/").to_owned();
    assert_eq!(logged::events_holding(&token), 1, "logged once, nowhere else");
    // Not an operator's link.
    app.browser()
        .get(&format!("/ops{path}"))
        .await
        .assert_status(StatusCode::NOT_FOUND);

    let form = b.get(&path).await;
    form.assert_status(StatusCode::OK)
        .assert_contains("ann@acme.test");
    let csrf = form.csrf();
    b.post(
        &path,
        &[
            ("password", NEW_PASSWORD),
            ("confirm", "different"),
            ("csrf", &csrf),
        ],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("`confirm` must repeat `password` exactly.");
    let r = reset(&mut b, &path, NEW_PASSWORD).await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/login?password=changed"));
    b.get("/login?password=changed").await.assert_contains(CHANGED);

    // Every session ended; the old password no longer opens one.
    assert_eq!(signed_in.get("/").await.location(), Some("/login"));
    assert_eq!(
        app.browser().login("ann@acme.test", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    app.logged_in("ann@acme.test", NEW_PASSWORD).await;
    // Once only.
    let mut again = app.browser();
    again
        .get(&path)
        .await
        .assert_status(StatusCode::NOT_FOUND)
        .assert_contains(DEAD_LINK);
    app.browser()
        .get("/password/reset/garbage")
        .await
        .assert_status(StatusCode::NOT_FOUND);
}

async fn reset_links_expire_and_a_newer_password_voids_the_rest(backend: Backend) {
    logged::capture();
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    let bo = seed::user(&app.store, t.account, "bo@acme.test", UserRole::Member)
        .await
        .to_string();

    ask(&mut app.browser(), "/password", "bo@acme.test").await;
    let first = path_of(&logged::link_for("user.id", &bo).unwrap());
    let mut b = app.browser();
    let form = b.get(&first).await;
    let csrf = form.csrf();
    app.clock.advance(Duration::minutes(61));
    b.post(
        &first,
        &[
            ("password", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
            ("csrf", &csrf),
        ],
    )
    .await
    .assert_status(StatusCode::NOT_FOUND)
    .assert_contains(DEAD_LINK);
    app.logged_in("bo@acme.test", PASSWORD).await;

    // Two live links: using one voids the other.
    ask(&mut app.browser(), "/password", "bo@acme.test").await;
    let second = path_of(&logged::link_for("user.id", &bo).unwrap());
    ask(&mut app.browser(), "/password", "bo@acme.test").await;
    let third = path_of(&logged::link_for("user.id", &bo).unwrap());
    assert_ne!(second, third);
    reset(&mut app.browser(), &third, NEW_PASSWORD)
        .await
        .assert_status(StatusCode::SEE_OTHER);
    app.browser()
        .get(&second)
        .await
        .assert_status(StatusCode::NOT_FOUND);
}

async fn operators_reset_in_their_own_realm(backend: Backend) {
    logged::capture();
    let app = TestApp::spawn(backend).await;
    let op = seed::operator(&app.store, OPERATOR).await;
    // An account user with the same email is another person.
    let t = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, t.account, OPERATOR, UserRole::Owner).await;

    app.browser()
        .get("/ops/login")
        .await
        .assert_contains("href=\"/ops/password/forgot\"");
    ask(&mut app.browser(), "/ops/password", OPERATOR)
        .await
        .assert_status(StatusCode::OK)
        .assert_contains(REQUESTED);
    let path = path_of(&logged::link_for("operator.id", &op.to_string()).expect("logged"));
    assert!(path.starts_with("/ops/password/reset/"), "{path}");
    // Not a customer's link.
    app.browser()
        .get(path.trim_start_matches("/ops"))
        .await
        .assert_status(StatusCode::NOT_FOUND);
    let r = reset(&mut app.browser(), &path, NEW_PASSWORD).await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/ops/login?password=changed"));

    let r = app.browser().ops_login(OPERATOR, NEW_PASSWORD).await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/ops"));
    // The account user's password is untouched.
    app.logged_in(OPERATOR, PASSWORD).await;
}

async fn reset_requests_are_rate_limited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for _ in 0..5 {
        ask(&mut app.browser(), "/password", "victim@acme.test")
            .await
            .assert_status(StatusCode::OK);
    }
    let r = ask(&mut app.browser(), "/password", "Victim@acme.test").await;
    r.assert_status(StatusCode::TOO_MANY_REQUESTS)
        .assert_contains("Too many reset requests");
    assert!(r.headers.get("retry-after").is_some());
    // The window slides.
    app.clock.advance(Duration::minutes(16));
    ask(&mut app.browser(), "/password", "victim@acme.test")
        .await
        .assert_status(StatusCode::OK);
}

on_both_backends!(
    a_reset_link_sets_the_password_once_and_ends_every_session,
    reset_links_expire_and_a_newer_password_voids_the_rest,
    operators_reset_in_their_own_realm,
    reset_requests_are_rate_limited,
);
