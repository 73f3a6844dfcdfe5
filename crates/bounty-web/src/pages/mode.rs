//! `POST /mode`: the dashboard's live/test switch.
//!
//! Like Stripe's, it chooses which mode's data every page shows: live
//! data, or the test-mode objects that `bk_test_` keys made (their tasks,
//! charges in the test book, usage and credits). The choice is a cookie of
//! its own, so it outlives a login and never touches the session; pages
//! in test mode carry a banner that says so. A viewer may switch too: it
//! changes what they see, not the account.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::{AnyUser, MODE_COOKIE, SignedForm, set_cookie};
use crate::error::WebError;
use crate::state::WebState;

/// How long the switch is remembered.
const MODE_COOKIE_MAX_AGE_S: i64 = 365 * 24 * 3600;

/// The switch's form.
#[derive(Deserialize)]
pub(crate) struct ModeForm {
    /// `live` or `test`.
    mode: String,
    /// The page to go back to: a path of this dashboard.
    #[serde(default)]
    back: Option<String>,
}

/// A local path to return to: anything else (another site, a scheme, a
/// protocol-relative `//host`) goes to the overview.
fn back_to(back: Option<&str>) -> &str {
    match back {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && p.len() <= 512 => p,
        _ => "/",
    }
}

/// `POST /mode`: remembers the mode and returns to the page.
pub(crate) async fn switch(
    State(state): State<WebState>,
    SignedForm { form, .. }: SignedForm<ModeForm, AnyUser>,
) -> Result<Response, WebError> {
    let mode = match form.mode.as_str() {
        "live" | "test" => form.mode.as_str(),
        _ => return Err(WebError::BadRequest("`mode` must be `live` or `test`.".into())),
    };
    let mut r = Redirect::to(back_to(form.back.as_deref())).into_response();
    let c = set_cookie(
        MODE_COOKIE,
        mode,
        "/",
        MODE_COOKIE_MAX_AGE_S,
        state.secure_cookies,
    );
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&c).map_err(|e| WebError::Internal(e.to_string()))?,
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(back_to(Some("/tasks?status=queued")), "/tasks?status=queued");
        assert_eq!(back_to(Some("//evil.example/x")), "/");
        assert_eq!(back_to(Some("https://evil.example/")), "/");
        assert_eq!(back_to(Some("/\\evil.example")), "/");
        assert_eq!(back_to(None), "/");
    }
}
