//! Markdown into sections: ATX (`## Refunds`) and setext (a line of `=` or
//! `-` under a paragraph) headings open sections; blank lines end
//! paragraphs; a fenced code block (```` ``` ```` or `~~~`) is one
//! paragraph and its `#` lines are not headings. Inline markup is kept as
//! written: it is searchable text, and what a model reads well.
//!
//! Each heading's anchor is GitHub's slug of its text (lower case, letters,
//! digits, `-` and `_`, spaces as `-`; a repeated slug gets `-1`, `-2`),
//! so a chunk links to `file.md#refunds` as a rendered help center would.

use std::collections::HashMap;

use super::{ParsedDocument, Section, push_paragraph};

struct Builder {
    sections: Vec<Section>,
    /// The open headings: (level, text).
    stack: Vec<(usize, String)>,
    anchor: Option<String>,
    paragraphs: Vec<String>,
    current: String,
    /// Lines in `current`: a setext underline needs one or more.
    current_lines: usize,
    slugs: HashMap<String, usize>,
    title: Option<String>,
}

impl Builder {
    fn end_paragraph(&mut self) {
        push_paragraph(&mut self.paragraphs, &mut self.current);
        self.current_lines = 0;
    }

    fn heading(&mut self, level: usize, text: &str) {
        self.end_paragraph();
        self.end_section();
        let text = super::collapse_whitespace(text);
        if self.title.is_none() && level == 1 && !text.is_empty() {
            self.title = Some(text.clone());
        }
        while self.stack.last().is_some_and(|(l, _)| *l >= level) {
            self.stack.pop();
        }
        self.anchor = Some(self.slug(&text)).filter(|s| !s.is_empty());
        self.stack.push((level, text));
    }

    fn end_section(&mut self) {
        if !self.paragraphs.is_empty() {
            self.sections.push(Section {
                heading_path: self
                    .stack
                    .iter()
                    .map(|(_, t)| t.clone())
                    .filter(|t| !t.is_empty())
                    .collect(),
                anchor: self.anchor.clone(),
                paragraphs: std::mem::take(&mut self.paragraphs),
            });
        }
    }

    fn slug(&mut self, text: &str) -> String {
        let base: String = text
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let n = self.slugs.entry(base.clone()).or_insert(0);
        let slug = if *n == 0 { base } else { format!("{base}-{n}") };
        *n += 1;
        slug
    }
}

/// An ATX heading's level and text: up to three spaces, 1–6 `#`, then a
/// space or the end of the line; closing `#`s dropped.
fn atx(line: &str) -> Option<(usize, &str)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let level = rest.len() - rest.trim_start_matches('#').len();
    if !(1..=6).contains(&level) {
        return None;
    }
    let text = &rest[level..];
    if !(text.is_empty() || text.starts_with([' ', '\t'])) {
        return None;
    }
    let text = text.trim();
    let closed = text.trim_end_matches('#');
    let text = if closed.is_empty() || closed.ends_with([' ', '\t']) {
        closed.trim_end()
    } else {
        text
    };
    Some((level, text))
}

/// The fence a line opens or closes (```` ``` ```` or `~~~`, three or more).
fn fence(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if line.len() - t.len() > 3 {
        return None;
    }
    for mark in ["```", "~~~"] {
        if t.starts_with(mark) {
            let c = &mark[..1];
            let n = t.len() - t.trim_start_matches(c).len();
            return Some(&t[..n]);
        }
    }
    None
}

pub(super) fn parse(content: &str) -> ParsedDocument {
    let mut b = Builder {
        sections: Vec::new(),
        stack: Vec::new(),
        anchor: None,
        paragraphs: Vec::new(),
        current: String::new(),
        current_lines: 0,
        slugs: HashMap::new(),
        title: None,
    };
    let mut open_fence: Option<String> = None;
    for line in content.lines() {
        if let Some(f) = &open_fence {
            let closes = fence(line)
                .is_some_and(|g| g.starts_with(f.as_str()) && line.trim()[g.len()..].trim().is_empty());
            if closes {
                open_fence = None;
                b.end_paragraph();
            } else {
                b.current.push(' ');
                b.current.push_str(line);
            }
            continue;
        }
        if let Some(f) = fence(line) {
            b.end_paragraph();
            open_fence = Some(f.to_owned());
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            b.end_paragraph();
            continue;
        }
        if let Some((level, text)) = atx(line) {
            b.heading(level, text);
            continue;
        }
        let underline = |c: char| trimmed.chars().all(|x| x == c);
        if b.current_lines >= 1 && (underline('=') || (underline('-') && trimmed.len() >= 2)) {
            let text = std::mem::take(&mut b.current);
            b.current_lines = 0;
            b.heading(if underline('=') { 1 } else { 2 }, &text);
            continue;
        }
        if b.current_lines == 0 && trimmed.len() >= 3 && (underline('-') || underline('*') || underline('_'))
        {
            // A thematic break.
            continue;
        }
        b.current.push(' ');
        b.current.push_str(line);
        b.current_lines += 1;
    }
    b.end_paragraph();
    b.end_section();
    ParsedDocument {
        title: b.title,
        sections: b.sections,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_nest_into_paths_with_github_anchors() {
        let doc = parse(
            "Intro text.\n\n# Help Center\n\nWelcome.\n\n## Refunds & Returns\n\nWithin 30 days.\n\
             \n### By mail ###\n\nSend it back.\n\n## Shipping\n\nTwo days.\n\n## Shipping\n\nAgain.\n",
        );
        assert_eq!(doc.title.as_deref(), Some("Help Center"));
        let got: Vec<(Vec<String>, Option<String>, Vec<String>)> = doc
            .sections
            .into_iter()
            .map(|s| (s.heading_path, s.anchor, s.paragraphs))
            .collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            vec![
                (s(&[]), None, s(&["Intro text."])),
                (s(&["Help Center"]), Some("help-center".into()), s(&["Welcome."])),
                (
                    s(&["Help Center", "Refunds & Returns"]),
                    Some("refunds--returns".into()),
                    s(&["Within 30 days."])
                ),
                (
                    s(&["Help Center", "Refunds & Returns", "By mail"]),
                    Some("by-mail".into()),
                    s(&["Send it back."])
                ),
                (
                    s(&["Help Center", "Shipping"]),
                    Some("shipping".into()),
                    s(&["Two days."])
                ),
                (
                    s(&["Help Center", "Shipping"]),
                    Some("shipping-1".into()),
                    s(&["Again."])
                ),
            ]
        );
    }

    #[test]
    fn setext_headings_fences_and_breaks() {
        let doc = parse(
            "Guide\n=====\n\nText\nmore text\n\n---\n\nOrders\n------\n\n```sh\n# not a heading\n```\n\n***\n#hashtag\n",
        );
        assert_eq!(doc.title.as_deref(), Some("Guide"));
        assert_eq!(doc.sections[0].heading_path, ["Guide"]);
        // `---` after a blank line is a break, not a heading.
        assert_eq!(doc.sections[0].paragraphs, ["Text more text"]);
        assert_eq!(doc.sections[1].heading_path, ["Guide", "Orders"]);
        assert_eq!(doc.sections[1].paragraphs, ["# not a heading", "#hashtag"]);
    }

    #[test]
    fn odd_input_never_panics() {
        for s in [
            "#",
            "######## x",
            "```",
            "~~~\n",
            "=\n=",
            "é\n==",
            " # ",
            "\u{0}#\u{0}",
            "- \n-",
        ] {
            let _ = parse(s);
        }
        assert!(parse("# Only a heading\n").is_empty());
    }
}
