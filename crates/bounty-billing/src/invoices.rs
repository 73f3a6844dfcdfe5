//! Invoices fetched from Stripe, for when its webhooks never told us of one (an endpoint set up
//! late, a delivery Stripe gave up on). What is fetched is stored like a webhook's invoice, so
//! later webhooks and fetches update the same rows.

use bounty_core::AccountId;
use bounty_store::Store;

use crate::catalog::CatalogError;
use crate::stripe::StripeClient;

/// The most invoices one fetch stores: a year and more of monthly invoices.
pub const FETCH_MAX: usize = 100;

/// Fetches the account's invoices from Stripe and stores them. Returns how many were fetched;
/// 0 when the account has no Stripe customer yet.
#[tracing::instrument(skip_all, fields(account.id = %account))]
pub async fn sync_invoices(
    client: &StripeClient,
    store: &Store,
    account: AccountId,
) -> Result<usize, CatalogError> {
    let Some(customer) = store.stripe_ids(account).await?.customer else {
        return Ok(0);
    };
    let invoices = client.list_invoices(&customer, FETCH_MAX).await?;
    // Stripe filtered by customer; keep only what is really this customer's all the same.
    let mine: Vec<_> = invoices
        .iter()
        .filter(|i| i["customer"].as_str() == Some(customer.as_str()))
        .filter_map(|i| crate::stripe_events::parse_invoice(i).ok())
        .collect();
    store.upsert_invoices(account, &mine).await?;
    Ok(mine.len())
}
