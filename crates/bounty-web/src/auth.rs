//! Who is asking: the session cookie, the CSRF check, and the client
//! address.
//!
//! A request is signed in when its `bounty_session` cookie holds a token
//! whose SHA-256 names a live session in the store. [`CurrentUser`] is the
//! extractor every page takes; its account scopes every store call of the
//! request, so another tenant's object is simply not found.
//!
//! Every state-changing form is read through [`SignedForm`], which refuses
//! (403) a body whose `csrf` field is not the session's secret, compared in
//! constant time; a handler cannot take a signed-in POST without it. The
//! cookie is also `SameSite=Lax`, so other sites' forms do not carry it.
//!
//! A `viewer` sees every page and changes nothing: [`SignedForm`] refuses
//! (403) their every form, whatever the handler, so a new action is
//! closed to viewers without anyone remembering to close it. The only
//! forms a viewer may send say so by taking [`AnyUser`] as their signer:
//! logging out and the live/test switch (a cookie, not the account).
//!
//! Forms sent with no session (login, invites, password resets) are read
//! through [`AnonymousForm`], which checks a double-submit cookie instead.
//!
//! Every form body and query string is checked for the NUL character
//! (`%00`), which Postgres cannot store: it is a 422 naming the field, on
//! both backends, before a handler sees it ([`parse_form`], [`nul_field`]).
//! A body over the server's limit is a 413 page ([`read_form`]).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use bounty_store::{Session, UserRole};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::WebError;
use crate::state::WebState;
use crate::token::{new_csrf_secret, token_hash, tokens_match};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "bounty_session";
/// The operator console's session cookie, sent only under `/ops`.
pub const OPS_SESSION_COOKIE: &str = "bounty_ops_session";
/// Which mode's data the dashboard shows: `test` for test mode, anything
/// else (or none) for live. Set by the live/test switch (`POST /mode`).
pub const MODE_COOKIE: &str = "bounty_mode";
/// The double-submit CSRF cookie of the forms sent with no session (login,
/// accepting an invite, resetting a password), set on each form's path.
pub(crate) const LOGIN_CSRF_COOKIE: &str = "bounty_login_csrf";
/// What a viewer's refused form says.
pub(crate) const VIEWER_READ_ONLY: &str = "Viewers can see this account but not change it. Ask an owner of the account for the member or owner role.";

/// The value of cookie `name` in the request, if any.
pub(crate) fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value with the attributes every cookie of ours has.
pub(crate) fn set_cookie(name: &str, value: &str, path: &str, max_age_s: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}")
}

/// The signed-in user of this request.
#[derive(Debug, Clone)]
pub(crate) struct CurrentUser {
    pub(crate) session: Session,
    /// Live or test data, as the dashboard's switch chose: every figure
    /// and list of the request is of this mode, as with API keys.
    pub(crate) mode: bounty_core::ApiKeyMode,
    /// The account's unread notices: the bell's number.
    pub(crate) unread: i64,
}

impl CurrentUser {
    /// Refuses (403) members where only owners may act.
    pub(crate) fn require_owner(&self) -> Result<(), WebError> {
        if self.session.role == UserRole::Owner {
            Ok(())
        } else {
            Err(WebError::Forbidden("Only an owner of this account can do that."))
        }
    }

    /// The mode every figure and list of the request is of.
    pub(crate) fn mode(&self) -> bounty_core::ApiKeyMode {
        self.mode
    }

    /// The account every query of the request is scoped by.
    pub(crate) fn account(&self) -> bounty_core::AccountId {
        self.session.account_id
    }
}

/// The signed-in user whatever their role, viewers included: the signer of
/// the few forms a viewer may send (logout, the live/test switch).
#[derive(Debug, Clone)]
pub(crate) struct AnyUser(pub(crate) CurrentUser);

impl FromRequestParts<WebState> for AnyUser {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        CurrentUser::from_request_parts(parts, state).await.map(AnyUser)
    }
}

impl FromRequestParts<WebState> for CurrentUser {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        let hash = cookie(parts, SESSION_COOKIE)
            .and_then(token_hash)
            .ok_or(WebError::LoginRequired)?;
        let session = state
            .store
            .session_by_token_hash(&hash)
            .await?
            .ok_or(WebError::LoginRequired)?;
        let mode = match cookie(parts, MODE_COOKIE) {
            Some("test") => bounty_core::ApiKeyMode::Test,
            _ => bounty_core::ApiKeyMode::Live,
        };
        let unread = state.store.unread_notifications(Some(session.account_id)).await?;
        Ok(CurrentUser {
            session,
            mode,
            unread,
        })
    }
}

/// The operator signed in to the console: not a user of any account. A
/// customer's session is no operator's session, whatever its role.
#[derive(Debug, Clone)]
pub(crate) struct CurrentOperator {
    pub(crate) session: bounty_store::OperatorSession,
    /// The operator's unread notices: the console's bell.
    pub(crate) unread: i64,
}

impl FromRequestParts<WebState> for CurrentOperator {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        let hash = cookie(parts, OPS_SESSION_COOKIE)
            .and_then(token_hash)
            .ok_or(WebError::OpsLoginRequired)?;
        let session = state
            .store
            .operator_session_by_token_hash(&hash)
            .await?
            .ok_or(WebError::OpsLoginRequired)?;
        let unread = state.store.unread_notifications(None).await?;
        Ok(CurrentOperator { session, unread })
    }
}

/// Whoever signs a form: a session with a CSRF secret.
pub(crate) trait Signer: FromRequestParts<WebState, Rejection = WebError> + Send + Sync {
    /// The secret every form of the session echoes.
    fn csrf_secret(&self) -> &str;
    /// The session's id, for the log.
    fn session_id(&self) -> &str;
    /// Whether this signer may change anything (403 if not).
    fn may_change(&self) -> Result<(), WebError> {
        Ok(())
    }
}

impl Signer for CurrentUser {
    fn csrf_secret(&self) -> &str {
        &self.session.csrf_secret
    }

    fn session_id(&self) -> &str {
        self.session.id.as_str()
    }

    /// Viewers change nothing.
    fn may_change(&self) -> Result<(), WebError> {
        if self.session.role == UserRole::Viewer {
            tracing::info!(session.id = %self.session.id, "dashboard: a viewer's form refused");
            return Err(WebError::Forbidden(VIEWER_READ_ONLY));
        }
        Ok(())
    }
}

impl Signer for AnyUser {
    fn csrf_secret(&self) -> &str {
        self.0.csrf_secret()
    }

    fn session_id(&self) -> &str {
        self.0.session_id()
    }
}

impl Signer for CurrentOperator {
    fn csrf_secret(&self) -> &str {
        &self.session.csrf_secret
    }

    fn session_id(&self) -> &str {
        self.session.id.as_str()
    }
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// The first field of a url-encoded form or query string whose name or
/// value holds a NUL character, if any.
pub(crate) fn nul_field(encoded: &[u8]) -> Option<String> {
    form_urlencoded::parse(encoded)
        .find(|(k, v)| bounty_core::text::has_nul(k) || bounty_core::text::has_nul(v))
        .map(|(k, _)| k.replace('\0', "\\u0000"))
}

/// The 422 for a field holding a NUL character.
pub(crate) fn nul_error(field: &str) -> WebError {
    WebError::Unprocessable(format!(
        "`{field}` contains a NUL character (\\u0000), which cannot be stored. Remove it and try again."
    ))
}

/// Parses an `application/x-www-form-urlencoded` body into `T`, or a 400
/// that names what is wrong; a NUL character in any field is a 422 naming
/// it.
pub(crate) fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, WebError> {
    if let Some(field) = nul_field(body) {
        return Err(nul_error(&field));
    }
    serde_urlencoded::from_bytes(body)
        .map_err(|e| WebError::BadRequest(format!("The form is not valid: {e}.")))
}

/// Reads a form body: over the server's limit, a 413 page.
pub(crate) async fn read_form(req: Request, state: &WebState) -> Result<Bytes, WebError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            WebError::PayloadTooLarge
        } else {
            WebError::BadRequest(format!("The form could not be read: {e}."))
        }
    })
}

/// A signed-in POST: the user (or the operator), and the form, after its
/// CSRF token matched the session's secret and the signer may change
/// things (no viewer, unless the signer is [`AnyUser`]).
pub(crate) struct SignedForm<T, U = CurrentUser> {
    pub(crate) user: U,
    pub(crate) form: T,
}

impl<T: DeserializeOwned, U: Signer> FromRequest<WebState> for SignedForm<T, U> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &WebState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let user = U::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let body = read_form(req, state).await?;
        let CsrfField { csrf } = parse_form(&body)?;
        if !tokens_match(&csrf, user.csrf_secret()) {
            tracing::info!(session.id = %user.session_id(), "dashboard: CSRF token mismatch");
            return Err(WebError::CsrfRejected);
        }
        user.may_change()?;
        let form = parse_form(&body)?;
        Ok(SignedForm { user, form })
    }
}

/// A POST sent with no session: the form, after its `csrf` field matched
/// the double-submit cookie its page set, and the client address (for
/// rate limits).
pub(crate) struct AnonymousForm<T> {
    pub(crate) form: T,
    pub(crate) ip: String,
}

impl<T: DeserializeOwned> FromRequest<WebState> for AnonymousForm<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &WebState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let ip = client_ip(&parts, state);
        let expected = cookie(&parts, LOGIN_CSRF_COOKIE).unwrap_or_default().to_owned();
        let body = read_form(Request::from_parts(parts, body), state).await?;
        let CsrfField { csrf } = parse_form(&body)?;
        if !tokens_match(&csrf, &expected) {
            return Err(WebError::CsrfRejected);
        }
        Ok(AnonymousForm {
            form: parse_form(&body)?,
            ip,
        })
    }
}

/// A fresh double-submit token for a form sent with no session, and the
/// cookie that carries it, sent back only under `path`.
pub(crate) fn anonymous_csrf(path: &str, state: &WebState) -> Result<(String, HeaderValue), WebError> {
    let csrf = new_csrf_secret()?;
    let c = set_cookie(LOGIN_CSRF_COOKIE, &csrf, path, 3600, state.secure_cookies);
    Ok((csrf, header_value(&c)?))
}

/// A header value from a string of ours.
pub(crate) fn header_value(v: &str) -> Result<HeaderValue, WebError> {
    HeaderValue::from_str(v).map_err(|e| WebError::Internal(e.to_string()))
}

/// The client address the login rate limit counts by.
pub(crate) fn client_ip(parts: &Parts, state: &WebState) -> String {
    if state.trust_forwarded_for
        && let Some(last) = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|s| !s.is_empty())
    {
        return last.to_owned();
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}
