//! `GET /`: the period's tasks, resolution rate, CU, charges, inference
//! cost and gross margin, the chart of charges per day against the 30%
//! margin line, and the chart of the resolution rate per day, over the
//! period of `?from&to` ([`Period`]).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::chart::{self, Chart};
use crate::error::WebError;
use crate::format::{cu, micros, percent_bp, ratio_bp};
use crate::layout::{Chrome, render};
use crate::pages::WebQuery;
use crate::pages::period::Period;
use crate::state::WebState;
use crate::usage::summarize;

#[derive(Deserialize)]
pub(crate) struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

struct CurrencyRow {
    currency: String,
    charges: String,
    cost: String,
    margin: String,
    margin_pct: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    from: String,
    to: String,
    tasks: u64,
    resolved: u64,
    failed: u64,
    reversed: u64,
    resolution: String,
    cu_billed: String,
    charges: String,
    cost: String,
    margin_pct: String,
    margin_below_target: bool,
    currencies: Vec<CurrencyRow>,
    chart: Chart,
    /// Resolved ÷ decided per day, drawn in the same frame as `chart`.
    rate_chart: Chart,
    chart_width: i64,
    chart_height: i64,
    /// Verified-answer cache over the period: hits over lookups.
    cache_hit_rate: String,
    cache_hits: i64,
    cache_lookups: i64,
    /// Inference cost the hits saved.
    cache_saved: String,
}

pub(crate) async fn page(
    State(state): State<WebState>,
    user: CurrentUser,
    WebQuery(q): WebQuery<PeriodQuery>,
) -> Result<Response, WebError> {
    let period = Period::parse(&state, &q.from, &q.to)?;
    let (from, to) = (period.from, period.to);
    let buckets = period.usage(&state, user.account(), user.mode()).await?;
    let s = summarize(&buckets);
    let cache = state.store.cache_summary(user.account(), from, to).await?;
    let cache_saved = if cache.saved_micros.is_empty() {
        micros(0, &s.currency)
    } else {
        cache
            .saved_micros
            .iter()
            .map(|(c, m)| micros(*m, c))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    let main = s.main();
    let currencies = s
        .by_currency
        .iter()
        .map(|(c, t)| CurrencyRow {
            currency: c.clone(),
            charges: micros(t.charges_micros, c),
            cost: micros(t.cost_micros, c),
            margin: micros(t.margin_micros(), c),
            margin_pct: t.margin_bp().map(percent_bp).unwrap_or_else(|| "—".into()),
        })
        .collect();
    let page = OverviewPage {
        chrome: Chrome::for_user(&user, "Overview", "overview"),
        from: from.to_string(),
        to: to.to_string(),
        tasks: s.decided(),
        resolved: s.resolved,
        failed: s.failed,
        reversed: s.reversed,
        resolution: s.resolution_bp().map(percent_bp).unwrap_or_else(|| "—".into()),
        cu_billed: cu(s.cu_milli),
        charges: micros(main.charges_micros, &s.currency),
        cost: micros(main.cost_micros, &s.currency),
        margin_pct: main.margin_bp().map(percent_bp).unwrap_or_else(|| "—".into()),
        margin_below_target: main.margin_bp().is_some_and(|m| m < 3000),
        currencies,
        chart: chart::layout(&s.days, from, to, &s.currency),
        rate_chart: chart::resolution_layout(&s.days, from, to),
        chart_width: chart::WIDTH,
        chart_height: chart::HEIGHT,
        cache_hit_rate: ratio_bp(cache.hits, cache.lookups)
            .map(percent_bp)
            .unwrap_or_else(|| "—".into()),
        cache_hits: cache.hits,
        cache_lookups: cache.lookups,
        cache_saved,
    };
    render(&page)
}
