//! Knowledge: an account's documents (its help center, its policies),
//! parsed into sections and cut into chunks that an agent's retrieval
//! returns with a link to where each came from.
//!
//! Everything here is pure. [`parse`] turns Markdown, HTML or plain text
//! into [`Section`]s (a heading path, an anchor, paragraphs); [`chunk`]
//! cuts the sections into [`Chunk`]s of at most [`MAX_CHUNK_CHARS`]
//! characters on paragraph, sentence and word boundaries; [`prepare`]
//! does both for a request's documents and enforces the limits, naming
//! the field at fault. A chunk's id is the SHA-256 of what it is (source,
//! document, heading path, text), so indexing unchanged text again yields
//! the same ids and the store can keep those rows (and their embeddings).

mod chunk;
mod html;
mod markdown;
mod prepare;
mod query;

use std::fmt;
use std::str::FromStr;

pub use chunk::{Chunk, MAX_CHUNK_CHARS, chunk};
pub use prepare::{
    DocumentInput, KnowledgeError, MAX_CHUNKS_PER_SOURCE, MAX_DOCUMENT_BYTES, MAX_DOCUMENT_NAME_CHARS,
    MAX_DOCUMENTS_PER_REQUEST, MAX_DOCUMENTS_PER_SOURCE, PreparedDocument, Problem, check_source_totals,
    content_sha256, prepare, prepare_fetched, prepare_one,
};
pub use query::{MAX_QUERY_CHARS, MAX_QUERY_TERMS, SearchQuery};

crate::stored_enum! {
    /// Where a knowledge source's documents come from.
    pub enum KnowledgeKind("knowledge source kind") {
        /// Documents sent in the request (the API's `documents`, the
        /// dashboard's form).
        Upload = "upload",
        /// Pages fetched from a list of URLs, in the background, through
        /// the guarded HTTP client (`bounty_outbound`).
        Urls = "urls",
    }
}

crate::stored_enum! {
    /// Whether a source's documents are all indexed.
    pub enum KnowledgeStatus("knowledge source status") {
        /// A `urls` source whose pages are being fetched.
        Indexing = "indexing",
        /// Every document indexed (every URL tried).
        Ready = "ready",
    }
}

crate::stored_enum! {
    /// Where one URL of a `urls` source stands.
    pub enum UrlStatus("knowledge URL status") {
        /// Not fetched yet.
        Pending = "pending",
        /// Fetched and indexed.
        Fetched = "fetched",
        /// The last fetch failed; the error says why (the document from
        /// an earlier fetch, if any, is kept).
        Failed = "failed",
    }
}

crate::stored_enum! {
    /// How a document's content is written.
    pub enum DocumentFormat("document format") {
        /// CommonMark-style headings (`#`, setext) and paragraphs.
        Markdown = "markdown",
        /// Tags stripped; headings (`h1`–`h6`) kept with their `id`s.
        Html = "html",
        /// Paragraphs separated by blank lines, no headings.
        Text = "text",
    }
}

/// A part of a document under one heading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The headings above it, outermost first; empty before the first one.
    pub heading_path: Vec<String>,
    /// The fragment that links to its heading (`refunds`, an HTML `id`).
    pub anchor: Option<String>,
    /// Its paragraphs, whitespace collapsed, none empty.
    pub paragraphs: Vec<String>,
}

/// A document as text: its title, when it names one, and its sections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedDocument {
    /// The HTML `<title>`, or the first top-level heading.
    pub title: Option<String>,
    /// Sections in document order; sections without text are left out.
    pub sections: Vec<Section>,
}

impl ParsedDocument {
    /// Whether the document has any text at all.
    pub fn is_empty(&self) -> bool {
        self.sections.iter().all(|s| s.paragraphs.is_empty())
    }
}

/// Parses `content` written in `format` into sections.
pub fn parse(format: DocumentFormat, content: &str) -> ParsedDocument {
    match format {
        DocumentFormat::Markdown => markdown::parse(content),
        DocumentFormat::Html => html::parse(content),
        DocumentFormat::Text => ParsedDocument {
            title: None,
            sections: sections_of(Vec::new(), None, paragraphs_of(content)),
        },
    }
}

/// The text's paragraphs: split on blank lines, whitespace collapsed.
pub(crate) fn paragraphs_of(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            push_paragraph(&mut out, &mut current);
        } else {
            current.push(' ');
            current.push_str(line);
        }
    }
    push_paragraph(&mut out, &mut current);
    out
}

/// Moves `buf`, whitespace collapsed, onto `out` when it holds any text.
pub(crate) fn push_paragraph(out: &mut Vec<String>, buf: &mut String) {
    let p = collapse_whitespace(buf);
    if !p.is_empty() {
        out.push(p);
    }
    buf.clear();
}

pub(crate) fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn sections_of(heading_path: Vec<String>, anchor: Option<String>, paragraphs: Vec<String>) -> Vec<Section> {
    if paragraphs.is_empty() {
        return Vec::new();
    }
    vec![Section {
        heading_path,
        anchor,
        paragraphs,
    }]
}

/// A chunk's stable id: `kc_` and 32 hex digits of the SHA-256 of its
/// source, document, heading path and text (see [`chunk`]).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(String);

/// Why a string is not a chunk id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a chunk id: `kc_` and 32 lower-case hex digits")]
pub struct BadChunkId;

impl ChunkId {
    /// The prefix, without the underscore.
    pub const PREFIX: &'static str = "kc";

    /// The id of a chunk with these parts.
    pub(crate) fn of(parts: &[&str]) -> ChunkId {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for p in parts {
            // Length-prefixed, so no two different part lists hash alike.
            h.update((p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
        }
        let digest = h.finalize();
        ChunkId(format!("kc_{}", hex::encode(&digest[..16])))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ChunkId {
    type Err = BadChunkId;

    fn from_str(s: &str) -> Result<Self, BadChunkId> {
        let hex = s.strip_prefix("kc_").ok_or(BadChunkId)?;
        if hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(ChunkId(s.to_owned()))
        } else {
            Err(BadChunkId)
        }
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for ChunkId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An embedding as stored: little-endian `f32`s, four bytes each.
pub fn embedding_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// An embedding read back; `None` when the bytes are not whole `f32`s.
pub fn embedding_from_bytes(b: &[u8]) -> Option<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return None;
    }
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_paragraphs_with_whitespace_collapsed() {
        let doc = parse(DocumentFormat::Text, "One  line\nand more.\n\n\n  Two \t here \n");
        assert_eq!(doc.title, None);
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(doc.sections[0].paragraphs, ["One line and more.", "Two here"]);
        assert!(parse(DocumentFormat::Text, " \n\n\t").is_empty());
    }

    #[test]
    fn chunk_ids_parse_only_in_their_canonical_spelling() {
        let id = ChunkId::of(&["a", "b"]);
        assert_eq!(id.as_str().len(), 35);
        assert_eq!(id.as_str().parse::<ChunkId>().unwrap(), id);
        assert!("kc_ABCDEF0123456789abcdef0123456789".parse::<ChunkId>().is_err());
        assert!("kc_0123".parse::<ChunkId>().is_err());
        assert!("ks_0123456789abcdef0123456789abcdef".parse::<ChunkId>().is_err());
        // Parts are length-prefixed: moving a boundary changes the id.
        assert_ne!(ChunkId::of(&["ab", "c"]), ChunkId::of(&["a", "bc"]));
    }

    #[test]
    fn embeddings_round_trip_as_little_endian_f32s() {
        let v = [1.0f32, -0.5, 3.25e-3];
        let b = embedding_to_bytes(&v);
        assert_eq!(&b[..4], &1.0f32.to_le_bytes());
        assert_eq!(embedding_from_bytes(&b).unwrap(), v);
        assert_eq!(embedding_from_bytes(&b[..5]), None);
    }
}
