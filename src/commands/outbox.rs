//! `bounty outbox list|retry`.

use anyhow::bail;
use bounty_core::{OutboxId, PageLimit};
use bounty_store::Store;

use crate::cli::OutboxCommand;

pub async fn run(cmd: OutboxCommand, store: &Store) -> anyhow::Result<()> {
    match cmd {
        OutboxCommand::List { status, list } => {
            let limit = PageLimit::new(list.limit).map_err(|e| anyhow::anyhow!("--limit {e}"))?;
            let cursor = list
                .cursor
                .as_deref()
                .map(|c| {
                    c.parse::<OutboxId>()
                        .map_err(|e| anyhow::anyhow!("--cursor: {e}"))
                })
                .transpose()?;
            let status = status
                .as_deref()
                .map(str::parse::<bounty_core::outbox::OutboxStatus>)
                .transpose()
                .map_err(|e| super::BadInput(format!("--status: {e}")))?;
            let page = store.admin_list_outbox(status, limit, cursor).await?;
            if list.json {
                let items: Vec<_> = page
                    .items
                    .iter()
                    .map(|o| {
                        serde_json::json!({
                            "id": o.id.to_string(), "account_id": o.account_id.to_string(), "kind": o.kind.as_str(),
                            "transfer_id": o.transfer_id, "payload": o.payload,
                            "idempotency_key": o.idempotency_key, "status": o.status.as_str(), "attempts": o.attempts,
                            "next_attempt_at": o.next_attempt_at, "last_error": o.last_error,
                            "created_at": o.created_at, "sent_at": o.sent_at,
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"data": items, "next_cursor": page.next_cursor})
                );
                return Ok(());
            }
            let stats = store.outbox_stats().await?;
            println!(
                "{} pending, {} failed{}",
                stats.pending,
                stats.failed,
                stats
                    .oldest_pending
                    .map(|t| format!(", oldest pending since {t}"))
                    .unwrap_or_default()
            );
            for o in &page.items {
                println!(
                    "{}  {:<8} {:<21} {}  attempts {}{}",
                    o.id,
                    o.status,
                    o.kind,
                    o.account_id,
                    o.attempts,
                    o.last_error
                        .as_deref()
                        .map(|e| format!("  last error: {e}"))
                        .unwrap_or_default()
                );
            }
            if let Some(next) = page.next_cursor {
                println!("next: --cursor {next}");
            }
            Ok(())
        }
        OutboxCommand::Retry { id, new_key } => {
            let retried = if new_key {
                store.admin_retry_outbox_new_key(id).await?
            } else {
                store.admin_retry_outbox(id).await?
            };
            if !retried {
                bail!("no failed outbox row {id}");
            }
            if new_key {
                println!("{id} is pending again, under a fresh idempotency key");
            } else {
                println!("{id} is pending again");
            }
            Ok(())
        }
    }
}

/// `bounty integrations …`: the replies side of the outbox.
pub async fn integrations(
    cmd: crate::cli::IntegrationsCommand,
    store: &Store,
    keyring: Option<&bounty_integrations::Keyring>,
) -> anyhow::Result<()> {
    use bounty_integrations::reenable::{EnableError, enable_integration};
    match cmd {
        crate::cli::IntegrationsCommand::Enable { account, id, no_ping } => {
            let http = bounty_integrations::reply::http_client()?;
            let enabled = match enable_integration(store, keyring, &http, account, id, !no_ping).await {
                Ok(enabled) => enabled,
                Err(EnableError::NotFound) => bail!("account {account} has no integration {id}"),
                Err(EnableError::PingFailed(why)) => bail!(
                    "the helpdesk did not answer the test ping ({why}); {id} stays off. \
                     Fix its reply settings, or run again with --no-ping to turn it on anyway"
                ),
                Err(e) => bail!("{id} stays off: {e}"),
            };
            if enabled.pinged {
                println!("the helpdesk answered the test ping");
            }
            println!(
                "{id} replies are on; {} parked repl(ies) queued again, oldest first",
                enabled.replies_queued
            );
            Ok(())
        }
    }
}
