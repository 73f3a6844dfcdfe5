//! Inbound Stripe events: parsed into what they mean ([`StripeEvent`]),
//! then applied exactly once, in the transaction that records the event's
//! id ([`receive`]).
//!
//! | event | effect |
//! |---|---|
//! | `invoice.created`, `invoice.finalized` | the invoice is stored (upserted) |
//! | `invoice.paid` | stored; a `past_due` account becomes `active` |
//! | `invoice.payment_failed` | stored; the account becomes `past_due` |
//! | `customer.subscription.updated` | status from the subscription's: active/trialing → `active`, past_due/unpaid → `past_due`, canceled/incomplete_expired → `suspended` |
//! | `customer.subscription.deleted` | `suspended` |
//! | `billing.meter.error_report_triggered` | recorded and logged for an operator |
//! | anything else | recorded as `ignored` |
//!
//! Objects are read loosely (a field Stripe adds or drops between API
//! versions changes nothing), but an event without an id, or an invoice
//! without one, is refused.

use bounty_core::{AccountStatus, Currency, InvoiceStatus};
use bounty_store::stripe_events::{
    account_of_customer, record_stripe_event, set_account_status, set_subscription_id, upsert_invoice,
};
use bounty_store::{Store, StoreError, StripeInvoice};
use chrono::TimeZone;

/// A status change an event makes: to `to`, or only from `only_from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusChange {
    pub to: AccountStatus,
    pub only_from: Option<AccountStatus>,
}

/// What an event means for Bounty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeEffect {
    /// An invoice to store, and maybe a status change (paid, failed).
    Invoice {
        invoice: StripeInvoice,
        status: Option<StatusChange>,
    },
    /// The account's subscription changed (its id, and maybe a status).
    Subscription {
        id: Option<String>,
        status: Option<StatusChange>,
    },
    /// Stripe reports meter events it could not take: an operator looks.
    MeterErrors,
    /// A type we do not act on.
    Ignored,
}

/// A parsed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeEvent {
    pub id: String,
    /// Stripe's type, e.g. `invoice.paid`.
    pub kind: String,
    /// The Stripe customer it concerns, when it names one.
    pub customer: Option<String>,
    pub effect: StripeEffect,
}

/// An event that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadEvent {
    /// The named field is missing or of the wrong type.
    #[error("the event has no `{0}`")]
    Missing(&'static str),
    /// The named field holds a value Stripe does not send there.
    #[error("the event's `{0}` is not a value Stripe sends there")]
    Invalid(&'static str),
}

/// What receiving an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventReceipt {
    /// Applied now.
    Handled,
    /// A type we do not act on; recorded.
    Ignored,
    /// Seen before: nothing done again.
    Duplicate,
}

fn unix(v: &serde_json::Value) -> Option<chrono::DateTime<chrono::Utc>> {
    v.as_i64().and_then(|s| chrono::Utc.timestamp_opt(s, 0).single())
}

/// A Stripe invoice object, read loosely.
pub fn parse_invoice(object: &serde_json::Value) -> Result<StripeInvoice, BadEvent> {
    let id = object["id"].as_str().ok_or(BadEvent::Missing("data.object.id"))?;
    Ok(StripeInvoice {
        id: id.to_owned(),
        status: match object["status"].as_str() {
            None => InvoiceStatus::Draft,
            Some(s) => s.parse().map_err(|_| BadEvent::Invalid("data.object.status"))?,
        },
        currency: match object["currency"].as_str() {
            None => Currency::USD,
            Some(c) => c.parse().map_err(|_| BadEvent::Invalid("data.object.currency"))?,
        },
        amount_due: object["amount_due"].as_i64().unwrap_or(0),
        amount_paid: object["amount_paid"].as_i64().unwrap_or(0),
        total: object["total"].as_i64().unwrap_or(0),
        period_start: unix(&object["period_start"]),
        period_end: unix(&object["period_end"]),
        hosted_invoice_url: object["hosted_invoice_url"].as_str().map(str::to_owned),
    })
}

fn change(to: AccountStatus, only_from: Option<AccountStatus>) -> Option<StatusChange> {
    Some(StatusChange { to, only_from })
}

/// Reads a verified event into what it means.
pub fn parse(event: &serde_json::Value) -> Result<StripeEvent, BadEvent> {
    use AccountStatus::{Active, PastDue, Suspended};
    let id = event["id"].as_str().ok_or(BadEvent::Missing("id"))?.to_owned();
    let kind = event["type"].as_str().unwrap_or_default().to_owned();
    let object = &event["data"]["object"];
    let customer = match object["object"].as_str() {
        Some("customer") => object["id"].as_str(),
        _ => object["customer"].as_str(),
    }
    .map(str::to_owned);
    let invoice = |status| -> Result<StripeEffect, BadEvent> {
        Ok(StripeEffect::Invoice {
            invoice: parse_invoice(object)?,
            status,
        })
    };
    let subscription = |status| StripeEffect::Subscription {
        id: object["id"].as_str().map(str::to_owned),
        status,
    };
    let effect = match kind.as_str() {
        "invoice.created" | "invoice.finalized" => invoice(None)?,
        "invoice.paid" => invoice(change(Active, Some(PastDue)))?,
        "invoice.payment_failed" => invoice(change(PastDue, None))?,
        "customer.subscription.deleted" => subscription(change(Suspended, None)),
        "customer.subscription.updated" => subscription(match object["status"].as_str() {
            Some("active" | "trialing") => change(Active, None),
            Some("past_due" | "unpaid") => change(PastDue, None),
            Some("canceled" | "incomplete_expired") => change(Suspended, None),
            _ => None,
        }),
        "billing.meter.error_report_triggered" => StripeEffect::MeterErrors,
        _ => StripeEffect::Ignored,
    };
    Ok(StripeEvent {
        id,
        kind,
        customer,
        effect,
    })
}

/// Applies a parsed event exactly once: its id is recorded in the same
/// transaction as its effect, so a redelivery (or a crash and Stripe's
/// retry) changes nothing twice.
pub async fn receive(store: &Store, event: &StripeEvent) -> Result<EventReceipt, StoreError> {
    let now = store.now();
    let mut tx = store.begin().await?;
    let account = match &event.customer {
        Some(c) => account_of_customer(&mut tx, c).await?,
        None => None,
    };
    let handled = event.effect != StripeEffect::Ignored;
    if !record_stripe_event(&mut tx, &event.id, &event.kind, account, handled, now).await? {
        return Ok(EventReceipt::Duplicate);
    }
    let status = match &event.effect {
        StripeEffect::Ignored => {
            tx.commit().await?;
            return Ok(EventReceipt::Ignored);
        }
        StripeEffect::Invoice { invoice, status } => {
            match account {
                Some(account) => {
                    upsert_invoice(&mut tx, account, invoice, now).await?;
                    let kind = match event.kind.as_str() {
                        "invoice.finalized" => Some(bounty_core::event::EventType::InvoiceFinalized),
                        "invoice.paid" => Some(bounty_core::event::EventType::InvoicePaid),
                        _ => None,
                    };
                    if let Some(kind) = kind {
                        crate::events::invoice_event(&mut tx, kind, account, invoice, now).await?;
                    }
                }
                None => tracing::warn!(event.id = %event.id, "invoice event for an unknown Stripe customer"),
            }
            *status
        }
        StripeEffect::Subscription { id, status } => {
            if let (Some(account), Some(id)) = (account, id) {
                set_subscription_id(&mut tx, account, id).await?;
            }
            *status
        }
        StripeEffect::MeterErrors => {
            tracing::error!(event.id = %event.id, "Stripe reports meter event errors; see the Stripe dashboard");
            None
        }
    };
    if let (Some(account), Some(change)) = (account, status) {
        set_account_status(&mut tx, account, change.to, change.only_from).await?;
        tracing::info!(account.id = %account, status = %change.to, event = %event.kind, "account status follows Stripe");
    }
    tx.commit().await?;
    Ok(EventReceipt::Handled)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(kind: &str, object: serde_json::Value) -> serde_json::Value {
        json!({"id": "evt_1", "type": kind, "data": {"object": object}})
    }

    #[test]
    fn invoice_events_carry_the_invoice_and_the_status_they_imply() {
        let paid = parse(&event(
            "invoice.paid",
            json!({"id": "in_1", "object": "invoice", "customer": "cus_1", "status": "paid",
                   "amount_paid": 4200, "period_start": 1_793_000_000}),
        ))
        .unwrap();
        assert_eq!(paid.customer.as_deref(), Some("cus_1"));
        let StripeEffect::Invoice { invoice, status } = paid.effect else {
            panic!("an invoice effect");
        };
        assert_eq!((invoice.id.as_str(), invoice.amount_paid), ("in_1", 4200));
        assert!(invoice.period_start.is_some() && invoice.period_end.is_none());
        assert_eq!(
            status,
            Some(StatusChange {
                to: AccountStatus::Active,
                only_from: Some(AccountStatus::PastDue)
            })
        );
        assert_eq!(
            parse(&event("invoice.paid", json!({"object": "invoice"}))),
            Err(BadEvent::Missing("data.object.id"))
        );
    }

    #[test]
    fn subscription_statuses_map_onto_account_statuses() {
        for (stripe, ours) in [
            ("trialing", Some(AccountStatus::Active)),
            ("unpaid", Some(AccountStatus::PastDue)),
            ("incomplete_expired", Some(AccountStatus::Suspended)),
            ("paused", None),
        ] {
            let e = parse(&event(
                "customer.subscription.updated",
                json!({"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": stripe}),
            ))
            .unwrap();
            let StripeEffect::Subscription { id, status } = e.effect else {
                panic!("a subscription effect");
            };
            assert_eq!(id.as_deref(), Some("sub_1"));
            assert_eq!(status.map(|s| s.to), ours, "{stripe}");
        }
        let customer = parse(&event(
            "customer.updated",
            json!({"id": "cus_9", "object": "customer"}),
        ))
        .unwrap();
        assert_eq!(customer.customer.as_deref(), Some("cus_9"));
        assert_eq!(customer.effect, StripeEffect::Ignored);
        assert_eq!(parse(&json!({"type": "x"})), Err(BadEvent::Missing("id")));
    }
}
