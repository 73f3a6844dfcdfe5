//! Knowledge sources, their documents and chunks (migration 0020), and
//! keyword search over the chunks.
//!
//! Indexing is incremental and idempotent. [`Store::index_document`]
//! writes one prepared document in one transaction: a document whose
//! content hash and chunk ids are what is stored already is left alone
//! (nothing written, not even a timestamp); a changed one keeps the rows
//! of its unchanged chunk ids (and so their embeddings), deletes the ones
//! gone and inserts the new ones. What a document is cut into is decided
//! above the store (`bounty_core::knowledge`), and when to index by the use
//! case (`bounty_agents::knowledge`).
//!
//! Keyword search runs on each backend's own full-text engine: FTS5 with
//! `bm25` on SQLite, a generated `tsvector` with `ts_rank_cd` on Postgres.
//! The query reaches either one as quoted words ORed together, never as
//! syntax. The score is normalised to `[0, 1)`, higher is better:
//! `s / (s + 1)` of FTS5's `-bm25` on SQLite, and `ts_rank_cd`'s own
//! normalisation 32 (`rank / (rank + 1)`) on Postgres. Scores order the hits of one
//! search; they are not comparable across backends.

use bounty_core::knowledge::{
    ChunkId, DocumentFormat, KnowledgeKind, KnowledgeStatus, PreparedDocument, SearchQuery,
    embedding_from_bytes,
};
use bounty_core::{
    AccountId, ApiKeyMode, KnowledgeDocumentId, KnowledgeName, KnowledgeSourceId, PageLimit, Timestamp,
};

use crate::column::{Json, Text};
use crate::db::{BeginWrite, on_pool};
use crate::{Backend, Page, Store, StoreError};

/// A knowledge source as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowledgeSource {
    pub id: KnowledgeSourceId,
    pub account_id: AccountId,
    /// Live or test: the mode of the key that made it.
    pub mode: ApiKeyMode,
    pub name: String,
    pub kind: KnowledgeKind,
    /// The URLs of a `urls` source; empty for an upload.
    pub urls: Vec<String>,
    pub document_count: i64,
    pub chunk_count: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When a document last changed by indexing; `None` before any.
    pub indexed_at: Option<Timestamp>,
    /// `indexing` while a `urls` source is being fetched.
    pub status: KnowledgeStatus,
    /// Grows with every change to what the source retrieves (chunks,
    /// embeddings): what an in-memory copy of its embeddings is keyed by.
    pub index_version: i64,
}

/// A source to create.
#[derive(Debug, Clone)]
pub struct NewKnowledgeSource<'a> {
    pub id: KnowledgeSourceId,
    pub mode: ApiKeyMode,
    pub name: &'a KnowledgeName,
    pub kind: KnowledgeKind,
    pub urls: &'a [String],
}

/// A document of a source, without its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowledgeDocument {
    pub id: KnowledgeDocumentId,
    pub source_id: KnowledgeSourceId,
    /// Its file name or URL: what its chunks link to.
    pub locator: String,
    pub title: String,
    pub format: DocumentFormat,
    /// SHA-256 (hex) of its content.
    pub content_sha256: String,
    pub chunk_count: i64,
    pub created_at: Timestamp,
    pub indexed_at: Timestamp,
}

/// A stored document's text, for indexing it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub locator: String,
    pub format: DocumentFormat,
    pub content: String,
}

/// What [`Store::index_document`] did to a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentChange {
    /// New in the source: every chunk inserted.
    Added { chunks: usize },
    /// Changed: chunk rows kept, inserted and deleted.
    Updated {
        kept: usize,
        added: usize,
        removed: usize,
    },
    /// Same content and chunks as stored: nothing written.
    Unchanged,
}

/// One keyword search hit.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkHit {
    pub id: ChunkId,
    pub source_id: KnowledgeSourceId,
    pub heading_path: Vec<String>,
    pub text: String,
    /// Where the chunk came from (`faq.md#refunds`).
    pub link: String,
    /// In `[0, 1)`, higher is better (see the module's docs).
    pub score: f64,
}

/// A chunk with its embedding, for scoring by cosine in process.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddedChunk {
    pub id: ChunkId,
    pub source_id: KnowledgeSourceId,
    pub text: String,
    pub link: String,
    /// The model that made the embedding.
    pub model: String,
    pub embedding: Vec<f32>,
}

macro_rules! source_columns {
    () => {
        "id, account_id, livemode, name, kind, urls, document_count, chunk_count, created_at, updated_at,
         indexed_at, status, index_version"
    };
}

#[derive(sqlx::FromRow)]
struct SourceRow {
    id: Text<KnowledgeSourceId>,
    account_id: Text<AccountId>,
    livemode: bool,
    name: String,
    kind: Text<KnowledgeKind>,
    urls: Option<Json<Vec<String>>>,
    document_count: i64,
    chunk_count: i64,
    created_at: Timestamp,
    updated_at: Timestamp,
    indexed_at: Option<Timestamp>,
    status: Text<KnowledgeStatus>,
    index_version: i64,
}

impl From<SourceRow> for KnowledgeSource {
    fn from(r: SourceRow) -> Self {
        KnowledgeSource {
            id: r.id.0,
            account_id: r.account_id.0,
            mode: ApiKeyMode::from_livemode(r.livemode),
            name: r.name,
            kind: r.kind.0,
            urls: r.urls.map(|u| u.0).unwrap_or_default(),
            document_count: r.document_count,
            chunk_count: r.chunk_count,
            created_at: r.created_at,
            updated_at: r.updated_at,
            indexed_at: r.indexed_at,
            status: r.status.0,
            index_version: r.index_version,
        }
    }
}

#[derive(sqlx::FromRow)]
struct DocumentRow {
    id: Text<KnowledgeDocumentId>,
    source_id: Text<KnowledgeSourceId>,
    locator: String,
    title: String,
    format: Text<DocumentFormat>,
    content_sha256: String,
    chunk_count: i64,
    created_at: Timestamp,
    indexed_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct HitRow {
    id: Text<ChunkId>,
    source_id: Text<KnowledgeSourceId>,
    heading_path: Json<Vec<String>>,
    text: String,
    link: String,
    score: f64,
}

#[derive(sqlx::FromRow)]
struct EmbeddedRow {
    id: Text<ChunkId>,
    source_id: Text<KnowledgeSourceId>,
    text: String,
    link: String,
    embedding_model: String,
    embedding: Vec<u8>,
}

/// `$first, $first+1, …`: `n` numbered placeholders.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The FTS5 query for `q`: each word a quoted string, ORed. The words hold
/// only letters and digits; doubling any `"` keeps that true if they ever
/// do not.
fn fts5_match(q: &SearchQuery) -> String {
    q.terms()
        .iter()
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// The `to_tsquery` text for `q`: each word quoted as a lexeme, ORed.
fn tsquery(q: &SearchQuery) -> String {
    q.terms()
        .iter()
        .map(|t| format!("'{}'", t.replace('\'', "''").replace('\\', "\\\\")))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Sets a source's document and chunk counts from its rows, and its
/// `indexed_at`, inside the transaction `$tx` that changed them.
macro_rules! refresh_counts {
    ($tx:ident, $account:expr, $source:expr, $now:expr) => {
        sqlx::query(
            "update knowledge_sources
             set document_count = (select count(*) from knowledge_documents where account_id = $1 and source_id = $2),
                 chunk_count = (select count(*) from knowledge_chunks where account_id = $1 and source_id = $2),
                 indexed_at = $3, updated_at = $3, index_version = index_version + 1
             where account_id = $1 and id = $2",
        )
        .bind($account.to_string())
        .bind($source.to_string())
        .bind($now)
        .execute(&mut *$tx)
        .await?;
    };
}

impl Store {
    /// Creates a source, empty.
    pub async fn create_knowledge_source(
        &self,
        account: AccountId,
        new: &NewKnowledgeSource<'_>,
    ) -> Result<KnowledgeSource, StoreError> {
        let now = self.now();
        let urls = (!new.urls.is_empty()).then(|| serde_json::Value::from(new.urls.to_vec()).to_string());
        let status = match new.kind {
            KnowledgeKind::Urls => KnowledgeStatus::Indexing,
            KnowledgeKind::Upload => KnowledgeStatus::Ready,
        };
        let row: SourceRow = on_pool!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query_as(concat!(
                "insert into knowledge_sources (id, account_id, livemode, name, kind, urls, created_at, updated_at,
                     status)
                 values ($1, $2, $3, $4, $5, $6, $7, $7, $8)
                 returning ",
                source_columns!()
            ))
            .bind(new.id.to_string())
            .bind(account.to_string())
            .bind(new.mode.livemode())
            .bind(new.name.as_str().to_owned())
            .bind(new.kind.as_str())
            .bind(urls.clone())
            .bind(now)
            .bind(status.as_str())
            .fetch_one(&mut *tx)
            .await?;
            for (i, url) in new.urls.iter().enumerate() {
                sqlx::query(
                    "insert into knowledge_urls (account_id, source_id, url, ordinal, status)
                     values ($1, $2, $3, $4, 'pending')",
                )
                .bind(account.to_string())
                .bind(new.id.to_string())
                .bind(url.clone())
                .bind(i64::try_from(i).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            row
        });
        Ok(row.into())
    }

    /// One of the account's sources.
    pub async fn get_knowledge_source(
        &self,
        account: AccountId,
        id: KnowledgeSourceId,
    ) -> Result<Option<KnowledgeSource>, StoreError> {
        let row: Option<SourceRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", source_columns!(), " from knowledge_sources where account_id = $1 and id = $2"
            ))
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(KnowledgeSource::from))
    }

    /// The account's sources of `mode`, newest first.
    pub async fn list_knowledge_sources(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        limit: PageLimit,
        after: Option<KnowledgeSourceId>,
    ) -> Result<Page<KnowledgeSource>, StoreError> {
        let rows: Vec<SourceRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", source_columns!(), " from knowledge_sources
                 where account_id = $1 and livemode = $2 and ($3 is null or id < $3)
                 order by id desc limit $4"
            ))
            .bind(account.to_string())
            .bind(mode.livemode())
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        let items = rows.into_iter().map(KnowledgeSource::from).collect();
        Ok(Page::from_overfetch(items, limit.get(), |s: &KnowledgeSource| {
            s.id.to_string()
        }))
    }

    /// Every account's sources, or one account's, or one source: what the
    /// operator's `bounty knowledge reindex` walks. By id.
    pub async fn admin_list_knowledge_sources(
        &self,
        account: Option<AccountId>,
        source: Option<KnowledgeSourceId>,
    ) -> Result<Vec<KnowledgeSource>, StoreError> {
        let rows: Vec<SourceRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", source_columns!(), " from knowledge_sources
                 where ($1 is null or account_id = $1) and ($2 is null or id = $2)
                 order by id"
            ))
            .bind(account.map(|a| a.to_string()))
            .bind(source.map(|s| s.to_string()))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(KnowledgeSource::from).collect())
    }

    /// Deletes a source with its documents and chunks, in one transaction;
    /// `false` when the account has no such source.
    pub async fn delete_knowledge_source(
        &self,
        account: AccountId,
        id: KnowledgeSourceId,
    ) -> Result<bool, StoreError> {
        let deleted = on_pool!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            for sql in [
                "delete from knowledge_chunks where account_id = $1 and source_id = $2",
                "delete from knowledge_documents where account_id = $1 and source_id = $2",
                "delete from knowledge_urls where account_id = $1 and source_id = $2",
            ] {
                sqlx::query(sql)
                    .bind(account.to_string())
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            let n = sqlx::query("delete from knowledge_sources where account_id = $1 and id = $2")
                .bind(account.to_string())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(deleted > 0)
    }

    /// A source's documents, by locator.
    pub async fn knowledge_documents(
        &self,
        account: AccountId,
        source: KnowledgeSourceId,
    ) -> Result<Vec<KnowledgeDocument>, StoreError> {
        let rows: Vec<DocumentRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select d.id, d.source_id, d.locator, d.title, d.format, d.content_sha256,
                     (select count(*) from knowledge_chunks c where c.document_id = d.id) as chunk_count,
                     d.created_at, d.indexed_at
                 from knowledge_documents d
                 where d.account_id = $1 and d.source_id = $2
                 order by d.locator",
            )
            .bind(account.to_string())
            .bind(source.to_string())
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| KnowledgeDocument {
                id: r.id.0,
                source_id: r.source_id.0,
                locator: r.locator,
                title: r.title,
                format: r.format.0,
                content_sha256: r.content_sha256,
                chunk_count: r.chunk_count,
                created_at: r.created_at,
                indexed_at: r.indexed_at,
            })
            .collect())
    }

    /// A source's documents with their content, by locator: what
    /// re-indexing cuts again.
    pub async fn knowledge_document_contents(
        &self,
        account: AccountId,
        source: KnowledgeSourceId,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        let rows: Vec<(String, Text<DocumentFormat>, String)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select locator, format, content from knowledge_documents
                 where account_id = $1 and source_id = $2 order by locator",
            )
            .bind(account.to_string())
            .bind(source.to_string())
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(locator, format, content)| StoredDocument {
                locator,
                format: format.0,
                content,
            })
            .collect())
    }

    /// Writes one prepared document of a source, incrementally, in one
    /// transaction (see the module's docs); `None` when the account has no
    /// such source.
    pub async fn index_document(
        &self,
        account: AccountId,
        source: KnowledgeSourceId,
        doc: &PreparedDocument,
    ) -> Result<Option<DocumentChange>, StoreError> {
        let now = self.now();
        let new_ids: Vec<String> = doc.chunks.iter().map(|c| c.id.to_string()).collect();
        let paths: Vec<String> = doc
            .chunks
            .iter()
            .map(|c| serde_json::Value::from(c.heading_path.clone()).to_string())
            .collect();
        let change = on_pool!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            let found: Option<(String,)> =
                sqlx::query_as("select id from knowledge_sources where account_id = $1 and id = $2")
                    .bind(account.to_string())
                    .bind(source.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
            if found.is_none() {
                return Ok(None);
            }
            let existing: Option<(String, String)> = sqlx::query_as(
                "select id, content_sha256 from knowledge_documents
                 where account_id = $1 and source_id = $2 and locator = $3",
            )
            .bind(account.to_string())
            .bind(source.to_string())
            .bind(doc.locator.clone())
            .fetch_optional(&mut *tx)
            .await?;
            // The stored chunks of the document: (id, ordinal, link).
            let (document_id, stored): (String, Vec<(String, i64, String)>) = match &existing {
                Some((id, _)) => {
                    let rows = sqlx::query_as(
                        "select id, ordinal, link from knowledge_chunks
                         where account_id = $1 and document_id = $2 order by ordinal",
                    )
                    .bind(account.to_string())
                    .bind(id.clone())
                    .fetch_all(&mut *tx)
                    .await?;
                    (id.clone(), rows)
                }
                None => (KnowledgeDocumentId::new().to_string(), Vec::new()),
            };
            let same_chunks = stored.len() == doc.chunks.len()
                && stored.iter().zip(&doc.chunks).all(|((id, ordinal, link), c)| {
                    *id == c.id.as_str() && *ordinal == i64::from(c.ordinal) && *link == c.link
                });
            let change = match &existing {
                Some((_, sha)) if *sha == doc.content_sha256 && same_chunks => DocumentChange::Unchanged,
                Some(_) => {
                    sqlx::query(
                        "update knowledge_documents
                         set title = $3, format = $4, content = $5, content_sha256 = $6, indexed_at = $7
                         where account_id = $1 and id = $2",
                    )
                    .bind(account.to_string())
                    .bind(document_id.clone())
                    .bind(doc.title.clone())
                    .bind(doc.format.as_str())
                    .bind(doc.content.clone())
                    .bind(doc.content_sha256.clone())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    let mut removed = 0;
                    for (id, _, _) in &stored {
                        if !new_ids.contains(id) {
                            sqlx::query("delete from knowledge_chunks where account_id = $1 and id = $2")
                                .bind(account.to_string())
                                .bind(id.clone())
                                .execute(&mut *tx)
                                .await?;
                            removed += 1;
                        }
                    }
                    DocumentChange::Updated {
                        kept: stored.len() - removed,
                        added: 0,
                        removed,
                    }
                }
                None => {
                    sqlx::query(
                        "insert into knowledge_documents (id, account_id, source_id, locator, title, format,
                             content, content_sha256, created_at, indexed_at)
                         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
                    )
                    .bind(document_id.clone())
                    .bind(account.to_string())
                    .bind(source.to_string())
                    .bind(doc.locator.clone())
                    .bind(doc.title.clone())
                    .bind(doc.format.as_str())
                    .bind(doc.content.clone())
                    .bind(doc.content_sha256.clone())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    DocumentChange::Added { chunks: 0 }
                }
            };
            if change == DocumentChange::Unchanged {
                tx.rollback().await?;
                return Ok(Some(change));
            }
            let mut added = 0;
            for (c, path) in doc.chunks.iter().zip(&paths) {
                match stored.iter().find(|(id, _, _)| id == c.id.as_str()) {
                    Some((_, ordinal, link)) if *ordinal == i64::from(c.ordinal) && *link == c.link => {}
                    Some(_) => {
                        sqlx::query(
                            "update knowledge_chunks set ordinal = $3, link = $4 where account_id = $1 and id = $2",
                        )
                        .bind(account.to_string())
                        .bind(c.id.to_string())
                        .bind(i64::from(c.ordinal))
                        .bind(c.link.clone())
                        .execute(&mut *tx)
                        .await?;
                    }
                    None => {
                        sqlx::query(
                            "insert into knowledge_chunks (id, account_id, source_id, document_id, ordinal,
                                 heading_path, text, link)
                             values ($1, $2, $3, $4, $5, $6, $7, $8)",
                        )
                        .bind(c.id.to_string())
                        .bind(account.to_string())
                        .bind(source.to_string())
                        .bind(document_id.clone())
                        .bind(i64::from(c.ordinal))
                        .bind(path.clone())
                        .bind(c.text.clone())
                        .bind(c.link.clone())
                        .execute(&mut *tx)
                        .await?;
                        added += 1;
                    }
                }
            }
            refresh_counts!(tx, account, source, now);
            tx.commit().await?;
            match change {
                DocumentChange::Updated { kept, removed, .. } => DocumentChange::Updated { kept, added, removed },
                _ => DocumentChange::Added { chunks: added },
            }
        });
        Ok(Some(change))
    }

    /// Deletes a source's documents whose locators are not in `keep`, with
    /// their chunks, in one transaction: how a source's document list is
    /// replaced. The number of documents deleted.
    pub async fn remove_knowledge_documents_except(
        &self,
        account: AccountId,
        source: KnowledgeSourceId,
        keep: &[String],
    ) -> Result<u64, StoreError> {
        let now = self.now();
        let stale: Vec<(String, String)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, locator from knowledge_documents where account_id = $1 and source_id = $2",
            )
            .bind(account.to_string())
            .bind(source.to_string())
            .fetch_all(pool)
            .await?
        });
        let stale: Vec<String> = stale
            .into_iter()
            .filter(|(_, locator)| !keep.contains(locator))
            .map(|(id, _)| id)
            .collect();
        if stale.is_empty() {
            return Ok(0);
        }
        let removed = on_pool!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            let mut n = 0;
            for id in &stale {
                sqlx::query("delete from knowledge_chunks where account_id = $1 and document_id = $2")
                    .bind(account.to_string())
                    .bind(id.clone())
                    .execute(&mut *tx)
                    .await?;
                n += sqlx::query("delete from knowledge_documents where account_id = $1 and source_id = $2 and id = $3")
                    .bind(account.to_string())
                    .bind(source.to_string())
                    .bind(id.clone())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            refresh_counts!(tx, account, source, now);
            tx.commit().await?;
            n
        });
        Ok(removed)
    }

    /// The best `limit` chunks of the account's `sources` for `query`, best
    /// first (see the module's docs for the score). No sources, no hits.
    pub async fn search_chunks(
        &self,
        account: AccountId,
        sources: &[KnowledgeSourceId],
        query: &SearchQuery,
        limit: u32,
    ) -> Result<Vec<ChunkHit>, StoreError> {
        if sources.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let ids = placeholders(4, sources.len());
        // `$1` the account, `$2` the query's words, `$3` the limit, then
        // the sources.
        let (sql, words) = match self.backend() {
            Backend::Sqlite => (
                // The full-text query runs once, materialized, before the
                // join: joined directly, SQLite's planner drove the join from
                // the account's chunks and ran the MATCH (and bm25's
                // statistics) once per chunk, 380 ms for 600 chunks.
                format!(
                    "with hits as materialized (
                         select rowid, bm25(knowledge_chunks_fts) as rank from knowledge_chunks_fts
                         where knowledge_chunks_fts match $2
                     )
                     select c.id, c.source_id, c.heading_path, c.text, c.link,
                         -hits.rank / (1.0 - hits.rank) as score
                     from hits
                     join knowledge_chunks c on c.rowid = hits.rowid
                     where c.account_id = $1 and c.source_id in ({ids})
                     order by hits.rank, c.id
                     limit $3"
                ),
                fts5_match(query),
            ),
            Backend::Postgres => (
                format!(
                    "select c.id, c.source_id, c.heading_path, c.text, c.link,
                         ts_rank_cd(c.search, q, 32)::float8 as score
                     from knowledge_chunks c, to_tsquery('english', $2) q
                     where c.search @@ q and c.account_id = $1 and c.source_id in ({ids})
                     order by score desc, c.id
                     limit $3"
                ),
                tsquery(query),
            ),
        };
        let rows: Vec<HitRow> = on_pool!(&self.db, pool => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(account.to_string())
                .bind(words.clone())
                .bind(i64::from(limit));
            for s in sources {
                q = q.bind(s.to_string());
            }
            q.fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|r| ChunkHit {
                id: r.id.0,
                source_id: r.source_id.0,
                heading_path: r.heading_path.0,
                text: r.text,
                link: r.link,
                score: r.score,
            })
            .collect())
    }

    /// Records a chunk's embedding; `false` when the account has no such
    /// chunk.
    pub async fn set_chunk_embedding(
        &self,
        account: AccountId,
        chunk: &ChunkId,
        model: &str,
        embedding: &[f32],
    ) -> Result<bool, StoreError> {
        let written = self
            .set_chunk_embeddings(account, model, &[(chunk.clone(), embedding.to_vec())])
            .await?;
        Ok(written > 0)
    }

    /// The chunks of the account's `sources` that have an embedding, for
    /// scoring by cosine in process.
    pub async fn chunks_with_embeddings(
        &self,
        account: AccountId,
        sources: &[KnowledgeSourceId],
    ) -> Result<Vec<EmbeddedChunk>, StoreError> {
        if sources.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "select id, source_id, text, link, embedding_model, embedding from knowledge_chunks
             where account_id = $1 and embedding is not null and source_id in ({})
             order by id",
            placeholders(2, sources.len())
        );
        let rows: Vec<EmbeddedRow> = on_pool!(&self.db, pool => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(account.to_string());
            for s in sources {
                q = q.bind(s.to_string());
            }
            q.fetch_all(pool).await?
        });
        rows.into_iter()
            .map(|r| {
                let embedding = embedding_from_bytes(&r.embedding).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "knowledge_chunks.embedding of {}: {} bytes is not whole f32s",
                        r.id.0,
                        r.embedding.len()
                    ))
                })?;
                Ok(EmbeddedChunk {
                    id: r.id.0,
                    source_id: r.source_id.0,
                    text: r.text,
                    link: r.link,
                    model: r.embedding_model,
                    embedding,
                })
            })
            .collect()
    }
}
