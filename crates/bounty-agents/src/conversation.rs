//! Continuing a conversation: a customer's message to a task, from the
//! REST API (`POST /v1/tasks/{id}/messages`) or a helpdesk's
//! `customer_replied` event (intake, in `bounty-integrations`).
//!
//! [`take_message`] runs inside the caller's transaction (intake's, which
//! also holds the delivery's dedupe row) and [`post_message`] in one of its
//! own. Both lock the task's row first, so a message never interleaves
//! with a claim or a finish of the same task, then do what
//! `bounty_core::conversation::on_customer_message` decides:
//!
//! - the task is queued: the message is appended for the queued turn;
//! - a turn is running: the message is appended for the next turn, and
//!   the running turn's finish queues that turn instead of settling;
//! - the agent's answer waits (outcome `provisional`): the message is
//!   appended, the outcome takes `Continued` (back to `verifying`, inside
//!   its window) and the task is queued for the next turn, all in one
//!   transaction; the caller wakes a worker;
//! - the conversation is closed (outcome `resolved` or final): an API
//!   message is refused ([`MessageError::Closed`], the API's
//!   `409 conversation_closed`); a helpdesk's is kept as evidence, for the
//!   turn a reopen may resume, and changes nothing else.
//!
//! An `Idempotency-Key` appends at most one message to its task: a retry
//! with the same body answers [`Taken::Replayed`], another body
//! [`MessageError::IdempotencyMismatch`].

use bounty_billing::settle::{OutcomeError, settle_event};
use bounty_core::conversation::{MessageEffect, MessageRole, MessageSource, check_body, on_customer_message};
use bounty_core::outcome::OutcomeEvent;
use bounty_core::{AccountId, Actor, TaskId, Timestamp};
use bounty_store::conversation::{
    NewMessage, append_message, lock_task, message_by_idempotency_key, queue_next_turn,
};
use bounty_store::outcomes::outcome_of_task_in;
use bounty_store::{EventEvidence, Idempotency, Store, StoreError, Task, Tx};

/// A customer's message to a task.
#[derive(Debug, Clone)]
pub struct CustomerMessage<'a> {
    pub body: &'a str,
    pub source: MessageSource,
    /// Who sent it: the API key, or the helpdesk integration.
    pub actor: Actor,
    /// The API's `Idempotency-Key` and its request's hash.
    pub idempotency: Option<Idempotency>,
}

/// What a message did.
#[derive(Debug, Clone, PartialEq)]
pub enum Taken {
    /// Appended for a turn that is queued, or that will be once the
    /// running one finishes.
    Appended { task: Task, seq: i32 },
    /// The waiting answer's outcome continued, and the task is queued for
    /// its next turn.
    Continued { task: Task, seq: i32 },
    /// The conversation is closed; a helpdesk's message was kept as
    /// evidence (`seq`), an API message was not (see [`post_message`]).
    Closed {
        task: Task,
        seq: Option<i32>,
        why: String,
    },
    /// The idempotency key appended this message before: nothing new.
    Replayed { task: Task, seq: i32 },
}

impl Taken {
    /// The task as the message left it.
    pub fn task(&self) -> &Task {
        match self {
            Taken::Appended { task, .. }
            | Taken::Continued { task, .. }
            | Taken::Closed { task, .. }
            | Taken::Replayed { task, .. } => task,
        }
    }
}

/// Why a message was not taken.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The account has no such task.
    #[error("no such task")]
    NotFound,
    /// The body is empty, too long or holds a NUL: names the field.
    #[error("`body` {0}")]
    Invalid(&'static str),
    /// The conversation is over (its outcome is resolved or final): the
    /// API refuses the message.
    #[error("{0}")]
    Closed(String),
    /// The idempotency key appended another message to this task.
    #[error("the idempotency key was used with another request")]
    IdempotencyMismatch,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Takes `message` for the account's `task` inside the caller's
/// transaction (see the module doc). A closed conversation keeps a
/// helpdesk's message and answers [`Taken::Closed`]; an API message is
/// refused with [`MessageError::Closed`] and nothing is written.
pub async fn take_message(
    tx: &mut Tx,
    account: AccountId,
    task: TaskId,
    message: &CustomerMessage<'_>,
    now: Timestamp,
) -> Result<Taken, MessageError> {
    check_body(message.body).map_err(MessageError::Invalid)?;
    let locked = lock_task(tx, account, task)
        .await?
        .ok_or(MessageError::NotFound)?;
    if let Some(key) = &message.idempotency
        && let Some(first) = message_by_idempotency_key(tx, account, task, &key.key).await?
    {
        return match first.request_hash.as_deref() == Some(key.request_hash.as_str()) {
            true => Ok(Taken::Replayed {
                task: locked,
                seq: first.seq,
            }),
            false => Err(MessageError::IdempotencyMismatch),
        };
    }
    let outcome = outcome_of_task_in(tx, account, task).await?;
    let effect = on_customer_message(locked.status, locked.turn, outcome.as_ref().map(|o| o.status));
    let append = |turn| NewMessage {
        turn,
        role: MessageRole::Customer,
        body: message.body,
        source: message.source,
        idempotency: message.idempotency.as_ref(),
    };
    let closed = |why: String| match message.source {
        MessageSource::Helpdesk => Ok(why),
        _ => Err(MessageError::Closed(why)),
    };
    match (effect, outcome) {
        (MessageEffect::Append { turn }, _) => {
            let seq = appended(append_message(tx, account, task, append(turn), now).await?)?;
            Ok(Taken::Appended { task: locked, seq })
        }
        (MessageEffect::Continue { turn }, Some(outcome)) => {
            let evidence = EventEvidence {
                verdicts: None,
                signal: Some(
                    serde_json::json!({"kind": "customer_replied", "source": message.source.as_str()}),
                ),
                actor: message.actor.clone(),
            };
            match settle_event(tx, account, outcome.id, OutcomeEvent::Continued, evidence, now).await {
                Ok(_) => {}
                Err(OutcomeError::Store(e)) => return Err(e.into()),
                Err(refused) => {
                    let why = closed(format!("the conversation is closed: {refused}"))?;
                    return keep_as_evidence(tx, account, locked, append(turn), why, now).await;
                }
            }
            let seq = appended(append_message(tx, account, task, append(turn), now).await?)?;
            let queued = queue_next_turn(tx, account, task, now).await?.ok_or_else(|| {
                StoreError::Corrupt(format!("task {task} was not finished when it continued"))
            })?;
            Ok(Taken::Continued { task: queued, seq })
        }
        (MessageEffect::Continue { turn } | MessageEffect::Closed { turn }, outcome) => {
            let why = closed(match outcome {
                Some(o) => format!("the conversation is closed: its outcome is {}", o.status),
                None => "the conversation is closed: the task failed".to_owned(),
            })?;
            keep_as_evidence(tx, account, locked, append(turn), why, now).await
        }
    }
}

/// A helpdesk's message to a closed conversation: kept for the turn a
/// reopen may resume, nothing else.
async fn keep_as_evidence(
    tx: &mut Tx,
    account: AccountId,
    task: Task,
    message: NewMessage<'_>,
    why: String,
    now: Timestamp,
) -> Result<Taken, MessageError> {
    let seq = append_message(tx, account, task.id, message, now).await?;
    Ok(Taken::Closed { task, seq, why })
}

/// The seq of an appended message. The key was looked up under the task's
/// lock, so a conflict here is a broken invariant.
fn appended(seq: Option<i32>) -> Result<i32, StoreError> {
    seq.ok_or_else(|| {
        StoreError::Corrupt("a message's idempotency key conflicted under the task's lock".into())
    })
}

/// [`take_message`] in a transaction of its own: the API's way in. A
/// refusal writes nothing.
pub async fn post_message(
    store: &Store,
    account: AccountId,
    task: TaskId,
    message: &CustomerMessage<'_>,
) -> Result<Taken, MessageError> {
    let mut tx = store.begin().await?;
    let taken = take_message(&mut tx, account, task, message, store.now()).await?;
    tx.commit().await?;
    Ok(taken)
}
