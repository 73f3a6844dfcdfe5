//! Dashboard users, their sessions, and login attempts.
//!
//! A user belongs to one account and logs in with an email and a password.
//! The store keeps only what the web edge hands it: an argon2id PHC string
//! (never a password), the SHA-256 of a session's random token (never the
//! token), and a per-session CSRF secret. Hashing and the session policy
//! (how long a session lives, how many failed logins are too many) belong
//! to the edge; the store only records and answers.
//!
//! Three lookups are not scoped by account, each named for why:
//! [`Store::find_user_by_email`] (how a login learns its account),
//! [`Store::session_by_token_hash`] (how a request learns its account), and
//! the login-attempt counters (an attempt may name no user at all).
//! Everything else takes the [`AccountId`] first.

use std::fmt;
use std::str::FromStr;

use bounty_core::{AccountId, Timestamp, UserId};
use chrono::Duration;

use crate::db::on_pool;
use crate::tx::{Tx, args};
use crate::{Store, StoreError};

/// How long login attempts are kept: far longer than any rate-limit window.
const LOGIN_ATTEMPT_RETENTION: Duration = Duration::days(1);

/// The longest email accepted (RFC 5321's path limit).
const MAX_EMAIL_CHARS: usize = 254;

/// A user's email: trimmed, lower-cased, one `@` with something on both
/// sides, no whitespace or control characters. Lower-casing here is what
/// makes the unique key case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Why a string is not an acceptable email.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an email needs one `@` with text on both sides, no spaces, at most 254 characters")]
pub struct BadEmail;

impl Email {
    /// Parses and normalises an email.
    pub fn parse(raw: &str) -> Result<Email, BadEmail> {
        let s = raw.trim().to_lowercase();
        let ok = s.chars().count() <= MAX_EMAIL_CHARS
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && !domain.is_empty() && !domain.contains('@')
            });
        if ok { Ok(Email(s)) } else { Err(BadEmail) }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Email {
    type Err = BadEmail;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Email::parse(s)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a user may do in their account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserRole {
    /// Manages the account: keys, billing, integrations, the team.
    Owner,
    /// Sees the account's work.
    Member,
    /// Sees every page of the account and changes nothing.
    Viewer,
}

impl UserRole {
    /// Every role, the most powerful first.
    pub const ALL: [UserRole; 3] = [UserRole::Owner, UserRole::Member, UserRole::Viewer];

    /// `owner`, `member` or `viewer`.
    pub const fn as_str(self) -> &'static str {
        match self {
            UserRole::Owner => "owner",
            UserRole::Member => "member",
            UserRole::Viewer => "viewer",
        }
    }
}

impl fmt::Display for UserRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not `owner`, `member` or `viewer`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a role: expected `owner`, `member` or `viewer`")]
pub struct BadRole(pub String);

impl FromStr for UserRole {
    type Err = BadRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UserRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| BadRole(s.to_owned()))
    }
}

/// The hex SHA-256 of a random token (a session's cookie, an invite or a
/// password reset link): what the store keeps and looks up. The edge
/// computes it; the token itself never reaches the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

/// A session token's hash.
pub type SessionTokenHash = TokenHash;

impl TokenHash {
    /// Wraps a hex digest computed by the caller.
    pub fn from_hex(hex: String) -> Self {
        TokenHash(hex)
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A session's id (`sess_<ULID>`): safe to log, unlike its token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(pub(crate) String);

impl SessionId {
    pub(crate) fn new() -> Self {
        SessionId(format!("sess_{}", bounty_core::id::new_ulid()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored user. It never holds the password hash; see [`UserLogin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// The account it belongs to.
    pub account_id: AccountId,
    /// Its email, lower-cased.
    pub email: Email,
    /// What it may do.
    pub role: UserRole,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last logged in.
    pub last_login_at: Option<Timestamp>,
}

/// A user found for a login, with the hash to verify the password against.
#[derive(Clone, PartialEq, Eq)]
pub struct UserLogin {
    /// The user.
    pub user: User,
    /// Its argon2id PHC string.
    pub password_hash: String,
}

impl fmt::Debug for UserLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserLogin")
            .field("user", &self.user)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// A session to create.
#[derive(Clone)]
pub struct NewSession {
    /// The SHA-256 of the cookie's token.
    pub token_hash: SessionTokenHash,
    /// The session's CSRF secret, echoed by every form it renders.
    pub csrf_secret: String,
    /// When it stops working, whatever happens.
    pub expires_at: Timestamp,
}

impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A live session: who is logged in, for which account.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// Its id.
    pub id: SessionId,
    /// The user logged in.
    pub user_id: UserId,
    /// Their email.
    pub email: Email,
    /// The account every query of the request is scoped by.
    pub account_id: AccountId,
    /// The user's role.
    pub role: UserRole,
    /// The secret every form of this session must echo.
    pub csrf_secret: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("account_id", &self.account_id)
            .field("role", &self.role)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Failed logins inside a window, counted two ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginFailures {
    /// Failures naming this email since its last successful login.
    pub by_email: u32,
    /// Failures from this client address, whatever the email.
    pub by_ip: u32,
}

macro_rules! user_columns {
    () => {
        "id, account_id, email, role, created_at, last_login_at"
    };
}
pub(crate) use user_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    account_id: String,
    email: String,
    role: String,
    created_at: Timestamp,
    last_login_at: Option<Timestamp>,
}

fn corrupt(column: &str, value: &str, e: impl fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("users.{column} `{value}`: {e}"))
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: r.id.parse().map_err(|e| corrupt("id", &r.id, e))?,
            account_id: r
                .account_id
                .parse()
                .map_err(|e| corrupt("account_id", &r.account_id, e))?,
            email: Email::parse(&r.email).map_err(|e| corrupt("email", &r.email, e))?,
            role: r.role.parse().map_err(|e| corrupt("role", &r.role, e))?,
            created_at: r.created_at,
            last_login_at: r.last_login_at,
        })
    }
}

impl Store {
    /// Creates a user of `account`; `None` when the account does not exist.
    /// An email already taken (by any account) is refused by the
    /// `users_email_key` constraint.
    pub async fn create_user(
        &self,
        account: AccountId,
        email: &Email,
        password_hash: &str,
        role: UserRole,
    ) -> Result<Option<User>, StoreError> {
        let now = self.now();
        let id = UserId::new();
        // One statement, so SQLite never upgrades a read lock to a write.
        let row: Option<UserRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "insert into users (id, account_id, email, password_hash, role, created_at)
                 select $1, $2, $3, $4, $5, $6
                 where exists (select 1 from accounts where id = $2)
                 returning ", user_columns!()
            ))
            .bind(id.to_string())
            .bind(account.to_string())
            .bind(email.as_str().to_owned())
            .bind(password_hash.to_owned())
            .bind(role.as_str())
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        row.map(User::try_from).transpose()
    }

    /// One of the account's users.
    /// How many dashboard users exist, in every account (operator view:
    /// `serve` says how to create the first one).
    pub async fn admin_count_users(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = on_pool!(&self.db, pool => {
            sqlx::query_as("select count(*) from users").fetch_one(pool).await?
        });
        Ok(n)
    }

    pub async fn get_user(&self, account: AccountId, id: UserId) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!("select ", user_columns!(), " from users where account_id = $1 and id = $2"))
                .bind(account.to_string())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        row.map(User::try_from).transpose()
    }

    /// The account's users, oldest first.
    pub async fn list_users(&self, account: AccountId) -> Result<Vec<User>, StoreError> {
        let rows: Vec<UserRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!("select ", user_columns!(), " from users where account_id = $1 order by id"))
                .bind(account.to_string())
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(User::try_from).collect()
    }

    /// The user with this email, with its password hash. This lookup is
    /// how a login learns its account, so it is not scoped by account; use
    /// it for logging in (and the operator CLI) only.
    pub async fn find_user_by_email(&self, email: &Email) -> Result<Option<UserLogin>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: UserRow,
            password_hash: String,
        }
        let row: Option<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!("select ", user_columns!(), ", password_hash from users where email = $1"))
                .bind(email.as_str().to_owned())
                .fetch_optional(pool)
                .await?
        });
        row.map(|r| {
            Ok(UserLogin {
                user: User::try_from(r.user)?,
                password_hash: r.password_hash,
            })
        })
        .transpose()
    }

    /// Replaces one of the account's users' password hash and revokes
    /// every session of that user, in one transaction: whoever held the
    /// old password is logged out. `false` when the account has no such
    /// user.
    pub async fn set_password(
        &self,
        account: AccountId,
        user: UserId,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        if !write_password(&mut tx, account, user, password_hash, self.now()).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Starts a session for one of the account's users and records the
    /// login on the user, in one transaction. `None` when the account has
    /// no such user.
    pub async fn create_session(
        &self,
        account: AccountId,
        user: UserId,
        new: &NewSession,
    ) -> Result<Option<Session>, StoreError> {
        let now = self.now();
        let id = SessionId::new();
        let (a, u) = (account.to_string(), user.to_string());
        let mut tx = self.begin().await?;
        // The user row is written first: on SQLite that takes the write
        // lock before anything is read, so the transaction never upgrades.
        let found: Option<UserRow> = tx
            .fetch_optional(
                concat!(
                    "update users set last_login_at = $3 where account_id = $1 and id = $2
                     returning ",
                    user_columns!()
                ),
                args![a.clone(), u.clone(), now],
            )
            .await?;
        let Some(found) = found else {
            return Ok(None);
        };
        let found = User::try_from(found)?;
        tx.execute(
            "insert into sessions (id, token_hash, user_id, account_id, csrf_secret, created_at, expires_at)
             values ($1, $2, $3, $4, $5, $6, $7)",
            args![
                id.as_str(),
                new.token_hash.as_str(),
                u,
                a,
                new.csrf_secret.as_str(),
                now,
                new.expires_at
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Session {
            id,
            user_id: found.id,
            email: found.email,
            account_id: found.account_id,
            role: found.role,
            csrf_secret: new.csrf_secret.clone(),
            created_at: now,
            expires_at: new.expires_at,
        }))
    }

    /// The live session whose token has this hash: not revoked, not
    /// expired. This lookup is how a request learns its account, so it is
    /// not scoped by account.
    pub async fn session_by_token_hash(
        &self,
        hash: &SessionTokenHash,
    ) -> Result<Option<Session>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            user_id: String,
            email: String,
            account_id: String,
            role: String,
            csrf_secret: String,
            created_at: Timestamp,
            expires_at: Timestamp,
        }
        let now = self.now();
        let row: Option<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select s.id, s.user_id, u.email, s.account_id, u.role, s.csrf_secret, s.created_at, s.expires_at
                 from sessions s join users u on u.id = s.user_id and u.account_id = s.account_id
                 where s.token_hash = $1 and s.revoked_at is null and s.expires_at > $2",
            )
            .bind(hash.as_str().to_owned())
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        row.map(|r| {
            let bad = |column: &str, value: &str, e: &dyn fmt::Display| {
                StoreError::Corrupt(format!("sessions.{column} `{value}`: {e}"))
            };
            Ok(Session {
                id: SessionId(r.id),
                user_id: r.user_id.parse().map_err(|e| bad("user_id", &r.user_id, &e))?,
                email: Email::parse(&r.email).map_err(|e| bad("email", &r.email, &e))?,
                account_id: r
                    .account_id
                    .parse()
                    .map_err(|e| bad("account_id", &r.account_id, &e))?,
                role: r.role.parse().map_err(|e| bad("role", &r.role, &e))?,
                csrf_secret: r.csrf_secret,
                created_at: r.created_at,
                expires_at: r.expires_at,
            })
        })
        .transpose()
    }

    /// Revokes one of the account's sessions (logout). Revoking twice keeps
    /// the first time. `false` when the account has no such session.
    pub async fn revoke_session(&self, account: AccountId, session: &SessionId) -> Result<bool, StoreError> {
        let now = self.now();
        let changed = on_pool!(&self.db, pool => {
            sqlx::query(
                "update sessions set revoked_at = coalesce(revoked_at, $3) where account_id = $1 and id = $2",
            )
            .bind(account.to_string())
            .bind(session.as_str().to_owned())
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed > 0)
    }

    /// Records a login attempt for the rate limit, and prunes attempts
    /// older than a day. `ip` is the client address as the edge sees it.
    pub async fn record_login_attempt(
        &self,
        email: &str,
        ip: &str,
        succeeded: bool,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        tx.execute(
            "insert into login_attempts (id, email, ip, succeeded, created_at) values ($1, $2, $3, $4, $5)",
            args![
                bounty_core::id::new_ulid().to_string(),
                email.trim().to_lowercase(),
                ip,
                succeeded,
                now
            ],
        )
        .await?;
        tx.execute(
            "delete from login_attempts where created_at < $1",
            args![now - LOGIN_ATTEMPT_RETENTION],
        )
        .await?;
        tx.commit().await
    }

    /// Failed logins in the last `window`: naming `email` since its last
    /// success (a success clears the email's count, not the address's),
    /// and from `ip`. The window slides with the store's clock.
    pub async fn recent_failed_logins(
        &self,
        email: &str,
        ip: &str,
        window: Duration,
    ) -> Result<LoginFailures, StoreError> {
        let since = self.now() - window;
        let email = email.trim().to_lowercase();
        let (by_email, by_ip): (i64, i64) = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select
                     (select count(*) from login_attempts f
                      where f.email = $1 and not f.succeeded and f.created_at >= $3
                        and not exists (select 1 from login_attempts s
                                        where s.email = $1 and s.succeeded and s.created_at >= f.created_at)),
                     (select count(*) from login_attempts
                      where ip = $2 and not succeeded and created_at >= $3)",
            )
            .bind(email)
            .bind(ip.to_owned())
            .bind(since)
            .fetch_one(pool)
            .await?
        });
        Ok(LoginFailures {
            by_email: u32::try_from(by_email).unwrap_or(u32::MAX),
            by_ip: u32::try_from(by_ip).unwrap_or(u32::MAX),
        })
    }
}

/// Sets one of the account's users' password hash and revokes its
/// sessions, in the caller's transaction; `false` when the account has no
/// such user (nothing written).
pub(crate) async fn write_password(
    tx: &mut Tx,
    account: AccountId,
    user: UserId,
    password_hash: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let (a, u) = (account.to_string(), user.to_string());
    let changed = tx
        .execute(
            "update users set password_hash = $3 where account_id = $1 and id = $2",
            args![a.clone(), u.clone(), password_hash],
        )
        .await?;
    if changed == 0 {
        return Ok(false);
    }
    tx.execute(
        "update sessions set revoked_at = $3
         where account_id = $1 and user_id = $2 and revoked_at is null",
        args![a, u, now],
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "a b@example.com",
            "a@b@c",
            "a\u{7}@b",
        ] {
            assert_eq!(Email::parse(bad), Err(BadEmail), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(BadEmail));
    }

    #[test]
    fn roles_round_trip() {
        for role in UserRole::ALL {
            assert_eq!(role.as_str().parse::<UserRole>().unwrap(), role);
        }
        assert!("admin".parse::<UserRole>().is_err());
    }
}
