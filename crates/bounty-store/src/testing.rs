//! Test support (feature `test-support`): fresh databases for tests, a
//! SQLite file in a temp dir or a new Postgres database on the server
//! `TEST_DATABASE_URL` names, dropped again when the test ends. Shared by
//! the workspace's black-box suite, the dashboard's tests and the benches.

use std::net::SocketAddr;
use std::str::FromStr;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// Which backend a test runs on: the store's own.
pub use crate::db::Backend;

/// A database that exists for one test.
pub struct TestDatabase {
    url: String,
    /// Postgres: (admin URL, database name) to drop on drop.
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

/// The Postgres server tests use.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "Postgres tests need TEST_DATABASE_URL (a server where the user may CREATE DATABASE). \
             Run scripts/test.sh, which starts a throwaway Postgres when none is given."
        )
    })
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or(before_query);
    let mut out = format!("{scheme}://{authority}/{name}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl TestDatabase {
    /// Creates an empty database of `backend`.
    pub async fn create(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("bounty.db").display());
                TestDatabase {
                    url,
                    postgres: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin = admin_url();
                let name = format!(
                    "bounty_test_{}",
                    bounty_core::RequestId::new().ulid().to_string().to_lowercase()
                );
                let mut conn = PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("cannot reach TEST_DATABASE_URL: {e}"));
                sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let _ = conn.close().await;
                TestDatabase {
                    url: with_database(&admin, &name),
                    postgres: Some((admin, name)),
                    _dir: None,
                }
            }
        }
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The Postgres server's address, for a proxy in front of it.
    pub fn postgres_addr(&self) -> Option<SocketAddr> {
        let opts = PgConnectOptions::from_str(self.postgres.as_ref()?.0.as_str()).ok()?;
        let host = match opts.get_host() {
            "localhost" => "127.0.0.1",
            h => h,
        };
        format!("{host}:{}", opts.get_port()).parse().ok()
    }

    /// This database's URL, but through `proxy` instead of the server.
    pub fn url_via(&self, proxy: SocketAddr) -> String {
        let (admin, name) = self.postgres.as_ref().expect("postgres");
        let opts = PgConnectOptions::from_str(admin).expect("admin URL");
        let user = opts.get_username();
        format!("postgres://{user}@{proxy}/{name}?sslmode=disable")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop the database from a thread of its own: Drop cannot await, and
        // the test's runtime may be shutting down.
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "drop database if exists {name} with (force)"
                )))
                .execute(&mut conn)
                .await
                .ok()?;
                conn.close().await.ok()
            })
        });
        let _ = handle.join();
    }
}

#[cfg(test)]
#[test]
fn database_name_is_replaced() {
    assert_eq!(
        with_database("postgres://u:p@h:5/postgres?sslmode=disable", "x"),
        "postgres://u:p@h:5/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}
