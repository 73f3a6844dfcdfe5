//! Helpdesk integrations: their settings (secrets sealed by the caller;
//! the store never sees them in the clear), the intake of verified
//! deliveries, and the replies written back through the outbox.
//!
//! Intake is exactly-once by construction. A delivery's dedupe key (the
//! vendor's event id, else its delivery id) is inserted first in the
//! transaction, under a unique constraint per integration; the effect
//! (a task, or a signal applied to the ticket's outcome) and the saved
//! response follow in the same transaction. A concurrent duplicate waits
//! on that constraint, then finds the row and answers the first response;
//! a crash before commit leaves neither.
//!
//! Replies are written in the transaction that finishes the ticket's task
//! (`helpdesk_reply`, keyed by the task so there is one per task): the
//! agent's answer when its outcome is not failed, a hand-off note to a
//! person when it is.

use bounty_core::outcome::Signal;
use bounty_core::{
    AccountId, Actor, AgentId, ApiKeyMode, DeliveryId, IntegrationId, IntegrationName, OutboxId, PageLimit,
    TaskId, Timestamp,
};

use crate::db::on_pool;
use crate::tasks::{Inserted, IntakeTicket, NewTask, insert_task};
use crate::tx::{Tx, args};
use crate::{Page, Store, StoreError};

/// An integration as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub id: IntegrationId,
    pub account_id: AccountId,
    /// `zendesk`, `intercom`, `chatwoot` or `standard`.
    pub kind: String,
    pub name: String,
    pub agent_id: AgentId,
    pub secret_sealed: String,
    pub previous_secret_sealed: Option<String>,
    pub previous_secret_expires_at: Option<Timestamp>,
    pub reply_sealed: Option<String>,
    /// `active`, or `disabled` after the reply endpoint answered 410.
    pub status: String,
    pub disabled_reason: Option<String>,
    pub rejected_count: i64,
    pub last_rejected_at: Option<Timestamp>,
    pub last_rejected_code: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Live or test: the mode of the key that made it, and of the tasks
    /// its tickets become.
    pub mode: ApiKeyMode,
}

/// An integration to create; the caller seals its secrets with the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIntegration {
    pub id: IntegrationId,
    pub kind: String,
    /// Trimmed, bounded, free of control characters.
    pub name: IntegrationName,
    pub agent_id: AgentId,
    pub secret_sealed: String,
    pub reply_sealed: Option<String>,
    /// Live or test.
    pub mode: ApiKeyMode,
}

/// A verified, parsed delivery, as intake records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The vendor's event id, else its delivery id.
    pub dedupe_key: String,
    /// `created`, `customer_replied`, `solved`, `reopened`, `satisfaction_rated`.
    pub event: String,
    /// The vendor's ticket (conversation) id.
    pub external_ticket: String,
    pub effect: DeliveryEffect,
}

/// What a delivery does.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryEffect {
    /// A new ticket: a task for the integration's agent (its current version).
    CreateTask(Box<NewTask>),
    /// A resolution signal for the outcome of the ticket's latest task.
    Signal(Signal),
    /// Nothing but the record.
    Record,
}

/// What settling a ticket-source signal came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalSettled {
    /// Applied: the outcome's status now.
    Applied(bounty_core::outcome::OutcomeStatus),
    /// Not allowed in the outcome's status.
    NotAllowed(String),
    /// Refused and recorded: no `external` verifier, or the window is over.
    NotApplicable(String),
    /// No such outcome.
    NotFound,
}

/// Settles a ticket-source signal on one of the account's outcomes inside
/// the intake's transaction: `bounty_billing::settle`'s, passed in, as
/// the store does not decide.
pub type SettleSignal = for<'t> fn(
    &'t mut Tx,
    AccountId,
    bounty_core::OutcomeId,
    Signal,
    Actor,
    Timestamp,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<SignalSettled, StoreError>> + Send + 't>,
>;

/// What intake did.
#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    /// Applied now; `response` is what to answer (and what a duplicate
    /// will be answered).
    New {
        response: serde_json::Value,
        /// The ticket's task: made now, or (a `created` event for a ticket
        /// that has one) the one it already had.
        task: Option<TaskId>,
        /// Whether `task` was made by this delivery.
        task_created: bool,
    },
    /// Seen before: the first response.
    Duplicate { response: serde_json::Value },
    /// The account's cap leaves no room for the task; nothing recorded.
    BudgetExhausted { cap_micros: i64, committed_micros: i64 },
}

/// One accepted delivery, for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub event: String,
    pub external_ticket: String,
    pub result: String,
    pub reason: Option<String>,
    pub task_id: Option<TaskId>,
    pub received_at: Timestamp,
}

macro_rules! integration_columns {
    () => {
        "id, account_id, kind, name, agent_id, secret_sealed, previous_secret_sealed, previous_secret_expires_at,
         reply_sealed, status, disabled_reason, rejected_count, last_rejected_at, last_rejected_code, created_at,
         updated_at, livemode"
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    account_id: String,
    kind: String,
    name: String,
    agent_id: String,
    secret_sealed: String,
    previous_secret_sealed: Option<String>,
    previous_secret_expires_at: Option<Timestamp>,
    reply_sealed: Option<String>,
    status: String,
    disabled_reason: Option<String>,
    rejected_count: i64,
    last_rejected_at: Option<Timestamp>,
    last_rejected_code: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
    livemode: bool,
}

impl TryFrom<Row> for Integration {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        let bad = |c: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("integrations.{c}: {e}"));
        Ok(Integration {
            id: r.id.parse().map_err(|e| bad("id", &e))?,
            account_id: r.account_id.parse().map_err(|e| bad("account_id", &e))?,
            kind: r.kind,
            name: r.name,
            agent_id: r.agent_id.parse().map_err(|e| bad("agent_id", &e))?,
            secret_sealed: r.secret_sealed,
            previous_secret_sealed: r.previous_secret_sealed,
            previous_secret_expires_at: r.previous_secret_expires_at,
            reply_sealed: r.reply_sealed,
            status: r.status,
            disabled_reason: r.disabled_reason,
            rejected_count: r.rejected_count,
            last_rejected_at: r.last_rejected_at,
            last_rejected_code: r.last_rejected_code,
            created_at: r.created_at,
            updated_at: r.updated_at,
            mode: ApiKeyMode::from_livemode(r.livemode),
        })
    }
}

impl Store {
    /// Creates an integration for one of the account's agents.
    pub async fn create_integration(
        &self,
        account: AccountId,
        new: &NewIntegration,
    ) -> Result<Integration, StoreError> {
        let now = self.now();
        let row: Row = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "insert into integrations (id, account_id, kind, name, agent_id, secret_sealed, reply_sealed,
                     created_at, updated_at, livemode)
                 select $1, $2, $3, $4, a.id, $6, $7, $8, $8, $9 from agents a where a.account_id = $2 and a.id = $5
                 returning ",
                integration_columns!()
            ))
            .bind(new.id.to_string())
            .bind(account.to_string())
            .bind(new.kind.clone())
            .bind(new.name.as_str().to_owned())
            .bind(new.agent_id.to_string())
            .bind(new.secret_sealed.clone())
            .bind(new.reply_sealed.clone())
            .bind(now)
            .bind(new.mode.livemode())
            .fetch_optional(pool)
            .await?
            .ok_or_else(|| StoreError::Config(format!("the account has no agent {}", new.agent_id)))?
        });
        Integration::try_from(row)
    }

    /// One of the account's integrations (not deleted).
    pub async fn get_integration(
        &self,
        account: AccountId,
        id: IntegrationId,
    ) -> Result<Option<Integration>, StoreError> {
        let row: Option<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", integration_columns!(),
                " from integrations where account_id = $1 and id = $2 and deleted_at is null"
            ))
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?
        });
        row.map(Integration::try_from).transpose()
    }

    /// The integration a webhook URL names, whoever's it is: the URL is
    /// how an unauthenticated delivery finds its account. Deleted ones are
    /// not found.
    pub async fn inbound_integration(&self, id: IntegrationId) -> Result<Option<Integration>, StoreError> {
        let row: Option<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", integration_columns!(), " from integrations where id = $1 and deleted_at is null"
            ))
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?
        });
        row.map(Integration::try_from).transpose()
    }

    /// The account's integrations, newest first.
    pub async fn list_integrations(
        &self,
        account: AccountId,
        limit: PageLimit,
        after: Option<IntegrationId>,
    ) -> Result<Page<Integration>, StoreError> {
        let rows: Vec<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", integration_columns!(), " from integrations
                 where account_id = $1 and deleted_at is null and ($2 is null or id < $2)
                 order by id desc limit $3"
            ))
            .bind(account.to_string())
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        let items = rows
            .into_iter()
            .map(Integration::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, limit.get(), |i| i.id.to_string()))
    }

    /// Deletes an integration: its URL stops answering. `false` when the
    /// account has no such integration.
    pub async fn delete_integration(
        &self,
        account: AccountId,
        id: IntegrationId,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let done = on_pool!(&self.db, pool => {
            sqlx::query(
                "update integrations set deleted_at = $3, updated_at = $3
                 where account_id = $1 and id = $2 and deleted_at is null",
            )
            .bind(account.to_string())
            .bind(id.to_string())
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    /// Replaces the inbound secret; the old one is still accepted until
    /// `previous_until`. `None` when the account has no such integration.
    pub async fn rotate_integration_secret(
        &self,
        account: AccountId,
        id: IntegrationId,
        new_sealed: &str,
        previous_until: Timestamp,
    ) -> Result<Option<Integration>, StoreError> {
        let now = self.now();
        let row: Option<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "update integrations set previous_secret_sealed = secret_sealed, previous_secret_expires_at = $4,
                     secret_sealed = $3, updated_at = $5
                 where account_id = $1 and id = $2 and deleted_at is null
                 returning ",
                integration_columns!()
            ))
            .bind(account.to_string())
            .bind(id.to_string())
            .bind(new_sealed.to_owned())
            .bind(previous_until)
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        row.map(Integration::try_from).transpose()
    }

    /// Counts a delivery refused for its signature (nothing else of it is
    /// kept).
    pub async fn record_rejected_delivery(&self, id: IntegrationId, code: &str) -> Result<(), StoreError> {
        let now = self.now();
        on_pool!(&self.db, pool => {
            sqlx::query(
                "update integrations set rejected_count = rejected_count + 1, last_rejected_at = $2,
                     last_rejected_code = $3
                 where id = $1",
            )
            .bind(id.to_string())
            .bind(now)
            .bind(code.to_owned())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Disables an integration's reply-back (its endpoint answered 410).
    pub async fn disable_integration(
        &self,
        account: AccountId,
        id: IntegrationId,
        reason: &str,
    ) -> Result<(), StoreError> {
        let now = self.now();
        on_pool!(&self.db, pool => {
            sqlx::query(
                "update integrations set status = 'disabled', disabled_reason = $3, updated_at = $4
                 where account_id = $1 and id = $2",
            )
            .bind(account.to_string())
            .bind(id.to_string())
            .bind(reason.to_owned())
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The integration's accepted deliveries, newest first.
    pub async fn list_deliveries(
        &self,
        account: AccountId,
        integration: IntegrationId,
        limit: PageLimit,
        after: Option<DeliveryId>,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        type R = (
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Timestamp,
        );
        let rows: Vec<R> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, event, external_ticket, result, reason, task_id, received_at
                 from integration_deliveries
                 where account_id = $1 and integration_id = $2 and ($3 is null or id < $3)
                 order by id desc limit $4",
            )
            .bind(account.to_string())
            .bind(integration.to_string())
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        let bad = |c: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("integration_deliveries.{c}: {e}"))
        };
        let items = rows
            .into_iter()
            .map(
                |(id, event, external_ticket, result, reason, task, received_at)| {
                    Ok(DeliveryRecord {
                        id: id.parse().map_err(|e| bad("id", &e))?,
                        event,
                        external_ticket,
                        result,
                        reason,
                        task_id: task
                            .map(|t| t.parse())
                            .transpose()
                            .map_err(|e| bad("task_id", &e))?,
                        received_at,
                    })
                },
            )
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Page::from_overfetch(items, limit.get(), |d| d.id.to_string()))
    }

    /// Records a verified delivery and applies it, exactly once per dedupe
    /// key (see the module doc). A signal is settled by `settle`
    /// (settlement's, passed in by the caller) in the same transaction.
    pub async fn intake_delivery(
        &self,
        integration: &Integration,
        delivery: &Delivery,
        settle: SettleSignal,
    ) -> Result<Intake, StoreError> {
        let now = self.now();
        let account = integration.account_id;
        let delivery_id = DeliveryId::new();
        let mut tx = self.begin().await?;
        let inserted: Option<(String,)> = tx
            .fetch_optional(
                "insert into integration_deliveries (id, account_id, integration_id, dedupe_key, event,
                     external_ticket, result, response, received_at)
                 values ($1, $2, $3, $4, $5, $6, 'recorded', '{}', $7)
                 on conflict (integration_id, dedupe_key) do nothing
                 returning id",
                args![
                    delivery_id.to_string(),
                    account.to_string(),
                    integration.id.to_string(),
                    delivery.dedupe_key.clone(),
                    delivery.event.clone(),
                    delivery.external_ticket.clone(),
                    now
                ],
            )
            .await?;
        if inserted.is_none() {
            let (response,): (String,) = tx
                .fetch_one(
                    "select response from integration_deliveries where integration_id = $1 and dedupe_key = $2",
                    args![integration.id.to_string(), delivery.dedupe_key.clone()],
                )
                .await?;
            tx.commit().await?;
            let response = serde_json::from_str(&response)
                .map_err(|e| StoreError::Corrupt(format!("integration_deliveries.response: {e}")))?;
            return Ok(Intake::Duplicate { response });
        }
        let (result, reason, task): (&str, Option<String>, Option<TaskId>) = match &delivery.effect {
            DeliveryEffect::CreateTask(new) => {
                let mut new = new.as_ref().clone();
                new.mode = integration.mode;
                let ticket = IntakeTicket {
                    integration: &integration.id.to_string(),
                    ticket: &delivery.external_ticket,
                };
                match insert_task(&mut tx, account, &new, Some(ticket), now).await? {
                    Inserted::Row(row) => {
                        let id: TaskId = row
                            .id
                            .parse()
                            .map_err(|e| StoreError::Corrupt(format!("tasks.id: {e}")))?;
                        ("task_created", None, Some(id))
                    }
                    Inserted::BudgetExhausted {
                        cap_micros,
                        committed_micros,
                    } => {
                        // Dropping the transaction forgets the delivery too,
                        // so the helpdesk's retry can create it later.
                        return Ok(Intake::BudgetExhausted {
                            cap_micros,
                            committed_micros,
                        });
                    }
                    Inserted::Conflict => {
                        // The ticket has its task already (a `created` event
                        // sent again under another delivery id): one ticket
                        // is one task, so nothing new is made or billed.
                        let (existing,): (String,) = tx
                            .fetch_one(
                                "select id from tasks where integration_id = $1 and intake_ticket = $2",
                                args![integration.id.to_string(), delivery.external_ticket.clone()],
                            )
                            .await?;
                        let existing: TaskId = existing
                            .parse()
                            .map_err(|e| StoreError::Corrupt(format!("tasks.id: {e}")))?;
                        (
                            "task_exists",
                            Some(format!("the ticket already has task {existing}")),
                            Some(existing),
                        )
                    }
                }
            }
            DeliveryEffect::Signal(signal) => {
                let outcome: Option<(String,)> = tx
                    .fetch_optional(
                        "select o.id from tasks t join outcomes o on o.task_id = t.id
                         where t.account_id = $1 and t.integration_id = $2 and t.external_ref = $3
                         order by t.id desc limit 1",
                        args![
                            account.to_string(),
                            integration.id.to_string(),
                            delivery.external_ticket.clone()
                        ],
                    )
                    .await?;
                match outcome {
                    None => (
                        "recorded",
                        Some("the ticket has no finished task yet".to_owned()),
                        None,
                    ),
                    Some((outcome,)) => {
                        let outcome = outcome
                            .parse()
                            .map_err(|e| StoreError::Corrupt(format!("outcomes.id: {e}")))?;
                        let actor = Actor::Integration(integration.id);
                        match settle(&mut tx, account, outcome, *signal, actor, now).await? {
                            SignalSettled::Applied(status) => (
                                "signal_applied",
                                Some(format!("outcome {outcome} is now {}", status.as_str())),
                                None,
                            ),
                            SignalSettled::NotAllowed(why) => ("recorded", Some(why), None),
                            // Refused and kept on the receipt: the outcome's
                            // policy does not await the helpdesk, or its
                            // window is over.
                            SignalSettled::NotApplicable(why) => ("signal_not_applicable", Some(why), None),
                            SignalSettled::NotFound => {
                                ("recorded", Some("the ticket's outcome is gone".to_owned()), None)
                            }
                        }
                    }
                }
            }
            DeliveryEffect::Record => ("recorded", None, None),
        };
        let mut response = serde_json::json!({
            "status": "accepted",
            "delivery_id": delivery_id.to_string(),
            "event": delivery.event,
            "result": result,
        });
        if let Some(task) = task {
            response["task_id"] = serde_json::json!(task.to_string());
        }
        if let Some(reason) = &reason {
            response["reason"] = serde_json::json!(reason);
        }
        tx.execute(
            "update integration_deliveries set result = $2, reason = $3, task_id = $4, response = $5 where id = $1",
            args![
                delivery_id.to_string(),
                result,
                reason,
                task.map(|t| t.to_string()),
                response.to_string()
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(Intake::New {
            response,
            task,
            task_created: result == "task_created",
        })
    }
}

/// Writes the reply for a finished ticket task inside the transaction that
/// finishes it: the agent's output when the outcome is not failed, a
/// hand-off note otherwise. Tasks not from a helpdesk get none.
pub async fn enqueue_reply(
    tx: &mut Tx,
    account: AccountId,
    task: TaskId,
    now: Timestamp,
) -> Result<(), StoreError> {
    type R = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let row: Option<R> = tx
        .fetch_optional(
            "select t.integration_id, t.external_ref, t.output, o.status, t.last_error_message
             from tasks t left join outcomes o on o.task_id = t.id
             where t.account_id = $1 and t.id = $2",
            args![account.to_string(), task.to_string()],
        )
        .await?;
    let Some((Some(integration), Some(ticket), output, status, error)) = row else {
        return Ok(());
    };
    let resolved =
        status.as_deref() != Some("failed") && output.as_deref().is_some_and(|o| !o.trim().is_empty());
    let payload = if resolved {
        serde_json::json!({
            "integration_id": integration,
            "ticket": ticket,
            "task_id": task.to_string(),
            "action": "resolve",
            "body": output,
            "outcome_status": status,
        })
    } else {
        let why = error.unwrap_or_else(|| "its answer did not pass verification".to_owned());
        serde_json::json!({
            "integration_id": integration,
            "ticket": ticket,
            "task_id": task.to_string(),
            "action": "handoff",
            "note": format!(
                "Bounty's agent could not resolve this ticket ({why}). It is handed to a person; \
                 nothing is charged for it."
            ),
            "outcome_status": status,
        })
    };
    tx.execute(
        "insert into outbox (id, account_id, kind, transfer_id, payload, idempotency_key, status, attempts,
             next_attempt_at, created_at)
         values ($1, $2, 'helpdesk_reply', null, $3, $4, 'pending', 0, $5, $5)
         on conflict (idempotency_key) do nothing",
        args![
            OutboxId::new().to_string(),
            account.to_string(),
            payload.to_string(),
            format!("helpdesk_reply:{task}"),
            now
        ],
    )
    .await?;
    Ok(())
}
