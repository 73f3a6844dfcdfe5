//! What billing keeps about Stripe beyond the outbox: the catalogue that
//! `bounty stripe setup` created (meter, product, prices), accounts'
//! Stripe ids, invoices fetched from Stripe, and the ledger's side of
//! reconciliation.
//!
//! The catalogue is a small key-value table: `meter` and `product` hold
//! Stripe ids, and `price:<lookup key>` one price per plan price in use
//! (`bounty_cu_usd_500000`: USD, 500,000 micros per CU). Any process can
//! read it, so a subscription created by any worker uses the price that
//! setup made.

use bounty_core::{AccountId, OutboxId, Timestamp};
use chrono::NaiveDate;

use crate::db::on_pool;
use crate::stripe_events::{StripeInvoice, upsert_invoice};
use crate::tx::args;
use crate::{Store, StoreError};

/// An account's Stripe ids, once the outbox has created them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StripeIds {
    pub customer: Option<String>,
    pub subscription: Option<String>,
}

/// The ledger's metered CU of one account on one UTC day, as Stripe's
/// meter should have them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerDay {
    pub account_id: AccountId,
    pub stripe_customer_id: Option<String>,
    pub day: NaiveDate,
    /// Charged milli-CU, less charges whose meter events were cancelled.
    pub metered_milli: i64,
    /// Milli-CU of charges reversed by a customer balance credit: still on
    /// Stripe's meter, and credited on the invoice.
    pub credited_milli: i64,
    /// Outbox rows of these charges not yet sent (meter events or their
    /// cancellations): a difference while they are in flight is expected.
    pub in_flight: i64,
}

impl Store {
    /// A catalogue entry.
    pub async fn catalog_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = on_pool!(&self.db, pool => {
            sqlx::query_as("select value from stripe_catalog where key = $1")
                .bind(key.to_owned())
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(v,)| v))
    }

    /// Sets a catalogue entry.
    pub async fn catalog_put(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let now = self.now();
        on_pool!(&self.db, pool => {
            sqlx::query(
                "insert into stripe_catalog (key, value, updated_at) values ($1, $2, $3)
                 on conflict (key) do update set value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(key.to_owned())
            .bind(value.to_owned())
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The whole catalogue, by key.
    pub async fn catalog(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(on_pool!(&self.db, pool => {
            sqlx::query_as("select key, value from stripe_catalog order by key")
                .fetch_all(pool)
                .await?
        }))
    }

    /// The account's Stripe customer and subscription ids.
    pub async fn stripe_ids(&self, account: AccountId) -> Result<StripeIds, StoreError> {
        let row: Option<(Option<String>, Option<String>)> = on_pool!(&self.db, pool => {
            sqlx::query_as("select stripe_customer_id, stripe_subscription_id from accounts where id = $1")
                .bind(account.to_string())
                .fetch_optional(pool)
                .await?
        });
        Ok(row
            .map(|(customer, subscription)| StripeIds {
                customer,
                subscription,
            })
            .unwrap_or_default())
    }

    /// Queues a subscription for every account that has none and no
    /// subscription row in the outbox (accounts created before
    /// subscriptions existed). Returns how many were queued; running it
    /// again queues none.
    pub async fn enqueue_missing_subscriptions(&self) -> Result<u64, StoreError> {
        self.enqueue_for_accounts(
            "select a.id from accounts a
             where a.stripe_subscription_id is null
               and not exists (select 1 from outbox o where o.account_id = a.id and o.kind = 'stripe_subscription')
             order by a.id",
            "stripe_subscription",
        )
        .await
    }

    /// Queues the gateway's cost-plus price for the subscription of every
    /// account that has no such row in the outbox (accounts created before
    /// the gateway billed at cost plus). Returns how many were queued;
    /// running it again queues none.
    pub async fn enqueue_missing_subscription_items(&self) -> Result<u64, StoreError> {
        self.enqueue_for_accounts(
            "select a.id from accounts a
             where not exists (select 1 from outbox o
                               where o.account_id = a.id and o.kind = 'stripe_subscription_item')
             order by a.id",
            "stripe_subscription_item",
        )
        .await
    }

    /// Queues a live `kind` row (`{account_id}`) for each account `select`
    /// returns, keyed `{kind}:{account}`, once.
    async fn enqueue_for_accounts(
        &self,
        select: &'static str,
        kind: &'static str,
    ) -> Result<u64, StoreError> {
        let now = self.now();
        let accounts: Vec<(String,)> = on_pool!(&self.db, pool => {
            sqlx::query_as(select).fetch_all(pool).await?
        });
        let mut queued = 0;
        for (account,) in accounts {
            let payload = serde_json::json!({ "account_id": account }).to_string();
            let key = format!("{kind}:{account}");
            let inserted = on_pool!(&self.db, pool => {
                sqlx::query(
                    "insert into outbox (id, account_id, kind, transfer_id, payload, idempotency_key, status,
                         attempts, next_attempt_at, created_at)
                     values ($1, $2, $3, null, $4, $5, 'pending', 0, $6, $6)
                     on conflict (idempotency_key) do nothing",
                )
                .bind(OutboxId::new().to_string())
                .bind(account.clone())
                .bind(kind)
                .bind(payload)
                .bind(key)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
            });
            queued += inserted;
        }
        Ok(queued)
    }

    /// The money charged with a metered charge: the `charge_money` transfer
    /// of the same outcome, as (micros, currency).
    pub async fn charge_money_of(
        &self,
        account: AccountId,
        charge_transfer: &str,
    ) -> Result<Option<(i64, String)>, StoreError> {
        Ok(on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select m.amount, m.unit from ledger_transfers c
                 join ledger_transfers m on m.outcome_id = c.outcome_id and m.kind = 'charge_money'
                 where c.account_id = $1 and c.id = $2 and c.kind = 'charge'",
            )
            .bind(account.to_string())
            .bind(charge_transfer.to_owned())
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Stores invoices fetched from Stripe for the account. An invoice id
    /// already kept for another account is left alone.
    pub async fn upsert_invoices(
        &self,
        account: AccountId,
        invoices: &[StripeInvoice],
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        for invoice in invoices {
            upsert_invoice(&mut tx, account, invoice, now).await?;
        }
        tx.commit().await
    }

    /// Accounts with a Stripe customer, with that id (operator view).
    pub async fn admin_stripe_customers(&self) -> Result<Vec<(AccountId, String)>, StoreError> {
        let rows: Vec<(String, String)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, stripe_customer_id from accounts where stripe_customer_id is not null order by id",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(a, c)| {
                a.parse()
                    .map(|a| (a, c))
                    .map_err(|e| StoreError::Corrupt(format!("accounts.id `{a}`: {e}")))
            })
            .collect()
    }

    /// The ledger's side of reconciliation: metered milli-CU per account
    /// and UTC day of the charges written in `[from, to)`, every account
    /// (operator view).
    pub async fn admin_ledger_metered_days(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<LedgerDay>, StoreError> {
        type Row = (
            String,
            Option<String>,
            Timestamp,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let mut tx = self.begin().await?;
        let rows: Vec<Row> = tx
            .fetch_all(
                "select t.account_id, a.stripe_customer_id, t.created_at, t.amount,
                     mo.status, ro.status, ro.sent_as
                 from ledger_transfers t
                 join accounts a on a.id = t.account_id
                 left join outbox mo on mo.transfer_id = t.id and mo.kind = 'meter_event'
                 left join ledger_transfers r on r.reverses_id = t.id
                 left join outbox ro on ro.transfer_id = r.id and ro.kind = 'meter_event_reversal'
                 where t.kind = 'charge' and t.livemode and t.created_at >= $1 and t.created_at < $2
                 order by t.account_id, t.created_at",
                args![from, to],
            )
            .await?;
        tx.commit().await?;
        let mut days: Vec<LedgerDay> = Vec::new();
        for (account, customer, at, amount, meter_status, reversal_status, sent_as) in rows {
            let account_id: AccountId = account
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("ledger_transfers.account_id `{account}`: {e}")))?;
            let day = at.date_naive();
            let entry = match days.last_mut() {
                Some(d) if d.account_id == account_id && d.day == day => d,
                _ => {
                    days.push(LedgerDay {
                        account_id,
                        stripe_customer_id: customer,
                        day,
                        metered_milli: 0,
                        credited_milli: 0,
                        in_flight: 0,
                    });
                    days.last_mut().expect("just pushed")
                }
            };
            match sent_as.as_deref() {
                Some("cancel") => {}
                Some("credit") => {
                    entry.metered_milli += amount;
                    entry.credited_milli += amount;
                }
                _ => entry.metered_milli += amount,
            }
            if meter_status.as_deref() != Some("sent") {
                entry.in_flight += 1;
            }
            if reversal_status.is_some_and(|s| s != "sent") {
                entry.in_flight += 1;
            }
        }
        Ok(days)
    }
}
