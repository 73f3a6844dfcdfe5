//! Standard Webhooks: one signed POST to the customer's callback URL.
//!
//! The body is the Standard Webhooks envelope, `{"type", "timestamp",
//! "data"}`, with `type` `ticket.replied` or `ticket.handoff` and `data`
//! holding `ticket_id`, `body` or `note`, and the caller's
//! [`Reply::data`]. It is signed with [`crate::signature::sign`] under
//! `webhook-id` = [`Reply::reply_id`]: the spec has receivers dedupe on
//! that id, so a resend is always safe and no read-back is needed. That
//! is also why this vendor never answers [`super::ReplySent::AlreadyPosted`].
//!
//! Each try signs afresh at `now` (the `webhook-timestamp` must be recent
//! for the receiver to accept it); only the id stays the same.

use bounty_core::clock::Timestamp;
use chrono::SecondsFormat;
use reqwest::header::CONTENT_TYPE;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value, json};

use super::endpoint::BaseUrl;
use super::response::{discard, execute};
use super::{Reply, ReplyAction, ReplyError, ReplySent};
use crate::kind::IntegrationKind;
use crate::signature::{self, Delivery as SignedDelivery};

const KIND: IntegrationKind = IntegrationKind::Standard;
/// The event type of a resolve.
pub const REPLIED: &str = "ticket.replied";
/// The event type of a handoff.
pub const HANDOFF: &str = "ticket.handoff";
/// The event type of the test ping sent when an integration is turned
/// back on; a receiver answers it 2xx and does nothing.
pub const PING: &str = "ping";

/// A signed delivery, ready to send: built before any request so that a
/// bad secret or bad data is a [`ReplyError::Config`] with nothing sent.
pub(super) struct Delivery {
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Delivery {
    pub(super) fn new(secret: &SecretString, reply: &Reply<'_>, now: Timestamp) -> Result<Self, ReplyError> {
        Delivery::signed(secret, reply.reply_id, &payload(reply, now)?, now)
    }

    /// The test ping: `{"type": "ping", "timestamp", "data": {}}` under a
    /// fresh `webhook-id`, signed like a reply.
    pub(super) fn ping(secret: &SecretString, now: Timestamp) -> Result<Self, ReplyError> {
        let id = format!("ping_{}", now.timestamp_nanos_opt().unwrap_or_default());
        let payload = json!({
            "type": PING,
            "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
            "data": {},
        });
        Delivery::signed(secret, &id, &payload, now)
    }

    fn signed(secret: &SecretString, id: &str, payload: &Value, now: Timestamp) -> Result<Self, ReplyError> {
        let body = serde_json::to_vec(payload)
            .map_err(|_| ReplyError::Config("the Standard payload cannot be serialized".to_owned()))?;
        let headers = signature::sign(
            KIND,
            secret.expose_secret().as_bytes(),
            &body,
            &SignedDelivery { id, timestamp: now },
        )
        .map_err(|_| ReplyError::Config("the Standard Webhooks secret is not whsec_ + base64".to_owned()))?;
        Ok(Delivery { body, headers })
    }

    /// The signed `POST` to the callback URL.
    pub(super) fn request(self, http: &reqwest::Client, base: &BaseUrl) -> reqwest::RequestBuilder {
        let mut request = http
            .post(base.url().clone())
            .header(CONTENT_TYPE, "application/json");
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request.body(self.body)
    }
}

pub(super) async fn send(
    http: &reqwest::Client,
    base: &BaseUrl,
    delivery: Delivery,
    now: Timestamp,
) -> Result<ReplySent, ReplyError> {
    discard(execute(KIND, "deliver", delivery.request(http, base), now).await?).await;
    Ok(ReplySent::Posted)
}

/// The envelope: the caller's data first, then ours over it.
fn payload(reply: &Reply<'_>, now: Timestamp) -> Result<Value, ReplyError> {
    let mut data = match reply.data {
        Value::Null => Map::new(),
        Value::Object(fields) => fields.clone(),
        _ => {
            return Err(ReplyError::Config(
                "the reply data must be a JSON object or null".to_owned(),
            ));
        }
    };
    data.insert("ticket_id".to_owned(), json!(reply.ticket_external_id));
    let event_type = match reply.action {
        ReplyAction::Resolve { body } => {
            data.insert("body".to_owned(), json!(body));
            REPLIED
        }
        ReplyAction::Handoff { note } => {
            data.insert("note".to_owned(), json!(note));
            HANDOFF
        }
    };
    Ok(json!({
        "type": event_type,
        "timestamp": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        "data": data,
    }))
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    fn now() -> Timestamp {
        DateTime::from_timestamp(1_796_162_400, 250_000_000).unwrap()
    }

    #[test]
    fn the_callers_data_is_merged_under_ours() {
        let data = json!({"task_id": "task_01J", "outcome": "resolved", "ticket_id": "spoofed"});
        let resolve = ReplyAction::Resolve { body: "Done.".into() };
        let reply = Reply {
            ticket_external_id: "T-100",
            action: &resolve,
            reply_id: "obx_1",
            data: &data,
            attempt: 1,
        };
        assert_eq!(
            payload(&reply, now()).unwrap(),
            json!({
                "type": "ticket.replied",
                "timestamp": "2026-12-01T22:00:00.250Z",
                "data": {"task_id": "task_01J", "outcome": "resolved", "ticket_id": "T-100", "body": "Done."},
            })
        );
        let null = Value::Null;
        let handoff = ReplyAction::Handoff { note: "Look.".into() };
        let handoff = payload(
            &Reply {
                action: &handoff,
                data: &null,
                ..reply
            },
            now(),
        )
        .unwrap();
        assert_eq!(handoff["type"], json!("ticket.handoff"));
        assert_eq!(handoff["data"], json!({"ticket_id": "T-100", "note": "Look."}));
    }

    #[test]
    fn data_that_is_not_an_object_and_bad_secrets_are_config_errors() {
        let resolve = ReplyAction::Resolve { body: "Done.".into() };
        let list = json!([1]);
        let reply = Reply {
            ticket_external_id: "T-100",
            action: &resolve,
            reply_id: "obx_1",
            data: &list,
            attempt: 1,
        };
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert!(matches!(
            Delivery::new(&secret, &reply, now()),
            Err(ReplyError::Config(_))
        ));
        let object = json!({});
        let reply = Reply {
            data: &object,
            ..reply
        };
        for bad in ["", "whsec_", "whsec_!!!"] {
            let err = Delivery::new(&SecretString::from(bad), &reply, now())
                .err()
                .unwrap();
            assert!(matches!(err, ReplyError::Config(_)), "{bad}");
        }
        let delivery = Delivery::new(&secret, &reply, now()).unwrap();
        let names: Vec<&str> = delivery.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["webhook-id", "webhook-timestamp", "webhook-signature"]);
        assert_eq!(delivery.headers[0].1, "obx_1");
    }
}
