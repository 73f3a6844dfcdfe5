//! `GET /v1/invoices`: the account's Stripe invoices, as Stripe's webhooks
//! described them, fetched from Stripe when none were ever delivered (or
//! on `?refresh=true`).

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody};
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

/// Query of `GET /v1/invoices`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InvoiceParams {
    /// How many items to return, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Fetch the account's invoices from Stripe first (Stripe configured).
    pub refresh: Option<bool>,
}

/// Lists the account's invoices, newest first. When none were ever
/// received by webhook (or with `refresh=true`), the first page is fetched
/// from Stripe first.
#[utoipa::path(
    get,
    path = "/v1/invoices",
    tag = "billing",
    security(("api_key" = [])),
    params(InvoiceParams),
    responses(
        (status = 200, body = InvoiceList),
        (status = 400, description = "A bad `limit`, `cursor` or `refresh`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 503, description = "`refresh=true` and Stripe could not be reached", body = ErrorBody),
    )
)]
pub async fn list_invoices(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<InvoiceParams>,
) -> ApiResult<Json<InvoiceList>> {
    let (limit, cursor) = ListParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .parse::<String>()?;
    let refresh = params.refresh == Some(true);
    if let (Some(client), None) = (&state.stripe, &cursor) {
        let missing = !refresh
            && state
                .store
                .list_invoices(
                    auth.account_id,
                    bounty_core::PageLimit::new(1).unwrap_or(limit),
                    None,
                )
                .await?
                .items
                .is_empty();
        if refresh || missing {
            match bounty_billing::invoices::sync_invoices(client, &state.store, auth.account_id).await {
                Ok(n) => tracing::debug!(fetched = n, "invoices fetched from Stripe"),
                Err(bounty_billing::catalog::CatalogError::Store(e)) => return Err(e.into()),
                // Asked for explicitly: say Stripe failed. Otherwise serve what is kept.
                Err(e) if refresh => {
                    tracing::warn!(error = %e, "fetching invoices from Stripe failed");
                    return Err(ApiError::StripeUnavailable);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "fetching invoices from Stripe failed; serving stored ones")
                }
            }
        }
    }
    let page = state.store.list_invoices(auth.account_id, limit, cursor).await?;
    Ok(Json(InvoiceList {
        data: page
            .items
            .into_iter()
            .map(|i| InvoiceOut {
                id: i.stripe.id,
                status: i.stripe.status.as_str().to_owned(),
                // Stripe's spelling: lower case.
                currency: i.stripe.currency.as_str().to_ascii_lowercase(),
                amount_due: i.stripe.amount_due,
                amount_paid: i.stripe.amount_paid,
                total: i.stripe.total,
                period_start: i.stripe.period_start,
                period_end: i.stripe.period_end,
                hosted_invoice_url: i.stripe.hosted_invoice_url,
                updated_at: i.updated_at,
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}
