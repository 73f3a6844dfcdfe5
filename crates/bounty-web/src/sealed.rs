//! Integration secrets at rest, the way the API keeps them.
//!
//! The inbound signing secret and the reply settings are sealed with
//! AES-256-GCM under the server's master keys ([`Keyring`]), bound to
//! `{account}/{integration}/{inbound|reply}`
//! ([`bounty_integrations::settings::sealing_aad`]), exactly as
//! `bounty-server`'s `routes/integrations.rs` seals them, so an
//! integration made here works at the webhook edge and in the API, and
//! one made there opens here.

use bounty_core::{AccountId, IntegrationId};
use bounty_integrations::{Keyring, ReplySettings};
use bounty_store::Integration;
use zeroize::Zeroizing;

use crate::error::WebError;
use crate::state::WebState;

/// What the pages say when there are no master keys.
pub(crate) const NO_KEYS: &str = "Integration secrets are sealed with the server's master keys, and none are \
     configured: set `secrets.master_keys` (or `BOUNTY_SECRETS__MASTER_KEYS`) and restart.";

/// Which sealed secret of an integration.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    Inbound,
    Reply,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Inbound => "inbound",
            Purpose::Reply => "reply",
        }
    }
}

/// The associated data a secret of `id` in `account` is sealed with.
pub(crate) fn aad(account: AccountId, id: IntegrationId, purpose: Purpose) -> String {
    bounty_integrations::settings::sealing_aad(&account.to_string(), &id.to_string(), purpose.as_str())
}

/// The master keys, or the 503 page naming the setting.
pub(crate) fn keyring(state: &WebState) -> Result<&Keyring, WebError> {
    state.keyring.as_deref().ok_or(WebError::NotConfigured(NO_KEYS))
}

/// Seals `plaintext` for `purpose` of integration `id`.
pub(crate) fn seal(
    keys: &Keyring,
    account: AccountId,
    id: IntegrationId,
    purpose: Purpose,
    plaintext: &[u8],
) -> Result<String, WebError> {
    keys.seal(plaintext, aad(account, id, purpose).as_bytes())
        .map_err(|e| WebError::Internal(format!("sealing a secret: {e}")))
}

/// The integration's current inbound secret, opened.
pub(crate) fn inbound_secret(keys: &Keyring, i: &Integration) -> Result<Zeroizing<Vec<u8>>, WebError> {
    bounty_integrations::status::open_inbound(keys, i)
        .map_err(|e| WebError::Internal(format!("opening the inbound secret of {}: {e}", i.id)))
}

/// Where the integration's replies go (no credentials), when it posts
/// replies and its settings open under these keys.
pub(crate) fn reply_url(keys: Option<&Keyring>, i: &Integration) -> Option<String> {
    let sealed = i.reply_sealed.as_deref()?;
    let plain = keys?
        .open(sealed, aad(i.account_id, i.id, Purpose::Reply).as_bytes())
        .ok()?;
    let settings: ReplySettings = serde_json::from_slice(&plain).ok()?;
    Some(settings.url().to_owned())
}
