//! The fake's Intercom: reply, manage (close/open/snooze) and retrieve a
//! conversation.
//!
//! `POST /conversations/{id}/reply` takes an admin `comment` or `note`;
//! `POST /conversations/{id}/parts` takes an admin `close`, `open` or
//! `snoozed`; both answer the conversation, as `GET /conversations/{id}`
//! does, with its parts under `conversation_parts.conversation_parts`.
//! Part bodies are kept exactly as sent, so a marker comment survives.
//!
//! Errors are Intercom's `{"type": "error.list", "request_id", "errors":
//! [{"code", "message"}]}`; a bad token is `unauthorized` / `Access Token
//! Invalid`.

use axum::http::{Method, StatusCode, header};
use serde_json::{Value, json};

use super::{Answer, FakeHelpdesk, FakeState, Incoming, PostKind, now_unix};
use crate::kind::IntegrationKind;

const VENDOR: IntegrationKind = IntegrationKind::Intercom;

/// A conversation as the fake keeps it.
#[derive(Debug)]
pub(super) struct Conversation {
    state: String,
    parts: Vec<Value>,
    created_at: i64,
}

impl Default for Conversation {
    fn default() -> Self {
        Conversation {
            state: "open".to_owned(),
            parts: Vec::new(),
            created_at: now_unix(),
        }
    }
}

impl Conversation {
    pub(super) fn state(&self) -> &str {
        &self.state
    }
}

pub(super) fn handle(state: &mut FakeState, request: &Incoming<'_>) -> Answer {
    let token = request
        .header(header::AUTHORIZATION.as_str())
        .and_then(|auth| auth.strip_prefix("Bearer "));
    if token != Some(FakeHelpdesk::INTERCOM_ACCESS_TOKEN) {
        return error(
            state,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Access Token Invalid",
        );
    }
    let (id, action) = match request.segments.as_slice() {
        ["me"] => return Answer::ok(json!({ "type": "admin", "id": "1", "email": "admin@example.test" })),
        ["conversations", id] => (*id, None),
        ["conversations", id, action] => (*id, Some(*action)),
        _ => return error(state, StatusCode::NOT_FOUND, "not_found", "Resource Not Found"),
    };
    if !state.serves(VENDOR, id) {
        return error(state, StatusCode::NOT_FOUND, "not_found", "Resource Not Found");
    }
    match (request.method, action) {
        (&Method::GET, None) => {}
        (&Method::POST, Some("reply")) => {
            if let Err(refused) = reply(state, id, request) {
                return refused;
            }
        }
        (&Method::POST, Some("parts")) => {
            if let Err(refused) = manage(state, id, request) {
                return refused;
            }
        }
        _ => return error(state, StatusCode::NOT_FOUND, "not_found", "Resource Not Found"),
    }
    state.touch(VENDOR, id);
    Answer::ok(conversation_json(state, id))
}

/// The scripted-fault answer for `status`.
pub(super) fn fault(status: StatusCode) -> Answer {
    let (code, message) = match status {
        StatusCode::TOO_MANY_REQUESTS => ("rate_limit_exceeded", "Exceeded rate limit of 1000 in 60_seconds"),
        StatusCode::GONE => ("gone", "This resource is no longer available"),
        StatusCode::SERVICE_UNAVAILABLE => (
            "service_unavailable",
            "Sorry, the API service is temporarily unavailable",
        ),
        s if s.is_server_error() => ("server_error", "Server Error"),
        _ => ("client_error", "The request could not be processed"),
    };
    error_body(status, "00000000-fault", code, message)
}

fn error(state: &mut FakeState, status: StatusCode, code: &str, message: &str) -> Answer {
    let request_id = format!("0003fake-{:08x}", state.next_id());
    error_body(status, &request_id, code, message)
}

fn error_body(status: StatusCode, request_id: &str, code: &str, message: &str) -> Answer {
    Answer::new(
        status,
        json!({
            "type": "error.list",
            "request_id": request_id,
            "errors": [{ "code": code, "message": message }],
        }),
    )
}

/// Checks the admin a part is made as.
fn admin<'a>(state: &mut FakeState, body: &'a Value) -> Result<&'a str, Answer> {
    if body["type"].as_str() != Some("admin") {
        return Err(error(
            state,
            StatusCode::BAD_REQUEST,
            "parameter_invalid",
            "type must be admin",
        ));
    }
    match body["admin_id"].as_str() {
        Some(id) if id == FakeHelpdesk::INTERCOM_ADMIN_ID => Ok(id),
        Some(_) => Err(error(
            state,
            StatusCode::NOT_FOUND,
            "admin_not_found",
            "Admin not found",
        )),
        None => Err(error(
            state,
            StatusCode::BAD_REQUEST,
            "parameter_not_found",
            "admin_id is required",
        )),
    }
}

fn reply(state: &mut FakeState, id: &str, request: &Incoming<'_>) -> Result<(), Answer> {
    let empty = Value::Null;
    let body = request.json.unwrap_or(&empty);
    let admin_id = admin(state, body)?;
    let kind = match body["message_type"].as_str() {
        Some("comment") => PostKind::Reply,
        Some("note") => PostKind::Note,
        _ => {
            return Err(error(
                state,
                StatusCode::BAD_REQUEST,
                "parameter_invalid",
                "message_type must be comment or note",
            ));
        }
    };
    let Some(text) = body["body"].as_str().filter(|b| !b.trim().is_empty()) else {
        return Err(error(
            state,
            StatusCode::BAD_REQUEST,
            "parameter_not_found",
            "Body is required",
        ));
    };
    let part_type = if kind == PostKind::Note { "note" } else { "comment" };
    let reply_id = marker_in(text);
    state.record(VENDOR, id, kind, Some(text), reply_id.as_deref());
    push_part(state, id, part_type, Some(text), admin_id);
    Ok(())
}

fn manage(state: &mut FakeState, id: &str, request: &Incoming<'_>) -> Result<(), Answer> {
    let empty = Value::Null;
    let body = request.json.unwrap_or(&empty);
    let admin_id = admin(state, body)?;
    let (new_state, kind) = match body["message_type"].as_str() {
        Some("close") => ("closed", PostKind::Close),
        Some("open") => ("open", PostKind::Status("open".to_owned())),
        Some("snoozed") => ("snoozed", PostKind::Status("snoozed".to_owned())),
        _ => {
            return Err(error(
                state,
                StatusCode::BAD_REQUEST,
                "parameter_invalid",
                "message_type must be close, open or snoozed",
            ));
        }
    };
    let text = body["body"].as_str();
    state.record(VENDOR, id, kind, text, None);
    push_part(
        state,
        id,
        body["message_type"].as_str().unwrap_or_default(),
        text,
        admin_id,
    );
    state.intercom.entry(id.to_owned()).or_default().state = new_state.to_owned();
    Ok(())
}

fn push_part(state: &mut FakeState, id: &str, part_type: &str, body: Option<&str>, admin_id: &str) {
    let part_id = state.next_id().to_string();
    let now = now_unix();
    let part = json!({
        "type": "conversation_part",
        "id": part_id,
        "part_type": part_type,
        "body": body,
        "created_at": now,
        "updated_at": now,
        "notified_at": now,
        "assigned_to": null,
        "author": {
            "id": admin_id,
            "type": "admin",
            "name": "Fake Admin",
            "email": "admin@acme.example",
        },
        "attachments": [],
        "external_id": null,
        "redacted": false,
    });
    state.intercom.entry(id.to_owned()).or_default().parts.push(part);
}

/// The reply id in a body's `<!-- bounty:… -->` marker.
fn marker_in(body: &str) -> Option<String> {
    let start = body.rfind("<!-- bounty:")? + "<!-- bounty:".len();
    let end = body[start..].find(" -->")? + start;
    Some(body[start..end].to_owned())
}

fn conversation_json(state: &FakeState, id: &str) -> Value {
    let (conversation_state, parts, created_at) = state
        .intercom
        .get(id)
        .map(|c| (c.state.as_str(), c.parts.clone(), c.created_at))
        .unwrap_or(("open", Vec::new(), now_unix()));
    json!({
        "type": "conversation",
        "id": id,
        "created_at": created_at,
        "updated_at": now_unix(),
        "state": conversation_state,
        "open": conversation_state == "open",
        "read": true,
        "priority": "not_priority",
        "admin_assignee_id": null,
        "team_assignee_id": null,
        "tags": { "type": "tag.list", "tags": [] },
        "conversation_parts": {
            "type": "conversation_part.list",
            "total_count": parts.len(),
            "conversation_parts": parts,
        },
    })
}
