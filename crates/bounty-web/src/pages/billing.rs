//! `GET /billing`: the account's plan, prepaid credits, spending cap and
//! this month's spend, and where it stands with Stripe.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use bounty_core::PlanKind;

use crate::auth::{CurrentUser, SignedForm};
use crate::error::WebError;
use crate::format::{cu, micros, money};
use crate::layout::{Chrome, render};
use crate::pages::ops::actions::{CapForm, parse_cap};
use crate::state::WebState;

#[derive(Template)]
#[template(path = "billing.html")]
struct BillingPage {
    chrome: Chrome,
    plan_name: String,
    plan_kind: &'static str,
    price_per_cu: String,
    included_cu: String,
    /// `outcome type: CU` lines of a value plan.
    prices: Vec<(String, String)>,
    credit_balance: String,
    cap: String,
    alerts: String,
    month_spend: String,
    reserved: String,
    account_status: String,
    stripe_customer: String,
    stripe_subscription: String,
    /// The account's own model endpoint and the key's last four
    /// characters, or how to set one.
    byok: String,
    /// The plan's fee for outcomes worked on that key.
    byok_fee: String,
    /// An owner may set the cap (live money only: not in test mode).
    can_set_cap: bool,
    csrf: String,
    cap_input: String,
    alerts_input: String,
    /// The plan bills gateway calls with no task at cost plus markup.
    gateway_billed: bool,
    gateway_rule: String,
    gateway_unbilled: String,
    /// The latest cost-plus lines of this book.
    gateway_lines: Vec<GatewayLine>,
}

/// A cost-plus line as the page shows it: money and calls, never cost.
struct GatewayLine {
    id: String,
    created: String,
    calls: i64,
    amount: String,
}

pub(crate) async fn page(State(state): State<WebState>, user: CurrentUser) -> Result<Response, WebError> {
    let account = user.account();
    let info = state.store.billing_info(account, user.mode()).await?;
    let ids = state.store.stripe_ids(account).await?;
    let status = state
        .store
        .account_status(account)
        .await?
        .ok_or(WebError::NotFound)?;
    let currency = info.plan.price_per_cu.currency.as_str().to_owned();
    let prices = match &info.plan.kind {
        PlanKind::Value {
            cu_per_outcome,
            default_cu,
        } => cu_per_outcome
            .iter()
            .map(|(k, v)| (k.clone(), format!("{} CU", cu(v.milli()))))
            .chain(default_cu.map(|d| ("any other outcome".to_owned(), format!("{} CU", cu(d.milli())))))
            .collect(),
        PlanKind::Effort {
            default_cu_per_million_tokens,
            cu_per_tool_second,
            ..
        } => vec![
            (
                "per million tokens (default)".to_owned(),
                format!("{} CU", cu(default_cu_per_million_tokens.milli())),
            ),
            (
                "per tool second".to_owned(),
                format!("{} CU", cu(cu_per_tool_second.milli())),
            ),
        ],
    };
    let not_yet = "not created yet".to_owned();
    let byok = match state.store.byok(account).await? {
        Some(b) => format!("{} (key …{})", b.base_url, b.key_hint),
        None => "none (PUT /v1/byok sets your own endpoint and key)".to_owned(),
    };
    let byok_fee = match info.plan.byok_fee {
        None => "none: rated like any outcome".to_owned(),
        Some(fee) => format!(
            "{} CU per resolved outcome, {}",
            cu(fee.cu.milli()),
            match fee.mode {
                bounty_core::plan::ByokFeeMode::Instead => "instead of the plan's CU",
                bounty_core::plan::ByokFeeMode::OnTop => "on top of the plan's CU",
            }
        ),
    };
    let gateway_billed = matches!(
        info.plan.gateway.map(|g| g.unattributed),
        Some(bounty_core::Unattributed::CostPlus)
    );
    let gateway_rule = match info.plan.gateway.map(|g| g.unattributed).unwrap_or_default() {
        bounty_core::Unattributed::CostPlus => "Your plan bills calls that name no task (no Bounty-Task) at \
                                                their model cost plus the plan's markup, once a minute."
            .to_owned(),
        bounty_core::Unattributed::Free => {
            "Your plan serves calls that name no task at no charge.".to_owned()
        }
        bounty_core::Unattributed::Refuse => "Your plan refuses calls that name no task.".to_owned(),
    };
    let unbilled = state.store.unbilled_cost_plus_of(account, user.mode()).await?;
    let gateway_unbilled = if unbilled.is_empty() {
        "nothing".to_owned()
    } else {
        unbilled
            .iter()
            .map(|(cur, calls, amount)| format!("{} for {calls} call(s)", money(*amount, cur)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let gateway_lines = state
        .store
        .cost_plus_lines(
            account,
            user.mode(),
            bounty_core::PageLimit::new(10).unwrap_or_default(),
            None,
        )
        .await?
        .items
        .into_iter()
        .map(|l| GatewayLine {
            created: l.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            calls: l.calls,
            amount: money(l.amount_micros, &l.currency),
            id: l.transfer,
        })
        .collect();
    let page = BillingPage {
        gateway_billed,
        gateway_rule,
        gateway_unbilled,
        gateway_lines,
        chrome: Chrome::for_user(&user, "Billing", "billing"),
        byok,
        byok_fee,
        plan_name: info.plan.name.clone(),
        plan_kind: info.plan.kind.as_str(),
        price_per_cu: micros(info.plan.price_per_cu.micros, &currency),
        included_cu: cu(info.plan.included_cu.milli()),
        prices,
        credit_balance: format!("{} CU", cu(info.credit_balance.milli())),
        cap: info
            .monthly_cap
            .map(|c| money(c.micros, &currency))
            .unwrap_or_else(|| "no cap".to_owned()),
        alerts: if info.alert_percents.is_empty() {
            "none".to_owned()
        } else {
            info.alert_percents
                .iter()
                .map(|p| format!("{p}%"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        can_set_cap: user.session.role == bounty_store::UserRole::Owner && user.mode().livemode(),
        csrf: user.session.csrf_secret.clone(),
        cap_input: info
            .monthly_cap
            .map(|c| crate::format::micros_decimal(c.micros))
            .unwrap_or_default(),
        alerts_input: info
            .alert_percents
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        month_spend: money(info.month_spend.micros, &currency),
        reserved: money(info.reserved.micros, &currency),
        account_status: status.as_str().to_owned(),
        stripe_customer: ids.customer.unwrap_or_else(|| not_yet.clone()),
        stripe_subscription: ids.subscription.unwrap_or(not_yet),
    };
    render(&page)
}

/// `POST /billing/cap`: an owner sets the account's monthly cap (live
/// money; blank for none) and its alert thresholds.
pub(crate) async fn set_cap(
    State(state): State<WebState>,
    SignedForm { user, form }: SignedForm<CapForm>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let account = user.account();
    let currency = state.store.plan(account).await?.currency();
    let (cap, alerts) = parse_cap(&form, currency)?;
    state.store.set_cap(account, cap, &alerts).await?;
    tracing::info!(account.id = %account, user.id = %user.session.user_id, "dashboard: cap changed");
    Ok(Redirect::to("/billing").into_response())
}
