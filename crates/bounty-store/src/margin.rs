//! The recorded figures the pricing-model comparison
//! ([`bounty_core::margin`]) is computed from: outcomes, charges and the
//! inference we paid for over a period, and the raw cost of the same work
//! done on the frontier model alone.
//!
//! The raw cost is an estimate from recorded calls, not a price list: for
//! each agent, the decided tasks times the average recorded cost of an
//! answering call by the agent's frontier model (its route's last), from
//! the running sums the worker keeps with the pass rates (so the report
//! reads a few rows whatever the volume). An agent whose frontier never
//! answered counts its delivered cost as raw, so the estimate never claims
//! a saving it cannot show.

use bounty_core::margin::MarginInputs;
use bounty_core::{AccountId, AgentId, PageLimit, Timestamp};

use crate::db::on_pool;
use crate::{Store, StoreError};

/// The comparison's inputs in `currency`, with how the raw cost was
/// estimated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarginFigures {
    pub inputs: MarginInputs,
    pub currency: String,
    /// Inference paid for shadow students (part of the delivered cost).
    pub shadow_cost_micros: i64,
    /// Cost the verified-answer cache's hits saved.
    pub cache_saved_micros: i64,
    /// Per agent: its frontier model and the average cost per answering
    /// call used for the raw estimate (`None`: no such call recorded).
    pub frontier: Vec<(AgentId, String, Option<i64>)>,
}

impl Store {
    /// The account's (or one agent's) figures for `[from, to)` in
    /// `currency` (money in other currencies is left out).
    pub async fn margin_figures(
        &self,
        account: AccountId,
        agent: Option<AgentId>,
        from: Timestamp,
        to: Timestamp,
        currency: &str,
    ) -> Result<MarginFigures, StoreError> {
        let agents: Vec<(AgentId, Vec<String>)> = match agent {
            Some(id) => self
                .get_agent(account, id, None)
                .await?
                .map(|a| vec![(a.id, a.model_route)])
                .unwrap_or_default(),
            None => {
                let mut all = Vec::new();
                let mut after = None;
                loop {
                    let limit = PageLimit::new(PageLimit::MAX).unwrap_or(PageLimit::DEFAULT);
                    let page = self.list_agents(account, limit, after).await?;
                    all.extend(page.items.into_iter().map(|a| (a.id, a.model_route)));
                    match page.next_cursor.map(|c| c.parse()) {
                        Some(Ok(next)) => after = Some(next),
                        _ => break,
                    }
                }
                all
            }
        };
        // The margin is live business: test mode runs are left out.
        let buckets = self
            .usage(account, bounty_core::ApiKeyMode::Live, from, to)
            .await?;
        let mut f = MarginFigures {
            inputs: MarginInputs::default(),
            currency: currency.to_owned(),
            shadow_cost_micros: 0,
            cache_saved_micros: 0,
            frontier: Vec::new(),
        };
        for (agent_id, route) in &agents {
            let id = agent_id.to_string();
            let (mut decided, mut delivered) = (0_i64, 0_i64);
            for b in buckets.iter().filter(|b| b.agent_id.to_string() == id) {
                decided += b.outcomes;
                if b.status == bounty_core::outcome::OutcomeStatus::Resolved {
                    f.inputs.resolved += b.outcomes;
                    if b.amount.currency.as_str() == currency {
                        f.inputs.charges_micros += b.amount.micros;
                    }
                }
                if b.inference_cost.currency.as_str() == currency {
                    delivered += b.inference_cost.micros;
                }
            }
            let shadow = self.shadow_cost(account, *agent_id, from, to, currency).await?;
            let frontier = route.last().cloned().unwrap_or_default();
            let average = self
                .answer_call_average(account, *agent_id, &frontier, currency)
                .await?;
            f.inputs.decided += decided;
            f.inputs.delivered_cost_micros += delivered + shadow;
            f.shadow_cost_micros += shadow;
            f.inputs.raw_cost_micros += match average {
                Some(avg) => decided.saturating_mul(avg),
                None => delivered,
            };
            f.frontier.push((*agent_id, frontier, average));
        }
        let summary = self
            .cache_summary(
                account,
                from.date_naive(),
                (to - chrono::Duration::microseconds(1)).date_naive(),
            )
            .await?;
        f.cache_saved_micros = summary.saved_micros.get(currency).copied().unwrap_or(0);
        Ok(f)
    }

    /// Shadow calls' cost for the agent's tasks, made in `[from, to)`.
    async fn shadow_cost(
        &self,
        account: AccountId,
        agent: AgentId,
        from: Timestamp,
        to: Timestamp,
        currency: &str,
    ) -> Result<i64, StoreError> {
        let (sum,): (Option<i64>,) = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select cast(sum(c.cost_micros) as bigint) from model_calls c
                 join tasks t on t.id = c.task_id
                 where c.account_id = $1 and t.account_id = $1 and t.agent_id = $2 and c.shadow
                   and c.currency = $3 and c.created_at >= $4 and c.created_at < $5",
            )
            .bind(account.to_string())
            .bind(agent.to_string())
            .bind(currency.to_owned())
            .bind(from)
            .bind(to)
            .fetch_one(pool)
            .await?
        });
        Ok(sum.unwrap_or(0))
    }

    /// The average cost (rounded up) of a live answering call by `model`
    /// for the agent, in `currency`; `None` without one.
    async fn answer_call_average(
        &self,
        account: AccountId,
        agent: AgentId,
        model: &str,
        currency: &str,
    ) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64, i64)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select tried, cost_micros from agent_model_stats
                 where account_id = $1 and agent_id = $2 and model = $3 and role = 'live' and currency = $4",
            )
            .bind(account.to_string())
            .bind(agent.to_string())
            .bind(model.to_owned())
            .bind(currency.to_owned())
            .fetch_optional(pool)
            .await?
        });
        Ok(row
            .filter(|(n, _)| *n > 0)
            .map(|(n, sum)| (sum + n - 1).div_euclid(n)))
    }
}
