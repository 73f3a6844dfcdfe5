//! Intercom webhook topics (notification events).
//!
//! Intercom posts one notification per topic the app subscribed to:
//!
//! ```json
//! { "type": "notification_event", "id": "notif_…", "topic": "conversation.user.replied",
//!   "app_id": "…", "created_at": 1764626400,
//!   "data": { "type": "notification_event_data",
//!             "item": { "type": "conversation", "id": "215468893213459", "state": "open",
//!                       "source": { "subject": "…", "body": "<p>HTML</p>",
//!                                   "author": { "type": "user", "id": "…", "name": "…", "email": "…" } },
//!                       "conversation_parts": { "conversation_parts": [ { "part_type": "comment",
//!                           "body": "<p>…</p>", "author": { "type": "user", … } } ] },
//!                       "conversation_rating": { "rating": 4, "remark": "…" },
//!                       "tags": { "tags": [ { "name": "billing" } ] } } } }
//! ```
//!
//! The ticket id is `data.item.id` (required, the conversation id); the
//! event id is `id`, the time `created_at` (unix seconds). Bodies are HTML
//! and become plain text. Intercom sends no conversation URL.
//!
//! What becomes what:
//!
//! - `conversation.user.created` → `Created`: `source.subject` (else the
//!   conversation `title`), `source.body`, `source.author`, `tags`;
//! - `conversation.user.replied` → `CustomerReplied`: the last entry of
//!   `conversation_parts` written by a user, lead or contact;
//! - `conversation.admin.closed` → `Solved`;
//! - `conversation.admin.opened` → `Reopened`;
//! - `conversation.rating.added` → `SatisfactionRated`:
//!   `conversation_rating.rating` 1..=5 → 0, 25, 50, 75, 100, and `remark`.
//!
//! Every other topic (`ping`, admin replies, assignments, tickets, contacts)
//! is ignored.
//!
//! Reopening: Intercom reopens a closed conversation by itself when the
//! customer writes again, and the payload of that
//! `conversation.user.replied` already shows the conversation open, so no
//! single payload can tell a reply-after-close from any other reply. That
//! reply is therefore always `CustomerReplied`, and only an explicit
//! `conversation.admin.opened` is `Reopened`. Intake should treat a
//! customer reply on a ticket it considers solved as reopening it.

use crate::event::{NewTicket, SatisfactionScore, TicketCustomer, TicketEvent, TicketEventKind, TicketRef};

use super::field::At;
use super::{MAX_TAGS, ParseError, Parsed};

/// Author types that are the customer, not a teammate or a bot.
const CUSTOMER_AUTHORS: [&str; 3] = ["user", "lead", "contact"];

pub(super) fn parse(root: &At<'_>) -> Result<Parsed, ParseError> {
    let topic = root.req("topic")?.str()?;
    if !matches!(
        topic,
        "conversation.user.created"
            | "conversation.user.replied"
            | "conversation.admin.closed"
            | "conversation.admin.opened"
            | "conversation.rating.added"
    ) {
        return Ok(Parsed::ignored(topic, "topic not handled"));
    }

    let item = root.req("data.item")?;
    if let Some(item_type) = item.opt("type", At::str)?
        && item_type != "conversation"
    {
        return Err(item.req("type")?.invalid("expected a conversation"));
    }
    let ticket = TicketRef {
        external_id: item.req("id")?.id()?,
        url: None,
    };
    let kind = match topic {
        "conversation.user.created" => created(&item)?,
        "conversation.user.replied" => replied(&item)?,
        "conversation.admin.closed" => TicketEventKind::Solved,
        "conversation.admin.opened" => TicketEventKind::Reopened,
        _ => rated(&item)?,
    };
    Ok(Parsed::Event(TicketEvent {
        kind,
        vendor_event_id: root.opt("id", At::id)?,
        ticket,
        occurred_at: root.opt("created_at", At::unix_seconds)?,
    }))
}

fn created(item: &At<'_>) -> Result<TicketEventKind, ParseError> {
    let source = item.req("source")?;
    let subject = match source.opt("subject", At::html_short)?.flatten() {
        Some(subject) => Some(subject),
        None => item.opt("title", At::html_short)?.flatten(),
    };
    let mut tags = Vec::new();
    if let Some(list) = item.get("tags.tags")? {
        for tag in list.items()?.into_iter().take(MAX_TAGS) {
            tags.extend(tag.req("name")?.short()?);
        }
    }
    Ok(TicketEventKind::Created(NewTicket {
        subject,
        body: source.opt("body", At::html_text)?.unwrap_or_default(),
        customer: TicketCustomer {
            email: source.opt("author.email", At::email)?.flatten(),
            name: source.opt("author.name", At::short)?.flatten(),
            external_id: source.opt("author.id", At::id)?,
        },
        tags,
    }))
}

fn replied(item: &At<'_>) -> Result<TicketEventKind, ParseError> {
    let parts = item.req("conversation_parts.conversation_parts")?;
    let mut reply = None;
    for part in parts.items()? {
        let author_type = part.opt("author.type", At::str)?;
        let part_type = part.opt("part_type", At::str)?;
        if author_type.is_some_and(|t| CUSTOMER_AUTHORS.contains(&t))
            && part_type.is_none_or(|t| t == "comment")
        {
            reply = Some(part);
        }
    }
    let part = reply.ok_or_else(|| parts.invalid("no part written by the customer"))?;
    Ok(TicketEventKind::CustomerReplied {
        body: part.opt("body", At::html_text)?.unwrap_or_default(),
    })
}

fn rated(item: &At<'_>) -> Result<TicketEventKind, ParseError> {
    let rating = item.req("conversation_rating")?;
    let value = rating.req("rating")?;
    let score = SatisfactionScore::from_five_point(value.integer()?)
        .ok_or_else(|| value.invalid("expected a rating from 1 to 5"))?;
    let comment = rating.opt("remark", At::text)?.filter(|c| !c.trim().is_empty());
    Ok(TicketEventKind::SatisfactionRated { score, comment })
}
