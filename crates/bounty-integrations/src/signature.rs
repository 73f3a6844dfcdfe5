//! Inbound webhook signatures, per vendor, and the matching signer.
//!
//! A helpdesk proves a delivery is its own by an HMAC over the raw body
//! bytes, so verification runs on exactly the bytes that came off the wire,
//! never on re-serialized JSON (one reordered key or escaped slash would
//! break an honest signature). Each vendor has its own scheme:
//!
//! - **zendesk**: `X-Zendesk-Webhook-Signature` is base64 HMAC-SHA256 of
//!   `{ts}{body}`, `ts` being `X-Zendesk-Webhook-Signature-Timestamp`
//!   (RFC 3339) as sent;
//! - **intercom**: `X-Hub-Signature` is `sha1=` + hex HMAC-SHA1 of the body
//!   (hex of either case is accepted); no timestamp;
//! - **chatwoot**: `X-Chatwoot-Signature` is `sha256=` + hex HMAC-SHA256 of
//!   `{ts}.{body}`, `ts` being `X-Chatwoot-Timestamp` (unix seconds);
//! - **standard** ([Standard Webhooks](https://www.standardwebhooks.com/)):
//!   `webhook-signature` holds space-separated `v1,<base64>` entries, any one
//!   of which may match HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`
//!   (unix seconds) under the key inside the `whsec_…` secret.
//!
//! Where a vendor signs a timestamp it is part of the MAC, so it cannot be
//! moved without breaking the signature, and a delivery signed more than
//! [`TOLERANCE`] away from now (either way) is refused even when its MAC is
//! valid, which bounds replay. The tolerance is checked only after the MAC
//! matched, so a `timestamp_out_of_tolerance` in the logs always means a
//! genuine but stale (or clock-skewed) delivery, never a forgery. Intercom
//! signs no timestamp: its deliveries can only be deduplicated, not aged.
//!
//! Secrets rotate: [`verify`] takes every live secret, current first, and
//! says which one matched, so a caller can tell when the old one may go.
//! MACs are compared in constant time (`hmac`'s `verify_slice`). Errors name
//! the header concerned but never carry a secret, a signature or body bytes.
//!
//! Headers come in through the small [`Headers`] trait, so this crate needs
//! no HTTP types; the server wraps its header map in a newtype that
//! implements it.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bounty_core::clock::Timestamp;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use sha1::Sha1;
use sha2::Sha256;

use crate::entropy::{EntropyError, random_bytes};
use crate::kind::IntegrationKind;

#[cfg(test)]
mod tests;

type HmacSha256 = Hmac<Sha256>;
type HmacSha1 = Hmac<Sha1>;

/// How far a signed timestamp may be from now, in either direction.
pub const TOLERANCE: TimeDelta = TimeDelta::seconds(300);

/// Longest delivery id accepted; anything longer is a malformed header, not
/// a dedupe key to store.
pub const MAX_DELIVERY_ID_LEN: usize = 256;

/// The prefix of a Standard Webhooks secret.
pub const STANDARD_SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a secret minted by [`generate_secret`].
const SECRET_BYTES: usize = 32;

/// Header names, spelled as each vendor documents them. Lookups through
/// [`Headers`] ignore case.
pub mod header {
    /// Zendesk: base64 HMAC-SHA256 of timestamp + body.
    pub const ZENDESK_SIGNATURE: &str = "X-Zendesk-Webhook-Signature";
    /// Zendesk: the signed timestamp, RFC 3339.
    pub const ZENDESK_TIMESTAMP: &str = "X-Zendesk-Webhook-Signature-Timestamp";
    /// Zendesk: one id per invocation, the delivery id. (`X-Zendesk-Webhook-Id`
    /// names the webhook itself, the same for every delivery, so it is no
    /// dedupe key.)
    pub const ZENDESK_INVOCATION_ID: &str = "X-Zendesk-Webhook-Invocation-Id";
    /// Intercom: `sha1=` + hex HMAC-SHA1 of the body.
    pub const INTERCOM_SIGNATURE: &str = "X-Hub-Signature";
    /// Chatwoot: `sha256=` + hex HMAC-SHA256 of `{timestamp}.{body}`.
    pub const CHATWOOT_SIGNATURE: &str = "X-Chatwoot-Signature";
    /// Chatwoot: the signed timestamp, unix seconds.
    pub const CHATWOOT_TIMESTAMP: &str = "X-Chatwoot-Timestamp";
    /// Chatwoot: the delivery id.
    pub const CHATWOOT_DELIVERY: &str = "X-Chatwoot-Delivery";
    /// Standard Webhooks: the message id, also signed.
    pub const STANDARD_ID: &str = "webhook-id";
    /// Standard Webhooks: the signed timestamp, unix seconds.
    pub const STANDARD_TIMESTAMP: &str = "webhook-timestamp";
    /// Standard Webhooks: space-separated `v1,<base64>` signatures.
    pub const STANDARD_SIGNATURE: &str = "webhook-signature";
}

/// A read-only view of request headers: just enough to verify a delivery
/// without depending on an HTTP crate.
pub trait Headers {
    /// The value of the header called `name`, compared ASCII
    /// case-insensitively; the first one when the header is repeated.
    fn header(&self, name: &str) -> Option<&str>;
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Headers for [(K, V); N] {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<V: AsRef<str>> Headers for BTreeMap<String, V> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<H: Headers + ?Sized> Headers for &H {
    fn header(&self, name: &str) -> Option<&str> {
        (**self).header(name)
    }
}

/// A delivery that passed [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The vendor's id for this delivery, when it sends one: Zendesk's
    /// invocation id, Chatwoot's `X-Chatwoot-Delivery`, Standard's
    /// `webhook-id`. Intercom sends none (its body carries `notif_…`).
    pub delivery_id: Option<String>,
    /// Which of the secrets passed to [`verify`] matched: 0 is the current
    /// one, anything else means the sender still signs with an old secret.
    pub secret_index: usize,
    /// The signed timestamp, for vendors that sign one.
    pub signed_at: Option<Timestamp>,
}

/// Why a delivery was refused. At the webhook edge every variant but
/// [`SignatureError::NoSecrets`] and [`SignatureError::InvalidSecret`]
/// (our configuration, not the sender's fault) answers 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A required header is absent or blank.
    #[error("missing {header} header")]
    MissingHeader {
        /// The header, as the vendor spells it.
        header: &'static str,
    },
    /// A header is present but not in the vendor's format.
    #[error("malformed {header} header: {reason}")]
    MalformedHeader {
        /// The header, as the vendor spells it.
        header: &'static str,
        /// What is wrong with it, in a few fixed words.
        reason: &'static str,
    },
    /// The MAC matched but the signed timestamp is too far from now.
    #[error(
        "the {header} timestamp is {skew_secs}s from now, beyond the {}s tolerance",
        TOLERANCE.num_seconds()
    )]
    TimestampOutOfTolerance {
        /// The timestamp header.
        header: &'static str,
        /// Now minus the signed time, in whole seconds (negative: from the future).
        skew_secs: i64,
    },
    /// No signature in the header matches the body under any secret.
    #[error("no signature in {header} matches the body under any configured secret")]
    NoMatchingSignature {
        /// The signature header.
        header: &'static str,
    },
    /// No secret was passed: nothing can be verified.
    #[error("no webhook secret is configured")]
    NoSecrets,
    /// A configured secret cannot be used (empty, or for Standard Webhooks
    /// not `whsec_` + base64) and no other secret matched.
    #[error("configured webhook secret #{index} is unusable")]
    InvalidSecret {
        /// Its position in the secrets passed in.
        index: usize,
    },
}

impl SignatureError {
    /// A stable machine code for logs and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader { .. } => "missing_header",
            Self::MalformedHeader { .. } => "malformed_header",
            Self::TimestampOutOfTolerance { .. } => "timestamp_out_of_tolerance",
            Self::NoMatchingSignature { .. } => "no_matching_signature",
            Self::NoSecrets => "no_secrets",
            Self::InvalidSecret { .. } => "invalid_secret",
        }
    }

    /// The header concerned, if the error is about one.
    pub fn header(&self) -> Option<&'static str> {
        match self {
            Self::MissingHeader { header }
            | Self::MalformedHeader { header, .. }
            | Self::TimestampOutOfTolerance { header, .. }
            | Self::NoMatchingSignature { header } => Some(header),
            Self::NoSecrets | Self::InvalidSecret { .. } => None,
        }
    }
}

/// Checks that `body` was signed by the vendor `kind` under one of
/// `secrets` (current first, then older ones still valid during a
/// rotation), within [`TOLERANCE`] of `now` where the vendor signs a time.
///
/// `body` must be the raw request body. For Standard Webhooks each secret
/// is the `whsec_…` string's bytes (see [`standard_key`]); for the others it
/// is the vendor's secret string's bytes, used as the HMAC key as is.
pub fn verify<H: Headers + ?Sized>(
    kind: IntegrationKind,
    headers: &H,
    body: &[u8],
    secrets: &[&[u8]],
    now: Timestamp,
) -> Result<Verified, SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecrets);
    }
    match kind {
        IntegrationKind::Zendesk => verify_zendesk(headers, body, secrets, now),
        IntegrationKind::Intercom => verify_intercom(headers, body, secrets),
        IntegrationKind::Chatwoot => verify_chatwoot(headers, body, secrets, now),
        IntegrationKind::Standard => verify_standard(headers, body, secrets, now),
    }
}

fn verify_zendesk<H: Headers + ?Sized>(
    headers: &H,
    body: &[u8],
    secrets: &[&[u8]],
    now: Timestamp,
) -> Result<Verified, SignatureError> {
    use header::{ZENDESK_INVOCATION_ID, ZENDESK_SIGNATURE, ZENDESK_TIMESTAMP};
    let signature = required(headers, ZENDESK_SIGNATURE)?;
    let timestamp = required(headers, ZENDESK_TIMESTAMP)?;
    let signed_at = DateTime::parse_from_rfc3339(timestamp)
        .map_err(|_| malformed(ZENDESK_TIMESTAMP, "not an RFC 3339 timestamp"))?
        .with_timezone(&Utc);
    let expected = BASE64
        .decode(signature)
        .map_err(|_| malformed(ZENDESK_SIGNATURE, "not base64"))?;
    let delivery_id = delivery_id(headers, ZENDESK_INVOCATION_ID)?;

    let secret_index = matching_secret(secrets, ZENDESK_SIGNATURE, raw_key, |key| {
        mac_matches_any::<HmacSha256>(key, &[timestamp.as_bytes(), body], &[&expected])
    })?;
    within_tolerance(ZENDESK_TIMESTAMP, signed_at, now)?;
    Ok(Verified {
        delivery_id,
        secret_index,
        signed_at: Some(signed_at),
    })
}

fn verify_intercom<H: Headers + ?Sized>(
    headers: &H,
    body: &[u8],
    secrets: &[&[u8]],
) -> Result<Verified, SignatureError> {
    use header::INTERCOM_SIGNATURE;
    let signature = required(headers, INTERCOM_SIGNATURE)?;
    let expected = prefixed_hex(INTERCOM_SIGNATURE, signature, "sha1=", 20)?;

    let secret_index = matching_secret(secrets, INTERCOM_SIGNATURE, raw_key, |key| {
        mac_matches_any::<HmacSha1>(key, &[body], &[&expected])
    })?;
    Ok(Verified {
        delivery_id: None,
        secret_index,
        signed_at: None,
    })
}

fn verify_chatwoot<H: Headers + ?Sized>(
    headers: &H,
    body: &[u8],
    secrets: &[&[u8]],
    now: Timestamp,
) -> Result<Verified, SignatureError> {
    use header::{CHATWOOT_DELIVERY, CHATWOOT_SIGNATURE, CHATWOOT_TIMESTAMP};
    let signature = required(headers, CHATWOOT_SIGNATURE)?;
    let timestamp = required(headers, CHATWOOT_TIMESTAMP)?;
    let signed_at = unix_seconds(CHATWOOT_TIMESTAMP, timestamp)?;
    let expected = prefixed_hex(CHATWOOT_SIGNATURE, signature, "sha256=", 32)?;
    let delivery_id = delivery_id(headers, CHATWOOT_DELIVERY)?;

    let secret_index = matching_secret(secrets, CHATWOOT_SIGNATURE, raw_key, |key| {
        mac_matches_any::<HmacSha256>(key, &[timestamp.as_bytes(), b".", body], &[&expected])
    })?;
    within_tolerance(CHATWOOT_TIMESTAMP, signed_at, now)?;
    Ok(Verified {
        delivery_id,
        secret_index,
        signed_at: Some(signed_at),
    })
}

fn verify_standard<H: Headers + ?Sized>(
    headers: &H,
    body: &[u8],
    secrets: &[&[u8]],
    now: Timestamp,
) -> Result<Verified, SignatureError> {
    use header::{STANDARD_ID, STANDARD_SIGNATURE, STANDARD_TIMESTAMP};
    let id = required(headers, STANDARD_ID)?;
    if id.len() > MAX_DELIVERY_ID_LEN {
        return Err(malformed(STANDARD_ID, "longer than 256 bytes"));
    }
    let timestamp = required(headers, STANDARD_TIMESTAMP)?;
    let signed_at = unix_seconds(STANDARD_TIMESTAMP, timestamp)?;
    let signatures = required(headers, STANDARD_SIGNATURE)?;

    // Other schemes (`v1a,` for asymmetric keys, future versions) are not
    // ours to check; a `v1` entry that is not base64 just matches nothing.
    let v1: Vec<&str> = signatures
        .split_ascii_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .collect();
    if v1.is_empty() {
        return Err(malformed(STANDARD_SIGNATURE, "no v1 signature"));
    }
    let candidates: Vec<Vec<u8>> = v1
        .into_iter()
        .filter_map(|encoded| BASE64.decode(encoded).ok())
        .collect();

    let secret_index = matching_secret(secrets, STANDARD_SIGNATURE, standard_key_of, |key| {
        let parts: [&[u8]; 5] = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
        mac_matches_any::<HmacSha256>(key, &parts, &candidates)
    })?;
    within_tolerance(STANDARD_TIMESTAMP, signed_at, now)?;
    Ok(Verified {
        delivery_id: Some(id.to_owned()),
        secret_index,
        signed_at: Some(signed_at),
    })
}

/// The ids and time a signed delivery carries, for [`sign`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// The delivery id: Zendesk's invocation id, Chatwoot's delivery id,
    /// Standard's `webhook-id` (Intercom sends none, so it is unused there).
    pub id: &'a str,
    /// The signing time (unused for Intercom). ReplySent at one-second precision.
    pub timestamp: Timestamp,
}

/// The headers vendor `kind` would send with `body` signed under `secret`:
/// the signature, its timestamp and the delivery id, exactly as [`verify`]
/// reads them (callers add `Content-Type` themselves).
///
/// Used for tests, for the dashboard's "send a signed test delivery" and
/// for outbound Standard Webhooks. `secret` is in the same form [`verify`]
/// takes; an empty one, or a Standard one that is not `whsec_` + base64, is
/// [`SignatureError::InvalidSecret`].
pub fn sign(
    kind: IntegrationKind,
    secret: &[u8],
    body: &[u8],
    delivery: &Delivery<'_>,
) -> Result<Vec<(String, String)>, SignatureError> {
    let invalid = || SignatureError::InvalidSecret { index: 0 };
    let unix = delivery.timestamp.timestamp().to_string();
    let headers = match kind {
        IntegrationKind::Zendesk => {
            let key = raw_key(secret).ok_or_else(invalid)?;
            let timestamp = delivery.timestamp.to_rfc3339_opts(SecondsFormat::Secs, true);
            let mac = mac_of::<HmacSha256>(&key, &[timestamp.as_bytes(), body]).ok_or_else(invalid)?;
            vec![
                (header::ZENDESK_SIGNATURE, BASE64.encode(mac)),
                (header::ZENDESK_TIMESTAMP, timestamp),
                (header::ZENDESK_INVOCATION_ID, delivery.id.to_owned()),
            ]
        }
        IntegrationKind::Intercom => {
            let key = raw_key(secret).ok_or_else(invalid)?;
            let mac = mac_of::<HmacSha1>(&key, &[body]).ok_or_else(invalid)?;
            vec![(header::INTERCOM_SIGNATURE, format!("sha1={}", hex::encode(mac)))]
        }
        IntegrationKind::Chatwoot => {
            let key = raw_key(secret).ok_or_else(invalid)?;
            let mac = mac_of::<HmacSha256>(&key, &[unix.as_bytes(), b".", body]).ok_or_else(invalid)?;
            vec![
                (header::CHATWOOT_SIGNATURE, format!("sha256={}", hex::encode(mac))),
                (header::CHATWOOT_TIMESTAMP, unix),
                (header::CHATWOOT_DELIVERY, delivery.id.to_owned()),
            ]
        }
        IntegrationKind::Standard => {
            let key = standard_key(secret).ok_or_else(invalid)?;
            let parts: [&[u8]; 5] = [delivery.id.as_bytes(), b".", unix.as_bytes(), b".", body];
            let mac = mac_of::<HmacSha256>(&key, &parts).ok_or_else(invalid)?;
            vec![
                (header::STANDARD_ID, delivery.id.to_owned()),
                (header::STANDARD_TIMESTAMP, unix),
                (header::STANDARD_SIGNATURE, format!("v1,{}", BASE64.encode(mac))),
            ]
        }
    };
    Ok(headers
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect())
}

/// Fewest and most characters of an inbound secret a customer gives.
pub const GIVEN_SECRET_CHARS: (usize, usize) = (8, 512);

/// An inbound secret a customer gives (pasted from the helpdesk), trimmed
/// and checked: 8 to 512 characters, and for Standard Webhooks a
/// `whsec_` + base64 key. The error says what is wrong; the caller names
/// the field. The API and the dashboard both check with it.
pub fn check_given_secret(kind: IntegrationKind, given: &str) -> Result<String, &'static str> {
    let s = given.trim();
    let (min, max) = GIVEN_SECRET_CHARS;
    if s.len() < min || s.len() > max {
        return Err("must be 8 to 512 characters");
    }
    if kind == IntegrationKind::Standard && standard_key(s.as_bytes()).is_none() {
        return Err("must be a Standard Webhooks secret (`whsec_` + base64)");
    }
    Ok(s.to_owned())
}

/// A fresh random secret in the form `kind` uses: `whsec_` + base64 of 32
/// bytes for Standard Webhooks, 64 lower-case hex characters (32 bytes) for
/// the others.
///
/// Zendesk, Intercom and Chatwoot mint their own secrets and the customer
/// pastes them into Bounty; one minted here is for tests and for the
/// dashboard's signed test deliveries.
pub fn generate_secret(kind: IntegrationKind) -> Result<SecretString, EntropyError> {
    let bytes = zeroize::Zeroizing::new(random_bytes::<SECRET_BYTES>()?);
    let secret = match kind {
        IntegrationKind::Standard => format!("{STANDARD_SECRET_PREFIX}{}", BASE64.encode(*bytes)),
        IntegrationKind::Zendesk | IntegrationKind::Intercom | IntegrationKind::Chatwoot => {
            hex::encode(*bytes)
        }
    };
    Ok(SecretString::from(secret))
}

/// The HMAC key inside a Standard Webhooks secret: the base64 after
/// `whsec_`. A secret without the prefix is read as bare base64, as the
/// Standard Webhooks reference libraries do. `None` when it does not decode
/// or decodes to nothing.
pub fn standard_key(secret: &[u8]) -> Option<Vec<u8>> {
    let encoded = secret
        .strip_prefix(STANDARD_SECRET_PREFIX.as_bytes())
        .unwrap_or(secret);
    BASE64.decode(encoded).ok().filter(|key| !key.is_empty())
}

/// The HMAC key of a Zendesk, Intercom or Chatwoot secret: its bytes, as
/// long as there are some (an empty key is one anyone can sign with).
fn raw_key(secret: &[u8]) -> Option<Cow<'_, [u8]>> {
    (!secret.is_empty()).then_some(Cow::Borrowed(secret))
}

/// [`standard_key`], in the shape [`matching_secret`] takes.
fn standard_key_of(secret: &[u8]) -> Option<Cow<'_, [u8]>> {
    standard_key(secret).map(Cow::Owned)
}

/// The index of the first secret under which `matches` holds.
///
/// Every secret is tried. When none matches, an unusable secret is
/// reported ahead of a plain mismatch: a broken configuration must be
/// loud, not look like a stream of forgeries.
fn matching_secret<'s>(
    secrets: &[&'s [u8]],
    header: &'static str,
    key_of: impl Fn(&'s [u8]) -> Option<Cow<'s, [u8]>>,
    matches: impl Fn(&[u8]) -> bool,
) -> Result<usize, SignatureError> {
    let mut unusable = None;
    for (index, secret) in secrets.iter().enumerate() {
        match key_of(secret) {
            Some(key) if matches(key.as_ref()) => return Ok(index),
            Some(_) => {}
            None => {
                unusable.get_or_insert(index);
            }
        }
    }
    Err(match unusable {
        Some(index) => SignatureError::InvalidSecret { index },
        None => SignatureError::NoMatchingSignature { header },
    })
}

/// HMAC of the concatenated `parts` under `key`.
fn mac_of<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Option<Vec<u8>> {
    let mut mac = <M as KeyInit>::new_from_slice(key).ok()?;
    for part in parts {
        mac.update(part);
    }
    Some(mac.finalize().into_bytes().to_vec())
}

/// Whether any of `candidates` is the HMAC of `parts` under `key`, each
/// compared in constant time.
///
/// The body is hashed once per key, not once per candidate: a header
/// stuffed with signatures must not multiply the work done on a large body.
fn mac_matches_any<M: Mac + KeyInit + Clone>(
    key: &[u8],
    parts: &[&[u8]],
    candidates: &[impl AsRef<[u8]>],
) -> bool {
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return false;
    };
    for part in parts {
        mac.update(part);
    }
    candidates
        .iter()
        .any(|expected| mac.clone().verify_slice(expected.as_ref()).is_ok())
}

/// A header that must be there and not blank, trimmed.
fn required<'h, H: Headers + ?Sized>(headers: &'h H, name: &'static str) -> Result<&'h str, SignatureError> {
    optional(headers, name).ok_or(SignatureError::MissingHeader { header: name })
}

/// A header that may be absent; blank counts as absent.
fn optional<'h, H: Headers + ?Sized>(headers: &'h H, name: &str) -> Option<&'h str> {
    headers
        .header(name)
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// An optional delivery-id header, bounded in length.
fn delivery_id<H: Headers + ?Sized>(
    headers: &H,
    name: &'static str,
) -> Result<Option<String>, SignatureError> {
    match optional(headers, name) {
        Some(id) if id.len() > MAX_DELIVERY_ID_LEN => Err(malformed(name, "longer than 256 bytes")),
        id => Ok(id.map(str::to_owned)),
    }
}

/// `prefix` followed by the hex of a `len`-byte MAC; either hex case.
fn prefixed_hex(
    header: &'static str,
    value: &str,
    prefix: &str,
    len: usize,
) -> Result<Vec<u8>, SignatureError> {
    let encoded = value
        .strip_prefix(prefix)
        .ok_or(malformed(header, "missing its algorithm prefix"))?;
    let bytes = hex::decode(encoded).map_err(|_| malformed(header, "not hex"))?;
    if bytes.len() != len {
        return Err(malformed(header, "wrong signature length"));
    }
    Ok(bytes)
}

/// Unix seconds as vendors send them: ASCII digits only, no sign.
fn unix_seconds(header: &'static str, value: &str) -> Result<Timestamp, SignatureError> {
    const MAX_DIGITS: usize = 12;
    let not_unix = malformed(header, "not unix seconds");
    if value.len() > MAX_DIGITS || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_unix);
    }
    let seconds: i64 = value.parse().map_err(|_| not_unix.clone())?;
    DateTime::from_timestamp(seconds, 0).ok_or(not_unix)
}

fn within_tolerance(
    header: &'static str,
    signed_at: Timestamp,
    now: Timestamp,
) -> Result<(), SignatureError> {
    let skew = now.signed_duration_since(signed_at);
    if skew.abs() > TOLERANCE {
        return Err(SignatureError::TimestampOutOfTolerance {
            header,
            skew_secs: skew.num_seconds(),
        });
    }
    Ok(())
}

fn malformed(header: &'static str, reason: &'static str) -> SignatureError {
    SignatureError::MalformedHeader { header, reason }
}
