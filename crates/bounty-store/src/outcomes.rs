//! Outcomes and their receipts, as rows: reads for the API and the
//! dashboard, and the one-purpose writes that settlement
//! (`bounty_billing::settle`) composes inside its transaction: open an
//! outcome, append a receipt event, move its status, store its rating.
//! Which of these happen, and when, is decided there and in
//! `bounty_core::outcome`, never here.

use bounty_core::ledger::{LedgerAccount, TransferKind, TransferUnit, plan_grant};
use bounty_core::outcome::{ChargeEffect, OutcomeStatus, ReceiptEvent};
use bounty_core::plan::{ModelUsage, Plan, RatingReceipt};
use bounty_core::{
    AccountId, Actor, AgentId, ApiKeyMode, ComputeUnits, Currency, Money, OutcomeId, OutcomeType, PageLimit,
    TaskId, Timestamp, TransferId, VerificationPolicy, VerifierVerdict,
};
use sha2::{Digest, Sha256};

use crate::column::{Json, Text};
use crate::db::{in_list, on_pool};
use crate::ledger::{
    balance, committed_spend, insert_transfer, lock_billing, money_spent_since, period_start,
};
use crate::tx::{Tx, args};
use crate::{Page, Store, StoreError};

/// An outcome as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub id: OutcomeId,
    pub account_id: AccountId,
    pub task_id: TaskId,
    pub agent_id: AgentId,
    pub agent_version: i32,
    pub outcome_type: OutcomeType,
    pub status: OutcomeStatus,
    pub policy: VerificationPolicy,
    pub policy_hash: String,
    pub window_ends_at: Timestamp,
    pub goodwill_ends_at: Timestamp,
    pub rating: Option<RatingReceipt>,
    pub cu: ComputeUnits,
    /// What the outcome was charged (zero unless it was resolved), in the
    /// plan's currency.
    pub amount: Money,
    /// What its task's model calls cost us (BYOK and shadow calls left
    /// out).
    pub inference_cost: Money,
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
    pub event: ReceiptEvent,
    pub from_status: Option<OutcomeStatus>,
    pub to_status: OutcomeStatus,
    pub effect: ChargeEffect,
    pub verdicts: Option<Vec<VerifierVerdict>>,
    pub signal: Option<serde_json::Value>,
    pub policy_version: i32,
    pub policy_hash: String,
    pub inputs_hash: String,
    pub reason: String,
    pub created_at: Timestamp,
    /// Who made the event; `None` for events recorded before actors were.
    pub actor: Option<Actor>,
}

/// One ledger transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: TransferId,
    pub debit: LedgerAccount,
    pub credit: LedgerAccount,
    pub amount: i64,
    pub unit: TransferUnit,
    pub kind: TransferKind,
    pub outcome_id: Option<OutcomeId>,
    pub reverses_id: Option<TransferId>,
    pub memo: Option<String>,
    pub created_at: Timestamp,
    /// The book it is in: live or test.
    pub mode: ApiKeyMode,
}

/// Filters of `list_outcomes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutcomeFilter {
    /// Live or test: a list is always of one mode.
    pub mode: ApiKeyMode,
    pub status: Option<OutcomeStatus>,
    pub agent_id: Option<AgentId>,
    pub created_from: Option<Timestamp>,
    pub created_to: Option<Timestamp>,
}

macro_rules! event_columns {
    () => {
        "outcome_id, seq, event, from_status, to_status, effect, verdicts, signal, policy_version, policy_hash,
         inputs_hash, reason, created_at, actor"
    };
}

/// One receipt event as read, with its outcome.
struct EventRow {
    outcome_id: OutcomeId,
    record: OutcomeEventRecord,
}

impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for EventRow
where
    &'r str: sqlx::ColumnIndex<R>,
    Text<OutcomeId>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Text<ReceiptEvent>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<Text<OutcomeStatus>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Text<OutcomeStatus>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Text<ChargeEffect>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<Json<Vec<VerifierVerdict>>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<Json<serde_json::Value>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Timestamp: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<Text<Actor>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(r: &'r R) -> Result<Self, sqlx::Error> {
        let outcome_id: Text<OutcomeId> = r.try_get("outcome_id")?;
        let from_status: Option<Text<OutcomeStatus>> = r.try_get("from_status")?;
        let verdicts: Option<Json<Vec<VerifierVerdict>>> = r.try_get("verdicts")?;
        let signal: Option<Json<serde_json::Value>> = r.try_get("signal")?;
        let actor: Option<Text<Actor>> = r.try_get("actor")?;
        Ok(EventRow {
            outcome_id: outcome_id.0,
            record: OutcomeEventRecord {
                seq: r.try_get("seq")?,
                event: r.try_get::<Text<ReceiptEvent>, _>("event")?.0,
                from_status: from_status.map(Text::into_inner),
                to_status: r.try_get::<Text<OutcomeStatus>, _>("to_status")?.0,
                effect: r.try_get::<Text<ChargeEffect>, _>("effect")?.0,
                verdicts: verdicts.map(Json::into_inner),
                signal: signal.map(Json::into_inner),
                policy_version: r.try_get("policy_version")?,
                policy_hash: r.try_get("policy_hash")?,
                inputs_hash: r.try_get("inputs_hash")?,
                reason: r.try_get("reason")?,
                created_at: r.try_get("created_at")?,
                actor: actor.map(Text::into_inner),
            },
        })
    }
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
    id: Text<OutcomeId>,
    account_id: Text<AccountId>,
    task_id: Text<TaskId>,
    agent_id: Text<AgentId>,
    agent_version: i32,
    outcome_type: Text<OutcomeType>,
    status: Text<OutcomeStatus>,
    policy: Json<VerificationPolicy>,
    policy_hash: String,
    window_ends_at: Timestamp,
    goodwill_ends_at: Timestamp,
    rating: Option<Json<RatingReceipt>>,
    cu_milli: i64,
    amount_micros: i64,
    currency: Text<Currency>,
    inference_cost_micros: i64,
    inference_currency: Text<Currency>,
    created_at: Timestamp,
    updated_at: Timestamp,
    decided_at: Option<Timestamp>,
    livemode: bool,
}

impl From<OutcomeRow> for Outcome {
    fn from(r: OutcomeRow) -> Self {
        Outcome {
            id: r.id.0,
            account_id: r.account_id.0,
            task_id: r.task_id.0,
            agent_id: r.agent_id.0,
            agent_version: r.agent_version,
            outcome_type: r.outcome_type.0,
            status: r.status.0,
            policy: r.policy.0,
            policy_hash: r.policy_hash,
            window_ends_at: r.window_ends_at,
            goodwill_ends_at: r.goodwill_ends_at,
            rating: r.rating.map(Json::into_inner),
            cu: ComputeUnits::from_milli(r.cu_milli),
            amount: Money::from_micros(r.amount_micros, r.currency.0),
            inference_cost: Money::from_micros(r.inference_cost_micros, r.inference_currency.0),
            created_at: r.created_at,
            updated_at: r.updated_at,
            decided_at: r.decided_at,
            mode: ApiKeyMode::from_livemode(r.livemode),
        }
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn to_json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).expect("serializes to JSON")
}

/// What a receipt event records beside its transition: the verdicts or
/// the signal it carries, and who made it.
#[derive(Debug, Clone)]
pub struct EventEvidence {
    pub verdicts: Option<Vec<VerifierVerdict>>,
    pub signal: Option<serde_json::Value>,
    pub actor: Actor,
}

impl EventEvidence {
    /// An event with no evidence but its maker.
    pub fn by(actor: Actor) -> Self {
        EventEvidence {
            verdicts: None,
            signal: None,
            actor,
        }
    }
}

/// One receipt event to append to an outcome.
#[derive(Debug, Clone, Copy)]
pub struct NewOutcomeEvent<'a> {
    pub event: ReceiptEvent,
    pub from: Option<OutcomeStatus>,
    pub to: OutcomeStatus,
    pub effect: ChargeEffect,
    pub evidence: &'a EventEvidence,
    pub reason: &'a str,
}

/// Appends an event to the outcome's receipt, with a SHA-256 of its inputs.
pub async fn insert_outcome_event(
    tx: &mut Tx,
    outcome: &Outcome,
    e: NewOutcomeEvent<'_>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let verdicts = e.evidence.verdicts.as_ref().map(to_json);
    let signal = e.evidence.signal.as_ref().map(to_json);
    let inputs_hash = sha256_hex(
        format!(
            "{}\n{}\n{}",
            e.event,
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
            e.event.as_str(),
            e.from.map(|f| f.as_str().to_owned()),
            e.to.as_str(),
            e.effect.as_str(),
            verdicts,
            signal,
            outcome.agent_version,
            outcome.policy_hash.clone(),
            inputs_hash,
            e.reason,
            now,
            e.evidence.actor.to_string()
        ],
    )
    .await?;
    Ok(())
}

/// One of the account's outcomes, read inside the caller's transaction
/// (under its billing lock).
pub async fn outcome_in(
    tx: &mut Tx,
    account: AccountId,
    id: OutcomeId,
) -> Result<Option<Outcome>, StoreError> {
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
    Ok(row.map(Outcome::from))
}

/// The outcome of one of the account's tasks, once it has one, read
/// inside the caller's transaction: a later turn of a conversation
/// settles the outcome its first turn opened.
pub async fn outcome_of_task_in(
    tx: &mut Tx,
    account: AccountId,
    task: TaskId,
) -> Result<Option<Outcome>, StoreError> {
    let row: Option<OutcomeRow> = tx
        .fetch_optional(
            concat!(
                "select ",
                outcome_columns!(),
                " from outcomes where account_id = $1 and task_id = $2"
            ),
            args![account, task],
        )
        .await?;
    Ok(row.map(Outcome::from))
}

/// Writes what a later turn of its conversation changes on an outcome:
/// its inference cost (every turn's calls) and its window (a new answer
/// waits a whole window again).
pub async fn set_outcome_turn(tx: &mut Tx, outcome: &Outcome) -> Result<(), StoreError> {
    tx.execute(
        "update outcomes set inference_cost_micros = $3, inference_currency = $4, window_ends_at = $5,
             goodwill_ends_at = $6, updated_at = $7
         where account_id = $1 and id = $2",
        args![
            outcome.account_id,
            outcome.id,
            outcome.inference_cost.micros,
            outcome.inference_cost.currency.to_string(),
            outcome.window_ends_at,
            outcome.goodwill_ends_at,
            outcome.updated_at
        ],
    )
    .await?;
    Ok(())
}

/// What opening a finished task's outcome needs from the store: its
/// agent version's outcome type and policy (as stored, for its hash), and
/// its inference cost per currency (our calls only). The task's mode comes
/// with the task the caller holds.
#[derive(Debug, Clone)]
pub struct OutcomeSource {
    pub outcome_type: OutcomeType,
    pub policy_json: String,
    /// The cost of the task's model calls in each currency, shadow and
    /// BYOK calls left out.
    pub costs: Vec<Money>,
}

/// Reads [`OutcomeSource`] for one of the account's tasks.
pub async fn outcome_source(
    tx: &mut Tx,
    account: AccountId,
    task: TaskId,
    agent_id: AgentId,
    agent_version: i32,
) -> Result<OutcomeSource, StoreError> {
    let (outcome_type, policy_json): (Text<OutcomeType>, String) = tx
        .fetch_one(
            "select outcome_type, verifier_policy from agent_versions
             where account_id = $1 and agent_id = $2 and version = $3",
            args![account, agent_id, agent_version],
        )
        .await?;
    let costs: Vec<(Text<Currency>, i64)> = tx
        .fetch_all(
            "select currency, cast(sum(cost_micros) as bigint) from model_calls
             where account_id = $1 and task_id = $2 and not shadow and not byok
             group by currency order by currency",
            args![account.to_string(), task.to_string()],
        )
        .await?;
    Ok(OutcomeSource {
        outcome_type: outcome_type.0,
        policy_json,
        costs: costs
            .into_iter()
            .map(|(currency, micros)| Money::from_micros(micros, currency.0))
            .collect(),
    })
}

/// Inserts a new outcome, with the policy it is judged under as stored.
pub async fn insert_outcome(tx: &mut Tx, outcome: &Outcome, policy_json: &str) -> Result<(), StoreError> {
    tx.execute(
        "insert into outcomes (id, account_id, task_id, agent_id, agent_version, outcome_type, status, policy,
             policy_hash, window_ends_at, goodwill_ends_at, rating, cu_milli, amount_micros, currency,
             inference_cost_micros, inference_currency, created_at, updated_at, decided_at, livemode)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, null, 0, 0, $12, $13, $14, $15, $15, $16, $17)",
        args![
            outcome.id.to_string(),
            outcome.account_id.to_string(),
            outcome.task_id.to_string(),
            outcome.agent_id.to_string(),
            outcome.agent_version,
            outcome.outcome_type.as_str(),
            outcome.status.as_str(),
            policy_json,
            outcome.policy_hash.clone(),
            outcome.window_ends_at,
            outcome.goodwill_ends_at,
            outcome.amount.currency.to_string(),
            outcome.inference_cost.micros,
            outcome.inference_cost.currency.to_string(),
            outcome.created_at,
            outcome.decided_at,
            outcome.mode.livemode()
        ],
    )
    .await?;
    Ok(())
}

/// Moves an outcome to `status`; `decided` stamps `decided_at` once.
pub async fn set_outcome_status(
    tx: &mut Tx,
    account: AccountId,
    id: OutcomeId,
    status: OutcomeStatus,
    decided: bool,
    now: Timestamp,
) -> Result<(), StoreError> {
    tx.execute(
        "update outcomes set status = $3, updated_at = $4, decided_at = coalesce(decided_at, $5)
         where account_id = $1 and id = $2",
        args![account, id, status.as_str(), now, decided.then_some(now)],
    )
    .await?;
    Ok(())
}

/// Stores a charged outcome's rating and what it came to.
pub async fn set_outcome_rating(
    tx: &mut Tx,
    account: AccountId,
    id: OutcomeId,
    receipt: &RatingReceipt,
) -> Result<(), StoreError> {
    tx.execute(
        "update outcomes set rating = $3, cu_milli = $4, amount_micros = $5, currency = $6
         where account_id = $1 and id = $2",
        args![
            account,
            id,
            to_json(receipt),
            receipt.cu.milli(),
            receipt.amount.micros,
            receipt.amount.currency.to_string()
        ],
    )
    .await?;
    Ok(())
}

/// What a task's answering calls used, per model (shadow and failed calls
/// left out), and whether any ran on the account's own key: the inputs of
/// its rating.
pub async fn rated_usage(
    tx: &mut Tx,
    account: AccountId,
    task: TaskId,
) -> Result<(Vec<ModelUsage>, bool), StoreError> {
    let usage: Vec<(String, i64, i64)> = tx
        .fetch_all(
            "select model, cast(sum(prompt_tokens) as bigint), cast(sum(completion_tokens) as bigint)
             from model_calls where account_id = $1 and task_id = $2 and error_code is null and not shadow
             group by model order by model",
            args![account.to_string(), task.to_string()],
        )
        .await?;
    let (byok,): (bool,) = tx
        .fetch_one(
            "select exists (select 1 from model_calls where account_id = $1 and task_id = $2 and byok and not shadow)",
            args![account.to_string(), task.to_string()],
        )
        .await?;
    let usage = usage
        .into_iter()
        .map(|(model, p, c)| ModelUsage {
            model,
            prompt_tokens: u64::try_from(p).unwrap_or(0),
            completion_tokens: u64::try_from(c).unwrap_or(0),
        })
        .collect();
    Ok((usage, byok))
}

/// An account's billing settings and balances, for display.
#[derive(Debug, Clone)]
pub struct BillingInfo {
    pub plan: Plan,
    /// The monthly spending cap, in the plan's currency; `None`: none.
    pub monthly_cap: Option<Money>,
    pub alert_percents: Vec<u32>,
    /// Prepaid CU left.
    pub credit_balance: ComputeUnits,
    /// Money charged this month (reversals netted) plus reserved.
    pub month_spend: Money,
    /// Of which reserved for running tasks.
    pub reserved: Money,
}

impl Store {
    /// How many of the account's outcomes of `mode` are not decided yet
    /// (verifying, or provisional: waiting for the ticket source).
    pub async fn pending_outcomes(&self, account: AccountId, mode: ApiKeyMode) -> Result<i64, StoreError> {
        let (n,): (i64,) = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select count(*) from outcomes
                 where account_id = $1 and livemode = $2 and decided_at is null",
            )
            .bind(account.to_string())
            .bind(mode.livemode())
            .fetch_one(pool)
            .await?
        });
        Ok(n)
    }

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
        Ok(row.map(Outcome::from))
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
        Ok(row.map(Outcome::from))
    }

    /// The outcomes of some of the account's tasks (a page of them), in
    /// one query; a task without an outcome is simply absent.
    pub async fn outcomes_of_tasks(
        &self,
        account: AccountId,
        tasks: &[TaskId],
    ) -> Result<Vec<Outcome>, StoreError> {
        let rows: Vec<OutcomeRow> = in_list!(
            self,
            outcome_columns!(),
            "outcomes",
            "task_id",
            account,
            tasks,
            ""
        );
        Ok(rows.into_iter().map(Outcome::from).collect())
    }

    /// The account's outcomes of `ids` (any order; another account's ids
    /// are not found). One statement for the list: callers batch a few
    /// hundred at a time.
    pub async fn outcomes_by_ids(
        &self,
        account: AccountId,
        ids: &[OutcomeId],
    ) -> Result<Vec<Outcome>, StoreError> {
        let rows: Vec<OutcomeRow> = in_list!(self, outcome_columns!(), "outcomes", "id", account, ids, "");
        Ok(rows.into_iter().map(Outcome::from).collect())
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
            .bind(filter.agent_id.map(|a| a.to_string()))
            .bind(filter.created_from)
            .bind(filter.created_to)
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit.get()) + 1)
            .bind(filter.mode.livemode())
            .fetch_all(pool)
            .await?
        });
        let items = rows.into_iter().map(Outcome::from).collect();
        Ok(Page::from_overfetch(items, limit.get(), |o| o.id.to_string()))
    }

    /// The receipt of one of the account's outcomes: its events, in order.
    pub async fn outcome_events(
        &self,
        account: AccountId,
        id: OutcomeId,
    ) -> Result<Vec<OutcomeEventRecord>, StoreError> {
        let rows: Vec<EventRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", event_columns!(), " from outcome_events where account_id = $1 and outcome_id = $2 order by seq",
            ))
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|r| r.record).collect())
    }

    /// The receipt events of the account's outcomes `ids`, each outcome's
    /// in order: one statement for the list, as [`Store::outcome_events`]
    /// is for one.
    pub async fn events_of_outcomes(
        &self,
        account: AccountId,
        ids: &[OutcomeId],
    ) -> Result<Vec<(OutcomeId, OutcomeEventRecord)>, StoreError> {
        let rows: Vec<EventRow> = in_list!(
            self,
            event_columns!(),
            "outcome_events",
            "outcome_id",
            account,
            ids,
            ""
        );
        // Sorted here: an `order by` would have SQLite walk the whole
        // table in key order instead of probing it once per outcome.
        let mut events: Vec<(OutcomeId, OutcomeEventRecord)> =
            rows.into_iter().map(|r| (r.outcome_id, r.record)).collect();
        events.sort_by_key(|(id, e)| (id.to_string(), e.seq));
        Ok(events)
    }

    /// The account's ledger transfers: of one outcome, or of a kind.
    pub async fn transfers(
        &self,
        account: AccountId,
        outcome: Option<OutcomeId>,
        kind: Option<TransferKind>,
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
            livemode: bool,
        }
        let rows: Vec<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, debit, credit, amount, unit, kind, outcome_id, reverses_id, memo, created_at, livemode
                 from ledger_transfers
                 where account_id = $1 and ($2 is null or outcome_id = $2) and ($3 is null or kind = $3)
                 order by id",
            )
            .bind(account.to_string())
            .bind(outcome.map(|o| o.to_string()))
            .bind(kind.map(|k| k.as_str()))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                let bad = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("ledger_transfers: {e}"));
                Ok(Transfer {
                    id: r.id.parse().map_err(|e| bad(&e))?,
                    debit: r.debit.parse().map_err(|e| bad(&e))?,
                    credit: r.credit.parse().map_err(|e| bad(&e))?,
                    amount: r.amount,
                    unit: TransferUnit::from_stored(&r.unit),
                    kind: r.kind.parse().map_err(|e| bad(&e))?,
                    outcome_id: r.outcome_id.map(|o| o.parse()).transpose().map_err(|e| bad(&e))?,
                    reverses_id: r
                        .reverses_id
                        .map(|o| o.parse())
                        .transpose()
                        .map_err(|e| bad(&e))?,
                    memo: r.memo,
                    created_at: r.created_at,
                    mode: ApiKeyMode::from_livemode(r.livemode),
                })
            })
            .collect()
    }

    /// Provisional outcomes whose window has ended, oldest first (up to
    /// `limit`): the lapse sweep's work.
    pub async fn due_lapses(&self, limit: u32) -> Result<Vec<(AccountId, OutcomeId)>, StoreError> {
        let now = self.now();
        let due: Vec<(Text<AccountId>, Text<OutcomeId>)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select account_id, id from outcomes where status = 'provisional' and window_ends_at <= $1
                 order by window_ends_at limit $2",
            )
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(due.into_iter().map(|(account, id)| (account.0, id.0)).collect())
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
        lock_billing(&mut tx, account, now).await?;
        let id = insert_transfer(&mut tx, account, &grant, None, None, memo, mode, now).await?;
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
        let billing = lock_billing(&mut tx, account, now).await?;
        let a = account.to_string();
        let credits = balance(
            &mut tx,
            account,
            mode,
            LedgerAccount::Credits,
            &TransferUnit::MilliCu,
        )
        .await?;
        let (spend, reserved) = if mode.livemode() {
            let spend = committed_spend(&mut tx, account, now).await?;
            let (reserved,): (i64,) = tx
                .fetch_one(
                    "select cast(coalesce(sum(amount_micros), 0) as bigint) from budget_reservations
                     where account_id = $1",
                    args![a],
                )
                .await?;
            (spend, reserved)
        } else {
            let spend = money_spent_since(&mut tx, account, mode, period_start(now)).await?;
            (spend, 0)
        };
        tx.commit().await?;
        let currency = billing.plan.currency();
        Ok(BillingInfo {
            monthly_cap: billing
                .monthly_cap_micros
                .map(|c| Money::from_micros(c, currency)),
            plan: billing.plan,
            alert_percents: billing.alert_percents,
            credit_balance: ComputeUnits::from_milli(credits),
            month_spend: Money::from_micros(spend, currency),
            reserved: Money::from_micros(reserved, currency),
        })
    }

    /// The account's plan (the default one until it is set), read without
    /// the billing lock or any balance: for pages that only need its
    /// currency or prices.
    pub async fn plan(&self, account: AccountId) -> Result<Plan, StoreError> {
        let row: Option<(Json<Plan>,)> = on_pool!(&self.db, pool => {
            sqlx::query_as("select plan from account_billing where account_id = $1")
                .bind(account.to_string())
                .fetch_optional(pool)
                .await?
        });
        match row {
            Some((plan,)) => Ok(plan.0),
            None => Ok(Plan::default_value_plan()),
        }
    }

    /// Sets the account's plan (used from the next charge on).
    pub async fn set_plan(&self, account: AccountId, plan: &Plan) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        lock_billing(&mut tx, account, now).await?;
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
        lock_billing(&mut tx, account, now).await?;
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
