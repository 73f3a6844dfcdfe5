//! Random tokens: session cookies, CSRF secrets, and their comparison.
//!
//! A session token is 32 random bytes, sent as unpadded base64url in the
//! cookie. The store keeps only its SHA-256, so a leaked table opens no
//! session; as with API keys, a fast unsalted hash is right for a random
//! 256-bit token. CSRF secrets are per session, compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bounty_store::SessionTokenHash;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

/// Bytes of randomness in a session token.
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

/// A fresh session token for the cookie.
pub(crate) fn new_session_token() -> Result<String, RandomError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<TOKEN_BYTES>()?))
}

/// The stored form of a presented session token; `None` when it is not
/// shaped like one (so garbage costs no query).
pub(crate) fn session_token_hash(token: &str) -> Option<SessionTokenHash> {
    let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
    if raw.len() != TOKEN_BYTES {
        return None;
    }
    Some(SessionTokenHash::from_hex(hex::encode(Sha256::digest(&raw))))
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
        let t = new_session_token().unwrap();
        assert_eq!(t.len(), 43);
        let h = session_token_hash(&t).unwrap();
        assert_eq!(h.as_str().len(), 64);
        assert_eq!(session_token_hash(&t), Some(h));
        assert!(session_token_hash("short").is_none());
        assert!(session_token_hash("!!!").is_none());
        assert_ne!(new_session_token().unwrap(), t);
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
