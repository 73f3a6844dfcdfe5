//! The ledger's repositories: the account's billing settings and lock,
//! balances and period sums of one mode's book, transfers, cap alerts and
//! budget reservations. What to write is decided above the store
//! (`bounty_core::ledger` and bounty-billing's settlement); these only
//! read and write rows, inside the caller's transaction.

use bounty_core::ledger::{BaseKind, LedgerAccount, TransferSpec, TransferUnit};
use bounty_core::plan::Plan;
use bounty_core::{AccountId, ApiKeyMode, OutcomeId, TaskId, Timestamp, TransferId};
use chrono::{Datelike, TimeZone, Utc};

use crate::StoreError;
use crate::tx::{Tx, args};

fn corrupt(column: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{column}: {e}"))
}

fn to_json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).expect("serializes to JSON")
}

/// The first instant of `now`'s calendar month (UTC): the period of
/// included CU and spending caps.
pub fn period_start(now: Timestamp) -> Timestamp {
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now)
}

/// `YYYY-MM` of `now`.
pub fn period_name(now: Timestamp) -> String {
    format!("{:04}-{:02}", now.year(), now.month())
}

/// The billing settings of an account, read under its lock.
#[derive(Debug, Clone)]
pub struct Billing {
    pub plan: Plan,
    pub monthly_cap_micros: Option<i64>,
    pub alert_percents: Vec<u32>,
}

/// Alert thresholds of a new cap, in percent.
pub const DEFAULT_ALERT_PERCENTS: [u32; 3] = [50, 80, 100];

/// Takes the account's billing lock (creating its row with the default
/// plan if needed) and reads its settings. Every transaction that reads
/// and then changes an account's balances, caps or outcomes starts here.
pub async fn lock_billing(tx: &mut Tx, account: AccountId, now: Timestamp) -> Result<Billing, StoreError> {
    read_billing(tx, account, now, true).await
}

/// Reads the account's billing settings (creating its row with the default
/// plan if needed); with `lock`, also takes the account's billing lock: the
/// row's lock on Postgres, the write lock on SQLite.
pub async fn read_billing(
    tx: &mut Tx,
    account: AccountId,
    now: Timestamp,
    lock: bool,
) -> Result<Billing, StoreError> {
    tx.execute(
        "insert into account_billing (account_id, plan, monthly_cap_micros, alert_percents, updated_at)
         values ($1, $2, null, $3, $4)
         on conflict (account_id) do nothing",
        args![
            account.to_string(),
            to_json(&Plan::default_value_plan()),
            to_json(&DEFAULT_ALERT_PERCENTS),
            now
        ],
    )
    .await?;
    let (plan, cap, alerts): (String, Option<i64>, String) = if lock {
        tx.fetch_one(
            "update account_billing set updated_at = $2 where account_id = $1
             returning plan, monthly_cap_micros, alert_percents",
            args![account.to_string(), now],
        )
        .await?
    } else {
        tx.fetch_one(
            "select plan, monthly_cap_micros, alert_percents from account_billing where account_id = $1",
            args![account.to_string()],
        )
        .await?
    };
    Ok(Billing {
        plan: serde_json::from_str(&plan).map_err(|e| corrupt("account_billing.plan", e))?,
        monthly_cap_micros: cap,
        alert_percents: serde_json::from_str(&alerts)
            .map_err(|e| corrupt("account_billing.alert_percents", e))?,
    })
}

/// Balance of one of the account's ledger accounts in one mode's book:
/// credits in minus debits out.
pub async fn balance(
    tx: &mut Tx,
    account: AccountId,
    mode: ApiKeyMode,
    code: LedgerAccount,
    unit: &TransferUnit,
) -> Result<i64, StoreError> {
    // Two sums, each served by its own covering index (0010, 0015), instead
    // of one `credit = $2 or debit = $2` that no index can serve.
    let (v,): (i64,) = tx
        .fetch_one(
            "select cast(
                 (select coalesce(sum(amount), 0) from ledger_transfers
                  where account_id = $1 and livemode = $4 and credit = $2 and unit = $3)
               - (select coalesce(sum(amount), 0) from ledger_transfers
                  where account_id = $1 and livemode = $4 and debit = $2 and unit = $3)
             as bigint)",
            args![account.to_string(), code.as_str(), unit.as_str(), mode.livemode()],
        )
        .await?;
    Ok(v)
}

/// Net of transfers of `kind` (minus their reversals) since `from`, in
/// one mode's book.
pub async fn net_since(
    tx: &mut Tx,
    account: AccountId,
    mode: ApiKeyMode,
    kind: BaseKind,
    from: Timestamp,
) -> Result<i64, StoreError> {
    let (v,): (i64,) = tx
        .fetch_one(
            "select cast(coalesce(sum(case when kind = $2 then amount else -amount end), 0) as bigint)
             from ledger_transfers
             where account_id = $1 and livemode = $5 and kind in ($2, $4) and created_at >= $3",
            args![
                account.to_string(),
                kind.as_str(),
                from,
                kind.reversal_str(),
                mode.livemode()
            ],
        )
        .await?;
    Ok(v)
}

/// Money charged since `from` in one mode's book, net of reversals:
/// outcomes' charges and gateway calls billed at cost plus markup. What
/// a spending cap and its alerts count.
pub async fn money_spent_since(
    tx: &mut Tx,
    account: AccountId,
    mode: ApiKeyMode,
    from: Timestamp,
) -> Result<i64, StoreError> {
    let outcomes = net_since(tx, account, mode, BaseKind::ChargeMoney, from).await?;
    let gateway = net_since(tx, account, mode, BaseKind::CostPlus, from).await?;
    Ok(outcomes.saturating_add(gateway))
}

/// Live money charged this month plus money reserved for running tasks:
/// what the cap (live money only) is checked against.
pub async fn committed_spend(tx: &mut Tx, account: AccountId, now: Timestamp) -> Result<i64, StoreError> {
    let spent = money_spent_since(tx, account, ApiKeyMode::Live, period_start(now)).await?;
    let (reserved,): (i64,) = tx
        .fetch_one(
            "select cast(coalesce(sum(amount_micros), 0) as bigint) from budget_reservations where account_id = $1",
            args![account.to_string()],
        )
        .await?;
    Ok(spent.saturating_add(reserved))
}

/// Writes one transfer of the account's book `mode`.
#[allow(clippy::too_many_arguments)] // one argument per column of the row
pub async fn insert_transfer(
    tx: &mut Tx,
    account: AccountId,
    t: &TransferSpec,
    outcome: Option<&str>,
    reverses: Option<&str>,
    memo: Option<String>,
    mode: ApiKeyMode,
    now: Timestamp,
) -> Result<TransferId, StoreError> {
    insert_transfer_as(
        tx,
        TransferId::new(),
        account,
        t,
        outcome,
        reverses,
        memo,
        mode,
        now,
    )
    .await
}

/// [`insert_transfer`] under an id chosen by the caller (one that rows
/// written before it in the transaction already name).
#[allow(clippy::too_many_arguments)] // one argument per column of the row
pub async fn insert_transfer_as(
    tx: &mut Tx,
    id: TransferId,
    account: AccountId,
    t: &TransferSpec,
    outcome: Option<&str>,
    reverses: Option<&str>,
    memo: Option<String>,
    mode: ApiKeyMode,
    now: Timestamp,
) -> Result<TransferId, StoreError> {
    tx.execute(
        "insert into ledger_transfers (id, account_id, debit, credit, amount, unit, kind, outcome_id, reverses_id,
             memo, created_at, livemode)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        args![
            id.to_string(),
            account.to_string(),
            t.debit.as_str(),
            t.credit.as_str(),
            t.amount,
            t.unit.as_str(),
            t.kind.as_str(),
            outcome.map(str::to_owned),
            reverses.map(str::to_owned),
            memo,
            now,
            mode.livemode()
        ],
    )
    .await?;
    Ok(id)
}

/// The CU of the account's latest credit grant in one mode's book (0
/// when none): what `credits.low` is measured against.
pub async fn last_credit_grant(tx: &mut Tx, account: AccountId, mode: ApiKeyMode) -> Result<i64, StoreError> {
    let row: Option<(i64,)> = tx
        .fetch_optional(
            "select amount from ledger_transfers
             where account_id = $1 and livemode = $2 and kind = 'credit_grant'
             order by created_at desc, id desc limit 1",
            args![account.to_string(), mode.livemode()],
        )
        .await?;
    Ok(row.map_or(0, |(a,)| a))
}

/// Records a cap alert (`pct`% of the month's cap) once per month: a
/// second one for the same threshold and period changes nothing. Whether
/// it was new.
pub async fn insert_cap_alert(
    tx: &mut Tx,
    account: AccountId,
    pct: u32,
    detail: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let inserted = tx
        .execute(
            "insert into billing_events (id, account_id, kind, period, threshold, detail, created_at)
         values ($1, $2, 'cap_alert', $3, $4, $5, $6)
         on conflict (account_id, kind, period, threshold) do nothing",
            args![
                bounty_core::BillingEventId::new().to_string(),
                account.to_string(),
                period_name(now),
                i32::try_from(pct).unwrap_or(i32::MAX),
                detail,
                now
            ],
        )
        .await?;
    Ok(inserted > 0)
}

/// Releases what a task held against the cap (it was charged, or will
/// never be).
pub async fn release_reservation(tx: &mut Tx, account: AccountId, task: TaskId) -> Result<(), StoreError> {
    tx.execute(
        "delete from budget_reservations where account_id = $1 and task_id = $2",
        args![account, task],
    )
    .await?;
    Ok(())
}

/// A transfer as written, for reversing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedTransfer {
    pub id: TransferId,
    pub spec: TransferSpec,
    pub created_at: Timestamp,
}

/// The outcome's transfers that are not reversals and not reversed yet,
/// in order.
pub async fn unreversed_transfers(
    tx: &mut Tx,
    account: AccountId,
    outcome: OutcomeId,
) -> Result<Vec<RecordedTransfer>, StoreError> {
    let rows: Vec<(String, String, String, i64, String, String, Timestamp)> = tx
        .fetch_all(
            "select t.id, t.debit, t.credit, t.amount, t.unit, t.kind, t.created_at from ledger_transfers t
             where t.account_id = $1 and t.outcome_id = $2 and t.reverses_id is null
               and not exists (select 1 from ledger_transfers r where r.reverses_id = t.id)
             order by t.id",
            args![account.to_string(), outcome.to_string()],
        )
        .await?;
    rows.into_iter()
        .map(|(id, debit, credit, amount, unit, kind, created_at)| {
            let bad = |c: &str, e: &dyn std::fmt::Display| corrupt(&format!("ledger_transfers.{c}"), e);
            Ok(RecordedTransfer {
                id: id.parse().map_err(|e| bad("id", &e))?,
                spec: TransferSpec {
                    debit: debit.parse().map_err(|e| bad("debit", &e))?,
                    credit: credit.parse().map_err(|e| bad("credit", &e))?,
                    amount,
                    unit: TransferUnit::from_stored(&unit),
                    kind: kind.parse().map_err(|e| bad("kind", &e))?,
                },
                created_at,
            })
        })
        .collect()
}

/// What one outcome's charge put in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargedOutcome {
    pub outcome: OutcomeId,
    /// When the charge was written.
    pub charged_at: Timestamp,
    /// Milli-CU the plan's allowance covered.
    pub included_mcu: i64,
    /// Milli-CU paid from prepaid credits.
    pub credit_mcu: i64,
    /// Milli-CU metered to Stripe.
    pub metered_mcu: i64,
    /// The money of the metered CU, in micros of `currency`.
    pub amount_micros: i64,
    pub currency: Option<String>,
}

impl crate::Store {
    /// The account's outcomes of `mode` charged in `[from, to)`, oldest first:
    /// their charge's transfers, summed by kind. Reversals are not netted: a
    /// reversed charge is still a charge of the period.
    pub async fn charged_outcomes(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ChargedOutcome>, StoreError> {
        type Row = (
            crate::column::Text<OutcomeId>,
            Timestamp,
            i64,
            i64,
            i64,
            i64,
            Option<String>,
        );
        let rows: Vec<Row> = crate::db::on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select outcome_id, min(created_at),
                 cast(coalesce(sum(case when kind = 'included' then amount else 0 end), 0) as bigint),
                 cast(coalesce(sum(case when kind = 'credit_draw' then amount else 0 end), 0) as bigint),
                 cast(coalesce(sum(case when kind = 'charge' then amount else 0 end), 0) as bigint),
                 cast(coalesce(sum(case when kind = 'charge_money' then amount else 0 end), 0) as bigint),
                 max(case when kind = 'charge_money' then unit end)
             from ledger_transfers
             where account_id = $1 and livemode = $2 and created_at >= $3 and created_at < $4
               and kind in ('included', 'credit_draw', 'charge', 'charge_money') and outcome_id is not null
             group by outcome_id
             order by min(created_at), outcome_id",
            )
            .bind(account.to_string())
            .bind(mode.livemode())
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(outcome, charged_at, included, credit, metered, money, currency)| ChargedOutcome {
                    outcome: outcome.0,
                    charged_at,
                    included_mcu: included,
                    credit_mcu: credit,
                    metered_mcu: metered,
                    amount_micros: money,
                    currency,
                },
            )
            .collect())
    }
}
