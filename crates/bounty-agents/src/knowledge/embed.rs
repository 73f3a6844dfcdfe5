//! Embeddings on index: after a source's chunks are committed, the chunks
//! that have no embedding of the configured model (`[knowledge]
//! embedding_model`) are embedded in batches of [`EMBED_BATCH`] and written
//! one batch per transaction.
//!
//! An embedding failure is not an indexing failure: the chunks are already
//! searchable by keyword, the failure is logged and reported, and the next
//! run (an upload, a re-fetch, `bounty knowledge reindex`) picks up exactly
//! the chunks still without an embedding of the model, whichever they are.
//! A chunk whose text is unchanged keeps its id, and so its embedding, across
//! re-indexing; only new text is embedded.

use bounty_core::{AccountId, KnowledgeSourceId};
use bounty_models::Embedder;
use bounty_store::{ChunkToEmbed, Store, StoreError};

/// Chunks per embedding call (and per write).
pub const EMBED_BATCH: u32 = 32;

/// What embedding a source's chunks did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbedReport {
    /// Chunks given an embedding.
    pub embedded: usize,
    /// The embedder's error code when it failed; the chunks not embedded
    /// stay keyword-only until the next run.
    pub error: Option<&'static str>,
}

/// The text a chunk is embedded as: its headings, then its text, so a
/// section's title counts towards what it means.
fn embedding_text(c: &ChunkToEmbed) -> String {
    if c.heading_path.is_empty() {
        c.text.clone()
    } else {
        format!("{}\n{}", c.heading_path.join(" > "), c.text)
    }
}

/// How many chunks of the source lack an embedding of the embedder's
/// model: the total a progress bar counts towards.
pub async fn chunks_to_embed_count(
    store: &Store,
    embedder: &Embedder,
    account: AccountId,
    source: KnowledgeSourceId,
) -> Result<usize, StoreError> {
    store
        .count_chunks_to_embed(account, source, embedder.name())
        .await
}

/// Embeds the source's chunks that lack an embedding of `embedder`'s
/// model; `progress(n)` after each batch of `n` written.
pub async fn embed_missing(
    store: &Store,
    embedder: &Embedder,
    account: AccountId,
    source: KnowledgeSourceId,
    mut progress: impl FnMut(usize),
) -> Result<EmbedReport, StoreError> {
    let model = embedder.name();
    let mut report = EmbedReport::default();
    let mut after = None;
    loop {
        let batch = store
            .chunks_to_embed(account, source, model, after.as_ref(), EMBED_BATCH)
            .await?;
        let Some(last) = batch.last() else {
            break;
        };
        after = Some(last.id.clone());
        let texts: Vec<String> = batch.iter().map(embedding_text).collect();
        let vectors = match embedder.embed(&texts).await {
            Ok(v) if v.len() == batch.len() => v,
            Ok(v) => {
                tracing::warn!(account.id = %account, source.id = %source, embedder = model,
                    asked = batch.len(), got = v.len(), "the embedder answered the wrong number of vectors");
                report.error = Some("embed_count_mismatch");
                break;
            }
            Err(e) => {
                tracing::warn!(account.id = %account, source.id = %source, embedder = model,
                    error.code = e.code(), error = %e,
                    "cannot embed knowledge chunks; they stay keyword-only until the next re-index");
                report.error = Some(e.code());
                break;
            }
        };
        let rows: Vec<_> = batch.into_iter().map(|c| c.id).zip(vectors).collect();
        let written = store.set_chunk_embeddings(account, model, &rows).await?;
        report.embedded += written;
        progress(written);
    }
    if report.embedded > 0 {
        tracing::info!(account.id = %account, source.id = %source, embedder = model,
            embedded = report.embedded, "knowledge chunks embedded");
    }
    Ok(report)
}
