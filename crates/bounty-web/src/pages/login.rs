//! `GET/POST /login` and `POST /logout`, and the operator console's
//! `GET/POST /ops/login` and `POST /ops/logout`: one flow, two realms
//! ([`Realm`]) that never share a session, a cookie or a password table.
//!
//! A login is refused with one generic message whatever was wrong (no such
//! email, wrong password, malformed email), and takes about the same time
//! either way, so the form tells nobody which emails have users. Failed
//! attempts are counted in the store per email and per client address
//! over a sliding window; past the limit the form answers 429 without
//! checking the password. The login form is protected from cross-site
//! posting by a double-submit cookie, since there is no session yet
//! ([`AnonymousForm`]). [`sign_in`] starts a session, for a login and for
//! an accepted invite.

use askama::Template;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use bounty_store::{Email, NewSession};
use serde::Deserialize;

use crate::auth::{
    AnonymousForm, AnyUser, CurrentOperator, CurrentUser, LOGIN_CSRF_COOKIE, OPS_SESSION_COOKIE,
    SESSION_COOKIE, SignedForm, anonymous_csrf, header_value, set_cookie,
};
use crate::error::WebError;
use crate::layout::{Chrome, render};
use crate::state::WebState;
use crate::token::{new_csrf_secret, new_token};

/// What a refused login says, whatever the reason.
pub(crate) const LOGIN_FAILED: &str = "That email and password do not match an account.";
/// What a rate-limited login says.
pub(crate) const LOGIN_LIMITED: &str = "Too many failed logins. Wait 15 minutes and try again.";

/// Who logs in: an account's user at `/login`, or an operator at
/// `/ops/login`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Realm {
    Customer,
    Operator,
}

impl Realm {
    pub(crate) fn login_path(self) -> &'static str {
        match self {
            Realm::Customer => "/login",
            Realm::Operator => "/ops/login",
        }
    }

    fn home(self) -> &'static str {
        match self {
            Realm::Customer => "/",
            Realm::Operator => "/ops",
        }
    }

    /// The session cookie and the path it is sent under.
    fn session_cookie(self) -> (&'static str, &'static str) {
        match self {
            Realm::Customer => (SESSION_COOKIE, "/"),
            Realm::Operator => (OPS_SESSION_COOKIE, "/ops"),
        }
    }

    fn heading(self) -> &'static str {
        match self {
            Realm::Customer => "Log in to Bounty",
            Realm::Operator => "Operator console",
        }
    }

    /// Where the realm's password pages live: `{this}/forgot` and
    /// `{this}/reset/{token}`.
    pub(crate) fn password_path(self) -> &'static str {
        match self {
            Realm::Customer => "/password",
            Realm::Operator => "/ops/password",
        }
    }

    /// The store's name for the realm's password tables.
    pub(crate) fn store(self) -> bounty_store::Realm {
        match self {
            Realm::Customer => bounty_store::Realm::Customer,
            Realm::Operator => bounty_store::Realm::Operator,
        }
    }
}

/// What the login page says after a password reset.
const PASSWORD_CHANGED: &str =
    "Your password was changed and every session of yours was ended. Log in with the new one.";
/// The query a password reset redirects to the login page with.
pub(crate) const PASSWORD_CHANGED_QUERY: &str = "password=changed";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    heading: &'static str,
    action: &'static str,
    forgot_href: String,
    csrf: String,
    email: String,
    error: Option<&'static str>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// The login page with a fresh double-submit token in its cookie and form.
fn login_page(
    realm: Realm,
    state: &WebState,
    status: StatusCode,
    email: String,
    error: Option<&'static str>,
    notice: Option<&'static str>,
) -> Result<Response, WebError> {
    let (csrf, cookie) = anonymous_csrf(realm.login_path(), state)?;
    let page = LoginPage {
        chrome: Chrome::bare("Log in"),
        heading: realm.heading(),
        action: realm.login_path(),
        forgot_href: format!("{}/forgot", realm.password_path()),
        csrf,
        email,
        error,
        notice,
    };
    let mut r = render(&page)?;
    *r.status_mut() = status;
    r.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(r)
}

/// The login page's notice, from its query string.
fn notice(parts: &Parts) -> Option<&'static str> {
    (parts.uri.query() == Some(PASSWORD_CHANGED_QUERY)).then_some(PASSWORD_CHANGED)
}

/// `GET /login`: the form, or `/` when already signed in.
pub(crate) async fn form(State(state): State<WebState>, req: Request) -> Result<Response, WebError> {
    let (mut parts, _) = req.into_parts();
    if CurrentUser::from_request_parts(&mut parts, &state).await.is_ok() {
        return Ok(Redirect::to("/").into_response());
    }
    login_page(
        Realm::Customer,
        &state,
        StatusCode::OK,
        String::new(),
        None,
        notice(&parts),
    )
}

/// `GET /ops/login`: the operator's form, or `/ops` when signed in.
pub(crate) async fn ops_form(State(state): State<WebState>, req: Request) -> Result<Response, WebError> {
    let (mut parts, _) = req.into_parts();
    if CurrentOperator::from_request_parts(&mut parts, &state)
        .await
        .is_ok()
    {
        return Ok(Redirect::to("/ops").into_response());
    }
    login_page(
        Realm::Operator,
        &state,
        StatusCode::OK,
        String::new(),
        None,
        notice(&parts),
    )
}

/// `POST /login`: check the rate limit, then the password; on success a
/// new session and a redirect to `/`.
pub(crate) async fn submit(
    State(state): State<WebState>,
    form: AnonymousForm<LoginForm>,
) -> Result<Response, WebError> {
    submit_in(Realm::Customer, state, form).await
}

/// `POST /ops/login`: the same for an operator, into the console.
pub(crate) async fn ops_submit(
    State(state): State<WebState>,
    form: AnonymousForm<LoginForm>,
) -> Result<Response, WebError> {
    submit_in(Realm::Operator, state, form).await
}

/// Who a login found: the session to start.
pub(crate) enum Found {
    User(bounty_store::User),
    Operator(bounty_store::Operator),
}

async fn find(realm: Realm, state: &WebState, email: &Email) -> Result<Option<(Found, String)>, WebError> {
    Ok(match realm {
        Realm::Customer => state
            .store
            .find_user_by_email(email)
            .await?
            .map(|l| (Found::User(l.user), l.password_hash)),
        Realm::Operator => state
            .store
            .find_operator_by_email(email)
            .await?
            .map(|l| (Found::Operator(l.operator), l.password_hash)),
    })
}

/// Starts the session of whoever logged in.
async fn start(state: &WebState, found: Found, new: &NewSession) -> Result<Realm, WebError> {
    let gone = || WebError::Internal("the login vanished during login".into());
    Ok(match found {
        Found::User(user) => {
            let session = state
                .store
                .create_session(user.account_id, user.id, new)
                .await?
                .ok_or_else(gone)?;
            tracing::info!(account.id = %session.account_id, user.id = %session.user_id, session.id = %session.id, "dashboard: login");
            Realm::Customer
        }
        Found::Operator(operator) => {
            let session = state
                .store
                .create_operator_session(operator.id, new)
                .await?
                .ok_or_else(gone)?;
            tracing::info!(operator.id = %session.operator_id, session.id = %session.id, "console: operator login");
            Realm::Operator
        }
    })
}

/// Whether counts per email and per client address have reached the
/// login limits (which reset requests share); logged when they have.
pub(crate) fn over_limit(state: &WebState, what: &'static str, by_email: u32, by_ip: u32) -> bool {
    let limits = state.login_limits;
    let over = by_email >= limits.per_email || by_ip >= limits.per_ip;
    if over {
        tracing::info!(by_email, by_ip, "dashboard: {what} rate-limited");
    }
    over
}

/// The 429 page of a rate-limited client, with its `Retry-After`.
pub(crate) fn rate_limited(mut r: Response, state: &WebState) -> Result<Response, WebError> {
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let retry = state.login_limits.window.num_seconds().max(1).to_string();
    r.headers_mut().insert(header::RETRY_AFTER, header_value(&retry)?);
    Ok(r)
}

async fn submit_in(
    realm: Realm,
    state: WebState,
    AnonymousForm { form, ip }: AnonymousForm<LoginForm>,
) -> Result<Response, WebError> {
    let failures = state
        .store
        .recent_failed_logins(&form.email, &ip, state.login_limits.window)
        .await?;
    if over_limit(&state, "login", failures.by_email, failures.by_ip) {
        let page = login_page(
            realm,
            &state,
            StatusCode::OK,
            form.email,
            Some(LOGIN_LIMITED),
            None,
        )?;
        return rate_limited(page, &state);
    }
    let found = match Email::parse(&form.email) {
        Ok(email) => find(realm, &state, &email).await?,
        Err(_) => None,
    };
    let passwords = state.passwords.clone();
    let password = form.password;
    let (found, ok) = tokio::task::spawn_blocking(move || match found {
        Some((who, hash)) => {
            let ok = passwords.verify(&password, &hash);
            (Some(who), ok)
        }
        None => (None, passwords.verify_nobody(&password)),
    })
    .await
    .map_err(|e| WebError::Internal(format!("password check: {e}")))?;
    state.store.record_login_attempt(&form.email, &ip, ok).await?;
    let Some(who) = found.filter(|_| ok) else {
        return login_page(
            realm,
            &state,
            StatusCode::UNAUTHORIZED,
            form.email,
            Some(LOGIN_FAILED),
            None,
        );
    };
    sign_in(&state, who, realm.login_path()).await
}

/// Starts a session for `who` (after a login, or an accepted invite) and
/// redirects to its realm's home with the session cookie, clearing the
/// double-submit cookie of the form at `form_path`.
pub(crate) async fn sign_in(state: &WebState, who: Found, form_path: &str) -> Result<Response, WebError> {
    let (token, hash) = new_token()?;
    let new = NewSession {
        token_hash: hash,
        csrf_secret: new_csrf_secret()?,
        expires_at: state.store.now() + state.session_ttl,
    };
    let realm = start(state, who, &new).await?;
    let (cookie_name, cookie_path) = realm.session_cookie();
    let mut r = Redirect::to(realm.home()).into_response();
    let headers = r.headers_mut();
    for c in [
        set_cookie(
            cookie_name,
            &token,
            cookie_path,
            state.session_ttl.num_seconds(),
            state.secure_cookies,
        ),
        set_cookie(LOGIN_CSRF_COOKIE, "", form_path, 0, state.secure_cookies),
    ] {
        headers.append(header::SET_COOKIE, header_value(&c)?);
    }
    Ok(r)
}

/// An empty form: only its CSRF token matters.
#[derive(Deserialize)]
pub(crate) struct NoFields {}

/// `POST /logout`: revokes the session server-side and clears the cookie.
pub(crate) async fn logout(
    State(state): State<WebState>,
    SignedForm {
        user: AnyUser(user), ..
    }: SignedForm<NoFields, AnyUser>,
) -> Result<Response, WebError> {
    state
        .store
        .revoke_session(user.account(), &user.session.id)
        .await?;
    signed_out(Realm::Customer, &state)
}

/// `POST /ops/logout`: the same for the operator's session.
pub(crate) async fn ops_logout(
    State(state): State<WebState>,
    SignedForm { user, .. }: SignedForm<NoFields, CurrentOperator>,
) -> Result<Response, WebError> {
    state
        .store
        .revoke_operator_session(user.session.operator_id, &user.session.id)
        .await?;
    signed_out(Realm::Operator, &state)
}

/// The redirect to the realm's login, clearing its session cookie.
fn signed_out(realm: Realm, state: &WebState) -> Result<Response, WebError> {
    let (cookie_name, cookie_path) = realm.session_cookie();
    let mut r = Redirect::to(realm.login_path()).into_response();
    let c = set_cookie(cookie_name, "", cookie_path, 0, state.secure_cookies);
    r.headers_mut().insert(header::SET_COOKIE, header_value(&c)?);
    Ok(r)
}
