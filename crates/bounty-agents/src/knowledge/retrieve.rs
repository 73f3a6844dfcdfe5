//! Hybrid retrieval: what an agent is given from its knowledge sources.
//!
//! [`retrieve`] ranks the chunks of the account's `sources` for a query in
//! two halves and fuses them:
//!
//! - **keyword:** the store's full-text engine (FTS5 `bm25` on SQLite,
//!   `ts_rank_cd` on Postgres), the best `4k` chunks;
//! - **vector:** the query embedded once by the embedder, scored by cosine
//!   against the stored embeddings of that embedder's model, in process
//!   (there is no `pgvector` here), the best `4k` chunks;
//! - **fusion:** reciprocal rank fusion (`bounty_core::vector::fuse`,
//!   k = 60), which uses ranks only, so BM25 scores and cosines need no
//!   calibration against each other.
//!
//! A chunk's `score` is its fused score divided by the best a chunk can
//! get (first in both rankings, `2 / 61`): in `(0, 1]`, higher is better;
//! `1` is first in both, `0.5` first in one only. It orders the chunks of
//! one retrieval and says how much the two halves agreed; it is not a
//! probability.
//!
//! Failures never reach the task: a query with no word leaves the keyword
//! half empty, and a query the embedder cannot embed (down, 429, wrong
//! width) leaves the vector half empty, logged. A source that is not the
//! account's, or is deleted, contributes nothing. Only store errors are
//! errors.
//!
//! **The vector cache.** Loading every embedding of a 200-article help
//! center on every step would cost a query of a few megabytes. Each process
//! keeps a source's embeddings of one model in memory instead, keyed by
//! (account, source, model) and tagged with the source's `index_version`,
//! which the store bumps in every transaction that changes the source's
//! chunks or embeddings. Every retrieval reads the sources' versions (one
//! indexed query it needs anyway to drop foreign and deleted sources) and
//! reloads a source whose version moved, so a copy is never used stale,
//! whichever process wrote. The cache holds at most
//! [`MAX_CACHED_FLOATS`] floats (64 MiB) and drops the least recently
//! used sources past that.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use bounty_core::knowledge::{ChunkId, MAX_QUERY_CHARS, SearchQuery};
use bounty_core::vector::{RRF_K, fuse, top_k};
use bounty_core::{AccountId, KnowledgeSourceId};
use bounty_models::Embedder;
use bounty_store::{RetrievalSource, Store, StoreError};
use serde::{Serialize, Serializer};

/// The most chunks one retrieval returns.
pub const MAX_K: usize = 50;
/// Candidates each half contributes, per chunk asked for.
const CANDIDATES_PER_K: usize = 4;
/// The most embedding components the per-process cache holds.
pub const MAX_CACHED_FLOATS: usize = 16 * 1024 * 1024;

/// What one retrieval found, as the transcript records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retrieval {
    /// The query, cut to 500 characters.
    pub query: String,
    /// Best first.
    pub chunks: Vec<RetrievedChunk>,
    /// The whole retrieval, the embedding call included.
    #[serde(rename = "latency_ms", serialize_with = "millis")]
    pub latency: Duration,
    /// The embedding call alone (zero without an embedder): `latency`
    /// less this is Bounty's own overhead.
    #[serde(rename = "embed_latency_ms", serialize_with = "millis")]
    pub embed_latency: Duration,
    /// Candidates the keyword half found.
    pub keyword_hits: usize,
    /// Candidates the vector half found.
    pub vector_hits: usize,
    /// The model the vector half used; `None` when it did not run (no
    /// embedder, or the query could not be embedded).
    pub embedding_model: Option<String>,
}

/// One chunk given to an agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrievedChunk {
    /// Stable across re-indexing of the same text in the same place.
    pub id: ChunkId,
    pub source_id: KnowledgeSourceId,
    /// The document's name (an upload's file name, a page's URL).
    pub document: String,
    /// Where the chunk came from, to cite: the page's URL with the
    /// section's anchor for a `urls` source (`https://…/refunds#by-mail`),
    /// the document's name with it for an upload (`refunds.md#by-mail`).
    pub link: String,
    /// The headings above the chunk, joined by ` > `.
    pub heading: Option<String>,
    /// The same headings as a list, outermost first (not serialised:
    /// `heading` says it).
    #[serde(skip)]
    pub heading_path: Vec<String>,
    pub text: String,
    /// Fused score in `(0, 1]` (see the module's docs).
    pub score: f64,
    /// Its rank in the keyword half, from 1, when it was found there.
    pub keyword_rank: Option<u32>,
    /// Its rank in the vector half, from 1, when it was found there.
    pub vector_rank: Option<u32>,
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// One source's embeddings of one model, as of `version`.
struct SourceVectors {
    version: i64,
    ids: Vec<ChunkId>,
    /// Row-major, `dims` per chunk.
    data: Vec<f32>,
    dims: usize,
    last_used: AtomicU64,
}

type CacheKey = (AccountId, KnowledgeSourceId, String);

#[derive(Default)]
struct VectorCache {
    entries: HashMap<CacheKey, Arc<SourceVectors>>,
    floats: usize,
}

static CACHE: LazyLock<Mutex<VectorCache>> = LazyLock::new(Mutex::default);
static TICK: AtomicU64 = AtomicU64::new(0);

impl VectorCache {
    fn get(&self, key: &CacheKey, version: i64) -> Option<Arc<SourceVectors>> {
        let hit = self.entries.get(key).filter(|v| v.version == version)?;
        hit.last_used
            .store(TICK.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        Some(Arc::clone(hit))
    }

    fn put(&mut self, key: CacheKey, vectors: Arc<SourceVectors>) {
        if let Some(old) = self.entries.remove(&key) {
            self.floats -= old.data.len();
        }
        while self.floats + vectors.data.len() > MAX_CACHED_FLOATS && !self.entries.is_empty() {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, v)| v.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest
                && let Some(v) = self.entries.remove(&k)
            {
                self.floats -= v.data.len();
            }
        }
        if vectors.data.len() <= MAX_CACHED_FLOATS {
            self.floats += vectors.data.len();
            self.entries.insert(key, vectors);
        }
    }
}

/// The source's embeddings of `model` at `source.index_version`: from the
/// cache, or read from the store and cached.
async fn vectors_of(
    store: &Store,
    account: AccountId,
    source: &RetrievalSource,
    model: &str,
) -> Result<Arc<SourceVectors>, StoreError> {
    let key = (account, source.id, model.to_owned());
    let cached = CACHE
        .lock()
        .map_err(|_| poisoned())?
        .get(&key, source.index_version);
    if let Some(v) = cached {
        return Ok(v);
    }
    let rows = store.source_embeddings(account, source.id, model).await?;
    let dims = rows.first().map_or(0, |(_, v)| v.len());
    let mut ids = Vec::with_capacity(rows.len());
    let mut data = Vec::with_capacity(rows.len() * dims);
    for (id, v) in rows {
        // One embedder answers one width; a row of another is unusable.
        if v.len() == dims {
            ids.push(id);
            data.extend_from_slice(&v);
        }
    }
    let vectors = Arc::new(SourceVectors {
        version: source.index_version,
        ids,
        data,
        dims,
        last_used: AtomicU64::new(TICK.fetch_add(1, Ordering::Relaxed)),
    });
    CACHE
        .lock()
        .map_err(|_| poisoned())?
        .put(key, Arc::clone(&vectors));
    Ok(vectors)
}

fn poisoned() -> StoreError {
    StoreError::Corrupt("the knowledge vector cache's lock is poisoned".to_owned())
}

/// The query embedded, or `None` (logged) when the embedder failed.
async fn embed_query(embedder: &Embedder, account: AccountId, query: &str) -> Option<Vec<f32>> {
    match embedder.embed(&[query.to_owned()]).await {
        Ok(mut v) if v.len() == 1 => v.pop(),
        Ok(v) => {
            tracing::warn!(account.id = %account, embedder = embedder.name(), vectors = v.len(),
                "the embedder answered the wrong number of vectors; keyword retrieval only");
            None
        }
        Err(e) => {
            tracing::warn!(account.id = %account, embedder = embedder.name(), error.code = e.code(),
                error = %e, "cannot embed the query; keyword retrieval only");
            None
        }
    }
}

/// The best `k` (at most [`MAX_K`]) chunks of the account's `sources` for
/// `query`, by hybrid retrieval (see the module's docs). `embedder`
/// `None`: keyword only.
pub async fn retrieve(
    store: &Store,
    embedder: Option<&Embedder>,
    account: AccountId,
    sources: &[KnowledgeSourceId],
    query: &str,
    k: usize,
) -> Result<Retrieval, StoreError> {
    let started = Instant::now();
    let query: String = query.chars().take(MAX_QUERY_CHARS).collect();
    let k = k.min(MAX_K);
    let mut out = Retrieval {
        query,
        chunks: Vec::new(),
        latency: Duration::ZERO,
        embed_latency: Duration::ZERO,
        keyword_hits: 0,
        vector_hits: 0,
        embedding_model: None,
    };
    let mut wanted = sources.to_vec();
    wanted.sort();
    wanted.dedup();
    let usable = if k == 0 || out.query.trim().is_empty() || wanted.is_empty() {
        Vec::new()
    } else {
        store.retrieval_sources(account, &wanted).await?
    };
    if usable.is_empty() {
        out.latency = started.elapsed();
        return Ok(out);
    }
    let ids: Vec<KnowledgeSourceId> = usable.iter().map(|s| s.id).collect();
    let candidates = k * CANDIDATES_PER_K;

    // The embedding call overlaps the keyword search.
    let keyword = async {
        match SearchQuery::parse("query", &out.query) {
            Ok(q) => {
                store
                    .search_chunks(account, &ids, &q, u32::try_from(candidates).unwrap_or(u32::MAX))
                    .await
            }
            Err(_) => Ok(Vec::new()),
        }
    };
    let embedded = async {
        let embedder = embedder?;
        let t = Instant::now();
        let v = embed_query(embedder, account, &out.query).await;
        Some((embedder.name().to_owned(), v?, t.elapsed()))
    };
    let (keyword, embedded) = tokio::join!(keyword, embedded);
    let keyword = keyword?;

    let mut vector: Vec<(ChunkId, f32)> = Vec::new();
    if let Some((model, q, took)) = embedded {
        out.embed_latency = took;
        let mut held = Vec::with_capacity(usable.len());
        for source in &usable {
            held.push(vectors_of(store, account, source, &model).await?);
        }
        let rows = held
            .iter()
            .filter(|v| v.dims == q.len())
            .flat_map(|v| v.ids.iter().zip(v.data.chunks_exact(v.dims.max(1))));
        vector = top_k(&q, rows, candidates)
            .into_iter()
            .map(|(id, score)| (id.clone(), score))
            .collect();
        out.embedding_model = Some(model);
    }
    out.keyword_hits = keyword.len();
    out.vector_hits = vector.len();

    let keyword_list: Vec<(String, f32)> = keyword
        .iter()
        .map(|h| (h.id.to_string(), h.score as f32))
        .collect();
    let vector_list: Vec<(String, f32)> = vector.iter().map(|(id, s)| (id.to_string(), *s)).collect();
    let fused = fuse(&keyword_list, &vector_list, k);
    let rank_in = |list: &[(String, f32)], id: &str| {
        list.iter()
            .position(|(i, _)| i == id)
            .and_then(|p| u32::try_from(p + 1).ok())
    };
    let chosen: Vec<(ChunkId, &str, f32)> = fused
        .iter()
        .filter_map(|(id, score)| Some((id.parse().ok()?, id.as_str(), *score)))
        .collect();
    let chosen_ids: Vec<ChunkId> = chosen.iter().map(|(id, _, _)| id.clone()).collect();
    let details: HashMap<ChunkId, bounty_store::ChunkDetail> = store
        .chunk_details(account, &chosen_ids)
        .await?
        .into_iter()
        .map(|d| (d.id.clone(), d))
        .collect();
    let best = 2.0 / (RRF_K + 1.0);
    for (chunk_id, id, score) in &chosen {
        // Deleted between the search and now: left out.
        let Some(d) = details.get(chunk_id) else {
            continue;
        };
        out.chunks.push(RetrievedChunk {
            id: d.id.clone(),
            source_id: d.source_id,
            document: d.document.clone(),
            link: d.link.clone(),
            heading: (!d.heading_path.is_empty()).then(|| d.heading_path.join(" > ")),
            heading_path: d.heading_path.clone(),
            text: d.text.clone(),
            score: (f64::from(*score) / best).min(1.0),
            keyword_rank: rank_in(&keyword_list, id),
            vector_rank: rank_in(&vector_list, id),
        });
    }
    out.latency = started.elapsed();
    Ok(out)
}
