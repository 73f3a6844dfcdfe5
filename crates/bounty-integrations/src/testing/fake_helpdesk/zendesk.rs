//! The fake's Zendesk: ticket update, ticket show and ticket audits.
//!
//! An update (`PUT /api/v2/tickets/{id}.json`, `{"ticket": {…}}`) applies
//! `comment`, `status`, `tags`/`additional_tags` and creates an audit, as
//! Zendesk does, only when something changed; the audit's
//! `metadata.custom` is the update's `ticket.metadata`. The audits list
//! pages with cursor pagination (`page[size]`, `page[after]`, `meta.has_more`,
//! `meta.after_cursor`, `links.next`), oldest first.
//!
//! Errors are Zendesk's `{"error": …, "description": …}`; bad credentials
//! are its `{"error": "Couldn't authenticate you"}`.

use axum::http::{Method, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use super::{Answer, FakeHelpdesk, FakeState, Incoming, PostKind, id_json, now_rfc3339};
use crate::kind::IntegrationKind;

const VENDOR: IntegrationKind = IntegrationKind::Zendesk;
/// The audits page size when `page[size]` is absent, and the largest allowed.
const MAX_PAGE_SIZE: usize = 100;

/// A ticket as the fake keeps it.
#[derive(Debug)]
pub(super) struct Ticket {
    status: String,
    tags: Vec<String>,
    audits: Vec<Value>,
}

impl Default for Ticket {
    fn default() -> Self {
        Ticket {
            status: "open".to_owned(),
            tags: Vec::new(),
            audits: Vec::new(),
        }
    }
}

impl Ticket {
    pub(super) fn status(&self) -> &str {
        &self.status
    }
}

pub(super) fn handle(state: &mut FakeState, request: &Incoming<'_>) -> Answer {
    if !authorized(request) {
        return error(StatusCode::UNAUTHORIZED, "Couldn't authenticate you", None);
    }
    if request.segments.as_slice() == ["api", "v2", "users", "me.json"] {
        return Answer::ok(json!({ "user": { "id": 1, "role": "agent", "email": "agent@example.test" } }));
    }
    let route = match request.segments.as_slice() {
        ["api", "v2", "tickets", file] => file.strip_suffix(".json").map(|id| (id, None)),
        ["api", "v2", "tickets", id, "audits.json"] => Some((*id, Some("audits"))),
        _ => None,
    };
    let Some((ticket, sub)) = route else {
        return error(StatusCode::NOT_FOUND, "InvalidEndpoint", Some("Not found"));
    };
    if !state.serves(VENDOR, ticket) {
        return error(StatusCode::NOT_FOUND, "RecordNotFound", Some("Not found"));
    }
    state.touch(VENDOR, ticket);
    match (request.method, sub) {
        (&Method::PUT, None) => update(state, ticket, request),
        (&Method::GET, None) => Answer::ok(json!({ "ticket": ticket_json(state, ticket) })),
        (&Method::GET, Some(_)) => audits(state, ticket, request),
        _ => error(StatusCode::NOT_FOUND, "InvalidEndpoint", Some("Not found")),
    }
}

/// The scripted-fault answer for `status`.
pub(super) fn fault(status: StatusCode) -> Answer {
    match status {
        StatusCode::TOO_MANY_REQUESTS => error(
            status,
            "APIRateLimitExceeded",
            Some("Number of allowed API requests per minute exceeded"),
        ),
        _ => {
            let title: String = status
                .canonical_reason()
                .unwrap_or("Error")
                .split_whitespace()
                .collect();
            error(status, &title, Some("The server could not complete the request"))
        }
    }
}

fn error(status: StatusCode, error: &str, description: Option<&str>) -> Answer {
    let mut body = json!({ "error": error });
    if let Some(description) = description {
        body["description"] = json!(description);
    }
    Answer::new(status, body)
}

/// Basic auth as API token auth spells it: `{email}/token:{token}`.
fn authorized(request: &Incoming<'_>) -> bool {
    let expected = BASE64.encode(format!(
        "{}/token:{}",
        FakeHelpdesk::ZENDESK_EMAIL,
        FakeHelpdesk::ZENDESK_API_TOKEN
    ));
    request
        .header(header::AUTHORIZATION.as_str())
        .and_then(|auth| auth.strip_prefix("Basic "))
        .is_some_and(|credentials| credentials == expected)
}

fn update(state: &mut FakeState, id: &str, request: &Incoming<'_>) -> Answer {
    let Some(changes) = request.json.and_then(|body| body["ticket"].as_object()) else {
        return invalid("ticket", "is required");
    };
    let comment = &changes.get("comment").cloned().unwrap_or(Value::Null);
    let comment_body = comment["body"].as_str().or_else(|| comment["html_body"].as_str());
    if !comment.is_null() && comment_body.is_none_or(|b| b.trim().is_empty()) {
        return invalid("comment", "Body: cannot be blank");
    }
    let public = comment["public"].as_bool().unwrap_or(true);
    let metadata = changes.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let reply_id = metadata["bounty_reply_id"].as_str().map(str::to_owned);
    let status = changes.get("status").and_then(Value::as_str);
    let mut added_tags: Vec<String> = changes
        .get("additional_tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    let replaced_tags: Option<Vec<String>> = changes.get("tags").and_then(Value::as_array).map(|tags| {
        tags.iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect()
    });

    let audit_id = state.next_id();
    let mut events = Vec::new();
    if let Some(body) = comment_body {
        let kind = if public { PostKind::Reply } else { PostKind::Note };
        state.record(VENDOR, id, kind, Some(body), reply_id.as_deref());
        events.push(json!({
            "id": state.next_id(),
            "type": "Comment",
            "author_id": 1,
            "body": body,
            "public": public,
            "attachments": [],
        }));
    }
    let ticket = state.zendesk.entry(id.to_owned()).or_default();
    let mut changed_status = None;
    if let Some(status) = status.filter(|s| *s != ticket.status) {
        events.push(json!({
            "type": "Change",
            "field_name": "status",
            "value": status,
            "previous_value": ticket.status,
        }));
        ticket.status = status.to_owned();
        changed_status = Some(status.to_owned());
    }
    let previous_tags = ticket.tags.clone();
    if let Some(tags) = replaced_tags {
        ticket.tags = tags;
    }
    added_tags.retain(|t| !ticket.tags.contains(t));
    ticket.tags.extend(added_tags.iter().cloned());
    if ticket.tags != previous_tags {
        events.push(json!({
            "type": "Change",
            "field_name": "tags",
            "value": ticket.tags,
            "previous_value": previous_tags,
        }));
    }
    if events.is_empty() {
        // Zendesk creates no audit (and keeps no metadata) for an update that changes nothing.
        return Answer::ok(json!({ "ticket": ticket_json(state, id) }));
    }
    let audit = json!({
        "id": audit_id,
        "ticket_id": id_json(id),
        "created_at": now_rfc3339(),
        "author_id": 1,
        "metadata": {
            "custom": metadata,
            "system": {
                "client": request.header(header::USER_AGENT.as_str()).unwrap_or_default(),
                "ip_address": "127.0.0.1",
                "location": "Local, Loopback",
            },
        },
        "via": { "channel": "api", "source": { "from": {}, "to": {}, "rel": null } },
        "events": events,
    });
    ticket.audits.push(audit.clone());
    match changed_status.as_deref() {
        Some("solved") => state.record(VENDOR, id, PostKind::Solve, None, reply_id.as_deref()),
        Some(other) => state.record(
            VENDOR,
            id,
            PostKind::Status(other.to_owned()),
            None,
            reply_id.as_deref(),
        ),
        None => {}
    }
    for tag in added_tags {
        state.record(VENDOR, id, PostKind::Tag(tag), None, reply_id.as_deref());
    }
    Answer::ok(json!({ "ticket": ticket_json(state, id), "audit": audit }))
}

fn invalid(field: &str, description: &str) -> Answer {
    let mut details = Map::new();
    details.insert(field.to_owned(), json!([{ "description": description }]));
    Answer::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": details,
        }),
    )
}

fn audits(state: &FakeState, id: &str, request: &Incoming<'_>) -> Answer {
    let all = state
        .zendesk
        .get(id)
        .map(|t| t.audits.as_slice())
        .unwrap_or_default();
    let size = request
        .query("page[size]")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(MAX_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    // The cursor is the index of the first audit of the page, as text.
    let start = match request.query("page[after]") {
        Some(cursor) => match cursor.parse::<usize>() {
            Ok(start) if start <= all.len() => start,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidPaginationParameter",
                    Some("invalid cursor"),
                );
            }
        },
        None => 0,
    };
    let end = (start + size).min(all.len());
    let has_more = end < all.len();
    let page_url = |after: usize| {
        format!(
            "{}/api/v2/tickets/{id}/audits.json?page%5Bsize%5D={size}&page%5Bafter%5D={after}",
            state.base_url
        )
    };
    Answer::ok(json!({
        "audits": &all[start..end],
        "meta": {
            "has_more": has_more,
            "after_cursor": has_more.then(|| end.to_string()),
            "before_cursor": (start > 0).then(|| start.to_string()),
        },
        "links": {
            "next": has_more.then(|| page_url(end)),
            "prev": Value::Null,
        },
    }))
}

fn ticket_json(state: &FakeState, id: &str) -> Value {
    let (status, tags) = state
        .zendesk
        .get(id)
        .map(|t| (t.status.as_str(), t.tags.clone()))
        .unwrap_or(("open", Vec::new()));
    json!({
        "id": id_json(id),
        "url": format!("{}/api/v2/tickets/{id}.json", state.base_url),
        "status": status,
        "tags": tags,
        "subject": "Help with my order",
        "updated_at": now_rfc3339(),
    })
}
