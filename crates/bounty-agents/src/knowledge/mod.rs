//! Knowledge use cases: creating an upload source, adding documents to
//! it, re-indexing what is stored, `urls` sources fetched in the
//! background ([`fetch`]), embeddings written on index ([`embed`]), and the
//! hybrid retrieval an agent is given ([`retrieve`]). The API, the
//! dashboard and the CLI call these, so a document is checked, cut and
//! written the same way whichever way it came in.
//!
//! Every request's documents are checked and chunked in full before the
//! first write (`bounty_core::knowledge::prepare`), and the source's limits
//! (documents and chunks) are checked against what it holds, so a refused
//! request leaves nothing behind. Each document is then written in its own
//! transaction by `Store::index_document`, which skips a document whose
//! content and chunks are unchanged: indexing the same text twice, or
//! re-indexing a source nothing changed in, writes nothing.

pub mod embed;
pub mod fetch;
pub mod retrieve;

use std::collections::HashMap;

use bounty_core::knowledge::{
    DocumentInput, KnowledgeError, KnowledgeKind, PreparedDocument, check_source_totals, prepare, prepare_one,
};
use bounty_core::{AccountId, ApiKeyMode, KnowledgeName, KnowledgeSourceId};
use bounty_store::{DocumentChange, KnowledgeSource, NewKnowledgeSource, Store, StoreError};

pub use embed::{EMBED_BATCH, EmbedReport, chunks_to_embed_count, embed_missing};
pub use fetch::{
    FetchReport, MAX_URLS, create_url_source, fetch_url_source, format_of_content_type, parse_urls,
    spawn_fetch,
};
pub use retrieve::{MAX_K, Retrieval, RetrievedChunk, retrieve};

/// Why a knowledge request was refused.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeRefusal {
    /// A field is wrong; the error names it.
    #[error(transparent)]
    Invalid(#[from] KnowledgeError),
    /// The account has no such source.
    #[error("no such knowledge source")]
    NotFound,
    /// Documents can only be uploaded to an `upload` source.
    #[error("documents can only be uploaded to an `upload` source")]
    NotUpload,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one indexing run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexReport {
    /// Documents new to the source.
    pub added: usize,
    /// Documents whose text or chunks changed.
    pub updated: usize,
    /// Documents left as they were.
    pub unchanged: usize,
    pub chunks_added: usize,
    pub chunks_removed: usize,
}

impl IndexReport {
    /// Whether anything was written.
    pub fn changed(&self) -> bool {
        self.added + self.updated > 0
    }

    /// Adds another run's counts to these.
    pub fn add(&mut self, other: &IndexReport) {
        self.added += other.added;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.chunks_added += other.chunks_added;
        self.chunks_removed += other.chunks_removed;
    }

    fn count(&mut self, change: DocumentChange) {
        match change {
            DocumentChange::Added { chunks } => {
                self.added += 1;
                self.chunks_added += chunks;
            }
            DocumentChange::Updated { added, removed, .. } => {
                self.updated += 1;
                self.chunks_added += added;
                self.chunks_removed += removed;
            }
            DocumentChange::Unchanged => self.unchanged += 1,
        }
    }
}

async fn write(
    store: &Store,
    account: AccountId,
    source: KnowledgeSourceId,
    docs: &[PreparedDocument],
) -> Result<IndexReport, KnowledgeRefusal> {
    let mut report = IndexReport::default();
    for doc in docs {
        let change = store
            .index_document(account, source, doc)
            .await?
            .ok_or(KnowledgeRefusal::NotFound)?;
        report.count(change);
    }
    Ok(report)
}

async fn reread(
    store: &Store,
    account: AccountId,
    id: KnowledgeSourceId,
) -> Result<KnowledgeSource, KnowledgeRefusal> {
    store
        .get_knowledge_source(account, id)
        .await?
        .ok_or(KnowledgeRefusal::NotFound)
}

/// Creates an upload source of `mode` holding `docs`, indexed.
pub async fn create_upload_source(
    store: &Store,
    account: AccountId,
    mode: ApiKeyMode,
    name: &KnowledgeName,
    docs: &[DocumentInput<'_>],
) -> Result<(KnowledgeSource, IndexReport), KnowledgeRefusal> {
    let id = KnowledgeSourceId::new();
    let prepared = prepare(id, docs)?;
    check_source_totals(prepared.len(), prepared.iter().map(|d| d.chunks.len()).sum())?;
    store
        .create_knowledge_source(
            account,
            &NewKnowledgeSource {
                id,
                mode,
                name,
                kind: KnowledgeKind::Upload,
                urls: &[],
            },
        )
        .await?;
    let report = write(store, account, id, &prepared).await?;
    tracing::info!(account.id = %account, source.id = %id, documents = prepared.len(), "knowledge source created");
    Ok((reread(store, account, id).await?, report))
}

/// Adds `docs` to an upload source: a document of a name the source has
/// already is replaced (its unchanged chunks kept), others are added.
pub async fn add_documents(
    store: &Store,
    account: AccountId,
    source: &KnowledgeSource,
    docs: &[DocumentInput<'_>],
) -> Result<(KnowledgeSource, IndexReport), KnowledgeRefusal> {
    if source.kind != KnowledgeKind::Upload {
        return Err(KnowledgeRefusal::NotUpload);
    }
    let prepared = prepare(source.id, docs)?;
    let held: HashMap<String, i64> = store
        .knowledge_documents(account, source.id)
        .await?
        .into_iter()
        .map(|d| (d.locator, d.chunk_count))
        .collect();
    let mut documents = held.len();
    let mut chunks = usize::try_from(held.values().sum::<i64>()).unwrap_or(usize::MAX);
    for d in &prepared {
        match held.get(&d.locator) {
            Some(n) => chunks = chunks.saturating_sub(usize::try_from(*n).unwrap_or(0)),
            None => documents += 1,
        }
        chunks = chunks.saturating_add(d.chunks.len());
    }
    check_source_totals(documents, chunks)?;
    let report = write(store, account, source.id, &prepared).await?;
    tracing::info!(account.id = %account, source.id = %source.id, added = report.added,
        updated = report.updated, unchanged = report.unchanged, "knowledge documents uploaded");
    Ok((reread(store, account, source.id).await?, report))
}

/// Cuts every stored document of a source again and writes what changed;
/// `progress(done, total, locator)` is called after each document.
pub async fn reindex_source(
    store: &Store,
    account: AccountId,
    source: KnowledgeSourceId,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<IndexReport, KnowledgeRefusal> {
    let stored = store.knowledge_document_contents(account, source).await?;
    let mut report = IndexReport::default();
    for (i, doc) in stored.iter().enumerate() {
        let input = DocumentInput {
            name: &doc.locator,
            format: doc.format,
            content: &doc.content,
        };
        let prepared = prepare_one(source, &format!("documents[{i}]"), &input)?;
        let change = store
            .index_document(account, source, &prepared)
            .await?
            .ok_or(KnowledgeRefusal::NotFound)?;
        report.count(change);
        progress(i + 1, stored.len(), &doc.locator);
    }
    Ok(report)
}
