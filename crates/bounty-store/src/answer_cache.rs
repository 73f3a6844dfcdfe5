//! The verified-answer cache, its use per day, and each model's verifier
//! pass rate per agent: the store side of the cascade and the cache.
//!
//! An answer enters `answer_cache` only in the transaction that makes its
//! outcome `resolved` (so an answer that was merely produced, or that
//! waits for a signal, is never cached), and leaves it in the transaction
//! that reverses that outcome. The key holds the account, the agent and
//! its version, and the normalized request, so an answer is served only
//! to the account whose customer verified it, and only by the version
//! that produced it; an agent update also deletes the agent's entries.
//!
//! Pass rates count, per account, agent, model and role (`live` for the
//! route's models, `shadow` for a student), the verdicts recorded with
//! model calls. They move in the transaction that records the calls.

use std::collections::BTreeMap;

use bounty_core::outcome::OutcomeStatus;
use bounty_core::{
    AccountId, AgentId, Currency, Decision, Money, PassRate, RoutingPolicy, TaskId, TaskInput, Timestamp,
};
use chrono::NaiveDate;

use crate::column::Text;
use crate::db::on_pool;
use crate::ledger::read_billing;
use crate::outcomes::Outcome;
use crate::queue::ClaimedTask;
use crate::tasks::{NewModelCall, insert_model_calls};
use crate::tx::{Tx, args};
use crate::{Store, StoreError};

/// A verified answer that may be served again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedAnswer {
    /// The task whose resolved outcome verified it.
    pub task_id: TaskId,
    pub output: String,
    /// The model that produced it.
    pub model: String,
    /// What producing it cost: what serving it saves.
    pub cost: Money,
}

/// How an attempt used the cache: it looked up, and hit or missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheUse {
    /// On a hit that was served: the cost it saved.
    pub saved: Option<Money>,
}

/// Cache use over a period, per currency of the savings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheSummary {
    pub lookups: i64,
    pub hits: i64,
    pub saved_micros: BTreeMap<String, i64>,
}

/// A model's verdicts on one agent, live and as a shadow student.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelRates {
    pub live: PassRate,
    pub shadow: PassRate,
}

/// Counts the verdicts of `calls` (answering calls the model really made:
/// not cache hits, not pending) against each model's pass rate.
pub async fn record_verdicts(
    tx: &mut Tx,
    account: AccountId,
    agent_id: AgentId,
    calls: &[NewModelCall],
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut counts: BTreeMap<(&str, &str), (i64, i64, i64, Currency)> = BTreeMap::new();
    for c in calls.iter().filter(|c| !c.cache_hit) {
        let passed = match c.verdict {
            Some(Decision::Pass) => 1,
            Some(Decision::Fail) => 0,
            Some(Decision::Pending) | None => continue,
        };
        let role = if c.shadow { "shadow" } else { "live" };
        let e = counts
            .entry((c.model.as_str(), role))
            .or_insert((0, 0, 0, c.cost.currency));
        e.0 += 1;
        e.1 += passed;
        e.2 = e.2.saturating_add(c.cost.micros);
    }
    // In key order, so concurrent transactions lock rows in one order.
    for ((model, role), (tried, passed, cost, currency)) in counts {
        tx.execute(
            "insert into agent_model_stats (account_id, agent_id, model, role, tried, passed, cost_micros,
                 currency, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             on conflict (account_id, agent_id, model, role) do update set
                 tried = agent_model_stats.tried + excluded.tried,
                 passed = agent_model_stats.passed + excluded.passed,
                 cost_micros = agent_model_stats.cost_micros + excluded.cost_micros,
                 currency = excluded.currency,
                 updated_at = excluded.updated_at",
            args![
                account.to_string(),
                agent_id,
                model,
                role,
                tried,
                passed,
                cost,
                currency,
                now
            ],
        )
        .await?;
    }
    Ok(())
}

/// Counts one lookup (and its hit and savings) for the agent's day.
pub async fn record_cache_use(
    tx: &mut Tx,
    account: AccountId,
    agent_id: AgentId,
    used: &CacheUse,
    now: Timestamp,
) -> Result<(), StoreError> {
    // A miss saved nothing; it is counted under the plan's currency.
    let saved = match used.saved {
        Some(saved) => saved,
        None => Money::zero(read_billing(tx, account, now, false).await?.plan.currency()),
    };
    tx.execute(
        "insert into cache_days (account_id, agent_id, day, currency, lookups, hits, saved_micros)
         values ($1, $2, $3, $4, 1, $5, $6)
         on conflict (account_id, agent_id, day, currency) do update set
             lookups = cache_days.lookups + 1,
             hits = cache_days.hits + excluded.hits,
             saved_micros = cache_days.saved_micros + excluded.saved_micros",
        args![
            account,
            agent_id,
            now.format("%Y-%m-%d").to_string(),
            saved.currency,
            i64::from(used.saved.is_some()),
            saved.micros
        ],
    )
    .await?;
    Ok(())
}

/// The outcome was just resolved: when its agent version caches, its
/// task's answer becomes servable for the cache's TTL. An unexpired entry
/// for the same request is kept (a hit that was verified again does not
/// renew itself). A conversation's answer is never kept: it answers more
/// than the ticket the cache keys on.
pub async fn remember_answer(tx: &mut Tx, outcome: &Outcome, now: Timestamp) -> Result<(), StoreError> {
    debug_assert_eq!(outcome.status, OutcomeStatus::Resolved);
    let account = outcome.account_id.to_string();
    let task = outcome.task_id.to_string();
    let row: Option<(String, String, Option<String>, Option<String>)> = tx
        .fetch_optional(
            "select v.routing, t.input, t.output, t.output_model from tasks t
             join agent_versions v on v.agent_id = t.agent_id and v.version = t.agent_version
             where t.account_id = $1 and t.id = $2
               and not exists (select 1 from task_messages m where m.task_id = t.id and m.role = 'customer')",
            args![account.clone(), task.clone()],
        )
        .await?;
    let Some((routing, input, Some(output), Some(model))) = row else {
        return Ok(());
    };
    let routing: RoutingPolicy = serde_json::from_str(&routing)
        .map_err(|e| StoreError::Corrupt(format!("agent_versions.routing: {e}")))?;
    let Some(cache) = routing.cache else {
        return Ok(());
    };
    let input: TaskInput =
        serde_json::from_str(&input).map_err(|e| StoreError::Corrupt(format!("tasks.input: {e}")))?;
    let key = bounty_core::cache_key(outcome.agent_version, &input);
    // Every answering step's cost: what a hit spares the next request.
    let cost: Option<(Text<Currency>, i64)> = tx
        .fetch_optional(
            "select currency, cast(sum(cost_micros) as bigint) from model_calls
             where account_id = $1 and task_id = $2 and verdict is not null and not shadow and not cache_hit
             group by currency order by 2 desc limit 1",
            args![account.clone(), task.clone()],
        )
        .await?;
    let cost = cost.map_or(
        Money::zero(outcome.inference_cost.currency),
        |(currency, micros)| Money::from_micros(micros, currency.0),
    );
    let expires_at = now + chrono::Duration::hours(i64::from(cache.ttl_hours));
    tx.execute(
        "insert into answer_cache (account_id, agent_id, agent_version, cache_key, task_id, output, model,
             cost_micros, currency, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         on conflict (account_id, agent_id, agent_version, cache_key) do update set
             task_id = excluded.task_id, output = excluded.output, model = excluded.model,
             cost_micros = excluded.cost_micros, currency = excluded.currency,
             created_at = excluded.created_at, expires_at = excluded.expires_at
         where answer_cache.expires_at <= excluded.created_at",
        args![
            account,
            outcome.agent_id,
            outcome.agent_version,
            key,
            task,
            output,
            model,
            cost.micros,
            cost.currency,
            now,
            expires_at
        ],
    )
    .await?;
    Ok(())
}

/// The outcome is no longer resolved: its answer may not be served.
pub async fn forget_answer(tx: &mut Tx, outcome: &Outcome) -> Result<(), StoreError> {
    tx.execute(
        "delete from answer_cache where account_id = $1 and task_id = $2",
        args![outcome.account_id.to_string(), outcome.task_id.to_string()],
    )
    .await?;
    Ok(())
}

impl Store {
    /// Records a shadow student's calls beside the task's attempt, with
    /// their verdicts counted in the student's shadow pass rate. Touches
    /// nothing else: the task, its outcome and its charge stay as they are.
    pub async fn record_shadow_calls(
        &self,
        claimed: &ClaimedTask,
        calls: &[NewModelCall],
    ) -> Result<(), StoreError> {
        debug_assert!(calls.iter().all(|c| c.shadow), "only shadow calls");
        let now = self.now();
        // Numbered after the attempt's own calls without reading them
        // first: on SQLite a transaction that reads before it writes can
        // fail at once with `database is locked` when another write lands
        // in between. One attempt makes far fewer than this many calls, and
        // has at most one shadow run.
        const SHADOW_SEQ: i32 = 1000;
        let mut tx = self.begin().await?;
        insert_model_calls(
            &mut tx,
            claimed.task.account_id,
            claimed.task.id,
            claimed.attempt,
            SHADOW_SEQ,
            calls,
            now,
        )
        .await?;
        record_verdicts(
            &mut tx,
            claimed.task.account_id,
            claimed.task.agent_id,
            calls,
            now,
        )
        .await?;
        tx.commit().await
    }

    /// The unexpired verified answer to `key` for this agent version.
    pub async fn cached_answer(
        &self,
        account: AccountId,
        agent: AgentId,
        version: i32,
        key: &str,
    ) -> Result<Option<CachedAnswer>, StoreError> {
        type Row = (Text<TaskId>, String, String, i64, Text<Currency>);
        let row: Option<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select task_id, output, model, cost_micros, currency from answer_cache
                 where account_id = $1 and agent_id = $2 and agent_version = $3 and cache_key = $4
                   and expires_at > $5",
            )
            .bind(account.to_string())
            .bind(agent.to_string())
            .bind(version)
            .bind(key.to_owned())
            .bind(self.now())
            .fetch_optional(pool)
            .await?
        });
        Ok(
            row.map(|(task, output, model, cost_micros, currency)| CachedAnswer {
                task_id: task.0,
                output,
                model,
                cost: Money::from_micros(cost_micros, currency.0),
            }),
        )
    }

    /// Each model's verifier pass rates on the agent (every version).
    pub async fn model_pass_rates(
        &self,
        account: AccountId,
        agent: AgentId,
    ) -> Result<BTreeMap<String, ModelRates>, StoreError> {
        let rows: Vec<(String, String, i64, i64)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select model, role, tried, passed from agent_model_stats
                 where account_id = $1 and agent_id = $2 order by model, role",
            )
            .bind(account.to_string())
            .bind(agent.to_string())
            .fetch_all(pool)
            .await?
        });
        let mut out: BTreeMap<String, ModelRates> = BTreeMap::new();
        for (model, role, tried, passed) in rows {
            let rate = PassRate {
                tried: u64::try_from(tried).unwrap_or(0),
                passed: u64::try_from(passed).unwrap_or(0),
            };
            let e = out.entry(model).or_default();
            if role == "shadow" {
                e.shadow = rate;
            } else {
                e.live = rate;
            }
        }
        Ok(out)
    }

    /// The account's cache use on the UTC days `from..=to`.
    pub async fn cache_summary(
        &self,
        account: AccountId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<CacheSummary, StoreError> {
        let rows: Vec<(String, i64, i64, i64)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select currency, cast(sum(lookups) as bigint), cast(sum(hits) as bigint),
                     cast(sum(saved_micros) as bigint)
                 from cache_days where account_id = $1 and day >= $2 and day <= $3
                 group by currency order by currency",
            )
            .bind(account.to_string())
            .bind(from.format("%Y-%m-%d").to_string())
            .bind(to.format("%Y-%m-%d").to_string())
            .fetch_all(pool)
            .await?
        });
        Ok(summarize(rows))
    }

    /// Cache use of every account since the start, for `/metrics` (which
    /// shows no account's own figures).
    pub async fn cache_totals(&self) -> Result<CacheSummary, StoreError> {
        let rows: Vec<(String, i64, i64, i64)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select currency, cast(sum(lookups) as bigint), cast(sum(hits) as bigint),
                     cast(sum(saved_micros) as bigint)
                 from cache_days group by currency order by currency",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(summarize(rows))
    }
}

fn summarize(rows: Vec<(String, i64, i64, i64)>) -> CacheSummary {
    let mut s = CacheSummary::default();
    for (currency, lookups, hits, saved) in rows {
        s.lookups = s.lookups.saturating_add(lookups);
        s.hits = s.hits.saturating_add(hits);
        if saved != 0 {
            *s.saved_micros.entry(currency).or_default() += saved;
        }
    }
    s
}

/// One model's verdicts and answering cost on an account (or one of its
/// agents), live or as a shadow student, all time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStats {
    pub model: String,
    /// `live` (the route's models) or `shadow` (a student).
    pub role: String,
    /// Answers verified.
    pub tried: i64,
    /// Of which passed.
    pub passed: i64,
    /// What those answering calls cost.
    pub cost: Money,
}

impl Store {
    /// Per model and role: answers verified, passed, and their cost, on
    /// the account (or one agent), from the running totals the calls move.
    pub async fn model_stats(
        &self,
        account: AccountId,
        agent: Option<AgentId>,
    ) -> Result<Vec<ModelStats>, StoreError> {
        type Row = (String, String, i64, i64, i64, Text<Currency>);
        let rows: Vec<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select model, role, cast(sum(tried) as bigint), cast(sum(passed) as bigint),
                     cast(sum(cost_micros) as bigint), currency
                 from agent_model_stats where account_id = $1 and ($2 is null or agent_id = $2)
                 group by model, role, currency order by role, model",
            )
            .bind(account.to_string())
            .bind(agent.map(|a| a.to_string()))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(model, role, tried, passed, cost, currency)| ModelStats {
                model,
                role,
                tried,
                passed,
                cost: Money::from_micros(cost, currency.0),
            })
            .collect())
    }
}
