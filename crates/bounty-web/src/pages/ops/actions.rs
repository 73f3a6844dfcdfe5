//! The operator acts on one account, from its page:
//! - `POST /ops/accounts/{id}/plan`: the price per CU, the monthly
//!   included CU, and the dispute policy;
//! - `POST /ops/accounts/{id}/cap`: the monthly cap and its alert
//!   thresholds;
//! - `POST /ops/accounts/{id}/credits`: grants prepaid CU, live;
//! - `POST /ops/accounts/{id}/status`: suspends or reactivates it.
//!
//! A bad value is a 400 page naming the field. Each change is the store's
//! own write under the account's billing lock (plan, cap, credits) or one
//! statement (status).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use bounty_core::dispute::DisputePolicy;
use bounty_core::{AccountId, AccountStatus, ApiKeyMode, ComputeUnits, Money};
use serde::Deserialize;

use crate::auth::{CurrentOperator, SignedForm};
use crate::error::WebError;
use crate::state::WebState;

async fn account_of(state: &WebState, id: &str) -> Result<AccountId, WebError> {
    let id: AccountId = id.parse().map_err(|_| WebError::NotFound)?;
    state.store.get_account(id).await?.ok_or(WebError::NotFound)?;
    Ok(id)
}

fn back(id: AccountId) -> Response {
    Redirect::to(&format!("/ops/accounts/{id}")).into_response()
}

fn bad(field: &str, why: &str) -> WebError {
    WebError::BadRequest(format!("`{field}` {why}."))
}

#[derive(Deserialize)]
pub(crate) struct PlanForm {
    #[serde(default)]
    price_per_cu: String,
    #[serde(default)]
    included_cu: String,
    /// Days within which a dispute is accepted on its own; blank: none.
    #[serde(default)]
    dispute_days: String,
    /// The monthly ceiling of accepted disputes, in percent of charges.
    #[serde(default)]
    dispute_max_percent: String,
}

/// `POST /ops/accounts/{id}/plan`.
pub(crate) async fn plan(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user: op, form }: SignedForm<PlanForm, CurrentOperator>,
) -> Result<Response, WebError> {
    let account = account_of(&state, &id).await?;
    let mut plan = state.store.plan(account).await?;
    let currency = plan.currency();
    plan.price_per_cu = Money::parse_decimal(form.price_per_cu.trim(), currency)
        .ok()
        .filter(|m| m.micros >= 0)
        .ok_or_else(|| bad("price_per_cu", "must be an amount such as 1.00"))?;
    plan.included_cu = ComputeUnits::parse_decimal(form.included_cu.trim())
        .ok()
        .filter(|c| c.milli() >= 0)
        .ok_or_else(|| bad("included_cu", "must be a number of CU such as 100"))?;
    plan.disputes = match form.dispute_days.trim() {
        "" => None,
        days => Some(DisputePolicy {
            auto_accept_within_days: days
                .parse()
                .map_err(|_| bad("dispute_days", "must be a whole number of days, 1 to 365"))?,
            max_accepted_bp: Money::parse_decimal(form.dispute_max_percent.trim(), currency)
                .ok()
                .and_then(|m| u32::try_from(m.micros / 10_000).ok())
                .ok_or_else(|| bad("dispute_max_percent", "must be a percentage from 0 to 100"))?,
        }),
    };
    if let Err((field, message)) = plan.validate() {
        return Err(bad(&field, &message));
    }
    state.store.set_plan(account, &plan).await?;
    tracing::info!(account.id = %account, operator.id = %op.session.operator_id, "console: plan changed");
    Ok(back(account))
}

#[derive(Deserialize)]
pub(crate) struct CapForm {
    /// Blank: no cap.
    #[serde(default)]
    cap: String,
    /// `50, 80, 100`.
    #[serde(default)]
    alerts: String,
}

/// The cap (micros of `currency`; `None`: no cap) and its alert
/// percentages from a form, or a 400 naming the bad field. Shared with the
/// customer's own billing page.
pub(crate) fn parse_cap(
    form: &CapForm,
    currency: bounty_core::Currency,
) -> Result<(Option<i64>, Vec<u32>), WebError> {
    let cap = match form.cap.trim() {
        "" => None,
        raw => Some(
            Money::parse_decimal(raw, currency)
                .ok()
                .filter(|m| m.micros > 0)
                .ok_or_else(|| {
                    bad(
                        "cap",
                        "must be a positive amount such as 500.00, or blank for none",
                    )
                })?
                .micros,
        ),
    };
    let alerts = form
        .alerts
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().ok().filter(|p| (1..=100).contains(p)))
        .collect::<Option<Vec<u32>>>()
        .ok_or_else(|| bad("alerts", "must be percentages from 1 to 100, separated by commas"))?;
    Ok((cap, alerts))
}

/// `POST /ops/accounts/{id}/cap`.
pub(crate) async fn cap(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user: op, form }: SignedForm<CapForm, CurrentOperator>,
) -> Result<Response, WebError> {
    let account = account_of(&state, &id).await?;
    let currency = state.store.plan(account).await?.currency();
    let (cap, alerts) = parse_cap(&form, currency)?;
    state.store.set_cap(account, cap, &alerts).await?;
    tracing::info!(account.id = %account, operator.id = %op.session.operator_id, "console: cap changed");
    Ok(back(account))
}

#[derive(Deserialize)]
pub(crate) struct CreditsForm {
    #[serde(default)]
    cu: String,
    #[serde(default)]
    memo: String,
}

/// `POST /ops/accounts/{id}/credits`: live credits, paid for or given.
pub(crate) async fn credits(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user: op, form }: SignedForm<CreditsForm, CurrentOperator>,
) -> Result<Response, WebError> {
    let account = account_of(&state, &id).await?;
    let cu = ComputeUnits::parse_decimal(form.cu.trim())
        .ok()
        .filter(|c| c.milli() > 0)
        .ok_or_else(|| bad("cu", "must be a positive number of CU such as 100"))?;
    let memo = Some(form.memo.trim().to_owned()).filter(|m| !m.is_empty());
    let memo = Some(format!(
        "granted by operator {}{}",
        op.session.email.as_str(),
        memo.map(|m| format!(": {m}")).unwrap_or_default()
    ));
    state
        .store
        .grant_credits(account, ApiKeyMode::Live, cu, memo)
        .await?;
    tracing::info!(account.id = %account, operator.id = %op.session.operator_id, cu = %cu, "console: credits granted");
    Ok(back(account))
}

#[derive(Deserialize)]
pub(crate) struct StatusForm {
    #[serde(default)]
    status: String,
}

/// `POST /ops/accounts/{id}/status`: `suspended` or `active`.
pub(crate) async fn status(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user: op, form }: SignedForm<StatusForm, CurrentOperator>,
) -> Result<Response, WebError> {
    let account = account_of(&state, &id).await?;
    let to = match form.status.as_str() {
        "suspended" => AccountStatus::Suspended,
        "active" => AccountStatus::Active,
        _ => return Err(bad("status", "must be `suspended` or `active`")),
    };
    let mut tx = state.store.begin().await?;
    bounty_store::stripe_events::set_account_status(&mut tx, account, to, None).await?;
    tx.commit().await?;
    tracing::info!(account.id = %account, operator.id = %op.session.operator_id, status = %to, "console: status changed");
    Ok(back(account))
}
