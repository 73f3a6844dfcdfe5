//! The connection pool over either backend, and migrations.
//!
//! The backend is chosen by the URL's scheme: `sqlite:` for the embedded
//! database, `postgres:`/`postgresql:` for a server. SQLite is opened in
//! WAL mode with a busy timeout, so readers never block the writer and
//! concurrent writers wait instead of failing. Migrations are embedded in
//! the binary; on Postgres sqlx's migrator holds an advisory lock while it
//! runs, so several processes may start at once and each migration still
//! applies exactly once.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bounty_core::{Clock, Timestamp};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::StoreError;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// How to reach the database.
#[derive(Clone)]
pub struct DatabaseOptions {
    /// `sqlite://path/to/file.db` or `postgres://user:pass@host/db`. May
    /// hold a password, so `Debug` never shows it.
    pub url: String,
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// How long a query waits for a free (or new) connection before the
    /// database counts as unavailable.
    pub acquire_timeout: Duration,
    /// SQLite only: how long a writer waits for the write lock.
    pub sqlite_busy_timeout: Duration,
}

impl fmt::Debug for DatabaseOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseOptions")
            .field("url", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("sqlite_busy_timeout", &self.sqlite_busy_timeout)
            .finish()
    }
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// A Postgres server.
    Postgres,
}

impl Backend {
    /// The backend a URL names, or an error naming what was expected.
    pub fn of_url(url: &str) -> Result<Backend, StoreError> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(StoreError::Config(
                "the database URL must start with `sqlite:` or `postgres://`".to_owned(),
            )),
        }
    }
}

#[derive(Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store has. The body
/// is compiled once per backend, so the same portable SQL serves both.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// The rows of `$table` whose `$column` is one of `$items`, and whose
/// `account_id` is `$account`: `select $columns from ... where ...`, then
/// `$tail` (an `order by`, or nothing). The keys are a `values` list
/// joined to the table, not `$column in (...)`: with `in`, SQLite without
/// statistics prefers the account's index and reads every row of the
/// account (43 ms for a page of 50 at 100,000 tasks); joined, each key is
/// one probe of `$column`'s index. The account is compared as
/// `account_id || ''` so that SQLite's planner cannot build a temporary
/// index on `(account_id, $column)` for every statement (it did for the
/// receipt events: 200 ms a batch at 100,000 outcomes); the key column's
/// own index serves, and the account still scopes every row. The text is
/// literals and numbered placeholders only.
macro_rules! in_list {
    ($store:expr, $columns:expr, $table:literal, $column:literal, $account:expr, $items:expr, $tail:expr) => {{
        let items = $items;
        if items.is_empty() {
            Vec::new()
        } else {
            let keys = (0..items.len())
                .map(|i| format!("(cast(${} as text))", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                concat!(
                    "select {} from (select column1 as bounty_key from (values {}) as key_list) keys join ",
                    $table,
                    " on ",
                    $table,
                    ".",
                    $column,
                    " = keys.bounty_key where ",
                    $table,
                    ".account_id || '' = $1 {}"
                ),
                $columns, keys, $tail
            );
            $crate::db::on_pool!(&$store.db, pool => {
                let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind($account.to_string());
                for item in items {
                    q = q.bind(item.to_string());
                }
                q.fetch_all(pool).await?
            })
        }
    }};
}
pub(crate) use in_list;

/// Begins a transaction that may write, on either pool type: `BEGIN
/// IMMEDIATE` on SQLite (see [`Store::begin`](crate::Store)), a plain
/// `begin` on Postgres. Code inside [`on_pool!`] uses this instead of
/// `pool.begin()`.
pub(crate) trait BeginWrite {
    type Database: sqlx::Database;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Database = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Database = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// The store: a pool over one backend, and the clock its timestamps read.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: Db,
    clock: Arc<dyn Clock>,
    /// Whether changes write their events (`webhooks.events`; default on).
    pub(crate) events_on: bool,
    /// How [`Store::grouped`] groups writes.
    pub(crate) group: crate::group::GroupCommit,
    /// Its batchers, shared by every clone.
    pub(crate) group_slot: Arc<crate::group::GroupSlot>,
    /// The integrations webhook URLs named lately, shared by every clone.
    pub(crate) inbound_cache: Arc<crate::integrations::InboundCache>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend()).finish()
    }
}

impl Store {
    /// The same database read and written at `clock`'s time: how seeding
    /// writes history (the demo's past month) through the ordinary paths.
    pub fn with_clock(&self, clock: Arc<dyn Clock>) -> Store {
        Store {
            db: self.db.clone(),
            clock,
            events_on: self.events_on,
            group: self.group,
            group_slot: self.group_slot.clone(),
            inbound_cache: self.inbound_cache.clone(),
        }
    }

    /// The same store, writing events with each change (`true`, the
    /// default) or none at all: no event is listed and nothing is
    /// delivered to webhook endpoints (`webhooks.events = false`).
    pub fn with_events(mut self, on: bool) -> Store {
        self.events_on = on;
        // Its batchers begin transactions that write events, or not.
        self.group_slot = Arc::default();
        self
    }

    /// The same store, grouping writes by `group` (see
    /// [`Store::grouped`]).
    pub fn with_group_commit(mut self, group: crate::group::GroupCommit) -> Store {
        self.group = group;
        self.group_slot = Arc::default();
        self
    }

    /// Opens a pool and checks that one connection works. A SQLite file
    /// (and its directory) is created when missing.
    pub async fn connect(opts: &DatabaseOptions, clock: Arc<dyn Clock>) -> Result<Store, StoreError> {
        let db = match Backend::of_url(&opts.url)? {
            Backend::Sqlite => {
                let connect = SqliteConnectOptions::from_str(&opts.url)
                    .map_err(|e| StoreError::Config(format!("the SQLite database URL is invalid: {e}")))?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(opts.sqlite_busy_timeout);
                if let Some(dir) = connect.get_filename().parent()
                    && !dir.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Config(format!(
                            "cannot create the database directory {}: {e}",
                            dir.display()
                        ))
                    })?;
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(opts.max_connections)
                    .acquire_timeout(opts.acquire_timeout)
                    .connect_with(connect)
                    .await?;
                Db::Sqlite(pool)
            }
            Backend::Postgres => {
                let connect = PgConnectOptions::from_str(&opts.url)
                    .map_err(|e| StoreError::Config(format!("the Postgres database URL is invalid: {e}")))?
                    .application_name("bounty");
                let pool = PgPoolOptions::new()
                    .max_connections(opts.max_connections)
                    .acquire_timeout(opts.acquire_timeout)
                    .connect_with(connect)
                    .await?;
                Db::Postgres(pool)
            }
        };
        Ok(Store {
            db,
            clock,
            events_on: true,
            group: crate::group::GroupCommit::default(),
            group_slot: Arc::default(),
            inbound_cache: Arc::default(),
        })
    }

    /// Applies every migration not yet applied. Safe to call from several
    /// processes at once on Postgres (advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.db {
            Db::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// How many migrations this binary carries.
    pub fn migration_count(&self) -> usize {
        match self.db {
            Db::Sqlite(_) => SQLITE_MIGRATIONS.iter().count(),
            Db::Postgres(_) => POSTGRES_MIGRATIONS.iter().count(),
        }
    }

    /// One round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(&self.db, pool => {
            sqlx::query("select 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Which backend this store runs on.
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// The clock that stamps rows.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Closes every connection; queries after this fail.
    pub async fn close(&self) {
        on_pool!(&self.db, pool => pool.close().await);
    }
}
