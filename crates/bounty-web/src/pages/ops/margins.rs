//! `GET /ops/margins?account=…`: the operator's pricing-model comparison
//! for one account (optionally one of its agents, `?agent=`) over a period
//! (`?from&to`): revenue and gross margin of the recorded work
//! under cost-plus (`?markup`, percent), the plan as charged, and BYOK
//! (`?fee`, per resolved outcome), drawn side by side, with the raw
//! inference cost, its cost-plus price and the delivered cost.
//!
//! The figures are `bounty report margins`'s: `Store::margin_figures` and
//! `bounty_core::margin::compare`.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use bounty_core::margin::{Comparison, PricingLine, compare, platform_fee};
use bounty_core::{AccountId, AgentId, Currency, Money, PageLimit};
use serde::Deserialize;

use crate::auth::CurrentOperator;
use crate::error::WebError;
use crate::format::{micros, micros_decimal, percent_bp, ratio_bp};
use crate::layout::{Chrome, render};
use crate::pages::period::Period;
use crate::pages::{WebQuery, day_start, present};
use crate::state::WebState;

#[derive(Deserialize)]
pub(crate) struct MarginsQuery {
    /// The account compared (default: the newest).
    account: Option<String>,
    /// One of its agents, by id (default: all of them).
    agent: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Cost-plus markup, in percent (`30`, `12.5`).
    markup: Option<String>,
    /// BYOK platform fee per resolved outcome (`0.10`).
    fee: Option<String>,
}

/// One row of the pricing table.
struct ModelRow {
    name: &'static str,
    revenue: String,
    cost: String,
    margin: String,
    margin_pct: String,
}

/// One horizontal bar of a chart.
struct HBar {
    label: String,
    value: String,
    y: i64,
    w: i64,
    /// `revenue`, `margin` or `cost`: its colour.
    class: &'static str,
}

#[derive(Template)]
#[template(path = "ops_margins.html")]
struct MarginsPage {
    chrome: Chrome,
    /// The accounts to choose from: `(id, name)`, newest first.
    accounts: Vec<(String, String)>,
    account: String,
    account_name: String,
    /// The account's agents to choose from: `(id, name)`.
    agents: Vec<(String, String)>,
    agent: String,
    from: String,
    to: String,
    markup: String,
    fee: String,
    /// The form's values as typed.
    markup_input: String,
    fee_input: String,
    decided: i64,
    resolved: i64,
    rows: Vec<ModelRow>,
    bars: Vec<HBar>,
    bars_height: i64,
    /// The chart in words, for screen readers.
    bars_label: String,
    lines: Vec<HBar>,
    lines_height: i64,
    lines_label: String,
    shadow: String,
    cache_saved: String,
    /// How the raw cost was estimated, per agent.
    estimates: Vec<String>,
    /// Per model (and role): answers verified, pass rate, cost, average.
    models: Vec<ModelLine>,
}

/// One model's line: what its answers cost and how often they passed.
struct ModelLine {
    model: String,
    role: String,
    tried: i64,
    pass_rate: String,
    cost: String,
    per_answer: String,
}

/// The charts' geometry: labels end at x = 184 and bars start at 190 (in
/// the template), up to this wide, leaving room for the value after them
/// in the 720-wide frame.
const BAR_MAX_W: i64 = 420;
const ROW_H: i64 = 30;

fn hbars(items: Vec<(String, i64, &'static str)>, currency: &str) -> (Vec<HBar>, i64) {
    let max = items.iter().map(|(_, v, _)| *v).max().unwrap_or(0).max(1);
    let bars = items
        .into_iter()
        .enumerate()
        .map(|(i, (label, v, class))| HBar {
            value: micros(v, currency),
            label,
            y: i as i64 * ROW_H + 6,
            w: (i128::from(v.max(0)) * i128::from(BAR_MAX_W) / i128::from(max)) as i64,
            class,
        })
        .collect::<Vec<_>>();
    let height = bars.len() as i64 * ROW_H + 8;
    (bars, height)
}

/// A chart's bars as one sentence: `label value; label value`.
fn in_words(bars: &[HBar]) -> String {
    bars.iter()
        .map(|b| format!("{} {}", b.label, b.value))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A decimal percent (`30`, `12.5`) as basis points, 0 to 1000%.
fn markup_bp(raw: Option<&str>) -> Result<u32, WebError> {
    let raw = raw.unwrap_or("30");
    let m = Money::parse_decimal(raw, Currency::USD)
        .ok()
        .filter(|m| (0..=1_000_000_000).contains(&m.micros))
        .ok_or_else(|| WebError::BadRequest("`markup` must be a percentage from 0 to 1000.".into()))?;
    // micros of a percent → basis points: 1% = 100 bp = 1,000,000 micros.
    Ok(u32::try_from(m.micros / 10_000).unwrap_or(u32::MAX))
}

pub(crate) async fn page(
    State(state): State<WebState>,
    op: CurrentOperator,
    WebQuery(q): WebQuery<MarginsQuery>,
) -> Result<Response, WebError> {
    let limit = PageLimit::new(100).map_err(|e| WebError::Internal(e.to_string()))?;
    let accounts = state.store.admin_list_accounts(limit, None).await?.items;
    let account = match present(&q.account) {
        Some(raw) => raw
            .parse::<AccountId>()
            .map_err(|_| WebError::BadRequest("`account` is not an account id.".into()))?,
        None => accounts.first().map(|a| a.id).ok_or(WebError::NotFound)?,
    };
    let account_name = state
        .store
        .get_account(account)
        .await?
        .ok_or(WebError::NotFound)?
        .name;
    let agent = present(&q.agent)
        .map(|raw| raw.parse::<AgentId>())
        .transpose()
        .map_err(|_| WebError::BadRequest("`agent` is not an agent id.".into()))?;
    let agents = state.store.list_agents(account, limit, None).await?.items;
    let period = Period::parse(&state, &q.from, &q.to)?;
    let markup = markup_bp(present(&q.markup))?;
    let plan = state.store.plan(account).await?;
    let currency = plan.currency();
    let default_fee = platform_fee(&plan);
    let fee = match present(&q.fee) {
        None => default_fee,
        Some(raw) => Money::parse_decimal(raw, currency)
            .ok()
            .filter(|m| m.micros >= 0)
            .ok_or_else(|| WebError::BadRequest("`fee` must be an amount such as 0.10.".into()))?,
    };
    let c = currency.as_str();
    let figures = state
        .store
        .margin_figures(
            account,
            agent,
            day_start(period.from),
            day_start(period.to + chrono::Duration::days(1)),
            c,
        )
        .await?;
    let cmp: Comparison = compare(&figures.inputs, markup, fee.micros);
    let row = |name, l: &PricingLine| ModelRow {
        name,
        revenue: micros(l.revenue_micros, c),
        cost: micros(l.cost_micros, c),
        margin: micros(l.margin_micros, c),
        margin_pct: l.margin_bp.map(percent_bp).unwrap_or_else(|| "—".into()),
    };
    let models = [
        ("Cost-plus", &cmp.cost_plus),
        ("Value-based (the plan)", &cmp.value_based),
        ("BYOK (platform fee)", &cmp.byok),
    ];
    let (bars, bars_height) = hbars(
        models
            .iter()
            .flat_map(|(name, l)| {
                [
                    (format!("{name}: revenue"), l.revenue_micros, "revenue"),
                    (format!("{name}: margin"), l.margin_micros, "margin"),
                ]
            })
            .collect(),
        c,
    );
    let (lines, lines_height) = hbars(
        vec![
            ("Raw inference cost".into(), cmp.raw_cost_micros, "cost"),
            ("Cost-plus price".into(), cmp.cost_plus_price_micros, "revenue"),
            ("Delivered cost".into(), cmp.delivered_cost_micros, "margin"),
        ],
        c,
    );
    let mut estimates = Vec::new();
    for (agent, model, avg) in &figures.frontier {
        let name = state
            .store
            .get_agent(account, *agent, None)
            .await?
            .map_or_else(|| agent.to_string(), |a| a.name);
        estimates.push(match avg {
            Some(a) => format!("{name}: frontier {model} at {} per answering call", micros(*a, c)),
            None => format!("{name}: no answering call by its frontier {model} yet, so its delivered cost"),
        });
    }
    let model_lines = state
        .store
        .model_stats(account, agent)
        .await?
        .into_iter()
        .map(|m| ModelLine {
            pass_rate: ratio_bp(m.passed, m.tried)
                .map(percent_bp)
                .unwrap_or_else(|| "—".into()),
            cost: micros(m.cost.micros, m.cost.currency.as_str()),
            per_answer: if m.tried > 0 {
                micros(m.cost.micros / m.tried, m.cost.currency.as_str())
            } else {
                "—".into()
            },
            model: m.model,
            role: m.role,
            tried: m.tried,
        })
        .collect();
    let page = MarginsPage {
        models: model_lines,
        chrome: Chrome::for_operator(&op, format!("Margins: {account_name}"), "margins"),
        accounts: accounts
            .iter()
            .map(|a| (a.id.to_string(), a.name.clone()))
            .collect(),
        account: account.to_string(),
        account_name,
        agents: agents
            .iter()
            .map(|a| (a.id.to_string(), a.name.clone()))
            .collect(),
        agent: agent.map(|a| a.to_string()).unwrap_or_default(),
        from: period.from.to_string(),
        to: period.to.to_string(),
        markup: percent_bp(i64::from(markup)),
        fee: micros(fee.micros, c),
        markup_input: present(&q.markup).unwrap_or("30").to_owned(),
        fee_input: present(&q.fee).map_or_else(|| micros_decimal(fee.micros), str::to_owned),
        decided: figures.inputs.decided,
        resolved: figures.inputs.resolved,
        rows: models.iter().map(|(n, l)| row(*n, l)).collect(),
        bars_label: in_words(&bars),
        bars,
        bars_height,
        lines_label: in_words(&lines),
        lines,
        lines_height,
        shadow: micros(figures.shadow_cost_micros, c),
        cache_saved: micros(figures.cache_saved_micros, c),
        estimates,
    };
    render(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markups_are_percent_decimals() {
        assert_eq!(markup_bp(None).unwrap(), 3_000);
        assert_eq!(markup_bp(Some("12.5")).unwrap(), 1_250);
        assert_eq!(markup_bp(Some("0")).unwrap(), 0);
        assert!(markup_bp(Some("-1")).is_err());
        assert!(markup_bp(Some("1001")).is_err());
        assert!(markup_bp(Some("ten")).is_err());
    }

    #[test]
    fn bars_scale_to_the_largest() {
        let (bars, h) = hbars(vec![("a".into(), 50, "cost"), ("b".into(), 100, "margin")], "USD");
        assert_eq!((bars[0].w, bars[1].w), (BAR_MAX_W / 2, BAR_MAX_W));
        assert_eq!(bars[1].y, ROW_H + 6);
        assert_eq!(h, 2 * ROW_H + 8);
        let (empty, _) = hbars(vec![("a".into(), 0, "cost")], "USD");
        assert_eq!(empty[0].w, 0);
    }
}
