//! `GET /v1/gateway/charges`: what the account was billed for gateway
//! calls made without a task on a plan that bills them at cost plus its
//! markup. Each line is one `cost_plus` ledger transfer: the money, the
//! calls it bills and when they were made; `unbilled` is what the next
//! billing sweep (every minute by default) will bill. The calls'
//! inference cost and the markup are the operator's and never shown.

use axum::Json;
use axum::extract::State;
use bounty_core::{Money, TransferId};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::routes::pagination::ListParams;
use crate::state::AppState;

/// One line billed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CostPlusChargeOut {
    /// The ledger transfer (`xfr_…`), also the Stripe meter event's
    /// identifier.
    pub id: String,
    /// `{micros, currency}` billed.
    #[schema(value_type = Object)]
    pub amount: Money,
    /// Gateway calls it bills.
    pub calls: i64,
    pub first_call_at: Option<DateTime<Utc>>,
    pub last_call_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub reversed: bool,
}

/// Calls recorded and charged, not billed yet, in one currency.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnbilledOut {
    pub calls: i64,
    #[schema(value_type = Object)]
    pub amount: Money,
}

/// A page of lines, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CostPlusChargeList {
    pub data: Vec<CostPlusChargeOut>,
    pub next_cursor: Option<String>,
    /// What the next sweep bills, per currency (on the first page only).
    pub unbilled: Vec<UnbilledOut>,
}

fn money(micros: i64, currency: &str) -> ApiResult<Money> {
    let currency = currency
        .parse()
        .map_err(|e| ApiError::Internal(format!("a stored currency {currency:?}: {e}")))?;
    Ok(Money::from_micros(micros, currency))
}

/// The account's cost-plus lines in the key's book (a test key sees the
/// test book), newest first.
#[utoipa::path(
    get,
    path = "/v1/gateway/charges",
    tag = "gateway",
    security(("api_key" = [])),
    params(ListParams),
    responses(
        (status = 200, body = CostPlusChargeList),
        (status = 400, description = "A bad `limit` or `cursor`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn list_charges(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<CostPlusChargeList>> {
    let (limit, cursor) = params.parse::<TransferId>()?;
    let first = cursor.is_none();
    let page = state
        .store
        .cost_plus_lines(auth.account_id, auth.mode, limit, cursor)
        .await?;
    let data = page
        .items
        .into_iter()
        .map(|l| {
            Ok(CostPlusChargeOut {
                amount: money(l.amount_micros, &l.currency)?,
                id: l.transfer,
                calls: l.calls,
                first_call_at: l.first_call_at,
                last_call_at: l.last_call_at,
                created_at: l.created_at,
                reversed: l.reversed,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let unbilled = if first {
        state
            .store
            .unbilled_cost_plus_of(auth.account_id, auth.mode)
            .await?
            .into_iter()
            .map(|(currency, calls, micros)| {
                Ok(UnbilledOut {
                    calls,
                    amount: money(micros, &currency)?,
                })
            })
            .collect::<ApiResult<Vec<_>>>()?
    } else {
        Vec::new()
    };
    Ok(Json(CostPlusChargeList {
        data,
        next_cursor: page.next_cursor,
        unbilled,
    }))
}
