//! Zendesk: one ticket update carries the comment, the status and our marker.
//!
//! `PUT /api/v2/tickets/{id}.json` with `{"ticket": {"comment": {…},
//! "status": "solved"}}` adds the reply and solves the ticket in one audit,
//! so there is no half-done state to recover from. A handoff is a private
//! comment (`"public": false`) plus the [`HANDOFF_TAG`] through
//! `additional_tags`, which adds to the ticket's tags instead of replacing
//! them; the status is left alone.
//!
//! The marker rides in `ticket.metadata`, which Zendesk stores on the audit
//! the update creates as `metadata.custom` (up to 1 KB, only on updates that
//! change the ticket, which a comment always does). A retry lists the
//! ticket's audits (`GET /api/v2/tickets/{id}/audits.json`, cursor
//! pagination, oldest first) and looks for an audit whose
//! `metadata.custom.bounty_reply_id` is ours.
//!
//! Auth is an API token: HTTP Basic `{email}/token:{api_token}`.

use bounty_core::clock::Timestamp;
use reqwest::Url;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};

use super::endpoint::BaseUrl;
use super::response::{discard, execute, read_json};
use super::{HANDOFF_TAG, Reply, ReplyAction, ReplyError, ReplySent};
use crate::kind::IntegrationKind;

const KIND: IntegrationKind = IntegrationKind::Zendesk;
/// The `ticket.metadata` key that carries the reply id.
pub(super) const MARKER_KEY: &str = "bounty_reply_id";
/// Audits per page (Zendesk's maximum).
const AUDITS_PER_PAGE: &str = "100";
/// Pages of audits read before giving up on finding the marker.
const MAX_AUDIT_PAGES: usize = 20;

/// Checked Zendesk credentials.
pub(super) struct Auth<'a> {
    user: String,
    token: &'a SecretString,
}

impl<'a> Auth<'a> {
    pub(super) fn new(email: &str, token: &'a SecretString) -> Result<Self, ReplyError> {
        let email = email.trim();
        if email.is_empty() || email.contains(':') || email.chars().any(char::is_control) {
            return Err(ReplyError::Config(
                "the Zendesk email is empty or malformed".to_owned(),
            ));
        }
        if token.expose_secret().trim().is_empty() {
            return Err(ReplyError::Config("the Zendesk API token is empty".to_owned()));
        }
        Ok(Auth {
            user: format!("{email}/token"),
            token,
        })
    }

    pub(super) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.basic_auth(&self.user, Some(self.token.expose_secret()))
    }
}

pub(super) async fn send(
    http: &reqwest::Client,
    base: &BaseUrl,
    auth: &Auth<'_>,
    reply: &Reply<'_>,
    now: Timestamp,
) -> Result<ReplySent, ReplyError> {
    let ticket = reply.ticket_external_id;
    if reply.attempt > 1 && already_posted(http, base, auth, reply, now).await? {
        return Ok(ReplySent::AlreadyPosted);
    }
    let url = base.join(&format!("/api/v2/tickets/{ticket}.json"))?;
    let request = auth.apply(http.put(url)).json(&update(reply));
    discard(execute(KIND, "update ticket", request, now).await?).await;
    Ok(ReplySent::Posted)
}

/// The `{"ticket": …}` update for `reply`.
fn update(reply: &Reply<'_>) -> Value {
    let metadata = json!({ MARKER_KEY: reply.reply_id });
    match reply.action {
        ReplyAction::Resolve { body } => json!({
            "ticket": {
                "comment": { "body": body, "public": true },
                "status": "solved",
                "metadata": metadata,
            }
        }),
        ReplyAction::Handoff { note } => json!({
            "ticket": {
                "comment": { "body": note, "public": false },
                "additional_tags": [HANDOFF_TAG],
                "metadata": metadata,
            }
        }),
    }
}

/// Whether an audit of the ticket already carries our marker.
async fn already_posted(
    http: &reqwest::Client,
    base: &BaseUrl,
    auth: &Auth<'_>,
    reply: &Reply<'_>,
    now: Timestamp,
) -> Result<bool, ReplyError> {
    let first = base.join(&format!(
        "/api/v2/tickets/{}/audits.json",
        reply.ticket_external_id
    ))?;
    let mut after: Option<String> = None;
    for _ in 0..MAX_AUDIT_PAGES {
        let url = page_url(&first, after.as_deref());
        let response = execute(KIND, "list audits", auth.apply(http.get(url)), now).await?;
        let page = read_json(KIND, "list audits", response).await?;
        let audits = page["audits"].as_array().ok_or_else(|| {
            ReplyError::Transient("zendesk list audits: the answer has no audits list".to_owned())
        })?;
        if audits
            .iter()
            .any(|audit| audit["metadata"]["custom"][MARKER_KEY].as_str() == Some(reply.reply_id))
        {
            return Ok(true);
        }
        let has_more = page["meta"]["has_more"].as_bool().unwrap_or(false);
        match page["meta"]["after_cursor"].as_str() {
            Some(cursor) if has_more && !audits.is_empty() => after = Some(cursor.to_owned()),
            _ => return Ok(false),
        }
    }
    tracing::warn!(
        pages = MAX_AUDIT_PAGES,
        "zendesk ticket has more audits than are searched for a reply marker; posting"
    );
    Ok(false)
}

/// One page of the audits list: `page[size]`, and `page[after]` past the first.
fn page_url(first: &Url, after: Option<&str>) -> Url {
    let mut url = first.clone();
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("page[size]", AUDITS_PER_PAGE);
        if let Some(cursor) = after {
            query.append_pair("page[after]", cursor);
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resolve_solves_in_the_same_update_and_a_handoff_only_tags() {
        let data = Value::Null;
        let resolve = ReplyAction::Resolve {
            body: "Refunded.".into(),
        };
        let reply = Reply {
            ticket_external_id: "48213",
            action: &resolve,
            reply_id: "obx_1",
            data: &data,
            attempt: 1,
        };
        assert_eq!(
            update(&reply),
            json!({"ticket": {
                "comment": {"body": "Refunded.", "public": true},
                "status": "solved",
                "metadata": {"bounty_reply_id": "obx_1"},
            }})
        );
        let handoff = ReplyAction::Handoff {
            note: "Check the refund.".into(),
        };
        let reply = Reply {
            action: &handoff,
            ..reply
        };
        let update = update(&reply);
        assert_eq!(update["ticket"]["comment"]["public"], json!(false));
        assert_eq!(update["ticket"]["additional_tags"], json!(["bounty_handoff"]));
        assert!(update["ticket"].get("status").is_none());
    }

    #[test]
    fn audit_pages_use_cursor_pagination() {
        let first = Url::parse("https://acme.zendesk.com/api/v2/tickets/1/audits.json").unwrap();
        assert_eq!(
            page_url(&first, None).as_str(),
            "https://acme.zendesk.com/api/v2/tickets/1/audits.json?page%5Bsize%5D=100"
        );
        assert_eq!(
            page_url(&first, Some("xc1+/=")).as_str(),
            "https://acme.zendesk.com/api/v2/tickets/1/audits.json?page%5Bsize%5D=100&page%5Bafter%5D=xc1%2B%2F%3D"
        );
    }

    #[test]
    fn malformed_emails_and_empty_tokens_are_config_errors() {
        let token = SecretString::from("tok");
        for bad in ["", "  ", "a:b@example.com", "a\n@example.com"] {
            assert!(
                matches!(Auth::new(bad, &token), Err(ReplyError::Config(_))),
                "{bad:?}"
            );
        }
        let empty = SecretString::from(" ");
        assert!(matches!(
            Auth::new("agent@acme.example", &empty),
            Err(ReplyError::Config(_))
        ));
        assert_eq!(
            Auth::new(" agent@acme.example ", &token).map(|a| a.user).ok(),
            Some("agent@acme.example/token".to_owned())
        );
    }
}
