//! Random tokens: session cookies, one-time links (invites, password
//! resets), CSRF secrets, and their comparison.
//!
//! A token is 32 random bytes, sent as unpadded base64url (in the session
//! cookie, or in a link's path). The store keeps only its SHA-256, so a
//! leaked table opens no session and follows no link; as with API keys, a
//! fast unsalted hash is right for a random 256-bit token. CSRF secrets
//! are per session, compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bounty_store::TokenHash;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

/// Bytes of randomness in a token.
const TOKEN_BYTES: usize = 32;

/// The OS random generator failed: no secret can be minted.
#[derive(Debug, thiserror::Error)]
#[error("the OS random generator failed: {0}")]
pub struct RandomError(getrandom::Error);

fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(RandomError)?;
    Ok(buf)
}

/// `n` random bytes, hex.
pub(crate) fn random_hex(n: usize) -> Result<String, RandomError> {
    let mut out = String::with_capacity(n * 2);
    while out.len() < n * 2 {
        out.push_str(&hex::encode(random_bytes::<16>()?));
    }
    out.truncate(n * 2);
    Ok(out)
}

/// A fresh token (for a session's cookie or a one-time link) and its
/// stored form.
pub(crate) fn new_token() -> Result<(String, TokenHash), RandomError> {
    let raw = random_bytes::<TOKEN_BYTES>()?;
    Ok((URL_SAFE_NO_PAD.encode(raw), hash_raw(&raw)))
}

fn hash_raw(raw: &[u8]) -> TokenHash {
    TokenHash::from_hex(hex::encode(Sha256::digest(raw)))
}

/// The stored form of a presented token; `None` when it is not shaped
/// like one (so garbage costs no query).
pub(crate) fn token_hash(token: &str) -> Option<TokenHash> {
    let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
    if raw.len() != TOKEN_BYTES {
        return None;
    }
    Some(hash_raw(&raw))
}

/// A fresh CSRF secret.
pub(crate) fn new_csrf_secret() -> Result<String, RandomError> {
    random_hex(32)
}

/// Whether two tokens are equal, in time that depends only on their length.
pub(crate) fn tokens_match(presented: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_hash_and_garbage_does_not() {
        let (t, minted) = new_token().unwrap();
        assert_eq!(t.len(), 43);
        let h = token_hash(&t).unwrap();
        assert_eq!(h.as_str().len(), 64);
        assert_eq!(h, minted);
        assert_eq!(token_hash(&t), Some(h));
        assert!(token_hash("short").is_none());
        assert!(token_hash("!!!").is_none());
        assert_ne!(new_token().unwrap().0, t);
    }

    #[test]
    fn token_comparison() {
        let s = new_csrf_secret().unwrap();
        assert_eq!(s.len(), 64);
        assert!(tokens_match(&s.clone(), &s));
        assert!(!tokens_match("", &s));
        assert!(!tokens_match(&s[..63], &s));
        assert!(!tokens_match("", ""));
        assert_eq!(random_hex(5).unwrap().len(), 10);
    }
}
