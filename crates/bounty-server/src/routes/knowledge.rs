//! Knowledge sources: `POST /v1/knowledge` (an upload source with its
//! documents, indexed at once: 201; or a `urls` source, answered 202 at
//! once and fetched in the background through the guarded HTTP client),
//! `GET /v1/knowledge` and `GET /v1/knowledge/{id}` (with its documents and,
//! for a `urls` source, each URL's status and last error), `DELETE
//! /v1/knowledge/{id}` (documents and chunks with it),
//! `POST /v1/knowledge/{id}/documents` (more documents, or new versions of
//! some: only what changed is re-indexed), and
//! `GET /v1/knowledge/{id}/search?q=` (the hybrid retrieval an agent would
//! be given, with each half's rank).
//!
//! With `[knowledge] embedding_model` set, indexing embeds the chunks that
//! lack an embedding once their text is committed; an embedding failure
//! leaves them keyword-only (logged) and is reported in `indexed`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bounty_agents::knowledge::{
    EmbedReport, IndexReport, KnowledgeRefusal, add_documents, create_upload_source, create_url_source,
    embed_missing, retrieve, spawn_fetch,
};
use bounty_core::knowledge::{DocumentFormat, DocumentInput, KnowledgeKind, SearchQuery};
use bounty_core::{AccountId, KnowledgeDocumentId, KnowledgeName, KnowledgeSourceId};
use bounty_store::{KnowledgeDocument, KnowledgeSource, KnowledgeUrl};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::pagination::ListParams;
use crate::routes::path_id;
use crate::state::AppState;

/// The most hits a search returns.
const MAX_SEARCH_LIMIT: u32 = 50;
/// Hits a search returns when `limit` is not given.
const DEFAULT_SEARCH_LIMIT: u32 = 10;

/// A knowledge source.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KnowledgeOut {
    pub id: KnowledgeSourceId,
    pub name: String,
    /// `upload` or `urls`.
    pub kind: String,
    /// `indexing` while a `urls` source is being fetched, else `ready`.
    pub status: String,
    pub document_count: i64,
    pub chunk_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When a document last changed by indexing.
    pub indexed_at: Option<DateTime<Utc>>,
    pub livemode: bool,
}

impl From<KnowledgeSource> for KnowledgeOut {
    fn from(s: KnowledgeSource) -> Self {
        KnowledgeOut {
            id: s.id,
            name: s.name,
            kind: s.kind.to_string(),
            status: s.status.to_string(),
            document_count: s.document_count,
            chunk_count: s.chunk_count,
            created_at: s.created_at,
            updated_at: s.updated_at,
            indexed_at: s.indexed_at,
            livemode: s.mode.livemode(),
        }
    }
}

/// A document of a source.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentOut {
    pub id: KnowledgeDocumentId,
    /// Its name in the source: what its chunks link to.
    pub name: String,
    /// Its own title (HTML `<title>`, first heading), or its name.
    pub title: String,
    /// `markdown`, `html` or `text`.
    pub format: String,
    /// SHA-256 (hex) of its content.
    pub content_sha256: String,
    pub chunk_count: i64,
    pub indexed_at: DateTime<Utc>,
}

impl From<KnowledgeDocument> for DocumentOut {
    fn from(d: KnowledgeDocument) -> Self {
        DocumentOut {
            id: d.id,
            name: d.locator,
            title: d.title,
            format: d.format.to_string(),
            content_sha256: d.content_sha256,
            chunk_count: d.chunk_count,
            indexed_at: d.indexed_at,
        }
    }
}

/// One URL of a `urls` source.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UrlOut {
    pub url: String,
    /// `pending` (not fetched yet), `fetched` or `failed`.
    pub status: String,
    /// Why the last fetch failed (the document of an earlier fetch, if
    /// any, is kept).
    pub error: Option<String>,
    /// When it was last fetched and indexed.
    pub fetched_at: Option<DateTime<Utc>>,
    /// Chunks of its document (0 before a successful fetch).
    pub chunk_count: i64,
}

/// A source with its documents.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KnowledgeDetail {
    #[serde(flatten)]
    pub source: KnowledgeOut,
    pub documents: Vec<DocumentOut>,
    /// A `urls` source's URLs, in the order given; empty for an upload.
    pub urls: Vec<UrlOut>,
}

fn url_out(u: KnowledgeUrl, documents: &[DocumentOut]) -> UrlOut {
    let chunk_count = documents
        .iter()
        .find(|d| d.name == u.url)
        .map_or(0, |d| d.chunk_count);
    UrlOut {
        url: u.url,
        status: u.status.to_string(),
        error: u.error,
        fetched_at: u.fetched_at,
        chunk_count,
    }
}

/// What indexing a request's documents did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IndexOut {
    /// Documents new to the source.
    pub added: usize,
    /// Documents whose text changed.
    pub updated: usize,
    /// Documents sent again unchanged: nothing was written for them.
    pub unchanged: usize,
    pub chunks_added: usize,
    pub chunks_removed: usize,
    /// Chunks embedded, when an embedding model is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedded: Option<usize>,
    /// The embedder's error code when embedding failed: the chunks not
    /// embedded are found by keyword until the next re-index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embed_error: Option<String>,
}

impl IndexOut {
    fn new(r: IndexReport, embedded: Option<EmbedReport>) -> Self {
        IndexOut {
            added: r.added,
            updated: r.updated,
            unchanged: r.unchanged,
            chunks_added: r.chunks_added,
            chunks_removed: r.chunks_removed,
            embedded: embedded.as_ref().map(|e| e.embedded),
            embed_error: embedded.and_then(|e| e.error.map(str::to_owned)),
        }
    }
}

/// A source after indexing, and what the indexing did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KnowledgeIndexed {
    #[serde(flatten)]
    pub source: KnowledgeOut,
    pub indexed: IndexOut,
}

/// One page of sources, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KnowledgeList {
    pub data: Vec<KnowledgeOut>,
    pub next_cursor: Option<String>,
}

/// A document to index.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentIn {
    /// Its name in the source (a file name, at most 200 characters, no
    /// `#`, `/` or `\`): chunks link to `name#heading`. A name the source
    /// has already replaces that document.
    pub name: String,
    /// `markdown`, `html` or `text`.
    pub format: String,
    /// The text, at most 256 KiB.
    pub content: String,
}

/// A knowledge source to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeIn {
    /// A label, at most 100 characters.
    pub name: String,
    /// `upload` (documents in this request) or `urls` (pages fetched in
    /// the background).
    pub kind: String,
    /// The documents of an `upload` source: 1 to 50.
    pub documents: Option<Vec<DocumentIn>>,
    /// The pages of a `urls` source: 1 to 100 absolute http or https URLs,
    /// no fragment. Each is fetched through the same rules as agent tools
    /// (private addresses refused unless `tools.allow_private`); its
    /// `Content-Type` (`text/html`, `text/markdown`, `text/plain`) gives
    /// the format.
    pub urls: Option<Vec<String>>,
}

/// More documents for an upload source.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentsIn {
    /// 1 to 50 documents.
    pub documents: Vec<DocumentIn>,
}

/// `?q=&limit=` of a search.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words to look for (at most 500 characters); operators and quotes
    /// are not syntax, only words count.
    pub q: Option<String>,
    /// How many chunks, 1 to 50 (default 10).
    pub limit: Option<u32>,
}

/// One chunk found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChunkHitOut {
    /// Stable: the same text in the same place keeps its id across
    /// re-indexing.
    pub chunk_id: String,
    /// The document's name (an upload's file name, a page's URL).
    pub document: String,
    /// The headings above the chunk, outermost first.
    pub heading_path: Vec<String>,
    pub text: String,
    /// Where it came from: `name#anchor`, or the page's URL with the
    /// section's anchor.
    pub link: String,
    /// Reciprocal rank fusion of the two halves, scaled to (0, 1]: 1 is
    /// first in both, 0.5 first in one only. Comparable within one search.
    pub score: f64,
    /// Which half found it: `keyword`, `vector` or `both`.
    pub matched: String,
    /// Its rank in the keyword half, from 1.
    pub keyword_rank: Option<u32>,
    /// Its rank in the vector half, from 1.
    pub vector_rank: Option<u32>,
}

/// A search's hits, best first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchOut {
    pub data: Vec<ChunkHitOut>,
    /// Candidates the keyword half found.
    pub keyword_hits: usize,
    /// Candidates the vector half found.
    pub vector_hits: usize,
    /// The embedding model of the vector half; null when it did not run
    /// (none configured, or the query could not be embedded).
    pub embedding_model: Option<String>,
    /// The whole retrieval, in milliseconds.
    pub latency_ms: f64,
}

impl From<KnowledgeRefusal> for ApiError {
    fn from(e: KnowledgeRefusal) -> Self {
        match e {
            KnowledgeRefusal::Invalid(e) => ApiError::validation(e.field, e.problem.to_string()),
            KnowledgeRefusal::NotFound => ApiError::NotFound {
                kind: "knowledge source",
                id: String::new(),
            },
            e @ KnowledgeRefusal::NotUpload => ApiError::UnsupportedKind {
                message: e.to_string(),
            },
            KnowledgeRefusal::Store(e) => e.into(),
        }
    }
}

/// The request's documents, their formats parsed.
fn inputs<'a>(docs: &'a [DocumentIn]) -> ApiResult<Vec<DocumentInput<'a>>> {
    docs.iter()
        .enumerate()
        .map(|(i, d)| -> ApiResult<DocumentInput<'a>> {
            let format: DocumentFormat =
                d.format.parse().map_err(|e: bounty_core::stored_enum::BadName| {
                    ApiError::validation(format!("documents[{i}].format"), e.to_string())
                })?;
            Ok(DocumentInput {
                name: &d.name,
                format,
                content: &d.content,
            })
        })
        .collect()
}

/// One of the key's sources (of its mode), or a 404.
async fn own_source(state: &AppState, auth: &Auth, id: &str) -> ApiResult<KnowledgeSource> {
    let sid: KnowledgeSourceId = path_id("knowledge source", id)?;
    match state.store.get_knowledge_source(auth.account_id, sid).await? {
        Some(s) if s.mode == auth.mode => Ok(s),
        _ => Err(ApiError::NotFound {
            kind: "knowledge source",
            id: id.to_owned(),
        }),
    }
}

/// Embeds what the source lacks, when an embedding model is configured.
async fn embed_after_index(
    state: &AppState,
    account: AccountId,
    source: KnowledgeSourceId,
) -> ApiResult<Option<EmbedReport>> {
    let Some(embedder) = state.knowledge_embedder.as_deref() else {
        return Ok(None);
    };
    Ok(Some(
        embed_missing(&state.store, embedder, account, source, |_| {}).await?,
    ))
}

/// Creates a knowledge source. An `upload` source's documents are checked
/// before anything is stored (a refused request stores nothing) and
/// indexed at once: 201. A `urls` source's URLs are checked, the source is
/// stored `indexing` and answered 202 at once, and its pages are fetched
/// in the background (`GET /v1/knowledge/{id}` shows each URL's status).
#[utoipa::path(
    post,
    path = "/v1/knowledge",
    tag = "knowledge",
    security(("api_key" = [])),
    request_body = KnowledgeIn,
    responses(
        (status = 201, description = "An upload source, indexed", body = KnowledgeIndexed),
        (status = 202, description = "A `urls` source, `indexing`: fetched in the background", body = KnowledgeDetail),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 422, description = "`validation_failed` naming the field (`name`, `documents[0].content`, \
            `urls[2]`, …)", body = ErrorBody),
    )
)]
pub async fn create_knowledge(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<KnowledgeIn>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let name = KnowledgeName::parse(&body.name).map_err(|e| ApiError::validation("name", e.to_string()))?;
    let kind: KnowledgeKind = body
        .kind
        .parse()
        .map_err(|e: bounty_core::stored_enum::BadName| ApiError::validation("kind", e.to_string()))?;
    if kind == KnowledgeKind::Urls {
        if body.documents.is_some() {
            return Err(ApiError::validation(
                "documents",
                "is only for an `upload` source",
            ));
        }
        let urls = body
            .urls
            .as_deref()
            .ok_or_else(|| ApiError::validation("urls", "is required for a `urls` source"))?;
        let source = create_url_source(&state.store, auth.account_id, auth.mode, &name, urls).await?;
        spawn_fetch(
            state.store.clone(),
            state.outbound,
            state.knowledge_embedder.clone(),
            auth.account_id,
            source.id,
        );
        let urls = state.store.knowledge_urls(auth.account_id, source.id).await?;
        let detail = KnowledgeDetail {
            source: source.into(),
            documents: Vec::new(),
            urls: urls.into_iter().map(|u| url_out(u, &[])).collect(),
        };
        return Ok((StatusCode::ACCEPTED, Json(detail)).into_response());
    }
    if body.urls.is_some() {
        return Err(ApiError::validation("urls", "is only for a `urls` source"));
    }
    let docs = body
        .documents
        .as_deref()
        .ok_or_else(|| ApiError::validation("documents", "is required for an `upload` source"))?;
    let docs = inputs(docs)?;
    let (source, report) =
        create_upload_source(&state.store, auth.account_id, auth.mode, &name, &docs).await?;
    let embedded = embed_after_index(&state, auth.account_id, source.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(KnowledgeIndexed {
            source: source.into(),
            indexed: IndexOut::new(report, embedded),
        }),
    )
        .into_response())
}

/// The account's knowledge sources, newest first.
#[utoipa::path(
    get,
    path = "/v1/knowledge",
    tag = "knowledge",
    security(("api_key" = [])),
    params(ListParams),
    responses(
        (status = 200, body = KnowledgeList),
        (status = 400, description = "A bad `limit` or `cursor`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn list_knowledge(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<KnowledgeList>> {
    let (limit, cursor) = params.parse::<KnowledgeSourceId>()?;
    let page = state
        .store
        .list_knowledge_sources(auth.account_id, auth.mode, limit, cursor)
        .await?;
    Ok(Json(KnowledgeList {
        data: page.items.into_iter().map(KnowledgeOut::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One knowledge source with its documents.
#[utoipa::path(
    get,
    path = "/v1/knowledge/{id}",
    tag = "knowledge",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The source's id, `ks_…`")),
    responses(
        (status = 200, body = KnowledgeDetail),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such source in this account", body = ErrorBody),
    )
)]
pub async fn get_knowledge(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<KnowledgeDetail>> {
    let source = own_source(&state, &auth, &id).await?;
    let documents: Vec<DocumentOut> = state
        .store
        .knowledge_documents(auth.account_id, source.id)
        .await?
        .into_iter()
        .map(DocumentOut::from)
        .collect();
    let urls = state.store.knowledge_urls(auth.account_id, source.id).await?;
    Ok(Json(KnowledgeDetail {
        source: source.into(),
        urls: urls.into_iter().map(|u| url_out(u, &documents)).collect(),
        documents,
    }))
}

/// Deletes a knowledge source with its documents and chunks.
#[utoipa::path(
    delete,
    path = "/v1/knowledge/{id}",
    tag = "knowledge",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The source's id, `ks_…`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such source in this account", body = ErrorBody),
    )
)]
pub async fn delete_knowledge(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let source = own_source(&state, &auth, &id).await?;
    if !state
        .store
        .delete_knowledge_source(auth.account_id, source.id)
        .await?
    {
        return Err(ApiError::NotFound {
            kind: "knowledge source",
            id,
        });
    }
    tracing::info!(account.id = %auth.account_id, source.id = %source.id, "knowledge source deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Uploads documents to an upload source: new names are added, a name the
/// source has is replaced, and only what changed is re-indexed (a document
/// sent again unchanged writes nothing).
#[utoipa::path(
    post,
    path = "/v1/knowledge/{id}/documents",
    tag = "knowledge",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The source's id, `ks_…`")),
    request_body = DocumentsIn,
    responses(
        (status = 200, body = KnowledgeIndexed),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such source in this account", body = ErrorBody),
        (status = 422, description = "`validation_failed` naming the field; the source's limits", body = ErrorBody),
    )
)]
pub async fn upload_documents(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DocumentsIn>,
) -> ApiResult<Json<KnowledgeIndexed>> {
    let source = own_source(&state, &auth, &id).await?;
    let docs = inputs(&body.documents)?;
    let (source, report) = add_documents(&state.store, auth.account_id, &source, &docs).await?;
    let embedded = embed_after_index(&state, auth.account_id, source.id).await?;
    Ok(Json(KnowledgeIndexed {
        source: source.into(),
        indexed: IndexOut::new(report, embedded),
    }))
}

/// Hybrid search over one source's chunks: what an agent's retrieval
/// would be given, best first, with the rank each half gave each chunk.
#[utoipa::path(
    get,
    path = "/v1/knowledge/{id}/search",
    tag = "knowledge",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The source's id, `ks_…`"), SearchParams),
    responses(
        (status = 200, body = SearchOut),
        (status = 400, description = "An unknown query parameter", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such source in this account", body = ErrorBody),
        (status = 422, description = "`q` missing, too long or without a word; `limit` out of range", body = ErrorBody),
    )
)]
pub async fn search_knowledge(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> ApiResult<Json<SearchOut>> {
    let source = own_source(&state, &auth, &id).await?;
    let q = params
        .q
        .as_deref()
        .ok_or_else(|| ApiError::validation("q", "is required"))?;
    SearchQuery::parse("q", q).map_err(|e| ApiError::validation(e.field, e.problem.to_string()))?;
    let limit = params.limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
    if !(1..=MAX_SEARCH_LIMIT).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            format!("must be 1 to {MAX_SEARCH_LIMIT}"),
        ));
    }
    let found = retrieve(
        &state.store,
        state.knowledge_embedder.as_deref(),
        auth.account_id,
        &[source.id],
        q,
        limit as usize,
    )
    .await?;
    Ok(Json(SearchOut {
        data: found
            .chunks
            .into_iter()
            .map(|c| {
                let matched = match (c.keyword_rank, c.vector_rank) {
                    (Some(_), Some(_)) => "both",
                    (None, Some(_)) => "vector",
                    _ => "keyword",
                };
                ChunkHitOut {
                    chunk_id: c.id.to_string(),
                    link: c.link,
                    document: c.document,
                    heading_path: c.heading_path,
                    text: c.text,
                    score: c.score,
                    matched: matched.to_owned(),
                    keyword_rank: c.keyword_rank,
                    vector_rank: c.vector_rank,
                }
            })
            .collect(),
        keyword_hits: found.keyword_hits,
        vector_hits: found.vector_hits,
        embedding_model: found.embedding_model,
        latency_ms: found.latency.as_secs_f64() * 1000.0,
    }))
}
