//! Statements assembled at run time from the parts a request needs.
//!
//! A filter written `($2 is null or status = $2)` keeps one static
//! statement, but SQLite cannot use an index through it: a rare status
//! walked every index entry of the account. [`Sql`] instead appends only
//! the conditions that are present, numbering their placeholders as it
//! goes. Every fragment is a literal of ours; values are always bound.

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use crate::StoreError;
use crate::db::Db;
use crate::tx::{Arg, bind_all};

/// A statement being assembled, with its bound arguments.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    /// Appends `part`, whose `?`s become the next `$N` placeholders, bound
    /// to `args` in order.
    pub(crate) fn push(&mut self, part: &str, args: impl IntoIterator<Item = Arg>) -> &mut Sql {
        for (i, piece) in part.split('?').enumerate() {
            if i > 0 {
                self.text.push_str(&format!("${}", self.args.len() + i));
            }
            self.text.push_str(piece);
        }
        let before = self.args.len();
        self.args.extend(args);
        debug_assert_eq!(
            self.args.len() - before,
            part.matches('?').count(),
            "one argument per placeholder in {part:?}"
        );
        self
    }

    /// Runs the statement in `tx` and decodes every row; kept prepared
    /// (one statement per shape).
    pub(crate) async fn fetch_all_in<T>(self, tx: &mut crate::Tx) -> Result<Vec<T>, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        tx.fetch_all_assembled(self.text, &self.args).await
    }

    /// Runs the statement and decodes every row.
    ///
    /// On Postgres the statement is not kept prepared: each run is planned
    /// with its values. A kept statement switches to a generic plan after
    /// five runs, and for `lower(input) like $N` that plan walks the
    /// account's tasks newest first instead of asking the trigram index: a
    /// search found in one task of 100,000 went from 2 ms to over 80 ms.
    pub(crate) async fn fetch_all<T>(self, db: &Db) -> Result<Vec<T>, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        let text = sqlx::AssertSqlSafe(self.text);
        Ok(match db {
            Db::Sqlite(pool) => {
                bind_all!(sqlx::query_as(text), &self.args)
                    .fetch_all(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                bind_all!(sqlx::query_as(text), &self.args)
                    .persistent(false)
                    .fetch_all(pool)
                    .await?
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_in_order() {
        let mut q = Sql::default();
        q.push("select 1 where a = ?", [Arg::from("x")])
            .push(" and b between ? and ?", [Arg::from(1_i64), Arg::from(2_i64)])
            .push(" limit 3", []);
        assert_eq!(q.text, "select 1 where a = $1 and b between $2 and $3 limit 3");
        assert_eq!(q.args.len(), 3);
    }
}
