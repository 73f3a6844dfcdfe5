//! Choosing a password, shared by accepting an invite and resetting a
//! password: the form's two fields, their check (a refusal names the
//! field), and hashing off the async runtime (argon2id is CPU-heavy).

use serde::Deserialize;

use crate::error::WebError;
use crate::password::{NewPasswordError, check_new_password};
use crate::state::WebState;

/// The fields of `new_password_fields.html`.
#[derive(Deserialize)]
pub(crate) struct NewPasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

impl NewPasswordForm {
    /// The PHC string of the chosen password, or why it is refused.
    pub(crate) async fn hash(self, state: &WebState) -> Result<Result<String, NewPasswordError>, WebError> {
        if let Err(e) = check_new_password(&self.password, &self.confirm) {
            return Ok(Err(e));
        }
        let passwords = state.passwords.clone();
        let hashed = tokio::task::spawn_blocking(move || passwords.hash(&self.password))
            .await
            .map_err(|e| WebError::Internal(format!("password hashing: {e}")))?
            .map_err(|e| WebError::Internal(e.to_string()))?;
        Ok(Ok(hashed))
    }
}
