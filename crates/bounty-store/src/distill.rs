//! Teacher traces for distillation: the transcripts of an agent's tasks
//! whose outcome was verified `resolved`.
//!
//! Distillation trains a small local student on what a large teacher did
//! when the verifier said it worked, so only resolved outcomes count: a
//! failed or reversed task is exactly what the student must not learn.
//! The window is on `outcomes.decided_at`, the moment the verdict was
//! reached, through the `(account_id, decided_at)` index.
//!
//! An export can cover months of tasks, so the rows are read in pages
//! ordered by outcome id (keyset pagination: each page starts after the
//! last id of the one before), never all at once. Ids are ULIDs, so the
//! order is also the order the outcomes were opened, and a page never
//! shifts when new outcomes are decided meanwhile. The transcript is
//! returned as the stored text: what makes a usable trace is the
//! exporter's rule, and a bad one is skipped there, not an error here.

use bounty_core::{AccountId, AgentId, OutcomeId, TaskId, Timestamp};

use crate::db::on_pool;
use crate::{Store, StoreError};

/// One resolved task of an agent, as the distillation export reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRow {
    pub task_id: TaskId,
    pub outcome_id: OutcomeId,
    /// The agent version the task ran.
    pub agent_version: i32,
    /// The model that wrote the final answer (`tasks.output_model`).
    pub output_model: Option<String>,
    /// The stored chat transcript (`tasks.transcript`), unparsed: JSON
    /// `[{role, content}, …]` when the worker wrote it.
    pub transcript: Option<String>,
    /// When the outcome was decided.
    pub decided_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct Row {
    task_id: String,
    outcome_id: String,
    agent_version: i32,
    output_model: Option<String>,
    transcript: Option<String>,
    decided_at: Timestamp,
}

fn corrupt(column: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{column}: {e}"))
}

impl TryFrom<Row> for TraceRow {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(TraceRow {
            task_id: r.task_id.parse().map_err(|e| corrupt("tasks.id", e))?,
            outcome_id: r.outcome_id.parse().map_err(|e| corrupt("outcomes.id", e))?,
            agent_version: r.agent_version,
            output_model: r.output_model,
            transcript: r.transcript,
            decided_at: r.decided_at,
        })
    }
}

/// The `from … where …` both reads share: resolved outcomes of the
/// account's tasks of one agent, decided in `[$3, $4)`. The join repeats
/// the account so a task can only pair with an outcome of its own tenant.
macro_rules! resolved_of_agent {
    () => {
        " from outcomes o
          join tasks t on t.id = o.task_id and t.account_id = o.account_id
          where o.account_id = $1 and t.agent_id = $2 and o.status = 'resolved'
            and o.decided_at >= $3 and o.decided_at < $4"
    };
}

impl Store {
    /// How many resolved outcomes of `agent`'s tasks (any version) were
    /// decided in `[since, until)`: what [`Store::resolved_traces`] pages
    /// through.
    pub async fn count_resolved_traces(
        &self,
        account: AccountId,
        agent: AgentId,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<u64, StoreError> {
        let (n,): (i64,) = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!("select count(*)", resolved_of_agent!()))
                .bind(account.to_string())
                .bind(agent.to_string())
                .bind(since)
                .bind(until)
                .fetch_one(pool)
                .await?
        });
        u64::try_from(n).map_err(|e| corrupt("count(*)", e))
    }

    /// Up to `limit` resolved outcomes of `agent`'s tasks decided in
    /// `[since, until)`, in outcome id order, starting after the outcome
    /// `after` (the last id of the previous page). A page shorter than
    /// `limit` is the last one.
    pub async fn resolved_traces(
        &self,
        account: AccountId,
        agent: AgentId,
        since: Timestamp,
        until: Timestamp,
        after: Option<OutcomeId>,
        limit: u32,
    ) -> Result<Vec<TraceRow>, StoreError> {
        let rows: Vec<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select t.id as task_id, o.id as outcome_id, t.agent_version, t.output_model, t.transcript,
                     o.decided_at",
                resolved_of_agent!(),
                " and ($5 is null or o.id > $5)
                 order by o.id
                 limit $6"
            ))
            .bind(account.to_string())
            .bind(agent.to_string())
            .bind(since)
            .bind(until)
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(TraceRow::try_from).collect()
    }
}
