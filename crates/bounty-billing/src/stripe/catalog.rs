//! The catalogue calls: billing meters, their event summaries, products and prices.
//!
//! Each object is read into the few fields billing needs; the rest of Stripe's object is ignored.

use serde_json::{Value, json};
use stripe_client_core::StripeMethod;

use super::{IdempotencyKey, StripeClient, StripeError, field};

/// A billing meter, as far as billing reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meter {
    pub id: String,
    pub event_name: String,
    pub status: String,
    /// `default_aggregation.formula`: `sum`, `count` or `last`.
    pub formula: String,
    /// `customer_mapping.event_payload_key`.
    pub customer_key: String,
    /// `value_settings.event_payload_key`.
    pub value_key: String,
}

impl Meter {
    fn from_json(object: &Value) -> Result<Self, StripeError> {
        let nested = |outer: &str, inner: &str| object[outer][inner].as_str().unwrap_or_default().to_owned();
        Ok(Meter {
            id: field(object, "id")?.to_owned(),
            event_name: field(object, "event_name")?.to_owned(),
            status: object["status"].as_str().unwrap_or("active").to_owned(),
            formula: nested("default_aggregation", "formula"),
            customer_key: nested("customer_mapping", "event_payload_key"),
            value_key: nested("value_settings", "event_payload_key"),
        })
    }
}

/// A product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: String,
    pub name: String,
    pub active: bool,
}

impl Product {
    fn from_json(object: &Value) -> Result<Self, StripeError> {
        Ok(Product {
            id: field(object, "id")?.to_owned(),
            name: object["name"].as_str().unwrap_or_default().to_owned(),
            active: object["active"].as_bool().unwrap_or(true),
        })
    }
}

/// A price, as far as billing reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripePrice {
    pub id: String,
    pub product: String,
    pub currency: String,
    pub lookup_key: Option<String>,
    /// `unit_amount_decimal`: minor units (cents) per meter unit, as Stripe's decimal string.
    pub unit_amount_decimal: Option<String>,
    /// `recurring.meter`: the meter a metered price bills.
    pub meter: Option<String>,
    pub active: bool,
}

impl StripePrice {
    fn from_json(object: &Value) -> Result<Self, StripeError> {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Ok(StripePrice {
            id: field(object, "id")?.to_owned(),
            product: match &object["product"] {
                // `product` may come expanded.
                Value::Object(p) => p.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
                other => other.as_str().unwrap_or_default().to_owned(),
            },
            currency: object["currency"].as_str().unwrap_or_default().to_owned(),
            lookup_key: text(&object["lookup_key"]),
            unit_amount_decimal: text(&object["unit_amount_decimal"]),
            meter: text(&object["recurring"]["meter"]),
            active: object["active"].as_bool().unwrap_or(true),
        })
    }
}

/// A metered monthly price to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPrice<'a> {
    pub product: &'a str,
    pub meter: &'a str,
    /// Lower-case ISO currency.
    pub currency: &'a str,
    /// Minor units per meter unit, as a decimal string (`"0.05"`).
    pub unit_amount_decimal: &'a str,
    pub lookup_key: &'a str,
    pub nickname: &'a str,
}

impl StripeClient {
    /// Every active meter (`GET /v1/billing/meters?status=active`).
    pub async fn list_meters(&self) -> Result<Vec<Meter>, StripeError> {
        self.list_all("/billing/meters", json!({ "status": "active" }), 1_000)
            .await?
            .iter()
            .map(Meter::from_json)
            .collect()
    }

    /// Creates a `sum` meter whose events name the customer in `payload[stripe_customer_id]` and
    /// carry their value in `payload[value]` (`POST /v1/billing/meters`).
    #[tracing::instrument(skip_all, fields(stripe.meter.event_name = event_name))]
    pub async fn create_meter(
        &self,
        idempotency_key: &IdempotencyKey,
        display_name: &str,
        event_name: &str,
    ) -> Result<Meter, StripeError> {
        let params = json!({
            "display_name": display_name,
            "event_name": event_name,
            "default_aggregation": { "formula": "sum" },
            "customer_mapping": { "event_payload_key": "stripe_customer_id", "type": "by_id" },
            "value_settings": { "event_payload_key": "value" },
        });
        let object = self
            .call(
                StripeMethod::Post,
                "/billing/meters",
                &params,
                Some(idempotency_key),
            )
            .await?;
        Meter::from_json(&object)
    }

    /// The meter's aggregated values per UTC day in `[start, end)` for one customer
    /// (`GET /v1/billing/meters/{id}/event_summaries`, `value_grouping_window=day`), as
    /// `(day start, value)` in Unix seconds. Stripe aggregates asynchronously: the last minutes
    /// may be missing.
    pub async fn meter_daily_values(
        &self,
        meter: &str,
        customer: &str,
        start_unix: i64,
        end_unix: i64,
    ) -> Result<Vec<(i64, f64)>, StripeError> {
        let path = format!("/billing/meters/{meter}/event_summaries");
        let params = json!({
            "customer": customer,
            "start_time": start_unix,
            "end_time": end_unix,
            "value_grouping_window": "day",
        });
        self.list_all(&path, params, 10_000)
            .await?
            .iter()
            .map(|summary| {
                let start = summary["start_time"]
                    .as_i64()
                    .ok_or_else(|| StripeError::Malformed("meter event summary without start_time".into()))?;
                let value = summary["aggregated_value"].as_f64().ok_or_else(|| {
                    StripeError::Malformed("meter event summary without aggregated_value".into())
                })?;
                Ok((start, value))
            })
            .collect()
    }

    /// A product by id, or `None` when Stripe has none (`GET /v1/products/{id}`).
    pub async fn get_product(&self, id: &str) -> Result<Option<Product>, StripeError> {
        match self
            .call(StripeMethod::Get, &format!("/products/{id}"), &json!({}), None)
            .await
        {
            Ok(object) => Product::from_json(&object).map(Some),
            Err(StripeError::Rejected { status: 404, .. }) => Ok(None),
            Err(StripeError::Rejected { code: Some(code), .. }) if code == "resource_missing" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a product with our own id, so that finding it again needs no search
    /// (`POST /v1/products`).
    pub async fn create_product(
        &self,
        idempotency_key: &IdempotencyKey,
        id: &str,
        name: &str,
    ) -> Result<Product, StripeError> {
        let params = json!({ "id": id, "name": name, "metadata": { "bounty": "compute_units" } });
        let object = self
            .call(StripeMethod::Post, "/products", &params, Some(idempotency_key))
            .await?;
        Product::from_json(&object)
    }

    /// The active price with this lookup key, if any (`GET /v1/prices?lookup_keys[]=…`).
    pub async fn price_by_lookup_key(&self, lookup_key: &str) -> Result<Option<StripePrice>, StripeError> {
        let prices = self
            .list_all(
                "/prices",
                json!({ "lookup_keys": [lookup_key], "active": true }),
                10,
            )
            .await?;
        prices
            .iter()
            .map(StripePrice::from_json)
            .find(|p| {
                p.as_ref()
                    .map_or(true, |p| p.lookup_key.as_deref() == Some(lookup_key))
            })
            .transpose()
    }

    /// Creates a monthly price on the meter, per unit of the meter's value (`POST /v1/prices`).
    pub async fn create_metered_price(
        &self,
        idempotency_key: &IdempotencyKey,
        price: &NewPrice<'_>,
    ) -> Result<StripePrice, StripeError> {
        let params = json!({
            "product": price.product,
            "currency": price.currency,
            "unit_amount_decimal": price.unit_amount_decimal,
            "billing_scheme": "per_unit",
            "lookup_key": price.lookup_key,
            "nickname": price.nickname,
            "recurring": { "interval": "month", "usage_type": "metered", "meter": price.meter },
        });
        let object = self
            .call(StripeMethod::Post, "/prices", &params, Some(idempotency_key))
            .await?;
        StripePrice::from_json(&object)
    }
}
