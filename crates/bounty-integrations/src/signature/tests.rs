//! Signature vectors per vendor: known answers computed outside Rust, then
//! the failure modes (tampering, wrong or rotated secrets, stale
//! timestamps, missing and malformed headers) for every kind.

use std::collections::BTreeMap;

use super::*;
use secrecy::ExposeSecret;

/// 2026-12-01T22:00:00Z.
const NOW_UNIX: i64 = 1_796_162_400;

fn now() -> Timestamp {
    DateTime::from_timestamp(NOW_UNIX, 0).unwrap()
}

fn secret_for(kind: IntegrationKind) -> &'static [u8] {
    match kind {
        IntegrationKind::Standard => b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        _ => b"current-secret-4f1c2d",
    }
}

fn old_secret_for(kind: IntegrationKind) -> &'static [u8] {
    match kind {
        IntegrationKind::Standard => b"whsec_b2xkLXNlY3JldC1rZXktYnl0ZXMtMDEyMzQ1Ng==",
        _ => b"previous-secret-9a8b7c",
    }
}

const BODY: &[u8] = br#"{"type":"ticket.created","data":{"ticket_id":"T-1001"}}"#;

fn signed(kind: IntegrationKind, secret: &[u8], at: Timestamp) -> Vec<(String, String)> {
    sign(
        kind,
        secret,
        BODY,
        &Delivery {
            id: "msg_2aBcD3eFgH4iJkL",
            timestamp: at,
        },
    )
    .unwrap()
}

fn without(headers: &[(String, String)], name: &str) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case(name))
        .cloned()
        .collect()
}

fn replaced(headers: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut out = without(headers, name);
    out.push((name.to_owned(), value.to_owned()));
    out
}

/// Kinds that sign a timestamp.
const TIMED: [IntegrationKind; 3] = [
    IntegrationKind::Zendesk,
    IntegrationKind::Chatwoot,
    IntegrationKind::Standard,
];

#[test]
fn zendesk_known_answer() {
    // python3: base64(hmac.new(secret, ts + body, sha256).digest())
    let body = br#"{"type":"zen:event-type:ticket.created","id":"01JEXAMPLE"}"#;
    let headers = [
        (
            "X-Zendesk-Webhook-Signature",
            "3UHf2lVllJJ7PjkVKyogaZIopHnuiOPZ3JtTiZ0u9eY=",
        ),
        ("X-Zendesk-Webhook-Signature-Timestamp", "2026-12-01T22:00:00Z"),
        ("X-Zendesk-Webhook-Invocation-Id", "8350205582"),
    ];
    let secret: &[u8] = b"dGhpc19pc19hX3plbmRlc2tfc2lnbmluZ19zZWNyZXQ";
    let verified = verify(IntegrationKind::Zendesk, &headers, body, &[secret], now()).unwrap();
    assert_eq!(verified.delivery_id.as_deref(), Some("8350205582"));
    assert_eq!(verified.secret_index, 0);
    assert_eq!(verified.signed_at, Some(now()));
    // The signer writes the same header for the same input.
    let ours = sign(
        IntegrationKind::Zendesk,
        secret,
        body,
        &Delivery {
            id: "8350205582",
            timestamp: now(),
        },
    )
    .unwrap();
    assert_eq!(ours.header(header::ZENDESK_SIGNATURE), Some(headers[0].1));
}

#[test]
fn intercom_known_answer_in_either_hex_case() {
    // python3: hmac.new(secret, body, sha1).hexdigest()
    let body = br#"{"type":"notification_event","topic":"ping"}"#;
    let secret: &[u8] = b"5ad6a5fa3e2b4c1d9e8f7a6b5c4d3e2f";
    let lower = "sha1=3d6949050478ae4aae3901602f3a7f7845e44b35";
    let upper = "sha1=3D6949050478AE4AAE3901602F3A7F7845E44B35";
    for value in [lower, upper] {
        let verified = verify(
            IntegrationKind::Intercom,
            &[("X-Hub-Signature", value)],
            body,
            &[secret],
            now(),
        )
        .unwrap();
        assert_eq!(
            verified,
            Verified {
                delivery_id: None,
                secret_index: 0,
                signed_at: None
            }
        );
    }
    let ours = sign(
        IntegrationKind::Intercom,
        secret,
        body,
        &Delivery {
            id: "",
            timestamp: now(),
        },
    )
    .unwrap();
    assert_eq!(ours, vec![("X-Hub-Signature".to_owned(), lower.to_owned())]);
}

#[test]
fn chatwoot_known_answer() {
    // python3: hmac.new(secret, ts + b"." + body, sha256).hexdigest()
    let body = br#"{"event":"message_created","id":1002}"#;
    let secret: &[u8] = b"cw_test_secret_4f1c2d";
    let headers = [
        (
            "X-Chatwoot-Signature",
            "sha256=6c83d95e226826e64238ce35697cad22cd94ca3eb5dd1f8b2a8921232efcd637",
        ),
        ("X-Chatwoot-Timestamp", "1796162400"),
        ("X-Chatwoot-Delivery", "5d1e0c6a-3c4f-4b8e-9f61-2d7a0b9e4c13"),
    ];
    let verified = verify(IntegrationKind::Chatwoot, &headers, body, &[secret], now()).unwrap();
    assert_eq!(
        verified.delivery_id.as_deref(),
        Some("5d1e0c6a-3c4f-4b8e-9f61-2d7a0b9e4c13")
    );
    assert_eq!(verified.signed_at, Some(now()));
}

#[test]
fn standard_known_answer_from_the_spec_libraries() {
    // The Standard Webhooks / Svix reference vector, recomputed with python3.
    let body = br#"{"test": 2432232314}"#;
    let headers = [
        ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
        ("webhook-timestamp", "1614265330"),
        (
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
    ];
    let secret: &[u8] = b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let then = DateTime::from_timestamp(1_614_265_330, 0).unwrap();
    let verified = verify(IntegrationKind::Standard, &headers, body, &[secret], then).unwrap();
    assert_eq!(
        verified.delivery_id.as_deref(),
        Some("msg_p5jXN8AQM9LWM0D4loKWxJek")
    );
    // Without the prefix the secret is read as bare base64, as the spec libraries do.
    let bare: &[u8] = b"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert!(verify(IntegrationKind::Standard, &headers, body, &[bare], then).is_ok());
    // A year later the same delivery is a replay.
    let err = verify(IntegrationKind::Standard, &headers, body, &[secret], now()).unwrap_err();
    assert_eq!(err.code(), "timestamp_out_of_tolerance");
}

#[test]
fn what_is_signed_verifies_and_a_tampered_body_does_not() {
    for kind in IntegrationKind::ALL {
        let headers = signed(kind, secret_for(kind), now());
        let verified = verify(kind, &headers, BODY, &[secret_for(kind)], now()).unwrap();
        assert_eq!(verified.secret_index, 0, "{kind}");
        let expected_id = (kind != IntegrationKind::Intercom).then(|| "msg_2aBcD3eFgH4iJkL".to_owned());
        assert_eq!(verified.delivery_id, expected_id, "{kind}");

        let mut tampered = BODY.to_vec();
        tampered[BODY.len() - 3] ^= 0x01;
        let err = verify(kind, &headers, &tampered, &[secret_for(kind)], now()).unwrap_err();
        assert_eq!(err.code(), "no_matching_signature", "{kind}");
        assert!(err.header().is_some(), "{kind}");
        // Re-serialized JSON is a different body: verification is on raw bytes.
        let reserialized =
            serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(BODY).unwrap()).unwrap();
        let spaced = [&reserialized[..], b" "].concat();
        assert!(
            verify(kind, &headers, &spaced, &[secret_for(kind)], now()).is_err(),
            "{kind}"
        );
    }
}

#[test]
fn a_wrong_secret_is_refused() {
    for kind in IntegrationKind::ALL {
        let headers = signed(kind, secret_for(kind), now());
        let err = verify(kind, &headers, BODY, &[old_secret_for(kind)], now()).unwrap_err();
        assert_eq!(
            err,
            SignatureError::NoMatchingSignature {
                header: signature_header(kind)
            },
            "{kind}"
        );
    }
}

fn signature_header(kind: IntegrationKind) -> &'static str {
    match kind {
        IntegrationKind::Zendesk => header::ZENDESK_SIGNATURE,
        IntegrationKind::Intercom => header::INTERCOM_SIGNATURE,
        IntegrationKind::Chatwoot => header::CHATWOOT_SIGNATURE,
        IntegrationKind::Standard => header::STANDARD_SIGNATURE,
    }
}

fn timestamp_header(kind: IntegrationKind) -> &'static str {
    match kind {
        IntegrationKind::Zendesk => header::ZENDESK_TIMESTAMP,
        IntegrationKind::Chatwoot => header::CHATWOOT_TIMESTAMP,
        IntegrationKind::Standard => header::STANDARD_TIMESTAMP,
        IntegrationKind::Intercom => unreachable!("Intercom signs no timestamp"),
    }
}

#[test]
fn rotated_secrets_match_only_when_passed() {
    for kind in IntegrationKind::ALL {
        // The sender still signs with the old secret.
        let headers = signed(kind, old_secret_for(kind), now());
        let both = [secret_for(kind), old_secret_for(kind)];
        let verified = verify(kind, &headers, BODY, &both, now()).unwrap();
        assert_eq!(verified.secret_index, 1, "{kind}");
        let err = verify(kind, &headers, BODY, &[secret_for(kind)], now()).unwrap_err();
        assert_eq!(err.code(), "no_matching_signature", "{kind}");
        // The sender moved to the new secret.
        let headers = signed(kind, secret_for(kind), now());
        assert_eq!(
            verify(kind, &headers, BODY, &both, now()).unwrap().secret_index,
            0,
            "{kind}"
        );
    }
}

#[test]
fn timestamps_within_tolerance_pass_and_beyond_it_fail() {
    for kind in TIMED {
        for offset in [-299, -1, 0, 1, 299, -300, 300] {
            let headers = signed(kind, secret_for(kind), now() + TimeDelta::seconds(offset));
            assert!(
                verify(kind, &headers, BODY, &[secret_for(kind)], now()).is_ok(),
                "{kind} {offset}"
            );
        }
        for offset in [-301, 301, -86_400, 86_400] {
            let headers = signed(kind, secret_for(kind), now() + TimeDelta::seconds(offset));
            let err = verify(kind, &headers, BODY, &[secret_for(kind)], now()).unwrap_err();
            assert_eq!(
                err,
                SignatureError::TimestampOutOfTolerance {
                    header: timestamp_header(kind),
                    skew_secs: -offset
                },
                "{kind} {offset}"
            );
        }
    }
}

#[test]
fn a_stale_timestamp_is_reported_only_for_a_genuine_signature() {
    for kind in TIMED {
        let headers = signed(kind, secret_for(kind), now() - TimeDelta::hours(2));
        let err = verify(kind, &headers, b"forged", &[secret_for(kind)], now()).unwrap_err();
        assert_eq!(err.code(), "no_matching_signature", "{kind}");
    }
}

#[test]
fn intercom_has_no_timestamp_to_age() {
    let headers = signed(
        IntegrationKind::Intercom,
        secret_for(IntegrationKind::Intercom),
        now(),
    );
    let next_year = now() + TimeDelta::days(365);
    let secrets = [secret_for(IntegrationKind::Intercom)];
    assert!(verify(IntegrationKind::Intercom, &headers, BODY, &secrets, next_year).is_ok());
}

#[test]
fn each_missing_required_header_is_named() {
    for kind in IntegrationKind::ALL {
        let headers = signed(kind, secret_for(kind), now());
        let required: &[&str] = match kind {
            IntegrationKind::Zendesk => &[header::ZENDESK_SIGNATURE, header::ZENDESK_TIMESTAMP],
            IntegrationKind::Intercom => &[header::INTERCOM_SIGNATURE],
            IntegrationKind::Chatwoot => &[header::CHATWOOT_SIGNATURE, header::CHATWOOT_TIMESTAMP],
            IntegrationKind::Standard => &[
                header::STANDARD_ID,
                header::STANDARD_TIMESTAMP,
                header::STANDARD_SIGNATURE,
            ],
        };
        for name in required {
            for headers in [without(&headers, name), replaced(&headers, name, "  ")] {
                let err = verify(kind, &headers, BODY, &[secret_for(kind)], now()).unwrap_err();
                assert_eq!(err, SignatureError::MissingHeader { header: name }, "{kind}");
                assert_eq!(err.code(), "missing_header");
                assert_eq!(err.header(), Some(*name));
            }
        }
    }
}

#[test]
fn delivery_id_headers_are_optional_for_zendesk_and_chatwoot() {
    for (kind, name) in [
        (IntegrationKind::Zendesk, header::ZENDESK_INVOCATION_ID),
        (IntegrationKind::Chatwoot, header::CHATWOOT_DELIVERY),
    ] {
        let headers = without(&signed(kind, secret_for(kind), now()), name);
        let verified = verify(kind, &headers, BODY, &[secret_for(kind)], now()).unwrap();
        assert_eq!(verified.delivery_id, None, "{kind}");
        let long = replaced(&headers, name, &"d".repeat(MAX_DELIVERY_ID_LEN + 1));
        let err = verify(kind, &long, BODY, &[secret_for(kind)], now()).unwrap_err();
        assert_eq!(err.code(), "malformed_header", "{kind}");
        assert_eq!(err.header(), Some(name), "{kind}");
    }
}

#[test]
fn malformed_headers_are_named() {
    let cases: &[(IntegrationKind, &str, &str)] = &[
        (IntegrationKind::Zendesk, header::ZENDESK_SIGNATURE, "not base64!"),
        (IntegrationKind::Zendesk, header::ZENDESK_TIMESTAMP, "1796162400"),
        (
            IntegrationKind::Zendesk,
            header::ZENDESK_TIMESTAMP,
            "2026-12-01 22:00",
        ),
        (
            IntegrationKind::Intercom,
            header::INTERCOM_SIGNATURE,
            "3d6949050478ae4aae3901602f3a7f7845e44b35",
        ),
        (
            IntegrationKind::Intercom,
            header::INTERCOM_SIGNATURE,
            "sha256=3d6949050478ae4aae3901602f3a7f78",
        ),
        (IntegrationKind::Intercom, header::INTERCOM_SIGNATURE, "sha1=zz"),
        (IntegrationKind::Intercom, header::INTERCOM_SIGNATURE, "sha1=3d69"),
        (
            IntegrationKind::Chatwoot,
            header::CHATWOOT_SIGNATURE,
            "6c83d95e226826e64238ce35697cad22",
        ),
        (
            IntegrationKind::Chatwoot,
            header::CHATWOOT_TIMESTAMP,
            "-1796162400",
        ),
        (
            IntegrationKind::Chatwoot,
            header::CHATWOOT_TIMESTAMP,
            "+1796162400",
        ),
        (
            IntegrationKind::Chatwoot,
            header::CHATWOOT_TIMESTAMP,
            "1796162400.5",
        ),
        (
            IntegrationKind::Chatwoot,
            header::CHATWOOT_TIMESTAMP,
            "99999999999999999999",
        ),
        (
            IntegrationKind::Standard,
            header::STANDARD_TIMESTAMP,
            "2026-12-01T22:00:00Z",
        ),
        (
            IntegrationKind::Standard,
            header::STANDARD_SIGNATURE,
            "v1a,aGVsbG8=",
        ),
        (
            IntegrationKind::Standard,
            header::STANDARD_SIGNATURE,
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
    ];
    for (kind, name, value) in cases {
        let headers = replaced(&signed(*kind, secret_for(*kind), now()), name, value);
        let err = verify(*kind, &headers, BODY, &[secret_for(*kind)], now()).unwrap_err();
        assert_eq!(err.code(), "malformed_header", "{kind} {name} {value}");
        assert_eq!(err.header(), Some(*name), "{kind} {name} {value}");
    }
}

#[test]
fn zendesk_accepts_any_rfc3339_offset() {
    let kind = IntegrationKind::Zendesk;
    let body = BODY;
    let timestamp = "2026-12-01T23:00:00.250+01:00";
    let key = secret_for(kind);
    let mac = mac_of::<HmacSha256>(key, &[timestamp.as_bytes(), body]).unwrap();
    let headers = [
        (header::ZENDESK_SIGNATURE.to_owned(), BASE64.encode(mac)),
        (header::ZENDESK_TIMESTAMP.to_owned(), timestamp.to_owned()),
    ];
    let verified = verify(kind, &headers, body, &[key], now()).unwrap();
    assert_eq!(verified.signed_at, Some(now() + TimeDelta::milliseconds(250)));
}

#[test]
fn standard_accepts_any_one_matching_v1_entry_and_ignores_other_schemes() {
    let kind = IntegrationKind::Standard;
    let good = signed(kind, secret_for(kind), now());
    let good_sig = good.header(header::STANDARD_SIGNATURE).unwrap().to_owned();
    let wrong = signed(kind, old_secret_for(kind), now());
    let wrong_sig = wrong.header(header::STANDARD_SIGNATURE).unwrap().to_owned();

    let both = format!("{wrong_sig} v1a,c2lnbmF0dXJl v1,not*base64 {good_sig}");
    let headers = replaced(&good, header::STANDARD_SIGNATURE, &both);
    assert!(verify(kind, &headers, BODY, &[secret_for(kind)], now()).is_ok());

    let only_wrong = format!("{wrong_sig} v1,not*base64 v1a,c2lnbmF0dXJl");
    let headers = replaced(&good, header::STANDARD_SIGNATURE, &only_wrong);
    let err = verify(kind, &headers, BODY, &[secret_for(kind)], now()).unwrap_err();
    assert_eq!(err.code(), "no_matching_signature");
}

#[test]
fn standard_signs_the_id_too() {
    let kind = IntegrationKind::Standard;
    let headers = replaced(
        &signed(kind, secret_for(kind), now()),
        header::STANDARD_ID,
        "msg_other",
    );
    let err = verify(kind, &headers, BODY, &[secret_for(kind)], now()).unwrap_err();
    assert_eq!(err.code(), "no_matching_signature");
}

#[test]
fn unusable_secrets_are_skipped_but_reported_when_nothing_matches() {
    for kind in IntegrationKind::ALL {
        let headers = signed(kind, secret_for(kind), now());
        let empty: &[u8] = b"";
        let verified = verify(kind, &headers, BODY, &[empty, secret_for(kind)], now()).unwrap();
        assert_eq!(verified.secret_index, 1, "{kind}");
        let err = verify(kind, &headers, BODY, &[old_secret_for(kind), empty], now()).unwrap_err();
        assert_eq!(err, SignatureError::InvalidSecret { index: 1 }, "{kind}");
        assert_eq!(err.header(), None);
        assert_eq!(
            verify(kind, &headers, BODY, &[], now()).unwrap_err(),
            SignatureError::NoSecrets
        );
        assert_eq!(
            sign(
                kind,
                b"",
                BODY,
                &Delivery {
                    id: "x",
                    timestamp: now()
                }
            )
            .unwrap_err()
            .code(),
            "invalid_secret"
        );
    }
    let kind = IntegrationKind::Standard;
    let headers = signed(kind, secret_for(kind), now());
    let not_base64: &[u8] = b"whsec_***";
    let err = verify(kind, &headers, BODY, &[not_base64], now()).unwrap_err();
    assert_eq!(err, SignatureError::InvalidSecret { index: 0 });
}

#[test]
fn header_names_are_case_insensitive_in_every_view() {
    for kind in IntegrationKind::ALL {
        let headers = signed(kind, secret_for(kind), now());
        let lower: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        let upper: BTreeMap<String, String> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
            .collect();
        let borrowed: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let secrets = [secret_for(kind)];
        assert!(verify(kind, &lower, BODY, &secrets, now()).is_ok(), "{kind}");
        assert!(verify(kind, &upper, BODY, &secrets, now()).is_ok(), "{kind}");
        assert!(
            verify(kind, &borrowed[..], BODY, &secrets, now()).is_ok(),
            "{kind}"
        );
        assert!(verify(kind, &&borrowed, BODY, &secrets, now()).is_ok(), "{kind}");
    }
}

#[test]
fn errors_never_show_secrets_signatures_or_body() {
    for kind in IntegrationKind::ALL {
        let headers = signed(kind, secret_for(kind), now());
        let stale = signed(kind, secret_for(kind), now() - TimeDelta::hours(1));
        let mut errors = vec![
            verify(kind, &headers, b"tampered", &[secret_for(kind)], now()).unwrap_err(),
            verify(kind, &headers, BODY, &[old_secret_for(kind)], now()).unwrap_err(),
            verify(kind, &headers, BODY, &[b"".as_slice()], now()).unwrap_err(),
            verify(
                kind,
                &without(&headers, signature_header(kind)),
                BODY,
                &[secret_for(kind)],
                now(),
            )
            .unwrap_err(),
        ];
        if kind != IntegrationKind::Intercom {
            errors.push(verify(kind, &stale, BODY, &[secret_for(kind)], now()).unwrap_err());
        }
        let signature = headers.header(signature_header(kind)).unwrap();
        for err in errors {
            let shown = format!("{err} {err:?}");
            for secret in [secret_for(kind), old_secret_for(kind)] {
                assert!(!shown.contains(std::str::from_utf8(secret).unwrap()), "{shown}");
            }
            assert!(!shown.contains(signature), "{shown}");
            assert!(
                !shown.contains("T-1001") && !shown.contains("tampered"),
                "{shown}"
            );
        }
    }
}

#[test]
fn generated_secrets_have_the_vendor_form_and_sign() {
    for kind in IntegrationKind::ALL {
        let a = generate_secret(kind).unwrap();
        let b = generate_secret(kind).unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        let text = a.expose_secret();
        match kind {
            IntegrationKind::Standard => {
                let key = standard_key(text.as_bytes()).unwrap();
                assert!(text.starts_with("whsec_"));
                assert_eq!(key.len(), 32);
            }
            _ => {
                assert_eq!(text.len(), 64);
                assert!(
                    text.bytes()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                );
            }
        }
        assert!(!format!("{a:?}").contains(text));
        let headers = signed(kind, text.as_bytes(), now());
        assert!(
            verify(kind, &headers, BODY, &[text.as_bytes()], now()).is_ok(),
            "{kind}"
        );
    }
}
