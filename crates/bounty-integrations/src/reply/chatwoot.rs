//! Chatwoot: a message, then a status change.
//!
//! `POST /api/v1/accounts/{account}/conversations/{id}/messages` with
//! `{"content", "message_type": "outgoing", "private": false,
//! "content_attributes": {"bounty_reply_id": …}}` posts the reply, and
//! `POST …/conversations/{id}/toggle_status` with `{"status": "resolved"}`
//! resolves it. A handoff posts a `"private": true` message (a note only
//! agents see) and sets the status to `open`: in Chatwoot `pending` is the
//! bot's queue and `open` the humans', so this is the vendor's own handoff.
//! With an explicit `status` the toggle sets rather than flips, so it is
//! sent on every try, also after [`ReplySent::AlreadyPosted`].
//!
//! The marker is the message's `content_attributes`, which Chatwoot stores
//! and returns. A retry lists the conversation's messages (`GET
//! …/messages`, the newest page first, older pages with `?before={id}`)
//! and looks for `content_attributes.bounty_reply_id`.
//!
//! Every request carries the `api_access_token` header.

use bounty_core::clock::Timestamp;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};

use super::endpoint::{BaseUrl, check_id};
use super::response::{discard, execute, read_json};
use super::{Reply, ReplyAction, ReplyError, ReplySent};
use crate::kind::IntegrationKind;

const KIND: IntegrationKind = IntegrationKind::Chatwoot;
/// The header Chatwoot reads the access token from.
const TOKEN_HEADER: &str = "api_access_token";
/// The `content_attributes` key that carries the reply id.
pub(super) const MARKER_KEY: &str = "bounty_reply_id";
/// Pages of messages read, newest first, before giving up on the marker.
const MAX_MESSAGE_PAGES: usize = 20;

/// Checked Chatwoot credentials.
pub(super) struct Auth<'a> {
    token: HeaderValue,
    account_id: &'a str,
}

impl<'a> Auth<'a> {
    pub(super) fn new(token: &SecretString, account_id: &'a str) -> Result<Self, ReplyError> {
        check_id("Chatwoot account id", account_id)?;
        let token = token.expose_secret().trim();
        if token.is_empty() {
            return Err(ReplyError::Config(
                "the Chatwoot access token is empty".to_owned(),
            ));
        }
        let mut token = HeaderValue::from_str(token).map_err(|_| {
            ReplyError::Config("the Chatwoot access token is not a valid header value".to_owned())
        })?;
        token.set_sensitive(true);
        Ok(Auth { token, account_id })
    }

    pub(super) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.header(TOKEN_HEADER, self.token.clone())
    }

    /// The account's conversation counts: the test ping's path, which
    /// checks the token and the account both.
    pub(super) fn ping_path(&self) -> String {
        format!("/api/v1/accounts/{}/conversations/meta", self.account_id)
    }

    fn conversation_path(&self, conversation: &str, rest: &str) -> String {
        format!(
            "/api/v1/accounts/{}/conversations/{conversation}{rest}",
            self.account_id
        )
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
        let url = base.join(&auth.conversation_path(conversation, "/messages"))?;
        let request = auth.apply(http.post(url)).json(&message(reply));
        discard(execute(KIND, "post message", request, now).await?).await;
        ReplySent::Posted
    };
    let status = match reply.action {
        ReplyAction::Resolve { .. } => "resolved",
        ReplyAction::Handoff { .. } => "open",
    };
    let url = base.join(&auth.conversation_path(conversation, "/toggle_status"))?;
    let request = auth.apply(http.post(url)).json(&json!({ "status": status }));
    discard(execute(KIND, "toggle status", request, now).await?).await;
    Ok(sent)
}

/// The message for `reply`, marker in its `content_attributes`.
fn message(reply: &Reply<'_>) -> Value {
    let (content, private) = match reply.action {
        ReplyAction::Resolve { body } => (body, false),
        ReplyAction::Handoff { note } => (note, true),
    };
    json!({
        "content": content,
        "message_type": "outgoing",
        "private": private,
        "content_attributes": { MARKER_KEY: reply.reply_id },
    })
}

/// Whether a message of the conversation already carries our marker.
async fn already_posted(
    http: &reqwest::Client,
    base: &BaseUrl,
    auth: &Auth<'_>,
    reply: &Reply<'_>,
    now: Timestamp,
) -> Result<bool, ReplyError> {
    let first = base.join(&auth.conversation_path(reply.ticket_external_id, "/messages"))?;
    let mut before: Option<i64> = None;
    for _ in 0..MAX_MESSAGE_PAGES {
        let mut url = first.clone();
        if let Some(id) = before {
            url.query_pairs_mut().append_pair("before", &id.to_string());
        }
        let response = execute(KIND, "list messages", auth.apply(http.get(url)), now).await?;
        let page = read_json(KIND, "list messages", response).await?;
        let messages = page["payload"].as_array().ok_or_else(|| {
            ReplyError::Transient("chatwoot list messages: the answer has no payload list".to_owned())
        })?;
        if messages
            .iter()
            .any(|m| m["content_attributes"][MARKER_KEY].as_str() == Some(reply.reply_id))
        {
            return Ok(true);
        }
        match messages.iter().filter_map(|m| m["id"].as_i64()).min() {
            Some(oldest) if before.is_none_or(|b| oldest < b) => before = Some(oldest),
            _ => return Ok(false),
        }
    }
    tracing::warn!(
        pages = MAX_MESSAGE_PAGES,
        "chatwoot conversation has more messages than are searched for a reply marker; posting"
    );
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_public_and_handoffs_private_both_marked() {
        let data = Value::Null;
        let resolve = ReplyAction::Resolve {
            body: "Refunded.".into(),
        };
        let reply = Reply {
            ticket_external_id: "1742",
            action: &resolve,
            reply_id: "obx_1",
            data: &data,
            attempt: 1,
        };
        assert_eq!(
            message(&reply),
            json!({
                "content": "Refunded.",
                "message_type": "outgoing",
                "private": false,
                "content_attributes": {"bounty_reply_id": "obx_1"},
            })
        );
        let handoff = ReplyAction::Handoff {
            note: "Check.".into(),
        };
        let note = message(&Reply {
            action: &handoff,
            ..reply
        });
        assert_eq!(note["private"], json!(true));
        assert_eq!(note["content"], json!("Check."));
    }

    #[test]
    fn account_ids_and_tokens_are_checked() {
        let token = SecretString::from("tok");
        assert!(matches!(Auth::new(&token, "../2"), Err(ReplyError::Config(_))));
        assert!(matches!(Auth::new(&token, ""), Err(ReplyError::Config(_))));
        let empty = SecretString::from("");
        assert!(matches!(Auth::new(&empty, "3"), Err(ReplyError::Config(_))));
        let newline = SecretString::from("a\nb");
        assert!(matches!(Auth::new(&newline, "3"), Err(ReplyError::Config(_))));
        let auth = Auth::new(&token, "3").unwrap();
        assert_eq!(
            auth.conversation_path("1742", "/messages"),
            "/api/v1/accounts/3/conversations/1742/messages"
        );
    }
}
