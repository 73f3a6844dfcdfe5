//! Which helpdesk an integration talks to.
//!
//! One [`IntegrationKind`] picks both halves of an inbound webhook: how its
//! signature is checked ([`crate::signature`]) and how its body is read
//! ([`crate::parse`](mod@crate::parse)). The lower-case names are what the API, the database
//! and the webhook URL (`/webhooks/{kind}/…`) show, so they never change.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A supported helpdesk, or `Standard` for any source that speaks
/// [Standard Webhooks](https://www.standardwebhooks.com/) with Bounty's
/// documented ticket payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntegrationKind {
    /// Zendesk event-subscribed webhooks.
    Zendesk,
    /// Intercom webhook topics (notification events).
    Intercom,
    /// Chatwoot account webhooks.
    Chatwoot,
    /// Standard Webhooks signing with Bounty's own ticket payload.
    Standard,
}

impl IntegrationKind {
    /// Every kind, in a stable order (for listings and exhaustive tests).
    pub const ALL: [IntegrationKind; 4] = [
        IntegrationKind::Zendesk,
        IntegrationKind::Intercom,
        IntegrationKind::Chatwoot,
        IntegrationKind::Standard,
    ];

    /// The stable lower-case name: `zendesk`, `intercom`, `chatwoot` or `standard`.
    pub const fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::Zendesk => "zendesk",
            IntegrationKind::Intercom => "intercom",
            IntegrationKind::Chatwoot => "chatwoot",
            IntegrationKind::Standard => "standard",
        }
    }
}

impl fmt::Display for IntegrationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest part of a refused name echoed back in [`UnknownIntegrationKind`].
const ECHO_LIMIT: usize = 32;

/// The string names no integration kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an integration kind: expected one of `zendesk`, `intercom`, `chatwoot`, `standard`")]
pub struct UnknownIntegrationKind(String);

impl FromStr for IntegrationKind {
    type Err = UnknownIntegrationKind;

    /// Parses the exact lower-case name, as [`IntegrationKind::as_str`] writes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IntegrationKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| {
                let echoed: String = s.chars().take(ECHO_LIMIT).collect();
                UnknownIntegrationKind(echoed)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str_and_serde() {
        for kind in IntegrationKind::ALL {
            assert_eq!(kind.as_str().parse::<IntegrationKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<IntegrationKind>(&json).unwrap(), kind);
        }
    }

    #[test]
    fn unknown_names_are_refused_and_the_error_lists_the_accepted_ones() {
        for bad in [
            "",
            "Zendesk",
            "ZENDESK",
            " zendesk",
            "freshdesk",
            "standard-webhooks",
        ] {
            let err = bad.parse::<IntegrationKind>().unwrap_err();
            let message = err.to_string();
            for accepted in IntegrationKind::ALL {
                assert!(message.contains(accepted.as_str()), "{message}");
            }
        }
        assert!(serde_json::from_str::<IntegrationKind>("\"Zendesk\"").is_err());
    }

    #[test]
    fn a_long_refused_name_is_echoed_only_in_part() {
        let long = "x".repeat(10_000);
        let err = long.parse::<IntegrationKind>().unwrap_err();
        assert!(err.to_string().len() < 200);
    }
}
