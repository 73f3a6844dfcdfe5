//! Disputes, as rows: one per charged outcome, its evidence pack stored
//! once with its SHA-256 (a trigger refuses any change to either), and its
//! decision. What a dispute does to the outcome and the ledger is decided
//! above the store, by `bounty_billing::disputes`, in the transaction that
//! writes these rows.

use bounty_core::dispute::{DisputeReason, DisputeStatus};
use bounty_core::{AccountId, Actor, ApiKeyMode, DisputeId, OutcomeId, PageLimit, Timestamp};

use crate::column::Text;
use crate::db::on_pool;
use crate::tx::{Tx, args};
use crate::{Page, Store, StoreError};

/// A stored dispute, without its evidence pack (see
/// [`Store::dispute_evidence`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispute {
    pub id: DisputeId,
    pub account_id: AccountId,
    pub outcome_id: OutcomeId,
    pub mode: ApiKeyMode,
    pub status: DisputeStatus,
    pub reason: DisputeReason,
    pub comment: Option<String>,
    /// SHA-256 (hex) of the evidence pack's stored bytes.
    pub evidence_sha256: String,
    pub opened_by: Actor,
    pub decided_by: Option<Actor>,
    /// The operator's reason for the decision, shown to the customer.
    pub decision_reason: Option<String>,
    pub created_at: Timestamp,
    pub decided_at: Option<Timestamp>,
}

/// A dispute to open.
#[derive(Debug, Clone)]
pub struct NewDispute<'a> {
    pub id: DisputeId,
    pub account: AccountId,
    pub outcome: OutcomeId,
    pub mode: ApiKeyMode,
    pub reason: DisputeReason,
    pub comment: Option<&'a str>,
    /// The evidence pack, as stored and downloaded.
    pub evidence: &'a str,
    pub evidence_sha256: &'a str,
    pub opened_by: &'a Actor,
}

macro_rules! dispute_columns {
    () => {
        "id, account_id, outcome_id, livemode, status, reason, comment, evidence_sha256, opened_by,
         decided_by, decision_reason, created_at, decided_at"
    };
}

#[derive(sqlx::FromRow)]
struct DisputeRow {
    id: Text<DisputeId>,
    account_id: Text<AccountId>,
    outcome_id: Text<OutcomeId>,
    livemode: bool,
    status: Text<DisputeStatus>,
    reason: Text<DisputeReason>,
    comment: Option<String>,
    evidence_sha256: String,
    opened_by: Text<Actor>,
    decided_by: Option<Text<Actor>>,
    decision_reason: Option<String>,
    created_at: Timestamp,
    decided_at: Option<Timestamp>,
}

impl From<DisputeRow> for Dispute {
    fn from(r: DisputeRow) -> Self {
        Dispute {
            id: r.id.0,
            account_id: r.account_id.0,
            outcome_id: r.outcome_id.0,
            mode: ApiKeyMode::from_livemode(r.livemode),
            status: r.status.0,
            reason: r.reason.0,
            comment: r.comment,
            evidence_sha256: r.evidence_sha256,
            opened_by: r.opened_by.0,
            decided_by: r.decided_by.map(Text::into_inner),
            decision_reason: r.decision_reason,
            created_at: r.created_at,
            decided_at: r.decided_at,
        }
    }
}

/// Opens a dispute, `open`; `false`, writing nothing, when the outcome has
/// one already.
pub async fn insert_dispute(tx: &mut Tx, new: &NewDispute<'_>, now: Timestamp) -> Result<bool, StoreError> {
    let inserted: Option<(String,)> = tx
        .fetch_optional(
            "insert into disputes (id, account_id, outcome_id, livemode, status, reason, comment, evidence,
                 evidence_sha256, opened_by, created_at)
             values ($1, $2, $3, $4, 'open', $5, $6, $7, $8, $9, $10)
             on conflict (outcome_id) do nothing
             returning id",
            args![
                new.id.to_string(),
                new.account,
                new.outcome,
                new.mode.livemode(),
                new.reason.as_str(),
                new.comment.map(str::to_owned),
                new.evidence,
                new.evidence_sha256,
                new.opened_by.to_string(),
                now
            ],
        )
        .await?;
    Ok(inserted.is_some())
}

/// One of the account's disputes, read in the caller's transaction.
pub async fn dispute_in(
    tx: &mut Tx,
    account: AccountId,
    id: DisputeId,
) -> Result<Option<Dispute>, StoreError> {
    let row: Option<DisputeRow> = tx
        .fetch_optional(
            concat!(
                "select ",
                dispute_columns!(),
                " from disputes where account_id = $1 and id = $2"
            ),
            args![account, id.to_string()],
        )
        .await?;
    Ok(row.map(Dispute::from))
}

/// Decides an open dispute; `false` when it is not open any more.
pub async fn decide_dispute(
    tx: &mut Tx,
    account: AccountId,
    id: DisputeId,
    status: DisputeStatus,
    by: &Actor,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let changed = tx
        .execute(
            "update disputes set status = $3, decided_by = $4, decision_reason = $5, decided_at = $6
             where account_id = $1 and id = $2 and status = 'open'",
            args![
                account,
                id.to_string(),
                status.as_str(),
                by.to_string(),
                reason.map(str::to_owned),
                now
            ],
        )
        .await?;
    Ok(changed > 0)
}

/// Disputes of the account's `mode` accepted since `since`.
pub async fn accepted_disputes_since(
    tx: &mut Tx,
    account: AccountId,
    mode: ApiKeyMode,
    since: Timestamp,
) -> Result<i64, StoreError> {
    let (n,): (i64,) = tx
        .fetch_one(
            "select count(*) from disputes
             where account_id = $1 and status = 'accepted' and decided_at >= $2 and livemode = $3",
            args![account, since, mode.livemode()],
        )
        .await?;
    Ok(n)
}

/// The account's outcomes of `mode` charged since `since`: resolved, or
/// resolved and reversed since.
pub async fn charged_outcomes_since(
    tx: &mut Tx,
    account: AccountId,
    mode: ApiKeyMode,
    since: Timestamp,
) -> Result<i64, StoreError> {
    let (n,): (i64,) = tx
        .fetch_one(
            "select count(*) from outcomes
             where account_id = $1 and livemode = $2 and decided_at >= $3 and status in ('resolved', 'reversed')",
            args![account, mode.livemode(), since],
        )
        .await?;
    Ok(n)
}

impl Store {
    /// One of the account's disputes.
    pub async fn get_dispute(
        &self,
        account: AccountId,
        id: DisputeId,
    ) -> Result<Option<Dispute>, StoreError> {
        let row: Option<DisputeRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!("select ", dispute_columns!(), " from disputes where account_id = $1 and id = $2"))
                .bind(account.to_string())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(Dispute::from))
    }

    /// The dispute of one of the account's outcomes, if any.
    pub async fn dispute_of_outcome(
        &self,
        account: AccountId,
        outcome: OutcomeId,
    ) -> Result<Option<Dispute>, StoreError> {
        let row: Option<DisputeRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", dispute_columns!(), " from disputes where account_id = $1 and outcome_id = $2"
            ))
            .bind(account.to_string())
            .bind(outcome.to_string())
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Dispute::from))
    }

    /// The account's disputes of one mode, newest first.
    pub async fn list_disputes(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        limit: PageLimit,
        after: Option<DisputeId>,
    ) -> Result<Page<Dispute>, StoreError> {
        let rows: Vec<DisputeRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", dispute_columns!(), " from disputes
                 where account_id = $1 and livemode = $2 and ($3 is null or id < $3)
                 order by id desc limit $4"
            ))
            .bind(account.to_string())
            .bind(mode.livemode())
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        let items = rows.into_iter().map(Dispute::from).collect();
        Ok(Page::from_overfetch(items, limit.get(), |d| d.id.to_string()))
    }

    /// The evidence pack of one of the account's disputes, as stored, and
    /// its SHA-256.
    pub async fn dispute_evidence(
        &self,
        account: AccountId,
        id: DisputeId,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(on_pool!(&self.db, pool => {
            sqlx::query_as("select evidence, evidence_sha256 from disputes where account_id = $1 and id = $2")
                .bind(account.to_string())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Every account's disputes (the operator's queue), oldest first, of
    /// one status when given. Not tenant-scoped: the operator's.
    pub async fn admin_list_disputes(
        &self,
        status: Option<DisputeStatus>,
        limit: PageLimit,
        after: Option<DisputeId>,
    ) -> Result<Page<Dispute>, StoreError> {
        let rows: Vec<DisputeRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", dispute_columns!(), " from disputes
                 where ($1 is null or status = $1) and ($2 is null or id > $2)
                 order by id limit $3"
            ))
            .bind(status.map(|s| s.as_str().to_owned()))
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        let items = rows.into_iter().map(Dispute::from).collect();
        Ok(Page::from_overfetch(items, limit.get(), |d| d.id.to_string()))
    }

    /// The account a dispute belongs to: how the operator's decision finds
    /// the account whose lock it takes. Not tenant-scoped: the operator's.
    pub async fn admin_dispute_account(&self, id: DisputeId) -> Result<Option<AccountId>, StoreError> {
        let row: Option<(Text<AccountId>,)> = on_pool!(&self.db, pool => {
            sqlx::query_as("select account_id from disputes where id = $1")
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(a,)| a.0))
    }

    /// Per account: live disputes opened in `[from, to)`, and of those
    /// accepted. Not tenant-scoped: the operator's dispute rates.
    pub async fn admin_dispute_counts(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(AccountId, i64, i64)>, StoreError> {
        let rows: Vec<(Text<AccountId>, i64, i64)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select account_id, count(*), cast(sum(case when status = 'accepted' then 1 else 0 end) as bigint)
                 from disputes where livemode and created_at >= $1 and created_at < $2 group by account_id",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(a, opened, accepted)| (a.0, opened, accepted))
            .collect())
    }

    /// The account's disputes of `mode` opened in `[from, to)`, and of
    /// those accepted: the customer's own dispute rate.
    pub async fn dispute_counts(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<(i64, i64), StoreError> {
        Ok(on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select count(*), cast(coalesce(sum(case when status = 'accepted' then 1 else 0 end), 0) as bigint)
                 from disputes where account_id = $1 and livemode = $2 and created_at >= $3 and created_at < $4",
            )
            .bind(account.to_string())
            .bind(mode.livemode())
            .bind(from)
            .bind(to)
            .fetch_one(pool)
            .await?
        }))
    }

    /// Per agent of the account: live disputes opened in `[from, to)`, and
    /// of those accepted.
    pub async fn dispute_counts_by_agent(
        &self,
        account: AccountId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(bounty_core::AgentId, i64, i64)>, StoreError> {
        let rows: Vec<(Text<bounty_core::AgentId>, i64, i64)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select o.agent_id, count(*),
                     cast(sum(case when d.status = 'accepted' then 1 else 0 end) as bigint)
                 from disputes d join outcomes o on o.account_id = d.account_id and o.id = d.outcome_id
                 where d.account_id = $1 and d.livemode and d.created_at >= $2 and d.created_at < $3
                 group by o.agent_id order by o.agent_id",
            )
            .bind(account.to_string())
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(a, opened, accepted)| (a.0, opened, accepted))
            .collect())
    }
}
