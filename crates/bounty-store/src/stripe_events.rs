//! Inbound Stripe events: each is applied once, in the transaction that
//! records its id, and drives the account's status and invoices.
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

use bounty_core::{AccountId, PageLimit, Timestamp};
use chrono::TimeZone;

use crate::db::on_pool;
use crate::tx::{Tx, args};
use crate::{Page, Store, StoreError};

/// What receiving an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventReceipt {
    /// Applied now.
    Handled,
    /// A type we do not act on; recorded.
    Ignored,
    /// Seen before: nothing done again.
    Duplicate,
}

/// An invoice as Stripe's webhooks described it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Invoice {
    pub id: String,
    pub status: String,
    pub currency: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub total: i64,
    pub period_start: Option<Timestamp>,
    pub period_end: Option<Timestamp>,
    pub hosted_invoice_url: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

fn unix(v: &serde_json::Value) -> Option<Timestamp> {
    v.as_i64().and_then(|s| chrono::Utc.timestamp_opt(s, 0).single())
}

/// Stores a Stripe invoice object (from a webhook or fetched from Stripe)
/// for the account, or brings the stored one up to date.
pub(crate) async fn upsert_invoice(
    tx: &mut Tx,
    account: &str,
    object: &serde_json::Value,
    now: Timestamp,
) -> Result<(), StoreError> {
    let Some(id) = object["id"].as_str() else {
        return Err(StoreError::Config("the invoice has no id".to_owned()));
    };
    tx.execute(
        "insert into invoices (id, account_id, status, currency, amount_due, amount_paid, total,
             period_start, period_end, hosted_invoice_url, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
         on conflict (id) do update set status = excluded.status, amount_due = excluded.amount_due,
             amount_paid = excluded.amount_paid, total = excluded.total,
             period_start = coalesce(excluded.period_start, invoices.period_start),
             period_end = coalesce(excluded.period_end, invoices.period_end),
             hosted_invoice_url = coalesce(excluded.hosted_invoice_url, invoices.hosted_invoice_url),
             updated_at = excluded.updated_at
         where invoices.account_id = excluded.account_id",
        args![
            id,
            account,
            object["status"].as_str().unwrap_or("draft").to_owned(),
            object["currency"].as_str().unwrap_or("usd").to_owned(),
            object["amount_due"].as_i64().unwrap_or(0),
            object["amount_paid"].as_i64().unwrap_or(0),
            object["total"].as_i64().unwrap_or(0),
            unix(&object["period_start"]),
            unix(&object["period_end"]),
            object["hosted_invoice_url"].as_str().map(str::to_owned),
            now
        ],
    )
    .await?;
    Ok(())
}

impl Store {
    /// Applies a verified Stripe event exactly once. The event id is
    /// recorded in the same transaction as the effect, so a redelivery (or
    /// a crash and a retry by Stripe) changes nothing twice.
    pub async fn receive_stripe_event(&self, event: &serde_json::Value) -> Result<EventReceipt, StoreError> {
        let now = self.now();
        let Some(id) = event["id"].as_str() else {
            return Err(StoreError::Config("the event has no id".to_owned()));
        };
        let kind = event["type"].as_str().unwrap_or_default().to_owned();
        let object = &event["data"]["object"];
        let customer = match object["object"].as_str() {
            Some("customer") => object["id"].as_str(),
            _ => object["customer"].as_str(),
        };
        let mut tx = self.begin().await?;
        let account: Option<String> = match customer {
            Some(c) => tx
                .fetch_optional::<(String,)>(
                    "select id from accounts where stripe_customer_id = $1",
                    args![c],
                )
                .await?
                .map(|(a,)| a),
            None => None,
        };
        let handled = matches!(
            kind.as_str(),
            "invoice.created"
                | "invoice.finalized"
                | "invoice.paid"
                | "invoice.payment_failed"
                | "customer.subscription.updated"
                | "customer.subscription.deleted"
                | "billing.meter.error_report_triggered"
        );
        let inserted: Option<(String,)> = tx
            .fetch_optional(
                "insert into stripe_events (id, type, account_id, outcome, received_at)
                 values ($1, $2, $3, $4, $5)
                 on conflict (id) do nothing
                 returning id",
                args![
                    id,
                    kind.clone(),
                    account.clone(),
                    if handled { "handled" } else { "ignored" },
                    now
                ],
            )
            .await?;
        if inserted.is_none() {
            return Ok(EventReceipt::Duplicate);
        }
        if !handled {
            tx.commit().await?;
            return Ok(EventReceipt::Ignored);
        }
        let set_status = |status: &'static str, only_from: Option<&'static str>| (status, only_from);
        let status_change = match kind.as_str() {
            "invoice.paid" => Some(set_status("active", Some("past_due"))),
            "invoice.payment_failed" => Some(set_status("past_due", None)),
            "customer.subscription.deleted" => Some(set_status("suspended", None)),
            "customer.subscription.updated" => match object["status"].as_str() {
                Some("active" | "trialing") => Some(set_status("active", None)),
                Some("past_due" | "unpaid") => Some(set_status("past_due", None)),
                Some("canceled" | "incomplete_expired") => Some(set_status("suspended", None)),
                _ => None,
            },
            _ => None,
        };
        match (&account, kind.starts_with("invoice.")) {
            (Some(account), true) => upsert_invoice(&mut tx, account, object, now).await?,
            (None, true) => tracing::warn!(event.id = id, "invoice event for an unknown Stripe customer"),
            _ => {}
        }
        if kind.starts_with("customer.subscription.")
            && let Some(account) = &account
        {
            tx.execute(
                "update accounts set stripe_subscription_id = $2 where id = $1",
                args![account.clone(), object["id"].as_str().map(str::to_owned)],
            )
            .await?;
        }
        if let (Some(account), Some((status, only_from))) = (&account, status_change) {
            tx.execute(
                "update accounts set status = $2 where id = $1 and ($3 is null or status = $3)",
                args![account.clone(), status, only_from.map(str::to_owned)],
            )
            .await?;
            tracing::info!(account.id = %account, status, event = %kind, "account status follows Stripe");
        }
        if kind == "billing.meter.error_report_triggered" {
            tracing::error!(
                event.id = id,
                "Stripe reports meter event errors; see the Stripe dashboard"
            );
        }
        tx.commit().await?;
        Ok(EventReceipt::Handled)
    }

    /// The account's status: `active`, `past_due` or `suspended`.
    pub async fn account_status(&self, account: AccountId) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = on_pool!(&self.db, pool => {
            sqlx::query_as("select status from accounts where id = $1")
                .bind(account.to_string())
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(s,)| s))
    }

    /// The account's invoices, newest first.
    pub async fn list_invoices(
        &self,
        account: AccountId,
        limit: PageLimit,
        after: Option<String>,
    ) -> Result<Page<Invoice>, StoreError> {
        let rows: Vec<Invoice> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, status, currency, amount_due, amount_paid, total, period_start, period_end,
                     hosted_invoice_url, created_at, updated_at
                 from invoices where account_id = $1 and ($2 is null or id < $2)
                 order by id desc limit $3",
            )
            .bind(account.to_string())
            .bind(after)
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        Ok(Page::from_overfetch(rows, limit.get(), |i| i.id.clone()))
    }

    /// Counts of received Stripe events by outcome (`handled`, `ignored`).
    pub async fn stripe_event_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(&self.db, pool => {
            sqlx::query_as("select outcome, count(*) from stripe_events group by outcome order by outcome")
                .fetch_all(pool)
                .await?
        }))
    }
}
