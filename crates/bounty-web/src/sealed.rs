//! Integration secrets at rest, the way the API keeps them.
//!
//! The inbound signing secret and the reply settings are sealed with
//! AES-256-GCM under the server's master keys ([`Keyring`]), bound to
//! `{account}/{integration}/{inbound|reply}` ([`bounty_core::sealing_aad`],
//! the one function every seal and open uses), so an integration made here
//! works at the webhook edge and in the API, and one made there opens here.
//! Opening is [`bounty_integrations::status`]'s.

use bounty_core::{AccountId, IntegrationId, SealPurpose};
use bounty_integrations::Keyring;
use bounty_store::Integration;
use zeroize::Zeroizing;

use crate::error::WebError;
use crate::state::WebState;

/// What the pages say when there are no master keys.
pub(crate) const NO_KEYS: &str = "Integration secrets are sealed with the server's master keys, and none are \
     configured: set `secrets.master_keys` (or `BOUNTY_SECRETS__MASTER_KEYS`) and restart.";

/// The master keys, or the 503 page naming the setting.
pub(crate) fn keyring(state: &WebState) -> Result<&Keyring, WebError> {
    state.keyring.as_deref().ok_or(WebError::NotConfigured(NO_KEYS))
}

/// Seals `plaintext` for `purpose` of integration `id`.
pub(crate) fn seal(
    keys: &Keyring,
    account: AccountId,
    id: IntegrationId,
    purpose: SealPurpose,
    plaintext: &[u8],
) -> Result<String, WebError> {
    keys.seal_for(account, id, purpose, plaintext)
        .map_err(|e| WebError::Internal(format!("sealing a secret: {e}")))
}

/// The integration's current inbound secret, opened.
pub(crate) fn inbound_secret(keys: &Keyring, i: &Integration) -> Result<Zeroizing<Vec<u8>>, WebError> {
    bounty_integrations::status::open_inbound(keys, i)
        .map_err(|e| WebError::Internal(format!("opening the inbound secret of {}: {e}", i.id)))
}
