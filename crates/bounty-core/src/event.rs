//! Events: what happened to an account, as its finance and ops systems
//! learn it, from its webhook endpoints (signed, Standard Webhooks) or
//! `GET /v1/events`.
//!
//! An event is written in the transaction of the change it describes, so
//! it exists exactly when the change does; each enabled endpoint that
//! subscribes to its type gets one outbox row in the same transaction.
//! Its JSON is stable: `{"id": "evt_…", "object": "event", "type",
//! "created" (Unix seconds), "livemode", "data": {"object": {…}}}`. The
//! object is what the customer sees of the thing that changed; it never
//! holds inference cost or margin.

use serde::Serialize;

use crate::clock::Timestamp;
use crate::id::EventId;

crate::stored_enum! {
    /// What an event says happened.
    pub enum EventType("event type") {
        /// A task finished (its outcome opened): resolved, failed, or
        /// waiting for its verification.
        TaskCompleted = "task.completed",
        /// An outcome was verified resolved (and charged, when billable).
        OutcomeResolved = "outcome.resolved",
        /// An outcome failed: never charged.
        OutcomeFailed = "outcome.failed",
        /// An outcome was handed to a person: never charged.
        OutcomeEscalated = "outcome.escalated",
        /// A resolved outcome was reversed (reopened, disputed, goodwill):
        /// its charge is reversed too.
        OutcomeReversed = "outcome.reversed",
        /// Money was charged for an outcome.
        ChargeCreated = "charge.created",
        /// An outcome's charge was reversed.
        ChargeReversed = "charge.reversed",
        /// A dispute of a charge was opened.
        DisputeOpened = "dispute.opened",
        /// A dispute was accepted: the charge is reversed.
        DisputeAccepted = "dispute.accepted",
        /// A dispute was rejected: the charge stands.
        DisputeRejected = "dispute.rejected",
        /// Live spend this month reached a threshold of the spending cap
        /// (each threshold once a month).
        BudgetThresholdReached = "budget.threshold_reached",
        /// Prepaid credits fell below a fifth of the last grant.
        CreditsLow = "credits.low",
        /// Stripe finalized an invoice of the account.
        InvoiceFinalized = "invoice.finalized",
        /// An invoice of the account was paid.
        InvoicePaid = "invoice.paid",
    }
}

impl serde::Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What a webhook endpoint's signing secret is sealed to: its account and
/// id, so a sealed secret moved to another row does not open.
pub fn webhook_secret_aad(account: crate::AccountId, endpoint: crate::WebhookEndpointId) -> String {
    format!("{account}/{endpoint}/webhook")
}

/// Whether an endpoint subscribed to `types` gets events of `kind`: an
/// empty list, or `*`, is every type.
pub fn subscribes(types: &[String], kind: EventType) -> bool {
    types.is_empty() || types.iter().any(|t| t == "*" || t == kind.as_str())
}

/// An event as it is delivered and listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: EventId,
    /// Always `"event"`.
    pub object: &'static str,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// Unix seconds.
    pub created: i64,
    pub livemode: bool,
    pub data: EventData,
}

/// The thing that changed, as the customer sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventData {
    pub object: serde_json::Value,
}

impl Event {
    pub fn new(
        id: EventId,
        kind: EventType,
        created: Timestamp,
        livemode: bool,
        object: serde_json::Value,
    ) -> Self {
        Event {
            id,
            object: "event",
            kind,
            created: created.timestamp(),
            livemode,
            data: EventData { object },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_and_subscriptions_match() {
        for &t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
        }
        assert!("charge.refunded".parse::<EventType>().is_err());
        assert!(subscribes(&[], EventType::ChargeCreated));
        assert!(subscribes(&["*".into()], EventType::InvoicePaid));
        assert!(subscribes(&["charge.created".into()], EventType::ChargeCreated));
        assert!(!subscribes(&["charge.created".into()], EventType::ChargeReversed));
    }

    #[test]
    fn an_event_has_the_documented_shape() {
        let at = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        let id = EventId::new();
        let e = Event::new(
            id,
            EventType::ChargeCreated,
            at,
            true,
            serde_json::json!({"id": "xfer_1"}),
        );
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"id": id.to_string(), "object": "event", "type": "charge.created",
                               "created": 1_795_000_000, "livemode": true, "data": {"object": {"id": "xfer_1"}}})
        );
    }
}
