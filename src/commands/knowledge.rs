//! `bounty knowledge reindex`: brings knowledge sources up to date.
//!
//! - An upload source's stored documents are cut again through
//!   `bounty_agents::knowledge::reindex_source`, which writes only what
//!   changed.
//! - A `urls` source's pages are fetched again through
//!   `bounty_agents::knowledge::fetch_url_source` (the guarded HTTP client,
//!   `[tools] allow_private` honoured), indexed incrementally, and the
//!   source set `ready`: this is also how a source left `indexing` by a
//!   process that stopped mid-fetch is completed.
//! - With `[knowledge] embedding_model` set, every chunk without an
//!   embedding of that model is then embedded, in batches.
//!
//! A second run changes nothing and says so. Progress bars count documents
//! (or URLs) and then chunks embedded, on stderr (indicatif hides them when
//! stderr is not a terminal); one line per source goes to stdout.

use anyhow::Context;
use bounty_agents::knowledge::{
    EmbedReport, IndexReport, chunks_to_embed_count, embed_missing, fetch_url_source, reindex_source,
};
use bounty_core::knowledge::KnowledgeKind;
use bounty_core::{AccountId, KnowledgeSourceId};
use bounty_models::Embedder;
use bounty_store::{KnowledgeSource, Store};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::BadInput;
use crate::cli::{KnowledgeCommand, KnowledgeReindexArgs};
use crate::config::Config;

pub async fn run(cmd: KnowledgeCommand, config: &Config, store: &Store) -> anyhow::Result<()> {
    match cmd {
        KnowledgeCommand::Reindex(args) => reindex(args, config, store).await,
    }
}

fn progress(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let template = format!("{what} [{{bar:40}}] {{pos}}/{{len}} {{msg}}");
    let style = ProgressStyle::with_template(&template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Re-indexes (or re-fetches) one source, its bar counting documents.
async fn index_one(
    store: &Store,
    outbound: &bounty_outbound::Outbound,
    s: &KnowledgeSource,
    bar: &ProgressBar,
) -> anyhow::Result<(IndexReport, usize)> {
    let tick = |_: usize, _: usize, locator: &str| {
        bar.inc(1);
        bar.set_message(locator.to_owned());
    };
    Ok(match s.kind {
        KnowledgeKind::Upload => (reindex_source(store, s.account_id, s.id, tick).await?, 0),
        KnowledgeKind::Urls => {
            // Embedding follows below, for every kind alike.
            let r = fetch_url_source(store, outbound, None, s.account_id, s.id, tick).await?;
            (r.index, r.failed)
        }
    })
}

/// Embeds what the sources lack, with a bar counting chunks.
async fn embed_all(
    store: &Store,
    embedder: &Embedder,
    sources: &[KnowledgeSource],
) -> anyhow::Result<EmbedReport> {
    let mut total = 0;
    for s in sources {
        total += chunks_to_embed_count(store, embedder, s.account_id, s.id).await?;
    }
    let mut all = EmbedReport::default();
    if total == 0 {
        return Ok(all);
    }
    let bar = progress(total as u64, "embedding");
    bar.set_message(format!("chunks ({})", embedder.name()));
    for s in sources {
        let r = embed_missing(store, embedder, s.account_id, s.id, |n| bar.inc(n as u64))
            .await
            .with_context(|| format!("cannot embed {}", s.id))?;
        all.embedded += r.embedded;
        if let Some(code) = r.error {
            all.error = Some(code);
            break;
        }
    }
    bar.finish_and_clear();
    Ok(all)
}

async fn reindex(args: KnowledgeReindexArgs, config: &Config, store: &Store) -> anyhow::Result<()> {
    let account = args
        .account
        .as_deref()
        .map(|a| {
            a.parse::<AccountId>()
                .map_err(|e| BadInput(format!("--account {a:?} is not an account id: {e}")))
        })
        .transpose()?;
    let source = args
        .source
        .as_deref()
        .map(|s| {
            s.parse::<KnowledgeSourceId>()
                .map_err(|e| BadInput(format!("--source {s:?} is not a knowledge source id: {e}")))
        })
        .transpose()?;
    let registry = config.model_registry()?;
    let embedder = config.knowledge_embedder(&registry)?;
    let outbound = bounty_outbound::Outbound::new(config.tools.outbound_policy())
        .context("cannot build the HTTP client that fetches URL sources")?;
    let sources = store
        .admin_list_knowledge_sources(account, source)
        .await
        .context("cannot list the knowledge sources")?;
    if let Some(s) = source
        && sources.is_empty()
    {
        return Err(BadInput(format!("no knowledge source {s} (of the given account)")).into());
    }
    let total: i64 = sources
        .iter()
        .map(|s| match s.kind {
            KnowledgeKind::Upload => s.document_count,
            KnowledgeKind::Urls => i64::try_from(s.urls.len()).unwrap_or(0),
        })
        .sum();
    let bar = progress(u64::try_from(total).unwrap_or(0), "re-indexing");
    let mut all = IndexReport::default();
    let mut failed_urls = 0;
    for s in &sources {
        let (report, failed) = index_one(store, &outbound, s, &bar)
            .await
            .with_context(|| format!("cannot re-index {}", s.id))?;
        let failed_note = if failed > 0 {
            format!("; {failed} URLs failed (see GET /v1/knowledge/{})", s.id)
        } else {
            String::new()
        };
        bar.suspend(|| {
            println!(
                "{} {:?}: {} added, {} updated, {} unchanged; {} chunks added, {} removed{failed_note}",
                s.id,
                s.name,
                report.added,
                report.updated,
                report.unchanged,
                report.chunks_added,
                report.chunks_removed
            )
        });
        failed_urls += failed;
        all.add(&report);
    }
    bar.finish_and_clear();
    let embedded = match &embedder {
        Some(e) => Some(embed_all(store, e, &sources).await?),
        None => None,
    };
    if all.changed() {
        println!(
            "re-indexed {} sources: {} documents changed, {} unchanged",
            sources.len(),
            all.added + all.updated,
            all.unchanged
        );
    } else {
        println!(
            "nothing changed: {} sources, {} documents already up to date",
            sources.len(),
            all.unchanged
        );
    }
    if failed_urls > 0 {
        println!("{failed_urls} URLs could not be fetched");
    }
    if let (Some(e), Some(r)) = (&embedder, &embedded) {
        match r.error {
            None => println!("embedded {} chunks with {}", r.embedded, e.name()),
            Some(code) => println!(
                "embedded {} chunks with {}, then the embedder failed ({code}): the rest stay keyword-only \
                 until the next run",
                r.embedded,
                e.name()
            ),
        }
    }
    Ok(())
}
