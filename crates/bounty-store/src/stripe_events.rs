//! Inbound Stripe events and invoices, as rows: the event's id recorded
//! once (the exactly-once key), the account a Stripe customer belongs to,
//! its status and subscription, and its invoices. What an event means is
//! decided by `bounty_billing::stripe_events`, which applies it through
//! these in one transaction.

use bounty_core::{AccountId, AccountStatus, Currency, InvoiceStatus, PageLimit, Timestamp};

use crate::column::Text;
use crate::db::on_pool;
use crate::tx::{Tx, args};
use crate::{Page, Store, StoreError};

/// An invoice as Stripe describes it: amounts in the currency's minor
/// units, as Stripe counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeInvoice {
    pub id: String,
    pub status: InvoiceStatus,
    pub currency: Currency,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub total: i64,
    pub period_start: Option<Timestamp>,
    pub period_end: Option<Timestamp>,
    pub hosted_invoice_url: Option<String>,
}

/// A stored invoice: Stripe's latest word on it, and when that came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub stripe: StripeInvoice,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(sqlx::FromRow)]
pub(crate) struct InvoiceRow {
    id: String,
    status: Text<InvoiceStatus>,
    currency: Text<Currency>,
    amount_due: i64,
    amount_paid: i64,
    total: i64,
    period_start: Option<Timestamp>,
    period_end: Option<Timestamp>,
    hosted_invoice_url: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl From<InvoiceRow> for Invoice {
    fn from(r: InvoiceRow) -> Self {
        Invoice {
            stripe: StripeInvoice {
                id: r.id,
                status: r.status.0,
                currency: r.currency.0,
                amount_due: r.amount_due,
                amount_paid: r.amount_paid,
                total: r.total,
                period_start: r.period_start,
                period_end: r.period_end,
                hosted_invoice_url: r.hosted_invoice_url,
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Stores an invoice for the account, or brings the stored one up to date.
/// An invoice id kept for another account is left alone.
pub async fn upsert_invoice(
    tx: &mut Tx,
    account: AccountId,
    invoice: &StripeInvoice,
    now: Timestamp,
) -> Result<(), StoreError> {
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
            invoice.id.clone(),
            account,
            invoice.status.as_str(),
            invoice.currency,
            invoice.amount_due,
            invoice.amount_paid,
            invoice.total,
            invoice.period_start,
            invoice.period_end,
            invoice.hosted_invoice_url.clone(),
            now
        ],
    )
    .await?;
    Ok(())
}

/// Records a Stripe event's id, its type, the account it concerns and what
/// was done (`handled` or `ignored`); `false`, writing nothing, when the id
/// was recorded before (a redelivery).
pub async fn record_stripe_event(
    tx: &mut Tx,
    id: &str,
    kind: &str,
    account: Option<AccountId>,
    handled: bool,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let inserted: Option<(String,)> = tx
        .fetch_optional(
            "insert into stripe_events (id, type, account_id, outcome, received_at)
             values ($1, $2, $3, $4, $5)
             on conflict (id) do nothing
             returning id",
            args![
                id,
                kind,
                account.map(|a| a.to_string()),
                if handled { "handled" } else { "ignored" },
                now
            ],
        )
        .await?;
    Ok(inserted.is_some())
}

/// The account whose Stripe customer (live or test) is `customer`.
pub async fn account_of_customer(tx: &mut Tx, customer: &str) -> Result<Option<AccountId>, StoreError> {
    let row: Option<(String,)> = tx
        .fetch_optional(
            "select id from accounts where stripe_customer_id = $1 or stripe_test_customer_id = $1",
            args![customer],
        )
        .await?;
    row.map(|(a,)| {
        a.parse()
            .map_err(|e| StoreError::Corrupt(format!("accounts.id: {e}")))
    })
    .transpose()
}

/// Sets the account's status to `to`; with `only_from`, only when it is
/// that now.
pub async fn set_account_status(
    tx: &mut Tx,
    account: AccountId,
    to: AccountStatus,
    only_from: Option<AccountStatus>,
) -> Result<(), StoreError> {
    tx.execute(
        "update accounts set status = $2 where id = $1 and ($3 is null or status = $3)",
        args![account, to.as_str(), only_from.map(|s| s.as_str().to_owned())],
    )
    .await?;
    Ok(())
}

/// Keeps the account's Stripe subscription id.
pub async fn set_subscription_id(
    tx: &mut Tx,
    account: AccountId,
    subscription: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "update accounts set stripe_subscription_id = $2 where id = $1",
        args![account, subscription],
    )
    .await?;
    Ok(())
}

impl Store {
    /// The account's status; `None` when there is no such account.
    pub async fn account_status(&self, account: AccountId) -> Result<Option<AccountStatus>, StoreError> {
        let row: Option<(String,)> = on_pool!(&self.db, pool => {
            sqlx::query_as("select status from accounts where id = $1")
                .bind(account.to_string())
                .fetch_optional(pool)
                .await?
        });
        row.map(|(s,)| {
            s.parse()
                .map_err(|e| StoreError::Corrupt(format!("accounts.status: {e}")))
        })
        .transpose()
    }

    /// The account's invoices, newest first.
    pub async fn list_invoices(
        &self,
        account: AccountId,
        limit: PageLimit,
        after: Option<String>,
    ) -> Result<Page<Invoice>, StoreError> {
        let rows: Vec<InvoiceRow> = on_pool!(&self.db, pool => {
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
        let invoices = rows.into_iter().map(Invoice::from).collect();
        Ok(Page::from_overfetch(invoices, limit.get(), |i| {
            i.stripe.id.clone()
        }))
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
