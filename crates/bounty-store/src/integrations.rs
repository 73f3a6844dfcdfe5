//! Helpdesk integrations: their settings (secrets sealed by the caller;
//! the store never sees them in the clear), rotation, the refused-delivery
//! counter, and the replies written back through the outbox.
//!
//! What an inbound delivery does is decided above the store
//! (`bounty_integrations::intake`); its records are written through the
//! repository functions of `deliveries.rs`.
//!
//! Replies are written in the transaction that finishes the ticket's task
//! (`helpdesk_reply`, keyed by the task so there is one per task): the
//! agent's answer when its outcome is not failed, a hand-off note to a
//! person when it is.

use bounty_core::{
    AccountId, AgentId, ApiKeyMode, IntegrationId, IntegrationKind, IntegrationName, IntegrationState,
    OutboxId, PageLimit, TaskId, Timestamp,
};

use crate::db::on_pool;
use crate::tx::{Tx, args};
use crate::{Page, Store, StoreError};

/// An integration as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub id: IntegrationId,
    pub account_id: AccountId,
    /// The vendor it speaks.
    pub kind: IntegrationKind,
    pub name: String,
    pub agent_id: AgentId,
    pub secret_sealed: String,
    pub previous_secret_sealed: Option<String>,
    pub previous_secret_expires_at: Option<Timestamp>,
    pub reply_sealed: Option<String>,
    /// `Active`, or `Disabled` after the reply endpoint answered 410.
    pub state: IntegrationState,
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
    pub kind: IntegrationKind,
    /// Trimmed, bounded, free of control characters.
    pub name: IntegrationName,
    pub agent_id: AgentId,
    pub secret_sealed: String,
    pub reply_sealed: Option<String>,
    /// Live or test.
    pub mode: ApiKeyMode,
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
            kind: r.kind.parse().map_err(|e| bad("kind", &e))?,
            name: r.name,
            agent_id: r.agent_id.parse().map_err(|e| bad("agent_id", &e))?,
            secret_sealed: r.secret_sealed,
            previous_secret_sealed: r.previous_secret_sealed,
            previous_secret_expires_at: r.previous_secret_expires_at,
            reply_sealed: r.reply_sealed,
            state: r.status.parse().map_err(|e| bad("status", &e))?,
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
            .bind(new.kind.as_str())
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
    ///
    /// Read through this process's cache: an integration read less than
    /// [`INBOUND_CACHE_TTL`] ago is not read again. This process's own
    /// changes (delete, rotate, enable, disable) drop it from the cache at
    /// once; another process's are seen within the TTL, which is the bound
    /// on staleness. A delivery whose signature fails against a cached
    /// secret is checked again with [`Store::inbound_integration_fresh`].
    pub async fn inbound_integration(&self, id: IntegrationId) -> Result<Option<Integration>, StoreError> {
        if let Some(hit) = self.inbound_cache.get(id) {
            return Ok(Some(hit));
        }
        self.inbound_integration_fresh(id).await
    }

    /// [`Store::inbound_integration`] read from the database, the cache
    /// refreshed with it.
    pub async fn inbound_integration_fresh(
        &self,
        id: IntegrationId,
    ) -> Result<Option<Integration>, StoreError> {
        let row: Option<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", integration_columns!(), " from integrations where id = $1 and deleted_at is null"
            ))
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?
        });
        let found = row.map(Integration::try_from).transpose()?;
        match &found {
            Some(integration) => self.inbound_cache.put(integration.clone()),
            None => self.inbound_cache.forget(id),
        }
        Ok(found)
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
        self.inbound_cache.forget(id);
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
        self.inbound_cache.forget(id);
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

    /// Turns a disabled integration's replies back on and queues again,
    /// oldest first, every reply of it that was parked: due at once with
    /// no attempt counted. `None` when the account has no such integration;
    /// else how many replies were queued (0 for one that was not disabled).
    pub async fn enable_integration(
        &self,
        account: AccountId,
        id: IntegrationId,
    ) -> Result<Option<u64>, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let found: Option<(String,)> = tx
            .fetch_optional(
                "select status from integrations where account_id = $1 and id = $2 and deleted_at is null",
                args![account, id.to_string()],
            )
            .await?;
        let Some((status,)) = found else {
            return Ok(None);
        };
        if status != IntegrationState::Disabled.as_str() {
            return Ok(Some(0));
        }
        tx.execute(
            "update integrations set status = $3, disabled_reason = null, updated_at = $4
             where account_id = $1 and id = $2",
            args![account, id.to_string(), IntegrationState::Active.as_str(), now],
        )
        .await?;
        let parked: Vec<(String, String)> = tx
            .fetch_all(
                "select id, payload from outbox
                 where account_id = $1 and kind = 'helpdesk_reply' and status = 'failed' order by id",
                args![account],
            )
            .await?;
        let mut queued = 0;
        let wanted = id.to_string();
        for (row, payload) in parked {
            let payload: serde_json::Value = serde_json::from_str(&payload)
                .map_err(|e| StoreError::Corrupt(format!("outbox.payload: {e}")))?;
            if payload["integration_id"].as_str() != Some(wanted.as_str()) {
                continue;
            }
            // Due at once, in id (creation) order: the claim takes them
            // oldest first.
            queued += tx
                .execute(
                    "update outbox set status = 'pending', attempts = 0, next_attempt_at = $2, lease_until = null,
                         last_error = 'queued again: the integration was re-enabled'
                     where id = $1 and status = 'failed'",
                    args![row, now],
                )
                .await?;
        }
        tx.commit().await?;
        self.inbound_cache.forget(id);
        tracing::info!(account.id = %account, integration.id = %id, replies = queued, "integration re-enabled");
        Ok(Some(queued))
    }

    /// Disables an integration's reply-back (its endpoint answered 410).
    pub async fn disable_integration(
        &self,
        account: AccountId,
        id: IntegrationId,
        reason: &str,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let changed = tx
            .execute(
                "update integrations set status = $5, disabled_reason = $3, updated_at = $4
                 where account_id = $1 and id = $2 and status <> $5",
                args![
                    account,
                    id.to_string(),
                    reason,
                    now,
                    IntegrationState::Disabled.as_str()
                ],
            )
            .await?;
        if changed > 0 {
            let notice = crate::notifications::Notice {
                audience: crate::notifications::Audience::Account(account),
                kind: "integration.disabled",
                title: format!("Replies of integration {id} were turned off"),
                body: format!(
                    "{reason}. Answers wait parked until it is re-enabled (POST /v1/integrations/{id}/enable \
                     or its dashboard page), then they are sent, oldest first."
                ),
            };
            crate::notifications::notify(&mut tx, &notice, now).await?;
        }
        tx.commit().await?;
        self.inbound_cache.forget(id);
        Ok(())
    }
}

/// What a finished turn posts back to its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketReply<'a> {
    /// The turn's answer (the task's output), posted for the customer; a
    /// blank answer is handed off instead.
    Answer,
    /// The agent handed the ticket to a person, saying why (its `handoff`
    /// tool, or a verifier failure after the last cascade step).
    HandedOff { reason: &'a str },
    /// The agent could not resolve the ticket (its answer failed
    /// verification, or the task failed: `why` says which).
    NotResolved { why: &'a str },
}

/// Writes the reply of a finished turn of a ticket task inside the
/// transaction that finishes it: the answer, or a hand-off note (an
/// internal note the customer never sees). Tasks not from a helpdesk get
/// none. Each turn has its own reply, exactly once: the outbox key is
/// `helpdesk_reply:{task}` for the first turn (as before conversations)
/// and `helpdesk_reply:{task}:{turn}` after, `turn` being the task's
/// current turn.
pub async fn enqueue_reply(
    tx: &mut Tx,
    account: AccountId,
    task: TaskId,
    reply: TicketReply<'_>,
    now: Timestamp,
) -> Result<(), StoreError> {
    type R = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        i32,
    );
    let row: Option<R> = tx
        .fetch_optional(
            "select t.integration_id, t.external_ref, t.output, o.status, t.turn
             from tasks t left join outcomes o on o.task_id = t.id
             where t.account_id = $1 and t.id = $2",
            args![account.to_string(), task.to_string()],
        )
        .await?;
    let Some((Some(integration), Some(ticket), output, status, turn)) = row else {
        return Ok(());
    };
    let answer = output.filter(|o| !o.trim().is_empty());
    let payload = match (reply, answer) {
        (TicketReply::Answer, Some(body)) => serde_json::json!({
            "integration_id": integration,
            "ticket": ticket,
            "task_id": task.to_string(),
            "action": "resolve",
            "body": body,
            "outcome_status": status,
            "turn": turn,
        }),
        (reply, _) => {
            let note = match reply {
                TicketReply::HandedOff { reason } => format!(
                    "Bounty's agent handed this ticket to a person: {}. Nothing is charged for it.",
                    reason.trim()
                ),
                TicketReply::NotResolved { why } => format!(
                    "Bounty's agent could not resolve this ticket ({why}). It is handed to a person; \
                     nothing is charged for it."
                ),
                TicketReply::Answer => {
                    "Bounty's agent could not resolve this ticket (its answer was empty). \
                     It is handed to a person; nothing is charged for it."
                        .to_owned()
                }
            };
            serde_json::json!({
                "integration_id": integration,
                "ticket": ticket,
                "task_id": task.to_string(),
                "action": "handoff",
                "note": note,
                "outcome_status": status,
                "turn": turn,
            })
        }
    };
    let key = if turn <= 1 {
        format!("helpdesk_reply:{task}")
    } else {
        format!("helpdesk_reply:{task}:{turn}")
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
            key,
            now
        ],
    )
    .await?;
    Ok(())
}

/// How long [`Store::inbound_integration`] trusts a cached integration:
/// the bound on how late this process sees another process delete an
/// integration or rotate its secret.
pub const INBOUND_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// The integrations webhook URLs named lately, shared by every clone of a
/// store.
#[derive(Default)]
pub(crate) struct InboundCache {
    entries: std::sync::Mutex<std::collections::HashMap<IntegrationId, (Integration, std::time::Instant)>>,
}

impl InboundCache {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<IntegrationId, (Integration, std::time::Instant)>>
    {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, id: IntegrationId) -> Option<Integration> {
        let entries = self.lock();
        let (integration, read) = entries.get(&id)?;
        (read.elapsed() < INBOUND_CACHE_TTL).then(|| integration.clone())
    }

    fn put(&self, integration: Integration) {
        let mut entries = self.lock();
        // Only integrations that exist are kept, and a stale entry is
        // replaced on its next read: the map holds at most every live
        // integration once. Expired entries go when it grows.
        if entries.len() >= 4096 {
            entries.retain(|_, (_, read)| read.elapsed() < INBOUND_CACHE_TTL);
        }
        entries.insert(integration.id, (integration, std::time::Instant::now()));
    }

    pub(crate) fn forget(&self, id: IntegrationId) {
        self.lock().remove(&id);
    }
}
