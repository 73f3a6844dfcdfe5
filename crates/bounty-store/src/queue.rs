//! The durable task queue: claims with leases, lease renewal, and the
//! fenced writes that finish an attempt.
//!
//! A claim moves due tasks to `running`, bumps `attempts`, and stamps a
//! fresh lease (token, owner, expiry) on them in one statement. On
//! Postgres the candidate rows are locked with `for update skip locked`,
//! so concurrent workers (in any number of processes) each get different
//! tasks without waiting on one another. SQLite has a single writer: the
//! claim statement runs under its write lock, so two claims can never see
//! the same row as due.
//!
//! A running task whose lease expired (its worker crashed or hung) is due
//! again and is claimed like a queued one; if it has no attempts left it is
//! failed instead ([`expire_task_rows`], which the worker's sweep calls). Every write that
//! finishes an attempt names the lease token it was claimed with, so a
//! worker that lost its lease can no longer change the task.

use std::time::Duration;

use bounty_core::task::AttemptOutcome;
use bounty_core::{AccountId, TaskId, TaskStatus, Timestamp};

use bounty_core::{Decision, VerifierVerdict};

use crate::answer_cache::CacheUse;
use crate::db::{Db, on_pool};
use crate::tasks::{Task, TaskError, TaskRow, task_columns};
use crate::tx::{Tx, args};
use crate::{Store, StoreError};

const CLAIM_SQLITE: &str = concat!(
    "update tasks set status = 'running', attempts = attempts + 1, lease_token = $1, lease_owner = $2,
         lease_expires_at = $3, started_at = coalesce(started_at, $4), updated_at = $4
     where id in (
         select id from tasks
         where ((status = 'queued' and run_at <= $4) or (status = 'running' and lease_expires_at <= $4))
           and attempts < max_attempts
         order by run_at, id
         limit $5)
     returning ",
    task_columns!()
);

const CLAIM_POSTGRES: &str = concat!(
    "update tasks set status = 'running', attempts = attempts + 1, lease_token = $1, lease_owner = $2,
         lease_expires_at = $3, started_at = coalesce(started_at, $4), updated_at = $4
     where id in (
         select id from tasks
         where ((status = 'queued' and run_at <= $4) or (status = 'running' and lease_expires_at <= $4))
           and attempts < max_attempts
         order by run_at, id
         limit $5
         for update skip locked)
     returning ",
    task_columns!()
);

/// A task a worker holds: the task, the attempt it is on, and the lease
/// token its writes must carry.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedTask {
    pub task: Task,
    pub attempt: i32,
    pub lease_token: String,
}

/// What the agent produced.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskOutput {
    pub text: String,
    /// Schema violations; `None` without a schema.
    pub errors: Option<Vec<String>>,
    pub model: String,
    pub transcript: serde_json::Value,
    /// The verification policy's combined decision.
    pub decision: Decision,
    /// Each verifier's verdict, in order (empty for a policy without
    /// verifiers, which passes).
    pub verdicts: Vec<VerifierVerdict>,
    /// The agent's cache was looked up: hit or miss.
    pub cache: Option<CacheUse>,
    /// The agent handed the ticket to a person, saying why (its `handoff`
    /// tool, or a verifier failure after the last cascade step): the turn
    /// settles as `escalated`, never charged, whatever the verdict, and the
    /// helpdesk gets an internal note naming the reason.
    pub handoff: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptEnd {
    /// The agent produced its output: the task is completed.
    Completed(TaskOutput),
    /// A transient failure with attempts left: queued again for `run_at`.
    Retry { error: TaskError, run_at: Timestamp },
    /// A permanent failure, or the last attempt: the task failed.
    Failed(TaskError),
}

fn lease_expiry(now: Timestamp, lease: Duration) -> Timestamp {
    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX / 2)
}

/// Closes the still-open attempts of `task` numbered below `before` as
/// `lease_expired`: their worker stopped renewing its lease.
async fn close_expired_attempts(
    tx: &mut Tx,
    task: &str,
    before: i32,
    now: Timestamp,
) -> Result<(), StoreError> {
    tx.execute(
        "update task_attempts set finished_at = $3, outcome = 'lease_expired',
             error_code = 'lease_expired', error_message = 'the worker stopped renewing its lease'
         where task_id = $1 and attempt < $2 and finished_at is null",
        args![task, before, now],
    )
    .await?;
    Ok(())
}

impl Store {
    /// Claims up to `limit` due tasks for `worker`, each leased for
    /// `lease`. Records the new attempts, and closes the previous attempt
    /// of a reclaimed task as `lease_expired`.
    pub async fn claim_tasks(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedTask>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = self.now();
        let token = bounty_core::id::new_ulid().to_string();
        let sql = match self.db {
            Db::Sqlite(_) => CLAIM_SQLITE,
            Db::Postgres(_) => CLAIM_POSTGRES,
        };
        let mut tx = self.begin().await?;
        let rows: Vec<TaskRow> = tx
            .fetch_all(
                sql,
                args![
                    token.clone(),
                    worker,
                    lease_expiry(now, lease),
                    now,
                    i64::from(limit)
                ],
            )
            .await?;
        for row in &rows {
            let (id, account, attempt) = row.queue_key();
            close_expired_attempts(&mut tx, &id, attempt, now).await?;
            tx.execute(
                "insert into task_attempts (task_id, attempt, account_id, worker, started_at)
                 values ($1, $2, $3, $4, $5)",
                args![id, attempt, account, worker, now],
            )
            .await?;
        }
        tx.commit().await?;
        rows.into_iter()
            .map(|row| {
                let task = Task::try_from(row)?;
                Ok(ClaimedTask {
                    attempt: task.attempts,
                    task,
                    lease_token: token.clone(),
                })
            })
            .collect()
    }

    /// Extends a held lease; `false` when the lease was lost (expired and
    /// claimed by another worker, or the task finished).
    pub async fn renew_lease(&self, claimed: &ClaimedTask, lease: Duration) -> Result<bool, StoreError> {
        let now = self.now();
        let row: Option<(String,)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "update tasks set lease_expires_at = $4, updated_at = $5
                 where account_id = $1 and id = $2 and lease_token = $3 and status = 'running'
                 returning id",
            )
            .bind(claimed.task.account_id.to_string())
            .bind(claimed.task.id.to_string())
            .bind(claimed.lease_token.clone())
            .bind(lease_expiry(now, lease))
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.is_some())
    }
}

/// Writes how an attempt ended onto its task and its attempt row, fenced
/// by the lease: `false` (and nothing written) when the claim's worker no
/// longer holds the task. The task's outcome, reply and counters are the
/// caller's (the worker's finish, in bounty-agents), in the same
/// transaction.
pub async fn finish_task_row(
    tx: &mut Tx,
    claimed: &ClaimedTask,
    end: &AttemptEnd,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let (status, run_at, output, error, outcome) = match end {
        AttemptEnd::Completed(out) => (
            TaskStatus::Completed,
            None,
            Some(out),
            None,
            AttemptOutcome::Completed,
        ),
        AttemptEnd::Retry { error, run_at } => (
            TaskStatus::Queued,
            Some(*run_at),
            None,
            Some(error),
            AttemptOutcome::Retry,
        ),
        AttemptEnd::Failed(error) => (
            TaskStatus::Failed,
            None,
            None,
            Some(error),
            AttemptOutcome::Failed,
        ),
    };
    let finished_at = (status != TaskStatus::Queued).then_some(now);
    let account = claimed.task.account_id.to_string();
    let id = claimed.task.id.to_string();
    let row: Option<(String,)> = tx
        .fetch_optional(
            "update tasks set status = $4, run_at = coalesce($5, run_at), output = coalesce($6, output),
                 output_errors = coalesce($7, output_errors), output_model = coalesce($8, output_model),
                 transcript = coalesce($9, transcript), last_error_code = $10, last_error_message = $11,
                 lease_token = null, lease_owner = null, lease_expires_at = null,
                 finished_at = $12, updated_at = $13
             where account_id = $1 and id = $2 and lease_token = $3 and status = 'running'
             returning id",
            args![
                account.clone(),
                id.clone(),
                claimed.lease_token.clone(),
                status.as_str(),
                run_at,
                output.map(|o| o.text.clone()),
                output
                    .and_then(|o| o.errors.as_ref())
                    .map(|e| serde_json::to_string(e).expect("strings serialize")),
                output.map(|o| o.model.clone()),
                output.map(|o| o.transcript.to_string()),
                error.map(|e| e.code.clone()),
                error.map(|e| e.message.clone()),
                finished_at,
                now
            ],
        )
        .await?;
    if row.is_none() {
        return Ok(false);
    }
    tx.execute(
        "update task_attempts set finished_at = $4, outcome = $5, error_code = $6, error_message = $7
         where account_id = $1 and task_id = $2 and attempt = $3",
        args![
            account,
            id,
            claimed.attempt,
            now,
            outcome.as_str(),
            error.map(|e| e.code.clone()),
            error.map(|e| e.message.clone())
        ],
    )
    .await?;
    Ok(true)
}

/// A running task whose lease expired with no attempts left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredTask {
    pub account: AccountId,
    pub task: TaskId,
    pub agent_id: bounty_core::AgentId,
    pub agent_version: i32,
    pub mode: bounty_core::ApiKeyMode,
}

/// Fails the running tasks whose lease expired with no attempts left, and
/// closes their attempts; returns them, for the caller to settle their
/// (failed) outcomes in the same transaction.
pub async fn expire_task_rows(tx: &mut Tx, now: Timestamp) -> Result<Vec<ExpiredTask>, StoreError> {
    let rows: Vec<(String, String, String, i32, bool)> = tx
        .fetch_all(
            "update tasks set status = 'failed', last_error_code = 'lease_expired',
                 last_error_message = 'the worker of the last attempt stopped renewing its lease, and no attempts remain',
                 lease_token = null, lease_owner = null, lease_expires_at = null,
                 finished_at = $1, updated_at = $1
             where status = 'running' and lease_expires_at <= $1 and attempts >= max_attempts
             returning account_id, id, agent_id, agent_version, livemode",
            args![now],
        )
        .await?;
    let mut expired = Vec::with_capacity(rows.len());
    for (account, id, agent_id, agent_version, livemode) in rows {
        close_expired_attempts(tx, &id, i32::MAX, now).await?;
        expired.push(ExpiredTask {
            account: account
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("tasks.account_id: {e}")))?,
            task: id
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("tasks.id: {e}")))?,
            agent_id: agent_id
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("tasks.agent_id: {e}")))?,
            agent_version,
            mode: bounty_core::ApiKeyMode::from_livemode(livemode),
        });
    }
    Ok(expired)
}
