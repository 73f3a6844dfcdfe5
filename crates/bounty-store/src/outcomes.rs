//! Outcomes, their receipts, and the ledger effects of their transitions.
//!
//! Every change to an outcome happens in one transaction that also writes
//! its receipt event and its ledger transfers, after taking the account's
//! billing lock (the `account_billing` row; on SQLite the write lock). So
//! a crash at any point leaves either the whole change or none of it, and
//! concurrent changes of one account never interleave their balance
//! reads and writes.
//!
//! The ledger's rules (which transfers a charge or a reversal makes) are
//! decided in `bounty_core::ledger`; this module reads the balances they
//! need under the lock and writes the transfers they return. A unique key
//! on `(outcome_id, kind)` makes a second charge of one outcome impossible
//! in the database.

use bounty_core::ledger::{
    ChargeBalances, LedgerAccount, TransferKind, TransferSpec, TransferUnit, plan_charge, plan_grant,
    plan_reversal,
};
use bounty_core::outbox::{MeterEventPayload, MeterEventReversalPayload, OutboxKind};
use bounty_core::outcome::{
    ChargeEffect, OutcomeContext, OutcomeEvent, OutcomeStatus, TransitionError, transition,
};
use bounty_core::plan::{ModelUsage, Plan, RatingInput, RatingReceipt, rate};
use bounty_core::{
    AccountId, Actor, ApiKeyMode, ComputeUnits, Decision, OutcomeId, PageLimit, TaskId, Timestamp,
    TransferId, VerificationPolicy, VerifierVerdict,
};
use chrono::{Datelike, TimeZone, Utc};
use sha2::{Digest, Sha256};

use crate::answer_cache::{forget_answer, remember_answer};
use crate::db::on_pool;
use crate::outbox::{enqueue, ensure_test_customer};
use crate::tx::{Tx, args};
use crate::usage::{UsageKey, move_usage};
use crate::{Page, Store, StoreError};

/// The unit of compute-unit transfers.
pub use bounty_core::ledger::UNIT_CU;

/// An outcome as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub id: OutcomeId,
    pub account_id: AccountId,
    pub task_id: TaskId,
    pub agent_id: String,
    pub agent_version: i32,
    pub outcome_type: String,
    pub status: OutcomeStatus,
    pub policy: VerificationPolicy,
    pub policy_hash: String,
    pub window_ends_at: Timestamp,
    pub goodwill_ends_at: Timestamp,
    pub rating: Option<RatingReceipt>,
    pub cu: ComputeUnits,
    pub amount_micros: i64,
    pub currency: String,
    pub inference_cost_micros: i64,
    pub inference_currency: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub decided_at: Option<Timestamp>,
    /// Live or test, as its task: a test outcome is rated and recorded in
    /// the test book and never reaches live usage, caps or Stripe.
    pub mode: ApiKeyMode,
}

/// One event of an outcome's receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeEventRecord {
    pub seq: i32,
    pub event: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub effect: String,
    pub verdicts: Option<Vec<VerifierVerdict>>,
    pub signal: Option<serde_json::Value>,
    pub policy_version: i32,
    pub policy_hash: String,
    pub inputs_hash: String,
    pub reason: String,
    pub created_at: Timestamp,
    /// Who made the event: `api_key:key_…`, `integration:int_…`,
    /// `operator:<name>`, `worker`, `window`; `None` for events recorded
    /// before actors were.
    pub actor: Option<String>,
}

/// One ledger transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: TransferId,
    pub debit: String,
    pub credit: String,
    pub amount: i64,
    pub unit: String,
    pub kind: String,
    pub outcome_id: Option<OutcomeId>,
    pub reverses_id: Option<TransferId>,
    pub memo: Option<String>,
    pub created_at: Timestamp,
}

/// Filters of `list_outcomes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutcomeFilter {
    /// Live or test: a list is always of one mode.
    pub mode: ApiKeyMode,
    pub status: Option<OutcomeStatus>,
    pub agent_id: Option<String>,
    pub created_from: Option<Timestamp>,
    pub created_to: Option<Timestamp>,
}

/// What an outcome event did.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub outcome: Outcome,
    pub from: OutcomeStatus,
    pub effect: ChargeEffect,
    pub reason: String,
}

/// Why an outcome event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum OutcomeError {
    #[error("no such outcome")]
    NotFound,
    #[error("{0}")]
    NotAllowed(String),
    /// A ticket-source signal for an outcome that does not await one (no
    /// `external` verifier, or its window is over). It is recorded on the
    /// receipt as `signal_refused` and changes nothing.
    #[error("{0}")]
    NotApplicable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

macro_rules! outcome_columns {
    () => {
        "id, account_id, task_id, agent_id, agent_version, outcome_type, status, policy, policy_hash,
         window_ends_at, goodwill_ends_at, rating, cu_milli, amount_micros, currency, inference_cost_micros,
         inference_currency, created_at, updated_at, decided_at, livemode"
    };
}

#[derive(sqlx::FromRow)]
struct OutcomeRow {
    id: String,
    account_id: String,
    task_id: String,
    agent_id: String,
    agent_version: i32,
    outcome_type: String,
    status: String,
    policy: String,
    policy_hash: String,
    window_ends_at: Timestamp,
    goodwill_ends_at: Timestamp,
    rating: Option<String>,
    cu_milli: i64,
    amount_micros: i64,
    currency: String,
    inference_cost_micros: i64,
    inference_currency: String,
    created_at: Timestamp,
    updated_at: Timestamp,
    decided_at: Option<Timestamp>,
    livemode: bool,
}

fn corrupt(column: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("outcomes.{column}: {e}"))
}

impl TryFrom<OutcomeRow> for Outcome {
    type Error = StoreError;

    fn try_from(r: OutcomeRow) -> Result<Self, StoreError> {
        Ok(Outcome {
            id: r.id.parse().map_err(|e| corrupt("id", e))?,
            account_id: r.account_id.parse().map_err(|e| corrupt("account_id", e))?,
            task_id: r.task_id.parse().map_err(|e| corrupt("task_id", e))?,
            agent_id: r.agent_id,
            agent_version: r.agent_version,
            outcome_type: r.outcome_type,
            status: r.status.parse().map_err(|e| corrupt("status", e))?,
            policy: serde_json::from_str(&r.policy).map_err(|e| corrupt("policy", e))?,
            policy_hash: r.policy_hash,
            window_ends_at: r.window_ends_at,
            goodwill_ends_at: r.goodwill_ends_at,
            rating: r
                .rating
                .map(|s| serde_json::from_str(&s))
                .transpose()
                .map_err(|e| corrupt("rating", e))?,
            cu: ComputeUnits::from_milli(r.cu_milli),
            amount_micros: r.amount_micros,
            currency: r.currency,
            inference_cost_micros: r.inference_cost_micros,
            inference_currency: r.inference_currency,
            created_at: r.created_at,
            updated_at: r.updated_at,
            decided_at: r.decided_at,
            mode: ApiKeyMode::from_livemode(r.livemode),
        })
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn to_value(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).expect("serializes to JSON")
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

/// Money for `cu` at `price` micros per whole CU, rounded half up.
pub fn price_of(cu: ComputeUnits, price_micros: i64) -> Result<i64, StoreError> {
    bounty_core::ledger::price_of(cu, price_micros).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The billing settings of an account, read under its lock.
#[derive(Debug, Clone)]
pub(crate) struct Billing {
    pub plan: Plan,
    pub monthly_cap_micros: Option<i64>,
    pub alert_percents: Vec<u32>,
}

/// Alert thresholds of a new cap, in percent.
pub const DEFAULT_ALERT_PERCENTS: [u32; 3] = [50, 80, 100];

/// Takes the account's billing lock (creating its row with the default
/// plan if needed) and reads its settings. Every transaction that reads
/// and then changes an account's balances, caps or outcomes starts here.
pub(crate) async fn lock_billing(tx: &mut Tx, account: &str, now: Timestamp) -> Result<Billing, StoreError> {
    read_billing(tx, account, now, true).await
}

/// Reads the account's billing settings (creating its row with the default
/// plan if needed); with `lock`, also takes the account's billing lock: the
/// row's lock on Postgres, the write lock on SQLite.
pub(crate) async fn read_billing(
    tx: &mut Tx,
    account: &str,
    now: Timestamp,
    lock: bool,
) -> Result<Billing, StoreError> {
    tx.execute(
        "insert into account_billing (account_id, plan, monthly_cap_micros, alert_percents, updated_at)
         values ($1, $2, null, $3, $4)
         on conflict (account_id) do nothing",
        args![
            account,
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
            args![account, now],
        )
        .await?
    } else {
        tx.fetch_one(
            "select plan, monthly_cap_micros, alert_percents from account_billing where account_id = $1",
            args![account],
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
pub(crate) async fn balance(
    tx: &mut Tx,
    account: &str,
    mode: ApiKeyMode,
    code: &str,
    unit: &str,
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
            args![account, code, unit, mode.livemode()],
        )
        .await?;
    Ok(v)
}

/// Net of transfers of `kind` (minus their reversals) since `from`, in
/// one mode's book.
async fn net_since(
    tx: &mut Tx,
    account: &str,
    mode: ApiKeyMode,
    kind: &'static str,
    from: Timestamp,
) -> Result<i64, StoreError> {
    let (v,): (i64,) = tx
        .fetch_one(
            "select cast(coalesce(sum(case when kind = $2 then amount else -amount end), 0) as bigint)
             from ledger_transfers
             where account_id = $1 and livemode = $5 and kind in ($2, $4) and created_at >= $3",
            args![account, kind, from, format!("{kind}_reversal"), mode.livemode()],
        )
        .await?;
    Ok(v)
}

/// Live money charged this month plus money reserved for running tasks:
/// what the cap (live money only) is checked against.
pub(crate) async fn committed_spend(tx: &mut Tx, account: &str, now: Timestamp) -> Result<i64, StoreError> {
    let spent = net_since(tx, account, ApiKeyMode::Live, "charge_money", period_start(now)).await?;
    let (reserved,): (i64,) = tx
        .fetch_one(
            "select cast(coalesce(sum(amount_micros), 0) as bigint) from budget_reservations where account_id = $1",
            args![account],
        )
        .await?;
    Ok(spent.saturating_add(reserved))
}

#[allow(clippy::too_many_arguments)] // one argument per column of the row
async fn insert_transfer(
    tx: &mut Tx,
    account: &str,
    t: &TransferSpec,
    outcome: Option<&str>,
    reverses: Option<&str>,
    memo: Option<String>,
    mode: ApiKeyMode,
    now: Timestamp,
) -> Result<TransferId, StoreError> {
    let id = TransferId::new();
    tx.execute(
        "insert into ledger_transfers (id, account_id, debit, credit, amount, unit, kind, outcome_id, reverses_id,
             memo, created_at, livemode)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        args![
            id.to_string(),
            account,
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

/// Records a crossed spending-cap threshold once per month.
async fn record_alerts(
    tx: &mut Tx,
    account: &str,
    billing: &Billing,
    before: i64,
    after: i64,
    now: Timestamp,
) -> Result<(), StoreError> {
    let Some(cap) = billing.monthly_cap_micros.filter(|c| *c > 0) else {
        return Ok(());
    };
    for &pct in &billing.alert_percents {
        let line = i128::from(cap) * i128::from(pct) / 100;
        if i128::from(before) < line && i128::from(after) >= line {
            let detail = format!("spend reached {pct}% of the monthly cap ({after} of {cap} micros)");
            tracing::warn!(account.id = %account, percent = pct, "spending cap alert");
            tx.execute(
                "insert into billing_events (id, account_id, kind, period, threshold, detail, created_at)
                 values ($1, $2, 'cap_alert', $3, $4, $5, $6)
                 on conflict (account_id, kind, period, threshold) do nothing",
                args![
                    bounty_core::BillingEventId::new().to_string(),
                    account,
                    period_name(now),
                    i32::try_from(pct).unwrap_or(i32::MAX),
                    detail,
                    now
                ],
            )
            .await?;
        }
    }
    Ok(())
}

/// Rates a resolved outcome and writes its transfers. The caller holds
/// the billing lock.
async fn charge(
    tx: &mut Tx,
    billing: &Billing,
    outcome: &Outcome,
    now: Timestamp,
) -> Result<RatingReceipt, StoreError> {
    let account = outcome.account_id.to_string();
    let oid = outcome.id.to_string();
    let mode = outcome.mode;
    let included_used = net_since(tx, &account, mode, "included", period_start(now)).await?;
    let usage: Vec<(String, i64, i64)> = tx
        .fetch_all(
            "select model, cast(sum(prompt_tokens) as bigint), cast(sum(completion_tokens) as bigint)
             from model_calls where account_id = $1 and task_id = $2 and error_code is null and not shadow
             group by model order by model",
            args![account.clone(), outcome.task_id.to_string()],
        )
        .await?;
    // Worked on the account's own key: the plan's BYOK fee applies.
    let (byok_used,): (bool,) = tx
        .fetch_one(
            "select exists (select 1 from model_calls where account_id = $1 and task_id = $2 and byok and not shadow)",
            args![account.clone(), outcome.task_id.to_string()],
        )
        .await?;
    let input = RatingInput {
        outcome_type: outcome.outcome_type.clone(),
        resolved: true,
        usage: usage
            .into_iter()
            .map(|(model, p, c)| ModelUsage {
                model,
                prompt_tokens: u64::try_from(p).unwrap_or(0),
                completion_tokens: u64::try_from(c).unwrap_or(0),
            })
            .collect(),
        tool_ms: 0,
        included_used: ComputeUnits::from_milli(included_used),
        byok: byok_used,
    };
    let receipt =
        rate(&billing.plan, &input).map_err(|e| StoreError::Corrupt(format!("rating failed: {e}")))?;
    let currency = receipt.amount.currency.to_string();
    let credits = balance(tx, &account, mode, LedgerAccount::Credits.as_str(), UNIT_CU).await?;
    let transfers = plan_charge(
        &receipt,
        ChargeBalances {
            credits: ComputeUnits::from_milli(credits),
        },
        billing.plan.price_per_cu,
    )
    .map_err(|e| StoreError::Corrupt(format!("charging outcome {oid}: {e}")))?;
    // The cap and its alerts are live money.
    let capped = billing.monthly_cap_micros.is_some() && mode.livemode();
    // Alerts follow money actually charged this month (reservations are
    // not spend yet).
    let spend_before = if capped {
        net_since(tx, &account, mode, "charge_money", period_start(now)).await?
    } else {
        0
    };
    for t in &transfers {
        let id = insert_transfer(tx, &account, t, Some(&oid), None, None, mode, now).await?;
        if t.kind == TransferKind::Charge {
            // Metered CU become a meter event, sent later, exactly once:
            // a test charge's only by a test-mode sender, to Stripe's
            // test mode, and never by the live one.
            let payload = to_value(&MeterEventPayload::of_charge(id, t.amount, now));
            if !mode.livemode() {
                ensure_test_customer(tx, &account, now).await?;
            }
            let id = id.to_string();
            enqueue(
                tx,
                &account,
                mode,
                OutboxKind::MeterEvent,
                Some(&id),
                payload,
                now,
            )
            .await?;
        }
    }
    tx.execute(
        "delete from budget_reservations where task_id = $1",
        args![outcome.task_id.to_string()],
    )
    .await?;
    if capped {
        let spend_after = net_since(tx, &account, mode, "charge_money", period_start(now)).await?;
        record_alerts(tx, &account, billing, spend_before, spend_after, now).await?;
    }
    tx.execute(
        "update outcomes set rating = $2, cu_milli = $3, amount_micros = $4, currency = $5 where id = $1",
        args![
            oid,
            to_json(&receipt),
            receipt.cu.milli(),
            receipt.amount.micros,
            currency
        ],
    )
    .await?;
    Ok(receipt)
}

/// Reverses every transfer of the outcome not yet reversed, as
/// `bounty_core::ledger::plan_reversal` decides.
async fn reverse(tx: &mut Tx, outcome: &Outcome, memo: &str, now: Timestamp) -> Result<(), StoreError> {
    let account = outcome.account_id.to_string();
    let rows: Vec<(String, String, String, i64, String, String, Timestamp)> = tx
        .fetch_all(
            "select t.id, t.debit, t.credit, t.amount, t.unit, t.kind, t.created_at from ledger_transfers t
             where t.account_id = $1 and t.outcome_id = $2 and t.reverses_id is null
               and not exists (select 1 from ledger_transfers r where r.reverses_id = t.id)
             order by t.id",
            args![account.clone(), outcome.id.to_string()],
        )
        .await?;
    let bad = |e: bounty_core::ledger::BadLedgerName| StoreError::Corrupt(format!("ledger_transfers: {e}"));
    let originals = rows
        .iter()
        .map(|(_, debit, credit, amount, unit, kind, _)| {
            Ok(TransferSpec {
                debit: debit.parse().map_err(bad)?,
                credit: credit.parse().map_err(bad)?,
                amount: *amount,
                unit: if unit == UNIT_CU {
                    TransferUnit::MilliCu
                } else {
                    TransferUnit::Currency(unit.clone())
                },
                kind: kind.parse().map_err(bad)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let reversals = plan_reversal(&originals)
        .map_err(|e| StoreError::Corrupt(format!("reversing outcome {}: {e}", outcome.id)))?;
    for ((id, .., created), (original, t)) in rows.iter().zip(originals.iter().zip(&reversals)) {
        let reversal = insert_transfer(
            tx,
            &account,
            t,
            Some(&outcome.id.to_string()),
            Some(id),
            Some(memo.to_owned()),
            outcome.mode,
            now,
        )
        .await?;
        if original.kind == TransferKind::Charge {
            // Undo the meter event: cancelled inside Stripe's window, else
            // credited; the sender decides from the original's timestamp.
            let payload = to_value(&MeterEventReversalPayload::of_reversal(
                id, t.amount, *created, reversal,
            ));
            enqueue(
                tx,
                &account,
                outcome.mode,
                OutboxKind::MeterEventReversal,
                Some(&reversal.to_string()),
                payload,
                now,
            )
            .await?;
        }
    }
    Ok(())
}

/// Applies an event to one of the account's outcomes inside the caller's
/// transaction (under the account's billing lock); nothing is committed.
/// A refused signal ([`OutcomeError::NotApplicable`]) has written its
/// `signal_refused` receipt event: the caller commits that too.
pub(crate) async fn apply_event_in(
    tx: &mut Tx,
    account: AccountId,
    id: OutcomeId,
    event: OutcomeEvent,
    evidence: Evidence,
    now: Timestamp,
) -> Result<Applied, OutcomeError> {
    let billing = lock_billing(tx, &account.to_string(), now).await?;
    let row: Option<OutcomeRow> = tx
        .fetch_optional(
            concat!(
                "select ",
                outcome_columns!(),
                " from outcomes where account_id = $1 and id = $2"
            ),
            args![account.to_string(), id.to_string()],
        )
        .await?;
    let outcome = Outcome::try_from(row.ok_or(OutcomeError::NotFound)?)?;
    apply(tx, &billing, outcome, &event, &evidence, now).await
}

/// Evidence attached to an event, and who made it.
#[derive(Debug, Clone)]
pub(crate) struct Evidence {
    pub verdicts: Option<Vec<VerifierVerdict>>,
    pub signal: Option<serde_json::Value>,
    pub actor: Actor,
}

impl Evidence {
    /// An event with no evidence but its maker.
    pub(crate) fn by(actor: Actor) -> Self {
        Evidence {
            verdicts: None,
            signal: None,
            actor,
        }
    }
}

fn event_name(event: &OutcomeEvent) -> &'static str {
    match event {
        OutcomeEvent::Verified(_) => "verified",
        OutcomeEvent::Signal(_) => "signal",
        OutcomeEvent::WindowLapsed => "window_lapsed",
        OutcomeEvent::GoodwillReversal => "goodwill_reversal",
    }
}

fn effect_name(effect: ChargeEffect) -> &'static str {
    match effect {
        ChargeEffect::None => "none",
        ChargeEffect::Charge => "charge",
        ChargeEffect::Reverse => "reverse",
    }
}

#[allow(clippy::too_many_arguments)] // one argument per column of the row
async fn insert_event(
    tx: &mut Tx,
    outcome: &Outcome,
    event: &str,
    from: Option<OutcomeStatus>,
    to: OutcomeStatus,
    effect: &str,
    evidence: &Evidence,
    reason: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let verdicts = evidence.verdicts.as_ref().map(to_json);
    let signal = evidence.signal.as_ref().map(to_json);
    let inputs_hash = sha256_hex(
        format!(
            "{}\n{}\n{}",
            event,
            verdicts.as_deref().unwrap_or(""),
            signal.as_deref().unwrap_or("")
        )
        .as_bytes(),
    );
    tx.execute(
        "insert into outcome_events (outcome_id, seq, account_id, event, from_status, to_status, effect, verdicts,
             signal, policy_version, policy_hash, inputs_hash, reason, created_at, actor)
         values ($1, (select cast(coalesce(max(seq), 0) + 1 as integer) from outcome_events where outcome_id = $1),
             $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        args![
            outcome.id.to_string(),
            outcome.account_id.to_string(),
            event,
            from.map(|f| f.as_str().to_owned()),
            to.as_str(),
            effect,
            verdicts,
            signal,
            outcome.agent_version,
            outcome.policy_hash.clone(),
            inputs_hash,
            reason,
            now,
            evidence.actor.to_string()
        ],
    )
    .await?;
    Ok(())
}

/// Applies `event` to the outcome (read under the caller's billing lock):
/// the transition, its receipt event and its ledger effect.
async fn apply(
    tx: &mut Tx,
    billing: &Billing,
    mut outcome: Outcome,
    event: &OutcomeEvent,
    evidence: &Evidence,
    now: Timestamp,
) -> Result<Applied, OutcomeError> {
    let ctx = OutcomeContext::new(
        &outcome.policy,
        now < outcome.window_ends_at,
        now < outcome.goodwill_ends_at,
    );
    let t = match transition(outcome.status, event, &ctx) {
        Ok(t) => t,
        Err(e @ TransitionError::SignalNotApplicable { .. }) => {
            // Refused, and kept on the receipt as evidence of the attempt.
            let why = e.to_string();
            insert_event(
                tx,
                &outcome,
                "signal_refused",
                Some(outcome.status),
                outcome.status,
                "none",
                evidence,
                &why,
                now,
            )
            .await?;
            return Err(OutcomeError::NotApplicable(why));
        }
        Err(e) => return Err(OutcomeError::NotAllowed(e.to_string())),
    };
    let mut t = t;
    if t.effect == ChargeEffect::Reverse {
        // A reversal always says whose decision it was, and why.
        let why = evidence
            .signal
            .as_ref()
            .and_then(|s| s["reason"].as_str())
            .filter(|r| !r.trim().is_empty())
            .map(|r| format!(": {}", r.trim()))
            .unwrap_or_default();
        t.reason = format!("{} (by {}{why})", t.reason, evidence.actor.describe());
    }
    let usage_before = UsageKey::of(&outcome);
    insert_event(
        tx,
        &outcome,
        event_name(event),
        Some(t.from),
        t.to,
        effect_name(t.effect),
        evidence,
        &t.reason,
        now,
    )
    .await?;
    match t.effect {
        ChargeEffect::Charge => {
            let receipt = charge(tx, billing, &outcome, now).await?;
            outcome.cu = receipt.cu;
            outcome.amount_micros = receipt.amount.micros;
            outcome.currency = receipt.amount.currency.to_string();
            outcome.rating = Some(receipt);
        }
        ChargeEffect::Reverse => reverse(tx, &outcome, &t.reason, now).await?,
        ChargeEffect::None => {}
    }
    if matches!(t.to, OutcomeStatus::Failed | OutcomeStatus::Reversed) {
        // Never charged: release what the task held against the cap.
        tx.execute(
            "delete from budget_reservations where task_id = $1",
            args![outcome.task_id.to_string()],
        )
        .await?;
    }
    let decided = matches!(
        t.to,
        OutcomeStatus::Resolved | OutcomeStatus::Failed | OutcomeStatus::Reversed
    );
    tx.execute(
        "update outcomes set status = $2, updated_at = $3, decided_at = coalesce(decided_at, $4) where id = $1",
        args![outcome.id.to_string(), t.to.as_str(), now, decided.then_some(now)],
    )
    .await?;
    outcome.status = t.to;
    outcome.updated_at = now;
    if decided && outcome.decided_at.is_none() {
        outcome.decided_at = Some(now);
    }
    move_usage(tx, outcome.account_id, usage_before, UsageKey::of(&outcome)).await?;
    match (t.from, t.to) {
        (from, OutcomeStatus::Resolved) if from != OutcomeStatus::Resolved => {
            remember_answer(tx, &outcome, now).await?;
        }
        (OutcomeStatus::Resolved, to) if to != OutcomeStatus::Resolved => forget_answer(tx, &outcome).await?,
        _ => {}
    }
    Ok(Applied {
        outcome,
        from: t.from,
        effect: t.effect,
        reason: t.reason,
    })
}

/// The task whose attempt just ended, as the outcome needs it.
pub(crate) struct TaskKey {
    pub account: AccountId,
    pub task: TaskId,
    pub agent_id: String,
    pub agent_version: i32,
}

/// Creates the outcome of a finished task, in `status`.
async fn open_outcome(
    tx: &mut Tx,
    billing: &Billing,
    key: &TaskKey,
    status: OutcomeStatus,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    let (outcome_type, policy): (String, String) = tx
        .fetch_one(
            "select outcome_type, verifier_policy from agent_versions where agent_id = $1 and version = $2",
            args![key.agent_id.clone(), key.agent_version],
        )
        .await?;
    // The outcome is of its task's mode.
    let (livemode,): (bool,) = tx
        .fetch_one(
            "select livemode from tasks where account_id = $1 and id = $2",
            args![key.account.to_string(), key.task.to_string()],
        )
        .await?;
    let mode = ApiKeyMode::from_livemode(livemode);
    let parsed: VerificationPolicy =
        serde_json::from_str(&policy).map_err(|e| corrupt("agent_versions.verifier_policy", e))?;
    let window_ends_at = now + chrono::Duration::hours(i64::from(parsed.window_hours));
    let goodwill_ends_at = window_ends_at + chrono::Duration::days(i64::from(parsed.goodwill_days));
    let costs: Vec<(String, i64)> = tx
        .fetch_all(
            "select currency, cast(sum(cost_micros) as bigint) from model_calls
             where account_id = $1 and task_id = $2 and not shadow and not byok
             group by currency order by currency",
            args![key.account.to_string(), key.task.to_string()],
        )
        .await?;
    let plan_currency = billing.plan.price_per_cu.currency.to_string();
    let (inference_currency, inference_cost) = match costs.as_slice() {
        [] => (plan_currency.clone(), 0),
        [(c, v)] => (c.clone(), *v),
        many => {
            tracing::warn!(task.id = %key.task, "model calls in several currencies; margin uses the plan's");
            many.iter()
                .find(|(c, _)| *c == plan_currency)
                .cloned()
                .unwrap_or_else(|| many[0].clone())
        }
    };
    let outcome = Outcome {
        id: OutcomeId::new(),
        account_id: key.account,
        task_id: key.task,
        agent_id: key.agent_id.clone(),
        agent_version: key.agent_version,
        outcome_type,
        status,
        policy_hash: sha256_hex(policy.as_bytes()),
        policy: parsed,
        window_ends_at,
        goodwill_ends_at,
        rating: None,
        cu: ComputeUnits::ZERO,
        amount_micros: 0,
        currency: plan_currency,
        inference_cost_micros: inference_cost,
        inference_currency,
        created_at: now,
        updated_at: now,
        decided_at: None,
        mode,
    };
    tx.execute(
        "insert into outcomes (id, account_id, task_id, agent_id, agent_version, outcome_type, status, policy,
             policy_hash, window_ends_at, goodwill_ends_at, rating, cu_milli, amount_micros, currency,
             inference_cost_micros, inference_currency, created_at, updated_at, decided_at, livemode)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, null, 0, 0, $12, $13, $14, $15, $15, null, $16)",
        args![
            outcome.id.to_string(),
            key.account.to_string(),
            key.task.to_string(),
            key.agent_id.clone(),
            key.agent_version,
            outcome.outcome_type.clone(),
            status.as_str(),
            policy,
            outcome.policy_hash.clone(),
            window_ends_at,
            goodwill_ends_at,
            outcome.currency.clone(),
            inference_cost,
            outcome.inference_currency.clone(),
            now,
            mode.livemode()
        ],
    )
    .await?;
    Ok(outcome)
}

/// The agent finished: opens the outcome and applies the verifiers'
/// decision (charging when it passes).
pub(crate) async fn settle_completed(
    tx: &mut Tx,
    key: &TaskKey,
    decision: Decision,
    verdicts: &[VerifierVerdict],
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    // Only a charge reads and changes balances: lock the account for it
    // alone, so an account's uncharged outcomes never queue on its lock.
    let billing = read_billing(tx, &key.account.to_string(), now, decision == Decision::Pass).await?;
    let outcome = open_outcome(tx, &billing, key, OutcomeStatus::Verifying, now).await?;
    let evidence = Evidence {
        verdicts: Some(verdicts.to_vec()),
        signal: None,
        actor: Actor::Worker,
    };
    match apply(
        tx,
        &billing,
        outcome,
        &OutcomeEvent::Verified(decision),
        &evidence,
        now,
    )
    .await
    {
        Ok(applied) => Ok(applied.outcome),
        Err(OutcomeError::Store(e)) => Err(e),
        Err(e) => Err(StoreError::Corrupt(format!(
            "a new outcome refused its verdict: {e}"
        ))),
    }
}

/// The task failed: its outcome is failed, never charged, and its budget
/// reservation is released.
pub(crate) async fn settle_failed(
    tx: &mut Tx,
    key: &TaskKey,
    reason: &str,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    let billing = read_billing(tx, &key.account.to_string(), now, false).await?;
    let mut outcome = open_outcome(tx, &billing, key, OutcomeStatus::Failed, now).await?;
    tx.execute(
        "update outcomes set decided_at = $2 where id = $1",
        args![outcome.id.to_string(), now],
    )
    .await?;
    outcome.decided_at = Some(now);
    move_usage(tx, key.account, None, UsageKey::of(&outcome)).await?;
    insert_event(
        tx,
        &outcome,
        "task_failed",
        None,
        OutcomeStatus::Failed,
        "none",
        &Evidence::by(Actor::Worker),
        reason,
        now,
    )
    .await?;
    tx.execute(
        "delete from budget_reservations where task_id = $1",
        args![key.task.to_string()],
    )
    .await?;
    Ok(outcome)
}

/// An account's billing settings and balances, for display.
#[derive(Debug, Clone)]
pub struct BillingInfo {
    pub plan: Plan,
    pub monthly_cap_micros: Option<i64>,
    pub alert_percents: Vec<u32>,
    /// Prepaid CU left.
    pub credit_balance: ComputeUnits,
    /// Money charged this month (reversals netted) plus reserved.
    pub month_spend_micros: i64,
    /// Of which reserved for running tasks.
    pub reserved_micros: i64,
}

impl Store {
    /// One of the account's outcomes.
    pub async fn get_outcome(
        &self,
        account: AccountId,
        id: OutcomeId,
    ) -> Result<Option<Outcome>, StoreError> {
        let row: Option<OutcomeRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!("select ", outcome_columns!(), " from outcomes where account_id = $1 and id = $2"))
                .bind(account.to_string())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        row.map(Outcome::try_from).transpose()
    }

    /// The outcome of one of the account's tasks, once it has one.
    pub async fn outcome_of_task(
        &self,
        account: AccountId,
        task: TaskId,
    ) -> Result<Option<Outcome>, StoreError> {
        let row: Option<OutcomeRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!("select ", outcome_columns!(), " from outcomes where account_id = $1 and task_id = $2"))
                .bind(account.to_string())
                .bind(task.to_string())
                .fetch_optional(pool)
                .await?
        });
        row.map(Outcome::try_from).transpose()
    }

    /// The account's outcomes, newest first, filtered.
    pub async fn list_outcomes(
        &self,
        account: AccountId,
        filter: &OutcomeFilter,
        limit: PageLimit,
        after: Option<OutcomeId>,
    ) -> Result<Page<Outcome>, StoreError> {
        let rows: Vec<OutcomeRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", outcome_columns!(), " from outcomes
                 where account_id = $1 and livemode = $8
                   and ($2 is null or status = $2)
                   and ($3 is null or agent_id = $3)
                   and ($4 is null or created_at >= $4)
                   and ($5 is null or created_at < $5)
                   and ($6 is null or id < $6)
                 order by id desc
                 limit $7"
            ))
            .bind(account.to_string())
            .bind(filter.status.map(|s| s.as_str().to_owned()))
            .bind(filter.agent_id.clone())
            .bind(filter.created_from)
            .bind(filter.created_to)
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit.get()) + 1)
            .bind(filter.mode.livemode())
            .fetch_all(pool)
            .await?
        });
        let items = rows
            .into_iter()
            .map(Outcome::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, limit.get(), |o| o.id.to_string()))
    }

    /// The receipt of one of the account's outcomes: its events, in order.
    pub async fn outcome_events(
        &self,
        account: AccountId,
        id: OutcomeId,
    ) -> Result<Vec<OutcomeEventRecord>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            seq: i32,
            event: String,
            from_status: Option<String>,
            to_status: String,
            effect: String,
            verdicts: Option<String>,
            signal: Option<String>,
            policy_version: i32,
            policy_hash: String,
            inputs_hash: String,
            reason: String,
            created_at: Timestamp,
            actor: Option<String>,
        }
        let rows: Vec<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select seq, event, from_status, to_status, effect, verdicts, signal, policy_version, policy_hash,
                     inputs_hash, reason, created_at, actor
                 from outcome_events where account_id = $1 and outcome_id = $2 order by seq",
            )
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(OutcomeEventRecord {
                    seq: r.seq,
                    event: r.event,
                    from_status: r.from_status,
                    to_status: r.to_status,
                    effect: r.effect,
                    verdicts: r
                        .verdicts
                        .map(|v| serde_json::from_str(&v))
                        .transpose()
                        .map_err(|e| corrupt("outcome_events.verdicts", e))?,
                    signal: r
                        .signal
                        .map(|v| serde_json::from_str(&v))
                        .transpose()
                        .map_err(|e| corrupt("outcome_events.signal", e))?,
                    policy_version: r.policy_version,
                    policy_hash: r.policy_hash,
                    inputs_hash: r.inputs_hash,
                    reason: r.reason,
                    created_at: r.created_at,
                    actor: r.actor,
                })
            })
            .collect()
    }

    /// The account's ledger transfers: of one outcome, or of a kind.
    pub async fn transfers(
        &self,
        account: AccountId,
        outcome: Option<OutcomeId>,
        kind: Option<&str>,
    ) -> Result<Vec<Transfer>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            debit: String,
            credit: String,
            amount: i64,
            unit: String,
            kind: String,
            outcome_id: Option<String>,
            reverses_id: Option<String>,
            memo: Option<String>,
            created_at: Timestamp,
        }
        let rows: Vec<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, debit, credit, amount, unit, kind, outcome_id, reverses_id, memo, created_at
                 from ledger_transfers
                 where account_id = $1 and ($2 is null or outcome_id = $2) and ($3 is null or kind = $3)
                 order by id",
            )
            .bind(account.to_string())
            .bind(outcome.map(|o| o.to_string()))
            .bind(kind.map(str::to_owned))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                let bad =
                    |e: bounty_core::IdParseError| StoreError::Corrupt(format!("ledger_transfers: {e}"));
                Ok(Transfer {
                    id: r.id.parse().map_err(bad)?,
                    debit: r.debit,
                    credit: r.credit,
                    amount: r.amount,
                    unit: r.unit,
                    kind: r.kind,
                    outcome_id: r.outcome_id.map(|o| o.parse()).transpose().map_err(bad)?,
                    reverses_id: r.reverses_id.map(|o| o.parse()).transpose().map_err(bad)?,
                    memo: r.memo,
                    created_at: r.created_at,
                })
            })
            .collect()
    }

    async fn apply_event(
        &self,
        account: AccountId,
        id: OutcomeId,
        event: OutcomeEvent,
        evidence: Evidence,
    ) -> Result<Applied, OutcomeError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        match apply_event_in(&mut tx, account, id, event, evidence, now).await {
            Ok(applied) => {
                tx.commit().await?;
                Ok(applied)
            }
            Err(OutcomeError::NotApplicable(why)) => {
                // The refusal is on the receipt: keep it.
                tx.commit().await?;
                Err(OutcomeError::NotApplicable(why))
            }
            Err(e) => Err(e),
        }
    }

    /// Records a resolution signal from the ticket source, sent by `actor`
    /// (the account's API key, or one of its integrations), and applies it.
    /// It applies only to an outcome whose policy has an `external`
    /// verifier, inside its window; otherwise it is refused
    /// ([`OutcomeError::NotApplicable`]) and the refusal recorded.
    pub async fn apply_signal(
        &self,
        account: AccountId,
        id: OutcomeId,
        signal: bounty_core::outcome::Signal,
        actor: Actor,
    ) -> Result<Applied, OutcomeError> {
        let evidence = Evidence {
            verdicts: None,
            signal: Some(serde_json::to_value(signal).expect("a signal serializes")),
            actor,
        };
        self.apply_event(account, id, OutcomeEvent::Signal(signal), evidence)
            .await
    }

    /// Reverses a resolved outcome as goodwill (inside its window or its
    /// goodwill days). An operator's decision only: `actor` is the
    /// operator, and `reason` is kept on the receipt and the reversing
    /// transfers.
    pub async fn goodwill_reversal(
        &self,
        account: AccountId,
        id: OutcomeId,
        operator: Actor,
        reason: &str,
    ) -> Result<Applied, OutcomeError> {
        let evidence = Evidence {
            verdicts: None,
            signal: Some(serde_json::json!({"kind": "goodwill_reversal", "reason": reason})),
            actor: operator,
        };
        self.apply_event(account, id, OutcomeEvent::GoodwillReversal, evidence)
            .await
    }

    /// Applies the lapse decision to provisional outcomes whose window has
    /// ended (up to `limit`); returns them. Every worker runs this as it
    /// polls.
    pub async fn lapse_outcomes(&self, limit: u32) -> Result<Vec<(AccountId, OutcomeId)>, StoreError> {
        let now = self.now();
        let due: Vec<(String, String)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select account_id, id from outcomes where status = 'provisional' and window_ends_at <= $1
                 order by window_ends_at limit $2",
            )
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        let mut lapsed = Vec::new();
        for (account, id) in due {
            let (account, id): (AccountId, OutcomeId) = (
                account.parse().map_err(|e| corrupt("account_id", e))?,
                id.parse().map_err(|e| corrupt("id", e))?,
            );
            match self
                .apply_event(
                    account,
                    id,
                    OutcomeEvent::WindowLapsed,
                    Evidence::by(Actor::Window),
                )
                .await
            {
                Ok(_) => lapsed.push((account, id)),
                // Another worker got there first.
                Err(
                    OutcomeError::NotAllowed(_) | OutcomeError::NotApplicable(_) | OutcomeError::NotFound,
                ) => {}
                Err(OutcomeError::Store(e)) => return Err(e),
            }
        }
        Ok(lapsed)
    }

    /// Grants prepaid CU to an account, in one mode's book: test credits
    /// pay only test charges.
    pub async fn grant_credits(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        cu: ComputeUnits,
        memo: Option<String>,
    ) -> Result<TransferId, StoreError> {
        let grant = plan_grant(cu).map_err(|e| StoreError::Config(e.to_string()))?;
        let now = self.now();
        let mut tx = self.begin().await?;
        lock_billing(&mut tx, &account.to_string(), now).await?;
        let id = insert_transfer(&mut tx, &account.to_string(), &grant, None, None, memo, mode, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The account's plan, cap and balances in one mode's book. The cap
    /// and reservations are live money: test mode shows its own spend and
    /// no reservations.
    pub async fn billing_info(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
    ) -> Result<BillingInfo, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let billing = lock_billing(&mut tx, &account.to_string(), now).await?;
        let a = account.to_string();
        let credits = balance(&mut tx, &a, mode, "credits", UNIT_CU).await?;
        let (spend, reserved) = if mode.livemode() {
            let spend = committed_spend(&mut tx, &a, now).await?;
            let (reserved,): (i64,) = tx
                .fetch_one(
                    "select cast(coalesce(sum(amount_micros), 0) as bigint) from budget_reservations
                     where account_id = $1",
                    args![a],
                )
                .await?;
            (spend, reserved)
        } else {
            let spend = net_since(&mut tx, &a, mode, "charge_money", period_start(now)).await?;
            (spend, 0)
        };
        tx.commit().await?;
        Ok(BillingInfo {
            plan: billing.plan,
            monthly_cap_micros: billing.monthly_cap_micros,
            alert_percents: billing.alert_percents,
            credit_balance: ComputeUnits::from_milli(credits),
            month_spend_micros: spend,
            reserved_micros: reserved,
        })
    }

    /// The account's plan (the default one until it is set), read without
    /// the billing lock or any balance: for pages that only need its
    /// currency or prices.
    pub async fn plan(&self, account: AccountId) -> Result<Plan, StoreError> {
        let row: Option<(String,)> = on_pool!(&self.db, pool => {
            sqlx::query_as("select plan from account_billing where account_id = $1")
                .bind(account.to_string())
                .fetch_optional(pool)
                .await?
        });
        match row {
            Some((plan,)) => serde_json::from_str(&plan).map_err(|e| corrupt("account_billing.plan", e)),
            None => Ok(Plan::default_value_plan()),
        }
    }

    /// Sets the account's plan (used from the next charge on).
    pub async fn set_plan(&self, account: AccountId, plan: &Plan) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        lock_billing(&mut tx, &account.to_string(), now).await?;
        tx.execute(
            "update account_billing set plan = $2 where account_id = $1",
            args![account.to_string(), to_json(plan)],
        )
        .await?;
        tx.commit().await
    }

    /// Sets (or with `None` removes) the account's monthly spending cap, in
    /// micros of the plan's currency, and its alert thresholds.
    pub async fn set_cap(
        &self,
        account: AccountId,
        cap_micros: Option<i64>,
        alert_percents: &[u32],
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        lock_billing(&mut tx, &account.to_string(), now).await?;
        tx.execute(
            "update account_billing set monthly_cap_micros = $2, alert_percents = $3 where account_id = $1",
            args![account.to_string(), cap_micros, to_json(&alert_percents)],
        )
        .await?;
        tx.commit().await
    }

    /// Cap alerts recorded for the account, newest first.
    pub async fn billing_events(
        &self,
        account: AccountId,
    ) -> Result<Vec<(String, i32, String, Timestamp)>, StoreError> {
        Ok(on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select period, threshold, detail, created_at from billing_events
                 where account_id = $1 order by id desc limit 100",
            )
            .bind(account.to_string())
            .fetch_all(pool)
            .await?
        }))
    }
}
