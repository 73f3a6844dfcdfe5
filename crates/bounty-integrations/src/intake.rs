//! Intake: what a verified, parsed helpdesk delivery does, decided in one
//! place and written in one transaction.
//!
//! The server verifies the signature and parses the body into a
//! [`TicketEvent`]; [`take`] does the rest and returns an [`IntakeResult`],
//! which the server turns into its answer:
//!
//! - a new ticket becomes a task through [`bounty_agents::submit`] (the
//!   account must take new tasks; the ticket's text is clipped to the
//!   bounds and marked, never refused; the integration's agent runs its
//!   current version), or answers the task it already has: one ticket is
//!   one task;
//! - solved, reopened and satisfaction events are resolution signals for
//!   the outcome of the ticket's latest task (a reopen that reverses a
//!   charge also resumes the conversation: settlement queues its task);
//! - a customer's reply joins the conversation of the ticket's task
//!   through [`bounty_agents::conversation::take_message`]: appended for
//!   the turn that will read it, or continuing an answer that waits as a
//!   new turn; a closed conversation keeps it as evidence only.
//!
//! Intake is exactly-once by construction: two unique constraints in one
//! transaction. The delivery's dedupe key (the vendor's event id, else its
//! delivery id, else the body's SHA-256) is unique per integration, and so
//! is a ticket's task.
//!
//! - A signal or a reply: the dedupe key is inserted first, then the
//!   signal or message and the delivery's result follow.
//! - A new ticket: its task is inserted first, then the delivery's record
//!   with its answer, one statement each (no update). A duplicate meets
//!   the ticket's task (waiting while the first delivery's transaction is
//!   open), then the dedupe key, and answers the first delivery's record;
//!   nothing of it is kept.
//!
//! A concurrent duplicate waits on the constraint, then finds the first
//! delivery's record and answers what it answered; a crash before commit
//! leaves neither. A budget refusal rolls the delivery back, so the
//! helpdesk's retry can make the task later.
//!
//! The transaction is shared: [`take`] runs through [`Store::grouped`],
//! so the deliveries arriving together commit together, each under a
//! savepoint of its own (a refusal or an error rolls back only its own
//! delivery), and each is answered only once the commit is durable.
//! Nothing is read before it: the account's status and the agent are
//! read in it ([`bounty_agents::submit::admit`]).

use bounty_agents::conversation::{CustomerMessage, MessageError, Taken, take_message};
use bounty_agents::submit::{self, AgentRef, Source, SubmitError, Submitted, TaskRequest};
use bounty_billing::settle::{OutcomeError, settle_event};
use bounty_core::conversation::{MAX_MESSAGE_CHARS, MessageSource};
use bounty_core::outcome::{OutcomeEvent, Signal};
use bounty_core::task::Customer as TaskCustomer;
use bounty_core::{
    AccountId, Actor, DeliveryId, DeliveryResult, IntegrationId, OutcomeId, OutcomeStatus, TaskId, TaskInput,
    TicketEventName, Timestamp,
};
use bounty_store::group::unit;
use bounty_store::{
    DeliveryAnswer, DeliveryRecord, DeliveryToInsert, EventEvidence, Grouped, IntakeTicket, Integration,
    NewDelivery, SetWork, SetWritten, Store, StoreError, Tx, TxFuture, deliveries_by_dedupe_keys,
    delivery_by_dedupe_key, insert_answered_deliveries, insert_answered_delivery, insert_delivery,
    latest_outcome_of_ticket, save_delivery_result, task_of_ticket,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;

use crate::event::{NewTicket, TicketEvent, TicketEventKind};
use crate::signature::Verified;

/// A delivery whose signature verified and whose body parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedDelivery {
    /// The vendor's event id, else its delivery id, else `sha256:` and the
    /// body's hash.
    pub dedupe_key: String,
    pub event: TicketEvent,
}

impl VerifiedDelivery {
    /// The delivery of `event`, verified as `verified`, with `body` as sent.
    pub fn new(event: TicketEvent, verified: &Verified, body: &[u8]) -> Self {
        let dedupe_key = event
            .vendor_event_id
            .clone()
            .or_else(|| verified.delivery_id.clone())
            .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(body))));
        VerifiedDelivery { dedupe_key, event }
    }
}

/// What a delivery's event does.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A new ticket: a task for the integration's agent.
    CreateTask(Box<TaskRequest>),
    /// A resolution signal for the outcome of the ticket's latest task.
    Signal(Signal),
    /// A customer's reply for the conversation of the ticket's task.
    Message(String),
}

/// The delivery a result is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    pub delivery: DeliveryId,
    /// What happened to the ticket.
    pub event: TicketEventName,
}

/// What intake did.
#[derive(Debug, Clone, PartialEq)]
pub enum IntakeResult {
    /// The ticket became a task.
    TaskCreated { receipt: DeliveryReceipt, task: TaskId },
    /// The ticket has its task already (its creation delivered again under
    /// another id): nothing new is made or billed.
    TaskExists { receipt: DeliveryReceipt, task: TaskId },
    /// The signal moved the ticket's outcome to `status`.
    SignalApplied {
        receipt: DeliveryReceipt,
        outcome: OutcomeId,
        status: OutcomeStatus,
    },
    /// The outcome's policy does not take the signal (no `external`
    /// verifier, or its window is over); the refusal is on its receipt.
    SignalNotApplicable { receipt: DeliveryReceipt, why: String },
    /// The customer's reply joined the conversation of the ticket's task:
    /// `continued` when it continued a waiting answer (a new turn is
    /// queued), else it waits for the turn that is queued or running.
    MessageAdded {
        receipt: DeliveryReceipt,
        task: TaskId,
        turn: i32,
        continued: bool,
    },
    /// Recorded, nothing else done; `why` when something was meant to
    /// happen and could not (the ticket has no finished task yet, …).
    Recorded {
        receipt: DeliveryReceipt,
        why: Option<String>,
    },
    /// Seen before: the first delivery's record, to answer as it was.
    Duplicate { first: DeliveryRecord },
    /// The account's cap leaves no room for the ticket's task; nothing is
    /// recorded, so the helpdesk may retry.
    BudgetExhausted { cap_micros: i64, committed_micros: i64 },
}

/// What the helpdesk is told of an accepted delivery, and what its record
/// keeps: the same for a duplicate as for the first delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub delivery_id: DeliveryId,
    pub event: TicketEventName,
    pub result: DeliveryResult,
    pub task_id: Option<TaskId>,
    pub reason: Option<String>,
}

impl IntakeResult {
    /// The answer of an accepted delivery; `None` for a budget refusal.
    pub fn answer(&self) -> Option<Answer> {
        let answer = |receipt: &DeliveryReceipt, result, task_id, reason| Answer {
            delivery_id: receipt.delivery,
            event: receipt.event,
            result,
            task_id,
            reason,
        };
        Some(match self {
            IntakeResult::TaskCreated { receipt, task } => {
                answer(receipt, DeliveryResult::TaskCreated, Some(*task), None)
            }
            IntakeResult::TaskExists { receipt, task } => answer(
                receipt,
                DeliveryResult::TaskExists,
                Some(*task),
                Some(format!("the ticket already has task {task}")),
            ),
            IntakeResult::SignalApplied {
                receipt,
                outcome,
                status,
            } => answer(
                receipt,
                DeliveryResult::SignalApplied,
                None,
                Some(format!("outcome {outcome} is now {}", status.as_str())),
            ),
            IntakeResult::SignalNotApplicable { receipt, why } => answer(
                receipt,
                DeliveryResult::SignalNotApplicable,
                None,
                Some(why.clone()),
            ),
            IntakeResult::Recorded { receipt, why } => {
                answer(receipt, DeliveryResult::Recorded, None, why.clone())
            }
            IntakeResult::MessageAdded {
                receipt,
                task,
                turn,
                continued,
            } => answer(
                receipt,
                DeliveryResult::MessageAdded,
                Some(*task),
                Some(match continued {
                    true => format!("the conversation continued: turn {turn} is queued"),
                    false => format!("the message waits for turn {turn}"),
                }),
            ),
            IntakeResult::Duplicate { first } => Answer {
                delivery_id: first.id,
                event: first.event,
                result: first.result,
                task_id: first.task_id,
                reason: first.reason.clone(),
            },
            IntakeResult::BudgetExhausted { .. } => return None,
        })
    }
}

/// Why a delivery was not taken; nothing of it is recorded.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The integration's agent is gone (a broken row, not the sender's
    /// fault).
    #[error("integration {0} names a missing agent")]
    MissingAgent(IntegrationId),
    /// The ticket's task was refused: the account is suspended, or its
    /// input is unusable even clipped.
    #[error(transparent)]
    Refused(SubmitError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntakeError {
    fn of(e: SubmitError, integration: IntegrationId) -> Self {
        match e {
            SubmitError::UnknownAgent { .. } => IntakeError::MissingAgent(integration),
            SubmitError::Store(e) => IntakeError::Store(e),
            other => IntakeError::Refused(other),
        }
    }
}

/// Records `delivery` for `integration` and applies it, exactly once per
/// dedupe key (see the module doc), in a transaction grouped with the
/// other writes waiting now ([`Store::grouped`]): answered once it is
/// committed (in a transaction of its own when the store's group commit is
/// off: the benchmark's baseline). A ticket's task gets `max_attempts`.
pub async fn take(
    store: &Store,
    integration: &Integration,
    delivery: VerifiedDelivery,
    max_attempts: u32,
) -> Result<IntakeResult, IntakeError> {
    let (integration, now) = (integration.clone(), store.now());
    // Copies of a delivery, and a ticket's events, queue on one batcher.
    let key = format!("{}/{}", integration.id, delivery.event.ticket.external_id);
    let created = match effect(&integration, &delivery.event, max_attempts) {
        Effect::CreateTask(request) => Some(NewTicketItem {
            integration: integration.clone(),
            dedupe_key: delivery.dedupe_key.clone(),
            event: delivery.event.kind.name(),
            ticket: delivery.event.ticket.external_id.clone(),
            request: *request,
            now,
        }),
        _ => None,
    };
    let alone = unit(move |tx| {
        let (integration, delivery) = (integration.clone(), delivery.clone());
        Box::pin(async move { apply(tx, &integration, delivery, max_attempts, now).await })
    });
    match created {
        // New tickets arriving together are written together.
        Some(item) => {
            store
                .grouped_set_by(&key, Arc::new(NewTickets), item, alone)
                .await
        }
        None => store.grouped_by(&key, alone).await,
    }
}

/// The new tickets of one batch, written together: one admission read
/// per account and agent, one read of the dedupe keys already recorded
/// (a resend answers its first record, writing nothing), every task in
/// one insert, then every delivery's record with its answer in another
/// (the set-wise form of [`create_then_record`]). A ticket it cannot
/// write plainly runs alone through [`apply`], which answers it: a
/// refusal (a suspended account, an unusable input), a capped account
/// (its budget is held under the billing lock), a ticket that has its
/// task already (a copy of a delivery in the same batch). A dedupe key
/// the set cannot record (two new tickets of the batch share it, or an
/// open transaction holds it) undoes the set: each then runs alone.
struct NewTickets;

/// A new ticket's delivery, as [`NewTickets`] writes it.
struct NewTicketItem {
    integration: Integration,
    dedupe_key: String,
    event: TicketEventName,
    ticket: String,
    request: TaskRequest,
    now: Timestamp,
}

impl SetWork for NewTickets {
    type Item = NewTicketItem;
    type Out = IntakeResult;

    fn write<'a>(
        &'a self,
        tx: &'a mut Tx,
        items: Vec<&'a NewTicketItem>,
    ) -> TxFuture<'a, Result<SetWritten<IntakeResult>, StoreError>> {
        Box::pin(write_new_tickets(tx, items))
    }
}

async fn write_new_tickets(
    tx: &mut Tx,
    items: Vec<&NewTicketItem>,
) -> Result<SetWritten<IntakeResult>, StoreError> {
    let Some(now) = items.iter().map(|i| i.now).max() else {
        return Ok(Some(Vec::new()));
    };
    let requests: Vec<(AccountId, &TaskRequest)> = items
        .iter()
        .map(|i| (i.integration.account_id, &i.request))
        .collect();
    let admitted = submit::admit_plain(tx, &requests).await?;
    // Resends of a delivery already recorded (committed, or written earlier
    // in this transaction) answer the first's record and write nothing,
    // as they would alone once admitted.
    let keys: Vec<(AccountId, IntegrationId, &str)> = items
        .iter()
        .zip(&admitted)
        .filter(|(_, a)| a.is_some())
        .map(|(i, _)| (i.integration.account_id, i.integration.id, i.dedupe_key.as_str()))
        .collect();
    let firsts = deliveries_by_dedupe_keys(tx, &keys).await?;
    let first_of = |item: &NewTicketItem| {
        firsts
            .iter()
            .find(|(integration, key, _)| *integration == item.integration.id && *key == item.dedupe_key)
            .map(|(_, _, first)| first)
    };
    let plain: Vec<(&NewTicketItem, (AccountId, &submit::Admitted))> = items
        .iter()
        .zip(&admitted)
        .filter(|(item, _)| first_of(item).is_none())
        .filter_map(|(item, a)| a.as_ref().map(|a| (*item, (item.integration.account_id, a))))
        .collect();
    let rows: Vec<(AccountId, &submit::Admitted)> = plain.iter().map(|(_, row)| *row).collect();
    let made = submit::insert_plain(tx, &rows, now).await?;
    // The tasks made, each with its delivery's record.
    let made: Vec<(&NewTicketItem, TaskId, DeliveryId)> = plain
        .iter()
        .zip(made)
        .filter_map(|((item, _), task)| task.map(|task| (*item, task.id, DeliveryId::new())))
        .collect();
    let records: Vec<DeliveryToInsert<'_>> = made
        .iter()
        .map(|&(item, task, delivery)| DeliveryToInsert {
            id: delivery,
            account: item.integration.account_id,
            integration: item.integration.id,
            delivery: NewDelivery {
                dedupe_key: &item.dedupe_key,
                event: item.event,
                external_ticket: &item.ticket,
            },
            answer: DeliveryAnswer {
                result: DeliveryResult::TaskCreated,
                reason: None,
                task: Some(task),
            },
        })
        .collect();
    if insert_answered_deliveries(tx, &records, now).await?.len() != records.len() {
        // A new ticket's dedupe key is held by another ticket's delivery
        // (of this batch, or of an open transaction): its task must not
        // stay, and only the delivery alone can say so.
        return Ok(None);
    }
    Ok(Some(
        items
            .iter()
            .zip(&admitted)
            .map(|(item, admitted)| {
                if let (Some(first), Some(_)) = (first_of(item), admitted) {
                    return Some(IntakeResult::Duplicate { first: first.clone() });
                }
                made.iter()
                    .find(|(m, _, _)| std::ptr::eq(*m, *item))
                    .map(|&(_, task, delivery)| IntakeResult::TaskCreated {
                        receipt: DeliveryReceipt {
                            delivery,
                            event: item.event,
                        },
                        task,
                    })
            })
            .collect(),
    ))
}

/// Everything [`take`] does, in `tx`. A budget refusal or a refused task
/// leaves nothing: [`Grouped::Discard`], or an error, rolls it back, so the
/// helpdesk's retry can create the task later.
async fn apply(
    tx: &mut Tx,
    integration: &Integration,
    delivery: VerifiedDelivery,
    max_attempts: u32,
    now: Timestamp,
) -> Result<Grouped<IntakeResult>, IntakeError> {
    let account = integration.account_id;
    // Checked first: a suspended account's ticket is refused before
    // anything is recorded.
    let admitted = match effect(integration, &delivery.event, max_attempts) {
        Effect::CreateTask(request) => Planned::Task(Box::new(
            submit::admit(tx, account, *request)
                .await
                .map_err(|e| IntakeError::of(e, integration.id))?,
        )),
        Effect::Signal(signal) => Planned::Signal(signal),
        Effect::Message(body) => Planned::Message(body),
    };
    let event = delivery.event.kind.name();
    let new = NewDelivery {
        dedupe_key: &delivery.dedupe_key,
        event,
        external_ticket: &delivery.event.ticket.external_id,
    };
    let later = match admitted {
        Planned::Task(admitted) => return create_then_record(tx, integration, &admitted, new, now).await,
        Planned::Signal(signal) => Later::Signal(signal),
        Planned::Message(body) => Later::Message(body),
    };
    let Some(id) = insert_delivery(tx, account, integration.id, new, now).await? else {
        let first = first_delivery(tx, integration, new.dedupe_key).await?;
        return Ok(Grouped::Keep(IntakeResult::Duplicate { first }));
    };
    let receipt = DeliveryReceipt { delivery: id, event };
    let ticket = new.external_ticket;
    let result = match later {
        Later::Signal(signal) => apply_signal(tx, integration, ticket, signal, receipt, now).await?,
        Later::Message(body) => add_message(tx, integration, ticket, &body, receipt, now).await?,
    };
    let Some(answer) = result.answer() else {
        return Ok(Grouped::Discard(result));
    };
    save_delivery_result(
        tx,
        account,
        id,
        answer.result,
        answer.reason.as_deref(),
        answer.task_id,
    )
    .await?;
    Ok(Grouped::Keep(result))
}

/// A new ticket: its task first, then the delivery's record with its
/// answer, one statement each. A duplicate of the delivery meets the
/// ticket's task (or waits on it, while the first delivery's transaction
/// is open) and then the dedupe key: it answers the first delivery's
/// record, and nothing of it is kept. A budget refusal keeps nothing
/// either, so the helpdesk's retry can create the task later.
async fn create_then_record(
    tx: &mut Tx,
    integration: &Integration,
    admitted: &submit::Admitted,
    new: NewDelivery<'_>,
    now: Timestamp,
) -> Result<Grouped<IntakeResult>, IntakeError> {
    let id = DeliveryId::new();
    let receipt = DeliveryReceipt {
        delivery: id,
        event: new.event,
    };
    let result = create_task(tx, integration, admitted, receipt, now).await?;
    let Some(answer) = result.answer() else {
        return Ok(Grouped::Discard(result));
    };
    let answer = DeliveryAnswer {
        result: answer.result,
        reason: answer.reason.as_deref(),
        task: answer.task_id,
    };
    if insert_answered_delivery(tx, integration.account_id, integration.id, id, new, answer, now).await? {
        return Ok(Grouped::Keep(result));
    }
    let first = first_delivery(tx, integration, new.dedupe_key).await?;
    Ok(Grouped::Discard(IntakeResult::Duplicate { first }))
}

/// The record of the delivery that holds `dedupe_key`.
async fn first_delivery(
    tx: &mut Tx,
    integration: &Integration,
    dedupe_key: &str,
) -> Result<DeliveryRecord, IntakeError> {
    Ok(
        delivery_by_dedupe_key(tx, integration.account_id, integration.id, dedupe_key)
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt("a dedupe key conflicted but its delivery is not there".into())
            })?,
    )
}

/// An effect applied after its delivery is recorded.
enum Later {
    Signal(Signal),
    Message(String),
}

/// An effect with its task admitted.
enum Planned {
    Task(Box<submit::Admitted>),
    Signal(Signal),
    Message(String),
}

/// Inserts the ticket's admitted task in `tx`: made now, the ticket's
/// task already, or refused for the budget.
async fn create_task(
    tx: &mut Tx,
    integration: &Integration,
    admitted: &submit::Admitted,
    receipt: DeliveryReceipt,
    now: Timestamp,
) -> Result<IntakeResult, IntakeError> {
    Ok(
        match submit::insert(tx, integration.account_id, admitted, now).await {
            Ok(Submitted::Queued(task)) => IntakeResult::TaskCreated {
                receipt,
                task: task.id,
            },
            Ok(Submitted::TicketHasTask(task)) => IntakeResult::TaskExists { receipt, task },
            // A ticket's task carries no idempotency key; were one
            // replayed, it would still be the ticket's task.
            Ok(Submitted::Replayed(task)) => IntakeResult::TaskExists {
                receipt,
                task: task.id,
            },
            Err(SubmitError::BudgetExhausted {
                cap_micros,
                committed_micros,
            }) => IntakeResult::BudgetExhausted {
                cap_micros,
                committed_micros,
            },
            Err(e) => return Err(IntakeError::of(e, integration.id)),
        },
    )
}

/// Applies `signal` to the outcome of `ticket`'s latest task, in `tx`.
async fn apply_signal(
    tx: &mut Tx,
    integration: &Integration,
    ticket: &str,
    signal: Signal,
    receipt: DeliveryReceipt,
    now: Timestamp,
) -> Result<IntakeResult, StoreError> {
    let account: AccountId = integration.account_id;
    let Some(outcome) = latest_outcome_of_ticket(tx, account, integration.id, ticket).await? else {
        return Ok(IntakeResult::Recorded {
            receipt,
            why: Some("the ticket has no finished task yet".to_owned()),
        });
    };
    let evidence = EventEvidence {
        verdicts: None,
        signal: Some(serde_json::to_value(signal).unwrap_or_default()),
        actor: Actor::Integration(integration.id),
    };
    Ok(
        match settle_event(tx, account, outcome, OutcomeEvent::Signal(signal), evidence, now).await {
            Ok(applied) => IntakeResult::SignalApplied {
                receipt,
                outcome,
                status: applied.outcome.status,
            },
            Err(OutcomeError::NotAllowed(why)) => IntakeResult::Recorded {
                receipt,
                why: Some(why),
            },
            // Refused and kept on the receipt: the outcome's policy does
            // not await the helpdesk, or its window is over.
            Err(OutcomeError::NotApplicable(why)) => IntakeResult::SignalNotApplicable { receipt, why },
            Err(OutcomeError::NotFound) => IntakeResult::Recorded {
                receipt,
                why: Some("the ticket's outcome is gone".to_owned()),
            },
            Err(OutcomeError::Store(e)) => return Err(e),
        },
    )
}

/// Adds the customer's reply to the conversation of `ticket`'s task, in
/// `tx`. A ticket's text is never refused: the reply is cut to
/// [`MAX_MESSAGE_CHARS`] and a NUL becomes U+FFFD, as a ticket's input
/// is clipped; a reply with no text is only recorded.
async fn add_message(
    tx: &mut Tx,
    integration: &Integration,
    ticket: &str,
    body: &str,
    receipt: DeliveryReceipt,
    now: Timestamp,
) -> Result<IntakeResult, StoreError> {
    let account = integration.account_id;
    let intake = IntakeTicket {
        integration: integration.id,
        ticket,
    };
    let Some(task) = task_of_ticket(tx, account, intake).await? else {
        return Ok(IntakeResult::Recorded {
            receipt,
            why: Some("the ticket has no task yet".to_owned()),
        });
    };
    let body: String = body
        .replace('\0', "\u{FFFD}")
        .chars()
        .take(MAX_MESSAGE_CHARS)
        .collect();
    let message = CustomerMessage {
        body: &body,
        source: MessageSource::Helpdesk,
        actor: Actor::Integration(integration.id),
        idempotency: None,
    };
    let recorded = |why: String| IntakeResult::Recorded {
        receipt: receipt.clone(),
        why: Some(why),
    };
    Ok(match take_message(tx, account, task, &message, now).await {
        Ok(Taken::Appended { task, .. }) => IntakeResult::MessageAdded {
            receipt,
            task: task.id,
            turn: task.turn + i32::from(task.status == bounty_core::TaskStatus::Running),
            continued: false,
        },
        Ok(Taken::Continued { task, .. }) => IntakeResult::MessageAdded {
            receipt,
            task: task.id,
            turn: task.turn,
            continued: true,
        },
        Ok(Taken::Closed { why, .. }) => recorded(why),
        Ok(Taken::Replayed { .. }) => recorded("the reply was added before".to_owned()),
        Err(MessageError::Invalid(why)) => recorded(format!("the reply was not added: its text {why}")),
        Err(MessageError::NotFound) => recorded("the ticket's task is gone".to_owned()),
        Err(e @ (MessageError::Closed(_) | MessageError::IdempotencyMismatch)) => recorded(e.to_string()),
        Err(MessageError::Store(e)) => return Err(e),
    })
}

/// What `event` does for `integration`: pure, no I/O.
pub fn effect(integration: &Integration, event: &TicketEvent, max_attempts: u32) -> Effect {
    match &event.kind {
        TicketEventKind::Created(ticket) => Effect::CreateTask(Box::new(TaskRequest {
            agent: AgentRef::Id(integration.agent_id),
            input: ticket_input(integration, event, ticket),
            external_ref: Some(event.ticket.external_id.clone()),
            source: Source::Helpdesk {
                integration: integration.id,
                ticket: event.ticket.external_id.clone(),
            },
            // The integration's mode: a test integration's tickets are
            // test-mode tasks.
            mode: integration.mode,
            max_attempts,
        })),
        TicketEventKind::Solved => Effect::Signal(Signal::Solved),
        TicketEventKind::Reopened => Effect::Signal(Signal::Reopened),
        TicketEventKind::Escalated => Effect::Signal(Signal::Escalated),
        TicketEventKind::SatisfactionRated { score, .. } => Effect::Signal(Signal::Csat {
            score: five_point(score.percent()),
        }),
        TicketEventKind::CustomerReplied { body } => Effect::Message(body.clone()),
    }
}

/// A 0..100 satisfaction score on the 1..5 scale the verification policy
/// reads.
fn five_point(percent: u8) -> u8 {
    let five = 1 + (u32::from(percent.min(100)) * 4 + 50) / 100;
    u8::try_from(five).unwrap_or(5)
}

/// The task input a new ticket becomes, before the input policy clips it:
/// the ticket's text (its subject when the body is blank), the customer,
/// and where it came from in the metadata.
fn ticket_input(integration: &Integration, event: &TicketEvent, ticket: &NewTicket) -> TaskInput {
    let mut metadata = serde_json::Map::new();
    metadata.insert("source".into(), integration.kind.as_str().into());
    metadata.insert("integration_id".into(), integration.id.to_string().into());
    metadata.insert("ticket_id".into(), event.ticket.external_id.clone().into());
    if let Some(url) = &event.ticket.url {
        metadata.insert("ticket_url".into(), url.clone().into());
    }
    if !ticket.tags.is_empty() {
        metadata.insert("tags".into(), ticket.tags.clone().into());
    }
    let body = match (ticket.body.trim().is_empty(), &ticket.subject) {
        (false, _) => ticket.body.clone(),
        (true, Some(subject)) if !subject.trim().is_empty() => subject.clone(),
        _ => "(the ticket has no text)".to_owned(),
    };
    let c = &ticket.customer;
    TaskInput {
        subject: ticket.subject.clone().unwrap_or_default(),
        body,
        customer: (c.email.is_some() || c.name.is_some() || c.external_id.is_some()).then(|| TaskCustomer {
            id: c.external_id.clone(),
            email: c.email.clone(),
            name: c.name.clone(),
        }),
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use bounty_core::{ApiKeyMode, IntegrationKind};

    use super::*;
    use crate::event::{SatisfactionScore, TicketCustomer, TicketRef};

    fn integration() -> Integration {
        crate::fixtures::integration(IntegrationKind::Zendesk, ApiKeyMode::Test)
    }

    fn event(kind: TicketEventKind) -> TicketEvent {
        TicketEvent {
            kind,
            vendor_event_id: None,
            ticket: TicketRef {
                external_id: "T-7".into(),
                url: Some("https://acme.zendesk.com/t/7".into()),
            },
            occurred_at: None,
        }
    }

    #[test]
    fn a_new_ticket_is_a_helpdesk_task_for_the_integrations_agent() {
        let i = integration();
        let ticket = NewTicket {
            subject: Some("Refund".into()),
            body: "  ".into(),
            customer: TicketCustomer {
                email: Some("a@b.c".into()),
                ..Default::default()
            },
            tags: vec!["vip".into()],
        };
        let Effect::CreateTask(request) = effect(&i, &event(TicketEventKind::Created(ticket)), 3) else {
            panic!("a new ticket makes a task");
        };
        assert_eq!(request.agent, AgentRef::Id(i.agent_id));
        assert_eq!(request.mode, ApiKeyMode::Test);
        assert_eq!(request.max_attempts, 3);
        assert_eq!(request.external_ref.as_deref(), Some("T-7"));
        assert_eq!(
            request.source,
            Source::Helpdesk {
                integration: i.id,
                ticket: "T-7".into()
            }
        );
        // A blank body reads the subject.
        assert_eq!(request.input.body, "Refund");
        assert_eq!(request.input.metadata["source"], "zendesk");
        assert_eq!(
            request.input.metadata["ticket_url"],
            "https://acme.zendesk.com/t/7"
        );
        assert_eq!(request.input.metadata["tags"], serde_json::json!(["vip"]));
        assert_eq!(
            request.input.customer.as_ref().unwrap().email.as_deref(),
            Some("a@b.c")
        );
    }

    #[test]
    fn signals_and_replies_map_to_their_effects() {
        let i = integration();
        assert_eq!(
            effect(&i, &event(TicketEventKind::Solved), 1),
            Effect::Signal(Signal::Solved)
        );
        assert_eq!(
            effect(&i, &event(TicketEventKind::Reopened), 1),
            Effect::Signal(Signal::Reopened)
        );
        let reply = TicketEventKind::CustomerReplied { body: "hi".into() };
        assert_eq!(effect(&i, &event(reply), 1), Effect::Message("hi".into()));
        let rated = TicketEventKind::SatisfactionRated {
            score: SatisfactionScore::new(75, "4").unwrap(),
            comment: None,
        };
        assert_eq!(
            effect(&i, &event(rated), 1),
            Effect::Signal(Signal::Csat { score: 4 })
        );
        let five: Vec<u8> = [0, 25, 50, 75, 100].into_iter().map(five_point).collect();
        assert_eq!(five, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn the_dedupe_key_prefers_the_vendors_event_id_then_the_delivery_id() {
        let verified = |id: Option<&str>| Verified {
            delivery_id: id.map(str::to_owned),
            secret_index: 0,
            signed_at: None,
        };
        let mut e = event(TicketEventKind::Solved);
        let body = b"{}";
        let hashed = VerifiedDelivery::new(e.clone(), &verified(None), body);
        assert_eq!(
            hashed.dedupe_key,
            format!("sha256:{}", hex::encode(Sha256::digest(body)))
        );
        assert_eq!(
            VerifiedDelivery::new(e.clone(), &verified(Some("d-1")), body).dedupe_key,
            "d-1"
        );
        e.vendor_event_id = Some("evt_1".into());
        assert_eq!(
            VerifiedDelivery::new(e, &verified(Some("d-1")), body).dedupe_key,
            "evt_1"
        );
    }

    #[test]
    fn every_accepted_result_answers_with_its_result_and_reason() {
        let receipt = DeliveryReceipt {
            delivery: DeliveryId::new(),
            event: TicketEventName::Created,
        };
        let task = TaskId::new();
        let exists = IntakeResult::TaskExists {
            receipt: receipt.clone(),
            task,
        }
        .answer()
        .unwrap();
        assert_eq!(exists.result, DeliveryResult::TaskExists);
        assert_eq!(exists.task_id, Some(task));
        assert_eq!(
            exists.reason.as_deref(),
            Some(format!("the ticket already has task {task}").as_str())
        );
        let outcome = OutcomeId::new();
        let applied = IntakeResult::SignalApplied {
            receipt: receipt.clone(),
            outcome,
            status: OutcomeStatus::Resolved,
        }
        .answer()
        .unwrap();
        assert_eq!(applied.reason, Some(format!("outcome {outcome} is now resolved")));
        let created = IntakeResult::TaskCreated {
            receipt: receipt.clone(),
            task,
        }
        .answer()
        .unwrap();
        assert_eq!(
            (created.result, created.reason),
            (DeliveryResult::TaskCreated, None)
        );
        // A duplicate answers exactly what its first delivery's record says.
        let first = DeliveryRecord {
            id: receipt.delivery,
            event: TicketEventName::Created,
            external_ticket: "T-7".into(),
            result: exists.result,
            reason: exists.reason.clone(),
            task_id: exists.task_id,
            received_at: chrono::Utc::now(),
        };
        assert_eq!(IntakeResult::Duplicate { first }.answer(), Some(exists));
        let refused = IntakeResult::BudgetExhausted {
            cap_micros: 1,
            committed_micros: 1,
        };
        assert_eq!(refused.answer(), None);
    }
}
