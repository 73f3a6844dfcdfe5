//! Calls on a customer beyond creating it: its subscription on the metered price (and the
//! gateway's cost-plus price added to it), credits to its balance, and its invoices.

use serde_json::{Value, json};
use stripe_client_core::StripeMethod;

use super::{IdempotencyKey, StripeClient, StripeError, field};

/// A subscription, as far as billing reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub status: String,
}

/// A credit to a customer's balance: the next invoice is reduced by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceCredit<'a> {
    pub customer: &'a str,
    /// Minor units (cents) credited; positive.
    pub amount_minor: i64,
    /// Lower-case ISO currency.
    pub currency: &'a str,
    pub description: &'a str,
    /// Our ledger transfer this credit reports, in `metadata[transfer_id]`.
    pub transfer_id: &'a str,
}

impl StripeClient {
    /// Subscribes the customer to a metered price (`POST /v1/subscriptions`). Usage is then billed
    /// from the meter each month; there is no quantity.
    #[tracing::instrument(skip_all, fields(account.id = account_id))]
    pub async fn create_subscription(
        &self,
        idempotency_key: &IdempotencyKey,
        customer: &str,
        price: &str,
        account_id: &str,
    ) -> Result<Subscription, StripeError> {
        let params = json!({
            "customer": customer,
            "items": [{ "price": price }],
            "metadata": { "account_id": account_id },
        });
        let object = self
            .call(
                StripeMethod::Post,
                "/subscriptions",
                &params,
                Some(idempotency_key),
            )
            .await?;
        Ok(Subscription {
            id: field(&object, "id")?.to_owned(),
            status: object["status"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// Adds a metered price to a subscription (`POST /v1/subscription_items`) and returns the
    /// item's id (`si_…`). Usage on the price's meter is then billed with the subscription.
    #[tracing::instrument(skip_all, fields(account.id = account_id))]
    pub async fn add_subscription_item(
        &self,
        idempotency_key: &IdempotencyKey,
        subscription: &str,
        price: &str,
        account_id: &str,
    ) -> Result<String, StripeError> {
        let params = json!({
            "subscription": subscription,
            "price": price,
            "metadata": { "account_id": account_id },
        });
        let object = self
            .call(
                StripeMethod::Post,
                "/subscription_items",
                &params,
                Some(idempotency_key),
            )
            .await?;
        Ok(field(&object, "id")?.to_owned())
    }

    /// Credits the customer's balance (`POST /v1/customers/{id}/balance_transactions` with a
    /// negative amount) and returns the balance transaction's id (`cbtxn_…`).
    #[tracing::instrument(skip_all, fields(stripe.transfer_id = credit.transfer_id))]
    pub async fn credit_balance(
        &self,
        idempotency_key: &IdempotencyKey,
        credit: &BalanceCredit<'_>,
    ) -> Result<String, StripeError> {
        if credit.amount_minor <= 0 {
            return Err(StripeError::Malformed(format!(
                "a balance credit must be positive, got {}",
                credit.amount_minor
            )));
        }
        let params = json!({
            "amount": -credit.amount_minor,
            "currency": credit.currency,
            "description": credit.description,
            "metadata": { "transfer_id": credit.transfer_id },
        });
        let path = format!("/customers/{}/balance_transactions", credit.customer);
        let object = self
            .call(StripeMethod::Post, &path, &params, Some(idempotency_key))
            .await?;
        Ok(field(&object, "id")?.to_owned())
    }

    /// The customer's invoices, newest first, up to `max` (`GET /v1/invoices?customer=…`), as
    /// Stripe's invoice objects.
    pub async fn list_invoices(&self, customer: &str, max: usize) -> Result<Vec<Value>, StripeError> {
        self.list_all("/invoices", json!({ "customer": customer }), max)
            .await
    }
}
