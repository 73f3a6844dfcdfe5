//! Secrets at rest: webhook and API secrets sealed under a rotating master key.
//!
//! A helpdesk's signing secret must be readable by Bounty (to compute
//! HMACs), so it cannot be hashed like an API key; it is encrypted instead,
//! with AES-256-GCM under a master key that lives in configuration, never
//! in the database. A stolen database then yields no usable secret.
//!
//! A sealed value is self-describing text, safe in a `text` column:
//!
//! ```text
//! v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>
//! ```
//!
//! - the nonce is 96 random bits, fresh for every seal (random nonces are
//!   safe for far more seals than a secrets table will ever see);
//! - the caller's `aad` ("additional authenticated data") binds the value
//!   to its row, e.g. `acct_…/int_…`: a ciphertext copied into another
//!   row, or another account, fails to open. The envelope's own
//!   `v1.<key id>.` prefix is authenticated with it. An integration's
//!   secrets are sealed and opened with [`Keyring::seal_for`] and
//!   [`Keyring::open_for`], which bind them to
//!   [`bounty_core::sealing_aad`];
//! - the key id names which master key sealed it, so keys can rotate: a
//!   [`Keyring`] holds the current key (used for every new seal) and the
//!   previous ones (still accepted by [`Keyring::open`]). A re-seal job
//!   walks the rows where [`Keyring::needs_rotation`] is true, calls
//!   [`Keyring::reseal`], and then the old key can be dropped from config.
//!
//! Keys never appear in `Debug` output or errors, and opened plaintext is
//! returned in a [`Zeroizing`] buffer that is wiped when dropped.

use std::fmt;
use std::str::FromStr;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use bounty_core::{AccountId, IntegrationId, SealPurpose, sealing_aad};
use zeroize::Zeroizing;

use crate::entropy::{EntropyError, random_bytes};

/// Bytes in a master key (AES-256).
pub const KEY_BYTES: usize = 32;
/// Bytes in a nonce (the 96 bits GCM is built for).
const NONCE_BYTES: usize = 12;
/// Bytes in a GCM tag.
const TAG_BYTES: usize = 16;
/// The format version this module writes and reads.
const VERSION: &str = "v1";
/// Longest key id.
const MAX_KEY_ID_LEN: usize = 32;
/// Longest sealed text [`Keyring::open`] looks at.
const MAX_SEALED_LEN: usize = 64 * 1024;

/// A 32-byte master key. Wiped from memory when dropped; `Debug` shows
/// nothing of it.
#[derive(Clone)]
pub struct SealKey(Zeroizing<[u8; KEY_BYTES]>);

impl SealKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, EntropyError> {
        Ok(SealKey(Zeroizing::new(random_bytes::<KEY_BYTES>()?)))
    }

    /// A key from its raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        SealKey(Zeroizing::new(bytes))
    }

    /// The key as standard base64, the form config takes (for a key
    /// generation command; show it once).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(*self.0))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&(*self.0).into())
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

impl FromStr for SealKey {
    type Err = KeyError;

    /// Reads hex (64 digits), or base64 (standard or URL-safe, padded or
    /// not) of exactly 32 bytes. Surrounding whitespace is ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(KeyError::Empty);
        }
        // 32 bytes in base64 are 43 or 44 characters, never an even run of
        // hex digits (padded base64 ends in `=`), so the two cannot be confused.
        let decoded = if s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(s).ok()
        } else {
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|e| e.decode(s).ok())
        };
        let decoded = Zeroizing::new(decoded.ok_or(KeyError::NotEncoded)?);
        let bytes: [u8; KEY_BYTES] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongLength { bytes: decoded.len() })?;
        Ok(SealKey::from_bytes(bytes))
    }
}

/// The name of a master key inside sealed values: 1 to 32 characters of
/// `A-Z a-z 0-9 _ -` (`k1`, `2026-06`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// The id as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn is_valid(s: &str) -> bool {
        (1..=MAX_KEY_ID_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }
}

impl FromStr for KeyId {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if KeyId::is_valid(s) {
            Ok(KeyId(s.to_owned()))
        } else {
            Err(KeyError::InvalidKeyId)
        }
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A master key or keyring in configuration is unusable. Never shows key
/// material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No key at all.
    #[error("the seal key is empty")]
    Empty,
    /// Neither hex nor base64.
    #[error("the seal key is neither 64 hex characters nor base64")]
    NotEncoded,
    /// Decodes, but not to 32 bytes.
    #[error("the seal key decodes to {bytes} bytes; AES-256 needs 32")]
    WrongLength {
        /// How many bytes it decoded to.
        bytes: usize,
    },
    /// A key id outside `[A-Za-z0-9_-]{1,32}`.
    #[error("a key id must be 1 to 32 characters of A-Z, a-z, 0-9, '_' or '-'")]
    InvalidKeyId,
    /// Two keys with one id.
    #[error("key id `{0}` appears twice in the keyring")]
    DuplicateKeyId(KeyId),
    /// One `id:key` entry of a keyring string is unusable.
    #[error("keyring entry {index} (0-based): {problem}")]
    Entry {
        /// Its position, the current key first.
        index: usize,
        /// What is wrong with it.
        #[source]
        problem: Box<KeyError>,
    },
}

/// Why a value could not be sealed or opened. Never shows key material or
/// plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not `v1.<key id>.<base64url>` of a plausible length.
    #[error("malformed sealed value: {reason}")]
    Malformed {
        /// What is wrong, in a few fixed words.
        reason: &'static str,
    },
    /// Sealed by a newer format than this build reads.
    #[error("sealed value has an unsupported format version")]
    UnsupportedVersion,
    /// Sealed under a key this keyring does not hold (dropped too early?).
    #[error("sealed under key `{0}`, which the keyring does not hold")]
    UnknownKeyId(KeyId),
    /// Authentication failed: tampered, sealed for another row (`aad`), or
    /// under another key with the same id.
    #[error("sealed value failed authentication")]
    Decrypt,
    /// The cipher refused to seal (a plaintext beyond AES-GCM's limits).
    #[error("the value could not be sealed")]
    Encrypt,
    /// No randomness for the nonce.
    #[error(transparent)]
    Entropy(#[from] EntropyError),
}

impl SealError {
    /// A stable machine code for logs.
    pub fn code(&self) -> &'static str {
        match self {
            SealError::Malformed { .. } => "seal_malformed",
            SealError::UnsupportedVersion => "seal_unsupported_version",
            SealError::UnknownKeyId(_) => "seal_unknown_key",
            SealError::Decrypt => "seal_decrypt_failed",
            SealError::Encrypt => "seal_encrypt_failed",
            SealError::Entropy(_) => "seal_entropy",
        }
    }
}

/// The current master key and the previous ones still accepted.
#[derive(Debug, Clone)]
pub struct Keyring {
    current: (KeyId, SealKey),
    previous: Vec<(KeyId, SealKey)>,
}

impl Keyring {
    /// A keyring of one key, which seals and opens.
    pub fn new(id: KeyId, key: SealKey) -> Self {
        Keyring {
            current: (id, key),
            previous: Vec::new(),
        }
    }

    /// Adds an older key that still opens (never seals).
    pub fn with_previous(mut self, id: KeyId, key: SealKey) -> Result<Self, KeyError> {
        if self.key(&id).is_some() {
            return Err(KeyError::DuplicateKeyId(id));
        }
        self.previous.push((id, key));
        Ok(self)
    }

    /// The id new seals are made under.
    pub fn current_id(&self) -> &KeyId {
        &self.current.0
    }

    fn key(&self, id: &KeyId) -> Option<&SealKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|(k, _)| k == id)
            .map(|(_, key)| key)
    }

    /// Seals `plaintext` under the current key, bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<String, SealError> {
        let (id, key) = &self.current;
        let nonce = random_bytes::<NONCE_BYTES>()?;
        let header = envelope_header(id);
        let full_aad = [header.as_bytes(), aad].concat();
        let ciphertext = key
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &full_aad,
                },
            )
            .map_err(|_| SealError::Encrypt)?;
        let mut blob = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        Ok(format!("{header}{}", URL_SAFE_NO_PAD.encode(blob)))
    }

    /// Seals `plaintext` as the `purpose` secret of integration `id` of
    /// `account`, bound to [`bounty_core::sealing_aad`].
    pub fn seal_for(
        &self,
        account: AccountId,
        id: IntegrationId,
        purpose: SealPurpose,
        plaintext: &[u8],
    ) -> Result<String, SealError> {
        self.seal(plaintext, sealing_aad(account, id, purpose).as_bytes())
    }

    /// Opens the `purpose` secret of integration `id` of `account`, sealed
    /// by [`Keyring::seal_for`].
    pub fn open_for(
        &self,
        account: AccountId,
        id: IntegrationId,
        purpose: SealPurpose,
        sealed: &str,
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        self.open(sealed, sealing_aad(account, id, purpose).as_bytes())
    }

    /// Opens a value sealed by [`Keyring::seal`] with the same `aad`, under
    /// whichever held key its id names.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let envelope = Envelope::parse(sealed)?;
        let key = self
            .key(&envelope.key_id)
            .ok_or_else(|| SealError::UnknownKeyId(envelope.key_id.clone()))?;
        let blob = URL_SAFE_NO_PAD
            .decode(envelope.body)
            .map_err(|_| malformed("body is not base64url"))?;
        if blob.len() < NONCE_BYTES + TAG_BYTES {
            return Err(malformed("too short"));
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| malformed("too short"))?;
        let full_aad = [envelope.header.as_bytes(), aad].concat();
        let plaintext = key
            .cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &full_aad,
                },
            )
            .map_err(|_| SealError::Decrypt)?;
        Ok(Zeroizing::new(plaintext))
    }

    /// Whether `sealed` was made under a key other than the current one, so
    /// a re-seal job should [`Keyring::reseal`] it. Reads only the envelope;
    /// an id this keyring does not hold also answers `true` (reseal then
    /// reports [`SealError::UnknownKeyId`]).
    /// [`Keyring::open`] for a secret that is text (an API key): `None`
    /// when it does not open or is not UTF-8. For callers that only need
    /// to know whether they may use it.
    pub fn open_text(&self, sealed: &str, aad: &[u8]) -> Option<String> {
        let plain = self.open(sealed, aad).ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }

    pub fn needs_rotation(&self, sealed: &str) -> Result<bool, SealError> {
        Ok(Envelope::parse(sealed)?.key_id != self.current.0)
    }

    /// Opens `sealed` and seals it again under the current key, same `aad`.
    pub fn reseal(&self, sealed: &str, aad: &[u8]) -> Result<String, SealError> {
        let plaintext = self.open(sealed, aad)?;
        self.seal(&plaintext, aad)
    }
}

impl FromStr for Keyring {
    type Err = KeyError;

    /// Reads `id:key[,id:key…]`, the current key first (the form of one
    /// environment variable, e.g. `BOUNTY_SEAL_KEYS=k2:…,k1:…`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(KeyError::Empty);
        }
        let mut keyring: Option<Keyring> = None;
        for (index, entry) in s.split(',').enumerate() {
            let in_entry = |problem| KeyError::Entry {
                index,
                problem: Box::new(problem),
            };
            let (id, key) = entry
                .trim()
                .split_once(':')
                .ok_or_else(|| in_entry(KeyError::InvalidKeyId))?;
            let id: KeyId = id.trim().parse().map_err(in_entry)?;
            let key: SealKey = key.parse().map_err(in_entry)?;
            keyring = Some(match keyring {
                None => Keyring::new(id, key),
                Some(ring) => ring.with_previous(id, key).map_err(in_entry)?,
            });
        }
        keyring.ok_or(KeyError::Empty)
    }
}

/// `v1.<key id>.`: the authenticated prefix of every sealed value.
fn envelope_header(id: &KeyId) -> String {
    format!("{VERSION}.{id}.")
}

/// A sealed value split into its parts, not yet decrypted.
struct Envelope<'a> {
    /// `v1.<key id>.`, exactly as sealed.
    header: &'a str,
    key_id: KeyId,
    body: &'a str,
}

impl<'a> Envelope<'a> {
    fn parse(sealed: &'a str) -> Result<Self, SealError> {
        if sealed.len() > MAX_SEALED_LEN {
            return Err(malformed("too long"));
        }
        let mut parts = sealed.splitn(3, '.');
        let (Some(version), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("expected version.key_id.body"));
        };
        if version != VERSION {
            let looks_versioned = version
                .strip_prefix('v')
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
            return Err(if looks_versioned && version.len() > 1 {
                SealError::UnsupportedVersion
            } else {
                malformed("expected version.key_id.body")
            });
        }
        let key_id: KeyId = key_id.parse().map_err(|_| malformed("invalid key id"))?;
        let header_len = version.len() + 1 + key_id.as_str().len() + 1;
        let header = sealed
            .get(..header_len)
            .ok_or(malformed("expected version.key_id.body"))?;
        Ok(Envelope { header, key_id, body })
    }
}

fn malformed(reason: &'static str) -> SealError {
    SealError::Malformed { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AAD: &[u8] = b"acct_01JEXAMPLE/int_01JZENDESK";

    fn key(byte: u8) -> SealKey {
        SealKey::from_bytes([byte; KEY_BYTES])
    }

    fn id(s: &str) -> KeyId {
        s.parse().unwrap()
    }

    fn ring() -> Keyring {
        Keyring::new(id("k1"), key(1))
    }

    #[test]
    fn round_trip_under_the_current_key() {
        let ring = ring();
        let sealed = ring.seal(b"zendesk-signing-secret", AAD).unwrap();
        assert!(sealed.starts_with("v1.k1."), "{sealed}");
        assert!(!sealed.contains("zendesk-signing-secret"));
        assert_eq!(
            ring.open(&sealed, AAD).unwrap().as_slice(),
            b"zendesk-signing-secret"
        );
        assert!(!ring.needs_rotation(&sealed).unwrap());
        // Empty secrets seal too.
        let empty = ring.seal(b"", AAD).unwrap();
        assert!(ring.open(&empty, AAD).unwrap().is_empty());
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let ring = ring();
        let a = ring.seal(b"same", AAD).unwrap();
        let b = ring.seal(b"same", AAD).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn another_row_cannot_open_it() {
        let ring = ring();
        let sealed = ring.seal(b"secret", AAD).unwrap();
        assert_eq!(
            ring.open(&sealed, b"acct_01JOTHER/int_01JZENDESK"),
            Err(SealError::Decrypt)
        );
        assert_eq!(ring.open(&sealed, b""), Err(SealError::Decrypt));
    }

    #[test]
    fn tampering_anywhere_fails() {
        let ring = ring();
        let sealed = ring.seal(b"secret", AAD).unwrap();
        let body_start = "v1.k1.".len();
        for at in body_start..sealed.len() {
            let mut bytes = sealed.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            let err = ring.open(&tampered, AAD).unwrap_err();
            // A changed last character can leave unused base64 bits non-zero: refused as base64.
            assert!(
                matches!(err, SealError::Decrypt | SealError::Malformed { .. }),
                "{at}: {err:?}"
            );
        }
        let truncated = &sealed[..sealed.len() - 4];
        assert!(ring.open(truncated, AAD).is_err());
    }

    #[test]
    fn the_key_id_is_authenticated() {
        // Two ids for the same key bytes: relabeling still fails, because
        // the envelope prefix is part of the authenticated data.
        let ring = ring().with_previous(id("k0"), key(1)).unwrap();
        let sealed = ring.seal(b"secret", AAD).unwrap();
        let relabeled = sealed.replacen("v1.k1.", "v1.k0.", 1);
        assert_eq!(ring.open(&relabeled, AAD), Err(SealError::Decrypt));
    }

    #[test]
    fn unknown_key_ids_and_malformed_values_are_named() {
        let sealed = Keyring::new(id("k9"), key(9)).seal(b"secret", AAD).unwrap();
        assert_eq!(ring().open(&sealed, AAD), Err(SealError::UnknownKeyId(id("k9"))));
        assert_eq!(ring().open(&sealed, AAD).unwrap_err().code(), "seal_unknown_key");
        for bad in [
            "",
            "v1",
            "v1.k1",
            "v1..AAAA",
            "v1.k 1.AAAA",
            "v1.k1.!!!!",
            "v1.k1.AAAA",
            "plain-secret",
        ] {
            assert!(
                matches!(ring().open(bad, AAD), Err(SealError::Malformed { .. })),
                "{bad}"
            );
        }
        assert_eq!(ring().open("v2.k1.AAAA", AAD), Err(SealError::UnsupportedVersion));
        assert!(matches!(
            ring().open(&"v1.k1.".repeat(20_000), AAD),
            Err(SealError::Malformed { .. })
        ));
    }

    #[test]
    fn rotation_keeps_old_values_open_and_reseals_under_the_new_key() {
        let old_ring = ring();
        let sealed_old = old_ring.seal(b"intercom-client-secret", AAD).unwrap();

        let rotated = Keyring::new(id("k2"), key(2))
            .with_previous(id("k1"), key(1))
            .unwrap();
        assert_eq!(rotated.current_id(), &id("k2"));
        assert_eq!(
            rotated.open(&sealed_old, AAD).unwrap().as_slice(),
            b"intercom-client-secret"
        );
        assert!(rotated.needs_rotation(&sealed_old).unwrap());

        let resealed = rotated.reseal(&sealed_old, AAD).unwrap();
        assert!(resealed.starts_with("v1.k2."));
        assert!(!rotated.needs_rotation(&resealed).unwrap());
        // Once k1 is dropped, only the re-sealed value still opens.
        let only_new = Keyring::new(id("k2"), key(2));
        assert_eq!(
            only_new.open(&resealed, AAD).unwrap().as_slice(),
            b"intercom-client-secret"
        );
        assert_eq!(
            only_new.open(&sealed_old, AAD),
            Err(SealError::UnknownKeyId(id("k1")))
        );
        // Fresh seals always use the current key.
        assert!(rotated.seal(b"new", AAD).unwrap().starts_with("v1.k2."));
    }

    #[test]
    fn keys_parse_from_hex_or_base64_and_errors_say_why() {
        let bytes: Vec<u8> = (0..32).collect();
        let hex_text = hex::encode(&bytes);
        let b64 = STANDARD.encode(&bytes);
        let from_hex: SealKey = hex_text.parse().unwrap();
        let from_b64: SealKey = format!("  {b64}\n").parse().unwrap();
        let from_url: SealKey = URL_SAFE_NO_PAD.encode(&bytes).parse().unwrap();
        assert_eq!(*from_hex.0, *from_b64.0);
        assert_eq!(*from_hex.0, *from_url.0);
        assert_eq!(from_hex.to_base64().as_str(), b64);

        assert_eq!("".parse::<SealKey>().unwrap_err(), KeyError::Empty);
        assert_eq!("   ".parse::<SealKey>().unwrap_err(), KeyError::Empty);
        assert_eq!("not a key!".parse::<SealKey>().unwrap_err(), KeyError::NotEncoded);
        assert_eq!(
            STANDARD.encode([7u8; 16]).parse::<SealKey>().unwrap_err(),
            KeyError::WrongLength { bytes: 16 }
        );
        assert_eq!(
            hex::encode([7u8; 33]).parse::<SealKey>().unwrap_err(),
            KeyError::WrongLength { bytes: 33 }
        );
    }

    #[test]
    fn debug_and_errors_never_show_key_bytes() {
        let bytes = [0xAB_u8; KEY_BYTES];
        let key = SealKey::from_bytes(bytes);
        let ring = Keyring::new(id("k1"), key.clone());
        for shown in [format!("{key:?}"), format!("{ring:?}")] {
            assert!(
                !shown.contains("ab") && !shown.contains("AB") && !shown.contains("171"),
                "{shown}"
            );
            assert!(!shown.contains(STANDARD.encode(bytes).as_str()), "{shown}");
        }
        let secret_text = format!("k1:{}", hex::encode([1u8; 31]));
        let err = secret_text.parse::<Keyring>().unwrap_err();
        assert!(!err.to_string().contains(&hex::encode([1u8; 31])), "{err}");
    }

    #[test]
    fn keyrings_parse_from_one_string() {
        let k2 = STANDARD.encode([2u8; 32]);
        let k1 = hex::encode([1u8; 32]);
        let ring: Keyring = format!("k2:{k2}, k1:{k1}").parse().unwrap();
        assert_eq!(ring.current_id(), &id("k2"));
        let sealed_old = Keyring::new(id("k1"), key(1)).seal(b"x", AAD).unwrap();
        assert_eq!(ring.open(&sealed_old, AAD).unwrap().as_slice(), b"x");

        assert_eq!(" ".parse::<Keyring>().unwrap_err(), KeyError::Empty);
        let no_id = k1.parse::<Keyring>().unwrap_err();
        assert_eq!(
            no_id,
            KeyError::Entry {
                index: 0,
                problem: Box::new(KeyError::InvalidKeyId)
            }
        );
        assert_eq!(
            no_id.to_string(),
            "keyring entry 0 (0-based): a key id must be 1 to 32 characters of A-Z, a-z, 0-9, '_' or '-'"
        );
        let short = format!("k2:{k2},k1:abcd").parse::<Keyring>().unwrap_err();
        assert_eq!(
            short,
            KeyError::Entry {
                index: 1,
                problem: Box::new(KeyError::WrongLength { bytes: 2 })
            }
        );
        let dup = format!("k1:{k1},k1:{k2}").parse::<Keyring>().unwrap_err();
        assert_eq!(
            dup,
            KeyError::Entry {
                index: 1,
                problem: Box::new(KeyError::DuplicateKeyId(id("k1")))
            }
        );
        let bad_id = format!("k.1:{k1}").parse::<Keyring>().unwrap_err();
        assert_eq!(
            bad_id,
            KeyError::Entry {
                index: 0,
                problem: Box::new(KeyError::InvalidKeyId)
            }
        );
        assert!(
            Keyring::new(id("k1"), key(1))
                .with_previous(id("k1"), key(2))
                .is_err()
        );
    }

    #[test]
    fn key_ids_are_checked() {
        for good in ["k1", "2026-06", "A_b-9", &"x".repeat(32)] {
            assert!(good.parse::<KeyId>().is_ok(), "{good}");
        }
        for bad in ["", "k.1", "k 1", "é", &"x".repeat(33)] {
            assert_eq!(bad.parse::<KeyId>(), Err(KeyError::InvalidKeyId), "{bad}");
        }
    }

    #[test]
    fn generated_keys_differ() {
        let a = SealKey::generate().unwrap();
        let b = SealKey::generate().unwrap();
        assert_ne!(*a.0, *b.0);
    }
}
