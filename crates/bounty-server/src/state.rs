//! What every handler can reach: the store, metrics, request limits, the
//! model registry and the task queue's settings.

use std::sync::Arc;
use std::time::Duration;

use bounty_models::ModelRegistry;
use bounty_store::Store;
use tokio::sync::Notify;

use crate::metrics::Metrics;

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// How long a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// How long `/readyz` waits for the database.
    pub readiness_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            readiness_timeout: Duration::from_secs(2),
        }
    }
}

/// Shared state of the HTTP server; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
    /// Request limits.
    pub limits: Limits,
    /// The configured models: agents' routes must name them.
    pub models: Arc<ModelRegistry>,
    /// Attempts each new task gets.
    pub task_max_attempts: u32,
    /// Notified on every new task, so in-process workers start at once.
    pub task_wake: Arc<Notify>,
    /// The Stripe client, when Stripe is configured; without it Bounty is
    /// ledger-only.
    pub stripe: Option<bounty_billing::stripe::StripeClient>,
    /// Master keys sealing integration secrets; `None`: integrations are
    /// unavailable (503 `secrets_not_configured`).
    pub keyring: Option<Arc<bounty_integrations::Keyring>>,
    /// The dashboard's settings (cookies, sessions, login limits).
    pub web: bounty_web::WebState,
    /// Stripe webhook signing secrets (several during a rotation).
    pub stripe_webhook_secrets: Arc<Vec<secrecy::SecretString>>,
    /// The rule for URLs customers give (a BYOK `base_url`): public
    /// addresses only, unless `tools.allow_private`.
    pub outbound: bounty_outbound::OutboundPolicy,
    /// The embedding model knowledge is indexed and searched with
    /// (`[knowledge] embedding_model`); `None`: keyword retrieval only.
    pub knowledge_embedder: Option<Arc<bounty_models::Embedder>>,
    /// The OpenAI-compatible gateway: its model routes and call recorder.
    pub gateway: Arc<crate::gateway::Gateway>,
    /// The rule for webhook endpoint URLs: public addresses only, unless
    /// `webhooks.allow_private`.
    pub webhooks_outbound: bounty_outbound::OutboundPolicy,
}

impl AppState {
    /// State over `store` with the given limits and fresh metrics.
    pub fn new(store: Store, limits: Limits) -> Self {
        AppState {
            gateway: crate::gateway::empty(store.clone()),
            webhooks_outbound: bounty_outbound::OutboundPolicy::default(),
            web: bounty_web::WebState::new(store.clone(), false),
            store,
            metrics: Arc::new(Metrics::default()),
            limits,
            models: Arc::new(ModelRegistry::default()),
            task_max_attempts: 3,
            task_wake: Arc::new(Notify::new()),
            stripe: None,
            keyring: None,
            stripe_webhook_secrets: Arc::new(Vec::new()),
            outbound: bounty_outbound::OutboundPolicy::default(),
            knowledge_embedder: None,
        }
    }

    /// The same state, serving the gateway models of `settings` (on top
    /// of every configured model under its own name). Call after
    /// [`AppState::with_models`].
    pub fn with_gateway(mut self, settings: &crate::gateway::GatewaySettings) -> Result<Self, String> {
        self.gateway = Arc::new(crate::gateway::Gateway::new(
            self.store.clone(),
            &self.models,
            settings,
        )?);
        Ok(self)
    }

    /// The same state, embedding knowledge with `embedder`.
    pub fn with_knowledge_embedder(mut self, embedder: Option<Arc<bounty_models::Embedder>>) -> Self {
        self.knowledge_embedder = embedder;
        self
    }

    /// The same state, checking customers' URLs under `outbound`.
    pub fn with_outbound(mut self, outbound: bounty_outbound::OutboundPolicy) -> Self {
        self.outbound = outbound;
        self
    }

    /// The same state, checking webhook endpoint URLs against `policy`.
    pub fn with_webhooks_outbound(mut self, policy: bounty_outbound::OutboundPolicy) -> Self {
        self.webhooks_outbound = policy;
        self
    }

    /// The same state, accepting Stripe webhooks signed with any of
    /// `secrets`.
    pub fn with_stripe_webhook_secrets(mut self, secrets: Vec<secrecy::SecretString>) -> Self {
        self.stripe_webhook_secrets = Arc::new(secrets);
        self
    }

    /// The same state, with these dashboard settings.
    pub fn with_web(mut self, web: bounty_web::WebState) -> Self {
        self.web = web;
        self
    }

    /// The same state, sealing integration secrets with `keyring`.
    pub fn with_keyring(mut self, keyring: Option<bounty_integrations::Keyring>) -> Self {
        self.keyring = keyring.map(Arc::new);
        self
    }

    /// The same state, with Stripe configured (or not).
    pub fn with_stripe(mut self, client: Option<bounty_billing::stripe::StripeClient>) -> Self {
        self.stripe = client;
        self
    }

    /// The same state over these models.
    pub fn with_models(mut self, models: Arc<ModelRegistry>) -> Self {
        self.gateway = Arc::new(
            crate::gateway::Gateway::new(
                self.store.clone(),
                &models,
                &crate::gateway::GatewaySettings::default(),
            )
            .unwrap_or_else(|e| unreachable!("every configured model is a valid gateway model: {e}")),
        );
        self.models = models;
        self
    }

    /// The same state, giving each new task `max_attempts` attempts.
    pub fn with_task_max_attempts(mut self, max_attempts: u32) -> Self {
        self.task_max_attempts = max_attempts.max(1);
        self
    }

    /// The same state, notifying `wake` on every new task.
    pub fn with_task_wake(mut self, wake: Arc<Notify>) -> Self {
        self.task_wake = wake;
        self
    }
}
