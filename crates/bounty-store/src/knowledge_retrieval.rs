//! What hybrid retrieval and indexing read and write besides the
//! documents themselves (migration 0024): the sources a retrieval may use
//! with their `index_version`, embeddings (written in batches, read per
//! source and model), the chunks a retrieval returns, and the per-URL
//! status of a `urls` source.
//!
//! Every write that changes what a source retrieves bumps its
//! `index_version` in the same transaction (chunks through
//! `refresh_counts!` in `knowledge.rs`, embeddings here), so a process
//! holding a source's embeddings in memory can tell from one indexed read
//! whether its copy is current.

use bounty_core::knowledge::{
    ChunkId, KnowledgeKind, KnowledgeStatus, UrlStatus, embedding_from_bytes, embedding_to_bytes,
};
use bounty_core::{AccountId, KnowledgeSourceId, Timestamp};

use crate::column::{Json, Text};
use crate::db::{BeginWrite, in_list, on_pool};
use crate::{Store, StoreError};

/// A source a retrieval may read: the account's, and not deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrievalSource {
    pub id: KnowledgeSourceId,
    pub kind: KnowledgeKind,
    /// See [`crate::KnowledgeSource::index_version`].
    pub index_version: i64,
}

/// A chunk that has no embedding of a model yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkToEmbed {
    pub id: ChunkId,
    pub heading_path: Vec<String>,
    pub text: String,
}

/// A chunk as a retrieval returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkDetail {
    pub id: ChunkId,
    pub source_id: KnowledgeSourceId,
    /// The document's locator: its name, or its URL.
    pub document: String,
    pub heading_path: Vec<String>,
    pub text: String,
    /// `locator#anchor`.
    pub link: String,
}

/// One URL of a `urls` source and where its fetching stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowledgeUrl {
    pub url: String,
    pub status: UrlStatus,
    /// Why the last fetch failed.
    pub error: Option<String>,
    /// When it was last fetched and indexed.
    pub fetched_at: Option<Timestamp>,
}

#[derive(sqlx::FromRow)]
struct DetailRow {
    id: Text<ChunkId>,
    source_id: Text<KnowledgeSourceId>,
    document: String,
    heading_path: Json<Vec<String>>,
    text: String,
    link: String,
}

/// Rows of chunk ids and embeddings, as read.
type EmbeddingRows = Vec<(Text<ChunkId>, Vec<u8>)>;

impl Store {
    /// Which of `sources` the account has, with their kind and version, by
    /// id. A deleted source, or another account's, is simply not there.
    pub async fn retrieval_sources(
        &self,
        account: AccountId,
        sources: &[KnowledgeSourceId],
    ) -> Result<Vec<RetrievalSource>, StoreError> {
        let rows: Vec<(Text<KnowledgeSourceId>, Text<KnowledgeKind>, i64)> = in_list!(
            self,
            "knowledge_sources.id, knowledge_sources.kind, knowledge_sources.index_version",
            "knowledge_sources",
            "id",
            account,
            sources,
            "order by knowledge_sources.id"
        );
        Ok(rows
            .into_iter()
            .map(|(id, kind, index_version)| RetrievalSource {
                id: id.0,
                kind: kind.0,
                index_version,
            })
            .collect())
    }

    /// The chunks `ids` of the account, with their document's locator, in
    /// no particular order; ids the account has not are left out.
    pub async fn chunk_details(
        &self,
        account: AccountId,
        ids: &[ChunkId],
    ) -> Result<Vec<ChunkDetail>, StoreError> {
        let rows: Vec<DetailRow> = in_list!(
            self,
            "knowledge_chunks.id, knowledge_chunks.source_id,
             (select d.locator from knowledge_documents d where d.id = knowledge_chunks.document_id) as document,
             knowledge_chunks.heading_path, knowledge_chunks.text, knowledge_chunks.link",
            "knowledge_chunks",
            "id",
            account,
            ids,
            ""
        );
        Ok(rows
            .into_iter()
            .map(|r| ChunkDetail {
                id: r.id.0,
                source_id: r.source_id.0,
                document: r.document,
                heading_path: r.heading_path.0,
                text: r.text,
                link: r.link,
            })
            .collect())
    }

    /// The embeddings of `model` of one source's chunks, by chunk id.
    pub async fn source_embeddings(
        &self,
        account: AccountId,
        source: KnowledgeSourceId,
        model: &str,
    ) -> Result<Vec<(ChunkId, Vec<f32>)>, StoreError> {
        let rows: EmbeddingRows = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, embedding from knowledge_chunks
                 where account_id = $1 and source_id = $2 and embedding_model = $3
                 order by id",
            )
            .bind(account.to_string())
            .bind(source.to_string())
            .bind(model.to_owned())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(id, bytes)| {
                let v = embedding_from_bytes(&bytes).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "knowledge_chunks.embedding of {}: {} bytes is not whole f32s",
                        id.0,
                        bytes.len()
                    ))
                })?;
                Ok((id.0, v))
            })
            .collect()
    }

    /// Up to `limit` chunks of a source that have no embedding of `model`
    /// (none, or another model's), by id, after `after`.
    pub async fn chunks_to_embed(
        &self,
        account: AccountId,
        source: KnowledgeSourceId,
        model: &str,
        after: Option<&ChunkId>,
        limit: u32,
    ) -> Result<Vec<ChunkToEmbed>, StoreError> {
        let rows: Vec<(Text<ChunkId>, Json<Vec<String>>, String)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, heading_path, text from knowledge_chunks
                 where account_id = $1 and source_id = $2
                     and (embedding_model is null or embedding_model <> $3)
                     and ($4 is null or id > $4)
                 order by id limit $5",
            )
            .bind(account.to_string())
            .bind(source.to_string())
            .bind(model.to_owned())
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, path, text)| ChunkToEmbed {
                id: id.0,
                heading_path: path.0,
                text,
            })
            .collect())
    }

    /// How many chunks of a source have no embedding of `model`.
    pub async fn count_chunks_to_embed(
        &self,
        account: AccountId,
        source: KnowledgeSourceId,
        model: &str,
    ) -> Result<usize, StoreError> {
        let (n,): (i64,) = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select count(*) from knowledge_chunks
                 where account_id = $1 and source_id = $2
                     and (embedding_model is null or embedding_model <> $3)",
            )
            .bind(account.to_string())
            .bind(source.to_string())
            .bind(model.to_owned())
            .fetch_one(pool)
            .await?
        });
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Records embeddings of `model`, in one transaction that bumps the
    /// `index_version` of each source touched; the number of chunks
    /// written (a chunk deleted meanwhile, or another account's, is not).
    pub async fn set_chunk_embeddings(
        &self,
        account: AccountId,
        model: &str,
        embeddings: &[(ChunkId, Vec<f32>)],
    ) -> Result<usize, StoreError> {
        if embeddings.is_empty() {
            return Ok(0);
        }
        let written = on_pool!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            let mut sources: Vec<String> = Vec::new();
            for (chunk, v) in embeddings {
                let source: Option<(String,)> = sqlx::query_as(
                    "update knowledge_chunks set embedding = $3, embedding_model = $4
                     where account_id = $1 and id = $2
                     returning source_id",
                )
                .bind(account.to_string())
                .bind(chunk.to_string())
                .bind(embedding_to_bytes(v))
                .bind(model.to_owned())
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((s,)) = source {
                    sources.push(s);
                }
            }
            let written = sources.len();
            sources.sort();
            sources.dedup();
            for s in &sources {
                sqlx::query(
                    "update knowledge_sources set index_version = index_version + 1
                     where account_id = $1 and id = $2",
                )
                .bind(account.to_string())
                .bind(s.clone())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            written
        });
        Ok(written)
    }

    /// The URLs of a `urls` source, in the order given, with their status.
    pub async fn knowledge_urls(
        &self,
        account: AccountId,
        source: KnowledgeSourceId,
    ) -> Result<Vec<KnowledgeUrl>, StoreError> {
        let rows: Vec<(String, Text<UrlStatus>, Option<String>, Option<Timestamp>)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select url, status, error, fetched_at from knowledge_urls
                 where account_id = $1 and source_id = $2 order by ordinal",
            )
            .bind(account.to_string())
            .bind(source.to_string())
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(url, status, error, fetched_at)| KnowledgeUrl {
                url,
                status: status.0,
                error,
                fetched_at,
            })
            .collect())
    }

    /// Records how fetching one URL went: `fetched` (with the time), or
    /// `failed` with why. Writes only when the status or error changes, so
    /// re-fetching an unchanged page writes nothing.
    pub async fn set_url_status(
        &self,
        account: AccountId,
        source: KnowledgeSourceId,
        url: &str,
        status: UrlStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = self.now();
        on_pool!(&self.db, pool => {
            sqlx::query(
                "update knowledge_urls
                 set status = $4, error = $5,
                     fetched_at = case when $4 = 'fetched' then $6 else fetched_at end
                 where account_id = $1 and source_id = $2 and url = $3
                     and (status <> $4 or coalesce(error, '') <> coalesce($5, ''))",
            )
            .bind(account.to_string())
            .bind(source.to_string())
            .bind(url.to_owned())
            .bind(status.as_str())
            .bind(error.map(str::to_owned))
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Sets a source's status (a no-op when it has it already); `false`
    /// when the account has no such source.
    pub async fn set_knowledge_status(
        &self,
        account: AccountId,
        source: KnowledgeSourceId,
        status: KnowledgeStatus,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(&self.db, pool => {
            sqlx::query(
                "update knowledge_sources set status = $3
                 where account_id = $1 and id = $2 and status <> $3",
            )
            .bind(account.to_string())
            .bind(source.to_string())
            .bind(status.as_str())
            .execute(pool)
            .await?
            .rows_affected()
        });
        if n > 0 {
            return Ok(true);
        }
        Ok(self.get_knowledge_source(account, source).await?.is_some())
    }
}
