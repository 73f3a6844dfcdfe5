//! `bounty accounts create|list`.

use anyhow::{Context, bail};
use bounty_core::{AccountName, ApiKeySecret, KeyName, PageLimit};
use bounty_store::Store;
use serde_json::json;

use crate::cli::{AccountsCommand, ListArgs};
use crate::commands::api_keys::key_json;

pub async fn run(cmd: AccountsCommand, store: &Store) -> anyhow::Result<()> {
    match cmd {
        AccountsCommand::Create {
            name,
            key_name,
            mode,
            json,
        } => {
            let name = AccountName::parse(&name).context("invalid account name")?;
            let key_name = KeyName::parse(&key_name).context("invalid --key-name")?;
            let new_key = ApiKeySecret::generate(mode);
            let (account, key) = store.create_account(&name, &key_name, &new_key).await?;
            if json {
                let out = json!({
                    "account": {"id": account.id, "name": account.name, "created_at": account.created_at},
                    "api_key": key_json(&key, Some(new_key.secret.expose())),
                });
                println!("{out}");
            } else {
                println!("Created account {} ({})", account.id, account.name);
                println!("API key {} ({}, {}):", key.id, key.name, key.mode);
                println!();
                println!("    {}", new_key.secret.expose());
                println!();
                println!("Store it now: only its hash is kept, so it cannot be shown again.");
            }
            Ok(())
        }
        AccountsCommand::List(ListArgs { limit, cursor, json }) => {
            let limit = PageLimit::new(limit).context("--limit")?;
            let cursor = match cursor {
                Some(c) => match c.parse() {
                    Ok(id) => Some(id),
                    Err(e) => bail!("--cursor: {e}"),
                },
                None => None,
            };
            let page = store.admin_list_accounts(limit, cursor).await?;
            if json {
                let data: Vec<_> = page
                    .items
                    .iter()
                    .map(|a| json!({"id": a.id, "name": a.name, "created_at": a.created_at}))
                    .collect();
                println!("{}", json!({"data": data, "next_cursor": page.next_cursor}));
            } else {
                for a in &page.items {
                    println!(
                        "{}  {}  {}",
                        a.id,
                        a.created_at.format("%Y-%m-%d %H:%M:%S"),
                        a.name
                    );
                }
                if let Some(next) = page.next_cursor {
                    println!("next: --cursor {next}");
                }
            }
            Ok(())
        }
    }
}
