//! Gateway calls billed at cost plus the plan's markup: the rows the
//! billing sweep reads and marks, and the lines a customer sees.
//!
//! What to bill is decided in bounty-billing (`gateway`); these only read
//! and write rows, inside the caller's transaction where they write.

use bounty_core::{AccountId, ApiKeyMode, PageLimit, Timestamp, TransferId};

use crate::db::on_pool;
use crate::page::Page;
use crate::tx::{Tx, args};
use crate::{Store, StoreError};

/// An account's book and currency with cost-plus calls not billed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnbilledGroup {
    pub account: AccountId,
    pub mode: ApiKeyMode,
    pub currency: String,
}

/// What [`mark_cost_plus_calls`] marked: how many calls, and their
/// charges' sum in micros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MarkedCalls {
    pub calls: i64,
    pub charge_micros: i64,
    pub first_at: Option<Timestamp>,
    pub last_at: Option<Timestamp>,
}

/// Marks up to `max` of the group's unbilled cost-plus calls, oldest
/// first, as billed by `transfer`, and sums what it marked. The caller
/// holds the account's billing lock, so no other sweep marks them too; a
/// call recorded meanwhile is either marked and summed here or left for
/// the next sweep, never one without the other (the sum is read back from
/// the marked rows).
pub async fn mark_cost_plus_calls(
    tx: &mut Tx,
    group: &UnbilledGroup,
    transfer: TransferId,
    max: u32,
) -> Result<MarkedCalls, StoreError> {
    tx.execute(
        "update gateway_calls set billed_transfer_id = $1
         where id in (select id from gateway_calls
                      where account_id = $2 and livemode = $3 and currency = $4 and billing = 'cost_plus'
                        and billed_transfer_id is null and charge_micros > 0
                      order by created_at, id limit $5)",
        args![
            transfer.to_string(),
            group.account,
            group.mode.livemode(),
            group.currency.clone(),
            i64::from(max)
        ],
    )
    .await?;
    let (calls, charge_micros, first_at, last_at): (i64, i64, Option<Timestamp>, Option<Timestamp>) = tx
        .fetch_one(
            "select count(*), cast(coalesce(sum(charge_micros), 0) as bigint), min(created_at), max(created_at)
             from gateway_calls where billed_transfer_id = $1 and account_id = $2",
            args![transfer.to_string(), group.account],
        )
        .await?;
    Ok(MarkedCalls {
        calls,
        charge_micros,
        first_at,
        last_at,
    })
}

/// A `cost_plus` line as the customer sees it: the money, the calls it
/// bills and when they were made. Never the calls' inference cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostPlusLine {
    pub transfer: String,
    pub amount_micros: i64,
    pub currency: String,
    pub calls: i64,
    pub first_call_at: Option<Timestamp>,
    pub last_call_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// Its reversal, if it was reversed.
    pub reversed: bool,
}

impl Store {
    /// Up to `limit` groups (account, book, currency) with cost-plus
    /// calls not billed yet.
    pub async fn unbilled_cost_plus(&self, limit: u32) -> Result<Vec<UnbilledGroup>, StoreError> {
        let rows: Vec<(String, bool, String)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select distinct account_id, livemode, currency from gateway_calls
                 where billing = 'cost_plus' and billed_transfer_id is null and charge_micros > 0
                 order by account_id, livemode, currency limit $1",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(account, livemode, currency)| {
                Ok(UnbilledGroup {
                    account: account
                        .parse()
                        .map_err(|e| StoreError::Corrupt(format!("gateway_calls.account_id: {e}")))?,
                    mode: ApiKeyMode::from_livemode(livemode),
                    currency,
                })
            })
            .collect()
    }

    /// The account's cost-plus lines in one book, newest first.
    pub async fn cost_plus_lines(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        limit: PageLimit,
        after: Option<TransferId>,
    ) -> Result<Page<CostPlusLine>, StoreError> {
        #[allow(clippy::type_complexity)]
        let rows: Vec<(
            String,
            i64,
            String,
            Timestamp,
            i64,
            Option<Timestamp>,
            Option<Timestamp>,
            bool,
        )> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select t.id, t.amount, t.unit, t.created_at,
                     (select count(*) from gateway_calls c where c.billed_transfer_id = t.id),
                     (select min(created_at) from gateway_calls c where c.billed_transfer_id = t.id),
                     (select max(created_at) from gateway_calls c where c.billed_transfer_id = t.id),
                     exists (select 1 from ledger_transfers r where r.reverses_id = t.id)
                 from ledger_transfers t
                 where t.account_id = $1 and t.livemode = $2 and t.kind = 'cost_plus' and ($3 is null or t.id < $3)
                 order by t.id desc limit $4",
            )
            .bind(account.to_string())
            .bind(mode.livemode())
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        let lines = rows
            .into_iter()
            .map(
                |(
                    transfer,
                    amount_micros,
                    currency,
                    created_at,
                    calls,
                    first_call_at,
                    last_call_at,
                    reversed,
                )| {
                    CostPlusLine {
                        transfer,
                        amount_micros,
                        currency,
                        calls,
                        first_call_at,
                        last_call_at,
                        created_at,
                        reversed,
                    }
                },
            )
            .collect();
        Ok(Page::from_overfetch(lines, limit.get(), |l| l.transfer.clone()))
    }

    /// Cost-plus calls not billed yet, in one book: how many, and their
    /// charges per currency (what the next sweep bills).
    pub async fn unbilled_cost_plus_of(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        Ok(on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select currency, count(*), cast(coalesce(sum(charge_micros), 0) as bigint) from gateway_calls
                 where account_id = $1 and livemode = $2 and billing = 'cost_plus' and billed_transfer_id is null
                   and charge_micros > 0
                 group by currency order by currency",
            )
            .bind(account.to_string())
            .bind(mode.livemode())
            .fetch_all(pool)
            .await?
        }))
    }
}
