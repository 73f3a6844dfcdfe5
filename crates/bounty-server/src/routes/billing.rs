//! `/v1/usage`, `/v1/credits` and `/v1/billing`: what was charged, what it
//! cost, prepaid credits, plan and cap.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bounty_core::ledger::TransferKind;
use bounty_core::outcome::OutcomeStatus;
use bounty_core::{ApiKeyMode, ComputeUnits};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::pagination::parse_time;
use crate::state::AppState;

/// `?from&to&group_by` of `GET /v1/usage`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// Start (RFC 3339, inclusive); default the start of this month.
    pub from: Option<String>,
    /// End (RFC 3339, exclusive); default now.
    pub to: Option<String>,
    /// `day` (default) or `agent`.
    pub group_by: Option<String>,
}

/// One group of the usage report.
#[derive(Debug, Default, Clone, Serialize, utoipa::ToSchema)]
pub struct UsageGroup {
    /// The day (`2026-11-26`) or the agent id.
    pub key: String,
    pub outcomes_resolved: u64,
    pub outcomes_failed: u64,
    pub outcomes_reversed: u64,
    /// Handed to a person: never charged, counted apart from failed.
    pub outcomes_escalated: u64,
    /// Resolved outcomes over decided ones, in percent (one decimal).
    pub resolution_rate_pct: f64,
    /// Compute units charged, as a decimal string.
    pub cu: String,
    #[serde(skip)]
    cu_milli: i64,
    /// Money charged, in micros, per currency.
    pub charges_micros: BTreeMap<String, i64>,
}

/// The usage report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: String,
    pub groups: Vec<UsageGroup>,
    pub total: UsageGroup,
}

fn add(map: &mut BTreeMap<String, i64>, currency: &str, v: i64) {
    let e = map.entry(currency.to_owned()).or_insert(0);
    *e = e.saturating_add(v);
}

fn finish(g: &mut UsageGroup) {
    let decided = g.outcomes_resolved + g.outcomes_failed + g.outcomes_reversed + g.outcomes_escalated;
    g.resolution_rate_pct = if decided == 0 {
        0.0
    } else {
        (g.outcomes_resolved as f64 * 1000.0 / decided as f64).round() / 10.0
    };
    g.cu = ComputeUnits::from_milli(g.cu_milli).decimal();
}

/// Usage over a period: outcomes, resolution rate, CU and charges, by day
/// or by agent.
#[utoipa::path(
    get,
    path = "/v1/usage",
    tag = "billing",
    security(("api_key" = [])),
    params(UsageParams),
    responses(
        (status = 200, body = UsageReport),
        (status = 400, description = "A bad `from`, `to` or `group_by`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn usage(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<UsageParams>,
) -> ApiResult<Json<UsageReport>> {
    let now = state.store.now();
    let from = parse_time("from", q.from.as_deref())?.unwrap_or_else(|| bounty_store::period_start(now));
    let to = parse_time("to", q.to.as_deref())?.unwrap_or(now);
    let group_by = q.group_by.unwrap_or_else(|| "day".to_owned());
    if group_by != "day" && group_by != "agent" {
        return Err(ApiError::InvalidRequest {
            message: "`group_by` must be `day` or `agent`".to_owned(),
            param: Some("group_by".to_owned()),
        });
    }
    let buckets = state.store.usage(auth.account_id, auth.mode, from, to).await?;
    Ok(Json(aggregate(buckets, &group_by, from, to)))
}

/// Groups decided outcomes (the store's usage buckets) by day or agent
/// (`group_by` is `day` or `agent`) into the usage report; shared with
/// `bounty usage`.
pub fn aggregate(
    buckets: Vec<bounty_store::UsageBucket>,
    group_by: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> UsageReport {
    let mut groups: BTreeMap<String, UsageGroup> = BTreeMap::new();
    let mut total = UsageGroup {
        key: "total".to_owned(),
        ..Default::default()
    };
    for b in buckets {
        let key = if group_by == "day" {
            b.day.format("%Y-%m-%d").to_string()
        } else {
            b.agent_id.to_string()
        };
        let g = groups.entry(key.clone()).or_insert_with(|| UsageGroup {
            key,
            ..Default::default()
        });
        let n = u64::try_from(b.outcomes).unwrap_or(0);
        for g in [g, &mut total] {
            match b.status {
                OutcomeStatus::Resolved => {
                    g.outcomes_resolved += n;
                    g.cu_milli = g.cu_milli.saturating_add(b.cu.milli());
                    add(&mut g.charges_micros, b.amount.currency.as_str(), b.amount.micros);
                }
                OutcomeStatus::Reversed => g.outcomes_reversed += n,
                OutcomeStatus::Escalated => g.outcomes_escalated += n,
                _ => g.outcomes_failed += n,
            }
        }
    }
    let mut groups: Vec<UsageGroup> = groups.into_values().collect();
    groups.iter_mut().for_each(finish);
    finish(&mut total);
    UsageReport {
        from,
        to,
        group_by: group_by.to_owned(),
        groups,
        total,
    }
}

/// Prepaid credits.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreditsOut {
    /// CU left, as a decimal string.
    pub balance_cu: String,
    pub grants: Vec<CreditGrantOut>,
}

/// One credit grant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreditGrantOut {
    pub id: String,
    pub cu: String,
    pub memo: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The account's prepaid CU balance and its grants.
#[utoipa::path(
    get,
    path = "/v1/credits",
    tag = "billing",
    security(("api_key" = [])),
    responses(
        (status = 200, body = CreditsOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn get_credits(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<CreditsOut>> {
    credits_of(&state, &auth).await.map(Json)
}

async fn credits_of(state: &AppState, auth: &Auth) -> ApiResult<CreditsOut> {
    let info = state.store.billing_info(auth.account_id, auth.mode).await?;
    // The key's own book only: a live key never sees test grants.
    let grants: Vec<_> = state
        .store
        .transfers(auth.account_id, None, Some(TransferKind::CreditGrant))
        .await?
        .into_iter()
        .filter(|t| t.mode == auth.mode)
        .collect();
    Ok(CreditsOut {
        balance_cu: info.credit_balance.decimal(),
        grants: grants
            .into_iter()
            .rev()
            .map(|t| CreditGrantOut {
                id: t.id.to_string(),
                cu: ComputeUnits::from_milli(t.amount).decimal(),
                memo: t.memo,
                created_at: t.created_at,
            })
            .collect(),
    })
}

/// A credit grant.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditGrantIn {
    /// CU to add, as a decimal string (`"100"`, `"12.5"`).
    pub cu: String,
    pub memo: Option<String>,
}

/// Grants prepaid CU. Only test-mode keys may grant through the API (to
/// exercise credits end to end); live credits are granted by the operator
/// (`bounty credits grant`) or, later, by payment.
#[utoipa::path(
    post,
    path = "/v1/credits/grants",
    tag = "billing",
    security(("api_key" = [])),
    request_body = CreditGrantIn,
    responses(
        (status = 201, body = CreditsOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "`live_key_cannot_grant`: live credits come from the operator", body = ErrorBody),
        (status = 422, description = "A bad `cu`", body = ErrorBody),
    )
)]
pub async fn grant_credits(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreditGrantIn>,
) -> ApiResult<(StatusCode, Json<CreditsOut>)> {
    if auth.mode != ApiKeyMode::Test {
        return Err(ApiError::LiveKeyCannotGrant);
    }
    let cu = ComputeUnits::parse_decimal(body.cu.trim())
        .map_err(|e| ApiError::validation("cu", format!("is not a CU amount: {e}")))?;
    if cu.milli() <= 0 {
        return Err(ApiError::validation("cu", "must be positive"));
    }
    let id = state
        .store
        .grant_credits(auth.account_id, auth.mode, cu, body.memo)
        .await?;
    tracing::info!(transfer.id = %id, cu = %cu, "credits granted (test mode)");
    Ok((StatusCode::CREATED, Json(credits_of(&state, &auth).await?)))
}

/// Plan, cap and balances.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BillingOut {
    #[schema(value_type = Object)]
    pub plan: bounty_core::plan::Plan,
    /// Monthly cap in micros of the plan's currency; `null`: none.
    pub monthly_cap_micros: Option<i64>,
    pub alert_percents: Vec<u32>,
    pub credit_balance_cu: String,
    /// Charged this month (reversals netted) plus reserved for running tasks.
    pub month_spend_micros: i64,
    pub reserved_micros: i64,
    /// Cap alerts recorded, newest first.
    pub alerts: Vec<AlertOut>,
}

/// A recorded cap alert.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertOut {
    pub period: String,
    pub percent: i32,
    pub detail: String,
    pub created_at: DateTime<Utc>,
}

/// The account's plan, spending cap, credit balance and this month's spend.
#[utoipa::path(
    get,
    path = "/v1/billing",
    tag = "billing",
    security(("api_key" = [])),
    responses(
        (status = 200, body = BillingOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn get_billing(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<BillingOut>> {
    let info = state.store.billing_info(auth.account_id, auth.mode).await?;
    let alerts = state.store.billing_events(auth.account_id).await?;
    Ok(Json(BillingOut {
        plan: info.plan,
        monthly_cap_micros: info.monthly_cap.map(|c| c.micros),
        alert_percents: info.alert_percents,
        credit_balance_cu: info.credit_balance.decimal(),
        month_spend_micros: info.month_spend.micros,
        reserved_micros: info.reserved.micros,
        alerts: alerts
            .into_iter()
            .map(|(period, percent, detail, created_at)| AlertOut {
                period,
                percent,
                detail,
                created_at,
            })
            .collect(),
    }))
}
