//! `bounty api-keys create|list|revoke`.

use anyhow::{Context, anyhow, bail};
use bounty_core::{ApiKeySecret, KeyName, PageLimit};
use bounty_store::{ApiKey, Email, Store};
use serde_json::{Value, json};

use crate::cli::{ApiKeysCommand, ListArgs};

/// A key as JSON; with `secret` only at creation.
pub fn key_json(key: &ApiKey, secret: Option<&str>) -> Value {
    let mut v = json!({
        "id": key.id,
        "account_id": key.account_id,
        "name": key.name,
        "mode": key.mode,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    });
    if let Some(secret) = secret {
        v["secret"] = json!(secret);
    }
    v
}

pub async fn run(cmd: ApiKeysCommand, store: &Store) -> anyhow::Result<()> {
    match cmd {
        ApiKeysCommand::Create {
            account,
            operator: _,
            email: Some(email),
            name,
            json,
            ..
        } if account.is_none() => {
            let email =
                Email::parse(&email).map_err(|_| anyhow!("--email {email:?} is not an email address"))?;
            let name = KeyName::parse(&name).context("invalid --name")?;
            let operator = store.operator_by_email(&email).await?.ok_or_else(|| {
                anyhow!("no operator {email}: create one with `bounty users create --operator`")
            })?;
            let (secret, hash, prefix) = ApiKeySecret::generate_operator();
            let key = store
                .create_operator_key(operator.id, name.as_str(), &hash, &prefix)
                .await?;
            if json {
                println!(
                    "{}",
                    json!({"id": key.id, "operator_id": key.operator_id, "name": key.name,
                           "prefix": key.prefix, "created_at": key.created_at, "secret": secret.expose()})
                );
            } else {
                println!("Operator key {} ({}) for {email}:", key.id, key.name);
                println!();
                println!("    {}", secret.expose());
                println!();
                println!("Store it now: only its hash is kept, so it cannot be shown again.");
            }
            Ok(())
        }
        ApiKeysCommand::Create {
            account,
            name,
            mode,
            json,
            ..
        } => {
            let account = account.context("--account is required")?;
            let name = KeyName::parse(&name).context("invalid --name")?;
            let new_key = ApiKeySecret::generate(mode);
            let key = store
                .create_api_key(account, &name, &new_key)
                .await?
                .ok_or_else(|| anyhow!("no account {account}"))?;
            if json {
                println!("{}", key_json(&key, Some(new_key.secret.expose())));
            } else {
                println!("API key {} ({}, {}) for {account}:", key.id, key.name, key.mode);
                println!();
                println!("    {}", new_key.secret.expose());
                println!();
                println!("Store it now: only its hash is kept, so it cannot be shown again.");
            }
            Ok(())
        }
        ApiKeysCommand::List {
            account,
            list: ListArgs { limit, cursor, json },
        } => {
            let limit = PageLimit::new(limit).context("--limit")?;
            let cursor = match cursor {
                Some(c) => match c.parse() {
                    Ok(id) => Some(id),
                    Err(e) => bail!("--cursor: {e}"),
                },
                None => None,
            };
            if store.get_account(account).await?.is_none() {
                bail!("no account {account}");
            }
            let page = store.list_api_keys(account, limit, cursor).await?;
            if json {
                let data: Vec<_> = page.items.iter().map(|k| key_json(k, None)).collect();
                println!("{}", json!({"data": data, "next_cursor": page.next_cursor}));
            } else {
                for k in &page.items {
                    let state = match (k.revoked_at, k.last_used_at) {
                        (Some(t), _) => format!("revoked {}", t.format("%Y-%m-%d %H:%M")),
                        (None, Some(t)) => format!("last used {}", t.format("%Y-%m-%d %H:%M")),
                        (None, None) => "never used".to_owned(),
                    };
                    println!("{}  {}…  {}  {}  {state}", k.id, k.prefix, k.mode, k.name);
                }
                if let Some(next) = page.next_cursor {
                    println!("next: --cursor {next}");
                }
            }
            Ok(())
        }
        ApiKeysCommand::Revoke { account, key } => {
            let revoked = store
                .revoke_api_key(account, key)
                .await?
                .ok_or_else(|| anyhow!("no API key {key} in account {account}"))?;
            println!("revoked {} ({})", revoked.id, revoked.name);
            Ok(())
        }
    }
}
