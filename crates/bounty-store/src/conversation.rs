//! A task's conversation: its messages after the ticket, and the writes
//! that move it from one turn to the next.
//!
//! The ticket's input is the first customer message and is not stored
//! here. Each row of `task_messages` is a later customer message or one
//! turn's answer, numbered by `seq` within its task and tagged with the
//! `turn` that reads (customer) or wrote (agent) it. A conversation reads
//! in `(turn, seq)` order: a customer message that raced a running turn
//! belongs to the next turn, so it reads after that turn's answer.
//!
//! What a message does (append, continue, closed) is decided above the
//! store (`bounty_core::conversation`, `bounty_agents::conversation`);
//! these functions only lock, read and write the rows, inside the
//! caller's transaction. [`lock_task`] takes the task's row lock first, so
//! a message and a claim (or a finish) of the same task never interleave.

use bounty_core::conversation::{MessageRole, MessageSource};
use bounty_core::{AccountId, TaskId, Timestamp};

use crate::db::on_pool;
use crate::tasks::{Idempotency, Task, TaskRow, task_columns};
use crate::tx::{Tx, args};
use crate::{Store, StoreError};

/// One message of a conversation after the ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationMessage {
    /// Its number within the task, in the order messages were written.
    pub seq: i32,
    /// The turn that reads it (a customer's) or wrote it (an answer).
    pub turn: i32,
    pub role: MessageRole,
    pub body: String,
    pub source: MessageSource,
    pub created_at: Timestamp,
}

/// A message to append.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    pub turn: i32,
    pub role: MessageRole,
    pub body: &'a str,
    pub source: MessageSource,
    /// The API's `Idempotency-Key` and its request's hash.
    pub idempotency: Option<&'a Idempotency>,
}

/// A message an idempotency key appended before, and the hash of the
/// request that did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedMessage {
    pub seq: i32,
    pub request_hash: Option<String>,
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    seq: i32,
    turn: i32,
    role: String,
    body: String,
    source: String,
    created_at: Timestamp,
}

impl TryFrom<MessageRow> for ConversationMessage {
    type Error = StoreError;

    fn try_from(r: MessageRow) -> Result<Self, StoreError> {
        let corrupt = |column: &str, e: bounty_core::stored_enum::BadName| {
            StoreError::Corrupt(format!("task_messages.{column}: {e}"))
        };
        Ok(ConversationMessage {
            seq: r.seq,
            turn: r.turn,
            role: r.role.parse().map_err(|e| corrupt("role", e))?,
            body: r.body,
            source: r.source.parse().map_err(|e| corrupt("source", e))?,
            created_at: r.created_at,
        })
    }
}

const MESSAGES: &str = "select seq, turn, role, body, source, created_at from task_messages
     where account_id = $1 and task_id = $2 and turn <= $3 order by turn, seq";

impl Store {
    /// The conversation of one of the account's tasks after its ticket,
    /// in conversation order (by turn, then as written). Empty for a
    /// task with one turn and no answer yet, or another account's task.
    pub async fn conversation(
        &self,
        account: AccountId,
        task: TaskId,
    ) -> Result<Vec<ConversationMessage>, StoreError> {
        self.conversation_until(account, task, i32::MAX).await
    }

    /// The conversation up to and including `turn`: what that turn's
    /// worker answers. A message that arrived while it ran belongs to a
    /// later turn and is left out.
    pub async fn conversation_until(
        &self,
        account: AccountId,
        task: TaskId,
        turn: i32,
    ) -> Result<Vec<ConversationMessage>, StoreError> {
        let rows: Vec<MessageRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(MESSAGES)
                .bind(account.to_string())
                .bind(task.to_string())
                .bind(turn)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(ConversationMessage::try_from).collect()
    }
}

/// One of the account's tasks, its row locked for the rest of the
/// transaction (on SQLite the transaction holds the write lock already).
pub async fn lock_task(tx: &mut Tx, account: AccountId, task: TaskId) -> Result<Option<Task>, StoreError> {
    let row: Option<TaskRow> = tx
        .fetch_optional(
            concat!(
                "update tasks set updated_at = updated_at where account_id = $1 and id = $2 returning ",
                task_columns!()
            ),
            args![account, task],
        )
        .await?;
    row.map(Task::try_from).transpose()
}

/// Appends `message` to the task's conversation with the next `seq`.
/// `None` when its idempotency key appended a message to this task before
/// (nothing is written: see [`message_by_idempotency_key`]). The caller
/// holds the task's lock ([`lock_task`]), so `seq`s never collide.
pub async fn append_message(
    tx: &mut Tx,
    account: AccountId,
    task: TaskId,
    message: NewMessage<'_>,
    now: Timestamp,
) -> Result<Option<i32>, StoreError> {
    let row: Option<(i32,)> = tx
        .fetch_optional(
            "insert into task_messages (account_id, task_id, seq, turn, role, body, source, idempotency_key,
                 request_hash, created_at)
             select $1, $2, coalesce(max(seq), 0) + 1, $3, $4, $5, $6, $7, $8, $9
             from task_messages where task_id = $2
             on conflict do nothing
             returning seq",
            args![
                account,
                task,
                message.turn,
                message.role.as_str(),
                message.body,
                message.source.as_str(),
                message.idempotency.map(|i| i.key.clone()),
                message.idempotency.map(|i| i.request_hash.clone()),
                now
            ],
        )
        .await?;
    Ok(row.map(|(seq,)| seq))
}

/// The message the account's idempotency `key` appended to `task`.
pub async fn message_by_idempotency_key(
    tx: &mut Tx,
    account: AccountId,
    task: TaskId,
    key: &str,
) -> Result<Option<KeyedMessage>, StoreError> {
    let row: Option<(i32, Option<String>)> = tx
        .fetch_optional(
            "select seq, request_hash from task_messages
             where account_id = $1 and task_id = $2 and idempotency_key = $3",
            args![account, task, key],
        )
        .await?;
    Ok(row.map(|(seq, request_hash)| KeyedMessage { seq, request_hash }))
}

/// Whether the task has a customer message for a turn after `turn`: one
/// that arrived while `turn` ran, which that turn may not have read.
pub async fn has_unanswered_message(
    tx: &mut Tx,
    account: AccountId,
    task: TaskId,
    turn: i32,
) -> Result<bool, StoreError> {
    let row: Option<(i32,)> = tx
        .fetch_optional(
            "select seq from task_messages
             where account_id = $1 and task_id = $2 and role = 'customer' and turn > $3 limit 1",
            args![account, task, turn],
        )
        .await?;
    Ok(row.is_some())
}

/// Queues a finished task (`completed` or `failed`) for its next turn,
/// due `now`, with a fresh allowance of attempts: `attempts` keeps
/// counting across turns (attempt numbers stay unique), and `max_attempts`
/// rises to `attempts` plus the attempts each turn gets (the first turn's
/// `max_attempts`, kept in `attempts_per_turn`). Returns the task as
/// queued; `None` when it is not finished (a turn is queued or running
/// already) or not the account's.
pub async fn queue_next_turn(
    tx: &mut Tx,
    account: AccountId,
    task: TaskId,
    now: Timestamp,
) -> Result<Option<Task>, StoreError> {
    let row: Option<TaskRow> = tx
        .fetch_optional(
            concat!(
                "update tasks set status = 'queued', turn = turn + 1, run_at = $3,
                     attempts_per_turn = coalesce(attempts_per_turn, max_attempts),
                     max_attempts = attempts + coalesce(attempts_per_turn, max_attempts),
                     finished_at = null, updated_at = $3
                 where account_id = $1 and id = $2 and status in ('completed', 'failed')
                 returning ",
                task_columns!()
            ),
            args![account, task, now],
        )
        .await?;
    row.map(Task::try_from).transpose()
}
