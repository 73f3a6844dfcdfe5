//! Webhook bodies into [`TicketEvent`]s: parse, don't validate.
//!
//! [`parse`] (or `Parsed::try_from(VendorPayload { … })`) reads a vendor's
//! raw body once, at the edge, and returns either a normalized event or
//! [`Parsed::Ignored`] for the many event types Bounty has no use for; an
//! unhandled type is not an error, so the vendor gets its 2xx and stops
//! retrying. A body that claims a handled type but lacks what that type
//! needs is a [`ParseError`] naming the field by its path (`detail.id`,
//! `data.item.conversation_parts.conversation_parts[0].body`).
//!
//! Call it only after [`crate::signature::verify`] passed: the parsers trust
//! the sender's identity, not the content.
//!
//! # Limits
//!
//! Every value that leaves here is bounded, so a hostile or buggy sender
//! cannot make us store or show megabytes:
//!
//! - a body over [`MAX_BODY_BYTES`] is refused ([`ParseError::BodyTooLarge`]);
//! - message text (a ticket body, a reply, a rating comment) over
//!   [`MAX_TEXT_BYTES`] is truncated at a character boundary: a long
//!   message is still a real ticket, and the agent sees its first 64 KiB;
//! - display text (subject, customer name, tag) over [`MAX_SHORT_TEXT_BYTES`]
//!   is truncated the same way, and only the first [`MAX_TAGS`] tags are kept;
//! - identifiers (ticket, event, customer ids, emails, URLs) are never
//!   truncated, since a cut id could name another ticket: over
//!   [`MAX_ID_BYTES`] (URLs: [`MAX_URL_BYTES`]) they are
//!   [`ParseError::InvalidField`];
//! - NUL characters are dropped from text (Postgres `text` refuses them)
//!   and refused in identifiers; blank optional strings count as absent.
//!
//! JSON nesting is bounded by `serde_json`'s recursion limit, and non-UTF-8
//! bytes are [`ParseError::InvalidJson`]; nothing here panics on any input.
//!
//! The vendor formats, and which of their events map to what, are
//! documented in each vendor's module: [`zendesk`], [`intercom`],
//! [`chatwoot`] and [`standard`] (Bounty's own contract for generic
//! sources).

use serde_json::Value;
use serde_json::error::Category;

use crate::event::TicketEvent;
use crate::kind::IntegrationKind;

mod field;
mod html;

pub mod chatwoot;
pub mod intercom;
pub mod standard;
pub mod zendesk;

/// Largest body parsed at all.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest message text kept; longer text is truncated.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Longest subject, name or tag kept; longer ones are truncated.
pub const MAX_SHORT_TEXT_BYTES: usize = 1024;
/// Longest identifier or email accepted.
pub const MAX_ID_BYTES: usize = 256;
/// Longest ticket URL accepted.
pub const MAX_URL_BYTES: usize = 2048;
/// Most tags kept on a new ticket.
pub const MAX_TAGS: usize = 100;
/// Longest vendor event type echoed in [`Parsed::Ignored`].
const MAX_EVENT_TYPE_BYTES: usize = 128;

/// What a webhook body turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A ticket event Bounty acts on.
    Event(TicketEvent),
    /// A well-formed delivery Bounty has no use for: answer 2xx and drop it.
    Ignored {
        /// The vendor's event type (topic), truncated to 128 bytes.
        event_type: String,
        /// Why it is ignored, in a few fixed words, for the log.
        reason: &'static str,
    },
}

impl Parsed {
    /// Ignores `event_type` for `reason`.
    pub(crate) fn ignored(event_type: &str, reason: &'static str) -> Self {
        Parsed::Ignored {
            event_type: field::truncate(event_type, MAX_EVENT_TYPE_BYTES),
            reason,
        }
    }
}

/// A raw webhook body and the vendor it claims to come from: the input of
/// `Parsed::try_from`.
#[derive(Debug, Clone, Copy)]
pub struct VendorPayload<'a> {
    /// Which vendor's format to read.
    pub kind: IntegrationKind,
    /// The raw request body.
    pub body: &'a [u8],
}

impl TryFrom<VendorPayload<'_>> for Parsed {
    type Error = ParseError;

    fn try_from(payload: VendorPayload<'_>) -> Result<Self, Self::Error> {
        parse(payload.kind, payload.body)
    }
}

/// Why a body could not be read. Every variant is the sender's fault (a
/// 400 at the webhook edge) and names no payload content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is over [`MAX_BODY_BYTES`].
    #[error("the body is {len} bytes, over the {MAX_BODY_BYTES}-byte limit")]
    BodyTooLarge {
        /// Its length.
        len: usize,
    },
    /// The body is not JSON (empty, truncated, not UTF-8, …).
    #[error("the body is not valid JSON ({problem} at line {line}, column {column})")]
    InvalidJson {
        /// `syntax error`, `unexpected end` or `invalid data`.
        problem: &'static str,
        /// Where, 1-based.
        line: usize,
        /// Where, 1-based.
        column: usize,
    },
    /// A field the event needs is absent or null.
    #[error("missing field `{path}`")]
    MissingField {
        /// The field's dotted path from the root.
        path: String,
    },
    /// A field is there but of the wrong type, out of range or too long.
    #[error("invalid field `{path}`: {reason}")]
    InvalidField {
        /// The field's dotted path from the root (`$` for the root itself).
        path: String,
        /// What is wrong with it, in a few fixed words.
        reason: &'static str,
    },
}

impl ParseError {
    /// A stable machine code for logs and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::BodyTooLarge { .. } => "body_too_large",
            ParseError::InvalidJson { .. } => "invalid_json",
            ParseError::MissingField { .. } => "missing_field",
            ParseError::InvalidField { .. } => "invalid_field",
        }
    }

    /// The path of the field concerned, if the error is about one.
    pub fn path(&self) -> Option<&str> {
        match self {
            ParseError::MissingField { path } | ParseError::InvalidField { path, .. } => Some(path),
            ParseError::BodyTooLarge { .. } | ParseError::InvalidJson { .. } => None,
        }
    }
}

/// Reads `body` as vendor `kind` writes it.
pub fn parse(kind: IntegrationKind, body: &[u8]) -> Result<Parsed, ParseError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ParseError::BodyTooLarge { len: body.len() });
    }
    let value: Value = serde_json::from_slice(body).map_err(|err| ParseError::InvalidJson {
        problem: match err.classify() {
            Category::Eof => "unexpected end",
            Category::Syntax => "syntax error",
            Category::Data | Category::Io => "invalid data",
        },
        line: err.line(),
        column: err.column(),
    })?;
    let root = field::At::root(&value)?;
    match kind {
        IntegrationKind::Zendesk => zendesk::parse(&root),
        IntegrationKind::Intercom => intercom::parse(&root),
        IntegrationKind::Chatwoot => chatwoot::parse(&root),
        IntegrationKind::Standard => standard::parse(&root),
    }
}
