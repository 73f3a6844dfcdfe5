//! The agent's tool calls, recorded like model calls: in the attempt's
//! finish transaction, never updated. They are the steps of the task's
//! receipt, and their time is an effort plan's tool time.

use bounty_core::{AccountId, TaskId, Timestamp, ToolCallId};

use crate::column::Text;
use crate::db::on_pool;
use crate::tx::{Tx, args};
use crate::{Store, StoreError};

/// How a tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallOutcome {
    /// A 2xx answer.
    Ok,
    /// A 4xx answer, or arguments refused before any request: shown to
    /// the model.
    ClientError,
    /// No usable answer (5xx, 429, timeout, unreachable, too large): the
    /// attempt failed as transient.
    Down,
    /// The address is one tools may not reach.
    Refused,
    /// The built-in `handoff`: the ticket went to a person.
    Handoff,
}

impl ToolCallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolCallOutcome::Ok => "ok",
            ToolCallOutcome::ClientError => "client_error",
            ToolCallOutcome::Down => "down",
            ToolCallOutcome::Refused => "refused",
            ToolCallOutcome::Handoff => "handoff",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ok" => ToolCallOutcome::Ok,
            "client_error" => ToolCallOutcome::ClientError,
            "down" => ToolCallOutcome::Down,
            "refused" => ToolCallOutcome::Refused,
            "handoff" => ToolCallOutcome::Handoff,
            _ => return None,
        })
    }
}

/// One tool call to record.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NewToolCall {
    pub turn: i32,
    pub tool: String,
    /// The model's id for the call.
    pub call_id: String,
    /// The arguments as the model wrote them (JSON text).
    pub arguments: String,
    /// HTTP status, `None` when no answer came.
    pub status: Option<u16>,
    pub outcome: ToolCallOutcome,
    pub latency_us: i64,
    /// Redacted and truncated: safe to show the account.
    pub response: serde_json::Value,
    /// The `Idempotency-Key` sent, for side-effecting tools.
    pub idempotency_key: Option<String>,
    /// On the last call of a step: Bounty's own time in that step, from
    /// the model's answer to the next model request, less the tools' time.
    pub step_overhead_us: Option<i64>,
}

/// A recorded tool call.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ToolCallRecord {
    pub id: ToolCallId,
    pub attempt: i32,
    pub seq: i32,
    #[serde(flatten)]
    pub call: NewToolCall,
    pub created_at: Timestamp,
}

/// Records an attempt's tool calls, numbered from 0 in order.
pub async fn insert_tool_calls(
    tx: &mut Tx,
    account: AccountId,
    task: TaskId,
    attempt: i32,
    calls: &[NewToolCall],
    now: Timestamp,
) -> Result<(), StoreError> {
    for (i, call) in calls.iter().enumerate() {
        tx.execute(
            "insert into tool_calls (id, account_id, task_id, attempt, turn, seq, tool, call_id, arguments, status,
                 outcome, latency_us, response, idempotency_key, created_at, step_overhead_us)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
             on conflict (task_id, attempt, seq) do nothing",
            args![
                ToolCallId::new().to_string(),
                account,
                task,
                attempt,
                call.turn,
                i32::try_from(i).unwrap_or(i32::MAX),
                call.tool.clone(),
                call.call_id.clone(),
                call.arguments.clone(),
                call.status.map(i64::from),
                call.outcome.as_str(),
                call.latency_us,
                call.response.to_string(),
                call.idempotency_key.clone(),
                now,
                call.step_overhead_us
            ],
        )
        .await?;
    }
    Ok(())
}

/// Milliseconds of tool time the task used, every attempt, rounded up:
/// an effort plan's `tool_ms`.
pub async fn task_tool_ms(tx: &mut Tx, account: AccountId, task: TaskId) -> Result<u64, StoreError> {
    let (us,): (Option<i64>,) = tx
        .fetch_one(
            "select cast(sum(latency_us) as bigint) from tool_calls where account_id = $1 and task_id = $2",
            args![account, task],
        )
        .await?;
    Ok(u64::try_from(us.unwrap_or(0)).unwrap_or(0).div_ceil(1000))
}

impl Store {
    /// Every recorded step overhead of the account's tool calls, in
    /// microseconds: what benchmarks read Bounty's own time per step from.
    pub async fn tool_step_overheads(&self, account: AccountId) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64,)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select step_overhead_us from tool_calls
                 where account_id = $1 and step_overhead_us is not null",
            )
            .bind(account.to_string())
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(us,)| us).collect())
    }

    /// The task's tool calls, in order (attempt, then step).
    pub async fn tool_calls(
        &self,
        account: AccountId,
        task: TaskId,
    ) -> Result<Vec<ToolCallRecord>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: Text<ToolCallId>,
            attempt: i32,
            turn: i32,
            seq: i32,
            tool: String,
            call_id: String,
            arguments: String,
            status: Option<i32>,
            outcome: String,
            latency_us: i64,
            response: String,
            idempotency_key: Option<String>,
            created_at: Timestamp,
            step_overhead_us: Option<i64>,
        }
        let rows: Vec<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, attempt, turn, seq, tool, call_id, arguments, status, outcome, latency_us, response,
                     idempotency_key, created_at, step_overhead_us
                 from tool_calls where account_id = $1 and task_id = $2 order by attempt, seq",
            )
            .bind(account.to_string())
            .bind(task.to_string())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                let outcome = ToolCallOutcome::parse(&r.outcome)
                    .ok_or_else(|| StoreError::Corrupt(format!("tool_calls.outcome {:?}", r.outcome)))?;
                let response = serde_json::from_str(&r.response)
                    .map_err(|e| StoreError::Corrupt(format!("tool_calls.response: {e}")))?;
                Ok(ToolCallRecord {
                    id: r.id.0,
                    attempt: r.attempt,
                    seq: r.seq,
                    call: NewToolCall {
                        turn: r.turn,
                        tool: r.tool,
                        call_id: r.call_id,
                        arguments: r.arguments,
                        status: r.status.and_then(|s| u16::try_from(s).ok()),
                        outcome,
                        latency_us: r.latency_us,
                        response,
                        idempotency_key: r.idempotency_key,
                        step_overhead_us: r.step_overhead_us,
                    },
                    created_at: r.created_at,
                })
            })
            .collect()
    }
}
