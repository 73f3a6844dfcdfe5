//! Bounty as the gateway under test: the real server, in process.
//!
//! A fresh SQLite file, one account with a live key and an agent named
//! `gateway` (which the calls' tasks belong to), and one remote model
//! named `upstream` whose `base_url` is the fake upstream. By default every
//! configured model is also a gateway model with a one-model route, so the
//! OpenAI-compatible endpoints answer `model: "upstream"` through the
//! router, the price book and the call records exactly as in production.
//!
//! The server runs on its own thread with a one-worker tokio runtime (the
//! SQLite connections have their own threads, as always with sqlx), so
//! that on two cores it neither shares a scheduler with the load generator
//! nor with the upstream.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use bounty_core::{AccountName, ApiKeyMode, ApiKeySecret, KeyName, SystemClock};
use bounty_models::{ModelConfig, ModelRegistry};
use bounty_server::{AppState, Limits};
use bounty_store::{DatabaseOptions, Store};
use tokio_util::sync::CancellationToken;

/// The running server.
pub struct Bounty {
    /// `http://127.0.0.1:PORT/v1`.
    pub base: String,
    /// The account's live key.
    pub key: String,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Bounty {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts Bounty with `upstream` (`http://…/v1`) as the model `upstream`,
/// served as `bounty serve` serves it (`bounty_server::serve`), or with
/// `nodelay` behind a listener that sets TCP_NODELAY on each connection.
pub fn start(upstream: &str, nodelay: bool) -> Bounty {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let upstream = upstream.to_owned();
    let thread = std::thread::Builder::new()
        .name("bounty".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("bounty-worker")
                .enable_all()
                .build()
                .expect("bounty runtime");
            rt.block_on(async move {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("gateway.db").display());
                let store = Store::connect(
                    &DatabaseOptions {
                        url,
                        max_connections: 16,
                        acquire_timeout: Duration::from_secs(10),
                        sqlite_busy_timeout: Duration::from_secs(5),
                    },
                    Arc::new(SystemClock),
                )
                .await
                .expect("connect");
                store.migrate().await.expect("migrate");
                let key = ApiKeySecret::generate(ApiKeyMode::Live);
                let (account, _) = store
                    .create_account(
                        &AccountName::parse("Gateway bench").unwrap(),
                        &KeyName::parse("bench").unwrap(),
                        &key,
                    )
                    .await
                    .expect("account");
                // Calls that name a task (`Bounty-Task`) belong to the
                // account's agent named `gateway` when they name no other.
                store
                    .create_agent(account.id, &crate::common::verified_agent("gateway", "upstream"))
                    .await
                    .expect("gateway agent");
                let config = serde_json::json!({
                    "provider": "openai",
                    "base_url": upstream,
                    "model": "upstream",
                    "api_key": "sk-fake",
                    "max_retries": 0,
                    "request_timeout_ms": 15_000,
                    "price": {
                        "input_per_million": "0.15",
                        "cached_input_per_million": "0.075",
                        "output_per_million": "0.60",
                        "reasoning_per_million": "0.60",
                    },
                });
                let models: BTreeMap<String, ModelConfig> = BTreeMap::from([(
                    "upstream".to_owned(),
                    serde_json::from_value(config).expect("model config"),
                )]);
                let registry = ModelRegistry::from_config(&models).expect("registry");
                let state = AppState::new(store, Limits::default()).with_models(Arc::new(registry));
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let base = format!("http://{}/v1", listener.local_addr().unwrap());
                ready_tx
                    .send((base, key.secret.expose().to_owned()))
                    .expect("report readiness");
                if nodelay {
                    // Diagnostic only: Bounty's app behind a listener that
                    // sets TCP_NODELAY, which `bounty_server::serve` does
                    // not (yet) do.
                    let listener = listener.tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                    let app = bounty_server::app(state)
                        .into_make_service_with_connect_info::<std::net::SocketAddr>();
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move { stop.cancelled().await })
                        .await;
                } else {
                    let _ = bounty_server::serve(
                        listener,
                        bounty_server::app(state),
                        stop,
                        Duration::from_secs(5),
                    )
                    .await;
                }
                drop(dir);
            });
        })
        .expect("bounty thread");
    let (base, key) = ready_rx.recv().expect("bounty started");
    Bounty {
        base,
        key,
        shutdown,
        thread: Some(thread),
    }
}
