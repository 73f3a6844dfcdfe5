//! The body and headers of the dashboard's "send a signed test delivery".
//!
//! A test delivery is a new-ticket event in the integration's own vendor
//! format, signed the vendor's way with the integration's current inbound
//! secret, so it takes exactly the path a real one takes through
//! `/webhooks/in/{id}`: signature, parsing, deduplication, a task. For
//! `standard` it is Bounty's documented `ticket.created` body
//! (`bounty_integrations::parse::standard`); for the vendors it is the
//! smallest payload of their new-ticket event that
//! [`bounty_integrations::parse`] reads as one (checked in the tests
//! below). Each carries fresh ticket, event and delivery ids, so a second
//! test is a second ticket, not a duplicate.
//!
//! Nothing here does I/O; the page that sends it is
//! [`crate::pages::integrations`].

use bounty_core::Timestamp;
use bounty_integrations::{Delivery, IntegrationKind, SignatureError, sign};
use chrono::SecondsFormat;
use serde_json::{Value, json};

use crate::token::{RandomError, random_hex};

/// The subject every test ticket has, so it is recognisable in the task list.
pub(crate) const SUBJECT: &str = "Bounty test delivery";
/// The body every test ticket has.
const BODY: &str = "This is a test ticket sent from the Bounty dashboard to check the integration.";
/// The customer on every test ticket (a reserved example address).
const EMAIL: &str = "test.customer@example.com";
const CUSTOMER: &str = "Test Customer";
const TAG: &str = "bounty-test";

/// One test delivery, ready to send.
pub(crate) struct TestDelivery {
    /// The ticket id in the vendor's terms.
    pub(crate) ticket: String,
    pub(crate) body: Vec<u8>,
    /// The vendor's signature headers, and `Content-Type`.
    pub(crate) headers: Vec<(String, String)>,
}

/// Why no test delivery could be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TestDeliveryError {
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The stored secret cannot sign (it was accepted, so this is a bug).
    #[error("signing the test delivery: {0}")]
    Sign(#[from] SignatureError),
}

/// The new-ticket body of vendor `kind`, its ids made from `key` (random
/// hex) and `number` (a random 48-bit number, for Chatwoot's integer ids).
fn payload(kind: IntegrationKind, key: &str, number: u64, now: Timestamp) -> (String, Value) {
    let rfc3339 = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let unix = now.timestamp();
    match kind {
        IntegrationKind::Standard => {
            let ticket = format!("bounty-test-{key}");
            let body = json!({
                "type": "ticket.created",
                "timestamp": rfc3339,
                "data": {
                    "ticket_id": ticket,
                    "subject": SUBJECT,
                    "body": BODY,
                    "customer": { "email": EMAIL, "name": CUSTOMER },
                    "tags": [TAG],
                },
            });
            (ticket, body)
        }
        IntegrationKind::Zendesk => {
            let ticket = format!("test-{key}");
            let body = json!({
                "account_id": 0,
                "id": format!("bounty-test-{key}"),
                "time": rfc3339,
                "type": "zen:event-type:ticket.created",
                "subject": format!("zen:ticket:{ticket}"),
                "zendesk_event_version": "2022-11-06",
                "detail": {
                    "id": ticket,
                    "subject": SUBJECT,
                    "description": BODY,
                    "status": "NEW",
                    "requester_id": "bounty-test-customer",
                    "tags": [TAG],
                },
                "event": {},
            });
            (ticket, body)
        }
        IntegrationKind::Intercom => {
            let ticket = format!("test-{key}");
            let body = json!({
                "type": "notification_event",
                "id": format!("notif_bounty_test_{key}"),
                "topic": "conversation.user.created",
                "app_id": "bounty-test",
                "created_at": unix,
                "data": {
                    "type": "notification_event_data",
                    "item": {
                        "type": "conversation",
                        "id": ticket,
                        "state": "open",
                        "source": {
                            "subject": SUBJECT,
                            "body": format!("<p>{BODY}</p>"),
                            "author": { "type": "user", "id": "bounty-test-customer", "name": CUSTOMER, "email": EMAIL },
                        },
                        "tags": { "tags": [ { "name": TAG } ] },
                    },
                },
            });
            (ticket, body)
        }
        IntegrationKind::Chatwoot => {
            let id = number;
            let body = json!({
                "event": "conversation_created",
                "id": id,
                "status": "open",
                "meta": { "sender": { "id": 0, "name": CUSTOMER, "email": EMAIL } },
                "messages": [ { "content": BODY, "message_type": 0, "private": false } ],
                "labels": [TAG],
                "additional_attributes": { "mail_subject": SUBJECT },
                "account": { "id": 0 },
                "created_at": unix,
            });
            (id.to_string(), body)
        }
    }
}

/// A fresh test delivery of vendor `kind`, signed with `secret` at `now`.
pub(crate) fn build(
    kind: IntegrationKind,
    secret: &[u8],
    now: Timestamp,
) -> Result<TestDelivery, TestDeliveryError> {
    let key = random_hex(10)?;
    // 12 hex digits: 48 bits, well inside JSON's exact integers.
    let number = u64::from_str_radix(&random_hex(6)?, 16).unwrap_or_default();
    let (ticket, value) = payload(kind, &key, number, now);
    let body = value.to_string().into_bytes();
    let delivery_id = format!("bounty_test_{key}");
    let mut headers = sign(
        kind,
        secret,
        &body,
        &Delivery {
            id: &delivery_id,
            timestamp: now,
        },
    )?;
    headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
    Ok(TestDelivery {
        ticket,
        body,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use bounty_integrations::{Parsed, TicketEventKind, generate_secret, parse, verify};
    use chrono::{TimeZone, Utc};
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn every_vendor_payload_is_a_signed_new_ticket() {
        let now = Utc.with_ymd_and_hms(2026, 5, 10, 12, 0, 0).unwrap();
        for kind in IntegrationKind::ALL {
            let secret = generate_secret(kind).unwrap();
            let secret = secret.expose_secret().as_bytes();
            let d = build(kind, secret, now).unwrap();
            verify(kind, &d.headers, &d.body, &[secret], now)
                .unwrap_or_else(|e| panic!("{kind}: the signature verifies: {e}"));
            let Parsed::Event(event) = parse(kind, &d.body).unwrap_or_else(|e| panic!("{kind}: {e}")) else {
                panic!("{kind}: the test delivery is not ignored");
            };
            assert_eq!(event.ticket.external_id, d.ticket, "{kind}");
            let TicketEventKind::Created(ticket) = event.kind else {
                panic!("{kind}: a new ticket");
            };
            assert_eq!(ticket.subject.as_deref(), Some(SUBJECT), "{kind}");
            assert!(ticket.body.contains("test ticket"), "{kind}: {}", ticket.body);
            assert_eq!(ticket.tags, vec![TAG.to_owned()], "{kind}");
        }
    }

    #[test]
    fn each_test_is_a_new_ticket_and_delivery() {
        let now = Utc.with_ymd_and_hms(2026, 5, 10, 12, 0, 0).unwrap();
        for kind in IntegrationKind::ALL {
            let secret = generate_secret(kind).unwrap();
            let a = build(kind, secret.expose_secret().as_bytes(), now).unwrap();
            let b = build(kind, secret.expose_secret().as_bytes(), now).unwrap();
            assert_ne!(a.ticket, b.ticket, "{kind}");
            assert_ne!(a.body, b.body, "{kind}");
        }
        assert!(build(IntegrationKind::Standard, b"not-whsec!", now).is_err());
    }
}
