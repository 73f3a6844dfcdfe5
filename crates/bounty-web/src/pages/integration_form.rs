//! The new-integration and rotate-secret forms, and the checks that turn
//! them into what the store keeps.
//!
//! The checks are the API's (`bounty-server`'s `routes/integrations.rs`),
//! the same functions of `bounty-core` and `bounty-integrations`: the kind
//! parses as an [`IntegrationKind`], the name parses as an
//! [`IntegrationName`] (trimmed, bounded, no control characters), a given
//! inbound secret goes through [`check_given_secret`] (8 to 512
//! characters, a `whsec_` secret for `standard`), reply settings go through
//! [`ReplySettingsIn::validate`], and a secret nobody gave is generated
//! with [`generate_secret`]. The form has one set of reply fields per
//! kind (`zendesk_email`, `standard_callback_url`, …) so that each can
//! sit in its own fieldset; only the chosen kind's are read, and leaving
//! them all blank means no replies are posted.

use bounty_core::IntegrationName;
use bounty_integrations::{
    IntegrationKind, ReplySettings, ReplySettingsIn, check_given_secret, generate_secret,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::WebError;
use crate::pages::field_errors::FieldErrors;

/// Longest rotation grace period, in hours: the API's limit.
pub(crate) const MAX_GRACE_HOURS: u32 = 168;
/// The grace period when the form leaves it blank.
pub(crate) const DEFAULT_GRACE_HOURS: u32 = 24;

/// The create form's fields in page order, with their labels.
pub(crate) const FIELDS: [(&str, &str); 15] = [
    ("kind", "Helpdesk"),
    ("name", "Name"),
    ("agent", "Agent"),
    ("secret", "Inbound secret"),
    ("zendesk_base_url", "Zendesk URL"),
    ("zendesk_email", "Zendesk agent email"),
    ("zendesk_api_token", "Zendesk API token"),
    ("intercom_base_url", "Intercom API URL"),
    ("intercom_access_token", "Intercom access token"),
    ("intercom_admin_id", "Intercom admin id"),
    ("chatwoot_base_url", "Chatwoot URL"),
    ("chatwoot_api_access_token", "Chatwoot API access token"),
    ("chatwoot_account_id", "Chatwoot account id"),
    ("standard_callback_url", "Callback URL"),
    ("standard_secret", "Reply signing secret"),
];

/// The create form, as posted. Secrets are kept only as long as the
/// request, and are never written back into a re-rendered form.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct IntegrationForm {
    #[serde(default)]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) name: String,
    /// The agent's id.
    #[serde(default)]
    pub(crate) agent: String,
    #[serde(default)]
    pub(crate) secret: String,
    #[serde(default)]
    pub(crate) zendesk_base_url: String,
    #[serde(default)]
    pub(crate) zendesk_email: String,
    #[serde(default)]
    pub(crate) zendesk_api_token: String,
    #[serde(default)]
    pub(crate) intercom_base_url: String,
    #[serde(default)]
    pub(crate) intercom_access_token: String,
    #[serde(default)]
    pub(crate) intercom_admin_id: String,
    #[serde(default)]
    pub(crate) chatwoot_base_url: String,
    #[serde(default)]
    pub(crate) chatwoot_api_access_token: String,
    #[serde(default)]
    pub(crate) chatwoot_account_id: String,
    #[serde(default)]
    pub(crate) standard_callback_url: String,
    #[serde(default)]
    pub(crate) standard_secret: String,
}

/// A checked create form: everything but the agent, which the page looks
/// up in the account.
pub(crate) struct CheckedIntegration {
    pub(crate) kind: IntegrationKind,
    pub(crate) name: IntegrationName,
    /// The inbound secret: given, or generated (then shown once).
    pub(crate) secret: String,
    pub(crate) reply: Option<ReplySettings>,
    /// A Standard reply secret Bounty generated, shown once.
    pub(crate) reply_secret: Option<String>,
}

fn given(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

fn given_secret(v: &str) -> Option<SecretString> {
    given(v).map(SecretString::from)
}

/// A fresh secret of `kind`'s form.
pub(crate) fn fresh_secret(kind: IntegrationKind) -> Result<String, WebError> {
    generate_secret(kind)
        .map(|s| s.expose_secret().to_owned())
        .map_err(|e| WebError::Internal(format!("generating a secret: {e}")))
}

impl IntegrationForm {
    /// The reply fields of `kind`, as the API's `reply` object; `None`
    /// when they are all blank.
    fn reply_in(&self, kind: IntegrationKind) -> Option<ReplySettingsIn> {
        let r = match kind {
            IntegrationKind::Zendesk => ReplySettingsIn {
                base_url: given(&self.zendesk_base_url),
                email: given(&self.zendesk_email),
                api_token: given_secret(&self.zendesk_api_token),
                ..Default::default()
            },
            IntegrationKind::Intercom => ReplySettingsIn {
                base_url: given(&self.intercom_base_url),
                access_token: given_secret(&self.intercom_access_token),
                admin_id: given(&self.intercom_admin_id),
                ..Default::default()
            },
            IntegrationKind::Chatwoot => ReplySettingsIn {
                base_url: given(&self.chatwoot_base_url),
                api_access_token: given_secret(&self.chatwoot_api_access_token),
                account_id: given(&self.chatwoot_account_id),
                ..Default::default()
            },
            IntegrationKind::Standard => ReplySettingsIn {
                callback_url: given(&self.standard_callback_url),
                secret: given_secret(&self.standard_secret),
                ..Default::default()
            },
        };
        let any = r.base_url.is_some()
            || r.email.is_some()
            || r.api_token.is_some()
            || r.access_token.is_some()
            || r.admin_id.is_some()
            || r.api_access_token.is_some()
            || r.account_id.is_some()
            || r.callback_url.is_some()
            || r.secret.is_some();
        any.then_some(r)
    }

    /// Every field but the agent checked; the secrets to seal, or every
    /// error. Generating a secret can fail only in the OS (a 500).
    pub(crate) fn check(&self, errors: &mut FieldErrors) -> Result<Option<CheckedIntegration>, WebError> {
        let kind = match self.kind.parse::<IntegrationKind>() {
            Ok(k) => Some(k),
            Err(_) => {
                errors.add("kind", "must be Zendesk, Intercom, Chatwoot or Standard Webhooks");
                None
            }
        };
        let name = IntegrationName::parse(&self.name)
            .map_err(|e| errors.add("name", e.to_string()))
            .ok();
        let Some(kind) = kind else {
            return Ok(None);
        };
        let secret = match given(&self.secret) {
            Some(s) => check_given_secret(kind, &s)
                .map_err(|e| errors.add("secret", e))
                .ok(),
            None => Some(fresh_secret(kind)?),
        };
        let reply_in = self.reply_in(kind);
        // A Standard reply secret is generated (and shown once) unless given.
        let reply_secret = match &reply_in {
            Some(r) if kind == IntegrationKind::Standard && r.secret.is_none() => Some(fresh_secret(kind)?),
            _ => None,
        };
        let reply = match &reply_in {
            Some(r) => match r.validate(kind, reply_secret.as_deref().unwrap_or_default()) {
                Ok(settings) => Some(settings),
                Err(e) => {
                    let field = e.field.strip_prefix("reply.").unwrap_or(&e.field);
                    errors.add(format!("{}_{field}", kind.as_str()), e.problem);
                    None
                }
            },
            None => None,
        };
        match (secret, name) {
            (Some(secret), Some(name)) if errors.is_empty() => Ok(Some(CheckedIntegration {
                kind,
                name,
                secret,
                reply,
                reply_secret,
            })),
            _ => Ok(None),
        }
    }

    /// The form to show again after an error: what was typed, without
    /// any secret.
    pub(crate) fn without_secrets(&self) -> IntegrationForm {
        IntegrationForm {
            kind: self.kind.clone(),
            name: self.name.clone(),
            agent: self.agent.clone(),
            zendesk_base_url: self.zendesk_base_url.clone(),
            zendesk_email: self.zendesk_email.clone(),
            intercom_base_url: self.intercom_base_url.clone(),
            intercom_admin_id: self.intercom_admin_id.clone(),
            chatwoot_base_url: self.chatwoot_base_url.clone(),
            chatwoot_account_id: self.chatwoot_account_id.clone(),
            standard_callback_url: self.standard_callback_url.clone(),
            ..IntegrationForm::default()
        }
    }
}

/// The rotate-secret form.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RotateForm {
    /// The new secret when the helpdesk made it; blank: generated.
    #[serde(default)]
    pub(crate) secret: String,
    /// How long the old secret still works; blank: 24 hours.
    #[serde(default)]
    pub(crate) grace_hours: String,
}

impl RotateForm {
    /// The grace period in hours, or what is wrong with it.
    pub(crate) fn grace(&self) -> Result<u32, String> {
        match self.grace_hours.trim() {
            "" => Ok(DEFAULT_GRACE_HOURS),
            raw => raw
                .parse::<u32>()
                .ok()
                .filter(|h| *h <= MAX_GRACE_HOURS)
                .ok_or_else(|| format!("must be a whole number of hours, 0 to {MAX_GRACE_HOURS}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(kind: &str) -> IntegrationForm {
        IntegrationForm {
            kind: kind.into(),
            name: "Support desk".into(),
            agent: "agt_x".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_bare_form_generates_the_secret_and_posts_no_replies() {
        for kind in IntegrationKind::ALL {
            let mut errors = FieldErrors::default();
            let c = form(kind.as_str()).check(&mut errors).unwrap().unwrap();
            assert!(errors.is_empty());
            assert!(c.reply.is_none() && c.reply_secret.is_none());
            assert!(
                check_given_secret(kind, &c.secret).is_ok(),
                "{kind}: a generated secret is valid"
            );
        }
    }

    #[test]
    fn reply_errors_name_the_kinds_field() {
        let mut errors = FieldErrors::default();
        let f = IntegrationForm {
            zendesk_base_url: "https://acme.zendesk.com".into(),
            // An Intercom field is ignored for a Zendesk integration.
            intercom_admin_id: "7".into(),
            ..form("zendesk")
        };
        assert!(f.check(&mut errors).unwrap().is_none());
        assert_eq!(errors.get("zendesk_email"), Some("is required"));
        let mut errors = FieldErrors::default();
        let f = IntegrationForm {
            standard_callback_url: "https://hooks.example.com/bounty".into(),
            secret: "short".into(),
            ..form("standard")
        };
        assert!(f.check(&mut errors).unwrap().is_none());
        assert_eq!(errors.get("secret"), Some("must be 8 to 512 characters"));
        let mut errors = FieldErrors::default();
        let c = IntegrationForm {
            standard_callback_url: "https://hooks.example.com/bounty".into(),
            ..form("standard")
        }
        .check(&mut errors)
        .unwrap()
        .unwrap();
        let generated = c.reply_secret.expect("a reply secret is generated");
        assert!(generated.starts_with("whsec_"));
        assert!(matches!(c.reply, Some(ReplySettings::Standard { secret, .. }) if secret == generated));
        let mut errors = FieldErrors::default();
        assert!(form("freshdesk").check(&mut errors).unwrap().is_none());
        assert!(errors.get("kind").is_some());
    }

    #[test]
    fn names_are_checked_as_the_api_checks_them() {
        for bad in ["   ", "Desk\u{0}", "Desk\nTwo", &"x".repeat(101)] {
            let mut errors = FieldErrors::default();
            let f = IntegrationForm {
                name: bad.to_owned(),
                ..form("standard")
            };
            assert!(f.check(&mut errors).unwrap().is_none(), "{bad:?}");
            assert!(errors.get("name").is_some(), "{bad:?}");
        }
        let mut errors = FieldErrors::default();
        let f = IntegrationForm {
            name: "  Support desk  ".into(),
            ..form("standard")
        };
        let c = f.check(&mut errors).unwrap().unwrap();
        assert_eq!(c.name.as_str(), "Support desk");
    }

    #[test]
    fn grace_hours() {
        let g = |h: &str| {
            RotateForm {
                grace_hours: h.into(),
                ..Default::default()
            }
            .grace()
        };
        assert_eq!(g(""), Ok(24));
        assert_eq!(g("0"), Ok(0));
        assert_eq!(g("168"), Ok(168));
        assert!(g("169").is_err() && g("-1").is_err() && g("soon").is_err());
    }
}
