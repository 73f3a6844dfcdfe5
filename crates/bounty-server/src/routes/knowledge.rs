//! Knowledge sources: `POST /v1/knowledge` (an upload source with its
//! documents, indexed at once), `GET /v1/knowledge` and
//! `GET /v1/knowledge/{id}` (with its documents), `DELETE
//! /v1/knowledge/{id}` (documents and chunks with it),
//! `POST /v1/knowledge/{id}/documents` (more documents, or new versions of
//! some: only what changed is re-indexed), and
//! `GET /v1/knowledge/{id}/search?q=` (the keyword half of retrieval, to
//! see what an agent would be given).
//!
//! `kind: "urls"` is refused with 422 `unsupported_kind` for now: URL
//! sources arrive with the guarded HTTP client that fetches them (issue
//! 17), which refuses private addresses after DNS resolution.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bounty_agents::knowledge::{IndexReport, KnowledgeRefusal, add_documents, create_upload_source};
use bounty_core::knowledge::{DocumentFormat, DocumentInput, KnowledgeKind, SearchQuery};
use bounty_core::{KnowledgeDocumentId, KnowledgeName, KnowledgeSourceId};
use bounty_store::{KnowledgeDocument, KnowledgeSource};
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
    /// `upload`.
    pub kind: String,
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

/// A source with its documents.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KnowledgeDetail {
    #[serde(flatten)]
    pub source: KnowledgeOut,
    pub documents: Vec<DocumentOut>,
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
}

impl From<IndexReport> for IndexOut {
    fn from(r: IndexReport) -> Self {
        IndexOut {
            added: r.added,
            updated: r.updated,
            unchanged: r.unchanged,
            chunks_added: r.chunks_added,
            chunks_removed: r.chunks_removed,
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
    /// `upload` (documents in this request). `urls` is refused with
    /// `unsupported_kind` until URL fetching is served.
    pub kind: String,
    /// The documents of an `upload` source: 1 to 50.
    pub documents: Option<Vec<DocumentIn>>,
    /// The pages of a `urls` source.
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
    /// The headings above the chunk, outermost first.
    pub heading_path: Vec<String>,
    pub text: String,
    /// Where it came from: `name#anchor`.
    pub link: String,
    /// In [0, 1), higher is better; comparable within one search only.
    pub score: f64,
}

/// A search's hits, best first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchOut {
    pub data: Vec<ChunkHitOut>,
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

/// Creates a knowledge source and indexes its documents. Every document is
/// checked before anything is stored: a refused request stores nothing.
#[utoipa::path(
    post,
    path = "/v1/knowledge",
    tag = "knowledge",
    security(("api_key" = [])),
    request_body = KnowledgeIn,
    responses(
        (status = 201, body = KnowledgeIndexed),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 422, description = "`validation_failed` naming the field (`name`, `documents[0].content`, …); \
            `unsupported_kind` for `urls`", body = ErrorBody),
    )
)]
pub async fn create_knowledge(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<KnowledgeIn>,
) -> ApiResult<(StatusCode, Json<KnowledgeIndexed>)> {
    let name = KnowledgeName::parse(&body.name).map_err(|e| ApiError::validation("name", e.to_string()))?;
    let kind: KnowledgeKind = body
        .kind
        .parse()
        .map_err(|e: bounty_core::stored_enum::BadName| ApiError::validation("kind", e.to_string()))?;
    if kind == KnowledgeKind::Urls {
        return Err(ApiError::UnsupportedKind {
            message:
                "`urls` sources are not served yet: they arrive with the guarded HTTP client that fetches \
                      them; upload the pages as `documents` of an `upload` source meanwhile"
                    .to_owned(),
        });
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
    Ok((
        StatusCode::CREATED,
        Json(KnowledgeIndexed {
            source: source.into(),
            indexed: report.into(),
        }),
    ))
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
    let documents = state
        .store
        .knowledge_documents(auth.account_id, source.id)
        .await?;
    Ok(Json(KnowledgeDetail {
        source: source.into(),
        documents: documents.into_iter().map(DocumentOut::from).collect(),
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
    Ok(Json(KnowledgeIndexed {
        source: source.into(),
        indexed: report.into(),
    }))
}

/// Keyword search over one source's chunks: what the keyword half of an
/// agent's retrieval would find, best first.
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
    let query =
        SearchQuery::parse("q", q).map_err(|e| ApiError::validation(e.field, e.problem.to_string()))?;
    let limit = params.limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
    if !(1..=MAX_SEARCH_LIMIT).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            format!("must be 1 to {MAX_SEARCH_LIMIT}"),
        ));
    }
    let hits = state
        .store
        .search_chunks(auth.account_id, &[source.id], &query, limit)
        .await?;
    Ok(Json(SearchOut {
        data: hits
            .into_iter()
            .map(|h| ChunkHitOut {
                chunk_id: h.id.to_string(),
                heading_path: h.heading_path,
                text: h.text,
                link: h.link,
                score: h.score,
            })
            .collect(),
    }))
}
