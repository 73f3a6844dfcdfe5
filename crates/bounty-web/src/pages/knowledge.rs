//! `/knowledge`: the account's knowledge sources (of the dashboard's
//! mode) with their document and chunk counts, a keyword search over
//! them that shows the top chunks with their source links, and, for
//! owners, a form that creates an upload source from a pasted document
//! and a delete button per source. Creating goes through
//! `bounty_agents::knowledge::create_upload_source`, as the API's does.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use bounty_agents::knowledge::{KnowledgeRefusal, create_upload_source};
use bounty_core::knowledge::{DocumentFormat, DocumentInput, SearchQuery};
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
const HITS: u32 = 10;

/// The create form's fields, in order, with their labels.
const FIELDS: [(&str, &str); 4] = [
    ("name", "Source name"),
    ("document_name", "Document name"),
    ("format", "Format"),
    ("content", "Content"),
];

struct SourceRow {
    id: String,
    name: String,
    documents: i64,
    chunks: i64,
    indexed: String,
}

struct HitRow {
    source: String,
    heading: String,
    text: String,
    link: String,
    score: String,
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

async fn knowledge_page(
    state: &WebState,
    user: &CurrentUser,
    cursor: Option<KnowledgeSourceId>,
    q: &str,
    form: CreateForm,
    errors: FieldErrors,
) -> Result<Response, WebError> {
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
        match SearchQuery::parse("q", q) {
            Ok(query) => {
                hits = state
                    .store
                    .search_chunks(user.account(), &ids, &query, HITS)
                    .await?
                    .into_iter()
                    .map(|h| HitRow {
                        source: name_of(h.source_id),
                        heading: h.heading_path.join(" › "),
                        text: h.text,
                        link: h.link,
                        score: format!("{:.3}", h.score),
                    })
                    .collect();
            }
            Err(e) => search_error = Some(format!("The search {}.", e.problem)),
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
    let sources = page
        .items
        .iter()
        .map(|s| SourceRow {
            id: s.id.to_string(),
            name: s.name.clone(),
            documents: s.document_count,
            chunks: s.chunk_count,
            indexed: time_or_dash(s.indexed_at),
        })
        .collect();
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
    knowledge_page(
        &state,
        &user,
        cursor,
        &query,
        CreateForm::default(),
        FieldErrors::default(),
    )
    .await
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
async fn refused(
    state: &WebState,
    user: &CurrentUser,
    form: CreateForm,
    errors: FieldErrors,
) -> Result<Response, WebError> {
    let mut r = knowledge_page(state, user, None, "", form, errors).await?;
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
        return refused(&state, &user, form, errors).await;
    };
    let doc = DocumentInput {
        name: &form.document_name,
        format,
        content: &form.content,
    };
    match create_upload_source(&state.store, user.account(), user.mode(), &name, &[doc]).await {
        Ok((source, _)) => {
            tracing::info!(account.id = %user.account(), source.id = %source.id, "dashboard: knowledge source created");
            Ok(Redirect::to("/knowledge").into_response())
        }
        Err(KnowledgeRefusal::Invalid(e)) => {
            errors.add(form_field(&e.field), e.problem.to_string());
            refused(&state, &user, form.clone(), errors).await
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
