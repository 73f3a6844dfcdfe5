//! Submitting a task: the one way work enters the queue, whether it comes
//! from the REST API (`POST /v1/tasks`), a helpdesk ticket (intake, in
//! `bounty-integrations`) or the CLI's demo.
//!
//! [`submit_task`] is [`admit`] then [`insert`], in one transaction,
//! grouped with the other writes waiting at the same moment
//! ([`Store::grouped`]: one commit for many, each answered once durable):
//!
//! 1. **Admit** (one read, in the transaction): the account must take new tasks (a
//!    suspended one does not); the input goes through the input policy of
//!    its [`Source`] ([`bounty_core::InputPolicy`]: the API's input is
//!    refused with the field named, a ticket's is clipped and marked); the
//!    API's `external_ref` is bounded; the agent is found by id or name and
//!    runs its current version.
//! 2. **Insert**, in the caller's [`Tx`]: the task with its budget
//!    reservation. Its unique keys decide concurrent submissions: an
//!    `Idempotency-Key` used before answers the task it made (the same
//!    request) or a mismatch (another request); a ticket that has its task
//!    already answers that task (one ticket is one task).
//!
//! Intake calls the two halves itself, so that the insert lands in the
//! transaction that first claims the delivery's dedupe key. The result is
//! typed ([`Submitted`], [`SubmitError`]); only the server knows HTTP.

use std::sync::Arc;

use bounty_core::ledger::{fits_under_cap, price_of};
use bounty_core::{AccountId, AgentId, ApiKeyMode, InputPolicy, IntegrationId, TaskId, TaskInput, Timestamp};
use bounty_store::ledger::{committed_spend, lock_billing};
use bounty_store::tasks::{outcome_type_of, reserve_budget};
use bounty_store::{
    Admission, Agent, AgentKey, Grouped, Idempotency, Inserted, IntakeTicket, NewTask, SetWork, SetWritten,
    Store, StoreError, Task, TaskToInsert, Tx, TxFuture, admission, insert_task, insert_tasks,
    task_by_idempotency_key, task_in, task_of_ticket,
};

/// Most characters of an API task's `external_ref`.
pub const MAX_EXTERNAL_REF_CHARS: usize = 255;

/// The agent a task is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentRef {
    /// By its id (a helpdesk integration names its agent so).
    Id(AgentId),
    /// As a client wrote it: an id (`agt_…`) or a name.
    Given(String),
}

/// Where a task comes from, which sets its input policy and how a repeat
/// of it is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The REST API or the CLI: input that breaks a bound is refused; an
    /// optional `Idempotency-Key` makes a retry return the first task.
    Api { idempotency: Option<Idempotency> },
    /// A new helpdesk ticket: input is clipped and marked, and the ticket
    /// gets one task however often its creation is delivered.
    Helpdesk {
        integration: IntegrationId,
        ticket: String,
    },
}

impl Source {
    /// The input policy of this source.
    pub fn input_policy(&self) -> InputPolicy {
        match self {
            Source::Api { .. } => InputPolicy::Refuse,
            Source::Helpdesk { .. } => InputPolicy::Clip,
        }
    }
}

/// A task to submit.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRequest {
    pub agent: AgentRef,
    pub input: TaskInput,
    /// The caller's own reference (a ticket id), shown back.
    pub external_ref: Option<String>,
    pub source: Source,
    /// Live or test: the mode of the key (or integration) that sends it.
    pub mode: ApiKeyMode,
    /// Attempts before the task fails.
    pub max_attempts: u32,
}

/// A request that passed every check: what [`insert`] writes. Only
/// [`admit`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    task: NewTask,
    ticket: Option<(IntegrationId, String)>,
    /// The account has a monthly cap (read with the agent).
    capped: bool,
}

/// What a submission did.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// Queued now.
    Queued(Task),
    /// The idempotency key's first request was this one: its task.
    Replayed(Task),
    /// The helpdesk ticket has its task already: one ticket is one task,
    /// nothing new is made.
    TicketHasTask(TaskId),
}

/// Why a task was not submitted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The account's subscription is suspended: no new tasks.
    #[error("the account's subscription is suspended")]
    AccountSuspended,
    /// The account has no such agent.
    #[error("the account has no agent {agent:?}")]
    UnknownAgent { agent: String },
    /// A field breaks the input policy.
    #[error("`{field}` {message}")]
    Invalid { field: String, message: String },
    /// The idempotency key was used before with another request.
    #[error("the idempotency key was used with another request")]
    IdempotencyMismatch,
    /// The monthly spending cap leaves no room; nothing is written.
    #[error("the monthly spending cap is reached")]
    BudgetExhausted { cap_micros: i64, committed_micros: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Admits `request` and inserts it, grouped with the other writes
/// waiting now ([`Store::grouped`]): answered once its transaction is
/// committed; a refusal leaves nothing.
pub async fn submit_task(
    store: &Store,
    account: AccountId,
    request: TaskRequest,
) -> Result<Submitted, SubmitError> {
    let request_key = match &request.source {
        Source::Api {
            idempotency: Some(idem),
        } => Some(idem.key.clone()),
        _ => None,
    };
    let now = store.now();
    let item = NewTaskItem {
        account,
        request: request.clone(),
        now,
    };
    let work = bounty_store::group::unit(move |tx| {
        let request = request.clone();
        Box::pin(async move {
            let admitted = admit(tx, account, request).await?;
            insert(tx, account, &admitted, now).await.map(Grouped::Keep)
        })
    });
    // Retries of one idempotency key queue on one batcher; tasks arriving
    // together are inserted together.
    let key = match request_key {
        Some(key) => format!("{account}/{key}"),
        None => TaskId::new().to_string(),
    };
    store.grouped_set_by(&key, Arc::new(NewTasks), item, work).await
}

/// The API tasks of one batch, inserted together (one admission read per
/// account and agent, one insert): the set-wise form of [`admit`] and
/// [`insert`]. A request it cannot write plainly runs alone, which
/// answers it: a refusal, a capped account, a replayed idempotency key.
struct NewTasks;

/// An API task, as [`NewTasks`] writes it.
struct NewTaskItem {
    account: AccountId,
    request: TaskRequest,
    now: Timestamp,
}

impl SetWork for NewTasks {
    type Item = NewTaskItem;
    type Out = Submitted;

    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        items: Vec<&'a NewTaskItem>,
    ) -> TxFuture<'a, Result<SetWritten<Submitted>, StoreError>> {
        Box::pin(async move {
            let Some(now) = items.iter().map(|i| i.now).max() else {
                return Ok(Some(Vec::new()));
            };
            let requests: Vec<(AccountId, &TaskRequest)> =
                items.iter().map(|i| (i.account, &i.request)).collect();
            let admitted = admit_plain(tx, &requests).await?;
            let plain: Vec<(usize, (AccountId, &Admitted))> = admitted
                .iter()
                .enumerate()
                .filter_map(|(i, a)| a.as_ref().map(|a| (i, (items[i].account, a))))
                .collect();
            let rows: Vec<(AccountId, &Admitted)> = plain.iter().map(|(_, row)| *row).collect();
            let made = insert_plain(tx, &rows, now).await?;
            let mut out: Vec<Option<Submitted>> = (0..items.len()).map(|_| None).collect();
            for ((i, _), task) in plain.iter().zip(made) {
                out[*i] = task.map(Submitted::Queued);
            }
            Ok(Some(out))
        })
    }
}

/// Admits each of `requests` (an account's request each) as [`admit`]
/// does, with one admission read per account and agent: `None` for a
/// request that is refused, or that must reserve under its account's cap
/// (only [`admit`] and [`insert`], one request at a time, answer those).
pub async fn admit_plain(
    tx: &mut Tx,
    requests: &[(AccountId, &TaskRequest)],
) -> Result<Vec<Option<Admitted>>, StoreError> {
    let mut read: Vec<((AccountId, AgentKey<'_>), Admission)> = Vec::new();
    let mut admitted = Vec::with_capacity(requests.len());
    for &(account, request) in requests {
        let at = (account, agent_key(&request.agent));
        let found = match read.iter().find(|(k, _)| *k == at) {
            Some((_, found)) => found.clone(),
            None => {
                let found = admission(tx, account, at.1).await?;
                read.push((at, found.clone()));
                found
            }
        };
        admitted.push(admit_as(&found, request.clone()).ok().filter(|a| !a.capped));
    }
    Ok(admitted)
}

/// Inserts each admitted task (an account's each, none capped:
/// [`admit_plain`]) in one statement: its task, or `None` when its unique
/// key is taken (its idempotency key, its ticket's task; nothing of it is
/// written).
pub async fn insert_plain(
    tx: &mut Tx,
    admitted: &[(AccountId, &Admitted)],
    now: Timestamp,
) -> Result<Vec<Option<Task>>, StoreError> {
    let rows: Vec<TaskToInsert<'_>> = admitted
        .iter()
        .map(|&(account, admitted)| TaskToInsert {
            id: TaskId::new(),
            account,
            new: &admitted.task,
            intake: admitted
                .ticket
                .as_ref()
                .map(|(integration, ticket)| IntakeTicket {
                    integration: *integration,
                    ticket,
                }),
        })
        .collect();
    let mut made: std::collections::HashMap<TaskId, Task> = insert_tasks(tx, &rows, now)
        .await?
        .into_iter()
        .map(|task| (task.id, task))
        .collect();
    Ok(rows.iter().map(|row| made.remove(&row.id)).collect())
}

/// Every check before the insert, in order, in the transaction that will
/// insert it: the account's status, the input policy, `external_ref`, the
/// agent (one read of `tx` for the status and the agent). Writes nothing.
pub async fn admit(tx: &mut Tx, account: AccountId, request: TaskRequest) -> Result<Admitted, SubmitError> {
    let found = admission(tx, account, agent_key(&request.agent)).await?;
    admit_as(&found, request)
}

/// How `agent` is looked up. A name never starts with `agt_`: a given
/// `agt_…` that is no id is looked up as a name, finds nothing, and still
/// reads the status.
pub fn agent_key(agent: &AgentRef) -> AgentKey<'_> {
    match agent {
        AgentRef::Id(id) => AgentKey::Id(*id),
        AgentRef::Given(given) => match given.parse() {
            Ok(id) if given.starts_with("agt_") => AgentKey::Id(id),
            _ => AgentKey::Name(given),
        },
    }
}

/// [`admit`] with its read done: `found` is the [`admission`] of the
/// request's account and [`agent_key`] (one read serves every request
/// for the same agent in a transaction).
pub fn admit_as(found: &Admission, request: TaskRequest) -> Result<Admitted, SubmitError> {
    if found.status.is_some_and(|s| !s.takes_new_tasks()) {
        return Err(SubmitError::AccountSuspended);
    }
    let input = request
        .input
        .admit(request.source.input_policy())
        .map_err(|(field, message)| SubmitError::Invalid { field, message })?;
    // A ticket's id is bounded by the parser, and must match as sent.
    if let (Source::Api { .. }, Some(r)) = (&request.source, &request.external_ref)
        && (r.is_empty() || r.chars().count() > MAX_EXTERNAL_REF_CHARS)
    {
        return Err(SubmitError::Invalid {
            field: "external_ref".to_owned(),
            message: format!("must be 1 to {MAX_EXTERNAL_REF_CHARS} characters"),
        });
    }
    let Some((agent_id, agent_version)) = found.agent else {
        return Err(SubmitError::UnknownAgent {
            agent: match &request.agent {
                AgentRef::Id(id) => id.to_string(),
                AgentRef::Given(given) => given.clone(),
            },
        });
    };
    let (idempotency, ticket) = match request.source {
        Source::Api { idempotency } => (idempotency, None),
        Source::Helpdesk { integration, ticket } => (None, Some((integration, ticket))),
    };
    Ok(Admitted {
        task: NewTask {
            agent_id,
            agent_version,
            input,
            external_ref: request.external_ref,
            idempotency,
            max_attempts: request.max_attempts,
            mode: request.mode,
        },
        ticket,
        capped: found.capped,
    })
}

/// Inserts an admitted task in the caller's transaction. On
/// [`SubmitError::BudgetExhausted`] the caller must drop the transaction
/// (the row is written until it does).
pub async fn insert(
    tx: &mut Tx,
    account: AccountId,
    admitted: &Admitted,
    now: Timestamp,
) -> Result<Submitted, SubmitError> {
    let ticket = admitted
        .ticket
        .as_ref()
        .map(|(integration, ticket)| IntakeTicket {
            integration: *integration,
            ticket,
        });
    match insert_task(tx, account, &admitted.task, ticket, now).await? {
        Inserted::New(task) => {
            if admitted.capped {
                hold_budget(tx, account, &task, now).await?;
            }
            Ok(Submitted::Queued(*task))
        }
        Inserted::Conflict => match (ticket, &admitted.task.idempotency) {
            (Some(ticket), _) => match task_of_ticket(tx, account, ticket).await? {
                Some(task) => Ok(Submitted::TicketHasTask(task)),
                None => Err(corrupt("a ticket's task conflicted but is not there")),
            },
            (None, Some(idem)) => replay(tx, account, idem).await,
            (None, None) => Err(corrupt("a task without an idempotency key conflicted")),
        },
    }
}

/// Admits a new task under the account's monthly cap (called only when
/// [`admission`] found one), reserving its price
/// (a value plan's CU for its outcome type) until its outcome is settled.
/// Only a live task on a capped account takes the billing lock: the lock
/// serialises the account's admissions, so concurrent tasks can never
/// reserve past the cap. The cap is live money: test tasks neither count
/// nor reserve.
async fn hold_budget(
    tx: &mut Tx,
    account: AccountId,
    task: &Task,
    now: Timestamp,
) -> Result<(), SubmitError> {
    // The caller read the cap with the agent (`Admitted::capped`); under
    // the lock it is read again, and rules.
    if !task.mode.livemode() {
        return Ok(());
    }
    let billing = lock_billing(tx, account, now).await?;
    let Some(cap) = billing.monthly_cap_micros else {
        return Ok(());
    };
    let outcome_type = outcome_type_of(tx, account, task.agent_id, task.agent_version).await?;
    let reserve = match billing.plan.reserve_cu(outcome_type.as_str()) {
        Some(cu) => price_of(cu, billing.plan.price_per_cu.micros).map_err(|e| corrupt(&e.to_string()))?,
        None => 0,
    };
    let committed = committed_spend(tx, account, now).await?;
    if !fits_under_cap(cap, committed, reserve) {
        return Err(SubmitError::BudgetExhausted {
            cap_micros: cap,
            committed_micros: committed,
        });
    }
    if reserve > 0 {
        reserve_budget(tx, account, task.id, reserve, now).await?;
    }
    Ok(())
}

/// The task an idempotency key made, when the request is the same.
async fn replay(tx: &mut Tx, account: AccountId, idem: &Idempotency) -> Result<Submitted, SubmitError> {
    let Some(first) = task_by_idempotency_key(tx, account, &idem.key).await? else {
        return Err(corrupt("an idempotency key conflicted but its task is not there"));
    };
    if first.request_hash.as_deref() != Some(idem.request_hash.as_str()) {
        return Err(SubmitError::IdempotencyMismatch);
    }
    match task_in(tx, account, first.id).await? {
        Some(task) => Ok(Submitted::Replayed(task)),
        None => Err(corrupt(&format!("task {} vanished", first.id))),
    }
}

fn corrupt(what: &str) -> SubmitError {
    SubmitError::Store(StoreError::Corrupt(what.to_owned()))
}

/// The account's agent named by `given`: an id (`agt_…`) or a name;
/// `None` when there is none.
pub async fn resolve_agent(
    store: &Store,
    account: AccountId,
    given: &str,
) -> Result<Option<Agent>, StoreError> {
    if given.starts_with("agt_") {
        return match given.parse::<AgentId>() {
            Ok(id) => store.get_agent(account, id, None).await,
            Err(_) => Ok(None),
        };
    }
    store.find_agent_by_name(account, given).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_has_its_input_policy() {
        assert_eq!(
            Source::Api { idempotency: None }.input_policy(),
            InputPolicy::Refuse
        );
        let ticket = Source::Helpdesk {
            integration: IntegrationId::new(),
            ticket: "T-1".into(),
        };
        assert_eq!(ticket.input_policy(), InputPolicy::Clip);
    }
}
