//! `GET /`: the period's tasks, resolution rate, CU and charges, the chart
//! of charges per day and the chart of the resolution rate per day, over
//! the period of `?from&to` ([`Period`]). A customer's page: what the work
//! cost us to produce is never on it.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::chart::{self, Audience, Chart};
use crate::error::WebError;
use crate::format::{cu, micros, percent_bp};
use crate::layout::{Chrome, render};
use crate::pages::WebQuery;
use crate::pages::period::Period;
use crate::state::WebState;
use crate::usage::summarize;

#[derive(Deserialize)]
pub(crate) struct PeriodQuery {
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
}

struct CurrencyRow {
    currency: String,
    charges: String,
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
    /// Disputes opened in the period (accepted), and their rate.
    disputes: String,
    currencies: Vec<CurrencyRow>,
    chart: Chart,
    /// Resolved ÷ decided per day, drawn in the same frame as `chart`.
    rate_chart: Chart,
    chart_width: i64,
    chart_height: i64,
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
    let main = s.main();
    let (start, end) = period.bounds();
    let (opened, accepted) = state
        .store
        .dispute_counts(user.account(), user.mode(), start, end)
        .await?;
    let currencies = s
        .by_currency
        .iter()
        .map(|(c, t)| CurrencyRow {
            currency: c.clone(),
            charges: micros(t.charges_micros, c),
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
        disputes: crate::format::dispute_rate(opened, accepted, s.resolved + s.reversed),
        currencies,
        chart: chart::layout(&s.days, from, to, &s.currency, Audience::Customer),
        rate_chart: chart::resolution_layout(&s.days, from, to),
        chart_width: chart::WIDTH,
        chart_height: chart::HEIGHT,
    };
    render(&page)
}
