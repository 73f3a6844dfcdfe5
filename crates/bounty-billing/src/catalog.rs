//! Bounty's Stripe catalogue: one billing meter, one product, and one metered price per plan price
//! in use. `bounty stripe setup` creates or validates them ([`setup`]); a subscription finds or
//! creates its plan's price ([`ensure_price`]).
//!
//! Every create is idempotent twice over: it is looked up first (the meter by event name, the
//! product by our fixed id, a price by its lookup key), and the create carries an
//! `Idempotency-Key` derived from what it creates. What was found or made is kept in the store's
//! catalogue, so every process uses the same objects.
//!
//! The meter sums `payload[value]`, milli-CU, per `payload[stripe_customer_id]`. A price is in
//! minor units (cents) per milli-CU: a plan at 0.50 USD per CU is `unit_amount_decimal` 0.05.

use bounty_core::Money;
use bounty_store::{METER_EVENT_NAME, Store, StoreError};

use crate::stripe::{IdempotencyKey, NewPrice, StripeClient, StripeError};

/// Our product's id in Stripe: fixed, so it is found again without a search.
pub const PRODUCT_ID: &str = "bounty_compute_units";
/// Catalogue keys.
pub const METER_KEY: &str = "meter";
pub const PRODUCT_KEY: &str = "product";

/// Why the catalogue could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Stripe(#[from] StripeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An object exists in Stripe but does not fit: changing it could rebill customers, so a
    /// person decides.
    #[error("{0}")]
    Mismatch(String),
    /// `bounty stripe setup` has not been run against this database.
    #[error("no Stripe {0} yet: run `bounty stripe setup`")]
    NotSetUp(&'static str),
}

/// What [`setup`] did to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Created(String),
    Found(String),
}

impl Step {
    /// The object's Stripe id.
    pub fn id(&self) -> &str {
        match self {
            Step::Created(id) | Step::Found(id) => id,
        }
    }

    fn verb(&self) -> &'static str {
        match self {
            Step::Created(_) => "created",
            Step::Found(_) => "found",
        }
    }
}

/// What [`setup`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupReport {
    pub meter: Step,
    pub product: Step,
    pub price: Step,
    /// The price's lookup key.
    pub lookup_key: String,
    /// Accounts that had no subscription, now queued for one.
    pub subscriptions_queued: u64,
}

impl std::fmt::Display for SetupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "meter   {} {} (event {METER_EVENT_NAME}, sum)",
            self.meter.verb(),
            self.meter.id()
        )?;
        writeln!(f, "product {} {}", self.product.verb(), self.product.id())?;
        writeln!(
            f,
            "price   {} {} (lookup key {})",
            self.price.verb(),
            self.price.id(),
            self.lookup_key
        )?;
        write!(
            f,
            "subscriptions queued for {} account(s)",
            self.subscriptions_queued
        )
    }
}

/// The lookup key of the metered price for a plan price: `bounty_cu_usd_500000` is 500,000 micros
/// (0.50 USD) per CU.
pub fn lookup_key(price_per_cu: &Money) -> String {
    format!(
        "bounty_cu_{}_{}",
        price_per_cu.currency.as_str().to_ascii_lowercase(),
        price_per_cu.micros
    )
}

/// Minor units per milli-CU as an exact decimal string: 500,000 micros (0.50 USD) per CU is
/// `"0.05"` cents per milli-CU. Stripe takes up to 12 decimal places; the result has at most 9.
pub fn unit_amount_decimal(price_per_cu: &Money) -> String {
    // micros per CU / 10^(6 - e) = minor units per CU; / 1000 = per milli-CU.
    let scale = 6 - price_per_cu.currency.minor_exponent() + 3;
    let divisor = 10_u64.pow(scale);
    let micros = price_per_cu.micros.unsigned_abs();
    let (whole, frac) = (micros / divisor, micros % divisor);
    let sign = if price_per_cu.micros < 0 { "-" } else { "" };
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let digits = format!("{frac:0width$}", width = scale as usize);
    format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
}

fn key(raw: String) -> Result<IdempotencyKey, CatalogError> {
    IdempotencyKey::new(raw).map_err(|e| CatalogError::Mismatch(e.to_string()))
}

/// Creates or validates the meter, the product and the default plan's price, stores their ids, and
/// queues a subscription for every account without one. Safe to run any number of times.
pub async fn setup(
    client: &StripeClient,
    store: &Store,
    default_price: &Money,
) -> Result<SetupReport, CatalogError> {
    let meter = match client
        .list_meters()
        .await?
        .into_iter()
        .find(|m| m.event_name == METER_EVENT_NAME)
    {
        Some(meter) => {
            let wrong = [
                ("default_aggregation.formula", meter.formula.as_str(), "sum"),
                (
                    "customer_mapping.event_payload_key",
                    meter.customer_key.as_str(),
                    "stripe_customer_id",
                ),
                (
                    "value_settings.event_payload_key",
                    meter.value_key.as_str(),
                    "value",
                ),
            ]
            .into_iter()
            .filter(|(_, got, want)| got != want)
            .map(|(name, got, want)| format!("{name} is {got:?}, not {want:?}"))
            .collect::<Vec<_>>();
            if !wrong.is_empty() {
                return Err(CatalogError::Mismatch(format!(
                    "the Stripe meter {} for event {METER_EVENT_NAME} does not fit Bounty: {}; \
                     deactivate it in Stripe and run setup again",
                    meter.id,
                    wrong.join(", ")
                )));
            }
            Step::Found(meter.id)
        }
        None => {
            let made = client
                .create_meter(
                    &key(format!("meter:{METER_EVENT_NAME}"))?,
                    "Bounty compute units",
                    METER_EVENT_NAME,
                )
                .await?;
            Step::Created(made.id)
        }
    };
    store.catalog_put(METER_KEY, meter.id()).await?;

    let product = match client.get_product(PRODUCT_ID).await? {
        Some(p) if !p.active => {
            return Err(CatalogError::Mismatch(format!(
                "the Stripe product {PRODUCT_ID} is archived; reactivate it in Stripe and run setup again"
            )));
        }
        Some(p) => Step::Found(p.id),
        None => {
            let made = client
                .create_product(
                    &key(format!("product:{PRODUCT_ID}"))?,
                    PRODUCT_ID,
                    "Compute units",
                )
                .await?;
            Step::Created(made.id)
        }
    };
    store.catalog_put(PRODUCT_KEY, product.id()).await?;

    let (price, lookup_key) = price_step(client, store, meter.id(), product.id(), default_price).await?;
    let subscriptions_queued = store.enqueue_missing_subscriptions().await?;
    Ok(SetupReport {
        meter,
        product,
        price,
        lookup_key,
        subscriptions_queued,
    })
}

/// The metered price for a plan price: from the catalogue, else found in Stripe by lookup key,
/// else created. Needs the meter and product from [`setup`].
pub async fn ensure_price(
    client: &StripeClient,
    store: &Store,
    price_per_cu: &Money,
) -> Result<String, CatalogError> {
    let lookup = lookup_key(price_per_cu);
    if let Some(id) = store.catalog_get(&format!("price:{lookup}")).await? {
        return Ok(id);
    }
    let meter = store
        .catalog_get(METER_KEY)
        .await?
        .ok_or(CatalogError::NotSetUp("meter"))?;
    let product = store
        .catalog_get(PRODUCT_KEY)
        .await?
        .ok_or(CatalogError::NotSetUp("product"))?;
    let (step, _) = price_step(client, store, &meter, &product, price_per_cu).await?;
    Ok(step.id().to_owned())
}

async fn price_step(
    client: &StripeClient,
    store: &Store,
    meter: &str,
    product: &str,
    price_per_cu: &Money,
) -> Result<(Step, String), CatalogError> {
    let lookup = lookup_key(price_per_cu);
    let currency = price_per_cu.currency.as_str().to_ascii_lowercase();
    let amount = unit_amount_decimal(price_per_cu);
    let step = match client.price_by_lookup_key(&lookup).await? {
        Some(price) => {
            if price.meter.as_deref() != Some(meter) || price.currency != currency {
                return Err(CatalogError::Mismatch(format!(
                    "the Stripe price {} (lookup key {lookup}) bills meter {:?} in {:?}, not meter {meter} in \
                     {currency:?}; archive it in Stripe and run setup again",
                    price.id, price.meter, price.currency
                )));
            }
            Step::Found(price.id)
        }
        None => {
            let nickname = format!(
                "{} {} per CU",
                crate::catalog::major_units(price_per_cu),
                price_per_cu.currency
            );
            let made = client
                .create_metered_price(
                    &key(format!("price:{lookup}"))?,
                    &NewPrice {
                        product,
                        meter,
                        currency: &currency,
                        unit_amount_decimal: &amount,
                        lookup_key: &lookup,
                        nickname: &nickname,
                    },
                )
                .await?;
            Step::Created(made.id)
        }
    };
    store.catalog_put(&format!("price:{lookup}"), step.id()).await?;
    Ok((step, lookup))
}

/// `0.5` for 500,000 micros: the major units, exactly.
fn major_units(money: &Money) -> String {
    let micros = money.micros.unsigned_abs();
    let sign = if money.micros < 0 { "-" } else { "" };
    let (whole, frac) = (micros / 1_000_000, micros % 1_000_000);
    if frac == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{}", format!("{frac:06}").trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use bounty_core::Currency;

    use super::*;

    fn money(micros: i64, currency: &str) -> Money {
        Money {
            micros,
            currency: currency.parse::<Currency>().unwrap(),
        }
    }

    #[test]
    fn unit_amounts_are_exact_cents_per_milli_cu() {
        assert_eq!(unit_amount_decimal(&money(500_000, "usd")), "0.05");
        assert_eq!(unit_amount_decimal(&money(1_000_000, "usd")), "0.1");
        assert_eq!(unit_amount_decimal(&money(10_000_000, "usd")), "1");
        assert_eq!(unit_amount_decimal(&money(1, "usd")), "0.0000001");
        assert_eq!(unit_amount_decimal(&money(123_456_789, "eur")), "12.3456789");
        // JPY has no minor unit: 1,500 JPY per CU is 1.5 yen per milli-CU.
        assert_eq!(unit_amount_decimal(&money(1_500_000_000, "jpy")), "1.5");
        assert_eq!(unit_amount_decimal(&money(1, "jpy")), "0.000000001");
    }

    #[test]
    fn lookup_keys_name_currency_and_micros() {
        assert_eq!(lookup_key(&money(500_000, "USD")), "bounty_cu_usd_500000");
        assert_eq!(major_units(&money(500_000, "USD")), "0.5");
        assert_eq!(major_units(&money(2_000_000, "USD")), "2");
    }
}
