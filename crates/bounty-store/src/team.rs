//! An account's team: invites by one-time link, role changes and removals.
//!
//! An invite keeps only the SHA-256 of its link's random token (the edge
//! makes the token and shows it once). Accepting is one transaction that
//! first marks the invite accepted with a conditional update (pending,
//! unexpired, by that hash) and then creates the user: of two concurrent
//! acceptances exactly one changes the row, so a link is single-use in the
//! database, not by a check made before.
//!
//! An account never loses its last owner. A demotion or a removal first
//! locks the account's owner rows (a no-op update: row locks on Postgres,
//! the write lock SQLite's `BEGIN IMMEDIATE` already holds), then counts
//! the owners left; two owners demoting each other at once are therefore
//! serialized, and the second is refused.
//!
//! Every function takes the [`AccountId`] first, except
//! [`Store::invite_by_token_hash`] and [`Store::accept_invite`]: the
//! invitee has no session yet, and the link's hash is how they learn
//! their account.

use bounty_core::{AccountId, InviteId, Timestamp, UserId};

use crate::column::Text;
use crate::db::on_pool;
use crate::tx::{Tx, args};
use crate::users::{Email, TokenHash, User, UserRole};
use crate::{Store, StoreError};

/// An invite to create.
#[derive(Clone)]
pub struct NewInvite {
    /// Who is invited; refused when it already has a user.
    pub email: Email,
    /// The role the new user gets.
    pub role: UserRole,
    /// The SHA-256 of the link's token.
    pub token_hash: TokenHash,
    /// The owner who invites.
    pub invited_by: UserId,
    /// When the link stops working.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for NewInvite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewInvite")
            .field("role", &self.role)
            .field("invited_by", &self.invited_by)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A pending invite, as the team page lists it (never its token's hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub id: InviteId,
    pub account_id: AccountId,
    pub email: Email,
    pub role: UserRole,
    /// The inviter's email; `None` once that user has been removed.
    pub invited_by: Option<Email>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What creating an invite came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteCreated {
    /// Stored; any earlier pending invite of the email in the account is
    /// revoked, so only the newest link works.
    Created(Invite),
    /// The email already has a user (in this account or another).
    EmailTaken,
}

/// What accepting an invite came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteAccepted {
    /// The new user, with the invite's role.
    Accepted(User),
    /// No pending invite has this hash: never made, used, revoked or expired.
    Dead,
    /// The email got a user since the invite was made; the invite is left
    /// as it was.
    EmailTaken,
}

/// What a role change or a removal came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamChange {
    Done,
    /// The account has no such user.
    NotFound,
    /// It would leave the account without an owner.
    LastOwner,
}

macro_rules! invite_columns {
    () => {
        "i.id, i.account_id, i.email, i.role, u.email as inviter, i.created_at, i.expires_at"
    };
}

#[derive(sqlx::FromRow)]
struct InviteRow {
    id: Text<InviteId>,
    account_id: Text<AccountId>,
    email: Text<Email>,
    role: Text<UserRole>,
    inviter: Option<Text<Email>>,
    created_at: Timestamp,
    expires_at: Timestamp,
}

impl From<InviteRow> for Invite {
    fn from(r: InviteRow) -> Self {
        Invite {
            id: r.id.0,
            account_id: r.account_id.0,
            email: r.email.0,
            role: r.role.0,
            invited_by: r.inviter.map(|e| e.0),
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

impl Store {
    /// Invites `new.email` into the account, unless the email already has
    /// a user. Earlier pending invites of that email in the account are
    /// revoked in the same transaction.
    pub async fn create_invite(
        &self,
        account: AccountId,
        new: &NewInvite,
    ) -> Result<InviteCreated, StoreError> {
        let now = self.now();
        let id = InviteId::new();
        let (a, email) = (account.to_string(), new.email.as_str().to_owned());
        let mut tx = self.begin().await?;
        // Written first: on SQLite the transaction already holds the write
        // lock, on Postgres nothing needs one.
        tx.execute(
            "update invites set revoked_at = $3
             where account_id = $1 and email = $2 and accepted_at is null and revoked_at is null",
            args![a.clone(), email.clone(), now],
        )
        .await?;
        let inserted = tx
            .execute(
                "insert into invites (id, account_id, email, role, token_hash, invited_by, created_at, expires_at)
                 select $1, $2, $3, $4, $5, $6, $7, $8
                 where not exists (select 1 from users where email = $3)",
                args![
                    id.to_string(),
                    a.clone(),
                    email,
                    new.role.as_str(),
                    new.token_hash.as_str(),
                    new.invited_by.to_string(),
                    now,
                    new.expires_at
                ],
            )
            .await?;
        if inserted == 0 {
            return Ok(InviteCreated::EmailTaken);
        }
        let row: InviteRow = tx
            .fetch_one(
                concat!(
                    "select ",
                    invite_columns!(),
                    " from invites i left join users u on u.id = i.invited_by and u.account_id = i.account_id
                     where i.account_id = $1 and i.id = $2"
                ),
                args![a, id.to_string()],
            )
            .await?;
        tx.commit().await?;
        Ok(InviteCreated::Created(row.into()))
    }

    /// The account's pending invites (not accepted, revoked or expired),
    /// newest first.
    pub async fn list_pending_invites(&self, account: AccountId) -> Result<Vec<Invite>, StoreError> {
        let now = self.now();
        let rows: Vec<InviteRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", invite_columns!(),
                " from invites i left join users u on u.id = i.invited_by and u.account_id = i.account_id
                 where i.account_id = $1 and i.accepted_at is null and i.revoked_at is null and i.expires_at > $2
                 order by i.id desc"
            ))
            .bind(account.to_string())
            .bind(now)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(Invite::from).collect())
    }

    /// Revokes one of the account's pending invites; `false` when it has
    /// no such pending invite.
    pub async fn revoke_invite(&self, account: AccountId, invite: InviteId) -> Result<bool, StoreError> {
        let now = self.now();
        let changed = on_pool!(&self.db, pool => {
            sqlx::query(
                "update invites set revoked_at = $3
                 where account_id = $1 and id = $2 and accepted_at is null and revoked_at is null",
            )
            .bind(account.to_string())
            .bind(invite.to_string())
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed > 0)
    }

    /// The pending, unexpired invite whose link has this hash. Not scoped
    /// by account: the link is how an invitee, who has no session, learns
    /// the account.
    pub async fn invite_by_token_hash(&self, hash: &TokenHash) -> Result<Option<Invite>, StoreError> {
        let now = self.now();
        let row: Option<InviteRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", invite_columns!(),
                " from invites i left join users u on u.id = i.invited_by and u.account_id = i.account_id
                 where i.token_hash = $1 and i.accepted_at is null and i.revoked_at is null and i.expires_at > $2"
            ))
            .bind(hash.as_str().to_owned())
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Invite::from))
    }

    /// Accepts the pending invite whose link has this hash: marks it
    /// accepted and creates its user with `password_hash`, in one
    /// transaction. Not scoped by account, as [`Store::invite_by_token_hash`].
    pub async fn accept_invite(
        &self,
        hash: &TokenHash,
        password_hash: &str,
    ) -> Result<InviteAccepted, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let invite: Option<(Text<AccountId>, String, String)> = tx
            .fetch_optional(
                "update invites set accepted_at = $2
                 where token_hash = $1 and accepted_at is null and revoked_at is null and expires_at > $2
                 returning account_id, email, role",
                args![hash.as_str(), now],
            )
            .await?;
        let Some((account, email, role)) = invite else {
            return Ok(InviteAccepted::Dead);
        };
        let user: Option<crate::users::UserRow> = tx
            .fetch_optional(
                concat!(
                    "insert into users (id, account_id, email, password_hash, role, created_at)
                     values ($1, $2, $3, $4, $5, $6)
                     on conflict (email) do nothing
                     returning ",
                    crate::users::user_columns!()
                ),
                args![
                    UserId::new().to_string(),
                    account.0.to_string(),
                    email,
                    password_hash,
                    role,
                    now
                ],
            )
            .await?;
        // Dropping the transaction rolls the acceptance back.
        let Some(user) = user else {
            return Ok(InviteAccepted::EmailTaken);
        };
        let user = User::try_from(user)?;
        tx.commit().await?;
        Ok(InviteAccepted::Accepted(user))
    }

    /// Gives one of the account's users another role, unless that leaves
    /// the account without an owner.
    pub async fn set_user_role(
        &self,
        account: AccountId,
        user: UserId,
        role: UserRole,
    ) -> Result<TeamChange, StoreError> {
        let mut tx = self.begin().await?;
        let check = lock_owners_and_check(&mut tx, account, user, role != UserRole::Owner).await?;
        if check != TeamChange::Done {
            return Ok(check);
        }
        tx.execute(
            "update users set role = $3 where account_id = $1 and id = $2",
            args![account.to_string(), user.to_string(), role.as_str()],
        )
        .await?;
        tx.commit().await?;
        Ok(TeamChange::Done)
    }

    /// Removes one of the account's users, unless it is the last owner:
    /// its sessions and reset links are deleted with it, in one
    /// transaction, so whoever was signed in as it is signed out.
    pub async fn remove_user(&self, account: AccountId, user: UserId) -> Result<TeamChange, StoreError> {
        let mut tx = self.begin().await?;
        let check = lock_owners_and_check(&mut tx, account, user, true).await?;
        if check != TeamChange::Done {
            return Ok(check);
        }
        let (a, u) = (account.to_string(), user.to_string());
        for sql in [
            "delete from sessions where account_id = $1 and user_id = $2",
            "delete from password_resets where account_id = $1 and user_id = $2",
            "delete from users where account_id = $1 and id = $2",
        ] {
            tx.execute(sql, args![a.clone(), u.clone()]).await?;
        }
        tx.commit().await?;
        Ok(TeamChange::Done)
    }
}

/// Locks the account's owners, then says whether `user` exists in the
/// account and, when `leaves_owners` (a demotion or a removal), whether an
/// owner would remain.
async fn lock_owners_and_check(
    tx: &mut Tx,
    account: AccountId,
    user: UserId,
    leaves_owners: bool,
) -> Result<TeamChange, StoreError> {
    let (a, u) = (account.to_string(), user.to_string());
    // A write that changes nothing: it takes the owner rows' locks on
    // Postgres, so every change that could remove an owner waits its turn.
    tx.execute(
        "update users set role = role where account_id = $1 and role = 'owner'",
        args![a.clone()],
    )
    .await?;
    let found: Option<(Text<UserRole>,)> = tx
        .fetch_optional(
            "select role from users where account_id = $1 and id = $2",
            args![a.clone(), u.clone()],
        )
        .await?;
    let Some((role,)) = found else {
        return Ok(TeamChange::NotFound);
    };
    if !leaves_owners || role.0 != UserRole::Owner {
        return Ok(TeamChange::Done);
    }
    let (others,): (i64,) = tx
        .fetch_one(
            "select count(*) from users where account_id = $1 and role = 'owner' and id <> $2",
            args![a, u],
        )
        .await?;
    Ok(if others == 0 {
        TeamChange::LastOwner
    } else {
        TeamChange::Done
    })
}
