//! `/knowledge`: the account's knowledge sources (of the dashboard's
//! mode) with their status and document and chunk counts (a `urls`
//! source lists each URL that failed, with why), a hybrid search over
//! them (the retrieval an agent is given) that shows the top chunks with
//! their source links, scores and which half found them, and, for owners,
//! a form that creates an upload source from a pasted document, one that
//! creates a source from a list of page URLs (fetched in the background),
//! and a delete button per source. Creating goes through
//! `bounty_agents::knowledge`, as the API's does.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use bounty_agents::knowledge::{
    KnowledgeRefusal, create_upload_source, create_url_source, embed_missing, retrieve, spawn_fetch,
};
use bounty_core::knowledge::{DocumentFormat, DocumentInput, KnowledgeKind, SearchQuery, UrlStatus};
use bounty_core::{KnowledgeName, KnowledgeSourceId, PageLimit};
use serde::Deserialize;

use crate::auth::{CurrentUser, SignedForm};
use crate::error::WebError;
use crate::format::time_or_dash;
use crate::layout::{Chrome, render};
use crate::pages::field_errors::{FieldErrors, SummaryLine};
use crate::pages::login::NoFields;
use crate::pages::{WebQuery, present};
use crate::state::WebState;

/// Sources per page; the search covers the sources of the page shown.
const PAGE_SIZE: u32 = 100;
/// Chunks a search shows.
const HITS: usize = 10;

/// The create form's fields, in order, with their labels.
const FIELDS: [(&str, &str); 4] = [
    ("name", "Source name"),
    ("document_name", "Document name"),
    ("format", "Format"),
    ("content", "Content"),
];

/// The URL form's fields, in order, with their labels.
const URL_FIELDS: [(&str, &str); 2] = [("url_name", "Source name"), ("urls", "Page URLs")];

struct SourceRow {
    id: String,
    name: String,
    kind: &'static str,
    status: &'static str,
    documents: i64,
    chunks: i64,
    indexed: String,
    /// A `urls` source's URLs that failed, with why.
    failed: Vec<(String, String)>,
    /// A `urls` source's URL count.
    url_count: usize,
}

struct HitRow {
    source: String,
    heading: String,
    text: String,
    link: String,
    score: String,
    /// `keyword`, `meaning` or `keyword and meaning`.
    matched: &'static str,
}

struct FormatOption {
    value: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "knowledge.html")]
struct KnowledgePage {
    chrome: Chrome,
    csrf: String,
    owner: bool,
    sources: Vec<SourceRow>,
    next_href: Option<String>,
    q: String,
    searched: bool,
    hits: Vec<HitRow>,
    search_error: Option<String>,
    form: CreateForm,
    formats: Vec<FormatOption>,
    errors: FieldErrors,
    summary: Vec<SummaryLine>,
    url_form: UrlForm,
    url_errors: FieldErrors,
    url_summary: Vec<SummaryLine>,
    hybrid: bool,
}

#[derive(Deserialize)]
pub(crate) struct KnowledgeQuery {
    q: Option<String>,
    cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    document_name: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    content: String,
}

/// The URL form as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct UrlForm {
    #[serde(default)]
    url_name: String,
    /// One URL a line.
    #[serde(default)]
    urls: String,
}

/// The two create forms as sent, and what is wrong with each.
#[derive(Default)]
struct Forms {
    upload: CreateForm,
    upload_errors: FieldErrors,
    urls: UrlForm,
    url_errors: FieldErrors,
}

async fn knowledge_page(
    state: &WebState,
    user: &CurrentUser,
    cursor: Option<KnowledgeSourceId>,
    q: &str,
    forms: Forms,
) -> Result<Response, WebError> {
    let Forms {
        upload: form,
        upload_errors: errors,
        urls: url_form,
        url_errors,
    } = forms;
    let limit = PageLimit::new(PAGE_SIZE).map_err(|e| WebError::Internal(e.to_string()))?;
    let page = state
        .store
        .list_knowledge_sources(user.account(), user.mode(), limit, cursor)
        .await?;
    let ids: Vec<KnowledgeSourceId> = page.items.iter().map(|s| s.id).collect();
    let name_of = |id: KnowledgeSourceId| {
        page.items
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    };
    let (mut hits, mut search_error) = (Vec::new(), None);
    let searched = !q.trim().is_empty();
    if searched {
        let embedder = state.knowledge_embedder.as_deref();
        match SearchQuery::parse("q", q) {
            // Without an embedder, a query needs a word to look for.
            Err(e) if embedder.is_none() => search_error = Some(format!("The search {}.", e.problem)),
            _ => {
                hits = retrieve(&state.store, embedder, user.account(), &ids, q, HITS)
                    .await?
                    .chunks
                    .into_iter()
                    .map(|c| HitRow {
                        source: name_of(c.source_id),
                        heading: c.heading_path.join(" › "),
                        text: c.text,
                        link: c.link,
                        score: format!("{:.3}", c.score),
                        matched: match (c.keyword_rank, c.vector_rank) {
                            (Some(_), Some(_)) => "keyword and meaning",
                            (None, Some(_)) => "meaning",
                            _ => "keyword",
                        },
                    })
                    .collect();
            }
        }
    }
    let selected = if form.format.is_empty() {
        "markdown"
    } else {
        form.format.as_str()
    };
    let formats = DocumentFormat::ALL
        .iter()
        .map(|f| FormatOption {
            value: f.as_str(),
            selected: f.as_str() == selected,
        })
        .collect();
    let mut sources = Vec::with_capacity(page.items.len());
    for s in &page.items {
        let failed = if s.kind == KnowledgeKind::Urls {
            state
                .store
                .knowledge_urls(user.account(), s.id)
                .await?
                .into_iter()
                .filter(|u| u.status == UrlStatus::Failed)
                .map(|u| (u.url, u.error.unwrap_or_default()))
                .collect()
        } else {
            Vec::new()
        };
        sources.push(SourceRow {
            id: s.id.to_string(),
            name: s.name.clone(),
            kind: s.kind.as_str(),
            status: s.status.as_str(),
            documents: s.document_count,
            chunks: s.chunk_count,
            indexed: time_or_dash(s.indexed_at),
            failed,
            url_count: s.urls.len(),
        });
    }
    let page = KnowledgePage {
        chrome: Chrome::for_user(user, "Knowledge", "knowledge"),
        csrf: user.session.csrf_secret.clone(),
        owner: user.require_owner().is_ok(),
        sources,
        next_href: page.next_cursor.map(|c| format!("/knowledge?cursor={c}")),
        q: q.to_owned(),
        searched,
        hits,
        search_error,
        form,
        formats,
        summary: errors.summary(&FIELDS),
        errors,
        url_summary: url_errors.summary(&URL_FIELDS),
        url_form,
        url_errors,
        hybrid: state.knowledge_embedder.is_some(),
    };
    render(&page)
}

/// `GET /knowledge`.
pub(crate) async fn page(
    State(state): State<WebState>,
    user: CurrentUser,
    WebQuery(q): WebQuery<KnowledgeQuery>,
) -> Result<Response, WebError> {
    let cursor = present(&q.cursor)
        .map(|c| {
            c.parse::<KnowledgeSourceId>()
                .map_err(|_| WebError::BadRequest("`cursor` is not a knowledge source id.".into()))
        })
        .transpose()?;
    let query = q.q.unwrap_or_default();
    knowledge_page(&state, &user, cursor, &query, Forms::default()).await
}

/// The form field a refusal of the use case names.
fn form_field(api_field: &str) -> &'static str {
    match api_field {
        "name" => "name",
        f if f.ends_with(".name") => "document_name",
        f if f.ends_with(".format") => "format",
        _ => "content",
    }
}

/// The page again with the form as sent and what is wrong with it: 422.
async fn refused(state: &WebState, user: &CurrentUser, forms: Forms) -> Result<Response, WebError> {
    let mut r = knowledge_page(state, user, None, "", forms).await?;
    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(r)
}

/// `POST /knowledge`: creates an upload source holding one pasted document.
pub(crate) async fn create(
    State(state): State<WebState>,
    SignedForm { user, form }: SignedForm<CreateForm>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let mut errors = FieldErrors::default();
    let name = KnowledgeName::parse(&form.name)
        .map_err(|e| errors.add("name", e.to_string()))
        .ok();
    let format = form
        .format
        .parse::<DocumentFormat>()
        .map_err(|e| errors.add("format", e.to_string()))
        .ok();
    let (Some(name), Some(format)) = (name, format) else {
        return refused(&state, &user, upload_refused(form, errors)).await;
    };
    let doc = DocumentInput {
        name: &form.document_name,
        format,
        content: &form.content,
    };
    match create_upload_source(&state.store, user.account(), user.mode(), &name, &[doc]).await {
        Ok((source, _)) => {
            tracing::info!(account.id = %user.account(), source.id = %source.id, "dashboard: knowledge source created");
            if let Some(embedder) = state.knowledge_embedder.as_deref() {
                // A failure is logged there; the chunks stay keyword-only.
                embed_missing(&state.store, embedder, user.account(), source.id, |_| {}).await?;
            }
            Ok(Redirect::to("/knowledge").into_response())
        }
        Err(KnowledgeRefusal::Invalid(e)) => {
            errors.add(form_field(&e.field), e.problem.to_string());
            refused(&state, &user, upload_refused(form.clone(), errors)).await
        }
        Err(KnowledgeRefusal::Store(e)) => Err(e.into()),
        Err(KnowledgeRefusal::NotFound | KnowledgeRefusal::NotUpload) => Err(WebError::NotFound),
    }
}

fn upload_refused(form: CreateForm, errors: FieldErrors) -> Forms {
    Forms {
        upload: form,
        upload_errors: errors,
        ..Forms::default()
    }
}

/// `POST /knowledge/urls`: creates a `urls` source from a list of page
/// URLs, one a line, and fetches them in the background.
pub(crate) async fn create_urls(
    State(state): State<WebState>,
    SignedForm { user, form }: SignedForm<UrlForm>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let mut errors = FieldErrors::default();
    let refuse = |form: UrlForm, errors: FieldErrors| Forms {
        urls: form,
        url_errors: errors,
        ..Forms::default()
    };
    let Ok(name) = KnowledgeName::parse(&form.url_name).map_err(|e| errors.add("url_name", e.to_string()))
    else {
        return refused(&state, &user, refuse(form, errors)).await;
    };
    let urls: Vec<String> = form
        .urls
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    match create_url_source(&state.store, user.account(), user.mode(), &name, &urls).await {
        Ok(source) => {
            tracing::info!(account.id = %user.account(), source.id = %source.id, "dashboard: knowledge URL source created");
            spawn_fetch(
                state.store.clone(),
                state.outbound,
                state.knowledge_embedder.clone(),
                user.account(),
                source.id,
            );
            Ok(Redirect::to("/knowledge").into_response())
        }
        Err(KnowledgeRefusal::Invalid(e)) => {
            // `urls[3]` is the fourth non-empty line.
            let line = e
                .field
                .strip_prefix("urls[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| urls.get(i));
            let message = match line {
                Some(url) => format!("`{url}` {}", e.problem),
                None => e.problem.to_string(),
            };
            errors.add("urls", message);
            refused(&state, &user, refuse(form, errors)).await
        }
        Err(KnowledgeRefusal::Store(e)) => Err(e.into()),
        Err(KnowledgeRefusal::NotFound | KnowledgeRefusal::NotUpload) => Err(WebError::NotFound),
    }
}

/// `POST /knowledge/{id}/delete`: deletes a source with its documents and
/// chunks.
pub(crate) async fn delete(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user, .. }: SignedForm<NoFields>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let id: KnowledgeSourceId = id.parse().map_err(|_| WebError::NotFound)?;
    let source = state
        .store
        .get_knowledge_source(user.account(), id)
        .await?
        .filter(|s| s.mode == user.mode())
        .ok_or(WebError::NotFound)?;
    if !state
        .store
        .delete_knowledge_source(user.account(), source.id)
        .await?
    {
        return Err(WebError::NotFound);
    }
    tracing::info!(account.id = %user.account(), source.id = %id, "dashboard: knowledge source deleted");
    Ok(Redirect::to("/knowledge").into_response())
}
