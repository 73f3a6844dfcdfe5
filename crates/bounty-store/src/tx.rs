//! A transaction over either backend with dynamically bound arguments, for
//! multi-step logic (outcomes, the ledger) that is written once instead of
//! once per backend. The SQL is the same portable text `on_pool!` runs.
//!
//! [`Tx`] is public but opaque: a use case in a capability crate begins
//! one ([`Store::begin`]), passes it to the store's repository functions,
//! and commits it, so its writes land together or not at all. Only this
//! crate runs SQL in it.

use bounty_core::Timestamp;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Postgres, Sqlite};

use crate::db::Db;
use crate::{Store, StoreError};

/// One bound argument.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    OptText(Option<String>),
    I32(i32),
    I64(i64),
    OptI64(Option<i64>),
    Bool(bool),
    Ts(Timestamp),
    OptTs(Option<Timestamp>),
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::OptText(v)
    }
}
impl From<i32> for Arg {
    fn from(v: i32) -> Self {
        Arg::I32(v)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::I64(v)
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::OptI64(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}
impl From<bounty_core::AccountId> for Arg {
    fn from(v: bounty_core::AccountId) -> Self {
        Arg::Text(v.to_string())
    }
}
impl From<bounty_core::AgentId> for Arg {
    fn from(v: bounty_core::AgentId) -> Self {
        Arg::Text(v.to_string())
    }
}
impl From<bounty_core::TaskId> for Arg {
    fn from(v: bounty_core::TaskId) -> Self {
        Arg::Text(v.to_string())
    }
}
impl From<bounty_core::OutcomeId> for Arg {
    fn from(v: bounty_core::OutcomeId) -> Self {
        Arg::Text(v.to_string())
    }
}
impl From<bounty_core::Currency> for Arg {
    fn from(v: bounty_core::Currency) -> Self {
        Arg::Text(v.as_str().to_owned())
    }
}
impl From<Timestamp> for Arg {
    fn from(v: Timestamp) -> Self {
        Arg::Ts(v)
    }
}
impl From<Option<Timestamp>> for Arg {
    fn from(v: Option<Timestamp>) -> Self {
        Arg::OptTs(v)
    }
}

/// Builds an argument list: `args![a, b, c]`.
macro_rules! args {
    ($($v:expr),* $(,)?) => { &[$($crate::tx::Arg::from($v)),*][..] };
}
pub(crate) use args;

macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a.clone() {
                Arg::Text(v) => q.bind(v),
                Arg::OptText(v) => q.bind(v),
                Arg::I32(v) => q.bind(v),
                Arg::I64(v) => q.bind(v),
                Arg::OptI64(v) => q.bind(v),
                Arg::Bool(v) => q.bind(v),
                Arg::Ts(v) => q.bind(v),
                Arg::OptTs(v) => q.bind(v),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

/// A transaction; rolled back when dropped uncommitted.
pub struct Tx {
    inner: Inner,
    /// Events emitted in it, written together just before it commits
    /// ([`crate::webhooks::emit_event`]).
    pub(crate) events: Vec<crate::webhooks::PendingEvent>,
    /// Whether events are written at all (`webhooks.events`).
    pub(crate) events_on: bool,
    /// A statement met a deadlock ([`Tx::take_deadlocked`]).
    deadlocked: bool,
}

/// Where a unit of grouped work began ([`Tx::savepoint`]).
pub(crate) struct Savepoint {
    events: usize,
}

enum Inner {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.inner {
            Inner::Sqlite(_) => "Tx(sqlite)",
            Inner::Postgres(_) => "Tx(postgres)",
        })
    }
}

impl Store {
    /// Begins a transaction that may write.
    ///
    /// On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken up front,
    /// while the busy timeout still applies. A deferred transaction that
    /// reads first and writes later would instead fail at once with
    /// "database is locked" when another writer holds the lock, because
    /// SQLite cannot wait to upgrade a read lock (DESIGN.md, "Traps").
    /// Every transaction of the store goes through here, so none can make
    /// that mistake.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let inner = match &self.db {
            Db::Sqlite(pool) => Inner::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Inner::Postgres(pool.begin().await?),
        };
        Ok(Tx {
            inner,
            events: Vec::new(),
            events_on: self.events_on,
            deadlocked: false,
        })
    }
}

impl Tx {
    pub(crate) async fn execute(&mut self, sql: &'static str, args: &[Arg]) -> Result<u64, StoreError> {
        let done = match &mut self.inner {
            Inner::Sqlite(tx) => bind_all!(sqlx::query(sql), args)
                .execute(&mut **tx)
                .await
                .map(|r| r.rows_affected()),
            Inner::Postgres(tx) => bind_all!(sqlx::query(sql), args)
                .execute(&mut **tx)
                .await
                .map(|r| r.rows_affected()),
        };
        done.map_err(|e| self.failed(e))
    }

    pub(crate) async fn fetch_all<T>(&mut self, sql: &'static str, args: &[Arg]) -> Result<Vec<T>, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        self.fetch_all_of(sql, args).await
    }

    /// [`Tx::fetch_all`] for a statement assembled at run time
    /// ([`crate::sql::Sql`]); kept prepared like the static ones, one per
    /// shape (a multi-row insert's row count).
    pub(crate) async fn fetch_all_assembled<T>(
        &mut self,
        sql: String,
        args: &[Arg],
    ) -> Result<Vec<T>, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        self.fetch_all_of(sqlx::AssertSqlSafe(sql), args).await
    }

    async fn fetch_all_of<T>(
        &mut self,
        sql: impl sqlx::SqlSafeStr,
        args: &[Arg],
    ) -> Result<Vec<T>, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        let rows = match &mut self.inner {
            Inner::Sqlite(tx) => bind_all!(sqlx::query_as(sql), args).fetch_all(&mut **tx).await,
            Inner::Postgres(tx) => bind_all!(sqlx::query_as(sql), args).fetch_all(&mut **tx).await,
        };
        rows.map_err(|e| self.failed(e))
    }

    pub(crate) async fn fetch_optional<T>(
        &mut self,
        sql: &'static str,
        args: &[Arg],
    ) -> Result<Option<T>, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        let row = match &mut self.inner {
            Inner::Sqlite(tx) => {
                bind_all!(sqlx::query_as(sql), args)
                    .fetch_optional(&mut **tx)
                    .await
            }
            Inner::Postgres(tx) => {
                bind_all!(sqlx::query_as(sql), args)
                    .fetch_optional(&mut **tx)
                    .await
            }
        };
        row.map_err(|e| self.failed(e))
    }

    pub(crate) async fn fetch_one<T>(&mut self, sql: &'static str, args: &[Arg]) -> Result<T, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        let row = match &mut self.inner {
            Inner::Sqlite(tx) => bind_all!(sqlx::query_as(sql), args).fetch_one(&mut **tx).await,
            Inner::Postgres(tx) => bind_all!(sqlx::query_as(sql), args).fetch_one(&mut **tx).await,
        };
        row.map_err(|e| self.failed(e))
    }

    /// A statement's error, noting a deadlock: Postgres cancelled the
    /// statement to break a cycle of transactions waiting on each other
    /// (SQLSTATE 40P01). A grouped unit that met one is run again after its
    /// batch commits ([`crate::group`]).
    fn failed(&mut self, e: sqlx::Error) -> StoreError {
        if let sqlx::Error::Database(db) = &e
            && db.code().as_deref() == Some("40P01")
        {
            self.deadlocked = true;
        }
        StoreError::from(e)
    }

    /// Whether a statement met a deadlock since the last call.
    pub(crate) fn take_deadlocked(&mut self) -> bool {
        std::mem::take(&mut self.deadlocked)
    }

    /// The Postgres transaction, for the statements whose fastest form is
    /// Postgres's own (array parameters).
    pub(crate) fn postgres(&mut self) -> Option<&mut sqlx::Transaction<'static, Postgres>> {
        match &mut self.inner {
            Inner::Postgres(tx) => Some(tx),
            Inner::Sqlite(_) => None,
        }
    }

    /// Marks where a unit of grouped work begins: [`Tx::rollback_to`]
    /// undoes what follows, its events too.
    pub(crate) async fn savepoint(&mut self) -> Result<Savepoint, StoreError> {
        self.execute("savepoint grouped_unit", &[]).await?;
        Ok(Savepoint {
            events: self.events.len(),
        })
    }

    /// Undoes every write and event since `mark`. The savepoint is not
    /// released, on either backend: the next unit's shadows it, and the
    /// commit ends them all, so a kept unit costs no statement more.
    pub(crate) async fn rollback_to(&mut self, mark: Savepoint) -> Result<(), StoreError> {
        self.execute("rollback to savepoint grouped_unit", &[]).await?;
        self.events.truncate(mark.events);
        Ok(())
    }

    /// Commits every write made in it, the events emitted in it first.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        let events = std::mem::take(&mut self.events);
        if !events.is_empty() {
            crate::webhooks::write_events(&mut self, events).await?;
        }
        match self.inner {
            Inner::Sqlite(tx) => tx.commit().await?,
            Inner::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}
