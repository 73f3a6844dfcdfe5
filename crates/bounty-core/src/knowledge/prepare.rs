//! A request's documents, checked and cut into chunks before anything is
//! stored, with the limits of a source. Every refusal names the field at
//! fault the way the API's errors do (`documents[2].content`).

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::{Chunk, DocumentFormat, chunk, parse};
use crate::KnowledgeSourceId;

/// The most bytes in one document's content.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// The most documents one request may send.
pub const MAX_DOCUMENTS_PER_REQUEST: usize = 50;
/// The most documents one source may hold.
pub const MAX_DOCUMENTS_PER_SOURCE: usize = 1000;
/// The most chunks one source may hold.
pub const MAX_CHUNKS_PER_SOURCE: usize = 20_000;
/// The most characters in a document's name.
pub const MAX_DOCUMENT_NAME_CHARS: usize = 200;

/// One document as sent.
#[derive(Debug, Clone, Copy)]
pub struct DocumentInput<'a> {
    /// Its name within the source (a file name): how chunks link to it.
    pub name: &'a str,
    pub format: DocumentFormat,
    pub content: &'a str,
}

/// A document ready to store: checked, titled, hashed and chunked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedDocument {
    /// The trimmed name (the locator chunks link to).
    pub locator: String,
    /// The document's own title, or its name.
    pub title: String,
    pub format: DocumentFormat,
    pub content: String,
    /// SHA-256 (hex) of `content`.
    pub content_sha256: String,
    pub chunks: Vec<Chunk>,
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("must hold at least one document")]
    NoDocuments,
    #[error("must hold at most {0} documents")]
    TooManyDocuments(usize),
    #[error("must not be empty")]
    EmptyName,
    #[error("must be at most {0} characters")]
    NameTooLong(usize),
    #[error("must not contain control characters, `#`, `/` or `\\`")]
    BadNameCharacter,
    #[error("names another document of this request")]
    DuplicateName,
    #[error("must be at most {0} bytes")]
    DocumentTooLarge(usize),
    #[error("must not contain the NUL character")]
    Nul,
    #[error("has no text")]
    NoText,
    #[error("would give the source more than {0} documents")]
    SourceFull(usize),
    #[error("would give the source more than {0} chunks")]
    TooManyChunks(usize),
    #[error("has no word to search for")]
    NoSearchTerms,
    #[error("must be at most {0} characters")]
    QueryTooLong(usize),
    #[error("must hold at least one URL")]
    NoUrls,
    #[error("must hold at most {0} URLs")]
    TooManyUrls(usize),
    /// Why a URL is refused ("must be an absolute http or https URL").
    #[error("{0}")]
    BadUrl(&'static str),
    #[error("repeats an earlier URL of this request")]
    DuplicateUrl,
}

/// A refused field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {problem}")]
pub struct KnowledgeError {
    /// The field, as the API names it (`documents[0].name`).
    pub field: String,
    pub problem: Problem,
}

impl KnowledgeError {
    pub fn new(field: impl Into<String>, problem: Problem) -> Self {
        KnowledgeError {
            field: field.into(),
            problem,
        }
    }
}

/// SHA-256 (hex) of a document's content.
pub fn content_sha256(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// Checks and chunks one document, its fields named under `field`
/// (`documents[3]`).
pub fn prepare_one(
    source: KnowledgeSourceId,
    field: &str,
    doc: &DocumentInput<'_>,
) -> Result<PreparedDocument, KnowledgeError> {
    let name = doc.name.trim();
    let name_field = || format!("{field}.name");
    if name.is_empty() {
        return Err(KnowledgeError::new(name_field(), Problem::EmptyName));
    }
    if name.chars().count() > MAX_DOCUMENT_NAME_CHARS {
        return Err(KnowledgeError::new(
            name_field(),
            Problem::NameTooLong(MAX_DOCUMENT_NAME_CHARS),
        ));
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, '#' | '/' | '\\'))
    {
        return Err(KnowledgeError::new(name_field(), Problem::BadNameCharacter));
    }
    let content_field = || format!("{field}.content");
    checked_content(source, name, &content_field(), doc.format, doc.content)
}

/// Checks and chunks a page fetched from `url` (an absolute URL the caller
/// has parsed): its chunks link to `url#anchor`. Refusals name `field`
/// (`urls[3]`), as [`prepare_one`]'s name the content.
pub fn prepare_fetched(
    source: KnowledgeSourceId,
    field: &str,
    url: &str,
    format: DocumentFormat,
    content: &str,
) -> Result<PreparedDocument, KnowledgeError> {
    checked_content(source, url, field, format, content)
}

/// The size, NUL and text checks of a document's content, then its chunks.
fn checked_content(
    source: KnowledgeSourceId,
    locator: &str,
    content_field: &str,
    format: DocumentFormat,
    content: &str,
) -> Result<PreparedDocument, KnowledgeError> {
    if content.len() > MAX_DOCUMENT_BYTES {
        return Err(KnowledgeError::new(
            content_field,
            Problem::DocumentTooLarge(MAX_DOCUMENT_BYTES),
        ));
    }
    if content.contains('\0') {
        return Err(KnowledgeError::new(content_field, Problem::Nul));
    }
    let parsed = parse(format, content);
    if parsed.is_empty() {
        return Err(KnowledgeError::new(content_field, Problem::NoText));
    }
    let chunks = chunk(source, locator, &parsed);
    Ok(PreparedDocument {
        locator: locator.to_owned(),
        title: parsed.title.unwrap_or_else(|| locator.to_owned()),
        format,
        content: content.to_owned(),
        content_sha256: content_sha256(content),
        chunks,
    })
}

/// Checks and chunks a request's `documents`: one to
/// [`MAX_DOCUMENTS_PER_REQUEST`], names unique, each within its limits.
pub fn prepare(
    source: KnowledgeSourceId,
    docs: &[DocumentInput<'_>],
) -> Result<Vec<PreparedDocument>, KnowledgeError> {
    if docs.is_empty() {
        return Err(KnowledgeError::new("documents", Problem::NoDocuments));
    }
    if docs.len() > MAX_DOCUMENTS_PER_REQUEST {
        return Err(KnowledgeError::new(
            "documents",
            Problem::TooManyDocuments(MAX_DOCUMENTS_PER_REQUEST),
        ));
    }
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(docs.len());
    for (i, doc) in docs.iter().enumerate() {
        let field = format!("documents[{i}]");
        let prepared = prepare_one(source, &field, doc)?;
        if !names.insert(prepared.locator.clone()) {
            return Err(KnowledgeError::new(
                format!("{field}.name"),
                Problem::DuplicateName,
            ));
        }
        out.push(prepared);
    }
    Ok(out)
}

/// Whether a source may hold `documents` documents and `chunks` chunks.
pub fn check_source_totals(documents: usize, chunks: usize) -> Result<(), KnowledgeError> {
    if documents > MAX_DOCUMENTS_PER_SOURCE {
        return Err(KnowledgeError::new(
            "documents",
            Problem::SourceFull(MAX_DOCUMENTS_PER_SOURCE),
        ));
    }
    if chunks > MAX_CHUNKS_PER_SOURCE {
        return Err(KnowledgeError::new(
            "documents",
            Problem::TooManyChunks(MAX_CHUNKS_PER_SOURCE),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> KnowledgeSourceId {
        "ks_01JD3K8Q9V7Y2X4W6T5R3P1N0M".parse().unwrap()
    }

    fn doc<'a>(name: &'a str, content: &'a str) -> DocumentInput<'a> {
        DocumentInput {
            name,
            format: DocumentFormat::Markdown,
            content,
        }
    }

    fn field_of(docs: &[DocumentInput<'_>]) -> (String, Problem) {
        let e = prepare(source(), docs).unwrap_err();
        (e.field, e.problem)
    }

    #[test]
    fn documents_are_titled_hashed_and_chunked() {
        let got = prepare(
            source(),
            &[doc(" faq.md ", "# FAQ\n\nAsk away."), doc("b.md", "Plain.")],
        )
        .unwrap();
        assert_eq!(got[0].locator, "faq.md");
        assert_eq!(got[0].title, "FAQ");
        assert_eq!(got[0].content_sha256, content_sha256("# FAQ\n\nAsk away."));
        assert_eq!(got[0].chunks[0].link, "faq.md#faq");
        assert_eq!(got[1].title, "b.md");
    }

    #[test]
    fn every_refusal_names_its_field() {
        let big = "x".repeat(MAX_DOCUMENT_BYTES + 1);
        assert_eq!(field_of(&[]), ("documents".into(), Problem::NoDocuments));
        let many: Vec<_> = (0..=MAX_DOCUMENTS_PER_REQUEST).map(|_| doc("a", "b")).collect();
        assert_eq!(field_of(&many).0, "documents");
        assert_eq!(
            field_of(&[doc("  ", "x")]),
            ("documents[0].name".into(), Problem::EmptyName)
        );
        assert_eq!(field_of(&[doc("a", "x"), doc("a#b", "x")]).0, "documents[1].name");
        assert_eq!(field_of(&[doc("../etc", "x")]).1, Problem::BadNameCharacter);
        assert_eq!(
            field_of(&[doc("a", "x"), doc(" a", "y")]),
            ("documents[1].name".into(), Problem::DuplicateName)
        );
        assert_eq!(
            field_of(&[doc(&"n".repeat(201), "x")]).1,
            Problem::NameTooLong(200)
        );
        assert_eq!(
            field_of(&[doc("a", &big)]),
            (
                "documents[0].content".into(),
                Problem::DocumentTooLarge(MAX_DOCUMENT_BYTES)
            )
        );
        assert_eq!(field_of(&[doc("a", "x\0y")]).1, Problem::Nul);
        assert_eq!(
            field_of(&[doc("a", "# Only a heading\n\n   \n")]),
            ("documents[0].content".into(), Problem::NoText)
        );
        assert!(check_source_totals(MAX_DOCUMENTS_PER_SOURCE, MAX_CHUNKS_PER_SOURCE).is_ok());
        assert_eq!(
            check_source_totals(MAX_DOCUMENTS_PER_SOURCE + 1, 0)
                .unwrap_err()
                .problem,
            Problem::SourceFull(MAX_DOCUMENTS_PER_SOURCE)
        );
        assert_eq!(
            check_source_totals(1, MAX_CHUNKS_PER_SOURCE + 1)
                .unwrap_err()
                .to_string(),
            format!("`documents` would give the source more than {MAX_CHUNKS_PER_SOURCE} chunks")
        );
    }
}
