//! The worker's finish: how an attempt's end reaches every part of
//! Bounty in one transaction.
//!
//! [`finish_attempt`] records the attempt's model calls (their cost was
//! incurred either way), then writes the end onto the task, fenced by the
//! lease: a worker that lost its lease changes nothing else. A completed
//! turn's answer joins the task's conversation. A completed or failed
//! task is settled (`bounty_billing::settle`: its outcome, and its charge
//! when the verifiers pass; `escalated`, never charged, when the agent
//! handed it off), a helpdesk ticket's reply or hand-off note is queued
//! (one per turn), and the per-agent counters (cache use, pass rates) move last,
//! just before the commit, so their hot rows are locked as briefly as
//! possible. [`fail_expired_tasks`] does the same for tasks whose last
//! attempt's worker died.

use bounty_billing::settle::{TaskKey, settle_completed, settle_failed};
use bounty_core::conversation::{MessageRole, MessageSource};
use bounty_core::{AccountId, Decision, TaskId, Timestamp};
use bounty_store::answer_cache::{record_cache_use, record_verdicts};
use bounty_store::conversation::{NewMessage, append_message, has_unanswered_message, queue_next_turn};
use bounty_store::integrations::{TicketReply, enqueue_reply};
use bounty_store::queue::{expire_task_rows, finish_task_row};
use bounty_store::tasks::insert_model_calls;
use bounty_store::tool_calls::insert_tool_calls;
use bounty_store::{AttemptEnd, ClaimedTask, NewModelCall, NewToolCall, Store, StoreError, TaskOutput, Tx};

/// Finishes an attempt (see the module doc). `false` when this worker no
/// longer holds the task: only its calls and pass rates are recorded.
pub async fn finish_attempt(
    store: &Store,
    claimed: &ClaimedTask,
    end: &AttemptEnd,
    calls: &[NewModelCall],
) -> Result<bool, StoreError> {
    finish_attempt_with_tools(store, claimed, end, calls, &[]).await
}

/// [`finish_attempt`] of an attempt that also called tools.
pub async fn finish_attempt_with_tools(
    store: &Store,
    claimed: &ClaimedTask,
    end: &AttemptEnd,
    calls: &[NewModelCall],
    tools: &[NewToolCall],
) -> Result<bool, StoreError> {
    let now = store.now();
    let task = &claimed.task;
    let mut tx = store.begin().await?;
    insert_model_calls(&mut tx, task.account_id, task.id, claimed.attempt, 0, calls, now).await?;
    // Tool calls, like model calls, happened either way: their time and
    // their effects are recorded even when the lease was lost.
    insert_tool_calls(&mut tx, task.account_id, task.id, claimed.attempt, tools, now).await?;
    if !finish_task_row(&mut tx, claimed, end, now).await? {
        record_verdicts(&mut tx, task.account_id, task.agent_id, calls, now).await?;
        tx.commit().await?;
        return Ok(false);
    }
    let key = TaskKey {
        account: task.account_id,
        task: task.id,
        agent_id: task.agent_id,
        agent_version: task.agent_version,
        mode: task.mode,
    };
    match end {
        AttemptEnd::Completed(out) => end_turn(&mut tx, claimed, &key, out, now).await?,
        AttemptEnd::Failed(error) => {
            settle_failed(&mut tx, &key, &format!("the task failed: {}", error.message), now).await?;
            let reply = TicketReply::NotResolved { why: &error.message };
            enqueue_reply(&mut tx, key.account, key.task, reply, now).await?;
        }
        AttemptEnd::Retry { .. } => {}
    }
    if let AttemptEnd::Completed(TaskOutput {
        cache: Some(used), ..
    }) = end
    {
        record_cache_use(&mut tx, task.account_id, task.agent_id, used, now).await?;
    }
    record_verdicts(&mut tx, task.account_id, task.agent_id, calls, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// A turn of the conversation completed: its answer joins the
/// conversation and goes back to the helpdesk, then the outcome settles.
/// When the customer wrote while the turn ran (a message of a later
/// turn), the task is queued for that turn instead of settling: the
/// answer did not see the message, and no message goes unanswered.
async fn end_turn(
    tx: &mut Tx,
    claimed: &ClaimedTask,
    key: &TaskKey,
    out: &TaskOutput,
    now: Timestamp,
) -> Result<(), StoreError> {
    let task = &claimed.task;
    let answer = NewMessage {
        turn: task.turn,
        role: MessageRole::Agent,
        body: &out.text,
        source: MessageSource::Agent,
        idempotency: None,
    };
    append_message(tx, key.account, key.task, answer, now).await?;
    let reply = match &out.handoff {
        Some(reason) => TicketReply::HandedOff { reason },
        None if out.decision == Decision::Fail => TicketReply::NotResolved {
            why: "its answer did not pass verification",
        },
        None => TicketReply::Answer,
    };
    if out.handoff.is_none() && has_unanswered_message(tx, key.account, key.task, task.turn).await? {
        // An answer that failed verification is not posted: the next turn
        // answers the customer's newer message.
        if reply == TicketReply::Answer {
            enqueue_reply(tx, key.account, key.task, reply, now).await?;
        }
        queue_next_turn(tx, key.account, key.task, now).await?;
        return Ok(());
    }
    settle_completed(tx, key, out.decision, &out.verdicts, out.handoff.as_deref(), now).await?;
    enqueue_reply(tx, key.account, key.task, reply, now).await
}

/// Fails running tasks whose lease expired with no attempts left, with
/// their (failed, uncharged) outcomes and hand-offs. Returns them. Every
/// worker runs this as it polls.
pub async fn fail_expired_tasks(store: &Store) -> Result<Vec<(AccountId, TaskId)>, StoreError> {
    let now = store.now();
    let mut tx = store.begin().await?;
    let expired = expire_task_rows(&mut tx, now).await?;
    let mut failed = Vec::with_capacity(expired.len());
    for e in expired {
        let key = TaskKey {
            account: e.account,
            task: e.task,
            agent_id: e.agent_id,
            agent_version: e.agent_version,
            mode: e.mode,
        };
        let reason = "the task failed: its lease expired with no attempts left";
        settle_failed(&mut tx, &key, reason, now).await?;
        let reply = TicketReply::NotResolved {
            why: "its last attempt's worker stopped renewing its lease, and no attempts remain",
        };
        enqueue_reply(&mut tx, key.account, key.task, reply, now).await?;
        failed.push((key.account, key.task));
    }
    tx.commit().await?;
    Ok(failed)
}
