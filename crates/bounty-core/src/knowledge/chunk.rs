//! Sections into chunks of at most [`MAX_CHUNK_CHARS`] characters.
//!
//! Paragraphs of a section are packed together while they fit. A paragraph
//! too long for one chunk is cut between sentences (after `.`, `!` or `?`
//! and a space), a sentence too long between words; only a single "word"
//! longer than a whole chunk (a URL, a hash) is cut inside, at a character
//! boundary. A chunk never spans two sections: it carries its section's
//! heading path and links to its anchor (`file.md#refunds`).
//!
//! A chunk's id hashes the source, the document's locator, the heading
//! path and the text. The same text in the same place gets the same id
//! every time it is indexed; a repeat of the same text under the same
//! heading in one document is told apart by its occurrence number.

use std::collections::HashMap;

use super::{ChunkId, ParsedDocument};
use crate::KnowledgeSourceId;

/// The most characters in one chunk.
pub const MAX_CHUNK_CHARS: usize = 800;

/// One retrievable piece of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Stable: the same for the same text in the same place.
    pub id: ChunkId,
    /// Its place in the document, from 0.
    pub ordinal: u32,
    /// The headings above it, outermost first.
    pub heading_path: Vec<String>,
    /// Its text: whole paragraphs, sentences or words.
    pub text: String,
    /// Where it came from: the locator, with `#anchor` when its section
    /// has one.
    pub link: String,
}

/// Cuts a parsed document of `source`, found at `locator`, into chunks.
pub fn chunk(source: KnowledgeSourceId, locator: &str, doc: &ParsedDocument) -> Vec<Chunk> {
    let source = source.to_string();
    let mut out = Vec::new();
    let mut seen: HashMap<ChunkId, u32> = HashMap::new();
    for section in &doc.sections {
        let link = match &section.anchor {
            Some(a) => format!("{locator}#{a}"),
            None => locator.to_owned(),
        };
        let path = section.heading_path.join("\u{1f}");
        for text in pack(&section.paragraphs) {
            let base = ChunkId::of(&[&source, locator, &path, &text]);
            let n = seen.entry(base.clone()).or_insert(0);
            let id = if *n == 0 {
                base
            } else {
                ChunkId::of(&[&source, locator, &path, &text, &n.to_string()])
            };
            *n += 1;
            out.push(Chunk {
                id,
                ordinal: u32::try_from(out.len()).unwrap_or(u32::MAX),
                heading_path: section.heading_path.clone(),
                text,
                link: link.clone(),
            });
        }
    }
    out
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Packs paragraphs (each already whitespace-collapsed) into chunk texts.
fn pack(paragraphs: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut current_chars = 0;
    for paragraph in paragraphs {
        let pieces = if chars(paragraph) <= MAX_CHUNK_CHARS {
            vec![paragraph.clone()]
        } else {
            split_long(paragraph)
        };
        for (i, piece) in pieces.into_iter().enumerate() {
            let sep = if i == 0 { "\n\n" } else { " " };
            let n = chars(&piece);
            if current.is_empty() {
                current = piece;
                current_chars = n;
            } else if current_chars + sep.len() + n <= MAX_CHUNK_CHARS {
                current.push_str(sep);
                current.push_str(&piece);
                current_chars += sep.len() + n;
            } else {
                out.push(std::mem::replace(&mut current, piece));
                current_chars = n;
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// A paragraph longer than a chunk, as pieces that each fit: sentences,
/// packed; a sentence too long as words, packed; a word too long, cut.
fn split_long(paragraph: &str) -> Vec<String> {
    let mut units: Vec<String> = Vec::new();
    for sentence in sentences(paragraph) {
        if chars(sentence) <= MAX_CHUNK_CHARS {
            units.push(sentence.to_owned());
            continue;
        }
        for word in sentence.split(' ') {
            if chars(word) <= MAX_CHUNK_CHARS {
                units.push(word.to_owned());
            } else {
                let cs: Vec<char> = word.chars().collect();
                units.extend(cs.chunks(MAX_CHUNK_CHARS).map(|c| c.iter().collect()));
            }
        }
    }
    // Pack the units back together with single spaces.
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut current_chars = 0;
    for u in units {
        let n = chars(&u);
        if current.is_empty() {
            current = u;
            current_chars = n;
        } else if current_chars + 1 + n <= MAX_CHUNK_CHARS {
            current.push(' ');
            current.push_str(&u);
            current_chars += 1 + n;
        } else {
            out.push(std::mem::replace(&mut current, u));
            current_chars = n;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The sentences of a whitespace-collapsed paragraph: each ends after
/// `.`, `!` or `?` followed by a space.
fn sentences(p: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev: Option<char> = None;
    for (i, c) in p.char_indices() {
        if c == ' ' && matches!(prev, Some('.' | '!' | '?')) {
            out.push(&p[start..i]);
            start = i + 1;
        }
        prev = Some(c);
    }
    if start < p.len() {
        out.push(&p[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::{DocumentFormat, parse};

    fn source() -> KnowledgeSourceId {
        "ks_01JD3K8Q9V7Y2X4W6T5R3P1N0M".parse().unwrap()
    }

    #[test]
    fn small_paragraphs_share_a_chunk_and_sections_never_do() {
        let doc = parse(
            DocumentFormat::Markdown,
            "# Refunds\n\nOne.\n\nTwo.\n\n## By mail\n\nThree.\n",
        );
        let chunks = chunk(source(), "help.md", &doc);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].text, "One.\n\nTwo.");
        assert_eq!(chunks[0].link, "help.md#refunds");
        assert_eq!(chunks[0].ordinal, 0);
        assert_eq!(chunks[1].heading_path, ["Refunds", "By mail"]);
        assert_eq!(chunks[1].link, "help.md#by-mail");
        assert_eq!(chunks[1].ordinal, 1);
    }

    #[test]
    fn long_text_splits_on_sentences_then_words_and_never_mid_word() {
        let sentence = "Refunds are issued to the original payment method within five days. ";
        let long = sentence.repeat(40);
        let doc = parse(DocumentFormat::Text, &long);
        let chunks = chunk(source(), "a.txt", &doc);
        assert!(chunks.len() > 1);
        for c in &chunks {
            assert!(c.text.chars().count() <= MAX_CHUNK_CHARS);
            assert!(
                c.text.starts_with("Refunds") && c.text.ends_with("days."),
                "{}",
                c.text
            );
        }
        let joined = chunks
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(joined, long.trim_end());

        // One endless sentence: cut between words.
        let words = "word ".repeat(500);
        let chunks = chunk(source(), "b.txt", &parse(DocumentFormat::Text, &words));
        for c in &chunks {
            assert!(c.text.chars().count() <= MAX_CHUNK_CHARS);
            assert!(c.text.split(' ').all(|w| w == "word"), "{}", c.text);
        }

        // One endless "word" of multi-byte characters: cut at characters.
        let blob = "é".repeat(2000);
        let chunks = chunk(source(), "c.txt", &parse(DocumentFormat::Text, &blob));
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks.iter().map(|c| c.text.chars().count()).sum::<usize>(), 2000);
    }

    #[test]
    fn ids_are_stable_and_depend_on_place_and_text() {
        let md = "# A\n\nSame text.\n\n# B\n\nSame text.\n";
        let doc = parse(DocumentFormat::Markdown, md);
        let first = chunk(source(), "x.md", &doc);
        let again = chunk(source(), "x.md", &parse(DocumentFormat::Markdown, md));
        assert_eq!(first, again);
        assert_ne!(first[0].id, first[1].id, "same text, other heading");
        let other_doc = chunk(source(), "y.md", &doc);
        assert_ne!(first[0].id, other_doc[0].id);
        let other_source = chunk("ks_01JD3K8Q9V7Y2X4W6T5R3P1N0N".parse().unwrap(), "x.md", &doc);
        assert_ne!(first[0].id, other_source[0].id);

        // Editing one section keeps the other section's id.
        let edited = chunk(
            source(),
            "x.md",
            &parse(
                DocumentFormat::Markdown,
                "# A\n\nSame text.\n\n# B\n\nNew text.\n",
            ),
        );
        assert_eq!(edited[0].id, first[0].id);
        assert_ne!(edited[1].id, first[1].id);
    }

    #[test]
    fn a_repeated_chunk_gets_its_own_id() {
        let long = format!("{}\n\n{}", "a ".repeat(500), "a ".repeat(500));
        let chunks = chunk(source(), "r.txt", &parse(DocumentFormat::Text, &long));
        let mut ids: Vec<_> = chunks.iter().map(|c| c.id.clone()).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
