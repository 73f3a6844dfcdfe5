//! Test support: [`TestApp`] runs the real server in-process over a fresh
//! database of either backend, with one helper method per endpoint.

pub mod db;
pub mod proxy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bounty_core::{AccountName, ApiKeyMode, ApiKeySecret, KeyName, SystemClock};
use bounty_server::{AppState, Limits};
use bounty_store::{DatabaseOptions, Store};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use db::{Backend, TestDatabase};

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
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            limits: Limits::default(),
            acquire_timeout: Duration::from_secs(5),
            proxy: false,
        }
    }
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
    shutdown: CancellationToken,
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
        .expect("connect to the test database");
        store.migrate().await.expect("migrate the test database");
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let app = bounty_server::app(AppState::new(store.clone(), opts.limits));
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
            shutdown,
            _server: server,
            _db: db,
        }
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
