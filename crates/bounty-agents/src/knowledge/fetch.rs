//! `urls` sources: pages fetched through the guarded HTTP client
//! (`bounty_outbound`, the rules agent tools follow: loopback, private,
//! link-local and metadata addresses refused after DNS resolution unless
//! `tools.allow_private`; every response size- and time-capped).
//!
//! [`create_url_source`] checks the list and stores the source as
//! `indexing`, each URL `pending`; [`fetch_url_source`] then fetches every
//! URL one after another (the API runs it in the background), indexes
//! each page incrementally like an upload (an unchanged page writes
//! nothing), records per URL whether it was fetched or why not, embeds
//! what lacks an embedding, and sets the source `ready`.
//!
//! A page's format comes from its `Content-Type`: `text/html` (and
//! `application/xhtml+xml`), `text/markdown`, `text/plain`; anything else
//! is refused for that URL. A failed fetch keeps the document an earlier
//! fetch indexed (a page that is down for a minute should not vanish from
//! the agent's knowledge) and shows the error on the URL.
//!
//! A process that stops mid-fetch leaves the source `indexing` with some
//! URLs `pending`; fetching it again (`bounty knowledge reindex`) completes
//! it, since every step is idempotent.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bounty_core::knowledge::{
    DocumentFormat, KnowledgeError, KnowledgeKind, KnowledgeStatus, MAX_CHUNKS_PER_SOURCE, Problem,
    UrlStatus, prepare_fetched,
};
use bounty_core::{AccountId, ApiKeyMode, KnowledgeName, KnowledgeSourceId};
use bounty_models::Embedder;
use bounty_outbound::{Outbound, OutboundPolicy, Url};
use bounty_store::{KnowledgeSource, NewKnowledgeSource, Store};

use super::embed::{EmbedReport, embed_missing};
use super::{IndexReport, KnowledgeRefusal};

/// The most URLs one source may list.
pub const MAX_URLS: usize = 100;
/// The most characters in one URL.
pub const MAX_URL_CHARS: usize = 2048;

/// What fetching a `urls` source did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// Documents written, as an upload's.
    pub index: IndexReport,
    /// URLs fetched and indexed (changed or not).
    pub fetched: usize,
    /// URLs whose fetch failed this time.
    pub failed: usize,
    /// The embedding pass, when an embedder is configured.
    pub embedded: Option<EmbedReport>,
}

/// Checks a request's `urls`: 1 to [`MAX_URLS`] absolute http or https
/// URLs without credentials or fragment, none twice; each as the URL
/// parser writes it. A refusal names `urls` or `urls[i]`.
pub fn parse_urls(urls: &[String]) -> Result<Vec<String>, KnowledgeError> {
    if urls.is_empty() {
        return Err(KnowledgeError::new("urls", Problem::NoUrls));
    }
    if urls.len() > MAX_URLS {
        return Err(KnowledgeError::new("urls", Problem::TooManyUrls(MAX_URLS)));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(urls.len());
    for (i, raw) in urls.iter().enumerate() {
        let bad = |why| KnowledgeError::new(format!("urls[{i}]"), Problem::BadUrl(why));
        if raw.chars().count() > MAX_URL_CHARS {
            return Err(bad("must be at most 2048 characters"));
        }
        let url = Url::parse(raw.trim()).map_err(|_| bad("must be an absolute http or https URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(bad("must be an absolute http or https URL"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry credentials"));
        }
        if url.fragment().is_some() {
            return Err(bad(
                "must not have a `#fragment`: chunks link to their section's own",
            ));
        }
        let url = url.to_string();
        if !seen.insert(url.clone()) {
            return Err(KnowledgeError::new(format!("urls[{i}]"), Problem::DuplicateUrl));
        }
        out.push(url);
    }
    Ok(out)
}

/// Creates a `urls` source of `mode` for `urls`, `indexing`, every URL
/// `pending`; nothing is fetched yet (see [`fetch_url_source`]).
pub async fn create_url_source(
    store: &Store,
    account: AccountId,
    mode: ApiKeyMode,
    name: &KnowledgeName,
    urls: &[String],
) -> Result<KnowledgeSource, KnowledgeRefusal> {
    let urls = parse_urls(urls)?;
    let id = KnowledgeSourceId::new();
    let source = store
        .create_knowledge_source(
            account,
            &NewKnowledgeSource {
                id,
                mode,
                name,
                kind: KnowledgeKind::Urls,
                urls: &urls,
            },
        )
        .await?;
    tracing::info!(account.id = %account, source.id = %id, urls = urls.len(), "knowledge URL source created");
    Ok(source)
}

/// The format a `Content-Type` names, or why it is refused.
pub fn format_of_content_type(content_type: Option<&str>) -> Result<DocumentFormat, String> {
    let Some(ct) = content_type else {
        return Err(
            "the response has no Content-Type; expected text/html, text/markdown or text/plain".into(),
        );
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "text/html" | "application/xhtml+xml" => Ok(DocumentFormat::Html),
        "text/markdown" | "text/x-markdown" => Ok(DocumentFormat::Markdown),
        "text/plain" => Ok(DocumentFormat::Text),
        _ => Err(format!(
            "unsupported Content-Type `{}`: only text/html, text/markdown and text/plain are indexed",
            mime.chars().take(100).collect::<String>()
        )),
    }
}

/// Fetches one page: its format and text, or why not (never the URL's
/// path or query: they may hold a token).
async fn fetch_page(outbound: &Outbound, url: &str) -> Result<(DocumentFormat, String), String> {
    let parsed = Url::parse(url).map_err(|_| "is not a valid URL".to_owned())?;
    let request = outbound
        .request(reqwest::Method::GET, parsed)
        .header(
            reqwest::header::ACCEPT,
            "text/html, text/markdown;q=0.9, text/plain;q=0.8",
        )
        .build()
        .map_err(|_| "cannot build the request".to_owned())?;
    let response = outbound.send(request).await.map_err(|e| e.to_string())?;
    if !response.status.is_success() {
        return Err(format!("the server answered HTTP {}", response.status.as_u16()));
    }
    let content_type = response
        .headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let format = format_of_content_type(content_type)?;
    let text = String::from_utf8(response.body).map_err(|_| "the body is not UTF-8 text".to_owned())?;
    Ok((format, text))
}

/// Fetches every URL of a `urls` source and indexes what changed, then
/// embeds what lacks an embedding of `embedder`'s model and sets the source
/// `ready` (see the module's docs); `progress(done, total, url)` after each
/// URL. A failed URL is recorded on it, not returned: only store errors and
/// a missing source are errors.
pub async fn fetch_url_source(
    store: &Store,
    outbound: &Outbound,
    embedder: Option<&Embedder>,
    account: AccountId,
    source: KnowledgeSourceId,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<FetchReport, KnowledgeRefusal> {
    let found = store
        .get_knowledge_source(account, source)
        .await?
        .ok_or(KnowledgeRefusal::NotFound)?;
    if found.kind != KnowledgeKind::Urls {
        return Err(KnowledgeRefusal::NotFound);
    }
    store
        .set_knowledge_status(account, source, KnowledgeStatus::Indexing)
        .await?;
    let urls = store.knowledge_urls(account, source).await?;
    let mut held: HashMap<String, usize> = store
        .knowledge_documents(account, source)
        .await?
        .into_iter()
        .map(|d| (d.locator, usize::try_from(d.chunk_count).unwrap_or(0)))
        .collect();
    let mut chunks: usize = held.values().sum();
    let mut report = FetchReport::default();
    for (i, u) in urls.iter().enumerate() {
        let field = format!("urls[{i}]");
        let indexed = match fetch_page(outbound, &u.url).await {
            Ok((format, text)) => prepare_fetched(source, &field, &u.url, format, &text)
                .map_err(|e| e.problem.to_string())
                .and_then(|doc| {
                    let total = chunks - held.get(&u.url).copied().unwrap_or(0) + doc.chunks.len();
                    if total > MAX_CHUNKS_PER_SOURCE {
                        Err(Problem::TooManyChunks(MAX_CHUNKS_PER_SOURCE).to_string())
                    } else {
                        Ok(doc)
                    }
                }),
            Err(why) => Err(why),
        };
        match indexed {
            Ok(doc) => {
                let change = store
                    .index_document(account, source, &doc)
                    .await?
                    .ok_or(KnowledgeRefusal::NotFound)?;
                report.index.count(change);
                chunks = chunks - held.get(&u.url).copied().unwrap_or(0) + doc.chunks.len();
                held.insert(u.url.clone(), doc.chunks.len());
                store
                    .set_url_status(account, source, &u.url, UrlStatus::Fetched, None)
                    .await?;
                report.fetched += 1;
            }
            Err(why) => {
                tracing::info!(account.id = %account, source.id = %source, url.index = i, error = %why,
                    "knowledge URL not indexed");
                store
                    .set_url_status(account, source, &u.url, UrlStatus::Failed, Some(&why))
                    .await?;
                report.failed += 1;
            }
        }
        progress(i + 1, urls.len(), &u.url);
    }
    if let Some(embedder) = embedder {
        report.embedded = Some(embed_missing(store, embedder, account, source, |_| {}).await?);
    }
    store
        .set_knowledge_status(account, source, KnowledgeStatus::Ready)
        .await?;
    tracing::info!(account.id = %account, source.id = %source, fetched = report.fetched,
        failed = report.failed, changed = report.index.added + report.index.updated, "knowledge URL source fetched");
    Ok(report)
}

/// Runs [`fetch_url_source`] in the background, under `policy`: how the
/// API and the dashboard answer at once. A process that stops meanwhile
/// leaves the source `indexing`; `bounty knowledge reindex` completes it.
pub fn spawn_fetch(
    store: Store,
    policy: OutboundPolicy,
    embedder: Option<Arc<Embedder>>,
    account: AccountId,
    source: KnowledgeSourceId,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let outbound = match Outbound::new(policy) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(account.id = %account, source.id = %source, error = %e,
                    "cannot build the HTTP client to fetch a knowledge source");
                return;
            }
        };
        if let Err(e) = fetch_url_source(
            &store,
            &outbound,
            embedder.as_deref(),
            account,
            source,
            |_, _, _| {},
        )
        .await
        {
            tracing::error!(account.id = %account, source.id = %source, error = %e,
                "fetching a knowledge source failed; `bounty knowledge reindex` completes it");
        }
    })
}
