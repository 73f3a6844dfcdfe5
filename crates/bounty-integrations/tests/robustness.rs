//! Property tests: no input panics the parsers, the verifier or the
//! keyring, and whatever the parsers accept respects the documented limits.
//!
//! Three kinds of parser input: random bytes, random JSON, and real
//! fixtures with one field swapped for random JSON (which reaches deep into
//! each vendor's parser, where random JSON alone rarely gets).

use std::collections::BTreeMap;

use bounty_integrations::parse::{
    MAX_ID_BYTES, MAX_SHORT_TEXT_BYTES, MAX_TAGS, MAX_TEXT_BYTES, MAX_URL_BYTES,
};
use bounty_integrations::seal::KEY_BYTES;
use bounty_integrations::{
    Delivery, IntegrationKind, KeyId, Keyring, Parsed, SealKey, TicketEvent, TicketEventKind, parse, sign,
    verify,
};
use chrono::{DateTime, TimeDelta};
use proptest::prelude::*;
use serde_json::Value;

const FIXTURES: &[(IntegrationKind, &str)] = &[
    (IntegrationKind::Zendesk, "ticket_created"),
    (IntegrationKind::Zendesk, "status_reopened"),
    (IntegrationKind::Zendesk, "comment_added_by_requester"),
    (IntegrationKind::Zendesk, "satisfaction_good"),
    (IntegrationKind::Intercom, "conversation_user_created"),
    (IntegrationKind::Intercom, "conversation_user_replied"),
    (IntegrationKind::Intercom, "conversation_rating_added"),
    (IntegrationKind::Chatwoot, "conversation_created"),
    (IntegrationKind::Chatwoot, "message_created_incoming"),
    (IntegrationKind::Chatwoot, "conversation_status_reopened"),
    (IntegrationKind::Chatwoot, "csat_submitted"),
    (IntegrationKind::Standard, "ticket_created"),
    (IntegrationKind::Standard, "ticket_satisfaction_rated"),
];

fn fixture(kind: IntegrationKind, name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/{}/{name}.json",
        env!("CARGO_MANIFEST_DIR"),
        kind.as_str()
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_slice(&bytes).unwrap()
}

/// JSON pointers to every value inside `value`, the root excluded.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                out.push(path.clone());
                pointers(child, path, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let path = format!("{at}/{i}");
                out.push(path.clone());
                pointers(child, path, out);
            }
        }
        _ => {}
    }
}

fn kind() -> impl Strategy<Value = IntegrationKind> {
    prop::sample::select(IntegrationKind::ALL.to_vec())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        prop::sample::select(vec![
            "open",
            "resolved",
            "SOLVED",
            "incoming",
            "input_csat",
            "good",
            "conversation",
            "user",
            "ticket.created",
            "zen:event-type:ticket.created",
            "conversation.user.replied",
            "message_created",
            "2026-12-01T22:00:00Z",
            "<p>hi</p>",
            "&amp;",
            "",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "type",
                    "topic",
                    "event",
                    "id",
                    "data",
                    "item",
                    "detail",
                    "status",
                    "current",
                    "previous",
                    "ticket_id",
                    "body",
                    "score",
                    "rating",
                    "messages",
                    "message_type",
                    "content",
                    "author",
                    "is_staff",
                    "conversation",
                    "timestamp",
                    "created_at",
                    "tags",
                    "x",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6,
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Whatever a parser lets through is bounded as `parse` documents.
fn assert_bounded(event: &TicketEvent) {
    let ids = [Some(&event.ticket.external_id), event.vendor_event_id.as_ref()];
    for id in ids.into_iter().flatten() {
        assert!(!id.is_empty() && !id.contains('\0'));
    }
    assert!(event.ticket.external_id.len() <= MAX_ID_BYTES);
    assert!(event.ticket.url.as_ref().is_none_or(|u| u.len() <= MAX_URL_BYTES));
    match &event.kind {
        TicketEventKind::Created(ticket) => {
            assert!(ticket.body.len() <= MAX_TEXT_BYTES && !ticket.body.contains('\0'));
            assert!(
                ticket
                    .subject
                    .as_ref()
                    .is_none_or(|s| s.len() <= MAX_SHORT_TEXT_BYTES && !s.is_empty())
            );
            assert!(ticket.tags.len() <= MAX_TAGS);
            assert!(
                ticket
                    .tags
                    .iter()
                    .all(|t| !t.is_empty() && t.len() <= MAX_SHORT_TEXT_BYTES)
            );
            let customer = &ticket.customer;
            for value in [&customer.email, &customer.external_id].into_iter().flatten() {
                assert!(value.len() <= MAX_ID_BYTES && !value.is_empty());
            }
        }
        TicketEventKind::CustomerReplied { body } => assert!(body.len() <= MAX_TEXT_BYTES),
        TicketEventKind::SatisfactionRated { score, comment } => {
            assert!(score.percent() <= 100);
            assert!(comment.as_ref().is_none_or(|c| c.len() <= MAX_TEXT_BYTES));
        }
        TicketEventKind::Solved | TicketEventKind::Reopened | TicketEventKind::Escalated => {}
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic_the_parsers(
        kind in kind(),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        if let Ok(Parsed::Event(event)) = parse(kind, &body) {
            assert_bounded(&event);
        }
    }

    #[test]
    fn random_json_never_panics_the_parsers(kind in kind(), value in json_value()) {
        let body = serde_json::to_vec(&value).unwrap();
        if let Ok(Parsed::Event(event)) = parse(kind, &body) {
            assert_bounded(&event);
        }
    }

    #[test]
    fn fixtures_with_one_field_replaced_never_panic(
        which in 0..FIXTURES.len(),
        pick in any::<prop::sample::Index>(),
        replacement in json_value(),
    ) {
        let (kind, name) = FIXTURES[which];
        let mut value = fixture(kind, name);
        let mut paths = Vec::new();
        pointers(&value, String::new(), &mut paths);
        let target = pick.get(&paths).clone();
        if let Some(slot) = value.pointer_mut(&target) {
            *slot = replacement;
        }
        let body = serde_json::to_vec(&value).unwrap();
        match parse(kind, &body) {
            Ok(Parsed::Event(event)) => assert_bounded(&event),
            Ok(Parsed::Ignored { event_type, .. }) => prop_assert!(event_type.len() <= 128),
            Err(err) => prop_assert!(!err.code().is_empty()),
        }
    }

    #[test]
    fn random_headers_and_bodies_never_panic_the_verifier(
        kind in kind(),
        headers in prop::collection::btree_map(
            prop::sample::select(vec![
                "X-Zendesk-Webhook-Signature", "X-Zendesk-Webhook-Signature-Timestamp",
                "X-Zendesk-Webhook-Invocation-Id", "X-Hub-Signature", "X-Chatwoot-Signature",
                "X-Chatwoot-Timestamp", "X-Chatwoot-Delivery", "webhook-id", "webhook-timestamp",
                "webhook-signature", "content-type",
            ]).prop_map(str::to_owned),
            prop_oneof![
                ".{0,80}",
                "sha(1|256)=[0-9a-fA-F]{0,70}",
                "(v1|v1a|v2),[A-Za-z0-9+/=]{0,50}( v1,[A-Za-z0-9+/=]{0,50}){0,3}",
                "[0-9]{1,14}",
                "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9](Z|[+-][01][0-9]:00)",
            ],
            0..8,
        ),
        body in prop::collection::vec(any::<u8>(), 0..256),
        secrets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..48), 0..4),
        now in 0i64..4_000_000_000,
    ) {
        let secrets: Vec<&[u8]> = secrets.iter().map(Vec::as_slice).collect();
        let now = DateTime::from_timestamp(now, 0).unwrap();
        if let Err(err) = verify(kind, &headers, &body, &secrets, now) {
            prop_assert!(!err.code().is_empty());
        }
    }

    #[test]
    fn what_is_signed_always_verifies(
        kind in kind(),
        body in prop::collection::vec(any::<u8>(), 0..512),
        key in prop::collection::vec(any::<u8>(), 1..64),
        id in "[A-Za-z0-9_-]{1,64}",
        signed_at in 1_000_000_000i64..4_000_000_000,
        skew in -300i64..=300,
    ) {
        // Standard secrets are base64 of the key; the others use the bytes as they are.
        let secret = match kind {
            IntegrationKind::Standard => {
                use base64::Engine as _;
                format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(&key)).into_bytes()
            }
            _ => key,
        };
        let timestamp = DateTime::from_timestamp(signed_at, 0).unwrap();
        let headers = sign(kind, &secret, &body, &Delivery { id: &id, timestamp }).unwrap();
        let headers: BTreeMap<String, String> = headers.into_iter().collect();
        let now = timestamp + TimeDelta::seconds(skew);
        let verified = verify(kind, &headers, &body, &[secret.as_slice()], now);
        prop_assert!(verified.is_ok(), "{:?}", verified);
    }

    #[test]
    fn sealing_round_trips_and_random_text_never_panics_open(
        plaintext in prop::collection::vec(any::<u8>(), 0..256),
        aad in prop::collection::vec(any::<u8>(), 0..64),
        other_aad in prop::collection::vec(any::<u8>(), 0..64),
        key in any::<[u8; KEY_BYTES]>(),
        garbage in "(v1\\.k1\\.)?[A-Za-z0-9_.-]{0,80}",
    ) {
        let ring = Keyring::new("k1".parse::<KeyId>().unwrap(), SealKey::from_bytes(key));
        let sealed = ring.seal(&plaintext, &aad).unwrap();
        let opened = ring.open(&sealed, &aad).unwrap();
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
        if other_aad != aad {
            prop_assert!(ring.open(&sealed, &other_aad).is_err());
        }
        let _ = ring.open(&garbage, &aad);
        let _ = ring.needs_rotation(&garbage);
    }
}
