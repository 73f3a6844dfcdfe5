//! Zendesk event-subscribed webhooks ("ticket events").
//!
//! A webhook subscribed to Zendesk ticket events receives one JSON object
//! per event:
//!
//! ```json
//! { "account_id": 22129848, "id": "<event uuid>", "time": "<RFC 3339>",
//!   "type": "zen:event-type:ticket.status_changed", "subject": "zen:ticket:5158",
//!   "zendesk_event_version": "2022-11-06",
//!   "detail": { "id": "5158", "subject": "…", "description": "…", "status": "SOLVED",
//!               "requester_id": "8447388090494", "tags": ["billing"], … },
//!   "event": { "previous": "OPEN", "current": "SOLVED" } }
//! ```
//!
//! `detail` is the ticket after the change, `event` the change itself. The
//! ticket id is `detail.id` (required); the event id is `id`, the time `time`.
//! Zendesk sends no requester email or name here, only `requester_id`, and
//! no ticket URL (it depends on the account's subdomain, which the
//! integration's configuration knows).
//!
//! What becomes what (`type` after `zen:event-type:ticket.`):
//!
//! - `created` → `Created`: `detail.subject`, `detail.description`,
//!   `detail.requester_id`, `detail.tags`;
//! - `status_changed` to `SOLVED` or `CLOSED` from any other status (or
//!   from none given) → `Solved`;
//! - `status_changed` from `SOLVED` to `NEW`, `OPEN`, `PENDING` or `HOLD`
//!   → `Reopened`;
//! - `comment_added`, public and by the customer → `CustomerReplied` with
//!   `event.comment.body`;
//! - `satisfaction_rating_changed` with score `good` / `bad` →
//!   `SatisfactionRated` 100 / 0.
//!
//! Everything else is ignored, including `SOLVED` → `CLOSED` (Zendesk
//! closes solved tickets on its own; that is not a second solve), staff
//! and private comments, and `offered`/`unoffered` ratings.
//!
//! A comment is the customer's when `event.comment.author.is_staff` is
//! `false`; without that flag, when its author is `detail.requester_id`.
//!
//! Satisfaction: Zendesk's catalogue of ticket webhook events
//! (developer.zendesk.com, "Ticket events": agent assignment, attachments,
//! brand, comments, custom fields, description, CCs, external id,
//! followers, form, group, organization, priority, problem link,
//! requester, status, subject, submitter, tags, task due date, created,
//! spam, merged, deleted, type, undeleted) has no satisfaction event.
//! Ratings therefore come from a Zendesk trigger ("Satisfaction is
//! Good/Bad" → notify this webhook) whose JSON body, built from
//! placeholders, uses the same envelope with the type
//! [`SATISFACTION_EVENT`] (a name of ours, in Zendesk's style) and
//! `event.current` either the score string or an object `{ "score",
//! "comment" }`. The integration form's Zendesk steps give that body.

use crate::event::{NewTicket, SatisfactionScore, TicketCustomer, TicketEvent, TicketEventKind, TicketRef};

use super::Parsed;
use super::field::At;

/// The prefix of every Zendesk ticket event type.
pub const TICKET_EVENT_PREFIX: &str = "zen:event-type:ticket.";

/// The event type read as a satisfaction rating.
pub const SATISFACTION_EVENT: &str = "zen:event-type:ticket.satisfaction_rating_changed";

pub(super) fn parse(root: &At<'_>) -> Result<Parsed, super::ParseError> {
    let event_type = root.req("type")?.str()?;
    let Some(ticket_event) = event_type.strip_prefix(TICKET_EVENT_PREFIX) else {
        return Ok(Parsed::ignored(event_type, "not a ticket event"));
    };
    let handled = matches!(ticket_event, "created" | "status_changed" | "comment_added")
        || event_type == SATISFACTION_EVENT;
    if !handled {
        return Ok(Parsed::ignored(event_type, "ticket event not handled"));
    }

    let ticket = TicketRef {
        external_id: root.req("detail.id")?.id()?,
        url: None,
    };
    let kind = match ticket_event {
        "created" => Some(created(root)?),
        "status_changed" => status_changed(root)?,
        "comment_added" => comment_added(root)?,
        _ => satisfaction(root)?,
    };
    let Some(kind) = kind else {
        return Ok(Parsed::ignored(event_type, "change not relevant to resolution"));
    };
    Ok(Parsed::Event(TicketEvent {
        kind,
        vendor_event_id: root.opt("id", At::id)?,
        ticket,
        occurred_at: root.opt("time", At::rfc3339)?,
    }))
}

fn created(root: &At<'_>) -> Result<TicketEventKind, super::ParseError> {
    Ok(TicketEventKind::Created(NewTicket {
        subject: root.opt("detail.subject", At::short)?.flatten(),
        body: root.opt("detail.description", At::text)?.unwrap_or_default(),
        customer: TicketCustomer {
            email: None,
            name: None,
            external_id: root.opt("detail.requester_id", At::id)?,
        },
        tags: root.opt("detail.tags", At::tags)?.unwrap_or_default(),
    }))
}

/// Zendesk's status names, upper case in events, lower case in the API.
fn is_solved(status: &str) -> bool {
    status.eq_ignore_ascii_case("solved") || status.eq_ignore_ascii_case("closed")
}

fn is_open(status: &str) -> bool {
    ["new", "open", "pending", "hold"]
        .iter()
        .any(|s| status.eq_ignore_ascii_case(s))
}

fn status_changed(root: &At<'_>) -> Result<Option<TicketEventKind>, super::ParseError> {
    let current = root.req("event.current")?.str()?;
    let previous = root.opt("event.previous", At::str)?;
    Ok(match previous {
        Some(previous) if is_solved(current) && !is_solved(previous) => Some(TicketEventKind::Solved),
        None if is_solved(current) => Some(TicketEventKind::Solved),
        Some(previous) if previous.eq_ignore_ascii_case("solved") && is_open(current) => {
            Some(TicketEventKind::Reopened)
        }
        _ => None,
    })
}

fn comment_added(root: &At<'_>) -> Result<Option<TicketEventKind>, super::ParseError> {
    let comment = root.req("event.comment")?;
    let public = comment.opt("is_public", At::bool)?.unwrap_or(true);
    let by_customer = match comment.opt("author.is_staff", At::bool)? {
        Some(is_staff) => !is_staff,
        None => {
            let author = comment.opt("author.id", At::id)?;
            author.is_some() && author == root.opt("detail.requester_id", At::id)?
        }
    };
    if !(public && by_customer) {
        return Ok(None);
    }
    Ok(Some(TicketEventKind::CustomerReplied {
        body: comment.req("body")?.text()?,
    }))
}

fn satisfaction(root: &At<'_>) -> Result<Option<TicketEventKind>, super::ParseError> {
    let current = root.req("event.current")?;
    let (score, comment) = if current.is_object() {
        (current.req("score")?, current.opt("comment", At::text)?)
    } else {
        (current.clone(), None)
    };
    let raw = score.str()?;
    let percent = if raw.eq_ignore_ascii_case("good") {
        100
    } else if raw.eq_ignore_ascii_case("bad") {
        0
    } else if ["offered", "unoffered"]
        .iter()
        .any(|s| raw.eq_ignore_ascii_case(s))
    {
        return Ok(None);
    } else {
        return Err(score.invalid("expected good, bad, offered or unoffered"));
    };
    let score = SatisfactionScore::new(percent, raw.to_ascii_lowercase())
        .map_err(|_| current.invalid("score out of range"))?;
    let comment = comment.filter(|c| !c.trim().is_empty());
    Ok(Some(TicketEventKind::SatisfactionRated { score, comment }))
}
