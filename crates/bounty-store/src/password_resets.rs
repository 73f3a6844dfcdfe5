//! Password resets by one-time link, for an account's users and for
//! operators, and the count of reset requests that rate-limits them.
//!
//! The store keeps only the SHA-256 of a link's random token, in
//! `password_resets` (users) or `operator_password_resets` (operators:
//! their rows never mix with an account's). Using a link is one
//! transaction: a conditional update marks it used (unused, unexpired, by
//! that hash), so of two concurrent uses exactly one goes on; then the
//! password is set, every session of its holder is revoked, and the
//! holder's other unused links are deleted.
//!
//! Nothing here is scoped by account: whoever resets a password has no
//! session, and the link's hash (or, to make one, the email) is how the
//! request learns whose password it is.

use bounty_core::{AccountId, OperatorId, Timestamp, UserId};
use chrono::Duration;

use crate::column::Text;
use crate::db::on_pool;
use crate::operators::write_operator_password;
use crate::tx::args;
use crate::users::{Email, TokenHash, write_password};
use crate::{Store, StoreError};

/// How long reset requests are kept: far longer than any rate-limit window.
const REQUEST_RETENTION: Duration = Duration::days(1);

/// Which password table a link belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realm {
    /// An account's user (`/login`).
    Customer,
    /// An operator of the console (`/ops/login`).
    Operator,
}

/// Whose password a reset link sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetHolder {
    User { account: AccountId, user: UserId },
    Operator(OperatorId),
}

impl ResetHolder {
    /// The realm whose table holds the holder's links.
    pub fn realm(&self) -> Realm {
        match self {
            ResetHolder::User { .. } => Realm::Customer,
            ResetHolder::Operator(_) => Realm::Operator,
        }
    }
}

/// Reset requests inside a window, counted two ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResetRequests {
    /// Requests naming this email.
    pub by_email: u32,
    /// Requests from this client address, whatever the email.
    pub by_ip: u32,
}

impl Store {
    /// Stores a reset link of `holder`, by its token's hash.
    pub async fn create_password_reset(
        &self,
        holder: ResetHolder,
        hash: &TokenHash,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        match holder {
            ResetHolder::User { account, user } => {
                tx.execute(
                    "insert into password_resets (token_hash, account_id, user_id, created_at, expires_at)
                     values ($1, $2, $3, $4, $5)",
                    args![
                        hash.as_str(),
                        account.to_string(),
                        user.to_string(),
                        now,
                        expires_at
                    ],
                )
                .await?
            }
            ResetHolder::Operator(operator) => {
                tx.execute(
                    "insert into operator_password_resets (token_hash, operator_id, created_at, expires_at)
                     values ($1, $2, $3, $4)",
                    args![hash.as_str(), operator.to_string(), now, expires_at],
                )
                .await?
            }
        };
        tx.commit().await
    }

    /// The email whose password the link with this hash resets, while the
    /// link is unused and unexpired.
    pub async fn password_reset_email(
        &self,
        realm: Realm,
        hash: &TokenHash,
    ) -> Result<Option<Email>, StoreError> {
        let now = self.now();
        let sql = match realm {
            Realm::Customer => {
                "select u.email from password_resets r join users u on u.id = r.user_id and u.account_id = r.account_id
                 where r.token_hash = $1 and r.used_at is null and r.expires_at > $2"
            }
            Realm::Operator => {
                "select o.email from operator_password_resets r join operators o on o.id = r.operator_id
                 where r.token_hash = $1 and r.used_at is null and r.expires_at > $2"
            }
        };
        let row: Option<(Text<Email>,)> = on_pool!(&self.db, pool => {
            sqlx::query_as(sql)
                .bind(hash.as_str().to_owned())
                .bind(now)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(e,)| e.0))
    }

    /// Uses the link with this hash: marks it used, sets the holder's
    /// password hash, revokes every session of the holder and deletes its
    /// other unused links, in one transaction. `None` when no unused,
    /// unexpired link of the realm has this hash.
    pub async fn use_password_reset(
        &self,
        realm: Realm,
        hash: &TokenHash,
        password_hash: &str,
    ) -> Result<Option<ResetHolder>, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let consume = match realm {
            Realm::Customer => {
                "update password_resets set used_at = $2
                 where token_hash = $1 and used_at is null and expires_at > $2
                 returning user_id, account_id"
            }
            Realm::Operator => {
                "update operator_password_resets set used_at = $2
                 where token_hash = $1 and used_at is null and expires_at > $2
                 returning operator_id, cast(null as text) as account_id"
            }
        };
        let row: Option<(String, Option<Text<AccountId>>)> =
            tx.fetch_optional(consume, args![hash.as_str(), now]).await?;
        let Some((holder, account)) = row else {
            return Ok(None);
        };
        let corrupt =
            |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("a reset link's holder `{holder}`: {e}"));
        let holder = match (realm, account) {
            (Realm::Customer, Some(account)) => ResetHolder::User {
                account: account.0,
                user: holder.parse().map_err(|e| corrupt(&e))?,
            },
            (Realm::Operator, None) => ResetHolder::Operator(holder.parse().map_err(|e| corrupt(&e))?),
            _ => return Err(corrupt(&"no account where one belongs")),
        };
        let written = match holder {
            ResetHolder::User { account, user } => {
                let written = write_password(&mut tx, account, user, password_hash, now).await?;
                tx.execute(
                    "delete from password_resets where account_id = $1 and user_id = $2 and used_at is null",
                    args![account.to_string(), user.to_string()],
                )
                .await?;
                written
            }
            ResetHolder::Operator(operator) => {
                let written = write_operator_password(&mut tx, operator, password_hash, now).await?;
                tx.execute(
                    "delete from operator_password_resets where operator_id = $1 and used_at is null",
                    args![operator.to_string()],
                )
                .await?;
                written
            }
        };
        if !written {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(holder))
    }

    /// Records a "forgot your password" request for the rate limit, and
    /// prunes requests older than a day. `ip` is the client address as the
    /// edge sees it.
    pub async fn record_reset_request(&self, email: &str, ip: &str) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        tx.execute(
            "insert into password_reset_requests (id, email, ip, created_at) values ($1, $2, $3, $4)",
            args![
                bounty_core::id::new_ulid().to_string(),
                email.trim().to_lowercase(),
                ip,
                now
            ],
        )
        .await?;
        tx.execute(
            "delete from password_reset_requests where created_at < $1",
            args![now - REQUEST_RETENTION],
        )
        .await?;
        tx.commit().await
    }

    /// Reset requests in the last `window`, naming `email` and from `ip`.
    pub async fn recent_reset_requests(
        &self,
        email: &str,
        ip: &str,
        window: Duration,
    ) -> Result<ResetRequests, StoreError> {
        let since = self.now() - window;
        let (by_email, by_ip): (i64, i64) = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select
                     (select count(*) from password_reset_requests where email = $1 and created_at >= $3),
                     (select count(*) from password_reset_requests where ip = $2 and created_at >= $3)",
            )
            .bind(email.trim().to_lowercase())
            .bind(ip.to_owned())
            .bind(since)
            .fetch_one(pool)
            .await?
        });
        Ok(ResetRequests {
            by_email: u32::try_from(by_email).unwrap_or(u32::MAX),
            by_ip: u32::try_from(by_ip).unwrap_or(u32::MAX),
        })
    }
}
