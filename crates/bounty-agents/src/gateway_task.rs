//! Gateway tasks: work the customer's own agent did through the
//! OpenAI-compatible gateway, reported back for verification and billing.
//!
//! The calls of a task carry the customer's id for it (`Bounty-Task`) and
//! are recorded as they are made (`bounty_store::gateway`). When the
//! customer reports the outcome ([`report_outcome`]: the final answer,
//! the ticket it answers, evidence), one transaction makes the task,
//! through the same admission and budget hold as any task
//! ([`crate::submit`]), with the reported answer as its output, and moves
//! the calls recorded so far onto it. A worker then runs the agent's
//! verification policy on the answer, exactly as for an answer Bounty
//! produced ([`crate::worker`]), and the outcome is rated, charged once
//! and receipted the same way.
//!
//! A reference is reported once. The same report again answers the task
//! it made (a retry); a different answer is refused
//! ([`ReportError::AlreadyReported`]). Two reports racing are decided by
//! the unique index on the task's reference: the loser's transaction
//! rolls back and it answers as a repeat.

use bounty_core::{AccountId, ApiKeyMode, TaskInput};
use bounty_store::gateway::{gateway_agent_of, gateway_task, link_gateway_calls, set_reported_output};
use bounty_store::{Store, StoreError, Task, task_in};

use crate::submit::{AgentRef, Source, SubmitError, Submitted, TaskRequest, admit, insert};

/// The agent a reference's calls go to when neither the calls nor the
/// report name one: the account's agent of this name.
pub const DEFAULT_GATEWAY_AGENT: &str = "gateway";

/// Most characters of a `Bounty-Task` reference.
pub const MAX_REFERENCE_CHARS: usize = 255;

/// A reported outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The customer's id of the task (`Bounty-Task`).
    pub reference: String,
    /// The agent, by id or name; else the one the calls named, else
    /// [`DEFAULT_GATEWAY_AGENT`].
    pub agent: Option<String>,
    /// What the task answered: the ticket or request, which verifiers
    /// (a judge) read beside the answer.
    pub input: TaskInput,
    /// The final answer the agent gave.
    pub output: String,
    pub mode: ApiKeyMode,
    pub max_attempts: u32,
}

/// What a report did.
#[derive(Debug, Clone, PartialEq)]
pub enum Reported {
    /// The task was made and queued for verification; `calls` gateway
    /// calls were moved onto it.
    New { task: Task, calls: usize },
    /// The same report was made before: its task.
    Repeated(Task),
}

/// Why a report was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The reference was reported before with another answer.
    #[error("the outcome of task {reference:?} was reported already")]
    AlreadyReported { reference: String, task: Box<Task> },
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

impl From<StoreError> for ReportError {
    fn from(e: StoreError) -> Self {
        ReportError::Submit(SubmitError::Store(e))
    }
}

/// `reference` is 1-255 characters with no control characters.
pub fn check_reference(reference: &str) -> Result<(), String> {
    let n = reference.chars().count();
    if n == 0 || n > MAX_REFERENCE_CHARS || reference.chars().any(char::is_control) {
        return Err(format!(
            "must be 1 to {MAX_REFERENCE_CHARS} characters, with no control characters"
        ));
    }
    Ok(())
}

/// Reports the outcome of a gateway task (see the module doc).
pub async fn report_outcome(
    store: &Store,
    account: AccountId,
    report: Report,
) -> Result<Reported, ReportError> {
    check_reference(&report.reference).map_err(|message| SubmitError::Invalid {
        field: "reference".to_owned(),
        message,
    })?;
    if let Some(done) = reported_before(store, account, &report).await? {
        return done;
    }
    let agent = match &report.agent {
        Some(given) => given.clone(),
        None => {
            let mut tx = store.begin().await?;
            let named = gateway_agent_of(&mut tx, account, report.mode, &report.reference).await?;
            tx.commit().await?;
            named.map_or_else(|| DEFAULT_GATEWAY_AGENT.to_owned(), |id| id.to_string())
        }
    };
    let now = store.now();
    let mut tx = store.begin().await?;
    let admitted = admit(
        &mut tx,
        account,
        TaskRequest {
            agent: AgentRef::Given(agent),
            input: report.input.clone(),
            external_ref: Some(report.reference.clone()),
            source: Source::Api { idempotency: None },
            mode: report.mode,
            max_attempts: report.max_attempts,
        },
    )
    .await?;
    let task = match insert(&mut tx, account, &admitted, now).await? {
        Submitted::Queued(task) => task,
        other => {
            return Err(SubmitError::Store(StoreError::Corrupt(format!(
                "a gateway task without an idempotency key was not inserted: {other:?}"
            )))
            .into());
        }
    };
    set_reported_output(&mut tx, account, task.id, &report.output).await?;
    let linked = link_gateway_calls(&mut tx, account, report.mode, &report.reference, task.id).await;
    let calls = match linked {
        Ok(n) => n,
        Err(StoreError::Constraint { constraint, .. })
            if constraint == "tasks_account_id_livemode_gateway_ref_key" =>
        {
            drop(tx);
            return match reported_before(store, account, &report).await? {
                Some(done) => done,
                None => {
                    Err(StoreError::Corrupt("a gateway task conflicted but is not there".to_owned()).into())
                }
            };
        }
        Err(e) => return Err(e.into()),
    };
    let task = task_in(&mut tx, account, task.id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a gateway task vanished in its own transaction".to_owned()))?;
    tx.commit().await?;
    Ok(Reported::New { task, calls })
}

/// The answer to a reference reported before: the task for the same
/// answer, a refusal for another. `None` when it was not reported.
async fn reported_before(
    store: &Store,
    account: AccountId,
    report: &Report,
) -> Result<Option<Result<Reported, ReportError>>, StoreError> {
    let mut tx = store.begin().await?;
    let Some(id) = gateway_task(&mut tx, account, report.mode, &report.reference).await? else {
        return Ok(None);
    };
    let task = task_in(&mut tx, account, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("gateway task {id} vanished")))?;
    tx.commit().await?;
    let reported = store.gateway_reported_output(account, task.id).await?;
    Ok(Some(if reported.as_deref() == Some(report.output.as_str()) {
        Ok(Reported::Repeated(task))
    } else {
        Err(ReportError::AlreadyReported {
            reference: report.reference.clone(),
            task: Box::new(task),
        })
    }))
}
