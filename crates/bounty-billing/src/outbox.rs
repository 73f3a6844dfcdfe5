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
//! | `stripe_subscription` | a subscription on the metered price of the account's plan (waits for the customer and for `bounty stripe setup`); its id is stored on the account |
//! | `stripe_subscription_item` | the gateway's cost-plus price (in the plan's currency) added to the account's subscription (waits for the subscription and for `bounty stripe setup`) |
//! | `meter_event_reversal` | inside Stripe's 24 h window: a `cancel` meter event adjustment of the original; after it: a credit to the customer's balance of the money charged |
//!
//! Why a balance credit after 24 h, and not a credit note: Stripe only
//! cancels meter events for 24 hours, and the usage then sits on an
//! invoice that may not be finalized yet. A credit note needs a finalized
//! invoice and its line; a balance credit needs neither, and Stripe
//! applies it to the customer's next invoice, whatever state the current
//! one is in. The reversal row records which it was (`sent_as`), so
//! reconciliation knows a credited charge still counts on the meter.
//!
//! Transient errors (429, 5xx, timeouts, transport) are retried with full
//! jitter exponential backoff; permanent 4xx park the row as `failed`
//! (`bounty outbox list --status failed`, `bounty outbox retry`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bounty_core::outbox::{MeterEventPayload, MeterEventReversalPayload, OutboxKind, OutboxStatus};
use bounty_core::{ApiKeyMode, Money, retry_delay};
use bounty_store::{Delivered, OutboxClaim, Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::catalog::{CatalogError, ensure_gateway_price, ensure_price};
use crate::stripe::{BalanceCredit, IdempotencyKey, MeterEvent, StripeClient, StripeError};

/// Stripe accepts meter event cancellations for this long.
pub const CANCEL_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// A reversal written this close to the end of the window is credited
/// instead: the sender needs time to deliver a cancellation.
pub const CANCEL_MARGIN: Duration = Duration::from_secs(3600);

/// Whether the reversal, at `reversed_at` (Unix seconds), of a meter event
/// stamped `charged_at` is a balance credit rather than a cancel: past
/// Stripe's cancellation window, less the margin. Decided from when the
/// reversal happened, never from when it is sent.
pub fn reversal_credits(charged_at: i64, reversed_at: i64) -> bool {
    reversed_at.saturating_sub(charged_at) >= (CANCEL_WINDOW - CANCEL_MARGIN).as_secs() as i64
}

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
    /// How long a meter event or subscription waits for its account's
    /// customer.
    pub customer_wait: Duration,
    /// How long a subscription waits for `bounty stripe setup`.
    pub setup_wait: Duration,
    /// How long Stripe may fail every send (transient errors, with no
    /// success between) before the operator is told, once per streak.
    pub failing_notice_after: Duration,
    /// Rows of a claimed batch sent at once (Stripe allows meter events at
    /// 1,000/s in live mode; a 429 backs the row off).
    pub concurrency: usize,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            batch: 64,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(300),
            customer_wait: Duration::from_secs(5),
            setup_wait: Duration::from_secs(60),
            failing_notice_after: Duration::from_secs(15 * 60),
            concurrency: 64,
        }
    }
}

/// What sending one row came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Delivered (or already delivered: a replay), with what it produced.
    Done(Delivered),
    /// Try again at the given delay. `failure`: the send was tried and
    /// failed (it counts as an attempt); otherwise a deferral (waiting for
    /// the customer, for setup, for another row), which does not.
    Later {
        error: String,
        after: Duration,
        failure: bool,
    },
    /// A permanent error: park it.
    Park(String),
}

/// Failed tries, the last a 5xx, after which a row that is not a meter
/// event is parked: at the backoff's 5-minute cap, about an hour of 5xx
/// answers under one idempotency key.
pub const SAVED_500_TRIES: i32 = 20;

/// Why a row was parked after [`SAVED_500_TRIES`], and what to do.
fn saved_500(status: u16, tries: i32) -> String {
    format!(
        "Stripe answered {status} to all of the last tries ({tries} in all) of this request under one idempotency key. \
         Stripe saves a 500 answer for an idempotency key for 24 hours and replays it, so retrying as is may not \
         succeed. Check in Stripe whether the object was made (its metadata names the Bounty account); if it was \
         not, `bounty outbox retry --new-key <row id>` sends the request again under a fresh key"
    )
}

/// A run of failed sends.
#[derive(Debug, Clone, Copy)]
struct Streak {
    since: bounty_core::Timestamp,
    /// The operator was told of it.
    told: bool,
}

/// Sends outbox rows to Stripe.
#[derive(Clone)]
pub struct Sender {
    store: Store,
    client: StripeClient,
    config: SenderConfig,
    /// Which rows it sends: live ones with the live key, or test-mode ones
    /// (`bk_test_` keys' charges) with `stripe.test_secret_key`.
    mode: ApiKeyMode,
    /// Since when every send has failed, and whether the operator was told.
    failing: Arc<Mutex<Option<Streak>>>,
    /// Prefix of this sender's armed crash points (tests only).
    #[cfg(feature = "failpoints")]
    failpoints: Option<String>,
}

impl Sender {
    pub fn new(store: Store, client: StripeClient, config: SenderConfig) -> Self {
        Sender {
            store,
            client,
            config,
            mode: ApiKeyMode::Live,
            failing: Arc::new(Mutex::new(None)),
            #[cfg(feature = "failpoints")]
            failpoints: None,
        }
    }

    /// Makes this a test-mode sender: it claims only test-mode rows, sends
    /// them to the test-mode customer, and its client must hold Stripe's
    /// test key. A live sender never sees those rows.
    pub fn test_mode(mut self) -> Self {
        self.mode = ApiKeyMode::Test;
        self
    }

    /// Arms this sender's crash points, named `{prefix}::before_send`,
    /// `{prefix}::after_send` (Stripe answered, nothing recorded) and
    /// `{prefix}::after_record`: configure them with `fail::cfg`, e.g.
    /// `1*panic`. A per-sender prefix keeps tests that run at once apart.
    #[cfg(feature = "failpoints")]
    pub fn with_failpoints(mut self, prefix: impl Into<String>) -> Self {
        self.failpoints = Some(prefix.into());
        self
    }

    /// A crash point: panics (or does what `fail::cfg` says) when armed.
    #[allow(unused_variables)]
    fn crash_point(&self, at: &str) {
        #[cfg(feature = "failpoints")]
        if let Some(prefix) = &self.failpoints {
            let name = format!("{prefix}::{at}");
            fail::fail_point!(&name);
        }
    }

    /// Claims and sends due rows until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        tracing::info!(base_url = self.client.base_url(), mode = %self.mode, "Stripe outbox sender");
        bounty_store::outbox::drain_until_cancelled("stripe", self.config.poll_interval, &cancel, || {
            self.drain(&cancel)
        })
        .await;
    }

    /// Claims one batch and sends it; returns how many rows were claimed.
    pub async fn drain_once(&self) -> Result<usize, StoreError> {
        self.drain(&CancellationToken::new()).await
    }

    /// [`Sender::drain_once`], stopping between rows once `cancel` fires:
    /// the rows not sent yet are given back at once (no attempt counted),
    /// not left to their lease.
    async fn drain(&self, cancel: &CancellationToken) -> Result<usize, StoreError> {
        use futures_util::StreamExt as _;
        let claims = self
            .store
            .claim_outbox(self.mode, self.config.batch, self.config.lease)
            .await?;
        let n = claims.len();
        let first_error: Mutex<Option<StoreError>> = Mutex::new(None);
        let released = std::sync::atomic::AtomicUsize::new(0);
        // In this task (no spawn): a crash point's panic ends the drain, as a
        // crash would.
        futures_util::stream::iter(claims)
            .for_each_concurrent(self.config.concurrency.max(1), |claim| {
                let (first_error, released) = (&first_error, &released);
                async move {
                    let result = if cancel.is_cancelled() {
                        released.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        self.store.outbox_release(&[claim.item.id]).await
                    } else {
                        self.crash_point("before_send");
                        let sent = self.send(&claim).await;
                        self.crash_point("after_send");
                        let recorded = self.record(&claim, sent).await;
                        self.crash_point("after_record");
                        recorded
                    };
                    if let Err(e) = result {
                        first_error
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                    }
                }
            })
            .await;
        let released = released.into_inner();
        if released > 0 {
            tracing::info!(rows = released, "outbox sender stopping: claims released");
        }
        match first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Sends one claimed row; writes nothing.
    pub async fn send(&self, claim: &OutboxClaim) -> Sent {
        let item = &claim.item;
        // A meter event's retry goes under a fresh key: Stripe saves a 500
        // for a key for 24 hours and replays it, and the event's own
        // `identifier` already stops a second event (Stripe refuses it, and
        // that refusal counts as delivered).
        // An operator's `bounty outbox retry --new-key` sets a suffix.
        let mut key = item.idempotency_key.clone();
        if let Some(suffix) = item.payload.get("key_suffix").and_then(|s| s.as_str()) {
            key.push_str(suffix);
        }
        if item.kind == OutboxKind::MeterEvent && item.attempts > 0 {
            key.push_str(&format!(":t{}", item.attempts));
        }
        let key = match IdempotencyKey::new(&key) {
            Ok(k) => k,
            Err(e) => return Sent::Park(format!("unusable idempotency key: {e}")),
        };
        match item.kind {
            OutboxKind::StripeCustomer => self.send_customer(claim, &key).await,
            OutboxKind::StripeSubscription => self.send_subscription(claim, &key).await,
            OutboxKind::StripeSubscriptionItem => self.send_subscription_item(claim, &key).await,
            OutboxKind::MeterEvent => self.send_meter_event(claim, &key).await,
            OutboxKind::MeterEventReversal => self.send_reversal(claim, &key).await,
            OutboxKind::HelpdeskReply | OutboxKind::WebhookEvent => {
                Sent::Park(format!("a {} row reached the Stripe sender", item.kind))
            }
        }
    }

    /// A row that needs the account's Stripe customer, which is not there yet.
    fn waiting_for_customer(&self) -> Sent {
        Sent::Later {
            error: "waiting for the account's Stripe customer".to_owned(),
            after: self.config.customer_wait,
            failure: false,
        }
    }

    async fn send_customer(&self, claim: &OutboxClaim, key: &IdempotencyKey) -> Sent {
        let item = &claim.item;
        let name = item.payload["name"].as_str().unwrap_or_default();
        let result = self
            .client
            .create_customer(key, name, &item.account_id.to_string())
            .await
            .map(|id| Delivered {
                object_id: Some(id),
                sent_as: None,
            });
        self.classify(item.attempts, result)
    }

    async fn send_subscription(&self, claim: &OutboxClaim, key: &IdempotencyKey) -> Sent {
        let item = &claim.item;
        let Some(customer) = claim.stripe_customer_id.as_deref() else {
            return self.waiting_for_customer();
        };
        let plan = match self.store.billing_info(item.account_id, ApiKeyMode::Live).await {
            Ok(info) => info.plan,
            Err(e) => return self.later(item.attempts, e.to_string()),
        };
        let price = match ensure_price(&self.client, &self.store, &plan.price_per_cu).await {
            Ok(price) => price,
            Err(e) => return self.catalog_failed(item.attempts, e),
        };
        let result = self
            .client
            .create_subscription(key, customer, &price, &item.account_id.to_string())
            .await
            .map(|sub| Delivered {
                object_id: Some(sub.id),
                sent_as: None,
            });
        self.classify(item.attempts, result)
    }

    async fn send_subscription_item(&self, claim: &OutboxClaim, key: &IdempotencyKey) -> Sent {
        let item = &claim.item;
        let subscription = match self.store.stripe_ids(item.account_id).await {
            Ok(ids) => ids.subscription,
            Err(e) => return self.later(item.attempts, e.to_string()),
        };
        let Some(subscription) = subscription else {
            return Sent::Later {
                error: "waiting for the account's Stripe subscription".to_owned(),
                after: self.config.customer_wait,
                failure: false,
            };
        };
        let currency = match self.store.billing_info(item.account_id, ApiKeyMode::Live).await {
            Ok(info) => info.plan.price_per_cu.currency,
            Err(e) => return self.later(item.attempts, e.to_string()),
        };
        let price = match ensure_gateway_price(&self.client, &self.store, currency).await {
            Ok(price) => price,
            Err(e) => return self.catalog_failed(item.attempts, e),
        };
        let result = self
            .client
            .add_subscription_item(key, &subscription, &price, &item.account_id.to_string())
            .await
            .map(|id| Delivered {
                object_id: Some(id),
                sent_as: None,
            });
        self.classify(item.attempts, result)
    }

    /// What a row that needed the catalogue does when it could not be had.
    fn catalog_failed(&self, attempts: i32, e: CatalogError) -> Sent {
        match e {
            CatalogError::NotSetUp(what) => Sent::Later {
                error: format!("no Stripe {what} yet: waiting for `bounty stripe setup`"),
                after: self.config.setup_wait,
                failure: false,
            },
            CatalogError::Stripe(e) if e.is_transient() => self.later(attempts, e.to_string()),
            CatalogError::Store(e) => self.later(attempts, e.to_string()),
            e => Sent::Park(e.to_string()),
        }
    }

    async fn send_meter_event(&self, claim: &OutboxClaim, key: &IdempotencyKey) -> Sent {
        let item = &claim.item;
        let Some(customer) = claim.stripe_customer_id.as_deref() else {
            return self.waiting_for_customer();
        };
        let Ok(p) = serde_json::from_value::<MeterEventPayload>(item.payload.clone()) else {
            return Sent::Park(format!("malformed meter event payload: {}", item.payload));
        };
        let event = MeterEvent {
            event_name: &p.event_name,
            identifier: &p.identifier,
            stripe_customer_id: customer,
            value: p.value,
            timestamp_unix: p.timestamp,
        };
        let result = match self.client.create_meter_event(key, &event).await {
            // Stripe already has an event with this identifier: ours, sent
            // before under another key. Delivered.
            Err(StripeError::Rejected { message, .. }) if message.contains("already exists") => {
                Ok(Delivered::default())
            }
            other => other.map(|()| Delivered::default()),
        };
        self.classify(item.attempts, result)
    }

    async fn send_reversal(&self, claim: &OutboxClaim, key: &IdempotencyKey) -> Sent {
        let item = &claim.item;
        let Ok(MeterEventReversalPayload {
            event_name,
            identifier,
            timestamp: ts,
            ..
        }) = serde_json::from_value(item.payload.clone())
        else {
            return Sent::Park(format!("malformed reversal payload: {}", item.payload));
        };
        // The original must be in Stripe before it can be undone there: its
        // row may still be retrying, or parked.
        match self
            .store
            .outbox_status(item.account_id, &identifier, OutboxKind::MeterEvent)
            .await
        {
            Ok(Some(OutboxStatus::Sent) | None) => {}
            Ok(Some(status)) => {
                return Sent::Later {
                    error: format!("waiting for the meter event {identifier} ({status}) to be sent"),
                    after: self.config.customer_wait,
                    failure: false,
                };
            }
            Err(e) => return self.later(item.attempts, e.to_string()),
        }
        // Decided once per row, from when the reversal happened, never from
        // when it is sent: a cancel that Stripe applied but never confirmed
        // must not be followed by a credit on a later retry.
        if reversal_credits(ts, item.created_at.timestamp()) {
            return self.credit(claim, &identifier).await;
        }
        let result = self
            .client
            .cancel_meter_event(key, &event_name, &identifier)
            .await
            .map(|()| Delivered {
                object_id: None,
                sent_as: Some("cancel"),
            });
        self.classify(item.attempts, result)
    }

    /// A reversal past Stripe's cancellation window: the usage stays on the
    /// meter, and the money charged for it is credited to the customer's
    /// balance, which Stripe takes off the next invoice.
    async fn credit(&self, claim: &OutboxClaim, charge: &str) -> Sent {
        let item = &claim.item;
        let key = match IdempotencyKey::new(format!("{}:credit", item.idempotency_key)) {
            Ok(k) => k,
            Err(e) => return Sent::Park(format!("unusable idempotency key: {e}")),
        };
        let Some(customer) = claim.stripe_customer_id.as_deref() else {
            return self.waiting_for_customer();
        };
        let (micros, currency) = match self.store.charge_money_of(item.account_id, charge).await {
            Ok(Some(money)) => money,
            // Fully paid from included CU or credits: no money was charged.
            Ok(None) => {
                return Sent::Done(Delivered {
                    object_id: None,
                    sent_as: Some("credit"),
                });
            }
            Err(e) => return self.later(item.attempts, e.to_string()),
        };
        let money = match currency.parse() {
            Ok(currency) => Money { micros, currency },
            Err(e) => return Sent::Park(format!("the charge's currency {currency:?}: {e}")),
        };
        let amount_minor = money.to_minor_units();
        if amount_minor <= 0 {
            // Less than one cent: Stripe cannot credit it, and nothing was billed for it either.
            return Sent::Done(Delivered {
                object_id: None,
                sent_as: Some("credit"),
            });
        }
        let description = format!("Bounty: reversal of charge {charge}");
        let credit = BalanceCredit {
            customer,
            amount_minor,
            currency: &currency.to_ascii_lowercase(),
            description: &description,
            transfer_id: charge,
        };
        let result = self
            .client
            .credit_balance(&key, &credit)
            .await
            .map(|id| Delivered {
                object_id: Some(id),
                sent_as: Some("credit"),
            });
        self.classify(item.attempts, result)
    }

    fn classify(&self, attempts: i32, result: Result<Delivered, StripeError>) -> Sent {
        match result {
            Ok(delivered) => Sent::Done(delivered),
            Err(StripeError::Server { status }) if attempts.saturating_add(1) >= SAVED_500_TRIES => {
                Sent::Park(saved_500(status, attempts.saturating_add(1)))
            }
            Err(e) if e.is_transient() => self.later(attempts, e.to_string()),
            Err(e) => Sent::Park(e.to_string()),
        }
    }

    /// A transient failure of a row that had failed `attempts` times
    /// before: backed off by its failures, this one included (never by its
    /// deferrals).
    fn later(&self, attempts: i32, error: String) -> Sent {
        Sent::Later {
            error,
            failure: true,
            after: retry_delay(
                u32::try_from(attempts.saturating_add(1).max(1)).unwrap_or(1),
                self.config.retry_base,
                self.config.retry_max,
                bounty_core::random_unit(),
            ),
        }
    }

    /// Follows the streak of failed sends: a success ends it; a transient
    /// failure starts it or, once it has lasted
    /// [`SenderConfig::failing_notice_after`], tells the operator (once per
    /// streak, and once across processes: [`Store::notify_operator_once`]).
    async fn follow_streak(&self, sent: &Sent) -> Result<(), StoreError> {
        let now = self.store.now();
        let since = {
            let mut streak = self.failing.lock().unwrap_or_else(|e| e.into_inner());
            match sent {
                Sent::Done(_) => {
                    *streak = None;
                    return Ok(());
                }
                Sent::Later { failure: true, .. } => {}
                Sent::Later { .. } | Sent::Park(_) => return Ok(()),
            }
            let current = streak.get_or_insert(Streak {
                since: now,
                told: false,
            });
            let lasted = (now - current.since).to_std().unwrap_or_default();
            if current.told || lasted < self.config.failing_notice_after {
                return Ok(());
            }
            current.told = true;
            current.since
        };
        let error = match sent {
            Sent::Later { error, .. } => error.as_str(),
            _ => "",
        };
        let minutes = (now - since).num_minutes();
        let notice = bounty_store::notifications::Notice {
            audience: bounty_store::notifications::Audience::Operator,
            kind: "stripe.failing",
            title: format!(
                "Stripe has failed every send for {minutes} minutes ({} mode)",
                self.mode
            ),
            body: format!(
                "Every Stripe request of the {} sender has failed since {} (the last: {error}). \
                 Charges wait in the outbox and are sent once Stripe answers; check Stripe's status \
                 and the sender's key. `bounty outbox list` shows what waits.",
                self.mode,
                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        };
        self.store.notify_operator_once(&notice, since).await?;
        Ok(())
    }

    /// Writes what sending a row came to.
    pub async fn record(&self, claim: &OutboxClaim, sent: Sent) -> Result<(), StoreError> {
        let item = &claim.item;
        if let Err(e) = self.follow_streak(&sent).await {
            tracing::warn!(error = %e, "could not write the Stripe-failing notice");
        }
        match sent {
            Sent::Done(delivered) => {
                tracing::info!(outbox.id = %item.id, kind = %item.kind, sent_as = delivered.sent_as, "outbox row sent");
                self.store.outbox_sent(item.id, &delivered).await
            }
            Sent::Later {
                error,
                after,
                failure,
            } => {
                tracing::warn!(outbox.id = %item.id, kind = %item.kind, %error, retry_in_ms = after.as_millis() as u64, "outbox row will be retried");
                let at =
                    self.store.now() + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::zero());
                self.store.outbox_retry_at(item.id, &error, at, failure).await
            }
            Sent::Park(error) => {
                tracing::error!(outbox.id = %item.id, kind = %item.kind, %error, "outbox row parked as failed");
                self.store.outbox_park(item.id, &error).await
            }
        }
    }
}
