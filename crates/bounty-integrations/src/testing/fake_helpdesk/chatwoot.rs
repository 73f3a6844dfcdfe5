//! The fake's Chatwoot: messages and status of an account's conversations.
//!
//! `POST /api/v1/accounts/{account}/conversations/{id}/messages` creates a
//! message (`content_attributes` kept as sent); `GET` on the same path
//! lists them as Chatwoot does, `{"meta", "payload"}` with the newest
//! [`PAGE_SIZE`] in ascending order and older ones with `?before={id}`.
//! `POST …/toggle_status` sets `status` when given, and otherwise flips
//! between `open` and `resolved`.
//!
//! Errors are Chatwoot's `{"error": …}` (or `{"errors": […]}` for
//! validation); a bad token is `{"error": "Invalid Access Token"}`.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Answer, FakeHelpdesk, FakeState, Incoming, PostKind, id_json, now_unix};
use crate::kind::IntegrationKind;

const VENDOR: IntegrationKind = IntegrationKind::Chatwoot;
/// Messages per page of the list, as Chatwoot serves them.
const PAGE_SIZE: usize = 20;
/// Chatwoot's `message_type` numbers, as its API returns them.
const INCOMING: u8 = 0;
const OUTGOING: u8 = 1;

/// A conversation as the fake keeps it.
#[derive(Debug)]
pub(super) struct Conversation {
    status: String,
    messages: Vec<Value>,
}

impl Default for Conversation {
    fn default() -> Self {
        Conversation {
            status: "pending".to_owned(),
            messages: Vec::new(),
        }
    }
}

impl Conversation {
    pub(super) fn status(&self) -> &str {
        &self.status
    }
}

pub(super) fn handle(state: &mut FakeState, request: &Incoming<'_>) -> Answer {
    if request.header("api_access_token") != Some(FakeHelpdesk::CHATWOOT_API_ACCESS_TOKEN) {
        return error(StatusCode::UNAUTHORIZED, "Invalid Access Token");
    }
    if let ["api", "v1", "accounts", account, "conversations", "meta"] = request.segments.as_slice() {
        if *account != FakeHelpdesk::CHATWOOT_ACCOUNT_ID {
            return error(
                StatusCode::UNAUTHORIZED,
                "You are not authorized to access this account",
            );
        }
        return Answer::ok(json!({ "meta": { "mine_count": 0, "unassigned_count": 0, "all_count": 0 } }));
    }
    let ["api", "v1", "accounts", account, "conversations", id, action] = request.segments.as_slice() else {
        return not_found();
    };
    if *account != FakeHelpdesk::CHATWOOT_ACCOUNT_ID {
        return error(
            StatusCode::UNAUTHORIZED,
            "You are not authorized to access this account",
        );
    }
    if !state.serves(VENDOR, id) {
        return not_found();
    }
    state.touch(VENDOR, id);
    match (request.method, *action) {
        (&Method::POST, "messages") => create_message(state, id, request),
        (&Method::GET, "messages") => list_messages(state, id, request),
        (&Method::POST, "toggle_status") => toggle_status(state, id, request),
        _ => not_found(),
    }
}

/// The scripted-fault answer for `status`.
pub(super) fn fault(status: StatusCode) -> Answer {
    let message = match status {
        StatusCode::TOO_MANY_REQUESTS => "Retry later",
        s => s.canonical_reason().unwrap_or("Error"),
    };
    error(status, message)
}

fn error(status: StatusCode, message: &str) -> Answer {
    Answer::new(status, json!({ "error": message }))
}

fn not_found() -> Answer {
    error(StatusCode::NOT_FOUND, "Resource could not be found")
}

fn create_message(state: &mut FakeState, id: &str, request: &Incoming<'_>) -> Answer {
    let empty = Value::Null;
    let body = request.json.unwrap_or(&empty);
    let Some(content) = body["content"].as_str().filter(|c| !c.trim().is_empty()) else {
        return Answer::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "errors": ["Content can't be blank"] }),
        );
    };
    let message_type = match body["message_type"].as_str().unwrap_or("outgoing") {
        "outgoing" => OUTGOING,
        "incoming" => INCOMING,
        _ => {
            return Answer::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "errors": ["Message type is not included in the list"] }),
            );
        }
    };
    let private = body["private"].as_bool().unwrap_or(false);
    let attributes = body
        .get("content_attributes")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let kind = if private { PostKind::Note } else { PostKind::Reply };
    state.record(
        VENDOR,
        id,
        kind,
        Some(content),
        attributes["bounty_reply_id"].as_str(),
    );
    let message = json!({
        "id": state.next_id(),
        "content": content,
        "inbox_id": 1,
        "conversation_id": id_json(id),
        "message_type": message_type,
        "content_type": "text",
        "status": "sent",
        "content_attributes": attributes,
        "created_at": now_unix(),
        "private": private,
        "source_id": null,
        "sender": { "id": 1, "name": "Fake Agent", "type": "user" },
    });
    state
        .chatwoot
        .entry(id.to_owned())
        .or_default()
        .messages
        .push(message.clone());
    Answer::ok(message)
}

fn list_messages(state: &FakeState, id: &str, request: &Incoming<'_>) -> Answer {
    let before = request.query("before").and_then(|b| b.parse::<u64>().ok());
    let older: Vec<&Value> = state
        .chatwoot
        .get(id)
        .map(|c| c.messages.iter())
        .into_iter()
        .flatten()
        .filter(|m| before.is_none_or(|b| m["id"].as_u64().is_some_and(|id| id < b)))
        .collect();
    let page = &older[older.len().saturating_sub(PAGE_SIZE)..];
    Answer::ok(json!({
        "meta": {
            "labels": [],
            "additional_attributes": {},
            "contact": {},
            "assignee": null,
            "agent_last_seen_at": 0,
            "assignee_last_seen_at": 0,
        },
        "payload": page,
    }))
}

fn toggle_status(state: &mut FakeState, id: &str, request: &Incoming<'_>) -> Answer {
    let conversation = state.chatwoot.entry(id.to_owned()).or_default();
    let status = match request.json.and_then(|b| b["status"].as_str()) {
        Some(s @ ("open" | "resolved" | "pending" | "snoozed")) => s.to_owned(),
        Some(_) => {
            return Answer::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "errors": ["Status is not included in the list"] }),
            );
        }
        None if conversation.status == "open" => "resolved".to_owned(),
        None => "open".to_owned(),
    };
    conversation.status = status.clone();
    let kind = if status == "resolved" {
        PostKind::Resolve
    } else {
        PostKind::Status(status.clone())
    };
    state.record(VENDOR, id, kind, None, None);
    Answer::ok(json!({
        "meta": {},
        "payload": {
            "success": true,
            "current_status": status,
            "conversation_id": id_json(id),
        },
    }))
}
