//! Notices to people: an account's owners, or the operator.
//!
//! [`notify`] is called inside the transaction of the cause (a cap alert,
//! low credits, a webhook endpoint disabled, a dispute decided, an outbox
//! row parked), so a notice exists exactly when its cause does. It is
//! logged there too. The dashboard lists the unread ones (the bell); the
//! mailer claims the pending ones and emails them, when one is configured.

use bounty_core::{AccountId, NotificationId, PageLimit, Timestamp};

use crate::db::on_pool;
use crate::page::Page;
use crate::tx::{Tx, args};
use crate::{Store, StoreError};

/// Who a notice is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The account's owners.
    Account(AccountId),
    /// The operator running Bounty.
    Operator,
}

/// A notice to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub audience: Audience,
    /// A stable name: `budget.threshold_reached`, `credits.low`,
    /// `webhook_endpoint.disabled`, `dispute.decided`, `outbox.parked`.
    pub kind: &'static str,
    pub title: String,
    pub body: String,
}

/// A notice as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: NotificationId,
    pub account_id: Option<AccountId>,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub created_at: Timestamp,
    pub read_at: Option<Timestamp>,
    /// `pending`, `sent`, `failed` or `expired`.
    pub email_state: String,
}

type Row = (
    String,
    Option<String>,
    String,
    String,
    String,
    Timestamp,
    Option<Timestamp>,
    String,
);

fn of_row(r: Row) -> Result<Notification, StoreError> {
    let bad = |c: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("notifications.{c}: {e}"));
    Ok(Notification {
        id: r.0.parse().map_err(|e| bad("id", &e))?,
        account_id: r
            .1
            .map(|a| a.parse().map_err(|e| bad("account_id", &e)))
            .transpose()?,
        kind: r.2,
        title: r.3,
        body: r.4,
        created_at: r.5,
        read_at: r.6,
        email_state: r.7,
    })
}

/// Writes a notice inside the caller's transaction, and logs it.
pub async fn notify(tx: &mut Tx, notice: &Notice, now: Timestamp) -> Result<NotificationId, StoreError> {
    let id = NotificationId::new();
    let (audience, account) = match notice.audience {
        Audience::Account(a) => ("account", Some(a.to_string())),
        Audience::Operator => ("operator", None),
    };
    tx.execute(
        "insert into notifications (id, audience, account_id, kind, title, body, created_at, email_state, email_attempts)
         values ($1, $2, $3, $4, $5, $6, $7, 'pending', 0)",
        args![
            id.to_string(),
            audience,
            account.clone(),
            notice.kind,
            notice.title.clone(),
            notice.body.clone(),
            now
        ],
    )
    .await?;
    tracing::warn!(notification.id = %id, audience, account.id = account.as_deref().unwrap_or("-"),
        kind = notice.kind, title = %notice.title, "notice");
    Ok(id)
}

impl Store {
    /// Writes an operator notice of `notice.kind` unless one of that kind
    /// was written at or after `since` (the same trouble, noticed by
    /// another process or earlier in the same run). Returns whether it
    /// wrote one.
    pub async fn notify_operator_once(&self, notice: &Notice, since: Timestamp) -> Result<bool, StoreError> {
        debug_assert_eq!(notice.audience, Audience::Operator);
        let now = self.now();
        let mut tx = self.begin().await?;
        let seen: Option<(String,)> = tx
            .fetch_optional(
                "select id from notifications where audience = 'operator' and kind = $1 and created_at >= $2 limit 1",
                args![notice.kind, since],
            )
            .await?;
        if seen.is_some() {
            return Ok(false);
        }
        notify(&mut tx, notice, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// A claimed notice's row.
#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: String,
    account_id: Option<String>,
    kind: String,
    title: String,
    body: String,
    created_at: Timestamp,
    read_at: Option<Timestamp>,
    email_state: String,
    email_attempts: i32,
}

/// A pending notice claimed for emailing, with where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailClaim {
    pub notification: Notification,
    /// The account's owners' addresses; empty for the operator's (the
    /// mailer has the operator's address).
    pub recipients: Vec<String>,
    pub attempts: i32,
}

impl Store {
    /// Claims up to `limit` pending notices for `lease`; a notice older
    /// than `max_age` is marked `expired` instead.
    pub async fn claim_notification_emails(
        &self,
        limit: u32,
        lease: std::time::Duration,
        max_age: std::time::Duration,
    ) -> Result<Vec<EmailClaim>, StoreError> {
        let now = self.now();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX / 2);
        let oldest = now - chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX / 2);
        let mut tx = self.begin().await?;
        tx.execute(
            "update notifications set email_state = 'expired' where email_state = 'pending' and created_at < $1",
            args![oldest],
        )
        .await?;
        let rows: Vec<ClaimRow> = tx
            .fetch_all(
                "update notifications set email_lease_until = $2
                 where id in (select id from notifications
                              where email_state = 'pending' and (email_lease_until is null or email_lease_until <= $1)
                              order by created_at, id limit $3)
                 returning id, account_id, kind, title, body, created_at, read_at, email_state, email_attempts",
                args![now, until, i64::from(limit)],
            )
            .await?;
        let mut claims = Vec::with_capacity(rows.len());
        for r in rows {
            let attempts = r.email_attempts;
            let notification = of_row((
                r.id,
                r.account_id,
                r.kind,
                r.title,
                r.body,
                r.created_at,
                r.read_at,
                r.email_state,
            ))?;
            let recipients = match notification.account_id {
                Some(account) => {
                    let owners: Vec<(String,)> = tx
                        .fetch_all(
                            "select email from users where account_id = $1 and role = 'owner' order by email",
                            args![account],
                        )
                        .await?;
                    owners.into_iter().map(|(e,)| e).collect()
                }
                None => Vec::new(),
            };
            claims.push(EmailClaim {
                notification,
                recipients,
                attempts,
            });
        }
        tx.commit().await?;
        Ok(claims)
    }

    /// Marks a claimed notice emailed (`sent`), given up on (`failed`), or
    /// due again at `retry_at` with the error.
    pub async fn notification_email_result(
        &self,
        id: NotificationId,
        state: &str,
        error: Option<&str>,
        retry_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        on_pool!(&self.db, pool => {
            sqlx::query(
                "update notifications set email_state = $2, email_error = $3, email_attempts = email_attempts + 1,
                     email_lease_until = $4
                 where id = $1",
            )
            .bind(id.to_string())
            .bind(state.to_owned())
            .bind(error.map(str::to_owned))
            .bind(retry_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The account's notices (the operator's with `None`), newest first.
    pub async fn list_notifications(
        &self,
        account: Option<AccountId>,
        unread_only: bool,
        limit: PageLimit,
        after: Option<NotificationId>,
    ) -> Result<Page<Notification>, StoreError> {
        let rows: Vec<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, account_id, kind, title, body, created_at, read_at, email_state from notifications
                 where (($1 is null and audience = 'operator') or account_id = $1)
                   and ($2 = false or read_at is null) and ($3 is null or id < $3)
                 order by id desc limit $4",
            )
            .bind(account.map(|a| a.to_string()))
            .bind(unread_only)
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        let items = rows.into_iter().map(of_row).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, limit.get(), |n| n.id.to_string()))
    }

    /// How many of the account's notices (the operator's with `None`) are
    /// unread: the bell's number.
    pub async fn unread_notifications(&self, account: Option<AccountId>) -> Result<i64, StoreError> {
        let (n,): (i64,) = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select count(*) from notifications
                 where (($1 is null and audience = 'operator') or account_id = $1) and read_at is null",
            )
            .bind(account.map(|a| a.to_string()))
            .fetch_one(pool)
            .await?
        });
        Ok(n)
    }

    /// Marks every unread notice of the account (the operator's with
    /// `None`) read; how many.
    pub async fn mark_notifications_read(&self, account: Option<AccountId>) -> Result<u64, StoreError> {
        let now = self.now();
        Ok(on_pool!(&self.db, pool => {
            sqlx::query(
                "update notifications set read_at = $2
                 where (($1 is null and audience = 'operator') or account_id = $1) and read_at is null",
            )
            .bind(account.map(|a| a.to_string()))
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        }))
    }
}
