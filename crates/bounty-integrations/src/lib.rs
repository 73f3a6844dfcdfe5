//! Bounty's helpdesk edge: everything between the raw bytes of a helpdesk
//! webhook and a typed [`TicketEvent`], the sealing of the secrets that make
//! those webhooks trustworthy, and the way back: posting an outcome onto
//! the ticket.
//!
//! Verifying and parsing do no I/O. The server hands in headers, body
//! bytes, the integration's secrets and the clock's now; it gets back a
//! verdict, an event, or an error with a stable code that names the header
//! or field at fault. Intake ([`intake`]) is the use case that writes,
//! through the store's repositories in one transaction. The outbound half
//! ([`reply`]) is the only HTTP client here, and takes its
//! `reqwest::Client` and clock from the caller.
//!
//! - [`kind`]: [`IntegrationKind`], which vendor an integration speaks.
//! - [`signature`]: [`verify`] a delivery's signature on the raw body (and
//!   [`sign`] one, for tests, test deliveries and outbound Standard Webhooks).
//! - [`parse`](mod@parse): a verified body into a [`TicketEvent`] or [`Parsed::Ignored`].
//! - [`event`]: the normalized [`TicketEvent`].
//! - [`seal`]: webhook secrets encrypted at rest under a rotating [`Keyring`].
//! - [`status`]: whether an integration can take deliveries: `active`,
//!   `disabled`, or `broken` when its secret no longer opens; its sealed
//!   secrets opened.
//! - [`intake`]: [`intake::take`], what a verified delivery does (a task,
//!   a signal, a record), exactly once per dedupe key, as a typed
//!   [`IntakeResult`].
//!
//! The webhook runs them in that order: look up the integration, open its
//! secrets, verify, parse, then [`intake::take`].
//!
//! The way back:
//!
//! - [`settings`]: reply-back settings, validated once at the API and
//!   kept sealed.
//! - [`reply`]: [`send_reply`] posts a resolve or a handoff onto the
//!   ticket, safe to retry after any failure; [`retry`] says when to try
//!   again.
//! - [`sender`]: the outbox worker that claims `helpdesk_reply` rows,
//!   opens the integration's settings and posts them.
//! - `testing` (feature `test-support`): a fake of all four vendors' APIs
//!   on `127.0.0.1`, for this crate's and the workspace's tests.

pub mod entropy;
pub mod event;
#[cfg(test)]
mod fixtures;
pub mod intake;
pub mod kind;
pub mod mail;
pub mod parse;
pub mod reenable;
pub mod reply;
pub mod retry;
pub mod seal;
pub mod sender;
pub mod settings;
pub mod signature;
pub mod status;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod webhooks;

pub use entropy::EntropyError;
pub use event::{NewTicket, SatisfactionScore, TicketCustomer, TicketEvent, TicketEventKind, TicketRef};
pub use intake::{IntakeError, IntakeResult, VerifiedDelivery};
pub use kind::IntegrationKind;
pub use parse::{ParseError, Parsed, VendorPayload, parse};
pub use reply::{Reply, ReplyAction, ReplyCredentials, ReplyError, ReplySent, ReplyTarget, send_reply};
pub use seal::{KeyError, KeyId, Keyring, SealError, SealKey};
pub use settings::{ReplySettings, ReplySettingsIn, SettingsError};
pub use signature::{
    Delivery, Headers, SignatureError, TOLERANCE, Verified, check_given_secret, generate_secret, sign, verify,
};
pub use status::{BrokenReason, IntegrationStatus, ReplySettingsError};
/// Opened secrets are wiped from memory when dropped.
pub use zeroize::Zeroizing;
