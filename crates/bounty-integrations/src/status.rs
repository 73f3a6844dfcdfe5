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

use bounty_store::Integration;
use zeroize::Zeroizing;

use crate::seal::{Keyring, SealError};
use crate::settings::sealing_aad;

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

/// The associated data an integration's sealed inbound secret is bound to.
pub fn inbound_aad(i: &Integration) -> String {
    sealing_aad(&i.account_id.to_string(), &i.id.to_string(), "inbound")
}

/// The integration's current inbound secret, opened with `keys`.
pub fn open_inbound(keys: &Keyring, i: &Integration) -> Result<Zeroizing<Vec<u8>>, SealError> {
    keys.open(&i.secret_sealed, inbound_aad(i).as_bytes())
}

/// The integration's state under `keys` (`None`: no master keys).
pub fn status(i: &Integration, keys: Option<&Keyring>) -> IntegrationStatus {
    let Some(keys) = keys else {
        return IntegrationStatus::Broken(BrokenReason::SecretsNotConfigured);
    };
    if open_inbound(keys, i).is_err() {
        return IntegrationStatus::Broken(BrokenReason::SecretUnreadable);
    }
    if i.status == "disabled" {
        return IntegrationStatus::Disabled(i.disabled_reason.clone());
    }
    IntegrationStatus::Active
}

#[cfg(test)]
mod tests {
    use bounty_core::{AccountId, AgentId, IntegrationId};

    use super::*;
    use crate::seal::SealKey;

    fn keyring(id: &str) -> Keyring {
        Keyring::new(id.parse().unwrap(), SealKey::generate().unwrap())
    }

    fn integration(keys: &Keyring) -> Integration {
        let mut i = Integration {
            id: IntegrationId::new(),
            account_id: AccountId::new(),
            kind: "standard".into(),
            name: "Helpdesk".into(),
            agent_id: AgentId::new(),
            secret_sealed: String::new(),
            previous_secret_sealed: None,
            previous_secret_expires_at: None,
            reply_sealed: None,
            status: "active".into(),
            disabled_reason: None,
            rejected_count: 0,
            last_rejected_at: None,
            last_rejected_code: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            mode: bounty_core::ApiKeyMode::Live,
        };
        i.secret_sealed = keys.seal(b"whsec_x", inbound_aad(&i).as_bytes()).unwrap();
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
        i.status = "disabled".into();
        i.disabled_reason = Some("reply endpoint answered 410".into());
        let disabled = status(&i, Some(&keys));
        assert_eq!(disabled.as_str(), "disabled");
        assert_eq!(disabled.reason().as_deref(), Some("reply endpoint answered 410"));
    }
}
