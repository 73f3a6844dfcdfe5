//! `GET /invoices`: the account's invoices as Stripe last described them,
//! each linking to Stripe's hosted invoice page. Amounts are in the
//! currency's minor units, as Stripe sends them.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use bounty_core::PageLimit;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::WebError;
use crate::format::{minor_units, time, time_or_dash};
use crate::layout::{Chrome, render};
use crate::pages::{WebQuery, present};
use crate::state::WebState;

/// Invoices per page.
const PAGE_SIZE: u32 = 25;

struct InvoiceRow {
    id: String,
    status: String,
    period: String,
    total: String,
    due: String,
    paid: String,
    /// Only `https://` links are shown: the URL comes from Stripe, but a
    /// page never renders a script URL from stored data.
    url: Option<String>,
    updated: String,
    /// The export of the charges of the invoice's period, when it has one.
    charges_href: Option<String>,
}

#[derive(Template)]
#[template(path = "invoices.html")]
struct InvoicesPage {
    chrome: Chrome,
    invoices: Vec<InvoiceRow>,
    next_href: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct InvoicesQuery {
    cursor: Option<String>,
}

pub(crate) async fn list(
    State(state): State<WebState>,
    user: CurrentUser,
    WebQuery(q): WebQuery<InvoicesQuery>,
) -> Result<Response, WebError> {
    let limit = PageLimit::new(PAGE_SIZE).map_err(|e| WebError::Internal(e.to_string()))?;
    let page = state
        .store
        .list_invoices(user.account(), limit, present(&q.cursor).map(str::to_owned))
        .await?;
    let invoices = page
        .items
        .into_iter()
        .map(|i| {
            let (updated_at, i) = (i.updated_at, i.stripe);
            // The period's days, both included: Stripe's end is exclusive.
            let charges_href = match (i.period_start, i.period_end) {
                (Some(s), Some(e)) if e > s => Some(format!(
                    "/charges.csv?from={}&to={}",
                    s.format("%Y-%m-%d"),
                    (e - chrono::Duration::seconds(1)).format("%Y-%m-%d")
                )),
                _ => None,
            };
            let currency = i.currency.as_str();
            InvoiceRow {
                period: match (i.period_start, i.period_end) {
                    (Some(s), Some(e)) => format!("{} – {}", s.format("%Y-%m-%d"), e.format("%Y-%m-%d")),
                    (s, e) => format!("{} – {}", time_or_dash(s), time_or_dash(e)),
                },
                total: minor_units(i.total, currency),
                due: minor_units(i.amount_due, currency),
                paid: minor_units(i.amount_paid, currency),
                url: i.hosted_invoice_url.filter(|u| u.starts_with("https://")),
                updated: time(updated_at),
                id: i.id,
                status: i.status.to_string(),
                charges_href,
            }
        })
        .collect();
    let next_href = page
        .next_cursor
        .map(|c| serde_urlencoded::to_string([("cursor", c)]).map(|qs| format!("/invoices?{qs}")))
        .transpose()
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let page = InvoicesPage {
        chrome: Chrome::for_user(&user, "Invoices", "invoices"),
        invoices,
        next_href,
    };
    render(&page)
}
