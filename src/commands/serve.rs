//! `bounty serve`: the HTTP API until SIGTERM or Ctrl-C.

use std::time::Duration;

use anyhow::Context;
use bounty_server::{AppState, Limits};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::commands::open_store;
use crate::config::Config;

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let limits = Limits {
        body_limit_bytes: config.server.body_limit_bytes,
        request_timeout: Duration::from_millis(config.server.request_timeout_ms),
        ..Limits::default()
    };
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {} (server.listen)", config.server.listen))?;
    let addr = listener.local_addr().context("the listener has no address")?;
    tracing::info!(%addr, backend = ?store.backend(), "bounty listening");
    // A plain line on stdout for people and scripts (`--listen 127.0.0.1:0`).
    println!("bounty listening on http://{addr}");

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let app = bounty_server::app(AppState::new(store.clone(), limits));
    bounty_server::serve(
        listener,
        app,
        shutdown,
        Duration::from_millis(config.server.shutdown_grace_ms),
    )
    .await
    .context("the HTTP server failed")?;
    store.close().await;
    tracing::info!("bounty stopped");
    Ok(())
}

/// Cancels `token` on the first SIGTERM or Ctrl-C.
async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
    token.cancel();
}
