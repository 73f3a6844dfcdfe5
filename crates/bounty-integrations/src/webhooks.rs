//! The webhook sender: delivers each `webhook_event` outbox row, an
//! event for one of the account's endpoints, as a Standard Webhooks
//! signed POST.
//!
//! - **Signed.** `webhook-id` is the event's id (the receiver dedupes on
//!   it, so a resend is safe), `webhook-timestamp` the send time, and
//!   `webhook-signature` one `v1,` signature per secret in use: the
//!   endpoint's, and during a rotation the previous one too.
//! - **Retried** on the reply schedule (`[outbox] reply_retry_schedule_ms`,
//!   Standard Webhooks' by default): a 5xx, a timeout or a refused
//!   connection waits the next step; a 429 waits at least its
//!   `Retry-After`. A 410 disables the endpoint and parks its deliveries;
//!   so does failing without a success for five days. Any other 4xx is
//!   retried too: a receiver's misconfiguration is often fixed within the
//!   schedule, and the endpoint page shows every try.
//! - **Recorded.** Every try is a `webhook_attempts` row: status, latency
//!   and the start of the answer.
//! - **Never blocking.** Deliveries of one claimed batch run concurrently,
//!   at most [`WebhookSenderConfig::per_endpoint`] at once per endpoint, so
//!   a slow endpoint holds up only its own.
//! - **Guarded.** The client resolves names through the outbound rule:
//!   no loopback, private or metadata address unless allowed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bounty_core::event::webhook_secret_aad;
use bounty_core::{EventId, WebhookAttemptId, WebhookEndpointId};
use bounty_store::webhooks::WebhookAttempt;
use bounty_store::{Delivered, OutboxClaim, Store, StoreError};
use reqwest::header::CONTENT_TYPE;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use crate::kind::IntegrationKind;
use crate::reply::ReplyError;
use crate::retry::next_delay;
use crate::seal::Keyring;
use crate::signature::{self, Delivery};

/// Most bytes of an endpoint's answer kept with the attempt.
pub const RESPONSE_KEPT: usize = 1024;

/// How a webhook sender runs.
#[derive(Debug, Clone)]
pub struct WebhookSenderConfig {
    pub batch: u32,
    pub lease: Duration,
    pub poll_interval: Duration,
    /// The wait before each try (the reply schedule).
    pub schedule: Vec<Duration>,
    /// Deliveries to one endpoint at once.
    pub per_endpoint: usize,
    /// An endpoint failing this long without a success is disabled.
    pub disable_after: Duration,
    /// Longest one delivery may take.
    pub timeout: Duration,
    /// Let endpoints reach loopback and private addresses (tests, one
    /// machine); never in a multi-tenant deployment.
    pub allow_private: bool,
}

impl Default for WebhookSenderConfig {
    fn default() -> Self {
        WebhookSenderConfig {
            batch: 32,
            lease: Duration::from_secs(120),
            poll_interval: Duration::from_secs(1),
            schedule: crate::retry::SCHEDULE.to_vec(),
            per_endpoint: 4,
            disable_after: Duration::from_secs(5 * 24 * 3600),
            timeout: Duration::from_secs(10),
            allow_private: false,
        }
    }
}

/// What delivering one row came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The endpoint answered 2xx.
    Done,
    /// Try again after this long.
    Later { error: String, after: Duration },
    /// Park it; `disable` names why the endpoint is disabled too.
    Park { error: String, disable: Option<String> },
}

/// Delivers `webhook_event` rows.
#[derive(Clone)]
pub struct WebhookSender {
    store: Store,
    keyring: Arc<Keyring>,
    http: reqwest::Client,
    config: WebhookSenderConfig,
}

impl WebhookSender {
    /// A sender; its client follows the outbound rule of `config`.
    pub fn new(store: Store, keyring: Arc<Keyring>, config: WebhookSenderConfig) -> Result<Self, String> {
        let policy = bounty_outbound::OutboundPolicy {
            allow_private: config.allow_private,
            timeout: config.timeout,
            ..bounty_outbound::OutboundPolicy::default()
        };
        let http = bounty_outbound::guarded_client_builder(&policy)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))?;
        Ok(WebhookSender {
            store,
            keyring,
            http,
            config,
        })
    }

    /// Claims and delivers due rows until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        bounty_store::outbox::drain_until_cancelled("webhooks", self.config.poll_interval, &cancel, || {
            self.drain(&cancel)
        })
        .await;
    }

    /// Claims one batch and delivers it; returns how many rows were claimed.
    pub async fn drain_once(&self) -> Result<usize, StoreError> {
        self.drain(&CancellationToken::new()).await
    }

    /// One batch: each endpoint's rows in order, [`WebhookSenderConfig::per_endpoint`]
    /// at once, every endpoint at once. Once `cancel` fires, rows not
    /// started are given back.
    async fn drain(&self, cancel: &CancellationToken) -> Result<usize, StoreError> {
        let claims = self
            .store
            .claim_webhooks(self.config.batch, self.config.lease)
            .await?;
        let n = claims.len();
        deliver_batch(
            &self.store,
            claims,
            "endpoint_id",
            self.config.per_endpoint,
            cancel,
            self.clone(),
            |sender: WebhookSender, claim: OutboxClaim| async move {
                let result = sender.deliver(&claim).await;
                sender.record(&claim, result).await
            },
        )
        .await?;
        Ok(n)
    }

    /// Delivers one claimed row, recording the try; writes nothing else.
    pub async fn deliver(&self, claim: &OutboxClaim) -> Sent {
        let item = &claim.item;
        let park = |error: String| Sent::Park { error, disable: None };
        let text = |field: &str| item.payload[field].as_str().map(str::to_owned);
        let (Some(Ok(endpoint_id)), Some(Ok(event_id))) = (
            text("endpoint_id").map(|s| s.parse::<WebhookEndpointId>()),
            text("event_id").map(|s| s.parse::<EventId>()),
        ) else {
            return park(format!("malformed webhook payload: {}", item.payload));
        };
        let later = |e: StoreError| Sent::Later {
            error: e.to_string(),
            after: self
                .config
                .schedule
                .get(1)
                .copied()
                .unwrap_or(Duration::from_secs(5)),
        };
        let endpoint = match self.store.webhook_endpoint_of(item.account_id, endpoint_id).await {
            Ok(Some(e)) => e,
            Ok(None) => return park(format!("webhook endpoint {endpoint_id} was deleted")),
            Err(e) => return later(e),
        };
        if !endpoint.enabled {
            return park(format!(
                "webhook endpoint {endpoint_id} is disabled: {}",
                endpoint.disabled_reason.as_deref().unwrap_or("by the account")
            ));
        }
        let event = match self.store.get_event(item.account_id, None, event_id).await {
            Ok(Some(e)) => e,
            Ok(None) => return park(format!("event {event_id} is gone")),
            Err(e) => return later(e),
        };
        let now = self.store.now();
        let aad = webhook_secret_aad(item.account_id, endpoint_id);
        let mut secrets = Vec::new();
        for sealed in std::iter::once(Some(&endpoint.secret_sealed)).chain(std::iter::once(
            endpoint
                .previous_secret_sealed
                .as_ref()
                .filter(|_| endpoint.previous_expires_at.is_some_and(|t| t > now)),
        )) {
            let Some(sealed) = sealed else { continue };
            match self.keyring.open_text(sealed, aad.as_bytes()) {
                Some(s) => secrets.push(SecretString::from(s)),
                None => {
                    return park(format!(
                        "the secret of endpoint {endpoint_id} does not open with the master keys"
                    ));
                }
            }
        }
        let body = match serde_json::to_vec(&event.to_event()) {
            Ok(b) => b,
            Err(e) => return park(format!("event {event_id} cannot be serialized: {e}")),
        };
        let headers = match signed_headers(&secrets, &event_id.to_string(), &body, now) {
            Ok(h) => h,
            Err(e) => return park(e),
        };
        let mut request = self
            .http
            .post(&endpoint.url)
            .header(CONTENT_TYPE, "application/json")
            .header(reqwest::header::USER_AGENT, "Bounty-Webhooks/1");
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let started = Instant::now();
        let answer = request.body(body).send().await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (status, response, error, retry_after) = match answer {
            Ok(r) => {
                let status = r.status();
                let retry_after =
                    crate::reply::response::retry_after(IntegrationKind::Standard, r.headers(), now);
                let text = match r.bytes().await {
                    Ok(b) => Some(String::from_utf8_lossy(&b[..b.len().min(RESPONSE_KEPT)]).into_owned()),
                    Err(_) => None,
                };
                (Some(status.as_u16()), text, None, retry_after)
            }
            Err(e) => (None, None, Some(transport_error(&e)), None),
        };
        let attempt = WebhookAttempt {
            id: WebhookAttemptId::new(),
            endpoint_id,
            event_id,
            outbox_id: item.id.to_string(),
            status: status.map(i32::from),
            latency_ms,
            response,
            error: error.clone(),
            created_at: now,
        };
        if let Err(e) = self.store.record_webhook_attempt(item.account_id, &attempt).await {
            tracing::warn!(error = %e, "could not record a webhook attempt");
        }
        let failure = match (status, error) {
            (Some(s), _) if (200..300).contains(&s) => {
                if endpoint.failing_since.is_some() {
                    let _ = self
                        .store
                        .webhook_endpoint_succeeded(item.account_id, endpoint_id)
                        .await;
                }
                return Sent::Done;
            }
            (Some(410), _) => {
                return Sent::Park {
                    error: "the endpoint answered 410 Gone: endpoint disabled".to_owned(),
                    disable: Some("the endpoint answered 410 Gone".to_owned()),
                };
            }
            (Some(429), _) => ReplyError::RateLimited { retry_after },
            (Some(s), _) => ReplyError::Transient(format!("the endpoint answered {s}")),
            (None, e) => ReplyError::Transient(e.unwrap_or_else(|| "no answer".to_owned())),
        };
        let since = self
            .store
            .webhook_endpoint_failed(item.account_id, endpoint_id)
            .await
            .ok()
            .flatten()
            .unwrap_or(now);
        let failing = (now - since).to_std().unwrap_or(Duration::ZERO);
        if failing >= self.config.disable_after {
            return Sent::Park {
                error: format!("{failure}; the endpoint has failed since {since}: endpoint disabled"),
                disable: Some(format!(
                    "deliveries failed for {} days without a success",
                    self.config.disable_after.as_secs() / 86_400
                )),
            };
        }
        let tries = u32::try_from(item.attempts.saturating_add(1).max(1)).unwrap_or(1);
        match next_delay(&self.config.schedule, tries, &failure, bounty_core::random_unit()) {
            Some(after) => Sent::Later {
                error: failure.to_string(),
                after,
            },
            None => park(format!("gave up after {tries} attempts: {failure}")),
        }
    }

    /// Writes what delivering a row came to.
    pub async fn record(&self, claim: &OutboxClaim, result: Sent) -> Result<(), StoreError> {
        let item = &claim.item;
        match result {
            Sent::Done => {
                tracing::info!(outbox.id = %item.id, "webhook delivered");
                self.store
                    .outbox_sent(
                        item.id,
                        &Delivered {
                            object_id: None,
                            sent_as: Some("delivered"),
                        },
                    )
                    .await
            }
            Sent::Later { error, after } => {
                tracing::warn!(outbox.id = %item.id, %error, retry_in_ms = after.as_millis() as u64, "webhook will be retried");
                let at =
                    self.store.now() + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::zero());
                self.store.outbox_retry_at(item.id, &error, at, true).await
            }
            Sent::Park { error, disable } => {
                tracing::error!(outbox.id = %item.id, %error, "webhook parked as failed");
                self.store.outbox_park(item.id, &error).await?;
                if let (Some(reason), Some(Ok(endpoint))) =
                    (disable, item.payload["endpoint_id"].as_str().map(str::parse))
                {
                    self.store
                        .disable_webhook_endpoint(item.account_id, endpoint, &reason)
                        .await?;
                }
                Ok(())
            }
        }
    }
}

/// Delivers a claimed batch: the rows of each destination (the payload's
/// `key`: an endpoint, an integration) at most `per_key` at once, every
/// destination at once, so a slow one holds up only its own rows. Once
/// `cancel` fires, rows not started are given back. Returns the first
/// store error after every row is done.
pub(crate) async fn deliver_batch<S, F, Fut>(
    store: &Store,
    claims: Vec<OutboxClaim>,
    key: &str,
    per_key: usize,
    cancel: &CancellationToken,
    sender: S,
    deliver: F,
) -> Result<(), StoreError>
where
    S: Clone + Send + 'static,
    F: Fn(S, OutboxClaim) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), StoreError>> + Send + 'static,
{
    let mut by_key: BTreeMap<String, Vec<OutboxClaim>> = BTreeMap::new();
    for claim in claims {
        let k = claim.item.payload[key].as_str().unwrap_or_default().to_owned();
        by_key.entry(k).or_default().push(claim);
    }
    let mut running = tokio::task::JoinSet::new();
    for (_, claims) in by_key {
        let limit = Arc::new(tokio::sync::Semaphore::new(per_key.max(1)));
        for claim in claims {
            let (sender, deliver, limit, cancel, store) = (
                sender.clone(),
                deliver.clone(),
                limit.clone(),
                cancel.clone(),
                store.clone(),
            );
            running.spawn(async move {
                let Ok(_permit) = limit.acquire_owned().await else {
                    return Ok(());
                };
                if cancel.is_cancelled() {
                    return store.outbox_release(&[claim.item.id]).await;
                }
                deliver(sender, claim).await
            });
        }
    }
    let mut first_error = None;
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(e) => tracing::error!(error = %e, "a delivery task failed"),
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The Standard Webhooks headers for `body` under every secret in `secrets`
/// (the current first): one `webhook-signature` with a `v1,` signature each.
pub fn signed_headers(
    secrets: &[SecretString],
    id: &str,
    body: &[u8],
    now: bounty_core::Timestamp,
) -> Result<Vec<(String, String)>, String> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut signatures = Vec::new();
    for secret in secrets {
        let signed = signature::sign(
            IntegrationKind::Standard,
            secret.expose_secret().as_bytes(),
            body,
            &Delivery { id, timestamp: now },
        )
        .map_err(|_| "an endpoint secret is not whsec_ + base64".to_owned())?;
        for (name, value) in signed {
            if name == "webhook-signature" {
                signatures.push(value);
            } else if !headers.iter().any(|(n, _)| *n == name) {
                headers.push((name, value));
            }
        }
    }
    if signatures.is_empty() {
        return Err("the endpoint has no secret".to_owned());
    }
    headers.push(("webhook-signature".to_owned(), signatures.join(" ")));
    Ok(headers)
}

/// A transport error, shortly: what the endpoint page shows.
fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        let mut message = "could not connect".to_owned();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            if s.to_string().contains("refused") && s.to_string().contains("outbound") {
                message = format!("refused by the outbound rule: {s}");
            }
            source = s.source();
        }
        message
    } else {
        "the request failed".to_owned()
    }
}
