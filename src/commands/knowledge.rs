//! `bounty knowledge reindex`: cuts the stored documents of knowledge
//! sources again through `bounty_agents::knowledge::reindex_source`, which
//! writes only what changed, so a second run changes nothing and says so.
//! A progress bar counts documents on stderr (indicatif hides it when
//! stderr is not a terminal); one line per source goes to stdout.

use anyhow::Context;
use bounty_agents::knowledge::{IndexReport, reindex_source};
use bounty_core::{AccountId, KnowledgeSourceId};
use bounty_store::Store;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::BadInput;
use crate::cli::{KnowledgeCommand, KnowledgeReindexArgs};

pub async fn run(cmd: KnowledgeCommand, store: &Store) -> anyhow::Result<()> {
    match cmd {
        KnowledgeCommand::Reindex(args) => reindex(args, store).await,
    }
}

fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("re-indexing [{bar:40}] {pos}/{len} documents {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

async fn reindex(args: KnowledgeReindexArgs, store: &Store) -> anyhow::Result<()> {
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
    let sources = store
        .admin_list_knowledge_sources(account, source)
        .await
        .context("cannot list the knowledge sources")?;
    if let Some(s) = source
        && sources.is_empty()
    {
        return Err(BadInput(format!("no knowledge source {s} (of the given account)")).into());
    }
    let total: i64 = sources.iter().map(|s| s.document_count).sum();
    let bar = progress(u64::try_from(total).unwrap_or(0));
    let mut all = IndexReport::default();
    for s in &sources {
        let report = reindex_source(store, s.account_id, s.id, |_, _, locator| {
            bar.inc(1);
            bar.set_message(locator.to_owned());
        })
        .await
        .with_context(|| format!("cannot re-index {}", s.id))?;
        bar.suspend(|| {
            println!(
                "{} {:?}: {} added, {} updated, {} unchanged; {} chunks added, {} removed",
                s.id,
                s.name,
                report.added,
                report.updated,
                report.unchanged,
                report.chunks_added,
                report.chunks_removed
            )
        });
        all.add(&report);
    }
    bar.finish_and_clear();
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
    Ok(())
}
