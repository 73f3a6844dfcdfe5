//! The transactional outbox: external effects written in the transaction
//! of the change that causes them, and sent later by a sender with the
//! row's stable idempotency key. The kinds and the meter events' payloads
//! are `bounty_core::outbox`'s.
//!
//! Until a sender is configured (Stripe), rows wait as `pending`: the
//! ledger is complete on its own and nothing is lost.
//!
//! Every Stripe row carries its mode. The live sender claims only live
//! rows, with the account's live customer; test-mode rows (a `bk_test_`
//! key's charges) are claimed only by the test-mode sender, which exists
//! only when `stripe.test_secret_key` is set, and go to the account's
//! customer in Stripe's test mode (made on the first test charge). With no
//! test key they are never sent.

use bounty_core::outbox::{OutboxKind, OutboxStatus};
use bounty_core::{AccountId, ApiKeyMode, OutboxId, PageLimit, Timestamp};

use crate::db::on_pool;
use crate::tx::{Tx, args};
use crate::{Page, Store, StoreError};

pub use bounty_core::outbox::METER_EVENT_NAME;

/// One outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: OutboxId,
    pub account_id: AccountId,
    pub kind: OutboxKind,
    pub transfer_id: Option<String>,
    pub payload: serde_json::Value,
    pub idempotency_key: String,
    pub status: OutboxStatus,
    /// Sends tried that failed (a park is the last). Neither a claim nor
    /// a deferral counts, so a crash or a wait never brings the backoff
    /// forward.
    pub attempts: i32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    /// How it was delivered, where there is a choice (a reversal:
    /// `cancel` or `credit`).
    pub sent_as: Option<String>,
    /// Live or test: which Stripe mode (and sender) it is for.
    pub mode: ApiKeyMode,
}

/// What delivering a row produced, recorded with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// The Stripe object created: a customer (`cus_…`) or a subscription
    /// (`sub_…`), stored on the account.
    pub object_id: Option<String>,
    /// How it was delivered (a reversal: `cancel` or `credit`).
    pub sent_as: Option<&'static str>,
}

/// Pending work in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending: i64,
    pub failed: i64,
    /// When the oldest pending row was written.
    pub oldest_pending: Option<Timestamp>,
}

/// A sender's loop: runs `drain` (one claimed batch, returning how many
/// rows it claimed) until `cancel`, again at once while it finds work and
/// after `poll` when it finds none. A database error is logged and waited
/// out like an empty batch. Every sender (Stripe, replies, webhooks, the
/// mailer) runs on it.
pub async fn drain_until_cancelled<F, Fut>(
    name: &'static str,
    poll: std::time::Duration,
    cancel: &tokio_util::sync::CancellationToken,
    mut drain: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, StoreError>>,
{
    tracing::info!(sender = name, "sender started");
    while !cancel.is_cancelled() {
        let claimed = match drain().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(sender = name, error = %e, "sender could not reach the database");
                0
            }
        };
        if claimed > 0 {
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(poll) => {}
        }
    }
    tracing::info!(sender = name, "sender stopped");
}

/// Adds a row to the outbox inside the caller's transaction. A test-mode
/// row's idempotency key says so (`…:test:…`), so it can never collide
/// with a live one in Stripe.
pub async fn enqueue(
    tx: &mut Tx,
    account: AccountId,
    mode: ApiKeyMode,
    kind: OutboxKind,
    transfer_id: Option<&str>,
    payload: serde_json::Value,
    now: Timestamp,
) -> Result<(), StoreError> {
    let kind = kind.as_str();
    let test = if mode.livemode() { "" } else { "test:" };
    let account = account.to_string();
    let key = format!("{kind}:{test}{}", transfer_id.unwrap_or(&account));
    tx.execute(
        "insert into outbox (id, account_id, kind, transfer_id, payload, idempotency_key, status, attempts,
             next_attempt_at, created_at, livemode)
         values ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7, $8)",
        args![
            OutboxId::new().to_string(),
            account,
            kind,
            transfer_id.map(str::to_owned),
            payload.to_string(),
            key,
            now,
            mode.livemode()
        ],
    )
    .await?;
    Ok(())
}

/// Queues the account's customer in Stripe's test mode, once: written with
/// its first test-mode charge, so a test-mode sender has a customer to
/// meter against. A second call changes nothing.
pub async fn ensure_test_customer(tx: &mut Tx, account: AccountId, now: Timestamp) -> Result<(), StoreError> {
    let (name,): (String,) = tx
        .fetch_one("select name from accounts where id = $1", args![account])
        .await?;
    tx.execute(
        "insert into outbox (id, account_id, kind, transfer_id, payload, idempotency_key, status, attempts,
             next_attempt_at, created_at, livemode)
         values ($1, $2, 'stripe_customer', null, $3, $4, 'pending', 0, $5, $5, false)
         on conflict (idempotency_key) do nothing",
        args![
            OutboxId::new().to_string(),
            account,
            serde_json::json!({"account_id": account, "name": name}).to_string(),
            format!("stripe_customer:test:{account}"),
            now
        ],
    )
    .await?;
    Ok(())
}

macro_rules! outbox_columns {
    () => {
        "id, account_id, kind, transfer_id, payload, idempotency_key, status, attempts, next_attempt_at,
         last_error, created_at, sent_at, sent_as, livemode"
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    account_id: String,
    kind: String,
    transfer_id: Option<String>,
    payload: String,
    idempotency_key: String,
    status: String,
    attempts: i32,
    next_attempt_at: Timestamp,
    last_error: Option<String>,
    created_at: Timestamp,
    sent_at: Option<Timestamp>,
    sent_as: Option<String>,
    livemode: bool,
}

impl TryFrom<Row> for OutboxItem {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        let bad = |c: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("outbox.{c}: {e}"));
        Ok(OutboxItem {
            id: r.id.parse().map_err(|e| bad("id", &e))?,
            account_id: r.account_id.parse().map_err(|e| bad("account_id", &e))?,
            kind: r.kind.parse().map_err(|e| bad("kind", &e))?,
            transfer_id: r.transfer_id,
            payload: serde_json::from_str(&r.payload).map_err(|e| bad("payload", &e))?,
            idempotency_key: r.idempotency_key,
            status: r.status.parse().map_err(|e| bad("status", &e))?,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            created_at: r.created_at,
            sent_at: r.sent_at,
            sent_as: r.sent_as,
            mode: ApiKeyMode::from_livemode(r.livemode),
        })
    }
}

impl Store {
    /// Outbox rows of every account (operator view), newest first,
    /// optionally of one status.
    pub async fn admin_list_outbox(
        &self,
        status: Option<OutboxStatus>,
        limit: PageLimit,
        after: Option<OutboxId>,
    ) -> Result<Page<OutboxItem>, StoreError> {
        let rows: Vec<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", outbox_columns!(), " from outbox
                 where ($1 is null or status = $1) and ($2 is null or id < $2)
                 order by id desc limit $3"
            ))
            .bind(status.map(|s| s.as_str()))
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        let items = rows
            .into_iter()
            .map(OutboxItem::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, limit.get(), |o| o.id.to_string()))
    }

    /// One account's outbox rows, oldest first.
    pub async fn outbox_of(&self, account: AccountId) -> Result<Vec<OutboxItem>, StoreError> {
        let rows: Vec<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!("select ", outbox_columns!(), " from outbox where account_id = $1 order by id"))
                .bind(account.to_string())
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(OutboxItem::try_from).collect()
    }

    /// Puts a failed row back to pending, due now. `false` when there is
    /// no failed row with that id.
    pub async fn admin_retry_outbox(&self, id: OutboxId) -> Result<bool, StoreError> {
        let now = self.now();
        let row: Option<(String,)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "update outbox set status = 'pending', next_attempt_at = $2
                 where id = $1 and status = 'failed' returning id",
            )
            .bind(id.to_string())
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.is_some())
    }

    /// [`Store::admin_retry_outbox`] under a fresh idempotency key, with
    /// its tries counted from zero: for a request whose key Stripe answers
    /// with a saved 500. The row keeps its own `idempotency_key` (what
    /// stops a second row); the suffix the sender appends to it is set in
    /// its payload (`key_suffix`, `:k` and the time).
    pub async fn admin_retry_outbox_new_key(&self, id: OutboxId) -> Result<bool, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let found: Option<(String,)> = tx
            .fetch_optional(
                "select payload from outbox where id = $1 and status = 'failed'",
                args![id.to_string()],
            )
            .await?;
        let Some((payload,)) = found else {
            return Ok(false);
        };
        let mut payload: serde_json::Value = serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("outbox.payload: {e}")))?;
        if let Some(object) = payload.as_object_mut() {
            object.insert(
                "key_suffix".to_owned(),
                serde_json::Value::String(format!(":k{}", now.timestamp_millis())),
            );
        }
        tx.execute(
            "update outbox set status = 'pending', next_attempt_at = $2, attempts = 0, payload = $3
             where id = $1 and status = 'failed'",
            args![id.to_string(), now, payload.to_string()],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The status of the account's outbox row of `kind` for a transfer
    /// (`pending`, `sent`, `failed`), if there is one.
    pub async fn outbox_status(
        &self,
        account: AccountId,
        transfer_id: &str,
        kind: OutboxKind,
    ) -> Result<Option<OutboxStatus>, StoreError> {
        let row: Option<(String,)> = on_pool!(&self.db, pool => {
            sqlx::query_as("select status from outbox where account_id = $1 and transfer_id = $2 and kind = $3")
                .bind(account.to_string())
                .bind(transfer_id.to_owned())
                .bind(kind.as_str())
                .fetch_optional(pool)
                .await?
        });
        row.map(|(s,)| {
            s.parse()
                .map_err(|e| StoreError::Corrupt(format!("outbox.status: {e}")))
        })
        .transpose()
    }

    /// Counts of pending and failed live rows, and the oldest pending one.
    /// Test-mode rows are left out: without a test key they are never
    /// sent, and are no backlog.
    pub async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let (pending, failed, oldest): (i64, i64, Option<Timestamp>) = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select
                     (select count(*) from outbox where status = 'pending' and livemode),
                     (select count(*) from outbox where status = 'failed' and livemode),
                     (select min(created_at) from outbox where status = 'pending' and livemode)",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(OutboxStats {
            pending,
            failed,
            oldest_pending: oldest,
        })
    }
}

/// An outbox row claimed by a sender, with the account's Stripe customer
/// when it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxClaim {
    pub item: OutboxItem,
    pub stripe_customer_id: Option<String>,
}

/// Which sender a row is for: each claims only its own.
#[derive(Debug, Clone, Copy)]
enum Lane {
    /// Every Stripe kind, of one mode.
    Stripe = 0,
    /// `helpdesk_reply`.
    Replies = 1,
    /// `webhook_event`.
    Webhooks = 2,
}

const CLAIM_SQLITE: &str = concat!(
    "update outbox set lease_until = $2
     where id in (
         select id from outbox
         where status = 'pending' and next_attempt_at <= $1 and (lease_until is null or lease_until <= $1)
           and (case when kind = 'helpdesk_reply' then 1 when kind = 'webhook_event' then 2 else 0 end) = $4
           and ($4 <> 0 or livemode = $5)
         order by next_attempt_at, id
         limit $3)
     returning ",
    outbox_columns!()
);

const CLAIM_POSTGRES: &str = concat!(
    "update outbox set lease_until = $2
     where id in (
         select id from outbox
         where status = 'pending' and next_attempt_at <= $1 and (lease_until is null or lease_until <= $1)
           and (case when kind = 'helpdesk_reply' then 1 when kind = 'webhook_event' then 2 else 0 end) = $4
           and ($4 <> 0 or livemode = $5)
         order by next_attempt_at, id
         limit $3
         for update skip locked)
     returning ",
    outbox_columns!()
);

impl Store {
    /// Claims up to `limit` due Stripe rows of one mode (every kind but
    /// `helpdesk_reply`) for `lease`: until it expires no other sender
    /// takes them. A sender that dies leaves them to be claimed again, and
    /// resent with the same idempotency key. Each claim carries the
    /// account's customer in that mode.
    pub async fn claim_outbox(
        &self,
        mode: ApiKeyMode,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<OutboxClaim>, StoreError> {
        self.claim_outbox_rows(Lane::Stripe, mode, limit, lease).await
    }

    /// Claims up to `limit` due `helpdesk_reply` rows for `lease`, like
    /// [`Store::claim_outbox`]: replies have their own sender.
    pub async fn claim_replies(
        &self,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<OutboxClaim>, StoreError> {
        self.claim_outbox_rows(Lane::Replies, ApiKeyMode::Live, limit, lease)
            .await
    }

    /// Claims up to `limit` due `webhook_event` rows (both modes: a test
    /// endpoint gets test events) for `lease`: webhooks have their own
    /// sender.
    pub async fn claim_webhooks(
        &self,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<OutboxClaim>, StoreError> {
        self.claim_outbox_rows(Lane::Webhooks, ApiKeyMode::Live, limit, lease)
            .await
    }

    async fn claim_outbox_rows(
        &self,
        lane: Lane,
        mode: ApiKeyMode,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<OutboxClaim>, StoreError> {
        let now = self.now();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX / 2);
        let sql = match self.db {
            crate::db::Db::Sqlite(_) => CLAIM_SQLITE,
            crate::db::Db::Postgres(_) => CLAIM_POSTGRES,
        };
        let mut tx = self.begin().await?;
        let rows: Vec<Row> = tx
            .fetch_all(
                sql,
                args![now, until, i64::from(limit), lane as i32, mode.livemode()],
            )
            .await?;
        let mut claims = Vec::with_capacity(rows.len());
        for row in rows {
            let item = OutboxItem::try_from(row)?;
            let sql = if item.mode.livemode() {
                "select stripe_customer_id from accounts where id = $1"
            } else {
                "select stripe_test_customer_id from accounts where id = $1"
            };
            let (customer,): (Option<String>,) =
                tx.fetch_one(sql, args![item.account_id.to_string()]).await?;
            claims.push(OutboxClaim {
                item,
                stripe_customer_id: customer,
            });
        }
        tx.commit().await?;
        Ok(claims)
    }

    /// Marks a row sent. A customer's or subscription's Stripe id is
    /// stored on the account in the same transaction, so a crash leaves
    /// either both or neither.
    pub async fn outbox_sent(&self, id: OutboxId, delivered: &Delivered) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let row: Option<(String, String, bool)> = tx
            .fetch_optional(
                "update outbox set status = 'sent', sent_at = $2, lease_until = null, last_error = null,
                     sent_as = $3
                 where id = $1 and status = 'pending' returning account_id, kind, livemode",
                args![id.to_string(), now, delivered.sent_as.map(str::to_owned)],
            )
            .await?;
        if let (Some((account, kind, livemode)), Some(object)) = (row, delivered.object_id.as_deref()) {
            let sql = match (kind.as_str(), livemode) {
                ("stripe_customer", true) => Some(
                    "update accounts set stripe_customer_id = coalesce(stripe_customer_id, $2) where id = $1",
                ),
                ("stripe_customer", false) => Some(
                    "update accounts set stripe_test_customer_id = coalesce(stripe_test_customer_id, $2)
                     where id = $1",
                ),
                ("stripe_subscription", true) => Some(
                    "update accounts set stripe_subscription_id = coalesce(stripe_subscription_id, $2)
                     where id = $1",
                ),
                _ => None,
            };
            if let Some(sql) = sql {
                tx.execute(sql, args![account, object]).await?;
            }
        }
        tx.commit().await
    }

    /// Leaves a row pending, due again at `at`, with the error recorded.
    /// `failed`: the send was tried and failed, so it counts as an
    /// attempt; a deferral (waiting for a customer, for setup, for another
    /// row) does not. A claim never counts: a claim lost to a crash costs
    /// the row no try.
    pub async fn outbox_retry_at(
        &self,
        id: OutboxId,
        error: &str,
        at: Timestamp,
        failed: bool,
    ) -> Result<(), StoreError> {
        on_pool!(&self.db, pool => {
            sqlx::query(
                "update outbox set next_attempt_at = $2, last_error = $3, lease_until = null,
                     attempts = attempts + (case when $4 then 1 else 0 end)
                 where id = $1 and status = 'pending'",
            )
            .bind(id.to_string())
            .bind(at)
            .bind(error.to_owned())
            .bind(failed)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Gives claimed rows back unsent (a sender stopping): due again at
    /// once for any sender, with no attempt counted.
    pub async fn outbox_release(&self, ids: &[OutboxId]) -> Result<(), StoreError> {
        for id in ids {
            on_pool!(&self.db, pool => {
                sqlx::query("update outbox set lease_until = null where id = $1 and status = 'pending'")
                    .bind(id.to_string())
                    .execute(pool)
                    .await?;
            });
        }
        Ok(())
    }

    /// Parks a row as failed after a permanent error; an operator can
    /// inspect and retry it (`bounty outbox retry`), and is told.
    pub async fn outbox_park(&self, id: OutboxId, error: &str) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let parked: Option<(String, String)> = tx
            .fetch_optional(
                "update outbox set status = 'failed', last_error = $2, lease_until = null, attempts = attempts + 1
                 where id = $1 and status = 'pending' returning kind, account_id",
                args![id.to_string(), error],
            )
            .await?;
        if let Some((kind, account)) = parked {
            let notice = crate::notifications::Notice {
                audience: crate::notifications::Audience::Operator,
                kind: "outbox.parked",
                title: format!("A {kind} outbox row was parked"),
                body: format!(
                    "Row {id} of account {account} failed permanently: {error}. \
                     See `bounty outbox list --status failed`; `bounty outbox retry {id}` sends it again."
                ),
            };
            crate::notifications::notify(&mut tx, &notice, now).await?;
        }
        tx.commit().await
    }
}
