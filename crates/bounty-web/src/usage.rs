//! The overview's and the usage page's numbers, from the store's usage
//! buckets (decided outcomes counted per day, agent and status).
//!
//! This is the same aggregation as the API's `/v1/usage` (resolved
//! outcomes add CU and charges, every decided outcome adds its inference
//! cost, margin is charges less cost), kept small and local because the
//! dashboard may not depend on the server crate. Percentages are integer
//! basis points: no floats near money. The usage page's groups (per day,
//! per agent) are [`summarize`] run on each group's rows, so a group's
//! figures and the overview's can never disagree.

use std::collections::BTreeMap;

use bounty_core::outcome::OutcomeStatus;
use bounty_store::UsageBucket;
use chrono::NaiveDate;

use crate::format::ratio_bp;

/// Money of one currency over the period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CurrencyTotals {
    pub(crate) charges_micros: i64,
    pub(crate) cost_micros: i64,
}

impl CurrencyTotals {
    /// Charges less our inference cost: the operator's figure, never shown
    /// to a customer.
    pub(crate) fn margin_micros(&self) -> i64 {
        self.charges_micros.saturating_sub(self.cost_micros)
    }

    /// Gross margin over charges; `None` when nothing was charged.
    pub(crate) fn margin_bp(&self) -> Option<i64> {
        ratio_bp(self.margin_micros(), self.charges_micros)
    }
}

/// One day of the charts: money in the chart's currency, and the day's
/// decided outcomes (of every currency) for its resolution rate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Day {
    pub(crate) charges_micros: i64,
    pub(crate) cost_micros: i64,
    /// Outcomes decided that day: resolved, failed, reversed or escalated.
    pub(crate) decided: u64,
    /// Of those, resolved.
    pub(crate) resolved: u64,
}

/// The period's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) resolved: u64,
    pub(crate) failed: u64,
    pub(crate) reversed: u64,
    /// Handed to a person: never charged.
    pub(crate) escalated: u64,
    pub(crate) cu_milli: i64,
    pub(crate) by_currency: BTreeMap<String, CurrencyTotals>,
    /// The currency with the most charges (then cost): the chart's and the
    /// headline figures'. `USD` for an empty period.
    pub(crate) currency: String,
    /// Per UTC day of decision, in `currency`.
    pub(crate) days: BTreeMap<NaiveDate, Day>,
}

impl Summary {
    pub(crate) fn decided(&self) -> u64 {
        self.resolved + self.failed + self.reversed + self.escalated
    }

    /// Resolved over decided.
    pub(crate) fn resolution_bp(&self) -> Option<i64> {
        let decided = i64::try_from(self.decided()).ok()?;
        ratio_bp(i64::try_from(self.resolved).ok()?, decided)
    }

    /// The headline currency's totals.
    pub(crate) fn main(&self) -> CurrencyTotals {
        self.by_currency.get(&self.currency).cloned().unwrap_or_default()
    }
}

fn add(v: &mut i64, by: i64) {
    *v = v.saturating_add(by);
}

/// Sums decided outcomes (in buckets) into the period's summary.
pub(crate) fn summarize(buckets: &[UsageBucket]) -> Summary {
    let mut s = Summary::default();
    for b in buckets {
        let n = u64::try_from(b.outcomes).unwrap_or(0);
        match b.status {
            OutcomeStatus::Resolved => {
                s.resolved += n;
                add(&mut s.cu_milli, b.cu.milli());
                add(
                    &mut s
                        .by_currency
                        .entry(b.amount.currency.to_string())
                        .or_default()
                        .charges_micros,
                    b.amount.micros,
                );
            }
            OutcomeStatus::Reversed => s.reversed += n,
            OutcomeStatus::Escalated => s.escalated += n,
            _ => s.failed += n,
        }
        add(
            &mut s
                .by_currency
                .entry(b.inference_cost.currency.to_string())
                .or_default()
                .cost_micros,
            b.inference_cost.micros,
        );
    }
    s.currency = s
        .by_currency
        .iter()
        .max_by_key(|(_, t)| (t.charges_micros, t.cost_micros))
        .map(|(c, _)| c.clone())
        .unwrap_or_else(|| "USD".to_owned());
    for b in buckets {
        let n = u64::try_from(b.outcomes).unwrap_or(0);
        let day = s.days.entry(b.day).or_default();
        day.decided += n;
        let resolved = b.status == OutcomeStatus::Resolved;
        if resolved {
            day.resolved += n;
        }
        if resolved && b.amount.currency.as_str() == s.currency {
            add(&mut day.charges_micros, b.amount.micros);
        }
        if b.inference_cost.currency.as_str() == s.currency {
            add(&mut day.cost_micros, b.inference_cost.micros);
        }
    }
    s
}

/// What the usage page groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupBy {
    /// The UTC day the outcome was decided.
    Day,
    /// The agent that did the task.
    Agent,
}

impl GroupBy {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Agent => "agent",
        }
    }
}

/// Each group's summary, by key: the day as `YYYY-MM-DD` (so keys sort by
/// date), or the agent's id.
pub(crate) fn group(buckets: &[UsageBucket], by: GroupBy) -> BTreeMap<String, Summary> {
    let mut groups: BTreeMap<String, Vec<UsageBucket>> = BTreeMap::new();
    for b in buckets {
        let key = match by {
            GroupBy::Day => b.day.to_string(),
            GroupBy::Agent => b.agent_id.to_string(),
        };
        groups.entry(key).or_default().push(b.clone());
    }
    groups
        .into_iter()
        .map(|(key, rows)| (key, summarize(&rows)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bucket of one outcome.
    fn row(status: &str, amount: i64, cost: i64, day: u32) -> UsageBucket {
        let status: OutcomeStatus = status.parse().unwrap();
        UsageBucket {
            day: NaiveDate::from_ymd_opt(2026, 5, day).unwrap(),
            agent_id: AGENT.parse().unwrap(),
            status,
            outcomes: 1,
            cu: bounty_core::ComputeUnits::from_milli(if status == OutcomeStatus::Resolved {
                1000
            } else {
                0
            }),
            amount: bounty_core::Money::from_micros(amount, bounty_core::Currency::USD),
            inference_cost: bounty_core::Money::from_micros(cost, bounty_core::Currency::USD),
        }
    }

    const AGENT: &str = "agt_01JD3K8Q9V7Y2X4W6T5R3P1N0M";
    const AGENT_2: &str = "agt_01JD3K8Q9V7Y2X4W6T5R3P1N0N";

    #[test]
    fn a_bucket_counts_all_its_outcomes() {
        let mut resolved = row("resolved", 3_000_000, 600_000, 1);
        resolved.outcomes = 3;
        resolved.cu = bounty_core::ComputeUnits::from_milli(3000);
        let mut failed = row("failed", 0, 100_000, 1);
        failed.outcomes = 2;
        let s = summarize(&[resolved, failed]);
        assert_eq!((s.resolved, s.failed, s.decided()), (3, 2, 5));
        assert_eq!(s.resolution_bp(), Some(6000));
        assert_eq!(s.cu_milli, 3000);
        let day = s.days.values().next().unwrap();
        assert_eq!((day.resolved, day.decided), (3, 5));
        assert_eq!(day.cost_micros, 700_000);
    }

    #[test]
    fn sums_like_the_usage_api() {
        let s = summarize(&[
            row("resolved", 1_000_000, 200_000, 1),
            row("failed", 0, 100_000, 1),
            row("resolved", 1_000_000, 300_000, 2),
            row("reversed", 0, 0, 2),
            row("escalated", 0, 0, 2),
        ]);
        assert_eq!((s.resolved, s.failed, s.reversed, s.escalated), (2, 1, 1, 1));
        assert_eq!(s.resolution_bp(), Some(4000));
        assert_eq!(s.cu_milli, 2000);
        let main = s.main();
        assert_eq!(main.charges_micros, 2_000_000);
        assert_eq!(main.cost_micros, 600_000);
        assert_eq!(s.days.len(), 2);
        let first = s.days.values().next().unwrap();
        assert_eq!(first.cost_micros, 300_000);
        assert_eq!((first.resolved, first.decided), (1, 2));
        let second = s.days.values().nth(1).unwrap();
        assert_eq!((second.resolved, second.decided), (1, 3));
    }

    #[test]
    fn groups_sum_to_the_whole() {
        let mut rows = vec![
            row("resolved", 1_000_000, 200_000, 1),
            row("failed", 0, 100_000, 1),
            row("resolved", 3_000_000, 300_000, 2),
        ];
        rows[2].agent_id = AGENT_2.parse().unwrap();
        let by_day = group(&rows, GroupBy::Day);
        assert_eq!(by_day.keys().collect::<Vec<_>>(), ["2026-05-01", "2026-05-02"]);
        assert_eq!(by_day["2026-05-01"].resolved, 1);
        assert_eq!(by_day["2026-05-01"].failed, 1);
        assert_eq!(by_day["2026-05-01"].main().cost_micros, 300_000);
        let by_agent = group(&rows, GroupBy::Agent);
        assert_eq!(by_agent[AGENT_2].main().charges_micros, 3_000_000);
        let whole = summarize(&rows);
        let sum: i64 = by_agent.values().map(|s| s.main().charges_micros).sum();
        assert_eq!(sum, whole.main().charges_micros);
    }

    #[test]
    fn an_empty_period_has_no_rates() {
        let s = summarize(&[]);
        assert_eq!(s.resolution_bp(), None);
        assert_eq!(s.currency, "USD");
    }
}
