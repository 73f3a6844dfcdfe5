//! The outbox sender: sends each pending outbox row to Stripe with the
//! row's idempotency key, then marks it sent.
//!
//! Exactly-once on Stripe's side rests on three things: the row is written
//! in the transaction of the charge (so it exists iff the charge does);
//! every send of a row uses the same `Idempotency-Key` and, for meter
//! events, the same `identifier` (our transfer id), so a resend after a
//! crash between "Stripe accepted" and "marked sent" is a replay, not a
//! second event; and rows are leased, so two senders never send one row at
//! once.
//!
//! | kind | sent as |
//! |---|---|
//! | `stripe_customer` | a customer with `metadata[account_id]`; its id is stored on the account |
//! | `meter_event` | a meter event for the account's customer (waits until the customer exists) |
//! | `meter_event_reversal` | inside Stripe's 24 h window: a `cancel` meter event adjustment of the original |
//!
//! A reversal older than Stripe's cancellation window is parked as failed
//! with a reason an operator can act on; crediting the customer balance
//! instead is not built yet.
//!
//! Transient errors (429, 5xx, timeouts, transport) are retried with full
//! jitter exponential backoff; permanent 4xx park the row as `failed`
//! (`bounty outbox list --status failed`, `bounty outbox retry`).

use std::time::Duration;

use bounty_core::retry_delay;
use bounty_store::{OutboxClaim, Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::stripe::{IdempotencyKey, MeterEvent, StripeClient, StripeError};

/// Stripe accepts meter event cancellations for this long.
pub const CANCEL_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// How a sender runs.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Rows claimed at once.
    pub batch: u32,
    /// How long a claim lasts; a dead sender's rows are resent after it.
    pub lease: Duration,
    /// How often an idle sender looks for due rows.
    pub poll_interval: Duration,
    /// Backoff base and cap for transient errors.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How long a meter event waits for its account's customer.
    pub customer_wait: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            batch: 32,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            customer_wait: Duration::from_secs(5),
        }
    }
}

/// What sending one row came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Delivered (or already delivered: a replay); for a customer, its id.
    Done(Option<String>),
    /// Try again at the given delay.
    Later { error: String, after: Duration },
    /// A permanent error: park it.
    Park(String),
}

/// Sends outbox rows to Stripe.
#[derive(Clone)]
pub struct Sender {
    store: Store,
    client: StripeClient,
    config: SenderConfig,
}

impl Sender {
    pub fn new(store: Store, client: StripeClient, config: SenderConfig) -> Self {
        Sender {
            store,
            client,
            config,
        }
    }

    /// Claims and sends due rows until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        tracing::info!(base_url = self.client.base_url(), "outbox sender started");
        loop {
            let sent = match self.drain_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox sender could not reach the database");
                    0
                }
            };
            if sent > 0 {
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
        tracing::info!("outbox sender stopped");
    }

    /// Claims one batch and sends it; returns how many rows were claimed.
    pub async fn drain_once(&self) -> Result<usize, StoreError> {
        let claims = self
            .store
            .claim_outbox(self.config.batch, self.config.lease)
            .await?;
        let n = claims.len();
        for claim in claims {
            let result = self.send(&claim).await;
            self.record(&claim, result).await?;
        }
        Ok(n)
    }

    /// Sends one claimed row; writes nothing.
    pub async fn send(&self, claim: &OutboxClaim) -> Sent {
        let item = &claim.item;
        let key = match IdempotencyKey::new(&item.idempotency_key) {
            Ok(k) => k,
            Err(e) => return Sent::Park(format!("unusable idempotency key: {e}")),
        };
        let text = |field: &str| item.payload[field].as_str().map(str::to_owned);
        let result = match item.kind.as_str() {
            "stripe_customer" => {
                let name = text("name").unwrap_or_default();
                self.client
                    .create_customer(&key, &name, &item.account_id.to_string())
                    .await
                    .map(Some)
            }
            "meter_event" => {
                let Some(customer) = claim.stripe_customer_id.as_deref() else {
                    return Sent::Later {
                        error: "waiting for the account's Stripe customer".to_owned(),
                        after: self.config.customer_wait,
                    };
                };
                let (Some(event_name), Some(identifier), Some(value), Some(ts)) = (
                    text("event_name"),
                    text("identifier"),
                    item.payload["value"].as_i64(),
                    item.payload["timestamp"].as_i64(),
                ) else {
                    return Sent::Park(format!("malformed meter event payload: {}", item.payload));
                };
                let event = MeterEvent {
                    event_name: &event_name,
                    identifier: &identifier,
                    stripe_customer_id: customer,
                    value,
                    timestamp_unix: ts,
                };
                match self.client.create_meter_event(&key, &event).await {
                    // Stripe already has an event with this identifier: ours,
                    // sent before under another key. Delivered.
                    Err(StripeError::Rejected { message, .. }) if message.contains("already exists") => {
                        Ok(None)
                    }
                    other => other.map(|()| None),
                }
            }
            "meter_event_reversal" => {
                let (Some(event_name), Some(identifier), Some(ts)) = (
                    text("event_name"),
                    text("identifier"),
                    item.payload["timestamp"].as_i64(),
                ) else {
                    return Sent::Park(format!("malformed reversal payload: {}", item.payload));
                };
                let age = self.store.now().timestamp().saturating_sub(ts);
                if age >= CANCEL_WINDOW.as_secs() as i64 {
                    return Sent::Park(format!(
                        "the meter event {identifier} is {age} s old, past Stripe's 24 h cancellation window: \
                         credit the customer's balance in Stripe by hand (automatic credits are not built yet)"
                    ));
                }
                self.client
                    .cancel_meter_event(&key, &event_name, &identifier)
                    .await
                    .map(|()| None)
            }
            other => return Sent::Park(format!("unknown outbox kind {other:?}")),
        };
        match result {
            Ok(customer) => Sent::Done(customer),
            Err(e) if e.is_transient() => Sent::Later {
                error: e.to_string(),
                after: retry_delay(
                    u32::try_from(item.attempts.max(1)).unwrap_or(1),
                    self.config.retry_base,
                    self.config.retry_max,
                    jitter(),
                ),
            },
            Err(e) => Sent::Park(e.to_string()),
        }
    }

    /// Writes what sending a row came to.
    pub async fn record(&self, claim: &OutboxClaim, sent: Sent) -> Result<(), StoreError> {
        let item = &claim.item;
        match sent {
            Sent::Done(customer) => {
                tracing::info!(outbox.id = %item.id, kind = %item.kind, "outbox row sent");
                self.store.outbox_sent(item.id, customer.as_deref()).await
            }
            Sent::Later { error, after } => {
                tracing::warn!(outbox.id = %item.id, kind = %item.kind, %error, retry_in_ms = after.as_millis() as u64, "outbox row will be retried");
                let at =
                    self.store.now() + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::zero());
                self.store.outbox_retry_at(item.id, &error, at).await
            }
            Sent::Park(error) => {
                tracing::error!(outbox.id = %item.id, kind = %item.kind, %error, "outbox row parked as failed");
                self.store.outbox_park(item.id, &error).await
            }
        }
    }
}

fn jitter() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}
