//! Bounty's helpdesk edge, the pure half: everything between the raw bytes
//! of a helpdesk webhook and a typed [`TicketEvent`], plus the sealing of
//! the secrets that make those webhooks trustworthy.
//!
//! Nothing here does I/O. The server hands in headers, body bytes, the
//! integration's secrets and the clock's now; it gets back a verdict, an
//! event, or an error with a stable code that names the header or field
//! at fault.
//!
//! - [`kind`]: [`IntegrationKind`], which vendor an integration speaks.
//! - [`signature`]: [`verify`] a delivery's signature on the raw body (and
//!   [`sign`] one, for tests, test deliveries and outbound Standard Webhooks).
//! - [`parse`](mod@parse): a verified body into a [`TicketEvent`] or [`Parsed::Ignored`].
//! - [`event`]: the normalized [`TicketEvent`].
//! - [`seal`]: webhook secrets encrypted at rest under a rotating [`Keyring`].
//!
//! Intake runs them in that order: look up the integration, open its
//! secrets, verify, parse, then deduplicate on the delivery id and the
//! event id in the same transaction that records the event.

pub mod entropy;
pub mod event;
pub mod kind;
pub mod parse;
pub mod seal;
pub mod signature;

pub use entropy::EntropyError;
pub use event::{Customer, NewTicket, SatisfactionScore, TicketEvent, TicketEventKind, TicketRef};
pub use kind::IntegrationKind;
pub use parse::{ParseError, Parsed, VendorPayload, parse};
pub use seal::{KeyError, KeyId, Keyring, SealError, SealKey};
pub use signature::{Delivery, Headers, SignatureError, TOLERANCE, Verified, generate_secret, sign, verify};
