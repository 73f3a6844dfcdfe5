//! `GET /v1/invoices`: the account's Stripe invoices, as Stripe's webhooks
//! described them.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::auth::Auth;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::routes::pagination::ListParams;
use crate::state::AppState;

/// An invoice.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvoiceOut {
    /// Stripe's id (`in_…`).
    pub id: String,
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    pub status: String,
    pub currency: String,
    /// In the currency's smallest unit (cents), as Stripe counts.
    pub amount_due: i64,
    pub amount_paid: i64,
    pub total: i64,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    /// Stripe's hosted page for the invoice.
    pub hosted_invoice_url: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// One page of invoices.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvoiceList {
    pub data: Vec<InvoiceOut>,
    pub next_cursor: Option<String>,
}

/// Lists the account's invoices, newest first.
#[utoipa::path(
    get,
    path = "/v1/invoices",
    tag = "billing",
    security(("api_key" = [])),
    params(ListParams),
    responses(
        (status = 200, body = InvoiceList),
        (status = 400, description = "A bad `limit` or `cursor`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn list_invoices(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<InvoiceList>> {
    let (limit, cursor) = params.parse::<String>()?;
    let page = state.store.list_invoices(auth.account_id, limit, cursor).await?;
    Ok(Json(InvoiceList {
        data: page
            .items
            .into_iter()
            .map(|i| InvoiceOut {
                id: i.id,
                status: i.status,
                currency: i.currency,
                amount_due: i.amount_due,
                amount_paid: i.amount_paid,
                total: i.total,
                period_start: i.period_start,
                period_end: i.period_end,
                hosted_invoice_url: i.hosted_invoice_url,
                updated_at: i.updated_at,
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}
