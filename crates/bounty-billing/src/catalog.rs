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

use bounty_core::outbox::GATEWAY_METER_EVENT_NAME;
use bounty_core::{Currency, Money};
use bounty_store::{METER_EVENT_NAME, Store, StoreError};

use crate::stripe::{IdempotencyKey, Meter, NewPrice, StripeClient, StripeError};

/// Our product's id in Stripe: fixed, so it is found again without a search.
pub const PRODUCT_ID: &str = "bounty_compute_units";
/// The gateway's cost-plus product's id in Stripe.
pub const GATEWAY_PRODUCT_ID: &str = "bounty_gateway_usage";
/// Catalogue keys.
pub const METER_KEY: &str = "meter";
pub const PRODUCT_KEY: &str = "product";
pub const GATEWAY_METER_KEY: &str = "gateway_meter";
pub const GATEWAY_PRODUCT_KEY: &str = "gateway_product";

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
    /// The gateway's cost-plus meter, product and price (in the default plan's currency).
    pub gateway_meter: Step,
    pub gateway_product: Step,
    pub gateway_price: Step,
    pub gateway_lookup_key: String,
    /// Accounts that had no subscription, now queued for one.
    pub subscriptions_queued: u64,
    /// Accounts whose subscription lacked the gateway price, now queued for it.
    pub items_queued: u64,
}

impl std::fmt::Display for SetupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let meters = [
            (
                METER_EVENT_NAME,
                &self.meter,
                &self.product,
                &self.price,
                &self.lookup_key,
            ),
            (
                GATEWAY_METER_EVENT_NAME,
                &self.gateway_meter,
                &self.gateway_product,
                &self.gateway_price,
                &self.gateway_lookup_key,
            ),
        ];
        for (event, meter, product, price, lookup) in meters {
            writeln!(f, "meter   {} {} (event {event}, sum)", meter.verb(), meter.id())?;
            writeln!(f, "product {} {}", product.verb(), product.id())?;
            writeln!(f, "price   {} {} (lookup key {lookup})", price.verb(), price.id())?;
        }
        writeln!(
            f,
            "subscriptions queued for {} account(s)",
            self.subscriptions_queued
        )?;
        write!(
            f,
            "gateway price queued for {} subscription(s)",
            self.items_queued
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

/// One of Bounty's meters and the product its prices bill.
struct MeterSpec {
    event_name: &'static str,
    display_name: &'static str,
    meter_key: &'static str,
    product_id: &'static str,
    product_name: &'static str,
    product_key: &'static str,
}

/// Outcomes' compute units.
const CU_METER: MeterSpec = MeterSpec {
    event_name: METER_EVENT_NAME,
    display_name: "Bounty compute units",
    meter_key: METER_KEY,
    product_id: PRODUCT_ID,
    product_name: "Compute units",
    product_key: PRODUCT_KEY,
};

/// Gateway calls billed at cost plus markup, in micros.
const GATEWAY_METER: MeterSpec = MeterSpec {
    event_name: GATEWAY_METER_EVENT_NAME,
    display_name: "Bounty gateway usage (cost plus markup)",
    meter_key: GATEWAY_METER_KEY,
    product_id: GATEWAY_PRODUCT_ID,
    product_name: "Gateway usage",
    product_key: GATEWAY_PRODUCT_KEY,
};

/// Creates or validates both meters, both products, the default plan's price and the gateway's
/// price in its currency, stores their ids, and queues a subscription for every account without
/// one and the gateway price for every account whose subscription lacks it. Safe to run any number
/// of times.
pub async fn setup(
    client: &StripeClient,
    store: &Store,
    default_price: &Money,
) -> Result<SetupReport, CatalogError> {
    let meters = client.list_meters().await?;
    let meter = meter_step(client, store, &meters, &CU_METER).await?;
    let product = product_step(client, store, &CU_METER).await?;
    let (price, lookup_key) = price_step(client, store, meter.id(), product.id(), default_price).await?;
    let gateway_meter = meter_step(client, store, &meters, &GATEWAY_METER).await?;
    let gateway_product = product_step(client, store, &GATEWAY_METER).await?;
    let currency = default_price.currency;
    let (gateway_price, gateway_lookup_key) =
        gateway_price_step(client, store, gateway_meter.id(), gateway_product.id(), currency).await?;
    let subscriptions_queued = store.enqueue_missing_subscriptions().await?;
    let items_queued = store.enqueue_missing_subscription_items().await?;
    Ok(SetupReport {
        meter,
        product,
        price,
        lookup_key,
        gateway_meter,
        gateway_product,
        gateway_price,
        gateway_lookup_key,
        subscriptions_queued,
        items_queued,
    })
}

/// The meter of `spec`: found among `meters` by event name (and checked), else created.
async fn meter_step(
    client: &StripeClient,
    store: &Store,
    meters: &[Meter],
    spec: &MeterSpec,
) -> Result<Step, CatalogError> {
    let event_name = spec.event_name;
    let step = match meters.iter().find(|m| m.event_name == event_name) {
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
                    "the Stripe meter {} for event {event_name} does not fit Bounty: {}; \
                     deactivate it in Stripe and run setup again",
                    meter.id,
                    wrong.join(", ")
                )));
            }
            Step::Found(meter.id.clone())
        }
        None => {
            let made = client
                .create_meter(
                    &key(format!("meter:{event_name}"))?,
                    spec.display_name,
                    event_name,
                )
                .await?;
            Step::Created(made.id)
        }
    };
    store.catalog_put(spec.meter_key, step.id()).await?;
    Ok(step)
}

/// The product of `spec`: found by its fixed id (and active), else created.
async fn product_step(client: &StripeClient, store: &Store, spec: &MeterSpec) -> Result<Step, CatalogError> {
    let id = spec.product_id;
    let step = match client.get_product(id).await? {
        Some(p) if !p.active => {
            return Err(CatalogError::Mismatch(format!(
                "the Stripe product {id} is archived; reactivate it in Stripe and run setup again"
            )));
        }
        Some(p) => Step::Found(p.id),
        None => {
            let made = client
                .create_product(&key(format!("product:{id}"))?, id, spec.product_name)
                .await?;
            Step::Created(made.id)
        }
    };
    store.catalog_put(spec.product_key, step.id()).await?;
    Ok(step)
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
    let (meter, product) = set_up(store, &CU_METER).await?;
    let (step, _) = price_step(client, store, &meter, &product, price_per_cu).await?;
    Ok(step.id().to_owned())
}

/// The gateway's cost-plus price in `currency`: from the catalogue, else found in Stripe by lookup
/// key, else created. Needs the gateway meter and product from [`setup`].
pub async fn ensure_gateway_price(
    client: &StripeClient,
    store: &Store,
    currency: Currency,
) -> Result<String, CatalogError> {
    let lookup = gateway_lookup_key(currency);
    if let Some(id) = store.catalog_get(&format!("price:{lookup}")).await? {
        return Ok(id);
    }
    let (meter, product) = set_up(store, &GATEWAY_METER).await?;
    let (step, _) = gateway_price_step(client, store, &meter, &product, currency).await?;
    Ok(step.id().to_owned())
}

/// The meter and product ids [`setup`] stored for `spec`.
async fn set_up(store: &Store, spec: &MeterSpec) -> Result<(String, String), CatalogError> {
    let meter = store
        .catalog_get(spec.meter_key)
        .await?
        .ok_or(CatalogError::NotSetUp("meter"))?;
    let product = store
        .catalog_get(spec.product_key)
        .await?
        .ok_or(CatalogError::NotSetUp("product"))?;
    Ok((meter, product))
}

async fn price_step(
    client: &StripeClient,
    store: &Store,
    meter: &str,
    product: &str,
    price_per_cu: &Money,
) -> Result<(Step, String), CatalogError> {
    let nickname = format!(
        "{} {} per CU",
        crate::catalog::major_units(price_per_cu),
        price_per_cu.currency
    );
    let wanted = NewPrice {
        product,
        meter,
        currency: &price_per_cu.currency.as_str().to_ascii_lowercase(),
        unit_amount_decimal: &unit_amount_decimal(price_per_cu),
        lookup_key: &lookup_key(price_per_cu),
        nickname: &nickname,
    };
    metered_price_step(client, store, &wanted).await
}

async fn gateway_price_step(
    client: &StripeClient,
    store: &Store,
    meter: &str,
    product: &str,
    currency: Currency,
) -> Result<(Step, String), CatalogError> {
    let wanted = NewPrice {
        product,
        meter,
        currency: &currency.as_str().to_ascii_lowercase(),
        unit_amount_decimal: &per_micro_decimal(currency),
        lookup_key: &gateway_lookup_key(currency),
        nickname: &format!("gateway usage at cost plus markup, {currency}"),
    };
    metered_price_step(client, store, &wanted).await
}

/// The price `wanted`: found in Stripe by its lookup key (and checked against its meter and
/// currency), else created; stored in the catalogue under `price:<lookup key>`.
async fn metered_price_step(
    client: &StripeClient,
    store: &Store,
    wanted: &NewPrice<'_>,
) -> Result<(Step, String), CatalogError> {
    let lookup = wanted.lookup_key.to_owned();
    let (meter, currency) = (wanted.meter, wanted.currency);
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
            let made = client
                .create_metered_price(&key(format!("price:{lookup}"))?, wanted)
                .await?;
            Step::Created(made.id)
        }
    };
    store.catalog_put(&format!("price:{lookup}"), step.id()).await?;
    Ok((step, lookup))
}

/// The lookup key of the gateway's cost-plus price in a currency: `bounty_gateway_usd`.
pub fn gateway_lookup_key(currency: Currency) -> String {
    format!("bounty_gateway_{}", currency.as_str().to_ascii_lowercase())
}

/// Minor units per micro of `currency`, exactly: the gateway meter's values are micros, so its
/// price is `"0.0001"` cents per unit in USD and `"0.000001"` yen in JPY.
pub fn per_micro_decimal(currency: Currency) -> String {
    let zeros = 6_u32.saturating_sub(currency.minor_exponent());
    if zeros == 0 {
        return "1".to_owned();
    }
    format!("0.{}1", "0".repeat(zeros as usize - 1))
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
    fn the_gateway_price_is_one_micro_per_unit() {
        let c = |s: &str| s.parse::<Currency>().unwrap();
        assert_eq!(per_micro_decimal(c("usd")), "0.0001");
        assert_eq!(per_micro_decimal(c("jpy")), "0.000001");
        assert_eq!(per_micro_decimal(c("kwd")), "0.001");
        assert_eq!(gateway_lookup_key(c("EUR")), "bounty_gateway_eur");
    }

    #[test]
    fn lookup_keys_name_currency_and_micros() {
        assert_eq!(lookup_key(&money(500_000, "USD")), "bounty_cu_usd_500000");
        assert_eq!(major_units(&money(500_000, "USD")), "0.5");
        assert_eq!(major_units(&money(2_000_000, "USD")), "2");
    }
}
