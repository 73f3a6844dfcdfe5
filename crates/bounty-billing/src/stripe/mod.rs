//! The Stripe client: the few Stripe calls billing makes, on async-stripe 1.0's split crates.
//!
//! Every write carries an `Idempotency-Key` that the caller derives from our own ids, so a retry
//! after "Stripe accepted but we never heard" replays Stripe's saved response instead of writing
//! twice. async-stripe sends no key unless the request strategy asks for one, so each call here sets
//! [`RequestStrategy::Idempotent`] explicitly. That strategy also means exactly one attempt: retries
//! belong to the caller (our outbox), which knows whether an error [`StripeError::is_transient`].
//!
//! The base URL is configurable so tests can point the client at the fake Stripe. async-stripe joins
//! `{base}v1{path}`, so a path prefix would silently produce wrong URLs; the config refuses one.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use ::stripe::{IdempotencyKey as StripeIdempotencyKey, RequestStrategy, StripeRequest};
use secrecy::{ExposeSecret, SecretString};
use stripe_billing::BillingMeterEventAdjustmentType;
use stripe_billing::billing_meter_event::CreateBillingMeterEvent;
use stripe_billing::billing_meter_event_adjustment::{
    CreateBillingMeterEventAdjustment, CreateBillingMeterEventAdjustmentCancel,
};
use stripe_client_core::{RequestBuilder, StripeMethod};
use stripe_core::customer::CreateCustomer;

mod catalog;
mod customers;

pub use catalog::{Meter, NewPrice, Product, StripePrice};
pub use customers::{BalanceCredit, Subscription};

/// Stripe's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";

/// How the client reaches Stripe.
#[derive(Clone)]
pub struct StripeConfig {
    /// The secret API key (`sk_live_…` / `sk_test_…`). Never logged.
    pub secret_key: SecretString,
    /// Scheme and authority only, e.g. `https://api.stripe.com` (the default) or a local fake's
    /// `http://127.0.0.1:PORT`. A path prefix is refused.
    pub base_url: String,
    /// Per-request timeout, covering the response body.
    pub timeout: Duration,
}

impl StripeConfig {
    /// A config for Stripe's production API with a 30 s timeout.
    pub fn new(secret_key: SecretString) -> Self {
        Self {
            secret_key,
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("secret_key", &"[redacted]")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A [`StripeConfig`] that cannot be used. Reported once, at startup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeConfigError {
    /// The base URL is not `http(s)://host[:port]` with at most a trailing `/`.
    #[error("invalid Stripe base URL {url:?}: {reason}")]
    BaseUrl { url: String, reason: &'static str },
    /// The secret key cannot be sent as a header (non-visible-ASCII characters) or is empty.
    #[error("invalid Stripe secret key: {0}")]
    SecretKey(String),
}

/// An `Idempotency-Key`: 1 to 255 characters, derived by the caller from our own ids so that a retry
/// of the same logical write reuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(StripeIdempotencyKey);

/// An idempotency key that Stripe would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("idempotency key must be 1 to 255 characters, got {0}")]
pub struct InvalidIdempotencyKey(usize);

impl IdempotencyKey {
    /// Validates `key` (1 to 255 characters).
    pub fn new(key: impl AsRef<str>) -> Result<Self, InvalidIdempotencyKey> {
        let key = key.as_ref();
        StripeIdempotencyKey::new(key)
            .map(Self)
            .map_err(|_| InvalidIdempotencyKey(key.len()))
    }

    /// The key as sent on the wire.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// One usage record for a Stripe billing meter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterEvent<'a> {
    /// The meter's `event_name`.
    pub event_name: &'a str,
    /// Stripe dedupes on this for about 24 h; our ledger is the real guarantee.
    pub identifier: &'a str,
    /// `payload[stripe_customer_id]`.
    pub stripe_customer_id: &'a str,
    /// `payload[value]`, in the meter's unit.
    pub value: i64,
    /// When the usage happened, Unix seconds.
    pub timestamp_unix: i64,
}

/// Why a Stripe call failed, classified for the caller's retry decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripeError {
    /// 429: back off and retry with the same idempotency key.
    #[error("Stripe rate limited the request")]
    RateLimited,
    /// 5xx: Stripe may or may not have applied the write; retry with the same idempotency key.
    #[error("Stripe server error (HTTP {status})")]
    Server { status: u16 },
    /// No complete response within the configured timeout; the write may have been applied.
    #[error("Stripe request timed out")]
    Timeout,
    /// A permanent 4xx: retrying the same request cannot succeed (409 excepted, see
    /// [`StripeError::is_transient`]).
    #[error("Stripe rejected the request (HTTP {status}, {error_type}, code {code:?}): {message}")]
    Rejected {
        status: u16,
        /// Stripe's `error.type`, e.g. `invalid_request_error` or `idempotency_error`.
        error_type: String,
        /// Stripe's `error.code`, e.g. `resource_missing`, when it sends one.
        code: Option<String>,
        message: String,
    },
    /// The connection failed before a response arrived; the write may have been applied.
    #[error("transport error talking to Stripe: {0}")]
    Transport(String),
    /// Stripe answered with something that is not the JSON we expect.
    #[error("malformed Stripe response: {0}")]
    Malformed(String),
}

impl StripeError {
    /// Whether retrying the same request (same idempotency key) may succeed.
    ///
    /// 409 is Stripe's "conflicts with a concurrent request using the same idempotency key": it is
    /// transient. A malformed response is not retried blindly: it needs a human.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::RateLimited | Self::Server { .. } | Self::Timeout | Self::Transport(_) => true,
            Self::Rejected { status, .. } => *status == 409,
            Self::Malformed(_) => false,
        }
    }

    fn from_stripe(err: ::stripe::StripeError) -> Self {
        match err {
            ::stripe::StripeError::Stripe(api, status) => match status {
                429 => Self::RateLimited,
                500.. => Self::Server { status },
                _ => Self::Rejected {
                    status,
                    error_type: api.type_.as_str().to_owned(),
                    code: api.code.as_ref().map(|code| code.as_str().to_owned()),
                    message: api.message.clone().unwrap_or_default(),
                },
            },
            ::stripe::StripeError::Timeout => Self::Timeout,
            // async-stripe also reports a non-JSON error body (status unknown) this way.
            ::stripe::StripeError::JSONDeserialize(msg) => Self::Malformed(msg),
            ::stripe::StripeError::ClientError(msg) | ::stripe::StripeError::ConfigError(msg) => {
                Self::Transport(msg)
            }
        }
    }
}

/// The Stripe client. Cheap to clone.
#[derive(Clone)]
pub struct StripeClient {
    inner: ::stripe::Client,
    base_url: String,
}

impl fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl StripeClient {
    /// Builds a client, validating the base URL and the secret key.
    pub fn new(config: StripeConfig) -> Result<Self, StripeConfigError> {
        let base_url = normalize_base_url(&config.base_url)?;
        let secret = config.secret_key.expose_secret();
        if secret.is_empty() {
            return Err(StripeConfigError::SecretKey("empty".to_owned()));
        }
        let inner = ::stripe::ClientBuilder::new(secret)
            .url(base_url.clone())
            .timeout(config.timeout)
            .request_strategy(RequestStrategy::Once)
            .build()
            // The error names the offending setting, never the secret's value.
            .map_err(|err| StripeConfigError::SecretKey(err.to_string()))?;
        Ok(Self { inner, base_url })
    }

    /// The normalised base URL (`scheme://authority/`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Records usage on a billing meter (`POST /v1/billing/meter_events`).
    #[tracing::instrument(skip_all, fields(stripe.meter_event.identifier = event.identifier))]
    pub async fn create_meter_event(
        &self,
        idempotency_key: &IdempotencyKey,
        event: &MeterEvent<'_>,
    ) -> Result<(), StripeError> {
        let payload = HashMap::from([
            (
                "stripe_customer_id".to_owned(),
                event.stripe_customer_id.to_owned(),
            ),
            ("value".to_owned(), event.value.to_string()),
        ]);
        CreateBillingMeterEvent::new(event.event_name, payload)
            .identifier(event.identifier)
            .timestamp(event.timestamp_unix)
            .customize()
            .request_strategy(RequestStrategy::Idempotent(idempotency_key.0.clone()))
            .send(&self.inner)
            .await
            .map_err(StripeError::from_stripe)?;
        Ok(())
    }

    /// Cancels a meter event by its identifier (`POST /v1/billing/meter_event_adjustments`,
    /// `type=cancel`).
    #[tracing::instrument(skip_all, fields(stripe.meter_event.identifier = identifier))]
    pub async fn cancel_meter_event(
        &self,
        idempotency_key: &IdempotencyKey,
        event_name: &str,
        identifier: &str,
    ) -> Result<(), StripeError> {
        let cancel = CreateBillingMeterEventAdjustmentCancel {
            identifier: Some(identifier.to_owned()),
        };
        CreateBillingMeterEventAdjustment::new(event_name, BillingMeterEventAdjustmentType::Cancel)
            .cancel(cancel)
            .customize()
            .request_strategy(RequestStrategy::Idempotent(idempotency_key.0.clone()))
            .send(&self.inner)
            .await
            .map_err(StripeError::from_stripe)?;
        Ok(())
    }

    /// Creates a customer carrying our account id in `metadata[account_id]` and returns its Stripe
    /// id (`cus_…`).
    #[tracing::instrument(skip_all, fields(account.id = account_id))]
    pub async fn create_customer(
        &self,
        idempotency_key: &IdempotencyKey,
        name: &str,
        account_id: &str,
    ) -> Result<String, StripeError> {
        let metadata = HashMap::from([("account_id".to_owned(), account_id.to_owned())]);
        let customer = CreateCustomer::new()
            .name(name)
            .metadata(metadata)
            .customize()
            .request_strategy(RequestStrategy::Idempotent(idempotency_key.0.clone()))
            .send(&self.inner)
            .await
            .map_err(StripeError::from_stripe)?;
        Ok(customer.id.as_str().to_owned())
    }
}

impl StripeClient {
    /// Sends a request whose parameters we encode ourselves (Stripe's form syntax through
    /// async-stripe's own encoder) and returns Stripe's JSON object as it came. Auth, timeouts,
    /// error decoding and the `Idempotency-Key` are async-stripe's, as for the typed calls above.
    ///
    /// Used for the objects billing only reads a few fields of (meters, products, prices,
    /// subscriptions, invoices): a loose reading survives fields Stripe adds or drops between API
    /// versions, where a strict typed model of a whole invoice would not.
    pub(crate) async fn call(
        &self,
        method: StripeMethod,
        path: &str,
        params: &serde_json::Value,
        idempotency_key: Option<&IdempotencyKey>,
    ) -> Result<serde_json::Value, StripeError> {
        // async-stripe's encoder (serde_qs) accepts only a map at the top and panics on anything
        // else; refuse it here instead.
        if !params.is_object() {
            return Err(StripeError::Malformed(format!(
                "{path}: parameters must be an object"
            )));
        }
        let builder = RequestBuilder::new(method, path);
        let builder = match method {
            StripeMethod::Post => builder.form(params),
            StripeMethod::Get | StripeMethod::Delete => builder.query(params),
        };
        let strategy = match idempotency_key {
            Some(key) => RequestStrategy::Idempotent(key.0.clone()),
            None => RequestStrategy::Once,
        };
        let value: miniserde::json::Value = builder
            .customize()
            .request_strategy(strategy)
            .send(&self.inner)
            .await
            .map_err(StripeError::from_stripe)?;
        serde_json::from_str(&miniserde::json::to_string(&value))
            .map_err(|e| StripeError::Malformed(e.to_string()))
    }

    /// Every object of a Stripe list endpoint, following `has_more` with `starting_after`, up to
    /// `max` objects. `params` is an object of query parameters.
    pub(crate) async fn list_all(
        &self,
        path: &str,
        params: serde_json::Value,
        max: usize,
    ) -> Result<Vec<serde_json::Value>, StripeError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut query = params.clone();
            query["limit"] = serde_json::json!(100);
            if let Some(after) = &after {
                query["starting_after"] = serde_json::json!(after);
            }
            let page = self.call(StripeMethod::Get, path, &query, None).await?;
            let data = page["data"]
                .as_array()
                .ok_or_else(|| StripeError::Malformed(format!("{path}: a list without `data`")))?;
            after = data.last().and_then(|o| o["id"].as_str()).map(str::to_owned);
            all.extend(data.iter().cloned());
            if page["has_more"] != serde_json::Value::Bool(true) || after.is_none() || all.len() >= max {
                all.truncate(max);
                return Ok(all);
            }
        }
    }
}

/// A string field of a Stripe object, or a [`StripeError::Malformed`] naming it.
pub(crate) fn field<'a>(object: &'a serde_json::Value, name: &str) -> Result<&'a str, StripeError> {
    object[name].as_str().ok_or_else(|| {
        StripeError::Malformed(format!(
            "{} without a string `{name}`",
            object["object"].as_str().unwrap_or("object")
        ))
    })
}

/// Accepts `http(s)://authority` with at most a trailing `/`, and returns it with exactly one
/// trailing `/`, the form async-stripe joins `v1/…` onto.
fn normalize_base_url(url: &str) -> Result<String, StripeConfigError> {
    let refuse = |reason| StripeConfigError::BaseUrl {
        url: url.to_owned(),
        reason,
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| refuse("missing scheme"))?;
    if scheme != "https" && scheme != "http" {
        return Err(refuse("scheme must be http or https"));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Err(refuse("missing host"));
    }
    if authority.contains(['/', '?', '#']) {
        return Err(refuse("must not carry a path, query or fragment"));
    }
    if authority.contains('@') {
        return Err(refuse("must not carry credentials"));
    }
    Ok(format!("{scheme}://{authority}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_accepts_scheme_and_authority_only() {
        assert_eq!(
            normalize_base_url("https://api.stripe.com").unwrap(),
            "https://api.stripe.com/"
        );
        assert_eq!(
            normalize_base_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080/"
        );
        for bad in [
            "api.stripe.com",
            "ftp://api.stripe.com",
            "https://",
            "https://proxy.example.com/stripe",
            "https://api.stripe.com/v1",
            "https://api.stripe.com?x=1",
            "https://user:pass@api.stripe.com",
        ] {
            assert!(normalize_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let config = StripeConfig::new(SecretString::from("sk_test_very_secret"));
        assert!(!format!("{config:?}").contains("very_secret"));
        let client = StripeClient::new(config).unwrap();
        assert!(!format!("{client:?}").contains("very_secret"));
    }

    #[test]
    fn idempotency_key_length_is_checked() {
        assert!(IdempotencyKey::new("").is_err());
        assert!(IdempotencyKey::new("k".repeat(256)).is_err());
        assert_eq!(
            IdempotencyKey::new("meter:task_1").unwrap().as_str(),
            "meter:task_1"
        );
    }

    #[test]
    fn transient_classification() {
        assert!(StripeError::RateLimited.is_transient());
        assert!(StripeError::Server { status: 502 }.is_transient());
        assert!(StripeError::Timeout.is_transient());
        assert!(StripeError::Transport("reset".into()).is_transient());
        assert!(!StripeError::Malformed("x".into()).is_transient());
        let rejected = |status| StripeError::Rejected {
            status,
            error_type: "invalid_request_error".into(),
            code: None,
            message: String::new(),
        };
        assert!(!rejected(400).is_transient());
        assert!(rejected(409).is_transient());
    }
}
