//! Random bytes from the operating system.
//!
//! Secrets and AES-GCM nonces are only as good as their randomness, so a
//! failing OS generator is reported as an error rather than papered over
//! (or turned into a panic on a request path).

/// The operating system's random generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random generator failed: {0}")]
pub struct EntropyError(getrandom::Error);

/// `N` fresh random bytes.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], EntropyError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(EntropyError)?;
    Ok(bytes)
}
