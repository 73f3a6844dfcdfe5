//! Usage over a period: decided outcomes counted and summed per UTC day,
//! agent, status and currencies.
//!
//! The figures pages and `/v1/usage` used to read every decided outcome of
//! the period and sum them in Rust: about a second on SQLite at 100,000
//! outcomes a month. Now the whole days of a period come from the
//! `usage_days` rollup (migration 0011), which [`move_usage`] keeps in the
//! same transaction as every change of a decided outcome, so it can never
//! disagree with the outcomes it sums. Only the part of a period that
//! starts or ends inside a day, which holds at most a day of outcomes,
//! is summed from `outcomes` itself ([`Store::usage_scan`]), through the
//! `(account_id, decided_at)` index.
//!
//! A bucket carries the raw sums of its status. What counts where (only
//! resolved outcomes add CU and charges; every decided outcome adds its
//! inference cost) is the readers' rule, as it was with single rows.

use bounty_core::outcome::OutcomeStatus;
use bounty_core::{AccountId, AgentId, ApiKeyMode, ComputeUnits, Money, Timestamp};
use chrono::{Duration, NaiveDate, NaiveTime};

use crate::db::{Db, on_pool};
use crate::outcomes::Outcome;
use crate::tx::{Tx, args};
use crate::{Store, StoreError};

/// Decided outcomes of one UTC day, agent, status and pair of currencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageBucket {
    /// The UTC day the outcomes were decided.
    pub day: NaiveDate,
    pub agent_id: AgentId,
    /// `Resolved`, `Failed` or `Reversed`.
    pub status: OutcomeStatus,
    /// How many outcomes the bucket sums (at least 1).
    pub outcomes: i64,
    pub cu: ComputeUnits,
    /// What they were charged, in the charges' currency.
    pub amount: Money,
    /// What their tasks cost us.
    pub inference_cost: Money,
}

#[derive(sqlx::FromRow)]
struct BucketRow {
    day: String,
    agent_id: String,
    status: String,
    currency: String,
    inference_currency: String,
    outcomes: i64,
    cu_milli: i64,
    amount_micros: i64,
    inference_cost_micros: i64,
}

impl TryFrom<BucketRow> for UsageBucket {
    type Error = StoreError;

    fn try_from(r: BucketRow) -> Result<Self, StoreError> {
        let day = NaiveDate::parse_from_str(&r.day, "%Y-%m-%d")
            .map_err(|e| StoreError::Corrupt(format!("usage day {:?}: {e}", r.day)))?;
        let bad = |c: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("usage {c}: {e}"));
        Ok(UsageBucket {
            day,
            agent_id: r.agent_id.parse().map_err(|e| bad("agent_id", &e))?,
            status: r.status.parse().map_err(|e| bad("status", &e))?,
            outcomes: r.outcomes,
            cu: ComputeUnits::from_milli(r.cu_milli),
            amount: Money::from_micros(
                r.amount_micros,
                r.currency.parse().map_err(|e| bad("currency", &e))?,
            ),
            inference_cost: Money::from_micros(
                r.inference_cost_micros,
                r.inference_currency
                    .parse()
                    .map_err(|e| bad("inference_currency", &e))?,
            ),
        })
    }
}

/// What one decided outcome adds to the rollup: its bucket and its sums.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UsageKey {
    livemode: bool,
    day: String,
    agent_id: String,
    status: &'static str,
    currency: String,
    inference_currency: String,
    cu_milli: i64,
    amount_micros: i64,
    inference_cost_micros: i64,
}

impl UsageKey {
    /// The outcome's contribution, or `None` while it is not decided.
    pub fn of(o: &Outcome) -> Option<UsageKey> {
        let at = o.decided_at.filter(|_| o.status.decided())?;
        Some(UsageKey {
            livemode: o.mode.livemode(),
            day: at.format("%Y-%m-%d").to_string(),
            agent_id: o.agent_id.to_string(),
            status: o.status.as_str(),
            currency: o.amount.currency.to_string(),
            inference_currency: o.inference_cost.currency.to_string(),
            cu_milli: o.cu.milli(),
            amount_micros: o.amount.micros,
            inference_cost_micros: o.inference_cost.micros,
        })
    }
}

/// Moves an outcome's contribution to the rollup from `before` to `after`
/// (either may be `None`: not decided), in the caller's transaction.
///
/// The two upserts run in key order, so two transactions moving outcomes
/// between the same buckets lock the rows in the same order and cannot
/// deadlock on Postgres.
pub async fn move_usage(
    tx: &mut Tx,
    account: AccountId,
    before: Option<UsageKey>,
    after: Option<UsageKey>,
) -> Result<(), StoreError> {
    if before == after {
        return Ok(());
    }
    let mut moves: Vec<(UsageKey, i64)> = before
        .map(|k| (k, -1))
        .into_iter()
        .chain(after.map(|k| (k, 1)))
        .collect();
    moves.sort();
    for (k, sign) in moves {
        tx.execute(
            "insert into usage_days (account_id, day, agent_id, status, currency, inference_currency, outcomes,
                 cu_milli, amount_micros, inference_cost_micros, livemode)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             on conflict (account_id, livemode, day, agent_id, status, currency, inference_currency) do update set
                 outcomes = usage_days.outcomes + excluded.outcomes,
                 cu_milli = usage_days.cu_milli + excluded.cu_milli,
                 amount_micros = usage_days.amount_micros + excluded.amount_micros,
                 inference_cost_micros = usage_days.inference_cost_micros + excluded.inference_cost_micros",
            args![
                account.to_string(),
                k.day,
                k.agent_id,
                k.status,
                k.currency,
                k.inference_currency,
                sign,
                sign * k.cu_milli,
                sign * k.amount_micros,
                sign * k.inference_cost_micros,
                k.livemode
            ],
        )
        .await?;
    }
    Ok(())
}

/// The start of `t`'s UTC day.
fn day_floor(t: Timestamp) -> Timestamp {
    t.date_naive().and_time(NaiveTime::MIN).and_utc()
}

/// The first start of a UTC day at or after `t`.
fn day_ceil(t: Timestamp) -> Timestamp {
    let floor = day_floor(t);
    if floor == t { t } else { floor + Duration::days(1) }
}

impl Store {
    /// The account's outcomes decided in `[from, to)`, in buckets ordered
    /// by day. Whole UTC days are read from the rollup; a period's partial
    /// first or last day is summed from its outcomes.
    pub async fn usage(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<UsageBucket>, StoreError> {
        let (whole_from, whole_to) = (day_ceil(from), day_floor(to));
        if whole_from >= whole_to {
            return self.usage_scan(account, mode, from, to).await;
        }
        let mut out = Vec::new();
        if from < whole_from {
            out.extend(self.usage_scan(account, mode, from, whole_from).await?);
        }
        out.extend(
            self.usage_days(account, mode, whole_from.date_naive(), whole_to.date_naive())
                .await?,
        );
        if whole_to < to {
            out.extend(self.usage_scan(account, mode, whole_to, to).await?);
        }
        Ok(out)
    }

    /// The rollup's buckets of the days `from..to` (`to` excluded).
    async fn usage_days(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<UsageBucket>, StoreError> {
        let rows: Vec<BucketRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select day, agent_id, status, currency, inference_currency, outcomes, cu_milli, amount_micros,
                     inference_cost_micros
                 from usage_days
                 where account_id = $1 and livemode = $4 and day >= $2 and day < $3 and outcomes <> 0
                 order by day, agent_id, status, currency, inference_currency",
            )
            .bind(account.to_string())
            .bind(from.format("%Y-%m-%d").to_string())
            .bind(to.format("%Y-%m-%d").to_string())
            .bind(mode.livemode())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(UsageBucket::try_from).collect()
    }

    /// The same buckets as [`Store::usage`], summed from the outcomes
    /// decided in `[from, to)` themselves rather than from the rollup: for
    /// partial days, and to check the rollup against.
    pub async fn usage_scan(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<UsageBucket>, StoreError> {
        // The day of `decided_at` in UTC, per dialect: SQLite stores RFC
        // 3339 text in UTC, Postgres a timestamptz.
        macro_rules! scan {
            ($day:literal) => {
                concat!(
                    "select ",
                    $day,
                    " as day, agent_id, status, currency, inference_currency, count(*) as outcomes,
                         cast(sum(cu_milli) as bigint) as cu_milli,
                         cast(sum(amount_micros) as bigint) as amount_micros,
                         cast(sum(inference_cost_micros) as bigint) as inference_cost_micros
                     from outcomes
                     where account_id = $1 and livemode = $4 and decided_at >= $2 and decided_at < $3
                       and status in ('resolved', 'failed', 'reversed', 'escalated')
                     group by 1, 2, 3, 4, 5
                     order by 1, 2, 3, 4, 5"
                )
            };
        }
        let rows: Vec<BucketRow> = match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query_as(scan!("substr(decided_at, 1, 10)"))
                    .bind(account.to_string())
                    .bind(from)
                    .bind(to)
                    .bind(mode.livemode())
                    .fetch_all(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_as(scan!("to_char(decided_at at time zone 'UTC', 'YYYY-MM-DD')"))
                    .bind(account.to_string())
                    .bind(from)
                    .bind(to)
                    .bind(mode.livemode())
                    .fetch_all(pool)
                    .await?
            }
        };
        rows.into_iter().map(UsageBucket::try_from).collect()
    }

    /// Rebuilds the account's rollup from its outcomes, for data loaded
    /// around the store (the dashboard benchmark's bulk seed). Not safe
    /// while workers decide the account's outcomes.
    #[cfg(feature = "test-support")]
    pub async fn rebuild_usage_days(&self, account: AccountId) -> Result<(), StoreError> {
        // Four-digit years, as SQLite compares the RFC 3339 text.
        let until = NaiveDate::from_ymd_opt(9999, 12, 31)
            .unwrap_or(NaiveDate::MAX)
            .and_time(NaiveTime::MIN)
            .and_utc();
        let mut modes = Vec::new();
        for mode in [ApiKeyMode::Live, ApiKeyMode::Test] {
            let buckets = self
                .usage_scan(account, mode, chrono::DateTime::UNIX_EPOCH, until)
                .await?;
            modes.push((mode, buckets));
        }
        let mut tx = self.begin().await?;
        tx.execute(
            "delete from usage_days where account_id = $1",
            args![account.to_string()],
        )
        .await?;
        for (mode, buckets) in modes {
            for b in buckets {
                tx.execute(
                    "insert into usage_days (account_id, day, agent_id, status, currency, inference_currency,
                         outcomes, cu_milli, amount_micros, inference_cost_micros, livemode)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    args![
                        account.to_string(),
                        b.day.format("%Y-%m-%d").to_string(),
                        b.agent_id,
                        b.status.as_str(),
                        b.amount.currency.to_string(),
                        b.inference_cost.currency.to_string(),
                        b.outcomes,
                        b.cu.milli(),
                        b.amount.micros,
                        b.inference_cost.micros,
                        mode.livemode()
                    ],
                )
                .await?;
            }
        }
        tx.commit().await
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    #[test]
    fn day_bounds() {
        let midnight = Utc.with_ymd_and_hms(2026, 5, 2, 0, 0, 0).unwrap();
        let noon = Utc.with_ymd_and_hms(2026, 5, 2, 12, 0, 0).unwrap();
        assert_eq!(day_floor(noon), midnight);
        assert_eq!(day_floor(midnight), midnight);
        assert_eq!(day_ceil(midnight), midnight);
        assert_eq!(day_ceil(noon), midnight + Duration::days(1));
    }
}
