//! The operator's API, `/v1/ops/*`, for `bk_op_` keys only
//! ([`OperatorAuth`]): every account, with the figures a customer never
//! sees (what its work cost us in inference, and the margin). Live work
//! only: test-mode work is never billed.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use bounty_billing::disputes::{Decision, decide_dispute};
use bounty_core::dispute::DisputeStatus;
use bounty_core::{AccountId, Actor, ApiKeyMode, DisputeId};
use bounty_store::UsageBucket;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::OperatorAuth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::billing::{UsageGroup, aggregate};
use crate::routes::disputes::{DisputeOut, serve_evidence};
use crate::routes::pagination::{ListParams, parse_time};
use crate::state::AppState;

/// Our inference cost of `buckets`' decided outcomes per group key (the
/// day or the agent id, as `group_by` says) and under `total`, in micros
/// per currency. BYOK calls are never in it: the account pays for them.
pub fn inference_costs(buckets: &[UsageBucket], group_by: &str) -> BTreeMap<String, BTreeMap<String, i64>> {
    let mut costs: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for b in buckets {
        let key = if group_by == "day" {
            b.day.format("%Y-%m-%d").to_string()
        } else {
            b.agent_id.to_string()
        };
        for k in [key, "total".to_owned()] {
            let e = costs
                .entry(k)
                .or_default()
                .entry(b.inference_cost.currency.to_string())
                .or_insert(0);
            *e = e.saturating_add(b.inference_cost.micros);
        }
    }
    costs
}

/// A usage group with what it cost us and what we earned on it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OperatorFigures {
    #[serde(flatten)]
    pub usage: UsageGroup,
    /// Our inference cost of every decided outcome's task, in micros, per
    /// currency.
    pub inference_cost_micros: BTreeMap<String, i64>,
    /// Charges minus inference cost, per currency.
    pub gross_margin_micros: BTreeMap<String, i64>,
    /// Gross margin over charges, in percent (one decimal), per currency
    /// charged in.
    pub gross_margin_pct: BTreeMap<String, f64>,
}

impl OperatorFigures {
    /// `usage` with `cost` beside it.
    pub fn new(usage: UsageGroup, cost: BTreeMap<String, i64>) -> Self {
        let mut margin = BTreeMap::new();
        let mut pct = BTreeMap::new();
        for c in usage.charges_micros.keys().chain(cost.keys()) {
            let charged = usage.charges_micros.get(c).copied().unwrap_or(0);
            let m = charged.saturating_sub(cost.get(c).copied().unwrap_or(0));
            margin.insert(c.clone(), m);
            if charged > 0 {
                pct.insert(c.clone(), (m as f64 * 1000.0 / charged as f64).round() / 10.0);
            }
        }
        OperatorFigures {
            usage,
            inference_cost_micros: cost,
            gross_margin_micros: margin,
            gross_margin_pct: pct,
        }
    }
}

/// One account as the operator sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpsAccountOut {
    pub id: AccountId,
    pub name: String,
    /// `active`, `past_due` or `suspended`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The period's live work.
    pub figures: OperatorFigures,
    /// The period's live gateway calls that are not part of a task, by
    /// billing rule (`task`: of a task not reported yet; `cost_plus`;
    /// `free`: the operator's cost only) and currency, with their cost and
    /// cost-plus charge. Calls of a task count in `figures` with it.
    #[schema(value_type = Vec<Object>)]
    pub gateway_open_calls: Vec<bounty_store::gateway::GatewayFigures>,
}

/// One page of accounts, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpsAccountList {
    pub data: Vec<OpsAccountOut>,
    pub next_cursor: Option<String>,
}

/// The period and paging of `GET /v1/ops/accounts`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OpsAccountParams {
    /// Start of the period (RFC 3339; default: the start of this month).
    pub from: Option<String>,
    /// End of the period (RFC 3339; default: now).
    pub to: Option<String>,
    /// How many accounts to return, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The period of a query: `[from, to)`, this month so far by default.
fn period(
    state: &AppState,
    from: Option<&str>,
    to: Option<&str>,
) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
    let now = state.store.now();
    let from = parse_time("from", from)?.unwrap_or_else(|| bounty_store::period_start(now));
    let to = parse_time("to", to)?.unwrap_or(now);
    Ok((from, to))
}

async fn account_out(
    state: &AppState,
    account: bounty_store::Account,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> ApiResult<OpsAccountOut> {
    let buckets = state.store.usage(account.id, ApiKeyMode::Live, from, to).await?;
    let mut costs = inference_costs(&buckets, "day");
    let report = aggregate(buckets, "day", from, to);
    let status = state.store.account_status(account.id).await?;
    Ok(OpsAccountOut {
        id: account.id,
        name: account.name,
        status: status.map_or_else(|| "active".to_owned(), |s| s.to_string()),
        created_at: account.created_at,
        from,
        to,
        figures: OperatorFigures::new(report.total, costs.remove("total").unwrap_or_default()),
        gateway_open_calls: state.store.gateway_open_figures(account.id, from, to).await?,
    })
}

/// Every account with its live revenue, CU, resolution rate, inference
/// cost and gross margin over a period (operator keys only).
#[utoipa::path(
    get,
    path = "/v1/ops/accounts",
    tag = "operator",
    security(("operator_key" = [])),
    params(OpsAccountParams),
    responses(
        (status = 200, body = OpsAccountList),
        (status = 400, description = "A bad `from`, `to`, `limit` or `cursor`", body = ErrorBody),
        (status = 401, description = "An unknown or revoked operator key", body = ErrorBody),
        (status = 404, description = "Not an operator key: the route does not exist for the caller", body = ErrorBody),
    )
)]
pub async fn list_accounts(
    _op: OperatorAuth,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<OpsAccountParams>,
) -> ApiResult<Json<OpsAccountList>> {
    let (from, to) = period(&state, q.from.as_deref(), q.to.as_deref())?;
    let (limit, cursor) = ListParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .parse::<AccountId>()?;
    let page = state.store.admin_list_accounts(limit, cursor).await?;
    let mut data = Vec::with_capacity(page.items.len());
    for a in page.items {
        data.push(account_out(&state, a, from, to).await?);
    }
    Ok(Json(OpsAccountList {
        data,
        next_cursor: page.next_cursor,
    }))
}

/// The period of `GET /v1/ops/accounts/{id}`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OpsPeriodParams {
    /// Start of the period (RFC 3339; default: the start of this month).
    pub from: Option<String>,
    /// End of the period (RFC 3339; default: now).
    pub to: Option<String>,
}

/// Any account, with its live figures over a period (operator keys only).
#[utoipa::path(
    get,
    path = "/v1/ops/accounts/{id}",
    tag = "operator",
    security(("operator_key" = [])),
    params(("id" = String, Path, description = "An account id (`acct_…`)"), OpsPeriodParams),
    responses(
        (status = 200, body = OpsAccountOut),
        (status = 404, description = "No such account, or not an operator key", body = ErrorBody),
    )
)]
pub async fn get_account(
    _op: OperatorAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<OpsPeriodParams>,
) -> ApiResult<Json<OpsAccountOut>> {
    let not_found = || ApiError::NotFound {
        kind: "account",
        id: id.clone(),
    };
    let account_id: AccountId = id.parse().map_err(|_| not_found())?;
    let account = state.store.get_account(account_id).await?.ok_or_else(not_found)?;
    let (from, to) = period(&state, q.from.as_deref(), q.to.as_deref())?;
    Ok(Json(account_out(&state, account, from, to).await?))
}

/// A dispute as the operator sees it: who decided by name, and the account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpsDisputeOut {
    pub account_id: AccountId,
    #[serde(flatten)]
    pub dispute: DisputeOut,
    /// Who opened it (`api_key:key_…`, `operator:…`).
    pub opened_by: String,
    /// Who decided (`operator:…`, `dispute_policy`).
    pub decider: Option<String>,
}

impl OpsDisputeOut {
    fn of(d: bounty_store::Dispute) -> Self {
        OpsDisputeOut {
            account_id: d.account_id,
            opened_by: d.opened_by.to_string(),
            decider: d.decided_by.as_ref().map(|a| a.to_string()),
            dispute: DisputeOut::of(d),
        }
    }
}

/// One page of disputes, oldest first: the queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpsDisputeList {
    pub data: Vec<OpsDisputeOut>,
    pub next_cursor: Option<String>,
}

/// The filter and paging of `GET /v1/ops/disputes`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OpsDisputeParams {
    /// `open` (the queue), `accepted` or `rejected`; all when absent.
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Every account's disputes, oldest first; `?status=open` is the queue.
#[utoipa::path(
    get,
    path = "/v1/ops/disputes",
    tag = "operator",
    security(("operator_key" = [])),
    params(OpsDisputeParams),
    responses(
        (status = 200, body = OpsDisputeList),
        (status = 400, description = "A bad `status`, `limit` or `cursor`", body = ErrorBody),
        (status = 404, description = "Not an operator key: the route does not exist for the caller", body = ErrorBody),
    )
)]
pub async fn list_disputes(
    _op: OperatorAuth,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<OpsDisputeParams>,
) -> ApiResult<Json<OpsDisputeList>> {
    let status = q
        .status
        .as_deref()
        .map(str::parse::<DisputeStatus>)
        .transpose()
        .map_err(|e| ApiError::InvalidRequest {
            message: e.to_string(),
            param: Some("status".to_owned()),
        })?;
    let (limit, cursor) = ListParams {
        limit: q.limit,
        cursor: q.cursor,
    }
    .parse::<DisputeId>()?;
    let page = state.store.admin_list_disputes(status, limit, cursor).await?;
    Ok(Json(OpsDisputeList {
        data: page.items.into_iter().map(OpsDisputeOut::of).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// The operator's decision on a dispute.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionIn {
    /// Why; required to reject (the customer reads it).
    pub reason: Option<String>,
}

/// The dispute's account, or a 404.
async fn dispute_account(state: &AppState, id: &str) -> ApiResult<(AccountId, DisputeId)> {
    let not_found = || ApiError::NotFound {
        kind: "dispute",
        id: id.to_owned(),
    };
    let did: DisputeId = id.parse().map_err(|_| not_found())?;
    let account = state
        .store
        .admin_dispute_account(did)
        .await?
        .ok_or_else(not_found)?;
    Ok((account, did))
}

/// Who the operator is on a receipt: its email.
async fn operator_actor(state: &AppState, op: &OperatorAuth) -> ApiResult<Actor> {
    let name = state
        .store
        .operator_email(op.operator_id)
        .await?
        .unwrap_or_else(|| op.operator_id.to_string());
    Ok(Actor::operator(&name).unwrap_or_else(|_| Actor::Operator(op.operator_id.to_string())))
}

async fn decide(
    op: OperatorAuth,
    state: AppState,
    id: String,
    body: DecisionIn,
    decision: Decision,
) -> ApiResult<Json<OpsDisputeOut>> {
    let (account, did) = dispute_account(&state, &id).await?;
    let actor = operator_actor(&state, &op).await?;
    let dispute = decide_dispute(
        &state.store,
        account,
        did,
        decision,
        &actor,
        body.reason.as_deref(),
    )
    .await?;
    tracing::info!(dispute.id = %did, account.id = %account, status = %dispute.status, "dispute decided");
    Ok(Json(OpsDisputeOut::of(dispute)))
}

/// Accepts a dispute: the charge is reversed through the ordinary
/// reversal path (the meter event cancelled within 24 h, a balance credit
/// after).
#[utoipa::path(
    post,
    path = "/v1/ops/disputes/{id}/accept",
    tag = "operator",
    security(("operator_key" = [])),
    params(("id" = String, Path, description = "The dispute's id, `dsp_…`")),
    request_body = DecisionIn,
    responses(
        (status = 200, body = OpsDisputeOut),
        (status = 404, description = "No such dispute, or not an operator key", body = ErrorBody),
        (status = 409, description = "`dispute_decided`: decided already", body = ErrorBody),
    )
)]
pub async fn accept_dispute(
    op: OperatorAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecisionIn>,
) -> ApiResult<Json<OpsDisputeOut>> {
    decide(op, state, id, body, Decision::Accept).await
}

/// Rejects a dispute: the charge stands, and the customer reads `reason`.
#[utoipa::path(
    post,
    path = "/v1/ops/disputes/{id}/reject",
    tag = "operator",
    security(("operator_key" = [])),
    params(("id" = String, Path, description = "The dispute's id, `dsp_…`")),
    request_body = DecisionIn,
    responses(
        (status = 200, body = OpsDisputeOut),
        (status = 404, description = "No such dispute, or not an operator key", body = ErrorBody),
        (status = 409, description = "`dispute_decided`: decided already", body = ErrorBody),
        (status = 422, description = "No `reason`", body = ErrorBody),
    )
)]
pub async fn reject_dispute(
    op: OperatorAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecisionIn>,
) -> ApiResult<Json<OpsDisputeOut>> {
    decide(op, state, id, body, Decision::Reject).await
}

/// A dispute's evidence pack, as its customer downloads it.
#[utoipa::path(
    get,
    path = "/v1/ops/disputes/{id}/evidence",
    tag = "operator",
    security(("operator_key" = [])),
    params(("id" = String, Path, description = "The dispute's id, `dsp_…`")),
    responses(
        (status = 200, content_type = "application/json", description = "The evidence pack, as a download"),
        (status = 404, description = "No such dispute, or not an operator key", body = ErrorBody),
    )
)]
pub async fn get_dispute_evidence(
    _op: OperatorAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (account, did) = dispute_account(&state, &id).await?;
    serve_evidence(&state, account, did).await
}
