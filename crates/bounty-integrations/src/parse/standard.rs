//! Bounty's own ticket payload, for any source signed with Standard Webhooks.
//!
//! A helpdesk without a native adapter (or a customer's own system) can
//! drive Bounty by signing deliveries per <https://www.standardwebhooks.com/>
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`; see
//! [`crate::signature`]) and sending this body. This is the contract:
//!
//! ```json
//! { "type": "ticket.created",
//!   "timestamp": "2026-12-01T22:00:00Z",
//!   "data": { "ticket_id": "T-1001",
//!             "url": "https://help.example.com/tickets/T-1001",
//!             "subject": "Refund for order 5521",
//!             "body": "I was charged twice.",
//!             "customer": { "email": "jane@example.com", "name": "Jane Doe", "id": "cus_881" },
//!             "tags": ["billing", "refund"] } }
//! ```
//!
//! - `type` (required): one of `ticket.created`, `ticket.customer_replied`,
//!   `ticket.solved`, `ticket.reopened`, `ticket.satisfaction_rated`,
//!   `ticket.escalated` (a person took the ticket over from the agent). Any
//!   other type is accepted and ignored, so senders may send more.
//! - `timestamp` (required): when it happened, RFC 3339.
//! - `data.ticket_id` (required): the sender's ticket id, a string or a
//!   non-negative integer, at most 256 bytes.
//! - `data.url` (optional): an `http(s)://` link to the ticket.
//! - `ticket.created`: `data.body` (required, plain text), `data.subject`,
//!   `data.customer` (`email`, `name`, `id`, all optional) and `data.tags`
//!   (strings) optional.
//! - `ticket.customer_replied`: `data.body` (required, plain text).
//! - `ticket.satisfaction_rated`: `data.score` (required, integer 0..=100)
//!   and `data.comment` (optional).
//! - `ticket.solved`, `ticket.reopened`, `ticket.escalated`: nothing more.
//!
//! Unknown fields are ignored. The delivery id is the `webhook-id` header
//! (see [`crate::signature::Verified::delivery_id`]); the body carries none.

use crate::event::{NewTicket, SatisfactionScore, TicketCustomer, TicketEvent, TicketEventKind, TicketRef};

use super::field::At;
use super::{ParseError, Parsed};

pub(super) fn parse(root: &At<'_>) -> Result<Parsed, ParseError> {
    let event_type = root.req("type")?.str()?;
    if !matches!(
        event_type,
        "ticket.created"
            | "ticket.customer_replied"
            | "ticket.solved"
            | "ticket.reopened"
            | "ticket.satisfaction_rated"
            | "ticket.escalated"
    ) {
        return Ok(Parsed::ignored(event_type, "type not handled"));
    }
    let occurred_at = root.req("timestamp")?.rfc3339()?;
    let data = root.req("data")?;
    let ticket = TicketRef {
        external_id: data.req("ticket_id")?.id()?,
        url: data.opt("url", At::url)?,
    };
    let kind = match event_type {
        "ticket.created" => TicketEventKind::Created(NewTicket {
            subject: data.opt("subject", At::short)?.flatten(),
            body: data.req("body")?.text()?,
            customer: TicketCustomer {
                email: data.opt("customer.email", At::email)?.flatten(),
                name: data.opt("customer.name", At::short)?.flatten(),
                external_id: data.opt("customer.id", At::id)?,
            },
            tags: data.opt("tags", At::tags)?.unwrap_or_default(),
        }),
        "ticket.customer_replied" => TicketEventKind::CustomerReplied {
            body: data.req("body")?.text()?,
        },
        "ticket.solved" => TicketEventKind::Solved,
        "ticket.reopened" => TicketEventKind::Reopened,
        "ticket.escalated" => TicketEventKind::Escalated,
        _ => {
            let value = data.req("score")?;
            let score = value
                .integer()
                .ok()
                .and_then(|n| u8::try_from(n).ok())
                .and_then(|n| SatisfactionScore::new(n, n.to_string()).ok())
                .ok_or_else(|| value.invalid("expected an integer from 0 to 100"))?;
            let comment = data.opt("comment", At::text)?.filter(|c| !c.trim().is_empty());
            TicketEventKind::SatisfactionRated { score, comment }
        }
    };
    Ok(Parsed::Event(TicketEvent {
        kind,
        vendor_event_id: None,
        ticket,
        occurred_at: Some(occurred_at),
    }))
}
