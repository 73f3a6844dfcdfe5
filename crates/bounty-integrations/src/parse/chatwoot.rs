//! Chatwoot account webhooks.
//!
//! Chatwoot posts the object concerned with an `event` field added: a
//! conversation for conversation events, a message for message events.
//!
//! ```json
//! { "event": "conversation_status_changed", "id": 42, "status": "resolved",
//!   "changed_attributes": [ { "status": { "previous_value": "open", "current_value": "resolved" } } ],
//!   "meta": { "sender": { "id": 7, "name": "…", "email": "…" } },
//!   "messages": [ { "content": "…", "message_type": 0, "private": false } ],
//!   "labels": ["billing"], "additional_attributes": { "mail_subject": "…" },
//!   "account": { "id": 1 }, "created_at": 1764626400 }
//!
//! { "event": "message_created", "id": 90211, "content": "…", "content_type": "text",
//!   "message_type": "incoming", "private": false, "created_at": "<RFC 3339>",
//!   "conversation": { "id": 42, … }, "sender": { … }, "account": { … } }
//! ```
//!
//! The ticket id is the conversation's `id` (Chatwoot's per-account display
//! id): the root `id` for conversation events, `conversation.id` for message
//! events. `message_type` comes as a name (`incoming`) in message events and
//! as a number (`0`) inside a conversation's `messages`; both are read.
//!
//! What becomes what:
//!
//! - `conversation_created` → `Created`: the first incoming, public message
//!   of `messages` (none: an empty body), `meta.sender`, `labels`, and
//!   `additional_attributes.mail_subject` for email inboxes;
//! - `conversation_status_changed` to `resolved` → `Solved`;
//! - `conversation_status_changed` to `open`, with `changed_attributes`
//!   showing the previous status `resolved` → `Reopened`;
//! - `message_created`, `incoming` and not `private` → `CustomerReplied`
//!   with `content`;
//! - `message_created` or `message_updated` with `content_type` `input_csat`
//!   and a submitted rating → `SatisfactionRated` (1..=5 → 0..=100).
//!
//! Chatwoot sends CSAT as its `input_csat` survey message: created
//! (outgoing, unanswered: ignored) when the conversation resolves, then
//! updated with `content_attributes.submitted_values.csat_survey_response`
//! `{ "rating": 1..=5, "feedback_message" }` when the customer answers.
//!
//! Ignored: other events (`conversation_updated` repeats the status change
//! `conversation_status_changed` already reported, so it is ignored to avoid
//! a double signal), outgoing and private messages, `open` from `pending`
//! or `snoozed` (not a reopen), and `open` whose previous status is not given.
//!
//! The opening message of a conversation usually also arrives as its own
//! `message_created`, so intake sees a `Created` (often with an empty body
//! when the conversation was created before its first message) followed by
//! a `CustomerReplied`. Message events carry no event id; their
//! `vendor_event_id` is derived as `message_created:{message id}`.

use crate::event::{NewTicket, SatisfactionScore, TicketCustomer, TicketEvent, TicketEventKind, TicketRef};

use super::field::At;
use super::{ParseError, Parsed};

/// Where a submitted CSAT answer sits in an `input_csat` message.
const CSAT_RESPONSE: &str = "content_attributes.submitted_values.csat_survey_response";

pub(super) fn parse(root: &At<'_>) -> Result<Parsed, ParseError> {
    let event = root.req("event")?.str()?;
    let parsed = match event {
        "conversation_created" => Some(created(root)?),
        "conversation_status_changed" => status_changed(root)?,
        "message_created" | "message_updated" => message(root, event)?,
        _ => return Ok(Parsed::ignored(event, "event not handled")),
    };
    Ok(match parsed {
        Some(event) => Parsed::Event(event),
        None => Parsed::ignored(event, "not a customer action or resolution change"),
    })
}

fn created(root: &At<'_>) -> Result<TicketEvent, ParseError> {
    let mut body = String::new();
    if let Some(messages) = root.get("messages")? {
        for message in messages.items()? {
            if is_incoming(&message)? && !is_private(&message)? {
                body = message.opt("content", At::text)?.unwrap_or_default();
                break;
            }
        }
    }
    let kind = TicketEventKind::Created(NewTicket {
        subject: root
            .opt("additional_attributes.mail_subject", At::short)?
            .flatten(),
        body,
        customer: TicketCustomer {
            email: root.opt("meta.sender.email", At::email)?.flatten(),
            name: root.opt("meta.sender.name", At::short)?.flatten(),
            external_id: root.opt("meta.sender.id", At::id)?,
        },
        tags: root.opt("labels", At::tags)?.unwrap_or_default(),
    });
    Ok(TicketEvent {
        kind,
        vendor_event_id: None,
        ticket: TicketRef {
            external_id: root.req("id")?.id()?,
            url: None,
        },
        occurred_at: root.opt("created_at", At::timestamp)?,
    })
}

fn status_changed(root: &At<'_>) -> Result<Option<TicketEvent>, ParseError> {
    let status = root.req("status")?.str()?;
    let mut previous = None;
    if let Some(changes) = root.get("changed_attributes")? {
        for change in changes.items()? {
            if let Some(value) = change.opt("status.previous_value", At::str)? {
                previous = Some(value);
            }
        }
    }
    let kind = match (status, previous) {
        ("resolved", Some("resolved")) => return Ok(None),
        ("resolved", _) => TicketEventKind::Solved,
        ("open", Some("resolved")) => TicketEventKind::Reopened,
        _ => return Ok(None),
    };
    Ok(Some(TicketEvent {
        kind,
        vendor_event_id: None,
        ticket: TicketRef {
            external_id: root.req("id")?.id()?,
            url: None,
        },
        occurred_at: None,
    }))
}

fn message(root: &At<'_>, event: &str) -> Result<Option<TicketEvent>, ParseError> {
    let is_csat = root.opt("content_type", At::str)? == Some("input_csat");
    let kind = if is_csat {
        let Some(response) = root.get(CSAT_RESPONSE)? else {
            return Ok(None);
        };
        let rating = response.req("rating")?;
        let score = SatisfactionScore::from_five_point(rating.integer()?)
            .ok_or_else(|| rating.invalid("expected a rating from 1 to 5"))?;
        let comment = response
            .opt("feedback_message", At::text)?
            .filter(|c| !c.trim().is_empty());
        TicketEventKind::SatisfactionRated { score, comment }
    } else if event == "message_created" && is_incoming(root)? && !is_private(root)? {
        TicketEventKind::CustomerReplied {
            body: root.opt("content", At::text)?.unwrap_or_default(),
        }
    } else {
        return Ok(None);
    };
    let created = event == "message_created";
    let vendor_event_id = match root.opt("id", At::id)? {
        Some(id) if created => Some(format!("message_created:{id}")),
        _ => None,
    };
    Ok(Some(TicketEvent {
        kind,
        vendor_event_id,
        ticket: TicketRef {
            external_id: root.req("conversation.id")?.id()?,
            url: None,
        },
        occurred_at: if created {
            root.opt("created_at", At::timestamp)?
        } else {
            None
        },
    }))
}

/// Whether a message was written by the customer: `message_type` is
/// `incoming` (message events) or `0` (messages inside a conversation).
fn is_incoming(message: &At<'_>) -> Result<bool, ParseError> {
    let Some(message_type) = message.get("message_type")? else {
        return Ok(false);
    };
    match message_type.str() {
        Ok(name) => Ok(name == "incoming"),
        Err(_) => Ok(message_type
            .integer()
            .map_err(|_| message_type.invalid("expected a message type name or number"))?
            == 0),
    }
}

fn is_private(message: &At<'_>) -> Result<bool, ParseError> {
    Ok(message.opt("private", At::bool)?.unwrap_or(false))
}
