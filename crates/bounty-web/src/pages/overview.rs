//! `GET /`: the period's tasks, resolution rate, CU and charges, the chart
//! of charges per day and the chart of the resolution rate per day, over
//! the period of `?from&to` ([`Period`]). A customer's page: what the work
//! cost us to produce is never on it.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::chart::{self, Audience, Charts};
use crate::error::WebError;
use crate::format::{cu, micros, money, percent_bp};
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
    escalated: u64,
    resolution: String,
    cu_billed: String,
    charges: String,
    /// Disputes opened in the period (accepted), and their rate.
    disputes: String,
    /// Outcomes not decided yet (waiting for the verifiers or the ticket
    /// source), whatever the period.
    pending: i64,
    /// Charges over resolved outcomes in the period; `—` without any.
    price_per_resolved: String,
    /// This month so far, against the cap.
    month_spend: String,
    /// `of 500.00 USD (12.3%)`, or `no cap`.
    cap: String,
    /// The month's spend at this month's pace, to its last day.
    projection: String,
    /// The projection passes the cap.
    projection_over_cap: bool,
    currencies: Vec<CurrencyRow>,
    chart: Charts,
    /// Resolved ÷ decided per day, drawn in the same frame as `chart`.
    rate_chart: Charts,
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
    let pending = state.store.pending_outcomes(user.account(), user.mode()).await?;
    let info = state.store.billing_info(user.account(), user.mode()).await?;
    let spend = info.month_spend;
    let today = state.store.now();
    let projected = project_month(spend.micros, today);
    let resolved = i64::try_from(s.resolved).unwrap_or(i64::MAX);
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
            charges: money(t.charges_micros, c),
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
        escalated: s.escalated,
        resolution: s.resolution_bp().map(percent_bp).unwrap_or_else(|| "—".into()),
        cu_billed: cu(s.cu_milli),
        charges: money(main.charges_micros, &s.currency),
        disputes: crate::format::dispute_rate(opened, accepted, s.resolved + s.reversed),
        pending,
        price_per_resolved: if resolved > 0 {
            micros(main.charges_micros / resolved, &s.currency)
        } else {
            "—".into()
        },
        month_spend: money(spend.micros, spend.currency.as_str()),
        cap: match info.monthly_cap {
            Some(cap) => format!(
                "of {} ({})",
                money(cap.micros, cap.currency.as_str()),
                crate::format::ratio_bp(spend.micros, cap.micros)
                    .map(percent_bp)
                    .unwrap_or_else(|| "—".into())
            ),
            None => "no monthly cap".into(),
        },
        projection: money(projected, spend.currency.as_str()),
        projection_over_cap: info.monthly_cap.is_some_and(|c| projected > c.micros),
        currencies,
        chart: Charts::of(|size| chart::layout(&s.days, from, to, &s.currency, Audience::Customer, size)),
        rate_chart: Charts::of(|size| chart::resolution_layout(&s.days, from, to, size)),
    };
    render(&page)
}

/// `spent` so far this month, at this month's pace, to its last day:
/// `spent × days in the month ÷ days elapsed` (today counted whole).
fn project_month(spent: i64, now: bounty_core::Timestamp) -> i64 {
    use chrono::Datelike;
    let day = i64::from(now.day());
    let next_month = if now.month() == 12 {
        chrono::NaiveDate::from_ymd_opt(now.year() + 1, 1, 1)
    } else {
        chrono::NaiveDate::from_ymd_opt(now.year(), now.month() + 1, 1)
    };
    let days = next_month
        .and_then(|n| n.pred_opt())
        .map_or(30, |last| i64::from(last.day()));
    i64::try_from(i128::from(spent) * i128::from(days) / i128::from(day.max(1))).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_month_is_projected_at_its_pace() {
        let at = |m, d| chrono::Utc.with_ymd_and_hms(2026, m, d, 12, 0, 0).unwrap();
        // 10 days of June (30 days) spent 100: 300 by its end.
        assert_eq!(project_month(100, at(6, 10)), 300);
        // The last day: what was spent.
        assert_eq!(project_month(100, at(6, 30)), 100);
        // February 2026 has 28 days.
        assert_eq!(project_month(70, at(2, 7)), 280);
        assert_eq!(project_month(0, at(12, 31)), 0);
    }
}
