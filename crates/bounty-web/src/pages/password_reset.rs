//! Password resets by one-time link, in both realms: an account's users
//! (`/password/forgot`, `/password/reset/{token}`) and operators
//! (`/ops/password/forgot`, `/ops/password/reset/{token}`).
//!
//! Asking for a link answers the same page whether or not the email has a
//! user, so the form tells nobody which emails do. Requests are counted per
//! email and per client address over the login limit's window, whether or
//! not the email exists; past the limit the form answers 429. A link is a
//! random token whose SHA-256 alone is stored; it lives an hour and works
//! once. Bounty has no mailer yet, so the link is written to the server's
//! log (the one place a raw token is ever logged), where whoever runs the
//! server finds it; `bounty users reset-password --link` prints one too.
//! Using a link sets the password, ends every session of its holder and
//! voids their other links, in one transaction.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use bounty_store::{Email, ResetHolder, Store};
use chrono::Duration;
use serde::Deserialize;

use crate::auth::{AnonymousForm, LOGIN_CSRF_COOKIE, anonymous_csrf, header_value, set_cookie};
use crate::error::WebError;
use crate::layout::{Chrome, render};
use crate::pages::login::{PASSWORD_CHANGED_QUERY, Realm, over_limit, rate_limited};
use crate::pages::new_password::NewPasswordForm;
use crate::state::WebState;
use crate::token::{new_token, token_hash};

/// How long a reset link works.
pub const RESET_LINK_TTL: Duration = Duration::hours(1);

/// What a request for a link answers, whatever the email.
const REQUESTED: &str = "If that email belongs to a user, a one-time link to choose a new password has been issued; it works once, for an hour. This server has no mailer configured, so the link is written to the server's log: ask whoever runs this server for it.";
/// What a rate-limited request says.
const REQUESTS_LIMITED: &str = "Too many reset requests. Wait 15 minutes and try again.";

#[derive(Template)]
#[template(path = "password_forgot.html")]
struct ForgotPage {
    chrome: Chrome,
    action: String,
    login_href: &'static str,
    csrf: String,
    email: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "password_reset.html")]
struct ResetPage {
    chrome: Chrome,
    action: String,
    csrf: String,
    email: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// The "forgot your password" form, with a fresh double-submit token.
fn forgot_page(
    realm: Realm,
    state: &WebState,
    status: StatusCode,
    email: String,
    error: Option<String>,
    notice: Option<&'static str>,
) -> Result<Response, WebError> {
    let (csrf, cookie) = anonymous_csrf(realm.password_path(), state)?;
    let page = ForgotPage {
        chrome: Chrome::bare("Forgot your password"),
        action: format!("{}/forgot", realm.password_path()),
        login_href: realm.login_path(),
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

/// `GET /password/forgot`.
pub(crate) async fn forgot(State(state): State<WebState>) -> Result<Response, WebError> {
    forgot_page(Realm::Customer, &state, StatusCode::OK, String::new(), None, None)
}

/// `GET /ops/password/forgot`.
pub(crate) async fn ops_forgot(State(state): State<WebState>) -> Result<Response, WebError> {
    forgot_page(Realm::Operator, &state, StatusCode::OK, String::new(), None, None)
}

/// `POST /password/forgot`.
pub(crate) async fn request(
    State(state): State<WebState>,
    form: AnonymousForm<ForgotForm>,
) -> Result<Response, WebError> {
    request_in(Realm::Customer, state, form).await
}

/// `POST /ops/password/forgot`.
pub(crate) async fn ops_request(
    State(state): State<WebState>,
    form: AnonymousForm<ForgotForm>,
) -> Result<Response, WebError> {
    request_in(Realm::Operator, state, form).await
}

async fn request_in(
    realm: Realm,
    state: WebState,
    AnonymousForm { form, ip }: AnonymousForm<ForgotForm>,
) -> Result<Response, WebError> {
    let seen = state
        .store
        .recent_reset_requests(&form.email, &ip, state.login_limits.window)
        .await?;
    if over_limit(&state, "password reset request", seen.by_email, seen.by_ip) {
        let page = forgot_page(
            realm,
            &state,
            StatusCode::OK,
            form.email,
            Some(REQUESTS_LIMITED.to_owned()),
            None,
        )?;
        return rate_limited(page, &state);
    }
    state.store.record_reset_request(&form.email, &ip).await?;
    let Ok(email) = Email::parse(&form.email) else {
        return forgot_page(
            realm,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            form.email,
            Some("`email` is not an email address.".to_owned()),
            None,
        );
    };
    if let Some(holder) = holder_of(realm, &state.store, &email).await? {
        let path = new_reset_link(&state.store, holder).await?;
        log_reset_link(holder, &state.link(&path));
    }
    forgot_page(
        realm,
        &state,
        StatusCode::OK,
        String::new(),
        None,
        Some(REQUESTED),
    )
}

/// Whose password of the realm `email` names, if anyone's.
async fn holder_of(realm: Realm, store: &Store, email: &Email) -> Result<Option<ResetHolder>, WebError> {
    Ok(match realm {
        Realm::Customer => store.find_user_by_email(email).await?.map(|l| ResetHolder::User {
            account: l.user.account_id,
            user: l.user.id,
        }),
        Realm::Operator => store
            .operator_by_email(email)
            .await?
            .map(|o| ResetHolder::Operator(o.id)),
    })
}

/// Issues a reset link for `holder`, valid for [`RESET_LINK_TTL`], and
/// returns its path (`/password/reset/…` or `/ops/password/reset/…`): the
/// only copy of its token. The dashboard logs it; the CLI prints it.
pub async fn new_reset_link(store: &Store, holder: ResetHolder) -> Result<String, WebError> {
    let (token, hash) = new_token()?;
    store
        .create_password_reset(holder, &hash, store.now() + RESET_LINK_TTL)
        .await?;
    let realm = match holder.realm() {
        bounty_store::Realm::Customer => Realm::Customer,
        bounty_store::Realm::Operator => Realm::Operator,
    };
    Ok(format!("{}/reset/{token}", realm.password_path()))
}

/// The one log line that carries a reset link, since no mailer is
/// configured.
fn log_reset_link(holder: ResetHolder, link: &str) {
    match holder {
        ResetHolder::User { account, user } => tracing::info!(
            account.id = %account, user.id = %user, link,
            "password reset requested; no mailer is configured, so the one-time link is logged here (works once, for 1 hour)"
        ),
        ResetHolder::Operator(operator) => tracing::info!(
            operator.id = %operator, link,
            "operator password reset requested; no mailer is configured, so the one-time link is logged here (works once, for 1 hour)"
        ),
    }
}

/// The "choose a new password" form of a live link.
fn reset_page(
    realm: Realm,
    state: &WebState,
    status: StatusCode,
    token: &str,
    email: Email,
    error: Option<String>,
) -> Result<Response, WebError> {
    let (csrf, cookie) = anonymous_csrf(realm.password_path(), state)?;
    let page = ResetPage {
        chrome: Chrome::bare("Choose a new password"),
        action: format!("{}/reset/{token}", realm.password_path()),
        csrf,
        email: email.as_str().to_owned(),
        error,
    };
    let mut r = render(&page)?;
    *r.status_mut() = status;
    r.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(r)
}

/// The email a live link resets, or a dead-link page.
async fn live_link(
    realm: Realm,
    state: &WebState,
    token: &str,
) -> Result<(bounty_store::TokenHash, Email), WebError> {
    let hash = token_hash(token).ok_or(WebError::DeadLink)?;
    let email = state
        .store
        .password_reset_email(realm.store(), &hash)
        .await?
        .ok_or(WebError::DeadLink)?;
    Ok((hash, email))
}

/// `GET /password/reset/{token}`.
pub(crate) async fn reset_form(
    State(state): State<WebState>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let (_, email) = live_link(Realm::Customer, &state, &token).await?;
    reset_page(Realm::Customer, &state, StatusCode::OK, &token, email, None)
}

/// `GET /ops/password/reset/{token}`.
pub(crate) async fn ops_reset_form(
    State(state): State<WebState>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let (_, email) = live_link(Realm::Operator, &state, &token).await?;
    reset_page(Realm::Operator, &state, StatusCode::OK, &token, email, None)
}

/// `POST /password/reset/{token}`.
pub(crate) async fn reset(
    State(state): State<WebState>,
    Path(token): Path<String>,
    form: AnonymousForm<NewPasswordForm>,
) -> Result<Response, WebError> {
    reset_in(Realm::Customer, state, &token, form.form).await
}

/// `POST /ops/password/reset/{token}`.
pub(crate) async fn ops_reset(
    State(state): State<WebState>,
    Path(token): Path<String>,
    form: AnonymousForm<NewPasswordForm>,
) -> Result<Response, WebError> {
    reset_in(Realm::Operator, state, &token, form.form).await
}

/// Sets the new password through the link, then sends its holder to log
/// in with it.
async fn reset_in(
    realm: Realm,
    state: WebState,
    token: &str,
    form: NewPasswordForm,
) -> Result<Response, WebError> {
    let (hash, email) = live_link(realm, &state, token).await?;
    let phc = match form.hash(&state).await? {
        Ok(phc) => phc,
        Err(e) => {
            return reset_page(
                realm,
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                token,
                email,
                Some(e.to_string()),
            );
        }
    };
    let holder = state
        .store
        .use_password_reset(realm.store(), &hash, &phc)
        .await?
        .ok_or(WebError::DeadLink)?;
    match holder {
        ResetHolder::User { account, user } => tracing::info!(
            account.id = %account, user.id = %user,
            "password reset by link: new password set, every session ended"
        ),
        ResetHolder::Operator(operator) => tracing::info!(
            operator.id = %operator,
            "operator password reset by link: new password set, every session ended"
        ),
    }
    let mut r = Redirect::to(&format!("{}?{PASSWORD_CHANGED_QUERY}", realm.login_path())).into_response();
    let c = set_cookie(
        LOGIN_CSRF_COOKIE,
        "",
        realm.password_path(),
        0,
        state.secure_cookies,
    );
    r.headers_mut().append(header::SET_COOKIE, header_value(&c)?);
    Ok(r)
}
