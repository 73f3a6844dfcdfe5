//! API keys: generation, parsing and hashing.
//!
//! A key looks like `bk_live_` (or `bk_test_`) followed by 32 base62
//! characters, about 190 bits of entropy. The full key is shown to its
//! owner exactly once, at creation; the database keeps only its SHA-256
//! and a short visible prefix for listings. Because keys are random and
//! long, an unsalted fast hash is the right tool (as for GitHub and Stripe
//! tokens): lookup is a unique-index probe on the hash, and a stolen table
//! yields no usable key.
//!
//! A presented key is checked for shape before any database work, so
//! garbage in an `Authorization` header costs nothing.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

const RANDOM_LEN: usize = 32;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// How an operator key begins.
pub const OPERATOR_KEY_PREFIX: &str = "bk_op_";
/// Characters of a key kept in the clear for listings (`bk_live_AbCd`).
pub const VISIBLE_PREFIX_LEN: usize = 12;

/// Whether a key acts on live or test data: Stripe's `livemode`.
///
/// Every object a key makes carries its mode (`livemode` in the API and
/// the database), and every read is of one mode: a test key sees test
/// data, a live key live data. Test objects run the whole rating and
/// ledger path in a book of their own and never reach live usage, caps,
/// credits, invoices or the live Stripe account. The default is live, the
/// mode of everything made before test mode existed.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyMode {
    /// Real work, real billing.
    #[default]
    Live,
    /// Test work: never billed.
    Test,
}

impl ApiKeyMode {
    /// Stripe's `livemode`: `true` for live.
    pub const fn livemode(self) -> bool {
        matches!(self, ApiKeyMode::Live)
    }

    /// The mode of a stored `livemode` flag.
    pub const fn from_livemode(livemode: bool) -> Self {
        if livemode {
            ApiKeyMode::Live
        } else {
            ApiKeyMode::Test
        }
    }

    /// `live` or `test`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ApiKeyMode::Live => "live",
            ApiKeyMode::Test => "test",
        }
    }
}

impl fmt::Display for ApiKeyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not `live` or `test`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a key mode: expected `live` or `test`")]
pub struct BadMode(pub String);

impl FromStr for ApiKeyMode {
    type Err = BadMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "live" => Ok(ApiKeyMode::Live),
            "test" => Ok(ApiKeyMode::Test),
            other => Err(BadMode(other.to_owned())),
        }
    }
}

/// A presented or freshly minted key: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

/// The presented string is not shaped like a Bounty key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed API key")]
pub struct MalformedKey;

impl ApiKeySecret {
    /// Mints a new random key of `mode`.
    pub fn generate(mode: ApiKeyMode) -> NewApiKey {
        let secret = ApiKeySecret::random(&format!("bk_{}_", mode.as_str()));
        NewApiKey {
            hash: secret.hash(),
            prefix: secret.0[..VISIBLE_PREFIX_LEN].to_owned(),
            mode,
            secret,
        }
    }

    /// Mints a new random operator key (`bk_op_…`): its secret, hash and
    /// visible prefix. An operator key is never a customer key: [`parse`]
    /// refuses it, and only [`parse_operator`] accepts it.
    ///
    /// [`parse`]: ApiKeySecret::parse
    /// [`parse_operator`]: ApiKeySecret::parse_operator
    pub fn generate_operator() -> (ApiKeySecret, ApiKeyHash, String) {
        let secret = ApiKeySecret::random(OPERATOR_KEY_PREFIX);
        let hash = secret.hash();
        let prefix = secret.0[..VISIBLE_PREFIX_LEN].to_owned();
        (secret, hash, prefix)
    }

    /// Checks that `presented` has the shape of an operator key.
    pub fn parse_operator(presented: &str) -> Result<Self, MalformedKey> {
        let random = presented.strip_prefix(OPERATOR_KEY_PREFIX).ok_or(MalformedKey)?;
        if random.len() != RANDOM_LEN || !random.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(MalformedKey);
        }
        Ok(ApiKeySecret(presented.to_owned()))
    }

    /// `prefix` and [`RANDOM_LEN`] uniformly random base62 characters.
    fn random(prefix: &str) -> ApiKeySecret {
        let mut out = String::with_capacity(prefix.len() + RANDOM_LEN);
        out.push_str(prefix);
        let mut produced = 0;
        while produced < RANDOM_LEN {
            let mut buf = [0u8; 64];
            getrandom::fill(&mut buf).expect("the OS random generator failed");
            // Rejection sampling keeps every character equally likely:
            // 248 = 4 × 62, so bytes below it map uniformly.
            for b in buf.into_iter().filter(|b| *b < 248) {
                if produced == RANDOM_LEN {
                    break;
                }
                out.push(char::from(BASE62[usize::from(b % 62)]));
                produced += 1;
            }
        }
        ApiKeySecret(out)
    }

    /// Checks that `presented` has the shape of a key; says nothing about
    /// whether such a key exists.
    pub fn parse(presented: &str) -> Result<(Self, ApiKeyMode), MalformedKey> {
        let rest = presented.strip_prefix("bk_").ok_or(MalformedKey)?;
        let (mode, random) = rest.split_once('_').ok_or(MalformedKey)?;
        let mode = mode.parse::<ApiKeyMode>().map_err(|_| MalformedKey)?;
        if random.len() != RANDOM_LEN || !random.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(MalformedKey);
        }
        Ok((ApiKeySecret(presented.to_owned()), mode))
    }

    /// The stored form of this key.
    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }

    /// The key itself. Call only to show it to its owner, once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.get(..VISIBLE_PREFIX_LEN).unwrap_or("bk_");
        write!(f, "ApiKeySecret({shown}…)")
    }
}

/// The hex SHA-256 of a key: what the database stores and looks up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyHash(String);

impl ApiKeyHash {
    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A newly minted key with everything the store keeps of it.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The full key, to be shown once.
    pub secret: ApiKeySecret,
    /// Its SHA-256, to be stored.
    pub hash: ApiKeyHash,
    /// Its first characters, to be stored and listed.
    pub prefix: String,
    /// Live or test.
    pub mode: ApiKeyMode,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_parse_and_differ() {
        let a = ApiKeySecret::generate(ApiKeyMode::Live);
        let b = ApiKeySecret::generate(ApiKeyMode::Live);
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.expose().starts_with("bk_live_"));
        assert_eq!(a.secret.expose().len(), 8 + RANDOM_LEN);
        assert!(a.secret.expose().starts_with(&a.prefix));
        let (parsed, mode) = ApiKeySecret::parse(a.secret.expose()).unwrap();
        assert_eq!(mode, ApiKeyMode::Live);
        assert_eq!(parsed.hash(), a.hash);
        let t = ApiKeySecret::generate(ApiKeyMode::Test);
        assert!(t.secret.expose().starts_with("bk_test_"));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let k = ApiKeySecret::generate(ApiKeyMode::Live);
        let shown = format!("{k:?}");
        assert!(!shown.contains(k.secret.expose()));
        assert!(!shown.contains(&k.secret.expose()[VISIBLE_PREFIX_LEN..]));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in [
            "",
            "bk_",
            "bk_live_",
            "bk_prod_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "bk_live_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "bk_live_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!",
            "sk_live_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(ApiKeySecret::parse(bad), Err(MalformedKey), "{bad}");
        }
    }

    #[test]
    fn hash_is_hex_sha256() {
        let (k, _) = ApiKeySecret::parse("bk_test_00000000000000000000000000000000").unwrap();
        assert_eq!(k.hash().as_str().len(), 64);
        assert!(k.hash().as_str().bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn operator_keys_are_never_customer_keys() {
        let (secret, hash, prefix) = ApiKeySecret::generate_operator();
        assert!(secret.expose().starts_with("bk_op_"));
        assert_eq!(secret.expose().len(), 6 + RANDOM_LEN);
        assert_eq!(prefix, &secret.expose()[..VISIBLE_PREFIX_LEN]);
        assert_eq!(
            ApiKeySecret::parse_operator(secret.expose()).unwrap().hash(),
            hash
        );
        assert!(
            ApiKeySecret::parse(secret.expose()).is_err(),
            "not a customer key"
        );
        let customer = ApiKeySecret::generate(ApiKeyMode::Live);
        assert!(ApiKeySecret::parse_operator(customer.secret.expose()).is_err());
        assert!(ApiKeySecret::parse_operator("bk_op_short").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = ApiKeySecret::parse(&s);
            let _ = ApiKeySecret::parse_operator(&s);
        }
    }
}
