//! Every vendor's fixtures through `parse`: each mapped event with its
//! fields, an ignored type per vendor, and the ways a body can be wrong
//! (malformed, missing or mistyped fields, huge, empty, not UTF-8).
//!
//! Fixtures under `tests/fixtures/{vendor}/` follow each vendor's documented
//! webhook payloads, with realistic ids.

use bounty_integrations::parse::{MAX_BODY_BYTES, MAX_ID_BYTES, MAX_TAGS, MAX_TEXT_BYTES};
use bounty_integrations::{
    IntegrationKind, NewTicket, ParseError, Parsed, TicketCustomer, TicketEvent, TicketEventKind, TicketRef,
    VendorPayload, parse,
};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use IntegrationKind::{Chatwoot, Intercom, Standard, Zendesk};

fn fixture(kind: IntegrationKind, name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/{}/{name}.json",
        env!("CARGO_MANIFEST_DIR"),
        kind.as_str()
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn event(kind: IntegrationKind, name: &str) -> TicketEvent {
    match parse(kind, &fixture(kind, name)) {
        Ok(Parsed::Event(event)) => event,
        other => panic!("{kind}/{name}: expected an event, got {other:?}"),
    }
}

fn ignored(kind: IntegrationKind, name: &str) -> String {
    match parse(kind, &fixture(kind, name)) {
        Ok(Parsed::Ignored { event_type, reason }) => {
            assert!(!reason.is_empty());
            event_type
        }
        other => panic!("{kind}/{name}: expected it ignored, got {other:?}"),
    }
}

/// The fixture with `edit` applied to its JSON, parsed.
fn edited(kind: IntegrationKind, name: &str, edit: impl FnOnce(&mut Value)) -> Result<Parsed, ParseError> {
    let mut value: Value = serde_json::from_slice(&fixture(kind, name)).unwrap();
    edit(&mut value);
    parse(kind, &serde_json::to_vec(&value).unwrap())
}

/// The object at JSON pointer `parent`, to remove or replace a field in.
fn object_at<'a>(value: &'a mut Value, parent: &str) -> &'a mut serde_json::Map<String, Value> {
    value
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"))
}

fn removed(kind: IntegrationKind, name: &str, parent: &str, key: &str) -> ParseError {
    edited(kind, name, |v| {
        object_at(v, parent).remove(key);
    })
    .unwrap_err()
}

fn replaced(
    kind: IntegrationKind,
    name: &str,
    parent: &str,
    key: &str,
    with: Value,
) -> Result<Parsed, ParseError> {
    edited(kind, name, |v| {
        object_at(v, parent).insert(key.to_owned(), with);
    })
}

/// The new ticket in `parsed`, which must be a `Created` event.
fn new_ticket(parsed: Result<Parsed, ParseError>) -> NewTicket {
    match parsed {
        Ok(Parsed::Event(TicketEvent {
            kind: TicketEventKind::Created(ticket),
            ..
        })) => ticket,
        other => panic!("expected a created ticket, got {other:?}"),
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn unix(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap()
}

fn assert_missing(err: ParseError, path: &str) {
    assert_eq!(
        err,
        ParseError::MissingField {
            path: path.to_owned()
        }
    );
    assert_eq!(err.code(), "missing_field");
    assert_eq!(err.path(), Some(path));
    assert!(err.to_string().contains(path), "{err}");
}

fn assert_invalid(result: Result<Parsed, ParseError>, path: &str) {
    let err = result.unwrap_err();
    assert_eq!(err.code(), "invalid_field", "{err:?}");
    assert_eq!(err.path(), Some(path), "{err:?}");
}

// ---------------------------------------------------------------- Zendesk

#[test]
fn zendesk_ticket_created() {
    let event = event(Zendesk, "ticket_created");
    assert_eq!(
        event,
        TicketEvent {
            kind: TicketEventKind::Created(NewTicket {
                subject: Some("Charged twice for order #55213".into()),
                body: "Hi,\n\nI was charged twice for order #55213 on November 28. Could you refund the \
                       duplicate charge?\n\nThanks,\nMaya"
                    .into(),
                customer: TicketCustomer {
                    email: None,
                    name: None,
                    external_id: Some("8447388090494".into())
                },
                tags: vec!["billing".into(), "refund".into(), "web_form".into()],
            }),
            vendor_event_id: Some("cbe4028c-7239-495d-b020-f22348516046".into()),
            ticket: TicketRef {
                external_id: "5158".into(),
                url: None
            },
            occurred_at: Some(at("2026-12-01T21:58:41.672717030Z")),
        }
    );
    assert_eq!(event.kind.name().as_str(), "created");
}

#[test]
fn zendesk_status_changes() {
    let solved = event(Zendesk, "status_solved");
    assert_eq!(solved.kind, TicketEventKind::Solved);
    assert_eq!(solved.ticket.external_id, "5158");
    assert_eq!(
        solved.vendor_event_id.as_deref(),
        Some("5a4f1d7e-93b1-4c26-8f0e-0d52c7a1b9e3")
    );

    assert_eq!(event(Zendesk, "status_reopened").kind, TicketEventKind::Reopened);
    // Zendesk closes solved tickets by itself: not a second solve.
    assert_eq!(
        ignored(Zendesk, "status_closed_after_solved"),
        "zen:event-type:ticket.status_changed"
    );

    let status = |previous: Value, current: &str| {
        edited(Zendesk, "status_solved", |v| {
            v["event"] = json!({ "previous": previous, "current": current });
        })
        .unwrap()
    };
    let is_event = |p: &Parsed, kind: TicketEventKind| matches!(p, Parsed::Event(e) if e.kind == kind);
    assert!(is_event(&status(json!("NEW"), "CLOSED"), TicketEventKind::Solved));
    assert!(is_event(&status(Value::Null, "SOLVED"), TicketEventKind::Solved));
    assert!(is_event(
        &status(json!("solved"), "pending"),
        TicketEventKind::Reopened
    ));
    assert!(is_event(
        &status(json!("SOLVED"), "HOLD"),
        TicketEventKind::Reopened
    ));
    assert!(matches!(status(json!("OPEN"), "PENDING"), Parsed::Ignored { .. }));
    assert!(matches!(status(json!("NEW"), "OPEN"), Parsed::Ignored { .. }));
    assert!(matches!(status(Value::Null, "OPEN"), Parsed::Ignored { .. }));
}

#[test]
fn zendesk_comments_count_only_when_the_customer_writes_publicly() {
    let reply = event(Zendesk, "comment_added_by_requester");
    assert_eq!(
        reply.kind,
        TicketEventKind::CustomerReplied {
            body: "I still see both charges on my card statement this morning.".into()
        }
    );
    assert_eq!(reply.kind.name().as_str(), "customer_replied");
    assert_eq!(
        ignored(Zendesk, "comment_added_by_agent"),
        "zen:event-type:ticket.comment_added"
    );

    let private = replaced(
        Zendesk,
        "comment_added_by_requester",
        "/event/comment",
        "is_public",
        json!(false),
    );
    assert!(matches!(private, Ok(Parsed::Ignored { .. })));
    // Without `is_staff`, authorship by the requester decides.
    let by_requester = edited(Zendesk, "comment_added_by_requester", |v| {
        object_at(v, "/event/comment/author").remove("is_staff");
    });
    assert!(matches!(by_requester, Ok(Parsed::Event(_))));
    let by_someone_else = edited(Zendesk, "comment_added_by_agent", |v| {
        object_at(v, "/event/comment/author").remove("is_staff");
    });
    assert!(matches!(by_someone_else, Ok(Parsed::Ignored { .. })));
}

/// The body the integration form tells a Zendesk trigger to send (Zendesk
/// has no satisfaction webhook event), with `{{ticket.id}}` filled in.
#[test]
fn the_zendesk_rating_trigger_body_from_the_form_parses() {
    let template = include_str!("../../../web/templates/integration_new.html");
    let start = template
        .find("{\"type\": \"zen:event-type:ticket.satisfaction_rating_changed\"")
        .expect("the form shows the trigger body");
    let end = start + template[start..].find("</code>").expect("the body ends");
    let body = template[start..end]
        .replace("{% raw %}{{ticket.id}}{% endraw %}", "4711")
        .replace("&quot;", "\"");
    for (current, percent) in [("good", 100), ("bad", 0)] {
        let body = body.replace("\"current\": \"good\"", &format!("\"current\": \"{current}\""));
        let parsed = parse(Zendesk, body.as_bytes());
        let Ok(Parsed::Event(e)) = parsed else {
            panic!("{body}: {parsed:?}");
        };
        assert_eq!(e.ticket.external_id, "4711");
        let TicketEventKind::SatisfactionRated { score, .. } = e.kind else {
            panic!("{e:?}");
        };
        assert_eq!(score.percent(), percent);
    }
}

#[test]
fn zendesk_satisfaction_ratings() {
    let good = event(Zendesk, "satisfaction_good");
    let TicketEventKind::SatisfactionRated { score, comment } = &good.kind else {
        panic!("{good:?}");
    };
    assert_eq!((score.percent(), score.raw()), (100, "good"));
    assert_eq!(comment.as_deref(), Some("Quick and friendly, thank you!"));

    let bad = event(Zendesk, "satisfaction_bad");
    let TicketEventKind::SatisfactionRated { score, comment } = &bad.kind else {
        panic!("{bad:?}");
    };
    assert_eq!((score.percent(), score.raw(), comment), (0, "bad", &None));

    let offered = replaced(
        Zendesk,
        "satisfaction_good",
        "/event",
        "current",
        json!({"score": "offered"}),
    );
    assert!(matches!(offered, Ok(Parsed::Ignored { .. })));
    assert_invalid(
        replaced(
            Zendesk,
            "satisfaction_good",
            "/event/current",
            "score",
            json!("great"),
        ),
        "event.current.score",
    );
    assert_invalid(
        replaced(Zendesk, "satisfaction_good", "/event", "current", json!(5)),
        "event.current",
    );
}

#[test]
fn zendesk_ignored_and_broken_payloads() {
    assert_eq!(
        ignored(Zendesk, "priority_changed"),
        "zen:event-type:ticket.priority_changed"
    );
    let user_event = replaced(
        Zendesk,
        "ticket_created",
        "",
        "type",
        json!("zen:event-type:user.created"),
    );
    assert!(matches!(user_event, Ok(Parsed::Ignored { .. })));

    assert_missing(removed(Zendesk, "ticket_created", "/detail", "id"), "detail.id");
    assert_missing(removed(Zendesk, "ticket_created", "", "detail"), "detail.id");
    assert_missing(removed(Zendesk, "ticket_created", "", "type"), "type");
    assert_missing(
        removed(Zendesk, "status_solved", "/event", "current"),
        "event.current",
    );
    assert_missing(
        removed(Zendesk, "comment_added_by_requester", "/event/comment", "body"),
        "event.comment.body",
    );

    assert_invalid(replaced(Zendesk, "ticket_created", "", "type", json!(7)), "type");
    assert_invalid(
        replaced(Zendesk, "ticket_created", "/detail", "id", json!({"n": 1})),
        "detail.id",
    );
    assert_invalid(
        replaced(Zendesk, "ticket_created", "/detail", "id", json!(-5)),
        "detail.id",
    );
    assert_invalid(
        replaced(Zendesk, "ticket_created", "/detail", "tags", json!("billing")),
        "detail.tags",
    );
    assert_invalid(
        replaced(Zendesk, "ticket_created", "/detail", "tags", json!(["ok", 3])),
        "detail.tags[1]",
    );
    assert_invalid(
        replaced(Zendesk, "ticket_created", "", "time", json!("yesterday")),
        "time",
    );
    assert_invalid(
        replaced(Zendesk, "ticket_created", "", "detail", json!([])),
        "detail",
    );

    // Numeric ids (trigger payloads) read as their digits.
    let numeric = replaced(Zendesk, "ticket_created", "/detail", "id", json!(5158)).unwrap();
    assert!(matches!(numeric, Parsed::Event(e) if e.ticket.external_id == "5158"));
}

// --------------------------------------------------------------- Intercom

#[test]
fn intercom_conversation_created() {
    let event = event(Intercom, "conversation_user_created");
    assert_eq!(
        event,
        TicketEvent {
            kind: TicketEventKind::Created(NewTicket {
                subject: None,
                body: "Hi there,\nI can't export my invoices as PDF \u{2014} the button spins forever.\n\
                       Tried Chrome and Firefox."
                    .into(),
                customer: TicketCustomer {
                    email: Some("priya.raman@northwind.example".into()),
                    name: Some("Priya Raman".into()),
                    external_id: Some("6571a2c94f3d1e0012ab34cd".into()),
                },
                tags: vec!["billing".into(), "export".into()],
            }),
            vendor_event_id: Some("notif_8c2f1a04-5b3e-4d7c-9f10-2e6a7b8c9d01".into()),
            ticket: TicketRef {
                external_id: "215468893213459".into(),
                url: None
            },
            occurred_at: Some(unix(1_796_162_312)),
        }
    );
    // A subject (email channel) wins; the title is the fallback.
    let titled = replaced(
        Intercom,
        "conversation_user_created",
        "/data/item",
        "title",
        json!("PDF export"),
    );
    assert_eq!(new_ticket(titled).subject.as_deref(), Some("PDF export"));
    let subject = json!("<b>Re:</b> PDF");
    let subject = replaced(
        Intercom,
        "conversation_user_created",
        "/data/item/source",
        "subject",
        subject,
    );
    assert_eq!(new_ticket(subject).subject.as_deref(), Some("Re: PDF"));
}

#[test]
fn intercom_replies_closes_reopens_and_ratings() {
    let reply = event(Intercom, "conversation_user_replied");
    assert_eq!(
        reply.kind,
        TicketEventKind::CustomerReplied {
            body: "Cleared it, still spinning. Screenshot attached.".into()
        }
    );
    assert_eq!(reply.ticket.external_id, "215468893213459");

    let closed = event(Intercom, "conversation_admin_closed");
    assert_eq!(
        (closed.kind, closed.occurred_at),
        (TicketEventKind::Solved, Some(unix(1_796_170_220)))
    );
    assert_eq!(
        event(Intercom, "conversation_admin_opened").kind,
        TicketEventKind::Reopened
    );

    let rated = event(Intercom, "conversation_rating_added");
    let TicketEventKind::SatisfactionRated { score, comment } = &rated.kind else {
        panic!("{rated:?}");
    };
    assert_eq!((score.percent(), score.raw()), (75, "4"));
    assert_eq!(comment.as_deref(), Some("Took a day, but it works now."));
    for (rating, percent) in [(1, 0), (2, 25), (3, 50), (5, 100)] {
        let parsed = replaced(
            Intercom,
            "conversation_rating_added",
            "/data/item/conversation_rating",
            "rating",
            json!(rating),
        );
        assert!(matches!(parsed, Ok(Parsed::Event(TicketEvent {
            kind: TicketEventKind::SatisfactionRated { score, .. }, ..
        })) if score.percent() == percent));
    }
}

#[test]
fn intercom_ignored_and_broken_payloads() {
    assert_eq!(ignored(Intercom, "ping"), "ping");
    assert_eq!(
        ignored(Intercom, "conversation_admin_replied"),
        "conversation.admin.replied"
    );

    assert_missing(
        removed(Intercom, "conversation_user_created", "/data/item", "id"),
        "data.item.id",
    );
    assert_missing(
        removed(Intercom, "conversation_user_created", "", "topic"),
        "topic",
    );
    assert_missing(
        removed(Intercom, "conversation_user_created", "/data/item", "source"),
        "data.item.source",
    );
    assert_missing(
        removed(
            Intercom,
            "conversation_rating_added",
            "/data/item/conversation_rating",
            "rating",
        ),
        "data.item.conversation_rating.rating",
    );
    assert_missing(
        removed(
            Intercom,
            "conversation_user_replied",
            "/data/item",
            "conversation_parts",
        ),
        "data.item.conversation_parts.conversation_parts",
    );

    for bad in [json!(0), json!(6), json!("4"), json!(4.5)] {
        assert_invalid(
            replaced(
                Intercom,
                "conversation_rating_added",
                "/data/item/conversation_rating",
                "rating",
                bad,
            ),
            "data.item.conversation_rating.rating",
        );
    }
    assert_invalid(
        replaced(
            Intercom,
            "conversation_user_created",
            "/data/item",
            "type",
            json!("ticket"),
        ),
        "data.item.type",
    );
    assert_invalid(
        replaced(
            Intercom,
            "conversation_user_created",
            "/data/item/source/author",
            "email",
            json!(["a@b"]),
        ),
        "data.item.source.author.email",
    );
    assert_invalid(
        replaced(
            Intercom,
            "conversation_user_created",
            "",
            "created_at",
            json!("2026"),
        ),
        "created_at",
    );
    // A reply notification whose parts hold nothing by the customer.
    let no_customer_part = edited(Intercom, "conversation_user_replied", |v| {
        let parts = v
            .pointer_mut("/data/item/conversation_parts/conversation_parts")
            .unwrap();
        parts.as_array_mut().unwrap().pop();
    });
    assert_invalid(
        no_customer_part,
        "data.item.conversation_parts.conversation_parts",
    );
}

// --------------------------------------------------------------- Chatwoot

#[test]
fn chatwoot_conversation_created() {
    let event = event(Chatwoot, "conversation_created");
    assert_eq!(
        event,
        TicketEvent {
            kind: TicketEventKind::Created(NewTicket {
                subject: None,
                body: "Hello! My API key stopped working after I rotated it, every call returns 401.".into(),
                customer: TicketCustomer {
                    email: Some("joao.silva@tejo-labs.example".into()),
                    name: Some("João Silva".into()),
                    external_id: Some("7291".into()),
                },
                tags: vec!["api".into(), "auth".into()],
            }),
            vendor_event_id: None,
            ticket: TicketRef {
                external_id: "42".into(),
                url: None
            },
            occurred_at: Some(unix(1_796_162_282)),
        }
    );
    // Created before its first message: an empty body, not an error.
    let empty = replaced(Chatwoot, "conversation_created", "", "messages", json!([]));
    assert_eq!(new_ticket(empty).body, "");
    let subject = json!("Re: API key");
    let email = replaced(
        Chatwoot,
        "conversation_created",
        "/additional_attributes",
        "mail_subject",
        subject,
    );
    assert_eq!(new_ticket(email).subject.as_deref(), Some("Re: API key"));
}

#[test]
fn chatwoot_messages() {
    let reply = event(Chatwoot, "message_created_incoming");
    assert_eq!(
        reply,
        TicketEvent {
            kind: TicketEventKind::CustomerReplied {
                body: "I generated a fresh key but it still says 401 unauthorized.".into()
            },
            vendor_event_id: Some("message_created:90231".into()),
            ticket: TicketRef {
                external_id: "42".into(),
                url: None
            },
            occurred_at: Some(at("2026-12-01T22:10:12.044Z")),
        }
    );
    assert_eq!(ignored(Chatwoot, "message_created_outgoing"), "message_created");
    assert_eq!(
        ignored(Chatwoot, "message_created_private_note"),
        "message_created"
    );
    let numeric_type = replaced(Chatwoot, "message_created_incoming", "", "message_type", json!(0));
    assert!(matches!(numeric_type, Ok(Parsed::Event(_))));
    let updated = replaced(
        Chatwoot,
        "message_created_incoming",
        "",
        "event",
        json!("message_updated"),
    );
    assert!(matches!(updated, Ok(Parsed::Ignored { .. })));
}

#[test]
fn chatwoot_status_changes() {
    let solved = event(Chatwoot, "conversation_status_resolved");
    assert_eq!(
        (solved.kind, solved.ticket.external_id.as_str()),
        (TicketEventKind::Solved, "42")
    );
    assert_eq!(
        event(Chatwoot, "conversation_status_reopened").kind,
        TicketEventKind::Reopened
    );
    assert_eq!(
        ignored(Chatwoot, "conversation_status_pending_to_open"),
        "conversation_status_changed"
    );
    let unknown_previous = edited(Chatwoot, "conversation_status_reopened", |v| {
        v.as_object_mut().unwrap().remove("changed_attributes");
    });
    assert!(matches!(unknown_previous, Ok(Parsed::Ignored { .. })));
    // The same change repeated by `conversation_updated` is not a second signal.
    assert_eq!(ignored(Chatwoot, "conversation_updated"), "conversation_updated");
}

#[test]
fn chatwoot_csat() {
    let rated = event(Chatwoot, "csat_submitted");
    let TicketEventKind::SatisfactionRated { score, comment } = &rated.kind else {
        panic!("{rated:?}");
    };
    assert_eq!((score.percent(), score.raw()), (100, "5"));
    assert_eq!(comment.as_deref(), Some("Ana fixed it in minutes, great help!"));
    assert_eq!(rated.ticket.external_id, "42");
    assert_eq!(ignored(Chatwoot, "csat_survey_sent"), "message_created");
    assert_invalid(
        replaced(
            Chatwoot,
            "csat_submitted",
            "/content_attributes/submitted_values/csat_survey_response",
            "rating",
            json!(9),
        ),
        "content_attributes.submitted_values.csat_survey_response.rating",
    );
}

#[test]
fn chatwoot_ignored_and_broken_payloads() {
    assert_eq!(
        ignored(Chatwoot, "conversation_typing_on"),
        "conversation_typing_on"
    );
    assert_missing(removed(Chatwoot, "conversation_created", "", "id"), "id");
    assert_missing(removed(Chatwoot, "conversation_created", "", "event"), "event");
    assert_missing(
        removed(Chatwoot, "message_created_incoming", "/conversation", "id"),
        "conversation.id",
    );
    assert_missing(
        removed(Chatwoot, "conversation_status_resolved", "", "status"),
        "status",
    );
    assert_invalid(
        replaced(Chatwoot, "message_created_incoming", "", "private", json!("no")),
        "private",
    );
    assert_invalid(
        replaced(
            Chatwoot,
            "message_created_incoming",
            "",
            "message_type",
            json!(true),
        ),
        "message_type",
    );
    assert_invalid(
        replaced(Chatwoot, "conversation_created", "", "labels", json!({"a": 1})),
        "labels",
    );
    assert_invalid(
        replaced(Chatwoot, "conversation_created", "/meta", "sender", json!("x")),
        "meta.sender",
    );
    assert_invalid(
        edited(Chatwoot, "conversation_created", |v| {
            v["messages"][0]["message_type"] = json!([])
        }),
        "messages[0].message_type",
    );
}

// --------------------------------------------------------------- Standard

#[test]
fn standard_events() {
    let created = event(Standard, "ticket_created");
    assert_eq!(
        created,
        TicketEvent {
            kind: TicketEventKind::Created(NewTicket {
                subject: Some("Tracking page shows the wrong delivery date".into()),
                body: "My parcel FC-5521-NO says delivery on Dec 9, but the email said Dec 3. \
                       Which one is right?"
                    .into(),
                customer: TicketCustomer {
                    email: Some("ola.nordmann@example.no".into()),
                    name: Some("Ola Nordmann".into()),
                    external_id: Some("cus_881".into()),
                },
                tags: vec!["tracking".into(), "delivery-date".into()],
            }),
            vendor_event_id: None,
            ticket: TicketRef {
                external_id: "T-88213".into(),
                url: Some("https://help.fjordcargo.example/tickets/T-88213".into()),
            },
            occurred_at: Some(at("2026-12-01T22:00:00Z")),
        }
    );
    assert_eq!(
        event(Standard, "ticket_customer_replied").kind,
        TicketEventKind::CustomerReplied {
            body: "It arrived today after all, thanks anyway!".into()
        }
    );
    assert_eq!(event(Standard, "ticket_solved").kind, TicketEventKind::Solved);
    let reopened = event(Standard, "ticket_reopened");
    assert_eq!(reopened.kind, TicketEventKind::Reopened);
    assert_eq!(
        reopened.ticket,
        TicketRef {
            external_id: "88213".into(),
            url: None
        }
    );
    assert_eq!(reopened.occurred_at, Some(at("2026-12-02T08:05:13.250Z")));
    let escalated = event(Standard, "ticket_escalated");
    assert_eq!(escalated.kind, TicketEventKind::Escalated);
    assert_eq!(escalated.kind.name().as_str(), "escalated");
    assert_eq!(escalated.ticket.external_id, "T-88213");

    let rated = event(Standard, "ticket_satisfaction_rated");
    let TicketEventKind::SatisfactionRated { score, comment } = &rated.kind else {
        panic!("{rated:?}");
    };
    assert_eq!((score.percent(), score.raw()), (80, "80"));
    assert_eq!(comment.as_deref(), Some("Clear answer, a bit slow."));
    assert_eq!(rated.kind.name().as_str(), "satisfaction_rated");
    for edge in [0, 100] {
        let parsed = replaced(
            Standard,
            "ticket_satisfaction_rated",
            "/data",
            "score",
            json!(edge),
        );
        assert!(matches!(parsed, Ok(Parsed::Event(_))), "{edge}");
    }
}

#[test]
fn standard_ignored_and_broken_payloads() {
    assert_eq!(ignored(Standard, "ticket_assigned"), "ticket.assigned");
    assert_missing(
        removed(Standard, "ticket_created", "/data", "ticket_id"),
        "data.ticket_id",
    );
    assert_missing(removed(Standard, "ticket_created", "/data", "body"), "data.body");
    assert_missing(removed(Standard, "ticket_created", "", "timestamp"), "timestamp");
    assert_missing(removed(Standard, "ticket_solved", "", "data"), "data");
    assert_missing(
        removed(Standard, "ticket_customer_replied", "/data", "body"),
        "data.body",
    );
    assert_missing(
        removed(Standard, "ticket_satisfaction_rated", "/data", "score"),
        "data.score",
    );
    for bad in [json!(-1), json!(101), json!(80.5), json!("80"), json!(i64::MAX)] {
        assert_invalid(
            replaced(Standard, "ticket_satisfaction_rated", "/data", "score", bad),
            "data.score",
        );
    }
    assert_invalid(
        replaced(Standard, "ticket_created", "", "timestamp", json!(1_796_162_400)),
        "timestamp",
    );
    assert_invalid(
        replaced(Standard, "ticket_created", "/data", "url", json!("ftp://x")),
        "data.url",
    );
    // Null counts as absent.
    let null_body = replaced(Standard, "ticket_created", "/data", "body", Value::Null).unwrap_err();
    assert_missing(null_body, "data.body");
    assert_invalid(
        replaced(Standard, "ticket_created", "/data", "body", json!(["x"])),
        "data.body",
    );
    assert_invalid(
        replaced(Standard, "ticket_created", "/data/customer", "id", json!(1.5)),
        "data.customer.id",
    );
    assert_invalid(
        replaced(
            Standard,
            "ticket_created",
            "/data",
            "ticket_id",
            json!("x".repeat(MAX_ID_BYTES + 1)),
        ),
        "data.ticket_id",
    );
    assert_invalid(
        replaced(Standard, "ticket_created", "/data", "ticket_id", json!("   ")),
        "data.ticket_id",
    );
}

// ---------------------------------------------------------- every vendor

#[test]
fn malformed_empty_and_non_utf8_bodies_are_invalid_json() {
    let bodies: [&[u8]; 8] = [
        b"",
        b"   ",
        b"{",
        b"{\"type\": \"ticket.created\",}",
        b"not json at all",
        b"{\"type\": \"\xff\xfe\"}",
        b"\xef\xbb\xbf{}",
        b"{\"a\":1}{\"b\":2}",
    ];
    for kind in IntegrationKind::ALL {
        for body in bodies {
            let err = parse(kind, body).unwrap_err();
            assert_eq!(err.code(), "invalid_json", "{kind} {body:?}");
            assert_eq!(err.path(), None);
        }
    }
}

#[test]
fn a_root_that_is_not_an_object_is_named_dollar() {
    for kind in IntegrationKind::ALL {
        for body in ["[]", "null", "\"zen:event-type:ticket.created\"", "42"] {
            let err = parse(kind, body.as_bytes()).unwrap_err();
            assert_eq!(
                err,
                ParseError::InvalidField {
                    path: "$".into(),
                    reason: "expected an object"
                },
                "{kind}"
            );
        }
    }
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let deep = format!("{{\"type\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    for kind in IntegrationKind::ALL {
        assert_eq!(
            parse(kind, deep.as_bytes()).unwrap_err().code(),
            "invalid_json",
            "{kind}"
        );
    }
}

#[test]
fn oversized_bodies_are_refused_before_parsing() {
    let mut body = fixture(Standard, "ticket_created");
    body.resize(MAX_BODY_BYTES + 1, b' ');
    for kind in IntegrationKind::ALL {
        let err = parse(kind, &body).unwrap_err();
        assert_eq!(
            err,
            ParseError::BodyTooLarge {
                len: MAX_BODY_BYTES + 1
            }
        );
        assert_eq!(err.code(), "body_too_large");
    }
    // Exactly at the limit is still read.
    body.truncate(MAX_BODY_BYTES);
    assert!(matches!(parse(Standard, &body), Ok(Parsed::Event(_))));
}

#[test]
fn long_text_is_truncated_at_a_character_boundary() {
    let long = "ø".repeat(MAX_TEXT_BYTES); // two bytes each: twice the limit
    let cases = [
        (Standard, "ticket_created", "/data", "body"),
        (Zendesk, "ticket_created", "/detail", "description"),
        (Chatwoot, "message_created_incoming", "", "content"),
    ];
    for (kind, name, parent, key) in cases {
        let parsed = replaced(kind, name, parent, key, json!(long)).unwrap();
        let Parsed::Event(event) = parsed else {
            panic!("{kind}")
        };
        let body = match event.kind {
            TicketEventKind::Created(t) => t.body,
            TicketEventKind::CustomerReplied { body } => body,
            other => panic!("{other:?}"),
        };
        assert_eq!(body.len(), MAX_TEXT_BYTES, "{kind}");
        assert!(body.chars().all(|c| c == 'ø'));
    }
    let long_subject = replaced(
        Standard,
        "ticket_created",
        "/data",
        "subject",
        json!("s".repeat(5_000)),
    );
    assert_eq!(new_ticket(long_subject).subject.map(|s| s.len()), Some(1024));
}

#[test]
fn many_tags_are_capped_and_blank_ones_dropped() {
    let tags: Vec<String> = (0..500).map(|i| format!("tag-{i}")).collect();
    let ticket = new_ticket(replaced(Standard, "ticket_created", "/data", "tags", json!(tags)));
    assert_eq!(ticket.tags.len(), MAX_TAGS);
    assert_eq!(ticket.tags[0], "tag-0");
    let blank = new_ticket(replaced(
        Standard,
        "ticket_created",
        "/data",
        "tags",
        json!(["", "  ", "vip"]),
    ));
    assert_eq!(blank.tags, ["vip"]);
}

#[test]
fn nul_characters_never_reach_storage() {
    let ticket = new_ticket(replaced(
        Standard,
        "ticket_created",
        "/data",
        "body",
        json!("a\u{0}b"),
    ));
    assert_eq!(ticket.body, "ab");
    assert_invalid(
        replaced(Standard, "ticket_created", "/data", "ticket_id", json!("T\u{0}1")),
        "data.ticket_id",
    );
}

#[test]
fn ignored_event_types_are_echoed_only_in_part() {
    let parsed = replaced(Standard, "ticket_created", "", "type", json!("x".repeat(10_000))).unwrap();
    let Parsed::Ignored { event_type, .. } = parsed else {
        panic!()
    };
    assert_eq!(event_type.len(), 128);
}

#[test]
fn errors_name_paths_never_payload_content() {
    let secret_looking = "cus_SENSITIVE_VALUE_991";
    let err = replaced(
        Standard,
        "ticket_created",
        "/data",
        "ticket_id",
        json!({"x": secret_looking}),
    )
    .unwrap_err();
    assert!(!format!("{err} {err:?}").contains(secret_looking));
    let err = parse(Standard, format!("{{\"type\": \"{secret_looking}").as_bytes()).unwrap_err();
    assert!(!format!("{err} {err:?}").contains(secret_looking));
}

#[test]
fn try_from_is_the_same_entry_point() {
    let body = fixture(Intercom, "conversation_admin_closed");
    let via_try_from = Parsed::try_from(VendorPayload {
        kind: Intercom,
        body: &body,
    });
    assert_eq!(via_try_from, parse(Intercom, &body));
}
