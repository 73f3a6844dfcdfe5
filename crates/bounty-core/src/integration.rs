//! Helpdesk integrations, as every crate names them: which vendor one
//! speaks ([`IntegrationKind`]), whether its replies are posted
//! ([`IntegrationState`]), the associated data its sealed secrets are
//! bound to ([`sealing_aad`]), and what a delivery did ([`DeliveryResult`]).
//!
//! Each is an enum with its string form in one place: the lower-case names
//! are what the API, the database and the dashboard show, so they never
//! change.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::id::{AccountId, IntegrationId};

/// A supported helpdesk, or `Standard` for any source that speaks
/// [Standard Webhooks](https://www.standardwebhooks.com/) with Bounty's
/// documented ticket payload.
///
/// One kind picks both halves of an inbound webhook: how its signature is
/// checked and how its body is read (`bounty-integrations`).
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

    /// How the kind reads on a page: `Zendesk`, …, `Standard Webhooks`.
    pub const fn label(self) -> &'static str {
        match self {
            IntegrationKind::Zendesk => "Zendesk",
            IntegrationKind::Intercom => "Intercom",
            IntegrationKind::Chatwoot => "Chatwoot",
            IntegrationKind::Standard => "Standard Webhooks",
        }
    }
}

impl fmt::Display for IntegrationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest part of a refused name echoed back in an error.
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
            .ok_or_else(|| UnknownIntegrationKind(s.chars().take(ECHO_LIMIT).collect()))
    }
}

/// An integration's stored state. `Active` posts replies; `Disabled` was
/// set when the reply endpoint answered 410 Gone (deliveries are still
/// taken, nothing is posted back). Whether its secret still opens (the
/// `broken` state) is not stored: `bounty_integrations::status` computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrationState {
    Active,
    Disabled,
}

impl IntegrationState {
    /// `active` or `disabled`, as stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            IntegrationState::Active => "active",
            IntegrationState::Disabled => "disabled",
        }
    }
}

/// A stored state that is neither `active` nor `disabled`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an integration state: expected `active` or `disabled`")]
pub struct UnknownIntegrationState(String);

impl FromStr for IntegrationState {
    type Err = UnknownIntegrationState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [IntegrationState::Active, IntegrationState::Disabled]
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownIntegrationState(s.chars().take(ECHO_LIMIT).collect()))
    }
}

/// Which sealed secret of an integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealPurpose {
    /// The inbound signing secret, current or previous.
    Inbound,
    /// The reply-back settings (vendor credentials).
    Reply,
}

impl SealPurpose {
    /// `inbound` or `reply`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SealPurpose::Inbound => "inbound",
            SealPurpose::Reply => "reply",
        }
    }
}

/// The associated data a sealed secret of integration `id` is bound to:
/// `{account}/{integration}/{inbound|reply}`, so a ciphertext copied to
/// another row, or from one purpose to the other, does not open. Every
/// seal and open of an integration secret builds it here.
pub fn sealing_aad(account: AccountId, id: IntegrationId, purpose: SealPurpose) -> String {
    format!("{account}/{id}/{}", purpose.as_str())
}

crate::stored_enum! {
    /// What happened to a helpdesk ticket, by name: the kind of an inbound
    /// delivery, as its record keeps it.
    pub enum TicketEventName("ticket event") {
        /// A customer opened a new ticket.
        Created = "created",
        /// The customer wrote again.
        CustomerReplied = "customer_replied",
        /// The ticket was marked solved.
        Solved = "solved",
        /// A solved ticket was opened again.
        Reopened = "reopened",
        /// The customer rated the help.
        SatisfactionRated = "satisfaction_rated",
        /// A person took the ticket over from the agent.
        Escalated = "escalated",
    }
}

/// What an accepted delivery did, as its record and its answer say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryResult {
    /// A new ticket became a task.
    TaskCreated,
    /// A `created` event for a ticket that has its task already: one
    /// ticket is one task, nothing new is made.
    TaskExists,
    /// A resolution signal moved the ticket's outcome.
    SignalApplied,
    /// A resolution signal the outcome's policy does not take (no
    /// `external` verifier, or its window is over); kept on the receipt.
    SignalNotApplicable,
    /// Kept, nothing else done (a reply to a closed conversation, or a
    /// signal with no outcome to apply to); the reason says why when there
    /// is one.
    Recorded,
    /// A customer's reply joined the ticket's conversation: a new turn
    /// answers it (the reason says whether it continued a waiting answer).
    MessageAdded,
}

impl DeliveryResult {
    /// Every result, in a stable order.
    pub const ALL: [DeliveryResult; 6] = [
        DeliveryResult::TaskCreated,
        DeliveryResult::TaskExists,
        DeliveryResult::SignalApplied,
        DeliveryResult::SignalNotApplicable,
        DeliveryResult::Recorded,
        DeliveryResult::MessageAdded,
    ];

    /// The stable name: `task_created`, `task_exists`, `signal_applied`,
    /// `signal_not_applicable`, `recorded` or `message_added`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryResult::TaskCreated => "task_created",
            DeliveryResult::TaskExists => "task_exists",
            DeliveryResult::SignalApplied => "signal_applied",
            DeliveryResult::SignalNotApplicable => "signal_not_applicable",
            DeliveryResult::Recorded => "recorded",
            DeliveryResult::MessageAdded => "message_added",
        }
    }
}

impl fmt::Display for DeliveryResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored result that names no [`DeliveryResult`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a delivery result")]
pub struct UnknownDeliveryResult(String);

impl FromStr for DeliveryResult {
    type Err = UnknownDeliveryResult;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeliveryResult::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownDeliveryResult(s.chars().take(ECHO_LIMIT).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip_through_from_str_and_serde() {
        for kind in IntegrationKind::ALL {
            assert_eq!(kind.as_str().parse::<IntegrationKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<IntegrationKind>(&json).unwrap(), kind);
        }
    }

    #[test]
    fn unknown_kinds_are_refused_and_the_error_lists_the_accepted_ones() {
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
        assert!(long.parse::<IntegrationKind>().unwrap_err().to_string().len() < 200);
        assert!(long.parse::<IntegrationState>().unwrap_err().to_string().len() < 200);
        assert!(long.parse::<DeliveryResult>().unwrap_err().to_string().len() < 200);
    }

    #[test]
    fn states_and_results_round_trip() {
        for st in [IntegrationState::Active, IntegrationState::Disabled] {
            assert_eq!(st.as_str().parse::<IntegrationState>(), Ok(st));
        }
        assert!("broken".parse::<IntegrationState>().is_err());
        for r in DeliveryResult::ALL {
            assert_eq!(r.as_str().parse::<DeliveryResult>(), Ok(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }

    #[test]
    fn the_aad_binds_account_integration_and_purpose() {
        let account = AccountId::new();
        let id = IntegrationId::new();
        let inbound = sealing_aad(account, id, SealPurpose::Inbound);
        assert_eq!(inbound, format!("{account}/{id}/inbound"));
        assert_eq!(
            sealing_aad(account, id, SealPurpose::Reply),
            format!("{account}/{id}/reply")
        );
        assert_ne!(inbound, sealing_aad(AccountId::new(), id, SealPurpose::Inbound));
    }
}
