//! Logging in and out, the login rate limit, session expiry and CSRF.

use bounty_store::UserRole;
use chrono::Duration;
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::seed::{self, PASSWORD};
use crate::support::{Backend, TestApp};

const LOGIN_FAILED: &str = "That email and password do not match an account.";

async fn app_with_user(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    let t = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    app
}

async fn login_sets_a_session_cookie_and_opens_the_dashboard(backend: Backend) {
    let app = app_with_user(backend).await;
    let mut b = app.browser();
    let form = b.get("/login").await;
    form.assert_status(StatusCode::OK)
        .assert_contains("<label for=\"email\">");
    assert!(
        form.set_cookie("bounty_login_csrf").is_some(),
        "the login form sets its CSRF cookie"
    );
    // Email is matched case-insensitively.
    let r = b.login("Ann@Acme.TEST", PASSWORD).await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/"));
    let cookie = r.set_cookie("bounty_session").expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "not Secure without TLS: {cookie}");
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    assert!(token.len() >= 43, "a 32-byte token");
    b.get("/")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("ann@acme.test")
        .assert_contains("<h1>Overview</h1>");
    // A signed-in visit to /login goes to the dashboard.
    assert_eq!(b.get("/login").await.location(), Some("/"));
    let user = app
        .store
        .find_user_by_email(&bounty_store::Email::parse("ann@acme.test").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        user.user.last_login_at,
        Some(app.store.now()),
        "the login is recorded"
    );
}

async fn secure_cookies_are_marked_secure(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.secure_cookies = true).await;
    let t = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    let mut b = app.browser();
    let form = b.get("/login").await;
    assert!(form.set_cookie("bounty_login_csrf").unwrap().contains("; Secure"));
    let r = b.login("ann@acme.test", PASSWORD).await;
    assert!(r.set_cookie("bounty_session").unwrap().contains("; Secure"));
}

async fn a_failed_login_says_nothing_specific(backend: Backend) {
    let app = app_with_user(backend).await;
    let mut b = app.browser();
    let wrong = b.login("ann@acme.test", "wrong password").await;
    wrong
        .assert_status(StatusCode::UNAUTHORIZED)
        .assert_contains(LOGIN_FAILED);
    assert!(wrong.set_cookie("bounty_session").is_none());
    let unknown = b.login("nobody@acme.test", PASSWORD).await;
    unknown
        .assert_status(StatusCode::UNAUTHORIZED)
        .assert_contains(LOGIN_FAILED);
    let malformed = b.login("not an email", PASSWORD).await;
    malformed
        .assert_status(StatusCode::UNAUTHORIZED)
        .assert_contains(LOGIN_FAILED);
    // The form keeps the email typed, never the password.
    wrong
        .assert_contains("value=\"ann@acme.test\"")
        .assert_lacks("wrong password");
    assert_eq!(b.get("/").await.location(), Some("/login"), "still signed out");
}

async fn failed_logins_are_rate_limited_per_email_and_per_address(backend: Backend) {
    let app = app_with_user(backend).await;
    let t = seed::tenant(&app.store, "Other").await;
    seed::user(&app.store, t.account, "bob@other.test", UserRole::Owner).await;
    let mut b = app.browser();
    for _ in 0..5 {
        b.login("ann@acme.test", "guess")
            .await
            .assert_status(StatusCode::UNAUTHORIZED);
    }
    // The sixth try is refused before the password is checked, even when right.
    let limited = b.login("ann@acme.test", PASSWORD).await;
    limited
        .assert_status(StatusCode::TOO_MANY_REQUESTS)
        .assert_contains("Too many failed logins");
    assert_eq!(limited.headers.get("retry-after").unwrap(), "900");
    assert!(limited.set_cookie("bounty_session").is_none());
    // Another email from the same address is still fine (5 < 20)...
    let mut bob = app.browser();
    bob.login("bob@other.test", PASSWORD)
        .await
        .assert_status(StatusCode::SEE_OTHER);
    // ...until the address has failed 20 times, whatever the emails.
    for i in 0..15 {
        b.login(&format!("guess{i}@acme.test"), "guess")
            .await
            .assert_status(StatusCode::UNAUTHORIZED);
    }
    let mut bob = app.browser();
    bob.login("bob@other.test", PASSWORD)
        .await
        .assert_status(StatusCode::TOO_MANY_REQUESTS);
    // The window slides: 15 minutes later both may log in again.
    app.clock.advance(Duration::minutes(15) + Duration::seconds(1));
    app.browser()
        .login("ann@acme.test", PASSWORD)
        .await
        .assert_status(StatusCode::SEE_OTHER);
    app.browser()
        .login("bob@other.test", PASSWORD)
        .await
        .assert_status(StatusCode::SEE_OTHER);
}

async fn logout_revokes_the_session_server_side(backend: Backend) {
    let app = app_with_user(backend).await;
    let mut b = app.logged_in("ann@acme.test", PASSWORD).await;
    let stolen = b.cookies.clone();
    let csrf = b.csrf().await;
    let r = b.post("/logout", &[("csrf", &csrf)]).await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/login"));
    assert!(r.set_cookie("bounty_session").unwrap().contains("Max-Age=0"));
    assert_eq!(b.get("/").await.location(), Some("/login"));
    // A copy of the old cookie opens nothing: the session is revoked.
    let mut replay = app.browser();
    replay.cookies = stolen;
    let r = replay.get("/tasks").await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/login"));
}

async fn sessions_expire_twelve_hours_after_login(backend: Backend) {
    let app = app_with_user(backend).await;
    let mut b = app.logged_in("ann@acme.test", PASSWORD).await;
    app.clock.advance(Duration::hours(12) - Duration::seconds(1));
    b.get("/").await.assert_status(StatusCode::OK);
    app.clock.advance(Duration::seconds(1));
    let r = b.get("/").await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/login"));
}

async fn a_new_password_logs_out_every_session(backend: Backend) {
    let app = app_with_user(backend).await;
    let mut b = app.logged_in("ann@acme.test", PASSWORD).await;
    let login = app
        .store
        .find_user_by_email(&bounty_store::Email::parse("ann@acme.test").unwrap())
        .await
        .unwrap()
        .unwrap();
    let hash = crate::support::cheap_hasher().hash("a new password").unwrap();
    assert!(
        app.store
            .set_password(login.user.account_id, login.user.id, &hash)
            .await
            .unwrap()
    );
    assert_eq!(b.get("/").await.location(), Some("/login"));
    app.browser()
        .login("ann@acme.test", PASSWORD)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    app.browser()
        .login("ann@acme.test", "a new password")
        .await
        .assert_status(StatusCode::SEE_OTHER);
}

async fn posts_without_the_session_csrf_token_are_refused(backend: Backend) {
    let app = app_with_user(backend).await;
    let mut b = app.logged_in("ann@acme.test", PASSWORD).await;
    let keys_before = b.get("/api-keys").await.body.matches("data-key-id=").count();
    for form in [
        vec![("name", "sneaky")],
        vec![("name", "sneaky"), ("csrf", "")],
        vec![
            ("name", "sneaky"),
            (
                "csrf",
                "0000000000000000000000000000000000000000000000000000000000000000",
            ),
        ],
    ] {
        b.post("/api-keys", &form)
            .await
            .assert_status(StatusCode::FORBIDDEN)
            .assert_contains("security token");
    }
    b.post("/logout", &[("csrf", "nope")])
        .await
        .assert_status(StatusCode::FORBIDDEN);
    // Nothing happened: no key, and the session still works.
    let page = b.get("/api-keys").await;
    page.assert_status(StatusCode::OK).assert_lacks("sneaky");
    assert_eq!(page.body.matches("data-key-id=").count(), keys_before);
    // Another session's token is not this session's.
    let mut other = app.logged_in("ann@acme.test", PASSWORD).await;
    let theirs = other.csrf().await;
    b.post("/logout", &[("csrf", &theirs)])
        .await
        .assert_status(StatusCode::FORBIDDEN);
    // The login form needs its double-submit cookie.
    let mut fresh = app.browser();
    let csrf = fresh.get("/login").await.csrf();
    fresh.cookies.clear();
    fresh
        .post(
            "/login",
            &[
                ("email", "ann@acme.test"),
                ("password", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await
        .assert_status(StatusCode::FORBIDDEN);
}

on_both_backends!(
    login_sets_a_session_cookie_and_opens_the_dashboard,
    secure_cookies_are_marked_secure,
    a_failed_login_says_nothing_specific,
    failed_logins_are_rate_limited_per_email_and_per_address,
    logout_revokes_the_session_server_side,
    sessions_expire_twelve_hours_after_login,
    a_new_password_logs_out_every_session,
    posts_without_the_session_csrf_token_are_refused,
);
