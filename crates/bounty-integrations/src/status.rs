//! What state an integration is in, as the API and the dashboard show it.
//!
//! The stored row says `active`, or `disabled` once its reply endpoint
//! answered 410 Gone. One more state comes from the server, not the row:
//! an integration whose inbound secret does not open under the configured
//! master keys (the key that sealed it was dropped or replaced, as a demo
//! restarted with a throwaway key once did) cannot verify a single
//! delivery. It is **broken**, with reason `secret_unreadable` (or
//! `secrets_not_configured` when the server has no master keys at all),
//! and its webhook answers 503 with that code instead of failing inside.
//! The way out is to restore the key (`secrets.master_keys`) or rotate the
//! integration's secret, which seals a new one under the current key.
//!
//! The sealed secrets are opened here ([`open_inbound`], [`open_reply`]),
//! bound to [`bounty_core::sealing_aad`] ([`Keyring::open_for`]), for the
//! webhook, the API, the dashboard and the reply sender alike.

use bounty_core::{IntegrationState, SealPurpose, Timestamp};
use bounty_store::Integration;
use zeroize::Zeroizing;

use crate::seal::{Keyring, SealError};
use crate::settings::ReplySettings;

/// Why an integration cannot take deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokenReason {
    /// Its inbound secret does not open under the configured master keys.
    SecretUnreadable,
    /// The server has no master keys at all.
    SecretsNotConfigured,
}

impl BrokenReason {
    /// The stable code, as the API and the webhook's error show it.
    pub fn as_str(self) -> &'static str {
        match self {
            BrokenReason::SecretUnreadable => "secret_unreadable",
            BrokenReason::SecretsNotConfigured => "secrets_not_configured",
        }
    }
}

/// An integration's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntegrationStatus {
    /// Takes deliveries and posts replies.
    Active,
    /// Takes deliveries; its reply endpoint answered 410 Gone, so nothing
    /// is posted back. The reason is the row's.
    Disabled(Option<String>),
    /// Takes no deliveries (see the module doc).
    Broken(BrokenReason),
}

impl IntegrationStatus {
    /// `active`, `disabled` or `broken`.
    pub fn as_str(&self) -> &'static str {
        match self {
            IntegrationStatus::Active => "active",
            IntegrationStatus::Disabled(_) => "disabled",
            IntegrationStatus::Broken(_) => "broken",
        }
    }

    /// Why it is not `active`, when it is not.
    pub fn reason(&self) -> Option<String> {
        match self {
            IntegrationStatus::Active => None,
            IntegrationStatus::Disabled(reason) => reason.clone(),
            IntegrationStatus::Broken(reason) => Some(reason.as_str().to_owned()),
        }
    }
}

/// The integration's current inbound secret, opened with `keys`.
pub fn open_inbound(keys: &Keyring, i: &Integration) -> Result<Zeroizing<Vec<u8>>, SealError> {
    keys.open_for(i.account_id, i.id, SealPurpose::Inbound, &i.secret_sealed)
}

/// The secrets a delivery to the integration may be signed with, opened:
/// the current one, then the previous one while its rotation grace lasts
/// (`now` before its expiry). A previous secret that does not open is
/// skipped with a warning: the current one still verifies, only the grace
/// is lost. Fails when the current one does not open: the integration is
/// broken.
pub fn open_inbound_secrets(
    keys: &Keyring,
    i: &Integration,
    now: Timestamp,
) -> Result<Vec<Zeroizing<Vec<u8>>>, SealError> {
    let mut secrets = vec![open_inbound(keys, i)?];
    if let (Some(previous), Some(until)) = (&i.previous_secret_sealed, i.previous_secret_expires_at)
        && until > now
    {
        match keys.open_for(i.account_id, i.id, SealPurpose::Inbound, previous) {
            Ok(secret) => secrets.push(secret),
            Err(e) => {
                tracing::warn!(integration.id = %i.id, code = e.code(), "the previous inbound secret does not open; only the current one is accepted")
            }
        }
    }
    Ok(secrets)
}

/// Why an integration's reply settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReplySettingsError {
    /// They do not open under the configured master keys.
    #[error("cannot open the reply settings: {0}")]
    Seal(#[from] SealError),
    /// They open, but are not reply settings.
    #[error("cannot open the reply settings: {0}")]
    Json(#[from] serde_json::Error),
}

/// The integration's reply-back settings, opened with `keys`; `None` when
/// it posts no replies.
pub fn open_reply(keys: &Keyring, i: &Integration) -> Result<Option<ReplySettings>, ReplySettingsError> {
    let Some(sealed) = i.reply_sealed.as_deref() else {
        return Ok(None);
    };
    let plain = keys.open_for(i.account_id, i.id, SealPurpose::Reply, sealed)?;
    Ok(Some(serde_json::from_slice(&plain)?))
}

/// Where the integration's replies go (no credentials), when it posts
/// replies and its settings open under `keys`.
pub fn reply_url(keys: Option<&Keyring>, i: &Integration) -> Option<String> {
    let settings = open_reply(keys?, i).ok()??;
    Some(settings.url().to_owned())
}

/// The integration's state under `keys` (`None`: no master keys).
pub fn status(i: &Integration, keys: Option<&Keyring>) -> IntegrationStatus {
    let Some(keys) = keys else {
        return IntegrationStatus::Broken(BrokenReason::SecretsNotConfigured);
    };
    if open_inbound(keys, i).is_err() {
        return IntegrationStatus::Broken(BrokenReason::SecretUnreadable);
    }
    match i.state {
        IntegrationState::Disabled => IntegrationStatus::Disabled(i.disabled_reason.clone()),
        IntegrationState::Active => IntegrationStatus::Active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::SealKey;

    fn keyring(id: &str) -> Keyring {
        Keyring::new(id.parse().unwrap(), SealKey::generate().unwrap())
    }

    fn integration(keys: &Keyring) -> Integration {
        let mut i = crate::fixtures::integration(
            bounty_core::IntegrationKind::Standard,
            bounty_core::ApiKeyMode::Live,
        );
        i.secret_sealed = keys
            .seal_for(i.account_id, i.id, SealPurpose::Inbound, b"whsec_x")
            .unwrap();
        i
    }

    #[test]
    fn a_secret_no_key_opens_is_broken() {
        let keys = keyring("k1");
        let mut i = integration(&keys);
        assert_eq!(status(&i, Some(&keys)), IntegrationStatus::Active);
        assert_eq!(&*open_inbound(&keys, &i).unwrap(), b"whsec_x");
        // Another key under the same id, as a restarted throwaway key is.
        let other = keyring("k1");
        let broken = status(&i, Some(&other));
        assert_eq!(broken, IntegrationStatus::Broken(BrokenReason::SecretUnreadable));
        assert_eq!(broken.as_str(), "broken");
        assert_eq!(broken.reason().as_deref(), Some("secret_unreadable"));
        assert_eq!(
            status(&i, Some(&keyring("k2"))).reason().as_deref(),
            Some("secret_unreadable")
        );
        assert_eq!(
            status(&i, None).reason().as_deref(),
            Some("secrets_not_configured")
        );
        i.state = IntegrationState::Disabled;
        i.disabled_reason = Some("reply endpoint answered 410".into());
        let disabled = status(&i, Some(&keys));
        assert_eq!(disabled.as_str(), "disabled");
        assert_eq!(disabled.reason().as_deref(), Some("reply endpoint answered 410"));
    }
}
