//! The store's error type.
//!
//! The split that matters to callers is between "the database is not
//! there right now" ([`StoreError::Unavailable`]: retry later, answer 503)
//! and everything else. Constraint violations come back by constraint
//! name, so the HTTP edge can turn a named unique key into a 409.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or stopped answering.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A named constraint refused the write.
    #[error("constraint `{constraint}` refused the write")]
    Constraint {
        /// The constraint's name from the migrations.
        constraint: String,
        /// The database's own error.
        #[source]
        source: sqlx::Error,
    },
    /// A stored row could not be read back into a domain value.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The database URL or options are not usable.
    #[error("{0}")]
    Config(String),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl StoreError {
    /// Whether the error means "the database is not reachable right now".
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_connection_error(&e) {
            return StoreError::Unavailable(e);
        }
        // A column that does not read back into its typed value (see
        // `column.rs`) is stored data gone bad, not a database failure.
        if let sqlx::Error::ColumnDecode { index, source } = &e {
            return StoreError::Corrupt(format!("column {index}: {source}"));
        }
        if let sqlx::Error::Database(db) = &e
            && let Some(constraint) = db
                .constraint()
                .map(str::to_owned)
                .or_else(|| sqlite_constraint(db.message()))
        {
            return StoreError::Constraint {
                constraint,
                source: e,
            };
        }
        StoreError::Database(e)
    }
}

fn is_connection_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        // SQLSTATE class 08 is "connection exception"; 57P01..57P03 are the
        // server shutting down or not yet accepting connections.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// SQLite names only the columns of a unique violation
/// (`UNIQUE constraint failed: api_keys.key_hash`), never the constraint.
/// Map the columns back to our constraint naming convention
/// (`<table>_<column>_key`) so both backends report the same name.
fn sqlite_constraint(message: &str) -> Option<String> {
    let cols = message.strip_prefix("UNIQUE constraint failed: ")?;
    let mut table = None;
    let mut names = Vec::new();
    for col in cols.split(", ") {
        let (t, c) = col.split_once('.')?;
        table.get_or_insert(t);
        names.push(c);
    }
    Some(format!("{}_{}_key", table?, names.join("_")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_unique_messages_map_to_constraint_names() {
        assert_eq!(
            sqlite_constraint("UNIQUE constraint failed: api_keys.key_hash").as_deref(),
            Some("api_keys_key_hash_key")
        );
        assert_eq!(
            sqlite_constraint("UNIQUE constraint failed: t.a, t.b").as_deref(),
            Some("t_a_b_key")
        );
        assert_eq!(sqlite_constraint("NOT NULL constraint failed: t.a"), None);
    }
}
