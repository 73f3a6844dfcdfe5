//! `bounty serve`: the HTTP API until SIGTERM or Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use bounty_agents::Worker;
use bounty_models::Router;
use tokio::sync::Notify;

use anyhow::Context;
use bounty_server::{AppState, Limits};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::commands::{cancel_on_signal, open_store};
use crate::config::Config;

pub async fn serve(config: Config, args: ServeArgs) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let registry = Arc::new(config.model_registry().context("invalid model configuration")?);
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
    let wake = Arc::new(Notify::new());
    let worker = (config.worker.in_serve && !args.no_worker).then(|| {
        let worker = Worker::new(
            store.clone(),
            Router::new(Arc::clone(&registry)),
            config.worker.worker_config(),
        )
        .with_wake(Arc::clone(&wake));
        tokio::spawn(worker.run(shutdown.clone()))
    });
    let sender = config
        .stripe
        .sender(&store)
        .context("invalid Stripe configuration")?;
    let stripe = config.stripe.client().context("invalid Stripe configuration")?;
    if stripe.is_none() {
        tracing::warn!(
            "Stripe is not configured ([stripe] secret_key): ledger-only, meter events wait in the outbox"
        );
    }
    let in_serve = config.worker.in_serve && !args.no_worker;
    let sender = if in_serve { sender } else { None }.map(|s| tokio::spawn(s.run(shutdown.clone())));
    let replies = if in_serve {
        config
            .secrets
            .reply_sender(&store, Duration::from_millis(config.worker.poll_interval_ms))?
    } else {
        None
    }
    .map(|r| tokio::spawn(r.run(shutdown.clone())));
    let state = AppState::new(store.clone(), limits)
        .with_stripe(stripe)
        .with_keyring(config.secrets.keyring()?)
        .with_stripe_webhook_secrets(config.stripe.webhook_secrets.clone())
        .with_models(registry)
        .with_task_max_attempts(config.worker.max_attempts)
        .with_task_wake(wake);
    let app = bounty_server::app(state);
    bounty_server::serve(
        listener,
        app,
        shutdown,
        Duration::from_millis(config.server.shutdown_grace_ms),
    )
    .await
    .context("the HTTP server failed")?;
    for sender in [sender, replies].into_iter().flatten() {
        let _ = sender.await;
    }
    if let Some(worker) = worker {
        // The server is down; the worker was cancelled with it and is
        // finishing its running tasks within its own grace.
        if let Err(e) = worker.await {
            tracing::error!(error = %e, "the in-process worker panicked");
        }
    }
    store.close().await;
    tracing::info!("bounty stopped");
    Ok(())
}
