//! HTML into sections, by a small hand-written scanner (the workspace has
//! no HTML parser, and a help-center page needs only this much):
//!
//! - `script`, `style`, `noscript`, `template`, `svg`, `iframe`, `object`
//!   and `select` are dropped with everything inside; so are comments,
//!   doctypes and processing instructions;
//! - `<title>` becomes the document's title, not its text;
//! - `h1`–`h6` open sections (their `id` is the anchor of the link);
//! - block elements (`p`, `div`, `li`, `br`, `tr`, …) end paragraphs,
//!   table cells are separated by a space, other tags vanish;
//! - character references are decoded (`&amp;`, `&#39;`, `&#x2019;`, and
//!   the common named ones); anything unknown is kept as written.
//!
//! Malformed markup (an unclosed tag, comment or script) ends the scan at
//! the end of the input; nothing in it can make the scanner panic or loop.

use super::{ParsedDocument, Section, push_paragraph};

const DROPPED: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "iframe", "object", "select", "textarea",
];

const BLOCKS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "nav",
    "aside",
    "blockquote",
    "pre",
    "hr",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "form",
    "fieldset",
    "details",
    "summary",
    "address",
    "body",
    "html",
    "caption",
];

struct Builder {
    sections: Vec<Section>,
    stack: Vec<(usize, String)>,
    anchor: Option<String>,
    paragraphs: Vec<String>,
    current: String,
    /// The heading being read: (level, its `id`, its text so far).
    heading: Option<(usize, Option<String>, String)>,
    title: Option<String>,
    first_heading: Option<String>,
}

impl Builder {
    fn text(&mut self, s: &str) {
        match &mut self.heading {
            Some((_, _, t)) => t.push_str(s),
            None => self.current.push_str(s),
        }
    }

    fn end_paragraph(&mut self) {
        if self.heading.is_some() {
            self.text(" ");
        } else {
            push_paragraph(&mut self.paragraphs, &mut self.current);
        }
    }

    fn end_section(&mut self) {
        push_paragraph(&mut self.paragraphs, &mut self.current);
        if !self.paragraphs.is_empty() {
            self.sections.push(Section {
                heading_path: self.stack.iter().map(|(_, t)| t.clone()).collect(),
                anchor: self.anchor.clone(),
                paragraphs: std::mem::take(&mut self.paragraphs),
            });
        }
    }

    fn open_heading(&mut self, level: usize, id: Option<String>) {
        self.close_heading();
        self.end_section();
        self.heading = Some((level, id, String::new()));
    }

    fn close_heading(&mut self) {
        let Some((level, id, text)) = self.heading.take() else {
            return;
        };
        let text = super::collapse_whitespace(&text);
        if text.is_empty() {
            return;
        }
        if self.first_heading.is_none() {
            self.first_heading = Some(text.clone());
        }
        while self.stack.last().is_some_and(|(l, _)| *l >= level) {
            self.stack.pop();
        }
        self.stack.push((level, text));
        self.anchor = id;
    }
}

/// `h1`…`h6` → 1…6.
fn heading_level(name: &str) -> Option<usize> {
    match name.as_bytes() {
        [b'h', d @ b'1'..=b'6'] => Some(usize::from(d - b'0')),
        _ => None,
    }
}

/// One tag: its lower-case name, whether it closes, its `id`, and the
/// byte offset just past its `>` (or the end of the input).
struct Tag {
    name: String,
    closing: bool,
    id: Option<String>,
    end: usize,
}

/// Reads the tag that starts at `start` (`s[start] == '<'`), or `None` when
/// what follows `<` is not a tag name (then the `<` is text).
fn read_tag(s: &str, start: usize) -> Option<Tag> {
    let rest = &s[start + 1..];
    let (closing, rest, offset) = match rest.strip_prefix('/') {
        Some(r) => (true, r, start + 2),
        None => (false, rest, start + 1),
    };
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == ':'))
        .unwrap_or(rest.len());
    if name_len == 0 || !rest.as_bytes()[0].is_ascii_alphabetic() {
        return None;
    }
    let name = rest[..name_len].to_ascii_lowercase();
    // Attributes up to the `>` that is not inside quotes.
    let attrs_start = offset + name_len;
    let mut quote: Option<char> = None;
    let mut end = s.len();
    for (i, c) in s[attrs_start..].char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => {
                end = attrs_start + i + 1;
                break;
            }
            _ => {}
        }
    }
    let attrs = &s[attrs_start..end.max(attrs_start)];
    Some(Tag {
        name,
        closing,
        id: attribute(attrs, "id"),
        end,
    })
}

/// The value of attribute `name` in a tag's attribute text.
fn attribute(attrs: &str, name: &str) -> Option<String> {
    let lower = attrs.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before_ok = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let after = lower[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value_start = attrs.len() - after.len() + 1;
        let v = attrs[value_start..].trim_start();
        let value = match v.chars().next() {
            Some(q @ ('"' | '\'')) => v[1..].split(q).next().unwrap_or(""),
            _ => v
                .split(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .next()
                .unwrap_or(""),
        };
        let value = decode_entities(value.trim());
        return Some(value).filter(|v| !v.is_empty() && !v.chars().any(char::is_control));
    }
    None
}

/// Decodes character references; unknown ones are kept as written.
pub(super) fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .map(|e| e + 1);
        let decoded = match end {
            Some(e) if rest.as_bytes().get(e) == Some(&b';') => reference(&rest[1..e]).map(|c| (c, e + 1)),
            _ => None,
        };
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn reference(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code).filter(|c| *c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "rsquo" => '’',
        "lsquo" => '‘',
        "rdquo" => '”',
        "ldquo" => '“',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "euro" => '€',
        "middot" => '·',
        "bull" => '•',
        _ => return None,
    })
}

pub(super) fn parse(s: &str) -> ParsedDocument {
    let lower = s.to_ascii_lowercase();
    let mut b = Builder {
        sections: Vec::new(),
        stack: Vec::new(),
        anchor: None,
        paragraphs: Vec::new(),
        current: String::new(),
        heading: None,
        title: None,
        first_heading: None,
    };
    let mut pos = 0;
    while pos < s.len() {
        let Some(lt) = s[pos..].find('<').map(|i| pos + i) else {
            b.text(&decode_entities(&s[pos..]));
            break;
        };
        b.text(&decode_entities(&s[pos..lt]));
        let after = &lower[lt..];
        if let Some(comment) = after.strip_prefix("<!--") {
            pos = comment.find("-->").map_or(s.len(), |i| lt + 4 + i + 3);
            continue;
        }
        if after.starts_with("<!") || after.starts_with("<?") {
            pos = after.find('>').map_or(s.len(), |i| lt + i + 1);
            continue;
        }
        let Some(tag) = read_tag(s, lt) else {
            b.text("<");
            pos = lt + 1;
            continue;
        };
        pos = tag.end;
        if tag.closing {
            if heading_level(&tag.name).is_some() {
                b.close_heading();
            } else if BLOCKS.contains(&tag.name.as_str()) {
                b.end_paragraph();
            } else if tag.name == "td" || tag.name == "th" {
                b.text(" ");
            }
            continue;
        }
        if DROPPED.contains(&tag.name.as_str()) || tag.name == "title" {
            let close = format!("</{}", tag.name);
            let inner_end = lower[pos..].find(&close).map_or(s.len(), |i| pos + i);
            if tag.name == "title" && b.title.is_none() {
                let t = super::collapse_whitespace(&decode_entities(&s[pos..inner_end]));
                b.title = Some(t).filter(|t| !t.is_empty());
            }
            pos = lower[inner_end..]
                .find('>')
                .map_or(s.len(), |i| inner_end + i + 1);
            continue;
        }
        if let Some(level) = heading_level(&tag.name) {
            b.open_heading(level, tag.id);
        } else if BLOCKS.contains(&tag.name.as_str()) {
            b.end_paragraph();
        } else if tag.name == "td" || tag.name == "th" {
            b.text(" ");
        }
    }
    b.close_heading();
    b.end_section();
    ParsedDocument {
        title: b.title.or(b.first_heading),
        sections: b.sections,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_text_and_anchors_without_scripts_or_styles() {
        let doc = parse(
            "<!DOCTYPE html><html><head><title>Help &amp; FAQ</title><style>h1{color:red}</style>\
             <script>var x = '<h1>no</h1>';</script></head><body>\
             <p>Intro <b>bold</b> text.</p><!-- a <p>comment</p> -->\
             <h1 id=\"refunds\">Refunds</h1><p>Within&nbsp;30 days.<br>Keep the receipt.</p>\
             <h2 class='x' id='by-mail'>By <em>mail</em></h2><ul><li>Print the label</li><li>Post it</li></ul>\
             <h1>Shipping</h1><table><tr><td>EU</td><td>2 days</td></tr></table>\
             <SCRIPT type=\"a>b\">alert(1)</SCRIPT><p>It&#39;s &#x2019;fine&#8217; &bogus; &amp</p></body></html>",
        );
        assert_eq!(doc.title.as_deref(), Some("Help & FAQ"));
        let got: Vec<_> = doc
            .sections
            .iter()
            .map(|s| (s.heading_path.join(" > "), s.anchor.clone(), s.paragraphs.clone()))
            .collect();
        assert_eq!(got[0], (String::new(), None, vec!["Intro bold text.".to_owned()]));
        assert_eq!(
            got[1],
            (
                "Refunds".to_owned(),
                Some("refunds".to_owned()),
                vec!["Within 30 days.".to_owned(), "Keep the receipt.".to_owned()]
            )
        );
        assert_eq!(
            got[2],
            (
                "Refunds > By mail".to_owned(),
                Some("by-mail".to_owned()),
                vec!["Print the label".to_owned(), "Post it".to_owned()]
            )
        );
        assert_eq!(got[3].0, "Shipping");
        assert_eq!(got[3].1, None);
        assert_eq!(got[3].2, ["EU 2 days", "It's ’fine’ &bogus; &amp"]);
        let all = format!("{got:?}");
        for hidden in ["color", "var x", "alert", "comment", "no"] {
            assert!(!all.contains(hidden), "{hidden} leaked: {all}");
        }
    }

    #[test]
    fn malformed_markup_ends_cleanly() {
        for s in [
            "<",
            "<p",
            "<p class=\"x",
            "<!--",
            "<script>never closed",
            "a < b and c > d",
            "</",
            "<1>",
            "&#xFFFFFFFF;",
            "&#0;",
            "<h1 id=>x",
            "<h7>x</h7>",
            "é<é>",
            "<title>",
            "<h2>",
        ] {
            let _ = parse(s);
        }
        let d = parse("a < b and c > d &#0;");
        assert_eq!(d.sections[0].paragraphs, ["a < b and c > d &#0;"]);
        assert!(parse("<script>only</script><style>x</style>").is_empty());
        assert_eq!(parse("<title>T</title><h2>Sub</h2>x").title.as_deref(), Some("T"));
        assert_eq!(parse("<h2>Sub</h2>x").title.as_deref(), Some("Sub"));
    }
}
