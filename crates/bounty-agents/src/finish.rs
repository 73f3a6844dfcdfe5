//! The worker's finish: how an attempt's end reaches every part of
//! Bounty in one transaction.
//!
//! [`finish_attempt`] records the attempt's model calls (their cost was
//! incurred either way), then writes the end onto the task, fenced by the
//! lease: a worker that lost its lease changes nothing else. A completed or
//! failed task is settled (`bounty_billing::settle`: its outcome, and its
//! charge when the verifiers pass), a helpdesk ticket's reply or hand-off
//! is queued, and the per-agent counters (cache use, pass rates) move last,
//! just before the commit, so their hot rows are locked as briefly as
//! possible. [`fail_expired_tasks`] does the same for tasks whose last
//! attempt's worker died.

use bounty_billing::settle::{TaskKey, settle_completed, settle_failed};
use bounty_core::{AccountId, TaskId};
use bounty_store::answer_cache::{record_cache_use, record_verdicts};
use bounty_store::integrations::enqueue_reply;
use bounty_store::queue::{expire_task_rows, finish_task_row};
use bounty_store::tasks::insert_model_calls;
use bounty_store::tool_calls::insert_tool_calls;
use bounty_store::{AttemptEnd, ClaimedTask, NewModelCall, NewToolCall, Store, StoreError, TaskOutput};

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
        AttemptEnd::Completed(out) => {
            settle_completed(&mut tx, &key, out.decision, &out.verdicts, now).await?;
        }
        AttemptEnd::Failed(error) => {
            settle_failed(&mut tx, &key, &format!("the task failed: {}", error.message), now).await?;
        }
        AttemptEnd::Retry { .. } => {}
    }
    if !matches!(end, AttemptEnd::Retry { .. }) {
        // A ticket's answer (or its hand-off) goes back to the helpdesk.
        enqueue_reply(&mut tx, key.account, key.task, now).await?;
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
        enqueue_reply(&mut tx, key.account, key.task, now).await?;
        failed.push((key.account, key.task));
    }
    tx.commit().await?;
    Ok(failed)
}
