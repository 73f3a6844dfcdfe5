//! Calls made through the OpenAI-compatible gateway, and the tasks they
//! form.
//!
//! Every call is a `gateway_calls` row, written behind the response in
//! batches ([`Store::record_gateway_calls`]: one transaction per batch).
//! A call that names a task (`Bounty-Task`) belongs to that task. The
//! task itself is made when the customer reports its outcome
//! ([`link_gateway_calls`], in the report's transaction): its calls are
//! copied to `model_calls`, where the task's receipt, its effort rating
//! and the margin views read them, and their `task_id` is set. A call
//! recorded after that goes to both tables at once. So a call's cost is
//! counted once: in `model_calls` when its task exists, else here
//! (unattributed calls, and calls of tasks not reported yet).

use bounty_core::{AccountId, AgentId, ApiKeyMode, GatewayCallId, Money, TaskId, Timestamp};

use crate::db::on_pool;
use crate::tasks::{NewModelCall, TaskError, insert_model_calls};
use crate::tx::{Arg, Tx, args};
use crate::{Store, StoreError};

/// The attempt number a gateway task's own calls are recorded under: the
/// customer's agent made them before any worker attempt (a worker's
/// verification is attempt 1).
pub const GATEWAY_ATTEMPT: i32 = 0;

/// How a gateway call is paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayBilling {
    /// Part of its task: the outcome is what is billed.
    Task,
    /// No task: billed at cost plus the plan's markup (`charge`).
    CostPlus,
    /// No task: the operator's cost only.
    Free,
}

impl GatewayBilling {
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayBilling::Task => "task",
            GatewayBilling::CostPlus => "cost_plus",
            GatewayBilling::Free => "free",
        }
    }
}

/// A gateway task's key: account, livemode, the customer's reference.
type TaskKey<'a> = (AccountId, bool, &'a str);

/// One gateway call to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGatewayCall {
    pub id: GatewayCallId,
    pub account: AccountId,
    pub mode: ApiKeyMode,
    pub api_key: String,
    /// The customer's task id (`Bounty-Task`).
    pub task_ref: Option<String>,
    /// The agent the call's task is for (`Bounty-Agent`); `None`: the
    /// account's default gateway agent, chosen when the task is made.
    pub agent: Option<AgentId>,
    /// `chat` or `embeddings`.
    pub endpoint: &'static str,
    /// A judge verifier's call, checking a cascade step's answer (its
    /// `call.verdict` is `None`); otherwise a call answering the client.
    pub judge: bool,
    /// The gateway model the client named.
    pub model: String,
    /// The call itself, as a task's model call would record it (the
    /// model that answered, tokens, latency, cost, BYOK, error).
    pub call: NewModelCall,
    /// Bounty counted the tokens: the provider sent no usage.
    pub usage_counted: bool,
    pub streamed: bool,
    pub billing: GatewayBilling,
    /// `CostPlus`: what the customer is charged; zero otherwise.
    pub charge: Money,
    pub at: Timestamp,
    /// A cached model's answer to a task's call: the cache key and the
    /// response, kept as a candidate served once the task is resolved.
    pub cache: Option<(String, String)>,
}

impl Store {
    /// Records a batch of gateway calls in one transaction. A call whose
    /// task exists already is also recorded on the task.
    pub async fn record_gateway_calls(&self, calls: &[NewGatewayCall]) -> Result<(), StoreError> {
        if calls.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        // Tasks looked up in this batch, by (account, mode, reference).
        let mut known: Vec<(TaskKey<'_>, Option<TaskId>)> = Vec::new();
        let mut tasks: Vec<Option<TaskId>> = Vec::with_capacity(calls.len());
        for c in calls {
            tasks.push(match &c.task_ref {
                Some(reference) => {
                    let key = (c.account, c.mode.livemode(), reference.as_str());
                    match known.iter().find(|(k, _)| *k == key) {
                        Some((_, task)) => *task,
                        None => {
                            let task = gateway_task(&mut tx, c.account, c.mode, reference).await?;
                            known.push((key, task));
                            task
                        }
                    }
                }
                None => None,
            });
        }
        // Many rows a statement: one round trip per chunk, not per call.
        for (chunk, chunk_tasks) in calls.chunks(INSERT_CHUNK).zip(tasks.chunks(INSERT_CHUNK)) {
            let mut values: Vec<Arg> = Vec::with_capacity(chunk.len() * CALL_COLUMNS);
            for (c, task) in chunk.iter().zip(chunk_tasks) {
                push_call(&mut values, c, *task);
            }
            tx.execute(insert_sql(chunk.len()), &values).await?;
        }
        for (c, task) in calls.iter().zip(&tasks) {
            if let (Some((key, response)), Some(reference)) = (&c.cache, &c.task_ref) {
                tx.execute(
                    "insert into gateway_cache (account_id, livemode, key_hash, task_ref, call_id, response, created_at)
                     values ($1, $2, $3, $4, $5, $6, $7)
                     on conflict do nothing",
                    args![
                        c.account,
                        c.mode.livemode(),
                        key.clone(),
                        reference.clone(),
                        c.id.to_string(),
                        response.clone(),
                        c.at
                    ],
                )
                .await?;
            }
            if let Some(task) = *task {
                let seq = next_seq(&mut tx, c.account, task).await?;
                insert_model_calls(
                    &mut tx,
                    c.account,
                    task,
                    GATEWAY_ATTEMPT,
                    seq,
                    std::slice::from_ref(&c.call),
                    c.at,
                )
                .await?;
            }
        }
        tx.commit().await
    }

    /// A cached answer for `key`: one whose task's outcome is resolved
    /// now. Only the account's own entries are read. A plain read (no
    /// write lock on SQLite): it runs on the request path.
    pub async fn gateway_cached(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select c.response from gateway_cache c
                 join tasks t on t.account_id = c.account_id and t.livemode = c.livemode
                     and t.gateway_ref = c.task_ref
                 join outcomes o on o.account_id = t.account_id and o.task_id = t.id
                 where c.account_id = $1 and c.livemode = $2 and c.key_hash = $3 and o.status = 'resolved'
                 order by c.created_at desc limit 1",
            )
            .bind(account.to_string())
            .bind(mode.livemode())
            .bind(key)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|(r,)| r))
    }

    /// The operator's view of the account's live gateway calls in
    /// `[from, to)` that are not part of a task (unattributed, or of a
    /// task not reported yet): per billing rule and currency, the calls,
    /// their cost, and the cost-plus charge.
    pub async fn gateway_open_figures(
        &self,
        account: AccountId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<GatewayFigures>, StoreError> {
        let rows: Vec<GatewayFigures> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select billing, currency, count(*) as calls,
                     cast(coalesce(sum(cost_micros), 0) as bigint) as cost_micros,
                     cast(coalesce(sum(charge_micros), 0) as bigint) as charge_micros
                 from gateway_calls
                 where account_id = $1 and livemode = $2 and task_id is null and created_at >= $3 and created_at < $4
                 group by billing, currency order by billing, currency",
            )
            .bind(account.to_string())
            .bind(true)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// The gateway calls not yet part of a task, of one account and mode,
    /// newest first: the operator's view of unattributed and pending cost.
    pub async fn open_gateway_calls(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        limit: i64,
    ) -> Result<Vec<GatewayCallRow>, StoreError> {
        let rows: Vec<GatewayCallRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ",
                gateway_call_columns!(),
                " from gateway_calls where account_id = $1 and livemode = $2 and task_id is null
                 order by created_at desc, id desc limit $3"
            ))
            .bind(account.to_string())
            .bind(mode.livemode())
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}

macro_rules! gateway_call_columns {
    () => {
        "id, task_ref, task_id, endpoint, model, served_model, prompt_tokens, cached_tokens, completion_tokens,
         reasoning_tokens, usage_counted, latency_us, cost_micros, currency, byok, streamed, billing,
         charge_micros, error_code, created_at, role, verdict"
    };
}
use gateway_call_columns;

/// Gateway calls of one billing rule and currency, summed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct GatewayFigures {
    /// `task` (of a task not reported yet), `cost_plus` or `free`.
    pub billing: String,
    pub currency: String,
    pub calls: i64,
    /// What the calls cost (BYOK calls included: the customer's cost).
    pub cost_micros: i64,
    /// `cost_plus`: what the customer is charged for them.
    pub charge_micros: i64,
}

/// A recorded gateway call.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct GatewayCallRow {
    pub id: String,
    pub task_ref: Option<String>,
    pub task_id: Option<String>,
    pub endpoint: String,
    pub model: String,
    pub served_model: Option<String>,
    pub prompt_tokens: i64,
    pub cached_tokens: i64,
    pub completion_tokens: i64,
    pub reasoning_tokens: i64,
    pub usage_counted: bool,
    pub latency_us: i64,
    pub cost_micros: i64,
    pub currency: String,
    pub byok: bool,
    pub streamed: bool,
    pub billing: String,
    pub charge_micros: i64,
    pub error_code: Option<String>,
    pub created_at: Timestamp,
    /// `answer`, or `judge` for a judge verifier's check of a cascade step.
    pub role: String,
    /// A cascade step's verdict (`pass`, `fail`), when a verifier ran.
    pub verdict: Option<String>,
}

/// Rows of `gateway_calls` per insert statement.
const INSERT_CHUNK: usize = 32;

/// Columns of one `gateway_calls` row, in [`push_call`]'s order.
const CALL_COLUMNS: usize = 29;

/// `insert into gateway_calls … values (…), (…)` for `rows` rows, made
/// once per size and kept for the process (the store's statements are
/// `'static`).
fn insert_sql(rows: usize) -> &'static str {
    static SQL: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        (1..=INSERT_CHUNK)
            .map(|n| {
                let values: Vec<String> = (0..n)
                    .map(|row| {
                        let params: Vec<String> =
                            (1..=CALL_COLUMNS).map(|c| format!("${}", row * CALL_COLUMNS + c)).collect();
                        format!("({})", params.join(", "))
                    })
                    .collect();
                let sql = format!(
                    "insert into gateway_calls (id, account_id, livemode, api_key_id, task_ref, agent_id, task_id,
                         endpoint, model, served_model, provider, prompt_tokens, cached_tokens, completion_tokens,
                         reasoning_tokens, usage_counted, latency_us, cost_micros, currency, byok, cache_hit, streamed,
                         billing, charge_micros, error_code, error_message, created_at, role, verdict)
                     values {}
                     on conflict do nothing",
                    values.join(", ")
                );
                &*Box::leak(sql.into_boxed_str())
            })
            .collect()
    });
    all[rows.clamp(1, INSERT_CHUNK) - 1]
}

/// The [`CALL_COLUMNS`] values of one `gateway_calls` row.
fn push_call(values: &mut Vec<Arg>, c: &NewGatewayCall, task: Option<TaskId>) {
    let call = &c.call;
    let error: Option<&TaskError> = call.error.as_ref();
    values.extend([
        Arg::from(c.id.to_string()),
        Arg::from(c.account),
        Arg::from(c.mode.livemode()),
        Arg::from(c.api_key.clone()),
        Arg::from(c.task_ref.clone()),
        Arg::from(c.agent.map(|a| a.to_string())),
        Arg::from(task.map(|t| t.to_string())),
        Arg::from(c.endpoint),
        Arg::from(c.model.clone()),
        Arg::from((!call.model.is_empty()).then(|| call.model.clone())),
        Arg::from(call.provider.clone()),
        Arg::from(call.prompt_tokens),
        Arg::from(call.cached_tokens),
        Arg::from(call.completion_tokens),
        Arg::from(call.reasoning_tokens),
        Arg::from(c.usage_counted),
        Arg::from(call.latency_us),
        Arg::from(call.cost.micros),
        Arg::from(call.cost.currency),
        Arg::from(call.byok),
        Arg::from(call.cache_hit),
        Arg::from(c.streamed),
        Arg::from(c.billing.as_str()),
        Arg::from(c.charge.micros),
        Arg::from(error.map(|e| e.code.clone())),
        Arg::from(error.map(|e| e.message.clone())),
        Arg::from(c.at),
        Arg::from(if c.judge { "judge" } else { "answer" }),
        Arg::from(call.verdict.map(|d| d.as_str().to_owned())),
    ]);
}

/// The task made for the customer's `reference`, if its outcome was
/// reported.
pub async fn gateway_task(
    tx: &mut Tx,
    account: AccountId,
    mode: ApiKeyMode,
    reference: &str,
) -> Result<Option<TaskId>, StoreError> {
    let row: Option<(String,)> = tx
        .fetch_optional(
            "select id from tasks where account_id = $1 and livemode = $2 and gateway_ref = $3",
            args![account, mode.livemode(), reference],
        )
        .await?;
    row.map(|(id,)| {
        id.parse()
            .map_err(|e| StoreError::Corrupt(format!("tasks.id: {e}")))
    })
    .transpose()
}

/// The agent the first call of `reference` named, if any did.
pub async fn gateway_agent_of(
    tx: &mut Tx,
    account: AccountId,
    mode: ApiKeyMode,
    reference: &str,
) -> Result<Option<AgentId>, StoreError> {
    let row: Option<(Option<String>,)> = tx
        .fetch_optional(
            "select agent_id from gateway_calls
             where account_id = $1 and livemode = $2 and task_ref = $3 and agent_id is not null
             order by created_at, id limit 1",
            args![account, mode.livemode(), reference],
        )
        .await?;
    row.and_then(|(id,)| id)
        .map(|id| {
            id.parse()
                .map_err(|e| StoreError::Corrupt(format!("gateway_calls.agent_id: {e}")))
        })
        .transpose()
}

async fn next_seq(tx: &mut Tx, account: AccountId, task: TaskId) -> Result<i32, StoreError> {
    let (n,): (i64,) = tx
        .fetch_one(
            "select count(*) from model_calls where account_id = $1 and task_id = $2 and attempt = $3",
            args![account, task, GATEWAY_ATTEMPT],
        )
        .await?;
    Ok(i32::try_from(n).unwrap_or(i32::MAX))
}

/// Makes `task` the task of `reference`: marks it a gateway task and
/// moves the reference's calls recorded so far onto it (copied to
/// `model_calls`, in the order they were made). Returns how many calls
/// it moved. In the transaction that inserts the task.
pub async fn link_gateway_calls(
    tx: &mut Tx,
    account: AccountId,
    mode: ApiKeyMode,
    reference: &str,
    task: TaskId,
) -> Result<usize, StoreError> {
    tx.execute(
        "update tasks set gateway_ref = $1 where account_id = $2 and id = $3",
        args![reference, account, task],
    )
    .await?;
    #[derive(sqlx::FromRow)]
    struct Row {
        id: String,
        served_model: Option<String>,
        model: String,
        provider: Option<String>,
        prompt_tokens: i64,
        cached_tokens: i64,
        completion_tokens: i64,
        reasoning_tokens: i64,
        latency_us: i64,
        cost_micros: i64,
        currency: String,
        cache_hit: bool,
        byok: bool,
        error_code: Option<String>,
        error_message: Option<String>,
        created_at: Timestamp,
        verdict: Option<String>,
    }
    let rows: Vec<Row> = tx
        .fetch_all(
            "select id, served_model, model, provider, prompt_tokens, cached_tokens, completion_tokens,
                 reasoning_tokens, latency_us, cost_micros, currency, cache_hit, byok, error_code, error_message,
                 created_at, verdict
             from gateway_calls
             where account_id = $1 and livemode = $2 and task_ref = $3 and task_id is null
             order by created_at, id",
            args![account, mode.livemode(), reference],
        )
        .await?;
    for (seq, r) in rows.iter().enumerate() {
        let currency = r
            .currency
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("gateway_calls.currency: {e}")))?;
        let call = NewModelCall {
            model: r.served_model.clone().unwrap_or_else(|| r.model.clone()),
            provider: r.provider.clone(),
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            cached_tokens: r.cached_tokens,
            reasoning_tokens: r.reasoning_tokens,
            latency_us: r.latency_us,
            cost: Money::from_micros(r.cost_micros, currency),
            cache_hit: r.cache_hit,
            byok: r.byok,
            error: r.error_code.clone().map(|code| TaskError {
                code,
                message: r.error_message.clone().unwrap_or_default(),
            }),
            verdict: r
                .verdict
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("gateway_calls.verdict: {e}")))?,
            shadow: false,
        };
        let seq = i32::try_from(seq).unwrap_or(i32::MAX);
        insert_model_calls(
            tx,
            account,
            task,
            GATEWAY_ATTEMPT,
            seq,
            std::slice::from_ref(&call),
            r.created_at,
        )
        .await?;
        tx.execute(
            "update gateway_calls set task_id = $1 where account_id = $2 and id = $3",
            args![task, account, r.id.clone()],
        )
        .await?;
    }
    Ok(rows.len())
}

/// Records the answer the customer reported for a gateway task: the
/// output a worker verifies.
pub async fn set_reported_output(
    tx: &mut Tx,
    account: AccountId,
    task: TaskId,
    output: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "update tasks set output = $1, reported_output = $1 where account_id = $2 and id = $3",
        args![output, account, task],
    )
    .await?;
    Ok(())
}

impl Store {
    /// The answer the customer reported for one of its gateway tasks.
    pub async fn gateway_reported_output(
        &self,
        account: AccountId,
        task: TaskId,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(Option<String>,)> = on_pool!(&self.db, pool => {
            sqlx::query_as("select reported_output from tasks where account_id = $1 and id = $2")
                .bind(account.to_string())
                .bind(task.to_string())
                .fetch_optional(pool)
                .await?
        });
        Ok(row.and_then(|(o,)| o))
    }
}
