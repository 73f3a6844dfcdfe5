//! `bounty worker`: claim and run tasks until SIGTERM or Ctrl-C.

use std::sync::Arc;

use anyhow::Context;
use bounty_agents::Worker;
use bounty_models::Router;
use tokio_util::sync::CancellationToken;

use crate::cli::WorkerArgs;
use crate::commands::{cancel_on_signal, open_store};
use crate::config::Config;

pub async fn worker(config: Config, args: WorkerArgs) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let registry = Arc::new(config.model_registry().context("invalid model configuration")?);
    if registry.is_empty() {
        tracing::warn!(
            "no models are configured ([models.NAME]); every task will fail with model_not_configured"
        );
    }
    let mut settings = config.worker.worker_config();
    if let Some(n) = args.concurrency {
        anyhow::ensure!(n > 0, "--concurrency must be at least 1");
        settings.concurrency = n;
    }
    let keyring = config.secrets.keyring()?;
    let knowledge_embedder = config.knowledge_embedder(&registry)?;
    let worker = Worker::new(store.clone(), Router::new(registry), settings)
        .with_secrets(super::secret_opener(keyring.as_ref()))
        .with_outbound(config.tools.outbound_policy())
        .with_knowledge_embedder(knowledge_embedder);
    // A plain line on stdout for people and scripts.
    println!(
        "bounty worker {} started (concurrency {}, {:?})",
        worker.config().id,
        worker.config().concurrency,
        store.backend()
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let senders = config
        .stripe
        .senders(&store, &config.outbox)
        .context("invalid Stripe configuration")?;
    if config.stripe.secret_key.is_none() {
        tracing::warn!(
            "Stripe is not configured ([stripe] secret_key): ledger-only, meter events wait in the outbox"
        );
    }
    let senders: Vec<_> = senders
        .into_iter()
        .map(|s| tokio::spawn(s.run(shutdown.clone())))
        .collect();
    let replies = config
        .secrets
        .reply_sender(
            &store,
            &config.outbox,
            std::time::Duration::from_millis(config.worker.poll_interval_ms),
        )?
        .map(|r| tokio::spawn(r.run(shutdown.clone())));
    let webhooks = config
        .secrets
        .webhook_sender(
            &store,
            &config.outbox,
            &config.webhooks,
            std::time::Duration::from_millis(config.worker.poll_interval_ms),
        )?
        .map(|w| tokio::spawn(w.run(shutdown.clone())));
    let mailer = config
        .mail
        .mailer(
            &store,
            std::time::Duration::from_millis(config.worker.poll_interval_ms),
        )?
        .map(|m| tokio::spawn(m.run(shutdown.clone())));
    worker.run(shutdown).await;
    for sender in senders.into_iter().chain(replies).chain(webhooks).chain(mailer) {
        let _ = sender.await;
    }
    store.close().await;
    Ok(())
}
