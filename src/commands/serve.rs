//! `bounty serve`: the HTTP API until SIGTERM or Ctrl-C.
//!
//! With `--demo` it also seeds the demo ([`super::demo`]) into
//! `./bounty-data`, keeps the demo's master key there when none is
//! configured, and plays the demo's helpdesk against itself once it
//! listens.

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

/// Where `--demo` keeps its model and master key (beside the default
/// SQLite database, `./bounty-data/bounty.db`).
const DEMO_DATA_DIR: &str = "bounty-data";

pub async fn serve(mut config: Config, args: ServeArgs) -> anyhow::Result<()> {
    let mut keyring = config.secrets.keyring()?;
    if args.demo {
        let data_dir = std::path::Path::new(DEMO_DATA_DIR);
        if !config.models.contains_key(super::demo::DEMO_MODEL) {
            let model = super::demo::demo_model(data_dir)?;
            config.models.insert(super::demo::DEMO_MODEL.to_owned(), model);
        }
        if keyring.is_none() {
            let path = super::demo::master_key::path(data_dir);
            tracing::info!(path = %path.display(), "demo: no secrets.master_keys; the demo's own master key is used");
            keyring = Some(super::demo::master_key::load_or_create(data_dir)?);
        }
    }
    let store = open_store(&config).await?;
    let demo = match (&keyring, args.demo) {
        (Some(keys), true) => Some(
            super::demo::seed(&store, keys)
                .await
                .context("cannot seed the demo")?,
        ),
        _ => None,
    };
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
    say(&format!("bounty listening on http://{addr}"));
    match &demo {
        Some(login) => {
            say(&format!(
                "Demo mode: sample data in account {} (\"Demo (sample data)\").",
                login.account
            ));
            say(&format!(
                "Open http://{addr}/login and sign in as {} with password {}",
                login.email, login.password
            ));
            say(&format!(
                "Operator console: http://{addr}/ops/login, sign in as {} with password {}",
                super::demo::DEMO_OPERATOR_EMAIL,
                login.operator_password
            ));
            match &login.integration {
                Some(super::demo::DemoIntegration {
                    id,
                    secret: Some(secret),
                }) => say(&format!(
                    "Send a ticket: POST http://{addr}/webhooks/in/{id} (Standard Webhooks, secret {secret})"
                )),
                Some(super::demo::DemoIntegration { id, secret: None }) => say(&format!(
                    "The demo integration {id} is broken: its secret was sealed under a master key this run \
                     does not have (one no longer configured, or an older demo's throwaway key). Rotate its \
                     secret in the dashboard, or delete ./{DEMO_DATA_DIR} to start over."
                )),
                None => {}
            }
        }
        None if store.admin_count_users().await.unwrap_or(1) == 0 => say(
            "No dashboard user yet: `bounty users create --account ACCT --email you@example.com --role owner`, \
             or `bounty serve --demo` for sample data. The operator console (/ops) wants an operator: \
             `bounty users create --operator --email you@example.com`.",
        ),
        None => {}
    }

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    // The demo's helpdesk opens its tickets through this server's own
    // webhook once it listens (the listener is bound: connections wait).
    let helpdesk = demo.as_ref().and_then(|login| {
        let integration = login.integration.as_ref()?;
        let helpdesk = super::demo::helpdesk::DemoHelpdesk {
            base_url: format!("http://{}", self_address(addr)),
            account: login.account,
            integration: integration.id,
            secret: integration.secret.clone()?,
            store: store.clone(),
        };
        Some(tokio::spawn(helpdesk.run(shutdown.clone())))
    });
    let wake = Arc::new(Notify::new());
    let knowledge_embedder = config.knowledge_embedder(&registry)?;
    let worker = (config.worker.in_serve && !args.no_worker).then(|| {
        let worker = Worker::new(
            store.clone(),
            Router::new(Arc::clone(&registry)),
            config.worker.worker_config(),
        )
        .with_wake(Arc::clone(&wake))
        .with_secrets(super::secret_opener(keyring.as_ref()))
        .with_outbound(config.tools.outbound_policy())
        .with_knowledge_embedder(knowledge_embedder.clone());
        tokio::spawn(worker.run(shutdown.clone()))
    });
    let senders = config
        .stripe
        .senders(&store, &config.outbox)
        .context("invalid Stripe configuration")?;
    let stripe = config.stripe.client().context("invalid Stripe configuration")?;
    if stripe.is_none() {
        tracing::warn!(
            "Stripe is not configured ([stripe] secret_key): ledger-only, meter events wait in the outbox"
        );
    }
    let in_serve = config.worker.in_serve && !args.no_worker;
    let senders: Vec<_> = if in_serve { senders } else { Vec::new() }
        .into_iter()
        .map(|s| tokio::spawn(s.run(shutdown.clone())))
        .collect();
    let replies = if in_serve {
        config.secrets.reply_sender(
            &store,
            &config.outbox,
            Duration::from_millis(config.worker.poll_interval_ms),
        )?
    } else {
        None
    }
    .map(|r| tokio::spawn(r.run(shutdown.clone())));
    let webhooks = if in_serve {
        config.secrets.webhook_sender(
            &store,
            &config.outbox,
            &config.webhooks,
            Duration::from_millis(config.worker.poll_interval_ms),
        )?
    } else {
        None
    }
    .map(|w| tokio::spawn(w.run(shutdown.clone())));
    let mailer = if in_serve {
        config
            .mail
            .mailer(&store, Duration::from_millis(config.worker.poll_interval_ms))?
    } else {
        None
    }
    .map(|m| tokio::spawn(m.run(shutdown.clone())));
    let state = AppState::new(store.clone(), limits)
        .with_webhooks_outbound(config.webhooks.outbound_policy())
        .with_stripe(stripe)
        .with_keyring(keyring.clone())
        .with_web(bounty_web::WebState {
            trust_forwarded_for: config.server.trust_forwarded_for,
            models: registry.iter().map(|m| m.name().to_owned()).collect(),
            keyring: keyring.clone().map(Arc::new),
            // Test deliveries go to this process itself.
            self_url: Some(format!("http://{}", self_address(addr))),
            knowledge_embedder: knowledge_embedder.clone(),
            outbound: config.tools.outbound_policy(),
            ..bounty_web::WebState::new(store.clone(), config.server.secure_cookies)
        })
        .with_stripe_webhook_secrets(config.stripe.webhook_secrets.clone())
        .with_models(registry)
        .with_outbound(config.tools.outbound_policy())
        .with_knowledge_embedder(knowledge_embedder)
        .with_task_max_attempts(config.worker.max_attempts)
        .with_task_wake(wake)
        .with_gateway(&config.gateway)
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let gateway = Arc::clone(&state.gateway);
    let app = bounty_server::app(state);
    bounty_server::serve(
        listener,
        app,
        shutdown,
        Duration::from_millis(config.server.shutdown_grace_ms),
    )
    .await
    .context("the HTTP server failed")?;
    // Every gateway call answered is recorded before the store closes.
    gateway.flush().await;
    for task in senders
        .into_iter()
        .chain(replies)
        .chain(webhooks)
        .chain(mailer)
        .chain(helpdesk)
    {
        let _ = task.await;
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

/// An address this process can reach itself on: the listening one, with
/// an unspecified IP (`0.0.0.0`, `::`) replaced by loopback.
fn self_address(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// One line on stdout for people and scripts. A reader that has gone away
/// (a closed pipe) is no reason to stop serving, so errors are ignored.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
