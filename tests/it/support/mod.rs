//! Test support: [`TestApp`] runs the real server in-process over a fresh
//! database of either backend, with one helper method per endpoint.

pub mod billing;
pub mod knowledge_fakes;
pub mod logged;
pub mod proxy;
pub mod stripe;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bounty_agents::{Worker, WorkerConfig};
use bounty_core::{AccountName, ApiKeyMode, ApiKeySecret, KeyName, SystemClock};
use bounty_models::{ModelConfig, ModelRegistry, Router};
use bounty_server::{AppState, Limits};
use bounty_store::{DatabaseOptions, Store};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use bounty_store::testing::{Backend, TestDatabase};

/// Generates one `#[tokio::test]` per backend for each listed
/// `async fn name(backend: Backend)` in the calling module.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Options for [`TestApp::spawn_with`].
#[derive(Debug, Clone)]
pub struct TestOptions {
    /// Request limits.
    pub limits: Limits,
    /// How long a query waits for a connection.
    pub acquire_timeout: Duration,
    /// Route Postgres traffic through a [`proxy::Proxy`] the test controls.
    pub proxy: bool,
    /// `[models.NAME]` tables, as JSON.
    pub models: Vec<(String, Value)>,
    /// Run an in-process worker with these settings.
    pub worker: Option<WorkerConfig>,
    /// Attempts each task gets.
    pub max_attempts: u32,
    /// Stripe webhook signing secrets.
    pub stripe_webhook_secrets: Vec<String>,
    /// Give the server a Stripe client for this base URL (a fake Stripe).
    pub stripe_base_url: Option<String>,
    /// Give the server a fresh master key for sealing secrets.
    pub master_key: bool,
    /// `tools.allow_private`: let BYOK endpoints (and later tools) reach
    /// loopback, where the test fakes listen.
    pub allow_private: bool,
    /// `[embeddings.NAME]` tables, as JSON.
    pub embeddings: Vec<(String, Value)>,
    /// `[knowledge] embedding_model`: one of `embeddings`.
    pub knowledge_embedding_model: Option<String>,
    /// `[gateway]`: gateway models beyond the configured ones.
    pub gateway: bounty_server::gateway::GatewaySettings,
    /// `webhooks.allow_private`: let webhook endpoints be loopback URLs
    /// (a test receiver).
    pub webhooks_allow_private: bool,
    /// `[intake]`: how new work is committed.
    pub group: bounty_store::GroupCommit,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            limits: Limits::default(),
            acquire_timeout: Duration::from_secs(5),
            proxy: false,
            models: Vec::new(),
            worker: None,
            max_attempts: 3,
            stripe_webhook_secrets: Vec::new(),
            stripe_base_url: None,
            master_key: true,
            allow_private: false,
            embeddings: Vec::new(),
            knowledge_embedding_model: None,
            gateway: bounty_server::gateway::GatewaySettings::default(),
            webhooks_allow_private: false,
            group: bounty_store::GroupCommit::default(),
        }
    }
}

impl TestOptions {
    /// Options with these OpenAI-compatible models: `(name, base_url)`.
    pub fn remote_models(models: &[(&str, &str)]) -> TestOptions {
        TestOptions {
            models: models
                .iter()
                .map(|(name, url)| ((*name).to_owned(), remote_model(url)))
                .collect(),
            ..TestOptions::default()
        }
    }
}

/// The `bounty` binary with a clean environment (no stray configuration
/// from the machine), run in `dir`.
pub fn bounty_command(dir: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_bounty"));
    cmd.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("BOUNTY_CONFIG")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("BOUNTY_") && k.contains("__") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Sends SIGTERM and waits (up to 20 s) for the process to exit.
pub fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "bounty did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A verifier policy that decides at once, with no external signal to
/// wait for: a reply that is not empty is resolved (and charged). Tests
/// whose point is not the waiting for a signal give agents this; an agent
/// given no policy gets the default, which waits (see `agents::`).
pub fn verified_at_once() -> Value {
    serde_json::json!({"verifiers": [{"kind": "rules", "non_empty": true}]})
}

/// A base URL where nothing listens.
pub const NOWHERE: &str = "http://127.0.0.1:9/v1";

/// Worker settings fast enough for tests.
pub fn test_worker() -> WorkerConfig {
    WorkerConfig {
        id: WorkerConfig::default_id(),
        concurrency: 4,
        lease: Duration::from_secs(10),
        poll_interval: Duration::from_millis(50),
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(5),
        gateway_bill_interval: Duration::from_millis(200),
    }
}

/// A `[models.NAME]` table of an OpenAI-compatible model at `base_url`.
pub fn remote_model(base_url: &str) -> Value {
    serde_json::json!({
        "provider": "openai",
        "base_url": base_url,
        "model": "fake-gpt",
        "api_key": "sk-test-secret",
        "request_timeout_ms": 2000,
        "max_retries": 1,
        "retry_base_ms": 10,
        "retry_max_ms": 50,
        "price": {"input_per_million": "0.15", "output_per_million": "0.60"}
    })
}

/// A `[models.NAME]` table of a local GGUF.
pub fn local_model(path: &std::path::Path) -> Value {
    serde_json::json!({
        "provider": "llama",
        "path": path,
        "context_size": 512,
        "threads": 2,
        "defaults": {"max_tokens": 16},
        "price": {"per_cpu_second": "0.0001"}
    })
}

/// The real server on a free port over a fresh database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The store the server uses, for arranging data directly.
    pub store: Store,
    /// An HTTP client.
    pub client: reqwest::Client,
    /// The database proxy, when asked for.
    pub proxy: Option<proxy::Proxy>,
    /// The master keys the server seals secrets with, when it has them.
    pub keyring: Option<bounty_integrations::Keyring>,
    /// The server's gateway (to flush its call recorder).
    pub gateway: Arc<bounty_server::gateway::Gateway>,
    shutdown: CancellationToken,
    _worker: Option<tokio::task::JoinHandle<()>>,
    _server: tokio::task::JoinHandle<std::io::Result<()>>,
    // Dropped last: the database outlives the server.
    _db: TestDatabase,
}

impl TestApp {
    /// Spawns the server with default options.
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, TestOptions::default()).await
    }

    /// Spawns the server with `opts`.
    pub async fn spawn_with(backend: Backend, opts: TestOptions) -> TestApp {
        let db = TestDatabase::create(backend).await;
        let (url, proxy) = if opts.proxy {
            let upstream = db.postgres_addr().expect("a proxy needs Postgres");
            let proxy = proxy::Proxy::start(upstream).await;
            (db.url_via(proxy.addr()), Some(proxy))
        } else {
            (db.url().to_owned(), None)
        };
        let store = Store::connect(
            &DatabaseOptions {
                url,
                max_connections: 5,
                acquire_timeout: opts.acquire_timeout,
                sqlite_busy_timeout: Duration::from_secs(5),
            },
            Arc::new(SystemClock),
        )
        .await
        .expect("connect to the test database")
        .with_group_commit(opts.group);
        store.migrate().await.expect("migrate the test database");
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let models: std::collections::BTreeMap<String, ModelConfig> = opts
            .models
            .iter()
            .map(|(name, v)| {
                (
                    name.clone(),
                    serde_json::from_value(v.clone()).expect("a valid model table"),
                )
            })
            .collect();
        let outbound = bounty_outbound::OutboundPolicy {
            allow_private: opts.allow_private,
            ..bounty_outbound::OutboundPolicy::default()
        };
        let embeddings: std::collections::BTreeMap<String, bounty_models::EmbeddingConfig> = opts
            .embeddings
            .iter()
            .map(|(name, v)| {
                (
                    name.clone(),
                    serde_json::from_value(v.clone()).expect("a valid embeddings table"),
                )
            })
            .collect();
        let registry = Arc::new(
            ModelRegistry::from_config_with(&models, outbound)
                .and_then(|r| r.with_embeddings(&embeddings))
                .expect("valid models"),
        );
        let knowledge_embedder = opts
            .knowledge_embedding_model
            .as_deref()
            .map(|name| Arc::clone(registry.embedder(name).expect("a configured embedding model")));
        let wake = Arc::new(tokio::sync::Notify::new());
        let keyring = opts.master_key.then(|| {
            bounty_integrations::Keyring::new(
                "k1".parse().expect("a valid key id"),
                bounty_integrations::SealKey::generate().expect("the OS random generator"),
            )
        });
        let worker = opts.worker.clone().map(|config| {
            let opener = keyring.clone().map(|k| {
                let open: bounty_agents::OpenSecret =
                    Arc::new(move |sealed: &str, aad: &[u8]| k.open_text(sealed, aad));
                open
            });
            let worker = Worker::new(store.clone(), Router::new(Arc::clone(&registry)), config)
                .with_wake(Arc::clone(&wake))
                .with_secrets(opener)
                .with_outbound(outbound)
                .with_knowledge_embedder(knowledge_embedder.clone());
            tokio::spawn(worker.run(shutdown.clone()))
        });
        let stripe = opts.stripe_base_url.as_ref().map(|url| {
            let mut config = bounty_billing::stripe::StripeConfig::new(
                bounty_billing::testing::FakeStripe::SECRET_KEY.to_owned().into(),
            );
            config.base_url = url.clone();
            config.timeout = Duration::from_secs(2);
            bounty_billing::stripe::StripeClient::new(config).expect("a valid Stripe config")
        });
        let state = AppState::new(store.clone(), opts.limits)
            .with_stripe(stripe)
            .with_keyring(keyring.clone())
            .with_models(registry)
            .with_outbound(outbound)
            .with_webhooks_outbound(bounty_outbound::OutboundPolicy {
                allow_private: opts.webhooks_allow_private,
                ..bounty_outbound::OutboundPolicy::default()
            })
            .with_knowledge_embedder(knowledge_embedder)
            .with_task_max_attempts(opts.max_attempts)
            .with_task_wake(wake)
            .with_stripe_webhook_secrets(
                opts.stripe_webhook_secrets
                    .iter()
                    .map(|s| s.clone().into())
                    .collect(),
            )
            .with_gateway(&opts.gateway)
            .expect("valid gateway settings");
        let gateway = Arc::clone(&state.gateway);
        let app = bounty_server::app(state);
        let server = tokio::spawn(bounty_server::serve(
            listener,
            app,
            shutdown.clone(),
            Duration::from_secs(5),
        ));
        TestApp {
            base,
            store,
            client: reqwest::Client::new(),
            proxy,
            keyring,
            gateway,
            shutdown,
            _worker: worker,
            _server: server,
            _db: db,
        }
    }

    /// Another store over the same database, reading time from `clock`:
    /// for moving time past windows and leases.
    pub async fn store_with_clock(&self, clock: Arc<dyn bounty_core::Clock>) -> Store {
        store_at(self.database_url(), clock).await
    }

    /// Creates an account with one live key; returns (account id, key).
    pub async fn create_account(&self, name: &str) -> (bounty_core::AccountId, String) {
        let key = ApiKeySecret::generate(ApiKeyMode::Live);
        let (account, _) = self
            .store
            .create_account(
                &AccountName::parse(name).unwrap(),
                &KeyName::parse("default").unwrap(),
                &key,
            )
            .await
            .expect("create account");
        (account.id, key.secret.expose().to_owned())
    }

    /// Gives `account` a Stripe customer (`cus_…`) through the outbox's own
    /// path, as the sender would after Stripe made it; returns its id.
    pub async fn stripe_customer(&self, account: bounty_core::AccountId) -> String {
        let claim = self
            .store
            .claim_outbox(ApiKeyMode::Live, 10, Duration::from_secs(60))
            .await
            .unwrap()
            .into_iter()
            .find(|c| {
                c.item.kind == bounty_core::outbox::OutboxKind::StripeCustomer && c.item.account_id == account
            })
            .expect("the account's customer row");
        let customer = format!("cus_{}", &account.to_string()[5..15]);
        let delivered = bounty_store::Delivered {
            object_id: Some(customer.clone()),
            sent_as: None,
        };
        self.store.outbox_sent(claim.item.id, &delivered).await.unwrap();
        customer
    }

    /// A request to `path` with `key` as bearer token, if any.
    pub fn request(&self, method: Method, path: &str, key: Option<&str>) -> RequestBuilder {
        let rb = self.client.request(method, format!("{}{path}", self.base));
        match key {
            Some(k) => rb.bearer_auth(k),
            None => rb,
        }
    }

    /// `GET /v1/account`.
    pub async fn get_account(&self, key: &str) -> Response {
        self.request(Method::GET, "/v1/account", Some(key))
            .send()
            .await
            .unwrap()
    }

    /// `POST /v1/api-keys` with a JSON body.
    pub async fn create_key(&self, key: &str, body: &Value) -> Response {
        self.request(Method::POST, "/v1/api-keys", Some(key))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `GET /v1/api-keys?{query}`.
    pub async fn list_keys(&self, key: &str, query: &str) -> Response {
        self.request(Method::GET, &format!("/v1/api-keys?{query}"), Some(key))
            .send()
            .await
            .unwrap()
    }

    /// `GET /v1/api-keys/{id}`.
    pub async fn get_key(&self, key: &str, id: &str) -> Response {
        self.request(Method::GET, &format!("/v1/api-keys/{id}"), Some(key))
            .send()
            .await
            .unwrap()
    }

    /// `DELETE /v1/api-keys/{id}`.
    pub async fn revoke_key(&self, key: &str, id: &str) -> Response {
        self.request(Method::DELETE, &format!("/v1/api-keys/{id}"), Some(key))
            .send()
            .await
            .unwrap()
    }

    /// The database URL, for other processes.
    pub fn database_url(&self) -> &str {
        self._db.url()
    }

    /// `POST /v1/agents`.
    pub async fn create_agent(&self, key: &str, body: &Value) -> Response {
        self.request(Method::POST, "/v1/agents", Some(key))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates an agent on `route`, verified at once ([`verified_at_once`]);
    /// returns its JSON.
    pub async fn agent(&self, key: &str, name: &str, route: &[&str], schema: Option<Value>) -> Value {
        let mut body = serde_json::json!({
            "name": name,
            "instructions": "You are a helpful support agent.",
            "model_route": route,
            "verifier_policy": verified_at_once(),
        });
        if let Some(schema) = schema {
            body["output_schema"] = schema;
        }
        json_of(self.create_agent(key, &body).await, 201).await
    }

    /// `POST /v1/tasks`, with an `Idempotency-Key` when given.
    pub async fn create_task(&self, key: &str, body: &Value, idempotency_key: Option<&str>) -> Response {
        let mut rb = self.request(Method::POST, "/v1/tasks", Some(key)).json(body);
        if let Some(k) = idempotency_key {
            rb = rb.header("idempotency-key", k);
        }
        rb.send().await.unwrap()
    }

    /// Queues a task for `agent` with `body` as its text; returns its JSON.
    pub async fn task(&self, key: &str, agent: &str, body: &str) -> Value {
        let req = serde_json::json!({"agent": agent, "input": {"subject": "Help", "body": body}});
        json_of(self.create_task(key, &req, None).await, 202).await
    }

    /// `GET /v1/tasks/{id}`, asserting 200.
    pub async fn get_task(&self, key: &str, id: &str) -> Value {
        let resp = self
            .request(Method::GET, &format!("/v1/tasks/{id}"), Some(key))
            .send()
            .await
            .unwrap();
        json_of(resp, 200).await
    }

    /// `GET /v1/outcomes/{id}`, asserting 200.
    pub async fn get_outcome(&self, key: &str, id: &str) -> Value {
        let resp = self
            .request(Method::GET, &format!("/v1/outcomes/{id}"), Some(key))
            .send()
            .await
            .unwrap();
        json_of(resp, 200).await
    }

    /// The account a key belongs to.
    pub async fn account_of(&self, key: &str) -> bounty_core::AccountId {
        json_of(self.get_account(key).await, 200).await["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The inference cost of an outcome the API returned, in micros, read
    /// from the store: the operator's figure, which the customer's API
    /// never shows.
    pub async fn inference_cost(&self, key: &str, outcome: &Value) -> i64 {
        let account = self.account_of(key).await;
        let id: bounty_core::OutcomeId = outcome["id"].as_str().unwrap().parse().unwrap();
        self.store
            .get_outcome(account, id)
            .await
            .unwrap()
            .expect("the outcome is stored")
            .inference_cost
            .micros
    }

    /// Model calls of a task, as the store recorded them, with what each
    /// cost us: the operator's view, which the customer's API never shows.
    pub async fn call_costs(&self, key: &str, task: &Value) -> Vec<i64> {
        let account = self.account_of(key).await;
        let id: bounty_core::TaskId = task["id"].as_str().unwrap().parse().unwrap();
        self.store
            .model_calls(account, id)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.call.cost.micros)
            .collect()
    }

    /// Polls a task until its status is final; panics after `timeout`.
    pub async fn wait_for_task(&self, key: &str, id: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let task = self.get_task(key, id).await;
            if matches!(task["status"].as_str(), Some("completed" | "failed")) {
                return task;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "task {id} did not finish in {timeout:?}: {task}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `method path` with `key`, and `body` as JSON when given.
    pub async fn call(&self, method: Method, path: &str, key: &str, body: Option<&Value>) -> Response {
        let request = self.request(method, path, Some(key));
        match body {
            Some(b) => request.json(b),
            None => request,
        }
        .send()
        .await
        .unwrap()
    }

    /// `GET {path}` without a key.
    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, None).send().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Reads a response's JSON body, asserting its status first.
pub async fn json_of(resp: Response, status: u16) -> Value {
    let actual = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts an error response: status, stable code, and optionally param.
pub async fn assert_error(resp: Response, status: u16, code: &str) -> Value {
    let body = json_of(resp, status).await;
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "body: {body}"
    );
    body
}

/// A store over the database at `url`, reading time from `clock`.
pub async fn store_at(url: &str, clock: Arc<dyn bounty_core::Clock>) -> Store {
    Store::connect(
        &DatabaseOptions {
            url: url.to_owned(),
            max_connections: 3,
            acquire_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
        },
        clock,
    )
    .await
    .expect("connect to the test database")
}

/// A migrated store over a test database, reading time from `clock`.
pub async fn migrated_store(db: &TestDatabase, clock: Arc<dyn bounty_core::Clock>) -> Store {
    let store = store_at(db.url(), clock).await;
    store.migrate().await.expect("migrate");
    store
}

/// The kinds of an outcome's transfers (`GET /v1/outcomes/{id}`), sorted.
pub fn transfer_kinds(outcome: &Value) -> Vec<String> {
    let mut k: Vec<String> = outcome["transfers"]
        .as_array()
        .expect("transfers")
        .iter()
        .map(|t| t["kind"].as_str().expect("kind").to_owned())
        .collect();
    k.sort();
    k
}
