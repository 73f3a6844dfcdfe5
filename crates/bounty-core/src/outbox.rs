//! What the transactional outbox carries: the kinds of external effect,
//! with their stored names in one place, and the payloads of Stripe's
//! meter events, built here and parsed by the sender.
//!
//! | kind | written when | payload |
//! |---|---|---|
//! | `meter_event` | a `charge` transfer is written | [`MeterEventPayload`]: the transfer id and its milli-CU |
//! | `meter_event_reversal` | that charge is reversed | [`MeterEventReversalPayload`]: the original transfer, and the reversal |
//! | `stripe_customer` | an account is created (or its first test charge) | `{account_id, name}` |
//! | `meter_event` (gateway) | a `cost_plus` transfer is written | [`MeterEventPayload`] on [`GATEWAY_METER_EVENT_NAME`]: the transfer id and its micros |
//! | `stripe_subscription` | an account is created, or `bounty stripe setup` finds it without one | `{account_id}` |
//! | `stripe_subscription_item` | an account is created, or `bounty stripe setup` finds it without one | `{account_id}`: the gateway's cost-plus price added to its subscription |
//! | `helpdesk_reply` | a helpdesk ticket's task finishes | the reply or hand-off |
//! | `webhook_event` | an event is written, per enabled endpoint subscribed to its type | `{endpoint_id, event_id}` |

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::id::TransferId;

/// The Stripe billing meter's event name.
pub const METER_EVENT_NAME: &str = "bounty_compute_units";

/// The Stripe billing meter of gateway calls billed at cost plus markup:
/// its events' values are micros of the subscription's currency.
pub const GATEWAY_METER_EVENT_NAME: &str = "bounty_gateway_cost_plus";

crate::stored_enum! {
    /// An external effect waiting in the outbox.
    pub enum OutboxKind("outbox kind") {
        /// Metered CU to report to Stripe.
        MeterEvent = "meter_event",
        /// A meter event to undo (cancel, or credit past 24 h).
        MeterEventReversal = "meter_event_reversal",
        /// The account's Stripe customer to create.
        StripeCustomer = "stripe_customer",
        /// The account's Stripe subscription to create.
        StripeSubscription = "stripe_subscription",
        /// The gateway's cost-plus price to add to the account's
        /// subscription.
        StripeSubscriptionItem = "stripe_subscription_item",
        /// An answer or hand-off to post to a helpdesk ticket.
        HelpdeskReply = "helpdesk_reply",
        /// An event to deliver to one of the account's webhook endpoints.
        WebhookEvent = "webhook_event",
    }
}

crate::stored_enum! {
    /// Where an outbox row stands.
    pub enum OutboxStatus("outbox status") {
        /// Waiting to be sent (or retried).
        Pending = "pending",
        /// Delivered.
        Sent = "sent",
        /// Parked after a permanent error: an operator looks (`bounty outbox
        /// retry`).
        Failed = "failed",
    }
}

/// A meter event: `value` milli-CU for the charge `identifier` (its
/// transfer id, which Stripe dedupes on for about 24 h).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterEventPayload {
    pub event_name: String,
    pub identifier: String,
    pub value: i64,
    /// Unix seconds of the charge.
    pub timestamp: i64,
}

impl MeterEventPayload {
    /// The meter event of the charge `transfer` of `value` milli-CU.
    pub fn of_charge(transfer: TransferId, value: i64, at: Timestamp) -> Self {
        MeterEventPayload {
            event_name: METER_EVENT_NAME.to_owned(),
            identifier: transfer.to_string(),
            value,
            timestamp: at.timestamp(),
        }
    }

    /// The meter event of the `cost_plus` transfer `transfer` of `micros`.
    pub fn of_cost_plus(transfer: TransferId, micros: i64, at: Timestamp) -> Self {
        MeterEventPayload {
            event_name: GATEWAY_METER_EVENT_NAME.to_owned(),
            identifier: transfer.to_string(),
            value: micros,
            timestamp: at.timestamp(),
        }
    }
}

/// The undoing of a meter event: the original's identifier, value and
/// timestamp (the sender chooses between a cancel and a credit from it),
/// and the reversing transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterEventReversalPayload {
    pub event_name: String,
    pub identifier: String,
    pub value: i64,
    /// Unix seconds of the original charge.
    pub timestamp: i64,
    /// The reversing transfer's id.
    pub reversal: String,
}

impl MeterEventReversalPayload {
    /// The undoing of the charge `original` (made at `charged_at`) by the
    /// transfer `reversal`.
    pub fn of_reversal(original: &str, value: i64, charged_at: Timestamp, reversal: TransferId) -> Self {
        MeterEventReversalPayload {
            event_name: METER_EVENT_NAME.to_owned(),
            identifier: original.to_owned(),
            value,
            timestamp: charged_at.timestamp(),
            reversal: reversal.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_unknown_ones_are_refused() {
        for &k in OutboxKind::ALL {
            assert_eq!(k.as_str().parse::<OutboxKind>().unwrap(), k);
        }
        for &st in OutboxStatus::ALL {
            assert_eq!(st.to_string().parse::<OutboxStatus>().unwrap(), st);
        }
        assert!("email".parse::<OutboxKind>().is_err());
    }

    #[test]
    fn a_meter_event_names_its_charge_in_stripes_shape() {
        let at = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        let id = TransferId::new();
        let p = MeterEventPayload::of_charge(id, 1000, at);
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({"event_name": "bounty_compute_units", "identifier": id.to_string(),
                               "value": 1000, "timestamp": 1_795_000_000})
        );
        let r = MeterEventReversalPayload::of_reversal(&id.to_string(), 1000, at, TransferId::new());
        let back: MeterEventReversalPayload =
            serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
