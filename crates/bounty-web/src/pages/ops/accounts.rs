//! `GET /ops`: every account over a period (`?from&to`, this month by
//! default) with what it was charged, what its work cost us and the margin
//! between, and its status; `GET /ops/accounts/{id}`: one account, with
//! its plan, cap and credits and its charges per day against the 30%
//! margin line. Live work only: test-mode work is never billed.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use bounty_core::{AccountId, ApiKeyMode, PageLimit};
use serde::Deserialize;

use crate::auth::CurrentOperator;
use crate::chart::{self, Audience, Charts};
use crate::error::WebError;
use crate::format::{bp_decimal, cu, dispute_rate, micros, micros_decimal, percent_bp, time};
use crate::layout::{Chrome, render};
use crate::pages::period::Period;
use crate::pages::{WebQuery, present};
use crate::state::WebState;
use crate::usage::{Summary, summarize};

/// Accounts per page.
const PAGE: u32 = 50;

#[derive(Deserialize)]
pub(crate) struct AccountsQuery {
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

/// One account's figures over the period, in its headline currency.
pub(crate) struct Figures {
    pub(crate) decided: u64,
    pub(crate) resolved: u64,
    pub(crate) reversed: u64,
    pub(crate) resolution: String,
    pub(crate) cu: String,
    pub(crate) revenue: String,
    pub(crate) cost: String,
    pub(crate) margin: String,
    pub(crate) margin_pct: String,
    /// Under the 30% target.
    pub(crate) margin_low: bool,
}

impl Figures {
    pub(crate) fn of(s: &Summary) -> Figures {
        let main = s.main();
        let c = s.currency.as_str();
        Figures {
            decided: s.decided(),
            resolved: s.resolved,
            reversed: s.reversed,
            resolution: s.resolution_bp().map(percent_bp).unwrap_or_else(|| "—".into()),
            cu: cu(s.cu_milli),
            revenue: micros(main.charges_micros, c),
            cost: micros(main.cost_micros, c),
            margin: micros(main.margin_micros(), c),
            margin_pct: main.margin_bp().map(percent_bp).unwrap_or_else(|| "—".into()),
            margin_low: main.margin_bp().is_some_and(|m| m < 3000),
        }
    }
}

struct AccountRow {
    id: String,
    name: String,
    status: String,
    figures: Figures,
    /// Disputes opened in the period (accepted), and the rate over the
    /// period's charged outcomes.
    disputes: String,
}

#[derive(Template)]
#[template(path = "ops_accounts.html")]
struct AccountsPage {
    chrome: Chrome,
    from: String,
    to: String,
    accounts: Vec<AccountRow>,
    next_href: Option<String>,
}

/// The account's status in words (`active` when none is recorded).
async fn status_of(state: &WebState, account: AccountId) -> Result<String, WebError> {
    Ok(state
        .store
        .account_status(account)
        .await?
        .map_or_else(|| "active".to_owned(), |s| s.to_string()))
}

pub(crate) async fn list(
    State(state): State<WebState>,
    op: CurrentOperator,
    WebQuery(q): WebQuery<AccountsQuery>,
) -> Result<Response, WebError> {
    let period = Period::parse(&state, &q.from, &q.to)?;
    let after = present(&q.cursor)
        .map(|c| c.parse::<AccountId>())
        .transpose()
        .map_err(|_| WebError::BadRequest("`cursor` is not an account id.".into()))?;
    let limit = PageLimit::new(PAGE).map_err(|e| WebError::Internal(e.to_string()))?;
    let page = state.store.admin_list_accounts(limit, after).await?;
    let (from, to) = period.bounds();
    let disputes: std::collections::HashMap<AccountId, (i64, i64)> = state
        .store
        .admin_dispute_counts(from, to)
        .await?
        .into_iter()
        .map(|(a, opened, accepted)| (a, (opened, accepted)))
        .collect();
    let mut accounts = Vec::with_capacity(page.items.len());
    for a in page.items {
        let s = summarize(&period.usage(&state, a.id, ApiKeyMode::Live).await?);
        let (opened, accepted) = disputes.get(&a.id).copied().unwrap_or_default();
        accounts.push(AccountRow {
            status: status_of(&state, a.id).await?,
            id: a.id.to_string(),
            name: a.name,
            disputes: dispute_rate(opened, accepted, s.resolved + s.reversed),
            figures: Figures::of(&s),
        });
    }
    let next_href = page
        .next_cursor
        .map(|c| format!("/ops?from={}&to={}&cursor={c}", period.from, period.to));
    render(&AccountsPage {
        chrome: Chrome::for_operator(&op, "Accounts", "accounts"),
        from: period.from.to_string(),
        to: period.to.to_string(),
        accounts,
        next_href,
    })
}

#[derive(Deserialize)]
pub(crate) struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

#[derive(Template)]
#[template(path = "ops_account.html")]
struct AccountPage {
    chrome: Chrome,
    id: String,
    name: String,
    status: String,
    created: String,
    from: String,
    to: String,
    figures: Figures,
    plan: String,
    cap: String,
    month_spend: String,
    credits: String,
    disputes: String,
    /// Per agent: `(name, disputes and rate)`.
    agent_disputes: Vec<(String, String)>,
    csrf: String,
    suspended: bool,
    /// The forms' current values.
    price_input: String,
    included_input: String,
    dispute_days_input: String,
    dispute_percent_input: String,
    cap_input: String,
    alerts_input: String,
    chart: Charts,
}

pub(crate) async fn show(
    State(state): State<WebState>,
    op: CurrentOperator,
    Path(id): Path<String>,
    WebQuery(q): WebQuery<PeriodQuery>,
) -> Result<Response, WebError> {
    let id: AccountId = id.parse().map_err(|_| WebError::NotFound)?;
    let account = state.store.get_account(id).await?.ok_or(WebError::NotFound)?;
    let period = Period::parse(&state, &q.from, &q.to)?;
    let buckets = period.usage(&state, id, ApiKeyMode::Live).await?;
    let s = summarize(&buckets);
    let info = state.store.billing_info(id, ApiKeyMode::Live).await?;
    let (from, to) = period.bounds();
    let (opened, accepted) = state.store.dispute_counts(id, ApiKeyMode::Live, from, to).await?;
    let mut agent_disputes = Vec::new();
    for (agent, opened, accepted) in state.store.dispute_counts_by_agent(id, from, to).await? {
        let charged: i64 = buckets
            .iter()
            .filter(|b| {
                b.agent_id == agent
                    && matches!(
                        b.status,
                        bounty_core::outcome::OutcomeStatus::Resolved
                            | bounty_core::outcome::OutcomeStatus::Reversed
                    )
            })
            .map(|b| b.outcomes)
            .sum();
        let name = state
            .store
            .get_agent(id, agent, None)
            .await?
            .map_or_else(|| agent.to_string(), |a| a.name);
        agent_disputes.push((
            name,
            dispute_rate(opened, accepted, u64::try_from(charged).unwrap_or(0)),
        ));
    }
    let plan = &info.plan;
    let c = plan.currency();
    render(&AccountPage {
        chrome: Chrome::for_operator(&op, account.name.clone(), "accounts"),
        id: id.to_string(),
        status: status_of(&state, id).await?,
        created: time(account.created_at),
        name: account.name,
        from: period.from.to_string(),
        to: period.to.to_string(),
        figures: Figures::of(&s),
        plan: format!(
            "{}: {} per CU, {} CU included each month",
            plan.name,
            micros(plan.price_per_cu.micros, c.as_str()),
            cu(plan.included_cu.milli())
        ),
        cap: info
            .monthly_cap
            .map_or_else(|| "none".to_owned(), |m| micros(m.micros, m.currency.as_str())),
        month_spend: micros(info.month_spend.micros, info.month_spend.currency.as_str()),
        credits: cu(info.credit_balance.milli()),
        disputes: dispute_rate(opened, accepted, s.resolved + s.reversed),
        agent_disputes,
        csrf: op.session.csrf_secret.clone(),
        suspended: status_of(&state, id).await? == "suspended",
        price_input: micros_decimal(plan.price_per_cu.micros),
        included_input: plan.included_cu.decimal(),
        dispute_days_input: plan
            .disputes
            .map(|d| d.auto_accept_within_days.to_string())
            .unwrap_or_default(),
        dispute_percent_input: plan
            .disputes
            .map(|d| bp_decimal(i64::from(d.max_accepted_bp)))
            .unwrap_or_default(),
        cap_input: info
            .monthly_cap
            .map(|m| micros_decimal(m.micros))
            .unwrap_or_default(),
        alerts_input: info
            .alert_percents
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        chart: Charts::of(|size| {
            chart::layout(
                &s.days,
                period.from,
                period.to,
                &s.currency,
                Audience::Operator,
                size,
            )
        }),
    })
}
