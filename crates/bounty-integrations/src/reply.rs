//! Reply-back: posting an agent's outcome onto the helpdesk ticket it came from.
//!
//! When a task ends, the state change and an outbox row are written in one
//! transaction; a sender loop later calls [`send_reply`] for the row, and
//! may call it again after any failure (DESIGN.md: "every sender may retry;
//! no receiver may see an effect twice"). So each vendor client here is
//! built around one question: *if the last try failed ambiguously, did the
//! vendor apply it anyway?*
//!
//! - Every write carries the outbox row id, [`Reply::reply_id`], as a marker
//!   the vendor stores with it: Zendesk audit metadata, a Chatwoot message's
//!   `content_attributes`, an invisible HTML comment at the end of an
//!   Intercom part (Intercom stores nothing else), and the Standard Webhooks
//!   `webhook-id` (receivers dedupe on it, so resending is always safe).
//! - On a retry ([`Reply::attempt`] > 1) the client first reads the ticket
//!   back and, when the marker is there, skips the write and answers
//!   [`ReplySent::AlreadyPosted`]. The first try never pays for that read.
//! - Status changes that follow the reply (close, resolve) are idempotent
//!   on every vendor, so they are always sent, even after `AlreadyPosted`:
//!   the ambiguous failure may have come between the reply and the close.
//!
//! Errors are sorted by what the sender should do next, not by where they
//! came from: [`ReplyError::is_transient`] errors are retried on the
//! [`crate::retry`] schedule; [`ReplyError::Gone`] disables the endpoint;
//! [`ReplyError::Rejected`] and [`ReplyError::Config`] park the row for a
//! human. No error, span or log line carries a credential or a message
//! body: spans name the integration kind, ticket id, reply id and attempt.
//!
//! The `reqwest::Client` is the caller's, and so are two of its settings:
//! it needs a TLS backend to reach `https` vendors, and it should follow no
//! redirects (`redirect::Policy::none()`; a 3xx is then
//! [`ReplyError::Rejected`]): reqwest drops `Authorization` when a redirect
//! leaves the host, but not Chatwoot's `api_access_token` header.

mod chatwoot;
mod endpoint;
mod intercom;
pub(crate) mod response;
mod standard;
mod zendesk;

use std::fmt;
use std::time::Duration;

use bounty_core::clock::Timestamp;
use secrecy::SecretString;
use tracing::Instrument as _;

use crate::kind::IntegrationKind;

pub use endpoint::{MAX_ID_LEN, is_path_segment};
pub use intercom::API_VERSION as INTERCOM_API_VERSION;
pub use standard::{HANDOFF as STANDARD_HANDOFF_EVENT, REPLIED as STANDARD_REPLIED_EVENT};

/// The longest any one request may take, connect to last body byte. Set on
/// every request, whatever the caller's client is configured with.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The `User-Agent` every request carries.
pub const USER_AGENT: &str = concat!("bounty/", env!("CARGO_PKG_VERSION"));

/// The Zendesk tag a handoff adds, for views and triggers to route on.
pub const HANDOFF_TAG: &str = "bounty_handoff";

/// Where and how to post back; built by the caller from the integration's
/// (opened) settings.
#[derive(Debug, Clone)]
pub struct ReplyTarget {
    /// The vendor; must agree with [`ReplyTarget::credentials`].
    pub kind: IntegrationKind,
    /// The vendor API base (`https://acme.zendesk.com`,
    /// `https://api.intercom.io`, `https://app.chatwoot.com`), or for
    /// Standard the callback URL itself. `http`/`https` only, with no
    /// userinfo, query or fragment; a trailing `/` is ignored.
    pub base_url: String,
    /// How to authenticate to it.
    pub credentials: ReplyCredentials,
}

/// Credentials for one vendor. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub enum ReplyCredentials {
    /// Zendesk API token auth: HTTP Basic with `{email}/token:{api_token}`.
    Zendesk {
        /// The agent the replies are posted as.
        email: String,
        /// An API token (Admin Center → Apps and integrations → Zendesk API).
        api_token: SecretString,
    },
    /// Intercom: `Authorization: Bearer`; replies and closes are made "as"
    /// an admin.
    Intercom {
        /// The workspace access token.
        access_token: SecretString,
        /// The admin (teammate) replies and closes are attributed to.
        admin_id: String,
    },
    /// Chatwoot: the `api_access_token` header.
    Chatwoot {
        /// An agent's or agent bot's access token.
        api_access_token: SecretString,
        /// The account the conversations belong to (a path segment).
        account_id: String,
    },
    /// Standard Webhooks: the outbound delivery is signed, nothing else.
    Standard {
        /// The `whsec_…` signing secret the receiver verifies with.
        secret: SecretString,
    },
}

impl ReplyCredentials {
    /// The vendor these credentials are for.
    pub fn kind(&self) -> IntegrationKind {
        match self {
            ReplyCredentials::Zendesk { .. } => IntegrationKind::Zendesk,
            ReplyCredentials::Intercom { .. } => IntegrationKind::Intercom,
            ReplyCredentials::Chatwoot { .. } => IntegrationKind::Chatwoot,
            ReplyCredentials::Standard { .. } => IntegrationKind::Standard,
        }
    }
}

/// What to do to the ticket. `Debug` shows the text's length, not the text.
#[derive(Clone, PartialEq, Eq)]
pub enum ReplyAction {
    /// The agent resolved the ticket: post `body` as a public reply, then
    /// mark the ticket solved (Zendesk), closed (Intercom) or resolved
    /// (Chatwoot).
    Resolve {
        /// The customer-visible reply (Intercom reads it as HTML).
        body: String,
    },
    /// Verification failed: hand the ticket to a human with an internal note
    /// the customer never sees, tag or reopen it where the vendor has an
    /// equivalent, and leave it open. Nothing is charged for it.
    Handoff {
        /// The internal note for the human who picks it up.
        note: String,
    },
}

impl fmt::Debug for ReplyAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (variant, field, text) = match self {
            ReplyAction::Resolve { body } => ("Resolve", "body", body),
            ReplyAction::Handoff { note } => ("Handoff", "note", note),
        };
        f.debug_struct(variant)
            .field(field, &format_args!("<{} bytes>", text.len()))
            .finish()
    }
}

/// One reply to send, borrowed from the outbox row.
#[derive(Debug, Clone, Copy)]
pub struct Reply<'a> {
    /// The vendor's ticket (conversation) id: 1 to [`MAX_ID_LEN`] characters
    /// of `A-Z a-z 0-9 _ -`, as it goes into a URL path.
    pub ticket_external_id: &'a str,
    /// What to post.
    pub action: &'a ReplyAction,
    /// Stable for this reply across attempts (the outbox row id, e.g.
    /// `obx_01J…`; same charset and length as a ticket id): the marker
    /// looked for before re-posting, and the Standard Webhooks `webhook-id`.
    pub reply_id: &'a str,
    /// Extra fields for the Standard payload (task id, outcome, …), merged
    /// into its `data`: a JSON object, or `null` for none. The fields this
    /// module sets (`ticket_id`, `body`/`note`) win over keys of the same
    /// name. Unused by the other vendors.
    pub data: &'a serde_json::Value,
    /// 1 for the first try, counting up (0 reads as 1). Only a retry (> 1)
    /// reads the ticket back to look for the marker.
    pub attempt: u32,
}

/// What [`send_reply`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplySent {
    /// The reply (or note) was posted now.
    Posted,
    /// The marker was already on the ticket: an earlier try was applied
    /// though its answer was lost. Nothing was posted twice; any status
    /// change that follows the reply was (re)sent.
    AlreadyPosted,
}

/// Why a reply was not (known to be) delivered, sorted by what the sender
/// does next. Messages name the vendor, step and status, never a secret or
/// a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// 410: the endpoint or integration is gone for good; the caller
    /// disables it.
    #[error("the vendor answered 410 Gone")]
    Gone,
    /// 429: slow down; retry no sooner than `retry_after` when the vendor
    /// said (`Retry-After` in seconds or as an HTTP date, or Intercom's
    /// `X-RateLimit-Reset`).
    #[error("rate limited by the vendor{}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// How long the vendor asked us to wait, from `now`.
        retry_after: Option<Duration>,
    },
    /// 5xx, 408, 409, timeouts, connection errors: the vendor may or may
    /// not have applied it. Retry; the marker check makes that safe.
    #[error("transient failure: {0}")]
    Transient(String),
    /// Any other 4xx (401/403 bad credentials, 404 ticket gone, 422): will
    /// not succeed by retrying; park it for a human.
    #[error("the vendor refused the request with {status}: {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The vendor's error code and message, shortened.
        message: String,
    },
    /// The target or reply is unusable as given (bad URL, credentials of
    /// the wrong kind, malformed id, bad Standard secret); no request was
    /// made.
    #[error("unusable reply target: {0}")]
    Config(String),
}

impl ReplyError {
    /// Whether the same reply may succeed later: [`ReplyError::Transient`]
    /// and [`ReplyError::RateLimited`].
    pub fn is_transient(&self) -> bool {
        matches!(self, ReplyError::Transient(_) | ReplyError::RateLimited { .. })
    }

    /// A stable machine code for logs and the outbox row.
    pub fn code(&self) -> &'static str {
        match self {
            ReplyError::Gone => "reply_gone",
            ReplyError::RateLimited { .. } => "reply_rate_limited",
            ReplyError::Transient(_) => "reply_transient",
            ReplyError::Rejected { .. } => "reply_rejected",
            ReplyError::Config(_) => "reply_config",
        }
    }
}

/// Posts `reply` to the ticket `target` names, retry-safely (see the
/// module docs). `now` signs Standard deliveries and dates an HTTP-date
/// `Retry-After`.
///
/// Everything that can be checked without the network (URL, ids, the kind
/// of credentials, the Standard secret and data) is checked first, so a
/// [`ReplyError::Config`] means no request was made.
pub async fn send_reply(
    http: &reqwest::Client,
    target: &ReplyTarget,
    reply: &Reply<'_>,
    now: Timestamp,
) -> Result<ReplySent, ReplyError> {
    let base = endpoint::BaseUrl::parse(&target.base_url)?;
    endpoint::check_id("ticket id", reply.ticket_external_id)?;
    endpoint::check_id("reply id", reply.reply_id)?;
    if target.credentials.kind() != target.kind {
        return Err(ReplyError::Config(format!(
            "{} credentials given for a {} target",
            target.credentials.kind(),
            target.kind
        )));
    }
    let span = tracing::info_span!(
        "send_reply",
        integration.kind = %target.kind,
        ticket.id = reply.ticket_external_id,
        reply.id = reply.reply_id,
        attempt = reply.attempt,
    );
    let sent = match &target.credentials {
        ReplyCredentials::Zendesk { email, api_token } => {
            let auth = zendesk::Auth::new(email, api_token)?;
            zendesk::send(http, &base, &auth, reply, now)
                .instrument(span)
                .await
        }
        ReplyCredentials::Intercom {
            access_token,
            admin_id,
        } => {
            let auth = intercom::Auth::new(access_token, admin_id)?;
            intercom::send(http, &base, &auth, reply, now)
                .instrument(span)
                .await
        }
        ReplyCredentials::Chatwoot {
            api_access_token,
            account_id,
        } => {
            let auth = chatwoot::Auth::new(api_access_token, account_id)?;
            chatwoot::send(http, &base, &auth, reply, now)
                .instrument(span)
                .await
        }
        ReplyCredentials::Standard { secret } => {
            let delivery = standard::Delivery::new(secret, reply, now)?;
            standard::send(http, &base, delivery, now).instrument(span).await
        }
    };
    match &sent {
        Ok(sent) => tracing::debug!(?sent, "reply sent"),
        Err(error) => tracing::debug!(error.code = error.code(), error.message = %error, "reply failed"),
    }
    sent
}

/// The test ping: proves `target` answers with its credentials, touching
/// no ticket, before a disabled integration is turned back on.
///
/// - Zendesk: `GET /api/v2/users/me.json` (the user the token acts as);
/// - Intercom: `GET /me` (the token's admin);
/// - Chatwoot: `GET /api/v1/accounts/{account_id}/conversations/meta`
///   (the token and the account both);
/// - Standard Webhooks: a signed `POST` of `{"type": "ping", …}` to the
///   callback URL, under a fresh `webhook-id`.
///
/// Any answer but a 2xx is the [`ReplyError`] a reply would get.
pub async fn ping(http: &reqwest::Client, target: &ReplyTarget, now: Timestamp) -> Result<(), ReplyError> {
    let base = endpoint::BaseUrl::parse(&target.base_url)?;
    if target.credentials.kind() != target.kind {
        return Err(ReplyError::Config(format!(
            "{} credentials given for a {} target",
            target.credentials.kind(),
            target.kind
        )));
    }
    let request = match &target.credentials {
        ReplyCredentials::Zendesk { email, api_token } => {
            zendesk::Auth::new(email, api_token)?.apply(http.get(base.join("/api/v2/users/me.json")?))
        }
        ReplyCredentials::Intercom {
            access_token,
            admin_id,
        } => intercom::Auth::new(access_token, admin_id)?.apply(http.get(base.join("/me")?)),
        ReplyCredentials::Chatwoot {
            api_access_token,
            account_id,
        } => {
            let auth = chatwoot::Auth::new(api_access_token, account_id)?;
            auth.apply(http.get(base.join(&auth.ping_path())?))
        }
        ReplyCredentials::Standard { secret } => standard::Delivery::ping(secret, now)?.request(http, &base),
    };
    let answered = response::execute(target.kind, "ping", request, now).await?;
    response::discard(answered).await;
    tracing::debug!(integration.kind = %target.kind, "test ping answered");
    Ok(())
}

/// The `type` of a Standard Webhooks test ping.
pub fn standard_ping_type() -> &'static str {
    standard::PING
}

/// The HTTP client replies and pings go out on: no redirects (one could
/// carry a vendor's credential header elsewhere), a 10 s connect timeout.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors_are_the_retryable_ones() {
        let cases = [
            (ReplyError::Gone, false, "reply_gone"),
            (
                ReplyError::RateLimited { retry_after: None },
                true,
                "reply_rate_limited",
            ),
            (ReplyError::Transient("x".into()), true, "reply_transient"),
            (
                ReplyError::Rejected {
                    status: 401,
                    message: "x".into(),
                },
                false,
                "reply_rejected",
            ),
            (ReplyError::Config("x".into()), false, "reply_config"),
        ];
        for (error, transient, code) in cases {
            assert_eq!(error.is_transient(), transient, "{error:?}");
            assert_eq!(error.code(), code);
        }
    }

    #[test]
    fn rate_limit_messages_say_how_long() {
        let error = ReplyError::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(error.to_string(), "rate limited by the vendor, retry after 30s");
        let error = ReplyError::RateLimited { retry_after: None };
        assert_eq!(error.to_string(), "rate limited by the vendor");
    }

    #[test]
    fn credentials_debug_shows_no_secret() {
        let credentials = ReplyCredentials::Intercom {
            access_token: SecretString::from("dG9rOmFiY2RlZmdoaWprbG1u"),
            admin_id: "991267".into(),
        };
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("dG9rOmFiY2RlZmdoaWprbG1u"), "{shown}");
        assert!(shown.contains("991267"), "{shown}");
    }

    #[test]
    fn action_debug_shows_no_message_text() {
        let resolve = ReplyAction::Resolve {
            body: "Your card ending 4242 was refunded.".into(),
        };
        assert_eq!(format!("{resolve:?}"), "Resolve { body: <35 bytes> }");
        let handoff = ReplyAction::Handoff {
            note: "secret-ish".into(),
        };
        assert_eq!(format!("{handoff:?}"), "Handoff { note: <10 bytes> }");
    }

    #[test]
    fn the_user_agent_names_bounty_and_its_version() {
        assert_eq!(USER_AGENT, format!("bounty/{}", env!("CARGO_PKG_VERSION")));
    }
}
