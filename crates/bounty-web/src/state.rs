//! What every dashboard handler can reach: the store, the session and
//! login policy, and the few server settings some pages need (the
//! configured model names, the master keys that seal integration secrets,
//! and this server's own address for test deliveries). Nothing here
//! belongs to another crate's state, so the server can build it from its
//! own configuration and mount the router.

use std::sync::Arc;

use bounty_integrations::Keyring;
use bounty_store::Store;
use chrono::Duration;

use crate::password::PasswordHasher;

/// How many failed logins are too many, and over what window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failed logins naming one email (since its last success) that lock
    /// that email for the rest of the window.
    pub per_email: u32,
    /// Failed logins from one client address, whatever the email.
    pub per_ip: u32,
    /// The sliding window both counts cover.
    pub window: Duration,
}

impl Default for LoginLimits {
    /// 5 per email and 20 per address in any 15 minutes.
    fn default() -> Self {
        LoginLimits {
            per_email: 5,
            per_ip: 20,
            window: Duration::minutes(15),
        }
    }
}

/// The dashboard's shared state; cheap to clone.
#[derive(Debug, Clone)]
pub struct WebState {
    /// The store; its clock decides session expiry and rate-limit windows.
    pub store: Store,
    /// Mark cookies `Secure`: set whenever the dashboard is reached over
    /// TLS (directly or behind a terminating proxy).
    pub secure_cookies: bool,
    /// How long a session lives from login, whatever its use: an absolute
    /// expiry, checked by the store on every request. Default 12 hours.
    pub session_ttl: Duration,
    /// The login rate limit.
    pub login_limits: LoginLimits,
    /// Take the client address for the rate limit from the last entry of
    /// `X-Forwarded-For` (the one the nearest proxy added) instead of the
    /// TCP peer. Set only behind a proxy that sets that header.
    pub trust_forwarded_for: bool,
    /// Password hashing and verification.
    pub passwords: PasswordHasher,
    /// The configured model names (the server's `[models.*]` entries, as
    /// `GET /v1/models` lists them). An agent's model route and its judge
    /// verifiers may name only these. Empty (the default): names are not
    /// checked, which suits tests and a dashboard mounted without models.
    pub models: Vec<String>,
    /// The master keys integration secrets are sealed with (the server's
    /// `secrets.master_keys`). `None` (the default): the integration pages
    /// say so and create, rotate and test nothing, as the API answers 503.
    pub keyring: Option<Arc<Keyring>>,
    /// This server's own base URL as it can reach itself (for example
    /// `http://127.0.0.1:8080`, no trailing slash needed): the "send a
    /// signed test delivery" button POSTs to `{self_url}/webhooks/in/{id}`,
    /// and integration pages show absolute inbound URLs under it. `None`
    /// (the default): test deliveries are unavailable, and inbound URLs are
    /// shown relative to the server.
    pub self_url: Option<String>,
    /// The embedding model knowledge is indexed and searched with (the
    /// server's `[knowledge] embedding_model`); `None`: keyword only.
    pub knowledge_embedder: Option<Arc<bounty_models::Embedder>>,
    /// The rule for URLs customers give: the pages of a `urls` knowledge
    /// source are fetched under it.
    pub outbound: bounty_outbound::OutboundPolicy,
}

impl WebState {
    /// State over `store` with the default policy: 12-hour sessions, 5/20
    /// failed logins per 15 minutes, argon2id at its default cost; no model
    /// names checked, no master keys, no `self_url`.
    pub fn new(store: Store, secure_cookies: bool) -> WebState {
        WebState {
            store,
            secure_cookies,
            session_ttl: Duration::hours(12),
            login_limits: LoginLimits::default(),
            trust_forwarded_for: false,
            passwords: PasswordHasher::default(),
            models: Vec::new(),
            keyring: None,
            self_url: None,
            knowledge_embedder: None,
            outbound: bounty_outbound::OutboundPolicy::default(),
        }
    }

    /// A link to `path` (which starts with `/`) on this server: absolute
    /// under [`WebState::self_url`] when it is set, else the path alone.
    pub(crate) fn link(&self, path: &str) -> String {
        format!("{}{path}", self.base_url().unwrap_or_default())
    }

    /// [`WebState::self_url`] without a trailing slash.
    pub(crate) fn base_url(&self) -> Option<&str> {
        self.self_url
            .as_deref()
            .map(|u| u.trim_end_matches('/'))
            .filter(|u| !u.is_empty())
    }
}
