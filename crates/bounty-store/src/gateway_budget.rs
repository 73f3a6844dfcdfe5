//! Gateway budgets that hold under concurrency: requests and tokens per
//! minute, and inference spend per month, per account and per API key.
//!
//! A call is **reserved** before it goes upstream, in one transaction
//! ([`Store::reserve_gateway`]): for each limited scope, its minute row is
//! incremented by one request and the call's estimated tokens, and its
//! month row is locked while the spend committed so far plus the live
//! reservations plus this call's estimate is checked against the cap; a
//! reservation row then holds the estimate. Each check reads the row the
//! same statement incremented (Postgres holds its row lock to the commit;
//! SQLite has one writer), so concurrent calls serialise per scope and
//! none is admitted past a limit on what was reserved. A refusal rolls the
//! whole transaction back: it uses nothing.
//!
//! After the call, [`Store::commit_gateway`] puts the real figures in
//! place of the estimate (tokens adjusted on the minute row, the cost
//! added to the month row, the reservation deleted), in one transaction.
//! The real cost can exceed the estimate, so the cap can be passed, by at
//! most what the calls in flight at that moment exceeded their
//! estimates. A holder that dies before committing leaves a reservation
//! that expires on its own (`expires_at`): a crash never keeps a budget
//! full (the false-429 failure of LiteLLM #36592).

use std::time::Duration;

use bounty_core::{AccountId, Currency, Money, Timestamp};
use chrono::{Datelike, TimeZone, Timelike, Utc};

use crate::db::on_pool;
use crate::tx::{Tx, args};
use crate::{Store, StoreError};

/// `gateway_limits` as read: scope, the three limits, currency.
type LimitRow = (String, Option<i64>, Option<i64>, Option<i64>, String);

/// The scope of an account-wide limit.
pub const ACCOUNT_SCOPE: &str = "account";

/// Limits of one scope; `None`: not limited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayLimit {
    /// [`ACCOUNT_SCOPE`], or an API key's id.
    pub scope: String,
    pub requests_per_minute: Option<i64>,
    pub tokens_per_minute: Option<i64>,
    pub monthly_spend: Option<Money>,
}

/// A call's hold on its scopes' budgets, until committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub account: AccountId,
    /// Minute-limited scopes, with the minute and the tokens reserved.
    minutes: Vec<(String, String, i64)>,
    /// Spend-limited scopes, with the month and the reservation row.
    months: Vec<(String, String, String)>,
}

/// Which limit refused a call, and when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetRefusal {
    pub scope: String,
    /// `requests_per_minute`, `tokens_per_minute` or `monthly_spend`.
    pub limit: &'static str,
    pub retry_after: Duration,
}

fn minute_key(now: Timestamp) -> String {
    now.format("%Y-%m-%dT%H:%M").to_string()
}

fn month_key(now: Timestamp) -> String {
    format!("{:04}-{:02}", now.year(), now.month())
}

fn until_next_minute(now: Timestamp) -> Duration {
    Duration::from_secs(60 - u64::from(now.second()))
}

fn until_next_month(now: Timestamp) -> Duration {
    let (year, month) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .and_then(|next| (next - now).to_std().ok())
        .unwrap_or(Duration::from_secs(3600))
}

impl Store {
    /// Sets (or, with every limit `None`, removes) the limits of one scope.
    pub async fn set_gateway_limit(
        &self,
        account: AccountId,
        limit: &GatewayLimit,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        if limit.requests_per_minute.is_none()
            && limit.tokens_per_minute.is_none()
            && limit.monthly_spend.is_none()
        {
            tx.execute(
                "delete from gateway_limits where account_id = $1 and scope = $2",
                args![account, limit.scope.clone()],
            )
            .await?;
        } else {
            tx.execute(
                "insert into gateway_limits (account_id, scope, requests_per_minute, tokens_per_minute,
                     monthly_spend_micros, currency, updated_at)
                 values ($1, $2, $3, $4, $5, $6, $7)
                 on conflict (account_id, scope) do update set
                     requests_per_minute = excluded.requests_per_minute,
                     tokens_per_minute = excluded.tokens_per_minute,
                     monthly_spend_micros = excluded.monthly_spend_micros,
                     currency = excluded.currency,
                     updated_at = excluded.updated_at",
                args![
                    account,
                    limit.scope.clone(),
                    limit.requests_per_minute,
                    limit.tokens_per_minute,
                    limit.monthly_spend.map(|m| m.micros),
                    limit.monthly_spend.map_or(Currency::USD, |m| m.currency),
                    now
                ],
            )
            .await?;
        }
        tx.commit().await
    }

    /// The account's limits: its own and its keys'. A plain read (no
    /// write lock on SQLite): it runs on the request path.
    pub async fn gateway_limits(&self, account: AccountId) -> Result<Vec<GatewayLimit>, StoreError> {
        let rows: Vec<LimitRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select scope, requests_per_minute, tokens_per_minute, monthly_spend_micros, currency
                 from gateway_limits where account_id = $1 order by scope",
            )
            .bind(account.to_string())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(scope, rpm, tpm, spend, currency)| {
                let currency: Currency = currency
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("gateway_limits.currency: {e}")))?;
                Ok(GatewayLimit {
                    scope,
                    requests_per_minute: rpm,
                    tokens_per_minute: tpm,
                    monthly_spend: spend.map(|m| Money::from_micros(m, currency)),
                })
            })
            .collect()
    }

    /// Reserves one call of `tokens` estimated tokens and `spend` estimated
    /// micros against every limit in `limits` (see the module doc). `spend`
    /// is `None` for a call that costs the operator nothing (BYOK). `hold`
    /// is how long the reservation outlives a holder that never commits.
    pub async fn reserve_gateway(
        &self,
        account: AccountId,
        limits: &[GatewayLimit],
        tokens: i64,
        spend: Option<i64>,
        hold: Duration,
    ) -> Result<Result<Reservation, BudgetRefusal>, StoreError> {
        let now = self.now();
        let (minute, month) = (minute_key(now), month_key(now));
        let mut reservation = Reservation {
            account,
            minutes: Vec::new(),
            months: Vec::new(),
        };
        let mut tx = self.begin().await?;
        for limit in limits {
            if limit.requests_per_minute.is_some() || limit.tokens_per_minute.is_some() {
                let (requests, used): (i64, i64) = tx
                    .fetch_one(
                        "insert into gateway_windows (account_id, scope, window_key, requests, tokens, spend_micros)
                         values ($1, $2, $3, 1, $4, 0)
                         on conflict (account_id, scope, window_key) do update set
                             requests = gateway_windows.requests + 1,
                             tokens = gateway_windows.tokens + excluded.tokens
                         returning requests, tokens",
                        args![account, limit.scope.clone(), minute.clone(), tokens],
                    )
                    .await?;
                let over = if limit.requests_per_minute.is_some_and(|max| requests > max) {
                    Some("requests_per_minute")
                } else if limit.tokens_per_minute.is_some_and(|max| used > max) {
                    Some("tokens_per_minute")
                } else {
                    None
                };
                if let Some(which) = over {
                    return Ok(Err(BudgetRefusal {
                        scope: limit.scope.clone(),
                        limit: which,
                        retry_after: until_next_minute(now),
                    }));
                }
                reservation
                    .minutes
                    .push((limit.scope.clone(), minute.clone(), tokens));
            }
            if let (Some(cap), Some(spend)) = (limit.monthly_spend, spend) {
                let (committed,): (i64,) = tx
                    .fetch_one(
                        "insert into gateway_windows (account_id, scope, window_key, requests, tokens, spend_micros)
                         values ($1, $2, $3, 0, 0, 0)
                         on conflict (account_id, scope, window_key) do update set
                             spend_micros = gateway_windows.spend_micros
                         returning spend_micros",
                        args![account, limit.scope.clone(), month.clone()],
                    )
                    .await?;
                let (held,): (i64,) = tx
                    .fetch_one(
                        "select cast(coalesce(sum(spend_micros), 0) as bigint) from gateway_reservations
                         where account_id = $1 and scope = $2 and month_key = $3 and expires_at > $4",
                        args![account, limit.scope.clone(), month.clone(), now],
                    )
                    .await?;
                if committed.saturating_add(held).saturating_add(spend) > cap.micros {
                    return Ok(Err(BudgetRefusal {
                        scope: limit.scope.clone(),
                        limit: "monthly_spend",
                        retry_after: until_next_month(now),
                    }));
                }
                let id = format!("gwr_{}", ulid_like());
                let expires = now + chrono::Duration::from_std(hold).unwrap_or(chrono::Duration::minutes(10));
                tx.execute(
                    "insert into gateway_reservations (id, account_id, scope, month_key, spend_micros, expires_at)
                     values ($1, $2, $3, $4, $5, $6)",
                    args![id.clone(), account, limit.scope.clone(), month.clone(), spend, expires],
                )
                .await?;
                reservation.months.push((limit.scope.clone(), month.clone(), id));
            }
        }
        tx.commit().await?;
        Ok(Ok(reservation))
    }

    /// Puts a call's real `tokens` and `spend` in place of its reservation.
    pub async fn commit_gateway(
        &self,
        reservation: &Reservation,
        tokens: i64,
        spend: i64,
    ) -> Result<(), StoreError> {
        if reservation.minutes.is_empty() && reservation.months.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for (scope, minute, reserved) in &reservation.minutes {
            tx.execute(
                "update gateway_windows set tokens = tokens + $1
                 where account_id = $2 and scope = $3 and window_key = $4",
                args![
                    tokens - reserved,
                    reservation.account,
                    scope.clone(),
                    minute.clone()
                ],
            )
            .await?;
        }
        for (scope, month, id) in &reservation.months {
            commit_month(&mut tx, reservation.account, scope, month, id, spend).await?;
        }
        tx.commit().await
    }
}

async fn commit_month(
    tx: &mut Tx,
    account: AccountId,
    scope: &str,
    month: &str,
    id: &str,
    spend: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "update gateway_windows set spend_micros = spend_micros + $1
         where account_id = $2 and scope = $3 and window_key = $4",
        args![spend, account, scope, month],
    )
    .await?;
    tx.execute(
        "delete from gateway_reservations where account_id = $1 and id = $2",
        args![account, id],
    )
    .await?;
    Ok(())
}

/// A unique, time-ordered id for a reservation row.
fn ulid_like() -> String {
    bounty_core::GatewayCallId::new()
        .to_string()
        .trim_start_matches("gwc_")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_waits() {
        let at = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 45).unwrap();
        assert_eq!(minute_key(at), "2026-12-31T23:59");
        assert_eq!(month_key(at), "2026-12");
        assert_eq!(until_next_minute(at), Duration::from_secs(15));
        assert_eq!(until_next_month(at), Duration::from_secs(15));
    }
}
