//! Password hashing: argon2id, PHC strings.
//!
//! Hashing lives here, at the edge, and not in the store: the store keeps
//! the PHC string it is handed and never sees a password. Verification
//! reads the parameters from the stored string, so raising the cost later
//! leaves old hashes valid. A login for an unknown email still runs one
//! verification against a dummy hash of the same cost, so the time a
//! login takes does not tell which emails have users.

use std::fmt;
use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

/// The shortest password a person may choose (accepting an invite,
/// resetting a password, or through the CLI).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest: what is hashed stays bounded whatever is pasted.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Why a chosen password is refused, naming the form field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NewPasswordError {
    #[error("`password` must be at least 12 characters.")]
    TooShort,
    #[error("`password` must be at most 1024 characters.")]
    TooLong,
    #[error("`confirm` must repeat `password` exactly.")]
    Mismatch,
}

/// Checks a chosen password and its confirmation.
pub fn check_new_password(password: &str, confirm: &str) -> Result<(), NewPasswordError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        Err(NewPasswordError::TooShort)
    } else if n > MAX_PASSWORD_CHARS {
        Err(NewPasswordError::TooLong)
    } else if password != confirm {
        Err(NewPasswordError::Mismatch)
    } else {
        Ok(())
    }
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The cost parameters are out of argon2's range.
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    /// Hashing failed (the OS random generator, most likely).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Hashes and verifies passwords with argon2id; cheap to clone.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random password at `params`' cost, made on first use.
    dummy: Arc<OnceLock<Option<String>>>,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("m_cost_kib", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .field("p_cost", &self.params.p_cost())
            .finish()
    }
}

impl Default for PasswordHasher {
    /// argon2id with the crate's default (OWASP) parameters: 19 MiB, 2
    /// passes, 1 lane.
    fn default() -> Self {
        PasswordHasher {
            params: Params::default(),
            dummy: Arc::default(),
        }
    }
}

impl PasswordHasher {
    /// argon2id with explicit costs: memory in KiB, passes, lanes. For
    /// tests, which need cheap hashes; production uses [`Default`].
    pub fn with_cost(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self, PasswordError> {
        let params = Params::new(m_cost_kib, t_cost, p_cost, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        Ok(PasswordHasher {
            params,
            dummy: Arc::default(),
        })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// The PHC string (`$argon2id$v=19$…`) of `password`, with a fresh
    /// random salt. CPU-heavy: call it off the async runtime.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        self.argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }

    /// Whether `password` matches the stored PHC string. A malformed string
    /// matches nothing. CPU-heavy: call it off the async runtime.
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        self.argon2().verify_password(password.as_bytes(), phc).is_ok()
    }

    /// Spends the time of one verification and returns `false`: for a login
    /// whose email has no user.
    pub fn verify_nobody(&self, password: &str) -> bool {
        let dummy = self.dummy.get_or_init(|| {
            let random = crate::token::random_hex(16).ok()?;
            self.hash(&random).ok()
        });
        if let Some(dummy) = dummy {
            let _ = self.verify(password, dummy);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::with_cost(Params::MIN_M_COST, 1, 1).unwrap()
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = cheap();
        let phc = h.hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$"));
        assert!(h.verify("correct horse", &phc));
        assert!(!h.verify("correct horsf", &phc));
        assert!(!h.verify("correct horse", "not a phc string"));
        assert!(!h.verify_nobody("correct horse"));
    }

    #[test]
    fn verification_reads_the_cost_from_the_hash() {
        let phc = cheap().hash("pw").unwrap();
        assert!(PasswordHasher::with_cost(64, 3, 1).unwrap().verify("pw", &phc));
    }

    #[test]
    fn new_passwords_are_checked_naming_the_field() {
        let long = "x".repeat(MAX_PASSWORD_CHARS + 1);
        assert_eq!(
            check_new_password("short", "short"),
            Err(NewPasswordError::TooShort)
        );
        assert_eq!(check_new_password(&long, &long), Err(NewPasswordError::TooLong));
        assert_eq!(
            check_new_password("twelve chars", "twelve charz"),
            Err(NewPasswordError::Mismatch)
        );
        assert_eq!(check_new_password("twelve chars", "twelve chars"), Ok(()));
        assert!(NewPasswordError::Mismatch.to_string().contains("`confirm`"));
    }

    #[test]
    fn the_default_is_argon2id_at_owasp_cost() {
        let d = PasswordHasher::default();
        assert_eq!(d.params.m_cost(), 19 * 1024);
        assert_eq!(d.params.t_cost(), 2);
    }
}
