//! `GET /usage` and `GET /usage.csv`: outcomes and usage over a period
//! (`?from&to`, as the overview reads it), by day or by agent
//! (`?group_by=day|agent`, default `day`).
//!
//! The figures are the overview's: each group is [`summarize`] run on the
//! group's decided outcomes, and the totals are `summarize` on all of
//! them. Only groups with a decided outcome are listed.
//!
//! Money is per currency. A group with outcomes in more than one currency
//! has one line per currency: its counts and CU (which are not per
//! currency) are on the first line only, and the later lines leave them
//! blank, so summing a column never counts an outcome twice.
//!
//! The CSV has one header row, then one row per line. Money is a plain
//! decimal string with six places, from the integer micros (`0.002500`);
//! CU has three; the resolution rate is a percentage with two. No floats
//! are involved anywhere. Text cells that a spreadsheet would read as a
//! formula are prefixed with `'`.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bounty_core::AgentId;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::WebError;
use crate::format::{bp_decimal, cu, micros_decimal, money, percent_bp};
use crate::layout::{Chrome, render};
use crate::pages::period::Period;
use crate::pages::{WebQuery, present};
use crate::state::WebState;
use crate::usage::{GroupBy, Summary, group, summarize};

#[derive(Deserialize, Clone)]
pub(crate) struct UsageQuery {
    from: Option<String>,
    to: Option<String>,
    group_by: Option<String>,
}

/// One line of the table (and of the CSV), in raw numbers.
struct Line {
    /// The day (`YYYY-MM-DD`) or the agent's id.
    key: String,
    /// The agent's name (agent grouping only).
    name: String,
    /// The group's counts and CU: on the group's first line only.
    counts: Option<Counts>,
    currency: String,
    charges_micros: i64,
}

struct Counts {
    decided: u64,
    resolved: u64,
    failed: u64,
    reversed: u64,
    escalated: u64,
    resolution_bp: Option<i64>,
    cu_milli: i64,
}

fn lines_of(key: &str, name: &str, s: &Summary) -> Vec<Line> {
    s.by_currency
        .iter()
        .enumerate()
        .map(|(i, (currency, t))| Line {
            key: key.to_owned(),
            name: name.to_owned(),
            counts: (i == 0).then(|| Counts {
                decided: s.decided(),
                resolved: s.resolved,
                failed: s.failed,
                reversed: s.reversed,
                escalated: s.escalated,
                resolution_bp: s.resolution_bp(),
                cu_milli: s.cu_milli,
            }),
            currency: currency.clone(),
            charges_micros: t.charges_micros,
        })
        .collect()
}

/// The period, the grouping, the lines and the totals' lines.
struct Report {
    period: Period,
    by: GroupBy,
    lines: Vec<Line>,
    totals: Vec<Line>,
}

async fn report(state: &WebState, user: &CurrentUser, q: &UsageQuery) -> Result<Report, WebError> {
    let by = match present(&q.group_by) {
        None | Some("day") => GroupBy::Day,
        Some("agent") => GroupBy::Agent,
        Some(_) => return Err(WebError::BadRequest("`group_by` must be day or agent.".into())),
    };
    let period = Period::parse(state, &q.from, &q.to)?;
    let buckets = period.usage(state, user.account(), user.mode()).await?;
    let groups = group(&buckets, by);
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    if by == GroupBy::Agent {
        for key in groups.keys() {
            let name = match key.parse::<AgentId>() {
                Ok(id) => state
                    .store
                    .get_agent(user.account(), id, None)
                    .await?
                    .map(|a| a.name),
                Err(_) => None,
            };
            names.insert(key.clone(), name.unwrap_or_default());
        }
    }
    let lines = groups
        .iter()
        .flat_map(|(key, s)| {
            let name = names.get(key).map(String::as_str).unwrap_or_default();
            lines_of(key, name, s)
        })
        .collect();
    let totals = lines_of("Total", "", &summarize(&buckets));
    Ok(Report {
        period,
        by,
        lines,
        totals,
    })
}

/// A line as the page shows it.
struct LineView {
    key: String,
    name: String,
    /// `[decided, resolved, failed, reversed, escalated, resolution, CU]`,
    /// or blanks, each with its column's name (a phone's card labels).
    counts: [(&'static str, String); 7],
    currency: String,
    charges: String,
}

/// The count columns' names, in [`LineView::counts`]'s order.
const COUNT_COLUMNS: [&str; 7] = [
    "Decided",
    "Resolved",
    "Failed",
    "Reversed",
    "Escalated",
    "Resolution",
    "CU billed",
];

fn view(l: &Line) -> LineView {
    let dash = || "—".to_owned();
    LineView {
        key: l.key.clone(),
        name: l.name.clone(),
        counts: {
            let values = match &l.counts {
                Some(c) => [
                    c.decided.to_string(),
                    c.resolved.to_string(),
                    c.failed.to_string(),
                    c.reversed.to_string(),
                    c.escalated.to_string(),
                    c.resolution_bp.map(percent_bp).unwrap_or_else(dash),
                    cu(c.cu_milli),
                ],
                None => Default::default(),
            };
            let mut i = 0;
            values.map(|v| {
                let label = COUNT_COLUMNS[i];
                i += 1;
                (label, v)
            })
        },
        currency: l.currency.clone(),
        charges: money(l.charges_micros, &l.currency),
    }
}

#[derive(Template)]
#[template(path = "usage.html")]
struct UsagePage {
    chrome: Chrome,
    from: String,
    to: String,
    by_agent: bool,
    lines: Vec<LineView>,
    totals: Vec<LineView>,
    csv_href: String,
}

/// The query string of `r`, for links to the same report.
fn query_string(r: &Report) -> String {
    format!(
        "from={}&to={}&group_by={}",
        r.period.from,
        r.period.to,
        r.by.as_str()
    )
}

/// `GET /usage`.
pub(crate) async fn page(
    State(state): State<WebState>,
    user: CurrentUser,
    WebQuery(q): WebQuery<UsageQuery>,
) -> Result<Response, WebError> {
    let r = report(&state, &user, &q).await?;
    render(&UsagePage {
        chrome: Chrome::for_user(&user, "Outcomes and usage", "usage"),
        from: r.period.from.to_string(),
        to: r.period.to.to_string(),
        by_agent: r.by == GroupBy::Agent,
        lines: r.lines.iter().map(view).collect(),
        totals: r.totals.iter().map(view).collect(),
        csv_href: format!("/usage.csv?{}", query_string(&r)),
    })
}

/// One CSV cell: quoted when it holds a comma, quote or line break, and
/// defused when a spreadsheet would run it as a formula.
fn cell(text: &str) -> String {
    bounty_core::text::csv_cell(text)
}

/// The CSV of a report: one header row, one row per line.
fn csv(r: &Report) -> String {
    let mut out = String::new();
    let key_columns = match r.by {
        GroupBy::Day => "day",
        GroupBy::Agent => "agent_id,agent_name",
    };
    out.push_str(key_columns);
    out.push_str(
        ",currency,decided,resolved,failed,reversed,escalated,resolution_rate_percent,cu_billed,charges\r\n",
    );
    for l in &r.lines {
        let mut cells = vec![cell(&l.key)];
        if r.by == GroupBy::Agent {
            cells.push(cell(&l.name));
        }
        cells.push(cell(&l.currency));
        match &l.counts {
            Some(c) => cells.extend([
                c.decided.to_string(),
                c.resolved.to_string(),
                c.failed.to_string(),
                c.reversed.to_string(),
                c.escalated.to_string(),
                c.resolution_bp.map(bp_decimal).unwrap_or_default(),
                cu(c.cu_milli),
            ]),
            None => cells.extend(std::iter::repeat_n(String::new(), 7)),
        }
        cells.push(micros_decimal(l.charges_micros));
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// `GET /usage.csv`: the same report as `/usage`, as a download.
pub(crate) async fn export(
    State(state): State<WebState>,
    user: CurrentUser,
    WebQuery(q): WebQuery<UsageQuery>,
) -> Result<Response, WebError> {
    let r = report(&state, &user, &q).await?;
    let filename = format!(
        "bounty-usage-{}-to-{}-by-{}.csv",
        r.period.from,
        r.period.to,
        r.by.as_str()
    );
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv(&r),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_defused() {
        assert_eq!(cell("support"), "support");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=1+1"), "'=1+1");
        assert_eq!(cell("-cmd"), "'-cmd");
    }
}
