//! The one error type of the dashboard, and the page each variant shows.
//!
//! Every failure a browser can see is a [`WebError`]: each variant has a
//! fixed status (in its doc comment) and a message for the person reading
//! it. Causes that are ours (a database error, a template bug) are logged
//! and never shown. Another account's object is [`WebError::NotFound`],
//! indistinguishable from a missing one.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use bounty_store::StoreError;

use crate::layout::Chrome;

/// An error as the browser sees it.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// 303 to `/login`: no live session (none, expired or revoked).
    #[error("login required")]
    LoginRequired,
    /// 303 to `/ops/login`: no live operator session.
    #[error("operator login required")]
    OpsLoginRequired,
    /// 400: a query or form value is not acceptable; the message names it.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 413: the form is larger than the server's body limit.
    #[error("the form is too large")]
    PayloadTooLarge,
    /// 422: a form or query value can never be stored (a NUL character);
    /// the message names the field.
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// 403: the form's CSRF token is missing or wrong.
    #[error("the form's CSRF token is missing or wrong")]
    CsrfRejected,
    /// 403: the user's role may not do this.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 404: no such page, or no such object in this account.
    #[error("not found")]
    NotFound,
    /// 404: a one-time link (an invite, a password reset) that was never
    /// issued, has been used, was revoked or has expired; which of these
    /// is not said.
    #[error("a dead one-time link")]
    DeadLink,
    /// 409: the request conflicts with what is stored; the message says
    /// what and names the field.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 503: a server setting this page needs is not set; the message
    /// names it.
    #[error("not configured: {0}")]
    NotConfigured(&'static str),
    /// 503: the database is unreachable right now.
    #[error("the database is unavailable")]
    Unavailable(#[source] StoreError),
    /// 500: a fault of ours; logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            WebError::Unavailable(e)
        } else {
            WebError::Internal(e.to_string())
        }
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        WebError::Internal(format!("template: {e}"))
    }
}

impl From<crate::token::RandomError> for WebError {
    fn from(e: crate::token::RandomError) -> Self {
        WebError::Internal(e.to_string())
    }
}

/// `error.html`: a status, a heading and a sentence.
#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub(crate) chrome: Chrome,
    pub(crate) status: u16,
    pub(crate) heading: &'static str,
    pub(crate) message: String,
}

impl WebError {
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            WebError::LoginRequired | WebError::OpsLoginRequired => {
                (StatusCode::SEE_OTHER, "Login required", String::new())
            }
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, "That request is not valid", m.clone()),
            WebError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "That form is too large",
                "The form is larger than this server accepts. Shorten the longest field and try again.".to_owned(),
            ),
            WebError::Unprocessable(m) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "That form cannot be saved",
                m.clone(),
            ),
            WebError::CsrfRejected => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The form's security token did not match your session. Go back, reload the page and try again."
                    .to_owned(),
            ),
            WebError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", (*m).to_owned()),
            WebError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or it belongs to another account.".to_owned(),
            ),
            WebError::DeadLink => (
                StatusCode::NOT_FOUND,
                "This link does not work",
                "It has expired, has been used already, or was replaced by a newer one. Ask for a new link."
                    .to_owned(),
            ),
            WebError::Conflict(m) => (StatusCode::CONFLICT, "That cannot be done", m.clone()),
            WebError::NotConfigured(m) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Not configured on this server",
                (*m).to_owned(),
            ),
            WebError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "The database is not answering right now. Try again in a moment.".to_owned(),
            ),
            WebError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "This is our fault and has been logged. Try again, or contact support.".to_owned(),
            ),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match &self {
            WebError::LoginRequired => return Redirect::to("/login").into_response(),
            WebError::OpsLoginRequired => return Redirect::to("/ops/login").into_response(),
            WebError::Unavailable(e) => tracing::warn!(error = %e, "dashboard: database unavailable"),
            WebError::Internal(e) => tracing::error!(error = %e, "dashboard: internal error"),
            _ => {}
        }
        let (status, heading, message) = self.parts();
        error_response(status, heading, message)
    }
}

/// Renders the error page; falls back to plain text if even that fails.
pub(crate) fn error_response(status: StatusCode, heading: &'static str, message: String) -> Response {
    let page = ErrorPage {
        chrome: Chrome::bare(heading),
        status: status.as_u16(),
        heading,
        message,
    };
    match page.render() {
        Ok(html) => {
            let mut r = (status, html).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "dashboard: the error page did not render");
            (status, heading).into_response()
        }
    }
}

/// The page for a dashboard path asked with the wrong method.
pub(crate) async fn method_not_allowed() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "This address does not take that kind of request.".to_owned(),
    )
}

/// The page for a path no route matches: mount it as the fallback of the
/// router the dashboard is merged into (or of the dashboard alone).
pub async fn not_found() -> Response {
    WebError::NotFound.into_response()
}
