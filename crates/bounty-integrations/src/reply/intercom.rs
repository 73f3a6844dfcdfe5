//! Intercom: a reply part, then a close part, both made "as" an admin.
//!
//! `POST /conversations/{id}/reply` with `{"message_type": "comment",
//! "type": "admin", "admin_id", "body"}` posts the public reply; a handoff
//! posts `"message_type": "note"` instead, which only teammates see, and
//! leaves the conversation open. A resolve then sends `POST
//! /conversations/{id}/parts` with `{"message_type": "close", "type":
//! "admin", "admin_id"}`; closing a closed conversation is harmless, so the
//! close is sent on every try, also after [`ReplySent::AlreadyPosted`].
//!
//! Intercom keeps no idempotency key and no metadata on parts, so the
//! marker is an HTML comment appended to the body (`<!-- bounty:{id} -->`,
//! which the Messenger does not render). A retry reads the conversation
//! (`GET /conversations/{id}`, which returns its parts) and looks for the
//! marker in `conversation_parts.conversation_parts[].body`.
//!
//! Every request carries `Authorization: Bearer` and `Intercom-Version`.

use bounty_core::clock::Timestamp;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};

use super::endpoint::BaseUrl;
use super::response::{discard, execute, read_json};
use super::{Reply, ReplyAction, ReplyError, ReplySent};
use crate::kind::IntegrationKind;

const KIND: IntegrationKind = IntegrationKind::Intercom;
/// The API version the request and response shapes here follow.
pub const API_VERSION: &str = "2.11";
/// The header that pins it.
const VERSION_HEADER: &str = "Intercom-Version";

/// The invisible marker appended to a part's body.
pub(super) fn marker(reply_id: &str) -> String {
    format!("<!-- bounty:{reply_id} -->")
}

/// Checked Intercom credentials.
pub(super) struct Auth<'a> {
    token: &'a SecretString,
    admin_id: &'a str,
}

impl<'a> Auth<'a> {
    pub(super) fn new(token: &'a SecretString, admin_id: &'a str) -> Result<Self, ReplyError> {
        if token.expose_secret().trim().is_empty() {
            return Err(ReplyError::Config(
                "the Intercom access token is empty".to_owned(),
            ));
        }
        if admin_id.trim().is_empty() {
            return Err(ReplyError::Config("the Intercom admin id is empty".to_owned()));
        }
        Ok(Auth { token, admin_id })
    }

    pub(super) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request
            .bearer_auth(self.token.expose_secret())
            .header(VERSION_HEADER, API_VERSION)
    }
}

pub(super) async fn send(
    http: &reqwest::Client,
    base: &BaseUrl,
    auth: &Auth<'_>,
    reply: &Reply<'_>,
    now: Timestamp,
) -> Result<ReplySent, ReplyError> {
    let conversation = reply.ticket_external_id;
    let sent = if reply.attempt > 1 && already_posted(http, base, auth, reply, now).await? {
        ReplySent::AlreadyPosted
    } else {
        let url = base.join(&format!("/conversations/{conversation}/reply"))?;
        let request = auth.apply(http.post(url)).json(&part(auth, reply));
        discard(execute(KIND, "reply", request, now).await?).await;
        ReplySent::Posted
    };
    if let ReplyAction::Resolve { .. } = reply.action {
        let url = base.join(&format!("/conversations/{conversation}/parts"))?;
        let close = json!({ "message_type": "close", "type": "admin", "admin_id": auth.admin_id });
        let request = auth.apply(http.post(url)).json(&close);
        discard(execute(KIND, "close", request, now).await?).await;
    }
    Ok(sent)
}

/// The reply or note part, marker appended.
fn part(auth: &Auth<'_>, reply: &Reply<'_>) -> Value {
    let (message_type, text) = match reply.action {
        ReplyAction::Resolve { body } => ("comment", body),
        ReplyAction::Handoff { note } => ("note", note),
    };
    json!({
        "message_type": message_type,
        "type": "admin",
        "admin_id": auth.admin_id,
        "body": format!("{text}\n{}", marker(reply.reply_id)),
    })
}

/// Whether a part of the conversation already carries our marker.
async fn already_posted(
    http: &reqwest::Client,
    base: &BaseUrl,
    auth: &Auth<'_>,
    reply: &Reply<'_>,
    now: Timestamp,
) -> Result<bool, ReplyError> {
    let url = base.join(&format!("/conversations/{}", reply.ticket_external_id))?;
    let response = execute(KIND, "get conversation", auth.apply(http.get(url)), now).await?;
    let conversation = read_json(KIND, "get conversation", response).await?;
    let parts = conversation["conversation_parts"]["conversation_parts"]
        .as_array()
        .ok_or_else(|| {
            ReplyError::Transient(
                "intercom get conversation: the answer has no conversation parts".to_owned(),
            )
        })?;
    let marker = marker(reply.reply_id);
    Ok(parts
        .iter()
        .any(|part| part["body"].as_str().is_some_and(|body| body.contains(&marker))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_made_as_the_admin_and_end_with_the_marker() {
        let token = SecretString::from("tok");
        let auth = Auth::new(&token, "991267").unwrap();
        let data = Value::Null;
        let resolve = ReplyAction::Resolve {
            body: "<p>Refunded.</p>".into(),
        };
        let reply = Reply {
            ticket_external_id: "215463212345",
            action: &resolve,
            reply_id: "obx_1",
            data: &data,
            attempt: 1,
        };
        assert_eq!(
            part(&auth, &reply),
            json!({
                "message_type": "comment",
                "type": "admin",
                "admin_id": "991267",
                "body": "<p>Refunded.</p>\n<!-- bounty:obx_1 -->",
            })
        );
        let handoff = ReplyAction::Handoff {
            note: "Check it.".into(),
        };
        let note = part(
            &auth,
            &Reply {
                action: &handoff,
                ..reply
            },
        );
        assert_eq!(note["message_type"], json!("note"));
    }

    #[test]
    fn empty_credentials_are_config_errors() {
        let token = SecretString::from("tok");
        let empty = SecretString::from("");
        assert!(matches!(Auth::new(&empty, "1"), Err(ReplyError::Config(_))));
        assert!(matches!(Auth::new(&token, " "), Err(ReplyError::Config(_))));
    }
}
