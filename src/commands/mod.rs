//! One module per command; each wires configuration to the crates.

mod accounts;
mod api_keys;
mod serve;

use std::sync::Arc;

use anyhow::Context;
use bounty_core::SystemClock;
use bounty_store::Store;

use crate::cli::Command;
use crate::config::Config;

/// Runs one command to completion.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve(_) => serve::serve(config).await,
        Command::Migrate => {
            let store = open_store(&config).await?;
            println!("migrations applied ({} in this binary)", store.migration_count());
            Ok(())
        }
        Command::Accounts(cmd) => accounts::run(cmd, &open_store(&config).await?).await,
        Command::ApiKeys(cmd) => api_keys::run(cmd, &open_store(&config).await?).await,
    }
}

/// Connects to the configured database and applies pending migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let backend = config.backend();
    let store = Store::connect(&config.database.options(), Arc::new(SystemClock))
        .await
        .with_context(|| format!("cannot open the {backend:?} database (database.url)"))?;
    store.migrate().await.context("cannot migrate the database")?;
    Ok(store)
}
