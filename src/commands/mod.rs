//! One module per command; each wires configuration to the crates.

mod accounts;
mod api_keys;
mod billing;
mod demo;
mod distill;
mod knowledge;
mod models;
mod outbox;
mod outcomes;
mod report;
mod serve;
mod stripe;
mod student;
mod users;
mod worker;

use std::sync::Arc;

use anyhow::Context;
use bounty_core::SystemClock;
use bounty_store::Store;
use tokio_util::sync::CancellationToken;

use crate::cli::Command;
use crate::config::Config;

/// Runs one command to completion.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::serve(config, args).await,
        Command::Worker(args) => worker::worker(config, args).await,
        Command::Models(cmd) => models::run(cmd, &config).await,
        Command::Usage(args) => billing::usage(args, &open_store(&config).await?).await,
        Command::Report(cmd) => report::run(cmd, &open_store(&config).await?).await,
        Command::Credits(cmd) => billing::credits(cmd, &open_store(&config).await?).await,
        Command::Outcomes(cmd) => outcomes::run(cmd, &open_store(&config).await?).await,
        Command::Billing(cmd) => billing::billing(cmd, &config, &open_store(&config).await?).await,
        Command::Stripe(cmd) => stripe::run(cmd, &config, &open_store(&config).await?).await,
        Command::Users(cmd) => users::run(cmd, &open_store(&config).await?).await,
        Command::Secrets(crate::cli::SecretsCommand::NewKey) => {
            let key = bounty_integrations::SealKey::generate().context("the OS random generator failed")?;
            println!(
                "k{}:{}",
                chrono::Utc::now().format("%Y%m%d"),
                key.to_base64().as_str()
            );
            Ok(())
        }
        Command::Outbox(cmd) => outbox::run(cmd, &open_store(&config).await?).await,
        Command::Integrations(cmd) => {
            let keyring = config.secrets.keyring()?;
            outbox::integrations(cmd, &open_store(&config).await?, keyring.as_ref()).await
        }
        Command::Migrate => {
            let store = open_store(&config).await?;
            println!("migrations applied ({} in this binary)", store.migration_count());
            Ok(())
        }
        Command::Accounts(cmd) => accounts::run(cmd, &open_store(&config).await?).await,
        Command::ApiKeys(cmd) => api_keys::run(cmd, &open_store(&config).await?).await,
        Command::Distill(cmd) => distill::run(cmd, &open_store(&config).await?).await,
        Command::Knowledge(cmd) => knowledge::run(cmd, &config, &open_store(&config).await?).await,
    }
}

/// Input the operator must fix (a flag's value, an account or agent that
/// does not exist), as opposed to a failure along the way: `main` exits
/// with status 2 for it, as clap does for a flag it cannot parse.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// How a worker opens accounts' own (BYOK) keys: with the master keys,
/// when they are configured.
pub fn secret_opener(keyring: Option<&bounty_integrations::Keyring>) -> Option<bounty_agents::OpenSecret> {
    let keyring = Arc::new(keyring?.clone());
    Some(Arc::new(move |sealed: &str, aad: &[u8]| {
        keyring.open_text(sealed, aad)
    }))
}

/// Connects to the configured database and applies pending migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let backend = config.backend();
    let store = Store::connect(&config.database.options(), Arc::new(SystemClock))
        .await
        .with_context(|| format!("cannot open the {backend:?} database (database.url)"))?;
    store.migrate().await.context("cannot migrate the database")?;
    Ok(store
        .with_events(config.webhooks.events)
        .with_group_commit(config.intake.group_commit()))
}

/// Cancels `token` on the first SIGTERM or Ctrl-C.
pub async fn cancel_on_signal(token: CancellationToken) {
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
    tracing::info!("shutdown signal received; finishing in-flight work");
    token.cancel();
}
