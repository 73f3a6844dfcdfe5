//! Bounty's customer dashboard: server-rendered pages from the same
//! binary as the API.
//!
//! Customers follow their work here, from each task to its verdict to its
//! charge, so the pages favour plain, checkable numbers over decoration.
//! Pages are askama templates (`web/templates`) compiled into the binary;
//! the one stylesheet and one small script (`web/static`) are embedded too
//! and served under `/static/` with content-hash URLs. Nothing is fetched
//! at run time and no Node toolchain is involved; charts are SVG drawn on
//! the server.
//!
//! Users log in with email and password (argon2id, [`password`]); a
//! server-side session (store table `sessions`, absolute expiry) is named
//! by an HttpOnly, SameSite=Lax cookie holding a random token whose
//! SHA-256 the store keeps. Every form carries the session's CSRF secret,
//! checked on every POST. Failed logins are rate-limited per email and per
//! client address, counted in the store so the limit holds across
//! processes. Every store call takes the session's account, so another
//! tenant's object is a 404 page like any missing one.
//!
//! Agents and integrations are checked and stored exactly as the API
//! checks and stores them, re-derived from the same lower crates
//! (`bounty-agents` for schemas and verifier policies,
//! `bounty-integrations` for kinds, reply settings, sealing and signing),
//! since this crate may not depend on the server. Three server settings
//! reach the pages through [`WebState`]: the configured model names
//! ([`WebState::models`]), the master keys that seal integration secrets
//! ([`WebState::keyring`]) and this server's own address, where test
//! deliveries are sent ([`WebState::self_url`]).
//!
//! The crate knows nothing of the API server: [`router`] takes a
//! [`WebState`] and returns a router to merge into the server's.

mod assets;
mod auth;
mod chart;
mod error;
mod format;
mod layout;
mod line_diff;
mod pages;
pub mod password;
mod policy_text;
mod sealed;
mod state;
mod test_delivery;
mod token;
mod usage;

use std::borrow::Cow;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::map_response;
use axum::response::Response;
use axum::routing::{get, post};

pub use auth::{OPS_SESSION_COOKIE, SESSION_COOKIE};
pub use error::{WebError, not_found};
pub use pages::password_reset::{RESET_LINK_TTL, new_reset_link};
pub use password::{PasswordError, PasswordHasher};
pub use state::{LoginLimits, WebState};

/// The dashboard's routes: `/`, `/login`, `/logout`, `/tasks`,
/// `/tasks/status`, `/tasks/{id}`, `/agents`, `/agents/new`,
/// `/agents/{id}`, `/agents/{id}/policy`, `/integrations`, `/integrations/new`,
/// `/integrations/{id}` and its `/rotate-secret`, `/delete` and
/// `/test-delivery` actions, `/usage`, `/usage.csv`, `/api-keys`,
/// `/api-keys/{id}/revoke`, `/invoices`, `/billing`, `/team` and its
/// `/team/invites`, `/team/invites/{id}/revoke`, `/team/users/{id}/role`
/// and `/team/users/{id}/remove` actions, `/invite/{token}`,
/// `/password/forgot`, `/password/reset/{token}` (and their `/ops/password`
/// twins), and `/static/{file}`.
///
/// It sets no fallback, so it merges into a router that has one; give it
/// [`not_found`] as the fallback when it is served alone. The login rate
/// limit counts by client address, which it reads from axum's
/// `ConnectInfo<SocketAddr>` (serve with
/// `into_make_service_with_connect_info`) or, with
/// [`WebState::trust_forwarded_for`], from `X-Forwarded-For`.
pub fn router<S: Clone + Send + Sync + 'static>(state: WebState) -> Router<S> {
    Router::new()
        .route("/", get(pages::overview::page))
        .route("/login", get(pages::login::form).post(pages::login::submit))
        .route("/logout", post(pages::login::logout))
        .route(
            "/password/forgot",
            get(pages::password_reset::forgot).post(pages::password_reset::request),
        )
        .route(
            "/password/reset/{token}",
            get(pages::password_reset::reset_form).post(pages::password_reset::reset),
        )
        .route(
            "/ops/password/forgot",
            get(pages::password_reset::ops_forgot).post(pages::password_reset::ops_request),
        )
        .route(
            "/ops/password/reset/{token}",
            get(pages::password_reset::ops_reset_form).post(pages::password_reset::ops_reset),
        )
        .route(
            "/invite/{token}",
            get(pages::invite::form).post(pages::invite::accept),
        )
        .route("/team", get(pages::team::page))
        .route("/team/invites", post(pages::team::invite))
        .route("/team/invites/{id}/revoke", post(pages::team::revoke_invite))
        .route("/team/users/{id}/role", post(pages::team::set_role))
        .route("/team/users/{id}/remove", post(pages::team::remove))
        .route("/ops", get(pages::ops::accounts::list))
        .route(
            "/ops/login",
            get(pages::login::ops_form).post(pages::login::ops_submit),
        )
        .route("/ops/logout", post(pages::login::ops_logout))
        .route("/ops/accounts/{id}", get(pages::ops::accounts::show))
        .route("/ops/accounts/{id}/plan", post(pages::ops::actions::plan))
        .route("/ops/accounts/{id}/cap", post(pages::ops::actions::cap))
        .route("/ops/accounts/{id}/credits", post(pages::ops::actions::credits))
        .route("/ops/accounts/{id}/status", post(pages::ops::actions::status))
        .route("/ops/margins", get(pages::ops::margins::page))
        .route("/ops/disputes", get(pages::ops::disputes::queue))
        .route("/ops/health", get(pages::ops::health::page))
        .route("/ops/notifications", get(pages::notifications::ops_page))
        .route(
            "/ops/notifications/read",
            post(pages::notifications::ops_mark_read),
        )
        .route("/ops/disputes/{id}/accept", post(pages::ops::disputes::accept))
        .route("/ops/disputes/{id}/reject", post(pages::ops::disputes::reject))
        .route(
            "/ops/disputes/{id}/evidence.json",
            get(pages::ops::disputes::evidence),
        )
        .route("/tasks/{id}/dispute", post(pages::disputes::create))
        .route("/disputes/{id}/evidence.json", get(pages::disputes::evidence))
        .route("/mode", post(pages::mode::switch))
        .route("/tasks", get(pages::tasks::list))
        .route("/tasks/status", get(pages::tasks::statuses))
        .route("/tasks/{id}", get(pages::task_detail::page))
        .route("/agents", get(pages::agents::list).post(pages::agents::create))
        .route("/agents/new", get(pages::agents::new))
        .route("/agents/{id}/policy", get(pages::policy::page))
        .route(
            "/agents/{id}",
            get(pages::agents::show).post(pages::agents::update),
        )
        .route(
            "/api-keys",
            get(pages::api_keys::list).post(pages::api_keys::create),
        )
        .route(
            "/integrations",
            get(pages::integrations::list).post(pages::integrations::create),
        )
        .route(
            "/knowledge",
            get(pages::knowledge::page).post(pages::knowledge::create),
        )
        .route("/knowledge/urls", post(pages::knowledge::create_urls))
        .route("/knowledge/{id}/delete", post(pages::knowledge::delete))
        .route("/integrations/new", get(pages::integrations::new))
        .route("/integrations/{id}", get(pages::integrations::show))
        .route(
            "/integrations/{id}/rotate-secret",
            post(pages::integrations::rotate),
        )
        .route("/integrations/{id}/delete", post(pages::integrations::delete))
        .route("/integrations/{id}/enable", post(pages::integrations::enable))
        .route(
            "/integrations/{id}/test-delivery",
            post(pages::integrations::test_delivery),
        )
        .route("/api-keys/{id}/revoke", post(pages::api_keys::revoke))
        .route("/usage", get(pages::usage::page))
        .route("/usage.csv", get(pages::usage::export))
        .route("/charges.csv", get(pages::charges::csv))
        .route("/charges.json", get(pages::charges::json))
        .route("/invoices", get(pages::invoices::list))
        .route("/billing", get(pages::billing::page))
        .route("/notifications", get(pages::notifications::page))
        .route("/webhooks", get(pages::webhooks::list))
        .route("/webhooks/{id}", get(pages::webhooks::show))
        .route("/webhooks/{id}/enabled", post(pages::webhooks::set_enabled))
        .route("/webhooks/{id}/resend", post(pages::webhooks::resend))
        .route("/notifications/read", post(pages::notifications::mark_read))
        .route("/billing/cap", post(pages::billing::set_cap))
        .route("/static/{file}", get(assets::serve))
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(map_response(security_headers))
        .with_state(state)
}

/// The paths whose last part is the token of a one-time link.
const ONE_TIME_LINK_PREFIXES: [&str; 3] = ["/invite/", "/password/reset/", "/ops/password/reset/"];

/// `path` as a request's log lines may show it: the token of a one-time
/// link (`/invite/…`, `/password/reset/…`, `/ops/password/reset/…`) is
/// replaced by `…`, so that the one log line meant to carry a link (there
/// is no mailer) is the only one that does.
pub fn loggable_path(path: &str) -> Cow<'_, str> {
    ONE_TIME_LINK_PREFIXES
        .iter()
        .find(|prefix| path.len() > prefix.len() && path.starts_with(*prefix))
        .map_or(Cow::Borrowed(path), |prefix| Cow::Owned(format!("{prefix}…")))
}

/// Headers on every dashboard response: a strict content security policy
/// (our own files only, no inline script or style), no framing, no
/// sniffing, and no caching of pages that hold account data.
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in set {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_time_tokens_never_reach_the_log() {
        assert_eq!(loggable_path("/invite/abcDEF-_123"), "/invite/…");
        assert_eq!(loggable_path("/password/reset/abc"), "/password/reset/…");
        assert_eq!(
            loggable_path("/ops/password/reset/abc/x"),
            "/ops/password/reset/…"
        );
        for kept in [
            "/",
            "/invite/",
            "/password/forgot",
            "/tasks/task_01J",
            "/ops/password/forgot",
        ] {
            assert_eq!(loggable_path(kept), kept);
        }
    }
}
