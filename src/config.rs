//! Bounty's configuration: one typed struct, every field documented.
//!
//! Sources, later ones winning:
//!
//! 1. the defaults below;
//! 2. a TOML file: `--config PATH`, else `BOUNTY_CONFIG`, else
//!    `./bounty.toml` when it exists;
//! 3. environment variables `BOUNTY_<SECTION>__<KEY>` (double underscore
//!    between section and key, e.g. `BOUNTY_SERVER__LISTEN`), and
//!    `DATABASE_URL` as the conventional alias of `BOUNTY_DATABASE__URL`;
//! 4. command-line flags.
//!
//! Everything is validated at startup; a bad value stops the process with
//! exit code 2 and one line naming the key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bounty_models::{EmbeddingConfig, ModelConfig, ModelRegistry};
use bounty_store::{Backend, DatabaseOptions};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The HTTP server.
    pub server: ServerConfig,
    /// The database.
    pub database: DatabaseConfig,
    /// Logging.
    pub log: LogConfig,
    /// Task workers: `bounty worker`, and the one inside `bounty serve`.
    pub worker: WorkerSettings,
    /// Models by name (`[models.NAME]`): what agents' routes may name.
    /// See `bounty_models::config` for every key.
    pub models: BTreeMap<String, ModelConfig>,
    /// Embedding models by name (`[embeddings.NAME]`): what retrieval
    /// embeds with. See `bounty_models::embedding_config` for every key.
    pub embeddings: BTreeMap<String, EmbeddingConfig>,
    /// Stripe: where the outbox sends meter events and customers.
    pub stripe: StripeSettings,
    /// Master keys sealing secrets at rest (helpdesk integrations).
    pub secrets: SecretsSettings,
    /// HTTP to URLs customers choose (BYOK endpoints today).
    pub tools: ToolsSettings,
    /// Knowledge: which embedding model indexes and searches it.
    pub knowledge: KnowledgeSettings,
    /// The OpenAI-compatible gateway: gateway model names and their
    /// routes (`[gateway.models.NAME] route = [...]`).
    pub gateway: bounty_server::gateway::GatewaySettings,
    /// How the outbox senders (Stripe and helpdesk replies) claim, lease
    /// and retry rows.
    pub outbox: OutboxSettings,
    /// Customers' webhook endpoints.
    pub webhooks: WebhooksSettings,
    /// How new work (helpdesk deliveries, `POST /v1/tasks`) is committed.
    pub intake: IntakeSettings,
    /// Email for notices (cap thresholds, low credits, disabled
    /// endpoints, disputes decided, parked outbox rows).
    pub mail: MailSettings,
}

/// `[mail]`: the SMTP server notices are emailed through. Unset: notices
/// show in the dashboard (the bell) and the log only.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// `smtp://user:pass@host:587?tls=required`, `smtps://…`, or
    /// `smtp://host:25` for a local relay. Secret: never logged.
    pub smtp_url: Option<SecretString>,
    /// The sender: `Bounty <billing@example.com>`.
    pub from: Option<String>,
    /// Where the operator's notices (parked outbox rows) go.
    pub operator_email: Option<String>,
}

impl fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("operator_email", &self.operator_email)
            .finish()
    }
}

impl MailSettings {
    /// The mailer over `store`, when `smtp_url` is set.
    pub fn mailer(
        &self,
        store: &bounty_store::Store,
        poll_interval: Duration,
    ) -> Result<Option<bounty_integrations::mail::Mailer>, ConfigError> {
        let Some(url) = &self.smtp_url else {
            return Ok(None);
        };
        let from = self
            .from
            .clone()
            .ok_or_else(|| ConfigError("`mail.from` is required with `mail.smtp_url`".to_owned()))?;
        let mut config =
            bounty_integrations::mail::MailerConfig::new(url.clone(), from, self.operator_email.clone());
        config.poll_interval = poll_interval;
        bounty_integrations::mail::Mailer::new(store.clone(), config)
            .map(Some)
            .map_err(ConfigError)
    }
}

/// `[intake]`: group commit of new work (helpdesk deliveries and
/// `POST /v1/tasks`): the deliveries that arrive together share one
/// transaction and one commit, each under a savepoint of its own, and each
/// is answered once the commit is durable.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeSettings {
    /// Group commits (default on). Off: one transaction per request.
    pub group_commit: bool,
    /// Batchers on Postgres, each with its own connection, running side by
    /// side (SQLite always has one writer).
    pub batchers: usize,
    /// The most requests in one transaction.
    pub max_batch: usize,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        let group = bounty_store::GroupCommit::default();
        IntakeSettings {
            group_commit: group.enabled,
            batchers: group.batchers,
            max_batch: group.max_batch,
        }
    }
}

impl IntakeSettings {
    /// The store's grouping.
    pub fn group_commit(&self) -> bounty_store::GroupCommit {
        bounty_store::GroupCommit {
            enabled: self.group_commit,
            batchers: self.batchers,
            max_batch: self.max_batch,
        }
    }
}

/// `[webhooks]`: where customers' events may be delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksSettings {
    /// Let webhook endpoints be (or resolve to) loopback, private,
    /// link-local or metadata addresses. Off by default: such a URL is
    /// refused with 422 when it is set, and again by the sender's client
    /// after DNS resolution. Turn it on only where every customer is
    /// trusted (tests, one machine).
    pub allow_private: bool,
    /// Write an event with each change (default on). Off: no event is
    /// written, listed or delivered (for an operator who offers no
    /// webhooks, and the benchmarks' baseline).
    pub events: bool,
}

impl Default for WebhooksSettings {
    fn default() -> Self {
        WebhooksSettings {
            allow_private: false,
            events: true,
        }
    }
}

impl WebhooksSettings {
    /// The rule endpoint URLs are checked against.
    pub fn outbound_policy(&self) -> bounty_outbound::OutboundPolicy {
        bounty_outbound::OutboundPolicy {
            allow_private: self.allow_private,
            ..bounty_outbound::OutboundPolicy::default()
        }
    }
}

/// `[outbox]`: the senders' batches, leases and the reply retry schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxSettings {
    /// Rows a Stripe sender claims at once.
    pub stripe_batch: u32,
    /// How long a Stripe sender's claim lasts, in ms: a killed sender's
    /// rows are sent again after it (a stopping one gives them back at
    /// once).
    pub stripe_lease_ms: u64,
    /// How long every Stripe send may fail (no success between) before the
    /// operator is told, in ms (default 15 minutes).
    pub stripe_failing_notice_ms: u64,
    /// Rows of its batch a Stripe sender sends at once.
    pub stripe_concurrency: usize,
    /// Base of a Stripe row's backoff after a failed send, in ms: try n
    /// waits a random time in [½, 1] × base × 2ⁿ⁻¹, capped at 5 minutes.
    pub stripe_retry_base_ms: u64,
    /// Rows a reply sender claims at once.
    pub reply_batch: u32,
    /// How long a reply sender's claim lasts, in ms.
    pub reply_lease_ms: u64,
    /// The wait before each try of a helpdesk reply, in ms: the first is
    /// the first try, entry `n` the wait after try `n` failed; its length
    /// is the most tries. Default: the Standard Webhooks schedule (ten
    /// tries over about three days).
    pub reply_retry_schedule_ms: Vec<u64>,
    /// Deliveries to one helpdesk integration or webhook endpoint at once;
    /// every destination is served at once, so a slow one delays only its
    /// own rows.
    pub per_destination: usize,
}

impl OutboxSettings {
    /// The reply (and webhook) retry schedule.
    pub fn reply_schedule(&self) -> Vec<Duration> {
        self.reply_retry_schedule_ms
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect()
    }
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            stripe_batch: 64,
            stripe_lease_ms: 60_000,
            stripe_failing_notice_ms: 15 * 60_000,
            stripe_concurrency: 64,
            stripe_retry_base_ms: 500,
            reply_batch: 16,
            reply_lease_ms: 120_000,
            reply_retry_schedule_ms: bounty_integrations::retry::SCHEDULE
                .iter()
                .map(|d| d.as_millis() as u64)
                .collect(),
            per_destination: 4,
        }
    }
}

/// `[knowledge]`: how knowledge sources are indexed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KnowledgeSettings {
    /// The `[embeddings.NAME]` model that knowledge chunks are embedded
    /// with when they are indexed (uploads, URL fetches, `bounty knowledge
    /// reindex`), and that retrieval embeds queries with. Unset: retrieval
    /// is keyword only. It must name an `[embeddings.NAME]` table.
    pub embedding_model: Option<String>,
}

/// `[tools]`: HTTP to URLs customers choose. Today that is each account's
/// BYOK endpoint (`PUT /v1/byok`); agent tools and knowledge fetched by
/// URL will follow the same rule (`bounty_outbound`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsSettings {
    /// Let customers' URLs reach loopback, private, link-local, cloud
    /// metadata and other special-purpose addresses. Off by default: a
    /// customer's URL can then never reach Bounty's own network, checked
    /// after DNS resolution on every call. Turn it on only where every
    /// customer is trusted (tests, a single-machine setup whose model
    /// server runs on localhost).
    pub allow_private: bool,
}

impl ToolsSettings {
    /// The outbound policy: the defaults (1 MiB, 10 s, 3 redirects) with
    /// `allow_private`.
    pub fn outbound_policy(&self) -> bounty_outbound::OutboundPolicy {
        bounty_outbound::OutboundPolicy {
            allow_private: self.allow_private,
            ..bounty_outbound::OutboundPolicy::default()
        }
    }
}

/// `[secrets]`: the master keys that seal integration secrets (AES-256-GCM).
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsSettings {
    /// `ID:KEY[,ID:KEY…]`: the current key first, then older ones still
    /// needed to open what they sealed. A key is 32 bytes as base64 or hex
    /// (`bounty secrets new-key` prints one). Secret: never logged. Unset:
    /// the integrations API answers 503 `secrets_not_configured`.
    pub master_keys: Option<SecretString>,
}

impl fmt::Debug for SecretsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsSettings")
            .field("master_keys", &self.master_keys.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl SecretsSettings {
    /// The helpdesk reply sender over `store`, when master keys are
    /// configured (without them no integration can exist).
    pub fn reply_sender(
        &self,
        store: &bounty_store::Store,
        outbox: &OutboxSettings,
        poll_interval: Duration,
    ) -> Result<Option<bounty_integrations::sender::ReplySender>, ConfigError> {
        let Some(keyring) = self.keyring()? else {
            return Ok(None);
        };
        let http = bounty_integrations::reply::http_client()
            .map_err(|e| ConfigError(format!("cannot build the helpdesk HTTP client: {e}")))?;
        let config = bounty_integrations::sender::ReplySenderConfig {
            poll_interval,
            batch: outbox.reply_batch,
            lease: Duration::from_millis(outbox.reply_lease_ms),
            schedule: outbox.reply_schedule(),
            per_integration: outbox.per_destination,
        };
        Ok(Some(bounty_integrations::sender::ReplySender::new(
            store.clone(),
            std::sync::Arc::new(keyring),
            http,
            config,
        )))
    }

    /// The webhook sender over `store`, when master keys are configured
    /// (without them no endpoint can exist).
    pub fn webhook_sender(
        &self,
        store: &bounty_store::Store,
        outbox: &OutboxSettings,
        webhooks: &WebhooksSettings,
        poll_interval: Duration,
    ) -> Result<Option<bounty_integrations::webhooks::WebhookSender>, ConfigError> {
        let Some(keyring) = self.keyring()? else {
            return Ok(None);
        };
        let config = bounty_integrations::webhooks::WebhookSenderConfig {
            poll_interval,
            batch: outbox.reply_batch,
            lease: Duration::from_millis(outbox.reply_lease_ms),
            schedule: outbox.reply_schedule(),
            per_endpoint: outbox.per_destination,
            allow_private: webhooks.allow_private,
            ..Default::default()
        };
        bounty_integrations::webhooks::WebhookSender::new(store.clone(), std::sync::Arc::new(keyring), config)
            .map(Some)
            .map_err(ConfigError)
    }

    /// The keyring, when master keys are configured.
    pub fn keyring(&self) -> Result<Option<bounty_integrations::Keyring>, ConfigError> {
        let Some(keys) = &self.master_keys else {
            return Ok(None);
        };
        keys.expose_secret()
            .parse::<bounty_integrations::Keyring>()
            // The error names the problem, never a key's bytes.
            .map(Some)
            .map_err(|e| ConfigError(format!("invalid value for `secrets.master_keys`: {e}")))
    }
}

/// `[stripe]`: without a secret key Bounty runs ledger-only: charges are
/// recorded and their meter events wait in the outbox.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StripeSettings {
    /// `sk_live_…` / `sk_test_…`. Secret: never logged. Unset: ledger-only.
    pub secret_key: Option<SecretString>,
    /// Stripe's test-mode key (`sk_test_…`) for test-mode charges (those
    /// of `bk_test_` keys): their meter events go to Stripe's test mode,
    /// to a test-mode customer of the account. Unset: test-mode charges
    /// are recorded in their own book and never sent. Secret: never logged.
    pub test_secret_key: Option<SecretString>,
    /// Stripe's API base (a local fake in tests); no path allowed.
    pub base_url: String,
    /// Longest one Stripe request may take, in ms.
    pub timeout_ms: u64,
    /// Whether workers (`bounty worker`, and `serve`'s own) send the outbox.
    pub sender: bool,
    /// How often an idle sender looks for due rows, in ms.
    pub poll_interval_ms: u64,
    /// Signing secrets of the Stripe webhook endpoint (`whsec_…`); list
    /// the old and the new one while rotating. Secrets: never logged.
    pub webhook_secrets: Vec<SecretString>,
}

impl Default for StripeSettings {
    fn default() -> Self {
        StripeSettings {
            secret_key: None,
            test_secret_key: None,
            base_url: "https://api.stripe.com".to_owned(),
            timeout_ms: 30_000,
            sender: true,
            poll_interval_ms: 1_000,
            webhook_secrets: Vec::new(),
        }
    }
}

impl fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeSettings")
            .field("secret_key", &self.secret_key.as_ref().map(|_| "<redacted>"))
            .field(
                "test_secret_key",
                &self.test_secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("base_url", &self.base_url)
            .field("timeout_ms", &self.timeout_ms)
            .field("sender", &self.sender)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field(
                "webhook_secrets",
                &format_args!("<{} redacted>", self.webhook_secrets.len()),
            )
            .finish()
    }
}

impl StripeSettings {
    /// The client, when a secret key is configured.
    pub fn client(&self) -> Result<Option<bounty_billing::stripe::StripeClient>, ConfigError> {
        self.client_with(self.secret_key.as_ref(), "stripe.base_url")
    }

    /// The test-mode client, when a test key is configured.
    pub fn test_client(&self) -> Result<Option<bounty_billing::stripe::StripeClient>, ConfigError> {
        self.client_with(self.test_secret_key.as_ref(), "stripe.base_url")
    }

    fn client_with(
        &self,
        key: Option<&SecretString>,
        field: &str,
    ) -> Result<Option<bounty_billing::stripe::StripeClient>, ConfigError> {
        let Some(key) = key else {
            return Ok(None);
        };
        let mut config = bounty_billing::stripe::StripeConfig::new(key.clone());
        config.base_url = self.base_url.clone();
        config.timeout = Duration::from_millis(self.timeout_ms);
        bounty_billing::stripe::StripeClient::new(config)
            .map(Some)
            .map_err(|e| ConfigError(format!("invalid value for `{field}`: {e}")))
    }

    /// The outbox senders over `store`, when sending is on: the live one
    /// when `secret_key` is set, and a test-mode one when
    /// `test_secret_key` is set.
    pub fn senders(
        &self,
        store: &bounty_store::Store,
        outbox: &OutboxSettings,
    ) -> Result<Vec<bounty_billing::outbox::Sender>, ConfigError> {
        if !self.sender {
            return Ok(Vec::new());
        }
        let config = bounty_billing::outbox::SenderConfig {
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            batch: outbox.stripe_batch,
            lease: Duration::from_millis(outbox.stripe_lease_ms),
            failing_notice_after: Duration::from_millis(outbox.stripe_failing_notice_ms),
            concurrency: outbox.stripe_concurrency,
            retry_base: Duration::from_millis(outbox.stripe_retry_base_ms),
            ..Default::default()
        };
        let mut senders = Vec::new();
        if let Some(client) = self.client()? {
            senders.push(bounty_billing::outbox::Sender::new(
                store.clone(),
                client,
                config.clone(),
            ));
        }
        if let Some(client) = self.test_client()? {
            senders.push(bounty_billing::outbox::Sender::new(store.clone(), client, config).test_mode());
        }
        Ok(senders)
    }
}

/// `[worker]`: how tasks are claimed and run.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// Whether `bounty serve` also runs a worker in its own process (the
    /// one-machine setup). Turn off when separate `bounty worker`
    /// processes do the work.
    pub in_serve: bool,
    /// Tasks one worker runs at once.
    pub concurrency: u32,
    /// How long a claim lasts unless renewed (renewed every third of it
    /// while the task runs); a crashed worker's tasks run again after it.
    pub lease_ms: u64,
    /// How often an idle worker looks for due tasks.
    pub poll_interval_ms: u64,
    /// Attempts a task gets before it fails (transient errors only are
    /// retried).
    pub max_attempts: u32,
    /// Base of the jittered exponential backoff between attempts.
    pub retry_base_ms: u64,
    /// Cap of that backoff.
    pub retry_max_ms: u64,
    /// On shutdown, how long running tasks may take to finish before they
    /// are left to their leases.
    pub shutdown_grace_ms: u64,
    /// How often gateway calls made at cost plus markup are billed: one
    /// ledger line (and Stripe meter event) per account and sweep.
    pub gateway_bill_interval_ms: u64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            in_serve: true,
            concurrency: 4,
            lease_ms: 60_000,
            poll_interval_ms: 1_000,
            max_attempts: 3,
            retry_base_ms: 2_000,
            retry_max_ms: 300_000,
            shutdown_grace_ms: 30_000,
            gateway_bill_interval_ms: 60_000,
        }
    }
}

impl WorkerSettings {
    /// The runtime's settings, with a fresh worker id.
    pub fn worker_config(&self) -> bounty_agents::WorkerConfig {
        bounty_agents::WorkerConfig {
            id: bounty_agents::WorkerConfig::default_id(),
            concurrency: self.concurrency,
            lease: Duration::from_millis(self.lease_ms),
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            retry_base: Duration::from_millis(self.retry_base_ms),
            retry_max: Duration::from_millis(self.retry_max_ms),
            shutdown_grace: Duration::from_millis(self.shutdown_grace_ms),
            gateway_bill_interval: Duration::from_millis(self.gateway_bill_interval_ms),
        }
    }
}

/// `[server]`: the HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on. Use `0.0.0.0:8080` to accept
    /// connections from other machines (e.g. in a container).
    pub listen: SocketAddr,
    /// Longest a request may run before it is answered 503, in ms.
    pub request_timeout_ms: u64,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub body_limit_bytes: usize,
    /// After SIGTERM/Ctrl-C, how long in-flight requests may take to
    /// finish before the process exits anyway, in ms.
    pub shutdown_grace_ms: u64,
    /// Mark the dashboard's cookies `Secure`: set it whenever Bounty is
    /// reached over TLS (directly or behind a terminating proxy).
    pub secure_cookies: bool,
    /// Take the client address for the dashboard's login rate limit from
    /// the last `X-Forwarded-For` entry. Only behind a proxy that sets it.
    pub trust_forwarded_for: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout_ms: 30_000,
            body_limit_bytes: 1024 * 1024,
            shutdown_grace_ms: 30_000,
            secure_cookies: false,
            trust_forwarded_for: false,
        }
    }
}

/// `[database]`: where data lives.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (embedded; the file and its directory are created)
    /// or `postgres://USER:PASSWORD@HOST:PORT/DB`. Secret: never logged.
    pub url: SecretString,
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long a query waits for a connection before the database counts
    /// as unavailable (503), in ms.
    pub acquire_timeout_ms: u64,
    /// SQLite only: how long a writer waits for the write lock, in ms.
    pub sqlite_busy_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: SecretString::from("sqlite://bounty-data/bounty.db"),
            max_connections: 10,
            acquire_timeout_ms: 5_000,
            sqlite_busy_timeout_ms: 5_000,
        }
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("sqlite_busy_timeout_ms", &self.sqlite_busy_timeout_ms)
            .finish()
    }
}

impl DatabaseConfig {
    /// The store's connection options.
    pub fn options(&self) -> DatabaseOptions {
        DatabaseOptions {
            url: self.url.expose_secret().to_owned(),
            max_connections: self.max_connections,
            acquire_timeout: Duration::from_millis(self.acquire_timeout_ms),
            sqlite_busy_timeout: Duration::from_millis(self.sqlite_busy_timeout_ms),
        }
    }
}

/// `[log]`: what is logged, and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `bounty_server=debug,info`, …
    /// `RUST_LOG`, when set, takes precedence.
    pub level: String,
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags that override the configuration.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config`.
    pub config_file: Option<PathBuf>,
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `serve --listen`.
    pub listen: Option<SocketAddr>,
}

/// A configuration error: the one line printed before exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads and validates the configuration from every source.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        let file = match &overrides.config_file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError(format!(
                        "config file {} does not exist",
                        path.display()
                    )));
                }
                Some(path.clone())
            }
            None => Some(PathBuf::from("bounty.toml")).filter(|p| p.is_file()),
        };
        let mut figment = Figment::new();
        if let Some(path) = &file {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment
            .merge(Env::raw().only(&["DATABASE_URL"]).map(|_| "database.url".into()))
            // Only `SECTION__KEY` variables are configuration; other BOUNTY_*
            // variables (used by scripts) are not ours to refuse.
            .merge(
                Env::prefixed("BOUNTY_")
                    .filter(|k| k.as_str().contains("__"))
                    .split("__"),
            );
        if let Some(url) = &overrides.database_url {
            figment = figment.merge(Serialized::default("database.url", url));
        }
        if let Some(listen) = overrides.listen {
            figment = figment.merge(Serialized::default("server.listen", listen.to_string()));
        }
        let config: Config = figment.extract().map_err(|e| ConfigError(describe(e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError(format!("invalid value for `{key}`: {why}")));
        if let Err(e) = Backend::of_url(self.database.url.expose_secret()) {
            return bad("database.url", &e.to_string());
        }
        if self.database.max_connections == 0 {
            return bad("database.max_connections", "must be at least 1");
        }
        if self.database.acquire_timeout_ms == 0 {
            return bad("database.acquire_timeout_ms", "must be at least 1");
        }
        if self.server.request_timeout_ms == 0 {
            return bad("server.request_timeout_ms", "must be at least 1");
        }
        if self.server.body_limit_bytes == 0 {
            return bad("server.body_limit_bytes", "must be at least 1");
        }
        let o = &self.outbox;
        for (key, value) in [
            ("outbox.stripe_batch", u64::from(o.stripe_batch)),
            ("outbox.stripe_lease_ms", o.stripe_lease_ms),
            ("outbox.stripe_failing_notice_ms", o.stripe_failing_notice_ms),
            ("outbox.stripe_concurrency", o.stripe_concurrency as u64),
            ("outbox.stripe_retry_base_ms", o.stripe_retry_base_ms),
            ("outbox.reply_batch", u64::from(o.reply_batch)),
            ("outbox.reply_lease_ms", o.reply_lease_ms),
            ("outbox.per_destination", o.per_destination as u64),
            ("intake.batchers", self.intake.batchers as u64),
            ("intake.max_batch", self.intake.max_batch as u64),
        ] {
            if value == 0 {
                return bad(key, "must be at least 1");
            }
        }
        if o.reply_retry_schedule_ms.is_empty() {
            return bad(
                "outbox.reply_retry_schedule_ms",
                "must name at least one try (the first, usually 0)",
            );
        }
        let w = &self.worker;
        for (key, value) in [
            ("worker.concurrency", u64::from(w.concurrency)),
            ("worker.lease_ms", w.lease_ms),
            ("worker.poll_interval_ms", w.poll_interval_ms),
            ("worker.max_attempts", u64::from(w.max_attempts)),
            ("worker.retry_base_ms", w.retry_base_ms),
            ("worker.retry_max_ms", w.retry_max_ms),
            ("worker.gateway_bill_interval_ms", w.gateway_bill_interval_ms),
        ] {
            if value == 0 {
                return bad(key, "must be at least 1");
            }
        }
        if w.lease_ms < 300 {
            return bad("worker.lease_ms", "must be at least 300");
        }
        self.knowledge_embedder(&self.model_registry()?)?;
        self.stripe.client()?;
        self.secrets.keyring()?;
        if self.stripe.timeout_ms == 0 || self.stripe.poll_interval_ms == 0 {
            return bad("stripe.timeout_ms", "timeouts and intervals must be at least 1");
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return bad("log.level", &e.to_string());
        }
        if let Ok(filter) = std::env::var("RUST_LOG")
            && let Err(e) = tracing_subscriber::EnvFilter::try_new(&filter)
        {
            return bad("RUST_LOG", &e.to_string());
        }
        Ok(())
    }

    /// The models and embedding models, validated (files exist and are
    /// GGUF, URLs and prices parse); none is loaded.
    pub fn model_registry(&self) -> Result<ModelRegistry, ConfigError> {
        ModelRegistry::from_config_with(&self.models, self.tools.outbound_policy())
            .and_then(|registry| registry.with_embeddings(&self.embeddings))
            .map_err(|e| {
                ConfigError(format!(
                    "invalid value for `{}.{}.{}`: {}",
                    e.section, e.model, e.key, e.message
                ))
            })
    }

    /// The embedding model `[knowledge] embedding_model` names, from
    /// `registry`; `None` when it is unset.
    pub fn knowledge_embedder(
        &self,
        registry: &ModelRegistry,
    ) -> Result<Option<std::sync::Arc<bounty_models::Embedder>>, ConfigError> {
        let Some(name) = &self.knowledge.embedding_model else {
            return Ok(None);
        };
        registry.embedder(name).cloned().map(Some).ok_or_else(|| {
            ConfigError(format!(
                "invalid value for `knowledge.embedding_model`: `{name}` is not an [embeddings.{name}] table"
            ))
        })
    }

    /// The backend the database URL names.
    pub fn backend(&self) -> Backend {
        // Validated at load.
        Backend::of_url(self.database.url.expose_secret()).unwrap_or(Backend::Sqlite)
    }
}

/// figment's errors carry the key and where the value came from; keep
/// those, drop its "default." profile prefix, and print one line.
fn describe(e: figment::Error) -> String {
    let mut line = String::new();
    for (i, err) in e.into_iter().enumerate() {
        if i > 0 {
            line.push_str("; ");
        }
        let key = err.path.join(".");
        // Keep the one-line summary (TOML errors append a source excerpt).
        let kind = err
            .kind
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let origin = err
            .metadata
            .as_ref()
            .map(|m| match &m.source {
                Some(figment::Source::File(p)) => format!(" (in {})", display_path(p)),
                _ => format!(" (from {})", m.name),
            })
            .unwrap_or_default();
        if key.is_empty() {
            line.push_str(&format!("invalid configuration: {kind}{origin}"));
        } else {
            line.push_str(&format!("invalid value for `{key}`: {kind}{origin}"));
        }
    }
    line
}

fn display_path(p: &Path) -> String {
    p.file_name()
        .map_or_else(|| p.display().to_string(), |f| f.to_string_lossy().into_owned())
}
