//! The fake's Standard Webhooks receiver, at
//! [`FakeHelpdesk::STANDARD_PATH`](super::FakeHelpdesk::STANDARD_PATH).
//!
//! It does what the spec asks of a receiver: verify the signature on the
//! raw body (with this crate's own [`verify`], against the wall clock, so
//! a stale `webhook-timestamp` is refused), then deduplicate on
//! `webhook-id`: a message id seen before is acknowledged with a 2xx and
//! not applied again. Deliveries must be `application/json` with a `type`
//! and `data.ticket_id`; a `ping` (the test ping) is acknowledged and
//! recorded as a request only.

use axum::http::{Method, StatusCode, header};
use serde_json::json;

use super::{Answer, FakeState, Incoming, PostKind};
use crate::kind::IntegrationKind;
use crate::signature::{self, header as names, verify};

const VENDOR: IntegrationKind = IntegrationKind::Standard;

pub(super) fn handle(state: &mut FakeState, request: &Incoming<'_>) -> Answer {
    if request.method != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let secret = state.standard_secret.as_bytes();
    if let Err(refused) = verify(VENDOR, &headers, request.body, &[secret], chrono::Utc::now()) {
        return error(StatusCode::UNAUTHORIZED, refused.code());
    }
    let is_json = request
        .header(header::CONTENT_TYPE.as_str())
        .is_some_and(|t| t.starts_with("application/json"));
    if !is_json {
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
    let Some(id) = signature::Headers::header(&headers, names::STANDARD_ID).map(str::to_owned) else {
        return error(StatusCode::BAD_REQUEST, "missing_header");
    };
    let Some(payload) = request.json else {
        return error(StatusCode::BAD_REQUEST, "invalid_json");
    };
    if payload["type"].as_str() == Some(crate::reply::standard_ping_type()) {
        state.standard_seen.insert(id);
        return Answer::ok(json!({ "received": true, "ping": true }));
    }
    let (Some(event_type), Some(ticket)) = (payload["type"].as_str(), payload["data"]["ticket_id"].as_str())
    else {
        return error(StatusCode::BAD_REQUEST, "invalid_payload");
    };
    if !state.serves(VENDOR, ticket) {
        return error(StatusCode::NOT_FOUND, "unknown_ticket");
    }
    if !state.standard_seen.insert(id.clone()) {
        return Answer::ok(json!({ "received": true, "duplicate": true }));
    }
    let text = payload["data"]["body"]
        .as_str()
        .or_else(|| payload["data"]["note"].as_str());
    state.record(
        VENDOR,
        ticket,
        PostKind::Webhook(event_type.to_owned()),
        text,
        Some(&id),
    );
    Answer::ok(json!({ "received": true, "duplicate": false }))
}

/// The scripted-fault answer for `status`.
pub(super) fn fault(status: StatusCode) -> Answer {
    error(status, status.canonical_reason().unwrap_or("error"))
}

fn error(status: StatusCode, code: &str) -> Answer {
    Answer::new(status, json!({ "error": code }))
}
