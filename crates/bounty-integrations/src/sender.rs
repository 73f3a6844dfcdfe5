//! The reply sender: posts each `helpdesk_reply` outbox row back to its
//! ticket, then marks it sent.
//!
//! A row is written in the transaction that finishes the ticket's task, so
//! it exists exactly when the task finished. Rows are leased, so two
//! senders never post one at once; a sender that dies leaves its rows to
//! be claimed again after the lease. A resend is safe: the row's id is the
//! reply's marker, looked for on the ticket before posting again (and the
//! Standard Webhooks `webhook-id` its receiver dedupes on), so a reply is
//! never posted twice.
//!
//! Retries follow the Standard Webhooks schedule ([`crate::retry`]); 429
//! honours `Retry-After`. A 410 disables the integration's reply-back and
//! parks the row; other permanent errors park it for an operator
//! (`bounty outbox list --status failed`, `bounty outbox retry`).

use std::sync::Arc;
use std::time::Duration;

use bounty_core::{IntegrationId, IntegrationState};
use bounty_store::{Delivered, OutboxClaim, Store, StoreError};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::reply::{Reply, ReplyAction, ReplyCredentials, ReplyError, ReplySent, ReplyTarget, send_reply};
use crate::retry::next_delay;
use crate::seal::Keyring;
use crate::settings::ReplySettings;
use crate::status::open_reply;

/// How a reply sender runs.
#[derive(Debug, Clone)]
pub struct ReplySenderConfig {
    /// Rows claimed at once.
    pub batch: u32,
    /// How long a claim lasts; a dead sender's rows are resent after it.
    pub lease: Duration,
    /// How often an idle sender looks for due rows.
    pub poll_interval: Duration,
    /// The wait before each try ([`crate::retry::SCHEDULE`] by default):
    /// `schedule[n]` after try `n` failed; its length is the most tries.
    pub schedule: Vec<Duration>,
    /// Replies posted to one integration at once; every integration's at
    /// once, so a slow helpdesk holds up only its own replies.
    pub per_integration: usize,
}

impl Default for ReplySenderConfig {
    fn default() -> Self {
        ReplySenderConfig {
            batch: 16,
            lease: Duration::from_secs(120),
            poll_interval: Duration::from_secs(1),
            schedule: crate::retry::SCHEDULE.to_vec(),
            per_integration: 4,
        }
    }
}

/// What sending one row came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// Posted now, or found already posted (`sent_as`).
    Done(&'static str),
    /// Try again after this long.
    Later { error: String, after: Duration },
    /// Park it; when `disable`, the integration's reply-back is gone (410).
    Park {
        error: String,
        disable: Option<IntegrationId>,
    },
}

/// Posts `helpdesk_reply` rows to the helpdesks.
#[derive(Clone)]
pub struct ReplySender {
    store: Store,
    keyring: Arc<Keyring>,
    http: reqwest::Client,
    config: ReplySenderConfig,
}

impl ReplySender {
    pub fn new(
        store: Store,
        keyring: Arc<Keyring>,
        http: reqwest::Client,
        config: ReplySenderConfig,
    ) -> Self {
        ReplySender {
            store,
            keyring,
            http,
            config,
        }
    }

    /// Claims and sends due rows until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        bounty_store::outbox::drain_until_cancelled(
            "helpdesk replies",
            self.config.poll_interval,
            &cancel,
            || self.drain(&cancel),
        )
        .await;
    }

    /// Claims one batch and sends it; returns how many rows were claimed.
    pub async fn drain_once(&self) -> Result<usize, StoreError> {
        self.drain(&CancellationToken::new()).await
    }

    /// [`ReplySender::drain_once`], stopping between rows once `cancel`
    /// fires: the rows not sent yet are given back at once (no attempt
    /// counted), not left to their lease.
    async fn drain(&self, cancel: &CancellationToken) -> Result<usize, StoreError> {
        let claims = self
            .store
            .claim_replies(self.config.batch, self.config.lease)
            .await?;
        let n = claims.len();
        crate::webhooks::deliver_batch(
            &self.store,
            claims,
            "integration_id",
            self.config.per_integration,
            cancel,
            self.clone(),
            |sender: ReplySender, claim: OutboxClaim| async move {
                let outcome = sender.send(&claim).await;
                sender.record(&claim, outcome).await
            },
        )
        .await?;
        Ok(n)
    }

    /// Sends one claimed row; writes nothing.
    pub async fn send(&self, claim: &OutboxClaim) -> SendResult {
        let item = &claim.item;
        let park = |error: String| SendResult::Park { error, disable: None };
        let text = |field: &str| item.payload[field].as_str().map(str::to_owned);
        let (Some(integration), Some(ticket), Some(action)) =
            (text("integration_id"), text("ticket"), text("action"))
        else {
            return park(format!("malformed reply payload: {}", item.payload));
        };
        let Ok(integration_id) = integration.parse::<IntegrationId>() else {
            return park(format!("malformed integration id {integration:?}"));
        };
        let action = match (action.as_str(), text("body"), text("note")) {
            ("resolve", Some(body), _) => ReplyAction::Resolve { body },
            ("handoff", _, Some(note)) => ReplyAction::Handoff { note },
            _ => return park(format!("malformed reply action in {}", item.payload)),
        };
        let integration = match self.store.get_integration(item.account_id, integration_id).await {
            Ok(Some(i)) => i,
            Ok(None) => return park(format!("integration {integration_id} was deleted")),
            Err(e) => return self.later(item.attempts, &ReplyError::Transient(e.to_string())),
        };
        if integration.state == IntegrationState::Disabled {
            return park(format!(
                "integration {integration_id} is disabled: {}",
                integration
                    .disabled_reason
                    .as_deref()
                    .unwrap_or("its endpoint is gone")
            ));
        }
        let settings = match open_reply(&self.keyring, &integration) {
            Ok(Some(s)) => s,
            // No reply-back configured: nothing to post, nothing lost.
            Ok(None) => return SendResult::Done("no_reply_configured"),
            Err(e) => return park(e.to_string()),
        };
        let target = target_of(settings);
        let data = serde_json::json!({
            "task_id": item.payload["task_id"],
            "outcome_status": item.payload["outcome_status"],
        });
        let reply_id = item.id.to_string();
        let reply = Reply {
            ticket_external_id: &ticket,
            action: &action,
            reply_id: &reply_id,
            data: &data,
            // This try: the failed ones before it, plus one.
            attempt: u32::try_from(item.attempts.saturating_add(1).max(1)).unwrap_or(1),
        };
        match send_reply(&self.http, &target, &reply, self.store.now()).await {
            Ok(ReplySent::Posted) => SendResult::Done("posted"),
            Ok(ReplySent::AlreadyPosted) => SendResult::Done("already_posted"),
            Err(ReplyError::Gone) => SendResult::Park {
                error: "the helpdesk answered 410 Gone: reply-back disabled".to_owned(),
                disable: Some(integration_id),
            },
            Err(e) if e.is_transient() => self.later(item.attempts, &e),
            Err(e) => park(e.to_string()),
        }
    }

    /// A transient failure of a row that had failed `attempts` times
    /// before: the schedule's next step after this try.
    fn later(&self, attempts: i32, error: &ReplyError) -> SendResult {
        let attempt = u32::try_from(attempts.saturating_add(1).max(1)).unwrap_or(1);
        match next_delay(&self.config.schedule, attempt, error, bounty_core::random_unit()) {
            Some(after) => SendResult::Later {
                error: error.to_string(),
                after,
            },
            None => SendResult::Park {
                error: format!("gave up after {attempt} attempts: {error}"),
                disable: None,
            },
        }
    }

    /// Writes what sending a row came to.
    pub async fn record(&self, claim: &OutboxClaim, outcome: SendResult) -> Result<(), StoreError> {
        let item = &claim.item;
        match outcome {
            SendResult::Done(how) => {
                tracing::info!(outbox.id = %item.id, sent_as = how, "helpdesk reply sent");
                let delivered = Delivered {
                    object_id: None,
                    sent_as: Some(how),
                };
                self.store.outbox_sent(item.id, &delivered).await
            }
            SendResult::Later { error, after } => {
                tracing::warn!(outbox.id = %item.id, %error, retry_in_ms = after.as_millis() as u64, "helpdesk reply will be retried");
                let at =
                    self.store.now() + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::zero());
                self.store.outbox_retry_at(item.id, &error, at, true).await
            }
            SendResult::Park { error, disable } => {
                tracing::error!(outbox.id = %item.id, %error, "helpdesk reply parked as failed");
                if let Some(integration) = disable {
                    self.store
                        .disable_integration(
                            item.account_id,
                            integration,
                            "the reply endpoint answered 410 Gone",
                        )
                        .await?;
                }
                self.store.outbox_park(item.id, &error).await
            }
        }
    }
}

/// The reply target of opened settings.
pub fn target_of(settings: ReplySettings) -> ReplyTarget {
    let kind = settings.kind();
    let (base_url, credentials) = match settings {
        ReplySettings::Zendesk {
            base_url,
            email,
            api_token,
        } => (
            base_url,
            ReplyCredentials::Zendesk {
                email,
                api_token: SecretString::from(api_token),
            },
        ),
        ReplySettings::Intercom {
            base_url,
            access_token,
            admin_id,
        } => (
            base_url,
            ReplyCredentials::Intercom {
                access_token: SecretString::from(access_token),
                admin_id,
            },
        ),
        ReplySettings::Chatwoot {
            base_url,
            api_access_token,
            account_id,
        } => (
            base_url,
            ReplyCredentials::Chatwoot {
                api_access_token: SecretString::from(api_access_token),
                account_id,
            },
        ),
        ReplySettings::Standard { callback_url, secret } => (
            callback_url,
            ReplyCredentials::Standard {
                secret: SecretString::from(secret),
            },
        ),
    };
    ReplyTarget {
        kind,
        base_url,
        credentials,
    }
}
