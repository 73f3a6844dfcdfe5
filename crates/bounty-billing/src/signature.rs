//! Stripe webhook signature verification.
//!
//! Stripe signs each webhook delivery with HMAC-SHA256 over `"{t}.{raw body}"` and sends the result
//! in the `Stripe-Signature` header as `t=TIMESTAMP,v1=HEX[,v1=HEX…][,v0=…]`. During a secret
//! rotation Stripe sends one `v1` per active secret, and we may hold several secrets ourselves, so a
//! delivery is authentic when ANY `v1` matches under ANY of our secrets. Comparison is constant
//! time (`hmac`'s `verify_slice`). The timestamp bounds replay: a delivery signed more than
//! `tolerance_secs` away from now, in either direction, is refused even when the MAC is valid.
//!
//! This module is pure: the caller passes the raw body (never re-serialised JSON) and the clock.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a `Stripe-Signature` header was refused. Every variant maps to HTTP 400 at the webhook edge;
/// [`StripeSignatureError::code`] is the stable machine code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeSignatureError {
    /// The header is absent or blank.
    #[error("missing Stripe-Signature header")]
    MissingHeader,
    /// The header is not a comma-separated list of `key=value` pairs, its timestamp is not an
    /// integer, or it carries more than one timestamp.
    #[error("malformed Stripe-Signature header: {0}")]
    MalformedHeader(&'static str),
    /// The header has no `v1` signature at all.
    #[error("Stripe-Signature header has no v1 signature")]
    NoV1Signature,
    /// No `v1` signature matches the payload under any configured secret.
    #[error("no v1 signature matches the payload")]
    NoMatchingSignature,
    /// The signature is valid but its timestamp is outside the tolerance window.
    #[error("signature timestamp {timestamp} is more than {tolerance_secs}s away from now ({now})")]
    TimestampOutOfTolerance {
        timestamp: i64,
        now: i64,
        tolerance_secs: i64,
    },
}

impl StripeSignatureError {
    /// A stable machine code for logs and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader => "signature_missing",
            Self::MalformedHeader(_) => "signature_malformed",
            Self::NoV1Signature => "signature_no_v1",
            Self::NoMatchingSignature => "signature_mismatch",
            Self::TimestampOutOfTolerance { .. } => "signature_timestamp_out_of_tolerance",
        }
    }
}

/// Verifies a `Stripe-Signature` `header` against the raw `payload`.
///
/// Passes when any `v1` signature matches under any of `secrets` and the signed timestamp is within
/// `tolerance_secs` of `now_unix` (Stripe's default tolerance is 300 s). Unknown schemes (`v0`, …)
/// are ignored; a `v1` value that is not hex simply matches nothing.
pub fn verify(
    header: &str,
    payload: &[u8],
    secrets: &[&str],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), StripeSignatureError> {
    let parsed = ParsedHeader::parse(header)?;

    let authentic = parsed.v1.iter().any(|signature| {
        secrets.iter().any(|secret| {
            let mac = mac_for(secret, parsed.timestamp, payload);
            // Decoding is not secret-dependent; the comparison inside `verify_slice` is constant time.
            hex::decode(signature).is_ok_and(|expected| mac.verify_slice(&expected).is_ok())
        })
    });
    if !authentic {
        return Err(StripeSignatureError::NoMatchingSignature);
    }

    // Checked after the MAC so that only authentic (replayed) deliveries report a stale timestamp.
    if now_unix.abs_diff(parsed.timestamp) > tolerance_secs.unsigned_abs() {
        return Err(StripeSignatureError::TimestampOutOfTolerance {
            timestamp: parsed.timestamp,
            now: now_unix,
            tolerance_secs,
        });
    }
    Ok(())
}

/// Produces a `Stripe-Signature` header value for `payload` signed with `secret` at time `t`, exactly
/// as Stripe does: `t={t},v1={hex hmac}`. Used by tests and by the fake Stripe.
pub fn sign(payload: &[u8], secret: &str, t: i64) -> String {
    let mac = mac_for(secret, t, payload);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn mac_for(secret: &str, t: i64, payload: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// The parts of a `Stripe-Signature` header that we act on.
struct ParsedHeader<'a> {
    timestamp: i64,
    v1: Vec<&'a str>,
}

impl<'a> ParsedHeader<'a> {
    fn parse(header: &'a str) -> Result<Self, StripeSignatureError> {
        if header.trim().is_empty() {
            return Err(StripeSignatureError::MissingHeader);
        }
        let mut timestamp = None;
        let mut v1 = Vec::new();
        for item in header.split(',') {
            let (key, value) = item
                .split_once('=')
                .ok_or(StripeSignatureError::MalformedHeader("expected key=value pairs"))?;
            match key.trim() {
                "t" => {
                    let t = value
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| StripeSignatureError::MalformedHeader("timestamp is not an integer"))?;
                    if timestamp.replace(t).is_some() {
                        return Err(StripeSignatureError::MalformedHeader("more than one timestamp"));
                    }
                }
                "v1" => v1.push(value.trim()),
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(StripeSignatureError::MalformedHeader("no timestamp"))?;
        if v1.is_empty() {
            return Err(StripeSignatureError::NoV1Signature);
        }
        Ok(Self { timestamp, v1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const OTHER: &str = "whsec_other_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","object":"event","type":"invoice.paid"}"#;
    const T: i64 = 1_700_000_000;
    const TOLERANCE: i64 = 300;

    /// A known-answer vector, computed independently with
    /// `printf '1700000000.{"id":"evt_1",…}' | openssl dgst -sha256 -hmac whsec_test_secret`.
    const KNOWN_V1: &str = "dfb4777aaaec4ea29ff455dd4df7fe6b2ef71096ad3a93a158db7e100109ea91";

    #[test]
    fn sign_matches_the_known_answer_vector() {
        assert_eq!(sign(BODY, SECRET, T), format!("t={T},v1={KNOWN_V1}"));
    }

    #[test]
    fn valid_signature_passes() {
        let header = sign(BODY, SECRET, T);
        assert_eq!(verify(&header, BODY, &[SECRET], T, TOLERANCE), Ok(()));
    }

    #[test]
    fn whitespace_and_unknown_schemes_are_tolerated() {
        let v1 = sign(BODY, SECRET, T).split_once(",v1=").unwrap().1.to_owned();
        let header = format!(" t = {T} , v0=deadbeef, v1= {v1} ,v9=x");
        assert_eq!(verify(&header, BODY, &[SECRET], T, TOLERANCE), Ok(()));
    }

    #[test]
    fn tampered_body_fails() {
        let header = sign(BODY, SECRET, T);
        let tampered = br#"{"id":"evt_1","object":"event","type":"invoice.void"}"#;
        assert_eq!(
            verify(&header, tampered, &[SECRET], T, TOLERANCE),
            Err(StripeSignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn wrong_secret_fails() {
        let header = sign(BODY, OTHER, T);
        assert_eq!(
            verify(&header, BODY, &[SECRET], T, TOLERANCE),
            Err(StripeSignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn timestamp_outside_tolerance_fails_in_both_directions() {
        let header = sign(BODY, SECRET, T);
        for now in [T + 301, T - 301] {
            let err = verify(&header, BODY, &[SECRET], now, TOLERANCE).unwrap_err();
            assert_eq!(
                err,
                StripeSignatureError::TimestampOutOfTolerance {
                    timestamp: T,
                    now,
                    tolerance_secs: TOLERANCE
                }
            );
            assert_eq!(err.code(), "signature_timestamp_out_of_tolerance");
        }
        for now in [T + 300, T - 300] {
            assert_eq!(verify(&header, BODY, &[SECRET], now, TOLERANCE), Ok(()));
        }
    }

    #[test]
    fn missing_header_fails() {
        for header in ["", "   "] {
            assert_eq!(
                verify(header, BODY, &[SECRET], T, TOLERANCE),
                Err(StripeSignatureError::MissingHeader)
            );
        }
    }

    #[test]
    fn garbled_headers_fail() {
        let cases = [
            (
                "garbage",
                StripeSignatureError::MalformedHeader("expected key=value pairs"),
            ),
            (
                "t=abc,v1=00",
                StripeSignatureError::MalformedHeader("timestamp is not an integer"),
            ),
            ("v1=00", StripeSignatureError::MalformedHeader("no timestamp")),
            ("t=1700000000,v0=00", StripeSignatureError::NoV1Signature),
        ];
        for (header, expected) in cases {
            assert_eq!(
                verify(header, BODY, &[SECRET], T, TOLERANCE),
                Err(expected),
                "{header}"
            );
        }
    }

    #[test]
    fn one_valid_among_two_v1_values_passes() {
        let valid = sign(BODY, SECRET, T);
        let valid_v1 = valid.split_once(",v1=").unwrap().1;
        let invalid_v1 = sign(BODY, OTHER, T).split_once(",v1=").unwrap().1.to_owned();
        for header in [
            format!("t={T},v1={invalid_v1},v1={valid_v1}"),
            format!("t={T},v1={valid_v1},v1={invalid_v1}"),
        ] {
            assert_eq!(verify(&header, BODY, &[SECRET], T, TOLERANCE), Ok(()));
        }
    }

    #[test]
    fn rotation_second_secret_valid_passes() {
        let header = sign(BODY, SECRET, T);
        assert_eq!(verify(&header, BODY, &[OTHER, SECRET], T, TOLERANCE), Ok(()));
    }

    #[test]
    fn non_hex_signature_matches_nothing() {
        let header = format!("t={T},v1=not-hex-zz");
        assert_eq!(
            verify(&header, BODY, &[SECRET], T, TOLERANCE),
            Err(StripeSignatureError::NoMatchingSignature)
        );
        let valid_v1 = sign(BODY, SECRET, T).split_once(",v1=").unwrap().1.to_owned();
        let header = format!("t={T},v1=not-hex-zz,v1={valid_v1}");
        assert_eq!(verify(&header, BODY, &[SECRET], T, TOLERANCE), Ok(()));
    }

    #[test]
    fn duplicate_timestamp_fails() {
        let valid_v1 = sign(BODY, SECRET, T).split_once(",v1=").unwrap().1.to_owned();
        let header = format!("t={T},t={},v1={valid_v1}", T + 1);
        let err = verify(&header, BODY, &[SECRET], T, TOLERANCE).unwrap_err();
        assert_eq!(
            err,
            StripeSignatureError::MalformedHeader("more than one timestamp")
        );
        assert_eq!(err.code(), "signature_malformed");
    }
}
