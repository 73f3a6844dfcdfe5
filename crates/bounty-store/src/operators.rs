//! Operators: whoever runs Bounty and sells the work. An operator is not a
//! user of any account. They sign in to the console at `/ops` with an email
//! and a password, and call `/v1/ops/*` with `bk_op_` keys. Their tables
//! (`operators`, `operator_sessions`, `operator_keys`) mirror the
//! customer's without an account column, so no customer login, session or
//! key can ever act as an operator, and no operator row is tenant data.
//!
//! As for users, the store keeps only what the edge hands it: an argon2id
//! PHC string, the SHA-256 of a session token or key, a CSRF secret.

use std::fmt;

use bounty_core::{ApiKeyHash, OperatorId, OperatorKeyId, Timestamp};

use crate::column::Text;
use crate::db::on_pool;
use crate::tx::{Tx, args};
use crate::users::{Email, NewSession, SessionId, SessionTokenHash};
use crate::{Store, StoreError};

/// An operator. It never holds the password hash; see [`OperatorLogin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub id: OperatorId,
    pub email: Email,
    pub created_at: Timestamp,
    pub last_login_at: Option<Timestamp>,
}

/// An operator found for a login, with the hash to verify against.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorLogin {
    pub operator: Operator,
    /// Its argon2id PHC string.
    pub password_hash: String,
}

impl fmt::Debug for OperatorLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorLogin")
            .field("operator", &self.operator)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// A live operator session.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorSession {
    pub id: SessionId,
    pub operator_id: OperatorId,
    pub email: Email,
    /// The secret every form of this session must echo.
    pub csrf_secret: String,
    pub expires_at: Timestamp,
}

impl fmt::Debug for OperatorSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorSession")
            .field("id", &self.id)
            .field("operator_id", &self.operator_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// An operator key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorKey {
    pub id: OperatorKeyId,
    pub operator_id: OperatorId,
    pub name: String,
    /// Its first characters (`bk_op_AbCdEf`).
    pub prefix: String,
    pub created_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct OperatorRow {
    id: Text<OperatorId>,
    email: String,
    created_at: Timestamp,
    last_login_at: Option<Timestamp>,
}

impl TryFrom<OperatorRow> for Operator {
    type Error = StoreError;

    fn try_from(r: OperatorRow) -> Result<Self, StoreError> {
        Ok(Operator {
            id: r.id.0,
            email: Email::parse(&r.email)
                .map_err(|e| StoreError::Corrupt(format!("operators.email `{}`: {e}", r.email)))?,
            created_at: r.created_at,
            last_login_at: r.last_login_at,
        })
    }
}

impl Store {
    /// Creates an operator; `None` when the email is taken by another
    /// operator (an account's user may share it: the two never mix).
    pub async fn create_operator(
        &self,
        email: &Email,
        password_hash: &str,
    ) -> Result<Option<Operator>, StoreError> {
        let now = self.now();
        let row: Option<OperatorRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "insert into operators (id, email, password_hash, created_at) values ($1, $2, $3, $4)
                 on conflict (email) do nothing
                 returning id, email, created_at, last_login_at",
            )
            .bind(OperatorId::new().to_string())
            .bind(email.as_str().to_owned())
            .bind(password_hash.to_owned())
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        row.map(Operator::try_from).transpose()
    }

    /// The operator with this email, for a login.
    pub async fn find_operator_by_email(&self, email: &Email) -> Result<Option<OperatorLogin>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            operator: OperatorRow,
            password_hash: String,
        }
        let row: Option<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, email, created_at, last_login_at, password_hash from operators where email = $1",
            )
            .bind(email.as_str().to_owned())
            .fetch_optional(pool)
            .await?
        });
        row.map(|r| {
            Ok(OperatorLogin {
                operator: Operator::try_from(r.operator)?,
                password_hash: r.password_hash,
            })
        })
        .transpose()
    }

    /// An operator's email, if there is such an operator.
    pub async fn operator_email(&self, operator: OperatorId) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = on_pool!(&self.db, pool => {
            sqlx::query_as("select email from operators where id = $1")
                .bind(operator.to_string())
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(e,)| e))
    }

    /// The operator with this email, if any.
    pub async fn operator_by_email(&self, email: &Email) -> Result<Option<Operator>, StoreError> {
        Ok(self.find_operator_by_email(email).await?.map(|l| l.operator))
    }

    /// Sets an operator's password and ends its sessions, in one
    /// transaction; `false` when there is no such operator.
    pub async fn set_operator_password(
        &self,
        operator: OperatorId,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        if !write_operator_password(&mut tx, operator, password_hash, self.now()).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Starts a session for an operator and records the login, in one
    /// transaction. `None` when there is no such operator.
    pub async fn create_operator_session(
        &self,
        operator: OperatorId,
        new: &NewSession,
    ) -> Result<Option<OperatorSession>, StoreError> {
        let now = self.now();
        let id = SessionId::new();
        let mut tx = self.begin().await?;
        let found: Option<OperatorRow> = tx
            .fetch_optional(
                "update operators set last_login_at = $2 where id = $1
                 returning id, email, created_at, last_login_at",
                args![operator.to_string(), now],
            )
            .await?;
        let Some(found) = found else {
            return Ok(None);
        };
        let found = Operator::try_from(found)?;
        tx.execute(
            "insert into operator_sessions (id, token_hash, operator_id, csrf_secret, created_at, expires_at)
             values ($1, $2, $3, $4, $5, $6)",
            args![
                id.as_str(),
                new.token_hash.as_str(),
                operator.to_string(),
                new.csrf_secret.as_str(),
                now,
                new.expires_at
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(OperatorSession {
            id,
            operator_id: found.id,
            email: found.email,
            csrf_secret: new.csrf_secret.clone(),
            expires_at: new.expires_at,
        }))
    }

    /// The live operator session whose token has this hash.
    pub async fn operator_session_by_token_hash(
        &self,
        hash: &SessionTokenHash,
    ) -> Result<Option<OperatorSession>, StoreError> {
        type Row = (String, Text<OperatorId>, String, String, Timestamp);
        let now = self.now();
        let row: Option<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select s.id, s.operator_id, o.email, s.csrf_secret, s.expires_at
                 from operator_sessions s join operators o on o.id = s.operator_id
                 where s.token_hash = $1 and s.revoked_at is null and s.expires_at > $2",
            )
            .bind(hash.as_str().to_owned())
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        row.map(|(id, operator_id, email, csrf_secret, expires_at)| {
            Ok(OperatorSession {
                id: SessionId(id),
                operator_id: operator_id.0,
                email: Email::parse(&email)
                    .map_err(|e| StoreError::Corrupt(format!("operators.email `{email}`: {e}")))?,
                csrf_secret,
                expires_at,
            })
        })
        .transpose()
    }

    /// Revokes an operator's session (logout); revoking twice keeps the
    /// first time.
    pub async fn revoke_operator_session(
        &self,
        operator: OperatorId,
        session: &SessionId,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let changed = on_pool!(&self.db, pool => {
            sqlx::query(
                "update operator_sessions set revoked_at = coalesce(revoked_at, $3)
                 where operator_id = $1 and id = $2",
            )
            .bind(operator.to_string())
            .bind(session.as_str().to_owned())
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed > 0)
    }

    /// Stores a new `bk_op_` key of an operator: only its hash and prefix.
    pub async fn create_operator_key(
        &self,
        operator: OperatorId,
        name: &str,
        hash: &ApiKeyHash,
        prefix: &str,
    ) -> Result<OperatorKey, StoreError> {
        let now = self.now();
        let id = OperatorKeyId::new();
        on_pool!(&self.db, pool => {
            sqlx::query(
                "insert into operator_keys (id, operator_id, name, prefix, key_hash, created_at)
                 values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id.to_string())
            .bind(operator.to_string())
            .bind(name.to_owned())
            .bind(prefix.to_owned())
            .bind(hash.as_str().to_owned())
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(OperatorKey {
            id,
            operator_id: operator,
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            created_at: now,
        })
    }

    /// The operator an unrevoked `bk_op_` key belongs to, and the key's id.
    /// This lookup is how an operator request learns who it is.
    pub async fn authenticate_operator(
        &self,
        hash: &ApiKeyHash,
    ) -> Result<Option<(OperatorId, OperatorKeyId)>, StoreError> {
        let row: Option<(Text<OperatorId>, Text<OperatorKeyId>)> = on_pool!(&self.db, pool => {
            sqlx::query_as("select operator_id, id from operator_keys where key_hash = $1 and revoked_at is null")
                .bind(hash.as_str().to_owned())
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(operator, key)| (operator.0, key.0)))
    }
}

/// Sets an operator's password hash and revokes its sessions, in the
/// caller's transaction; `false` when there is no such operator.
pub(crate) async fn write_operator_password(
    tx: &mut Tx,
    operator: OperatorId,
    password_hash: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let changed = tx
        .execute(
            "update operators set password_hash = $2 where id = $1",
            args![operator.to_string(), password_hash],
        )
        .await?;
    if changed == 0 {
        return Ok(false);
    }
    tx.execute(
        "update operator_sessions set revoked_at = $2 where operator_id = $1 and revoked_at is null",
        args![operator.to_string(), now],
    )
    .await?;
    Ok(true)
}
