//! Tasks: the insert (with its budget reservation) and the reads a
//! submission makes in its transaction, reads, attempts and model calls.
//! The queue operations (claim, lease, finish) are in `queue.rs`.
//!
//! Whether a task may be submitted, and what an idempotency key's earlier
//! use means, is decided above the store (`bounty_agents::submit`); the
//! unique keys here (`(account_id, idempotency_key)`, `(integration_id,
//! intake_ticket)`) make the insert exactly-once under concurrency.

use bounty_core::{
    AccountId, AgentId, ApiKeyMode, Currency, Decision, IntegrationId, ModelCallId, Money, OutcomeType,
    PageLimit, TaskId, TaskInput, TaskStatus, Timestamp,
};

use crate::column::Text;
use crate::db::{Db, in_list, on_pool};
use crate::sql::Sql;
use crate::tx::{Arg, Tx, args};
use crate::{Page, Store, StoreError};

/// A task to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub agent_id: AgentId,
    pub agent_version: i32,
    pub input: TaskInput,
    pub external_ref: Option<String>,
    /// `Idempotency-Key` and the SHA-256 of the request it came with.
    pub idempotency: Option<Idempotency>,
    pub max_attempts: u32,
    /// Live or test: the mode of the key (or integration) that made it.
    pub mode: ApiKeyMode,
}

/// An idempotency key and what it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    pub request_hash: String,
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: TaskId,
    pub account_id: AccountId,
    pub agent_id: AgentId,
    pub agent_version: i32,
    pub status: TaskStatus,
    pub input: TaskInput,
    pub external_ref: Option<String>,
    pub attempts: i32,
    pub max_attempts: i32,
    /// When it may next be claimed (queued), or was last made due.
    pub run_at: Timestamp,
    pub lease_expires_at: Option<Timestamp>,
    pub output: Option<String>,
    /// Schema violations of the output; `None` when there is no schema or
    /// no output yet, empty when it matched.
    pub output_errors: Option<Vec<String>>,
    pub output_model: Option<String>,
    /// Chat messages: `[{role, content}, …]`.
    pub transcript: Option<serde_json::Value>,
    pub last_error: Option<TaskError>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// Live or test.
    pub mode: ApiKeyMode,
    /// The conversation's turn the task is on: 1 for a new task, one more
    /// for each customer message that continued it (see
    /// `bounty_core::conversation`).
    pub turn: i32,
    /// A gateway task: the customer's id for it (`Bounty-Task`). Its
    /// calls were made through the gateway, and its output was reported
    /// by the customer: a worker verifies it instead of generating.
    pub gateway_ref: Option<String>,
}

/// Why an attempt (or the task) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    pub code: String,
    pub message: String,
}

/// Filters of `list_tasks`; all optional but the mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    /// Live or test: a list is always of one mode.
    pub mode: ApiKeyMode,
    pub status: Option<TaskStatus>,
    pub agent_id: Option<AgentId>,
    /// Created at or after.
    pub created_from: Option<Timestamp>,
    /// Created before.
    pub created_to: Option<Timestamp>,
    /// A substring of the task's subject or body, case-insensitively.
    ///
    /// It is matched against the stored JSON text of the whole input, so
    /// it can also match the input's other fields and its key names, and
    /// characters JSON escapes (quotes, backslashes, control characters)
    /// match only in their escaped form. `%`, `_` and `\` are literal.
    /// Case folding is SQL `lower()`: ASCII-only on SQLite, Unicode on
    /// Postgres.
    pub search: Option<String>,
    /// Only tasks whose outcome is in one of these statuses (empty: any).
    pub outcome_statuses: Vec<bounty_core::outcome::OutcomeStatus>,
}

/// Where a page of tasks starts: the first page, after a task (older),
/// or before one (newer: the previous page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskCursor {
    First,
    After(TaskId),
    Before(TaskId),
}

/// A page of tasks, newest first, with cursors both ways.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPage {
    pub items: Vec<Task>,
    /// The cursor of the next (older) page; `None` on the last.
    pub next_cursor: Option<String>,
    /// The cursor of the previous (newer) page; `None` on the first.
    pub prev_cursor: Option<String>,
}

/// One attempt at a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskAttempt {
    pub attempt: i32,
    pub worker: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// How it ended; `None` while it runs.
    pub outcome: Option<bounty_core::task::AttemptOutcome>,
    pub error: Option<TaskError>,
}

/// A model call to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewModelCall {
    pub model: String,
    pub provider: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Of `prompt_tokens`, those the provider read from its prompt cache.
    pub cached_tokens: i64,
    /// Of `completion_tokens`, hidden reasoning.
    pub reasoning_tokens: i64,
    pub latency_us: i64,
    /// What the call cost us (zero for a cache hit); a BYOK call's cost is
    /// the account's own, on its own key.
    pub cost: Money,
    pub cache_hit: bool,
    pub byok: bool,
    pub error: Option<TaskError>,
    /// What the verifiers decided about this call's output, for an
    /// answering call (a cascade has one per step); `None` for judge calls
    /// and failed calls.
    pub verdict: Option<Decision>,
    /// A shadow student's call: recorded beside the task, never part of
    /// its outcome, cost or charge.
    pub shadow: bool,
}

/// A recorded model call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCall {
    pub id: ModelCallId,
    pub task_id: TaskId,
    pub attempt: i32,
    pub call: NewModelCall,
    pub created_at: Timestamp,
}

macro_rules! task_columns {
    () => {
        "id, account_id, agent_id, agent_version, status, input, external_ref, attempts, max_attempts,
         run_at, lease_expires_at, output, output_errors, output_model, transcript, last_error_code,
         last_error_message, created_at, updated_at, started_at, finished_at, livemode, turn, gateway_ref"
    };
}
pub(crate) use task_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct TaskRow {
    pub(crate) id: String,
    account_id: String,
    agent_id: String,
    agent_version: i32,
    status: String,
    input: String,
    external_ref: Option<String>,
    attempts: i32,
    max_attempts: i32,
    run_at: Timestamp,
    lease_expires_at: Option<Timestamp>,
    output: Option<String>,
    output_errors: Option<String>,
    output_model: Option<String>,
    transcript: Option<String>,
    last_error_code: Option<String>,
    last_error_message: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
    livemode: bool,
    turn: i32,
    gateway_ref: Option<String>,
}

impl TaskRow {
    /// `(id, account_id, attempts)` as stored, for the queue's own writes.
    pub(crate) fn queue_key(&self) -> (String, String, i32) {
        (self.id.clone(), self.account_id.clone(), self.attempts)
    }
}

fn corrupt(column: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("tasks.{column}: {e}"))
}

fn json_col<T: serde::de::DeserializeOwned>(
    column: &str,
    v: Option<String>,
) -> Result<Option<T>, StoreError> {
    v.map(|s| serde_json::from_str(&s))
        .transpose()
        .map_err(|e| corrupt(column, e))
}

impl TryFrom<TaskRow> for Task {
    type Error = StoreError;

    fn try_from(r: TaskRow) -> Result<Self, StoreError> {
        Ok(Task {
            id: r.id.parse().map_err(|e| corrupt("id", e))?,
            account_id: r.account_id.parse().map_err(|e| corrupt("account_id", e))?,
            agent_id: r.agent_id.parse().map_err(|e| corrupt("agent_id", e))?,
            agent_version: r.agent_version,
            status: r.status.parse().map_err(|e| corrupt("status", e))?,
            input: serde_json::from_str(&r.input).map_err(|e| corrupt("input", e))?,
            external_ref: r.external_ref,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            run_at: r.run_at,
            lease_expires_at: r.lease_expires_at,
            output: r.output,
            output_errors: json_col("output_errors", r.output_errors)?,
            output_model: r.output_model,
            transcript: json_col("transcript", r.transcript)?,
            last_error: r.last_error_code.map(|code| TaskError {
                code,
                message: r.last_error_message.unwrap_or_default(),
            }),
            created_at: r.created_at,
            updated_at: r.updated_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            mode: ApiKeyMode::from_livemode(r.livemode),
            turn: r.turn,
            gateway_ref: r.gateway_ref,
        })
    }
}

/// Inserts the model calls of one attempt, in order.
/// Records `calls` of one attempt, numbered from `first_seq`.
pub async fn insert_model_calls(
    tx: &mut Tx,
    account: AccountId,
    task: TaskId,
    attempt: i32,
    first_seq: i32,
    calls: &[NewModelCall],
    now: Timestamp,
) -> Result<(), StoreError> {
    for (i, call) in calls.iter().enumerate() {
        tx.execute(
            "insert into model_calls (id, account_id, task_id, attempt, seq, model, provider, prompt_tokens,
                 completion_tokens, latency_us, cost_micros, currency, cache_hit, byok, error_code,
                 error_message, created_at, verdict, shadow, cached_tokens, reasoning_tokens)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
                 $20, $21)",
            args![
                ModelCallId::new().to_string(),
                account.to_string(),
                task.to_string(),
                attempt,
                first_seq.saturating_add(i32::try_from(i).unwrap_or(i32::MAX)),
                call.model.clone(),
                call.provider.clone(),
                call.prompt_tokens,
                call.completion_tokens,
                call.latency_us,
                call.cost.micros,
                call.cost.currency,
                call.cache_hit,
                call.byok,
                call.error.as_ref().map(|e| e.code.clone()),
                call.error.as_ref().map(|e| e.message.clone()),
                now,
                call.verdict.map(|d| d.as_str().to_owned()),
                call.shadow,
                call.cached_tokens,
                call.reasoning_tokens
            ],
        )
        .await?;
    }
    Ok(())
}

/// `needle` as a `like` pattern (with `escape '\'`) matching any text
/// that contains it, lower-cased.
fn contains_pattern(needle: &str) -> String {
    let mut out = String::with_capacity(needle.len() + 2);
    out.push('%');
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// `needle` as one FTS5 phrase: with the trigram tokenizer, the
/// documents that contain it, ignoring case.
fn fts_phrase(needle: &str) -> String {
    format!("\"{}\"", needle.replace('"', "\"\""))
}

impl Store {
    /// Inserts a queued task in a transaction of its own, with no
    /// admission checks: a fixture for tests. Product paths submit tasks
    /// through `bounty_agents::submit::submit_task`.
    #[cfg(feature = "test-support")]
    pub async fn create_task(&self, account: AccountId, new: &NewTask) -> Result<Inserted, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let inserted = insert_task(&mut tx, account, new, None, now).await?;
        if matches!(inserted, Inserted::New(_)) {
            tx.commit().await?;
        }
        Ok(inserted)
    }

    /// One of the account's tasks.
    pub async fn get_task(&self, account: AccountId, id: TaskId) -> Result<Option<Task>, StoreError> {
        let row: Option<TaskRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!("select ", task_columns!(), " from tasks where account_id = $1 and id = $2"))
                .bind(account.to_string())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        row.map(Task::try_from).transpose()
    }

    /// The account's tasks of `ids` (any order; another account's ids are
    /// not found). One statement for the list: callers batch a few
    /// hundred at a time.
    pub async fn tasks_by_ids(&self, account: AccountId, ids: &[TaskId]) -> Result<Vec<Task>, StoreError> {
        let rows: Vec<TaskRow> = in_list!(self, task_columns!(), "tasks", "id", account, ids, "");
        rows.into_iter().map(Task::try_from).collect()
    }

    /// The account's tasks, newest first, filtered.
    ///
    /// The `where` clause holds only the filters given, so each can use
    /// its index: `(account_id, status, id)`, `(account_id, agent_id, id)`,
    /// and the cursor seeks on any of them. A search of three characters or
    /// more on SQLite first narrows the tasks through the FTS5 trigram
    /// index `tasks_search` (newest first by insertion order, which is
    /// creation order), then applies the same `like` as everywhere else,
    /// so the index only ever speeds the search up. On Postgres the
    /// `like` itself uses the `pg_trgm` index where it exists.
    pub async fn list_tasks(
        &self,
        account: AccountId,
        filter: &TaskFilter,
        limit: PageLimit,
        after: Option<TaskId>,
    ) -> Result<Page<Task>, StoreError> {
        let cursor = after.map_or(TaskCursor::First, TaskCursor::After);
        let page = self.list_task_page(account, filter, limit, cursor).await?;
        Ok(Page {
            items: page.items,
            next_cursor: page.next_cursor,
        })
    }

    /// A page of the account's tasks, newest first, from `cursor`, with
    /// cursors to the pages on either side.
    pub async fn list_task_page(
        &self,
        account: AccountId,
        filter: &TaskFilter,
        limit: PageLimit,
        cursor: TaskCursor,
    ) -> Result<TaskPage, StoreError> {
        let fts = match (&self.db, filter.search.as_deref()) {
            // Trigrams need three characters; shorter needles scan.
            (Db::Sqlite(_), Some(needle)) if needle.chars().count() >= 3 => Some(needle),
            _ => None,
        };
        let mut q = Sql::default();
        q.push(concat!("select ", task_columns!(), " from "), []);
        match fts {
            Some(needle) => q.push(
                // `cross join` keeps the index scan (newest first) as the
                // outer loop; otherwise SQLite may walk every task and
                // probe the index once per row (over 30 s at 100,000).
                "(select rowid as hit from tasks_search where tasks_search match ?) h
                 cross join tasks on tasks.rowid = h.hit where account_id = ?",
                [Arg::from(fts_phrase(needle)), Arg::from(account.to_string())],
            ),
            None => q.push("tasks where account_id = ?", [Arg::from(account.to_string())]),
        };
        q.push(" and livemode = ?", [Arg::from(filter.mode.livemode())]);
        if let Some(status) = filter.status {
            q.push(" and status = ?", [Arg::from(status.as_str())]);
        }
        if let Some(agent) = filter.agent_id {
            q.push(" and agent_id = ?", [Arg::from(agent.to_string())]);
        }
        if let Some(from) = filter.created_from {
            q.push(" and created_at >= ?", [Arg::from(from)]);
        }
        if let Some(to) = filter.created_to {
            q.push(" and created_at < ?", [Arg::from(to)]);
        }
        if let Some(needle) = filter.search.as_deref() {
            q.push(
                " and lower(input) like ? escape '\\'",
                [Arg::from(contains_pattern(needle))],
            );
        }
        if !filter.outcome_statuses.is_empty() {
            // Most outcomes are resolved: for that filter, walking the
            // tasks newest first and probing each one's outcome finds a
            // page at once. Every other status is rare, and walking the
            // tasks would read most of them to fill a page (210 ms at
            // 100,000): the outcomes of that status are read from their
            // index instead.
            let dense = filter
                .outcome_statuses
                .contains(&bounty_core::outcome::OutcomeStatus::Resolved);
            if dense {
                q.push(
                    " and exists (select 1 from outcomes o where o.account_id = tasks.account_id and o.task_id = tasks.id
                       and o.status in (",
                    [],
                );
            } else {
                q.push(
                    " and tasks.id in (select o.task_id from outcomes o where o.account_id = ? and o.livemode = ?
                       and o.status in (",
                    [Arg::from(account.to_string()), Arg::from(filter.mode.livemode())],
                );
            }
            for (i, s) in filter.outcome_statuses.iter().enumerate() {
                q.push(if i == 0 { "?" } else { ", ?" }, [Arg::from(s.as_str())]);
            }
            q.push("))", []);
        }
        // Backwards (the previous page) reads ascending from the cursor and
        // turns the rows round.
        let (op, dir) = match cursor {
            TaskCursor::Before(_) => (">", "asc"),
            _ => ("<", "desc"),
        };
        match (fts, cursor) {
            (Some(_), TaskCursor::After(id) | TaskCursor::Before(id)) => q.push(
                &format!(" and h.hit {op} (select rowid from tasks where account_id = ? and id = ?)"),
                [Arg::from(account.to_string()), Arg::from(id.to_string())],
            ),
            (None, TaskCursor::After(id) | TaskCursor::Before(id)) => {
                q.push(&format!(" and id {op} ?"), [Arg::from(id.to_string())])
            }
            (_, TaskCursor::First) => &mut q,
        };
        let order = if fts.is_some() { "h.hit" } else { "id" };
        q.push(
            &format!(" order by {order} {dir} limit ?"),
            [Arg::from(i64::from(limit.get()) + 1)],
        );
        let rows: Vec<TaskRow> = q.fetch_all(&self.db).await?;
        let mut tasks = rows
            .into_iter()
            .map(Task::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let limit = limit.get() as usize;
        let more = tasks.len() > limit;
        tasks.truncate(limit);
        let id_of = |t: Option<&Task>| t.map(|t| t.id.to_string());
        Ok(match cursor {
            TaskCursor::Before(_) => {
                tasks.reverse();
                TaskPage {
                    prev_cursor: if more { id_of(tasks.first()) } else { None },
                    next_cursor: id_of(tasks.last()),
                    items: tasks,
                }
            }
            TaskCursor::After(_) | TaskCursor::First => TaskPage {
                next_cursor: if more { id_of(tasks.last()) } else { None },
                prev_cursor: match cursor {
                    TaskCursor::First => None,
                    _ => id_of(tasks.first()),
                },
                items: tasks,
            },
        })
    }

    /// Every attempt at one of the account's tasks, in order.
    pub async fn task_attempts(
        &self,
        account: AccountId,
        task: TaskId,
    ) -> Result<Vec<TaskAttempt>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            attempt: i32,
            worker: String,
            started_at: Timestamp,
            finished_at: Option<Timestamp>,
            outcome: Option<String>,
            error_code: Option<String>,
            error_message: Option<String>,
        }
        let rows: Vec<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select attempt, worker, started_at, finished_at, outcome, error_code, error_message
                 from task_attempts where account_id = $1 and task_id = $2 order by attempt",
            )
            .bind(account.to_string())
            .bind(task.to_string())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(TaskAttempt {
                    attempt: r.attempt,
                    worker: r.worker,
                    started_at: r.started_at,
                    finished_at: r.finished_at,
                    outcome: r
                        .outcome
                        .map(|o| o.parse())
                        .transpose()
                        .map_err(|e| StoreError::Corrupt(format!("task_attempts.outcome: {e}")))?,
                    error: r.error_code.map(|code| TaskError {
                        code,
                        message: r.error_message.unwrap_or_default(),
                    }),
                })
            })
            .collect()
    }

    /// Every model call of one of the account's tasks, in order.
    pub async fn model_calls(&self, account: AccountId, task: TaskId) -> Result<Vec<ModelCall>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: Text<ModelCallId>,
            task_id: Text<TaskId>,
            attempt: i32,
            model: String,
            provider: Option<String>,
            prompt_tokens: i64,
            completion_tokens: i64,
            latency_us: i64,
            cost_micros: i64,
            currency: Text<Currency>,
            cache_hit: bool,
            byok: bool,
            error_code: Option<String>,
            error_message: Option<String>,
            created_at: Timestamp,
            verdict: Option<Text<Decision>>,
            shadow: bool,
            cached_tokens: i64,
            reasoning_tokens: i64,
        }
        let rows: Vec<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, task_id, attempt, model, provider, prompt_tokens, completion_tokens, latency_us,
                     cost_micros, currency, cache_hit, byok, error_code, error_message, created_at, verdict,
                     shadow, cached_tokens, reasoning_tokens
                 from model_calls where account_id = $1 and task_id = $2 order by attempt, seq",
            )
            .bind(account.to_string())
            .bind(task.to_string())
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| ModelCall {
                id: r.id.0,
                task_id: r.task_id.0,
                attempt: r.attempt,
                call: NewModelCall {
                    model: r.model,
                    provider: r.provider,
                    prompt_tokens: r.prompt_tokens,
                    completion_tokens: r.completion_tokens,
                    cached_tokens: r.cached_tokens,
                    reasoning_tokens: r.reasoning_tokens,
                    latency_us: r.latency_us,
                    cost: Money::from_micros(r.cost_micros, r.currency.0),
                    cache_hit: r.cache_hit,
                    byok: r.byok,
                    error: r.error_code.map(|code| TaskError {
                        code,
                        message: r.error_message.unwrap_or_default(),
                    }),
                    verdict: r.verdict.map(Text::into_inner),
                    shadow: r.shadow,
                },
                created_at: r.created_at,
            })
            .collect())
    }
}

/// What [`insert_task`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    /// The queued task.
    New(Box<Task>),
    /// Its idempotency key, or its intake ticket, has a task already
    /// (nothing was written): see [`task_by_idempotency_key`] and
    /// [`task_of_ticket`].
    Conflict,
}

/// The helpdesk ticket a task is made for: its integration and the
/// ticket's id there. A unique key on the pair makes one task per ticket.
#[derive(Debug, Clone, Copy)]
pub struct IntakeTicket<'a> {
    pub integration: IntegrationId,
    pub ticket: &'a str,
}

/// A task an idempotency key was first used for, and the hash of the
/// request that used it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedTask {
    pub id: TaskId,
    pub request_hash: Option<String>,
}

/// The task the account's idempotency `key` was first used for.
pub async fn task_by_idempotency_key(
    tx: &mut Tx,
    account: AccountId,
    key: &str,
) -> Result<Option<KeyedTask>, StoreError> {
    let row: Option<(String, Option<String>)> = tx
        .fetch_optional(
            "select id, request_hash from tasks where account_id = $1 and idempotency_key = $2",
            args![account.to_string(), key],
        )
        .await?;
    row.map(|(id, request_hash)| {
        Ok(KeyedTask {
            id: id.parse().map_err(|e| corrupt("id", e))?,
            request_hash,
        })
    })
    .transpose()
}

/// The task made for `ticket` of `integration`.
pub async fn task_of_ticket(
    tx: &mut Tx,
    account: AccountId,
    ticket: IntakeTicket<'_>,
) -> Result<Option<TaskId>, StoreError> {
    let row: Option<(String,)> = tx
        .fetch_optional(
            "select id from tasks where account_id = $1 and integration_id = $2 and intake_ticket = $3",
            args![account.to_string(), ticket.integration.to_string(), ticket.ticket],
        )
        .await?;
    row.map(|(id,)| id.parse().map_err(|e| corrupt("id", e)))
        .transpose()
}

/// One of the account's tasks, read in the caller's transaction.
pub async fn task_in(tx: &mut Tx, account: AccountId, id: TaskId) -> Result<Option<Task>, StoreError> {
    let row: Option<TaskRow> = tx
        .fetch_optional(
            concat!(
                "select ",
                task_columns!(),
                " from tasks where account_id = $1 and id = $2"
            ),
            args![account.to_string(), id.to_string()],
        )
        .await?;
    row.map(Task::try_from).transpose()
}

/// Inserts a queued task inside the caller's transaction, so another write
/// (a webhook delivery's dedupe row, a budget reservation) commits with it
/// or not at all. `intake` names the helpdesk ticket the task came from: a
/// ticket that has a task already, like a used idempotency key, is a
/// `Conflict` and writes nothing. `on conflict do nothing` with no target
/// covers both unique keys.
pub async fn insert_task(
    tx: &mut Tx,
    account: AccountId,
    new: &NewTask,
    intake: Option<IntakeTicket<'_>>,
    now: Timestamp,
) -> Result<Inserted, StoreError> {
    let task = TaskToInsert {
        id: TaskId::new(),
        account,
        new,
        intake,
    };
    let rows: Vec<TaskRow> = task_insert(&[task], now, concat!(" returning ", task_columns!()))?
        .fetch_all_in(tx)
        .await?;
    Ok(match rows.into_iter().next() {
        Some(row) => Inserted::New(Box::new(Task::try_from(row)?)),
        None => Inserted::Conflict,
    })
}

/// The columns a new task is inserted with ([`task_insert_args`]).
macro_rules! task_insert_columns {
    () => {
        "id, account_id, agent_id, agent_version, status, input, external_ref, idempotency_key,
         request_hash, attempts, max_attempts, run_at, created_at, updated_at, integration_id,
         intake_ticket, livemode"
    };
}

/// Their values: a queued task, never tried, to run now.
macro_rules! task_insert_values {
    () => {
        "?, ?, ?, ?, 'queued', ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?"
    };
}

/// The arguments of one new task's row, in the order of
/// [`task_insert_columns`].
fn task_insert_args(
    id: TaskId,
    account: AccountId,
    new: &NewTask,
    intake: Option<IntakeTicket<'_>>,
    now: Timestamp,
) -> Result<Vec<Arg>, StoreError> {
    let input =
        serde_json::to_string(&new.input).map_err(|e| StoreError::Corrupt(format!("task input: {e}")))?;
    Ok(vec![
        Arg::from(id),
        Arg::from(account),
        Arg::from(new.agent_id),
        Arg::from(new.agent_version),
        Arg::from(input),
        Arg::from(new.external_ref.clone()),
        Arg::from(new.idempotency.as_ref().map(|i| i.key.clone())),
        Arg::from(new.idempotency.as_ref().map(|i| i.request_hash.clone())),
        Arg::from(i32::try_from(new.max_attempts).unwrap_or(i32::MAX)),
        Arg::from(now),
        Arg::from(now),
        Arg::from(now),
        Arg::from(intake.map(|i| i.integration.to_string())),
        Arg::from(intake.map(|i| i.ticket.to_owned())),
        Arg::from(new.mode.livemode()),
    ])
}

/// The insert of `tasks`, skipping those whose unique key is taken, then
/// `returning`.
fn task_insert(tasks: &[TaskToInsert<'_>], now: Timestamp, returning: &str) -> Result<Sql, StoreError> {
    let mut sql = Sql::default();
    sql.push(
        concat!("insert into tasks (", task_insert_columns!(), ") values "),
        [],
    );
    for (i, task) in tasks.iter().enumerate() {
        let args = task_insert_args(task.id, task.account, task.new, task.intake, now)?;
        sql.push(
            match i {
                0 => concat!("(", task_insert_values!(), ")"),
                _ => concat!(", (", task_insert_values!(), ")"),
            },
            args,
        );
    }
    sql.push(" on conflict do nothing", []);
    sql.push(returning, []);
    Ok(sql)
}

/// One task for [`insert_tasks`], its id chosen by the caller.
#[derive(Debug, Clone, Copy)]
pub struct TaskToInsert<'a> {
    pub id: TaskId,
    pub account: AccountId,
    pub new: &'a NewTask,
    pub intake: Option<IntakeTicket<'a>>,
}

/// Inserts `tasks` in one statement, each exactly as [`insert_task`]
/// would, and answers those inserted, in no particular order: a task
/// whose unique key is taken (its ticket's task, its idempotency key; by
/// an earlier row of the same statement too) is not, and writes nothing.
pub async fn insert_tasks(
    tx: &mut Tx,
    tasks: &[TaskToInsert<'_>],
    now: Timestamp,
) -> Result<Vec<Task>, StoreError> {
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<TaskRow> = task_insert(tasks, now, concat!(" returning ", task_columns!()))?
        .fetch_all_in(tx)
        .await?;
    rows.into_iter().map(Task::try_from).collect()
}

/// Holds `amount_micros` of the account's cap for a queued task until its
/// outcome is charged or failed (settlement releases it).
pub async fn reserve_budget(
    tx: &mut Tx,
    account: AccountId,
    task: TaskId,
    amount_micros: i64,
    now: Timestamp,
) -> Result<(), StoreError> {
    tx.execute(
        "insert into budget_reservations (task_id, account_id, amount_micros, created_at)
         values ($1, $2, $3, $4)",
        args![task.to_string(), account, amount_micros, now],
    )
    .await?;
    Ok(())
}

/// The outcome type an agent version's tasks come to.
pub async fn outcome_type_of(
    tx: &mut Tx,
    account: AccountId,
    agent: AgentId,
    version: i32,
) -> Result<OutcomeType, StoreError> {
    let (outcome_type,): (Text<OutcomeType>,) = tx
        .fetch_one(
            "select outcome_type from agent_versions where account_id = $1 and agent_id = $2 and version = $3",
            args![account, agent, version],
        )
        .await?;
    Ok(outcome_type.0)
}
