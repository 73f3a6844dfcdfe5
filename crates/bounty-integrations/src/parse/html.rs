//! HTML message bodies reduced to plain text.
//!
//! Intercom sends message bodies as HTML (`<p>Hi</p><p>My invoice…</p>`).
//! An agent, a verifier and a log want the text, so tags are dropped,
//! block-level tags become line breaks, `<script>`/`<style>` contents go
//! away and the common entities are decoded. This is not a sanitizer for
//! rendering HTML; its output is text and must be escaped like any text.
//! Malformed markup degrades to keeping the text, never to a panic.

/// Tags that end a line of text.
const BLOCK_TAGS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "hr",
    "table",
];

/// Longest entity name between `&` and `;` (`&#x10FFFF;`, `&hellip;`).
const MAX_ENTITY_LEN: usize = 10;

/// Tags whose content is not text.
const HIDDEN_TAGS: &[&str] = &["script", "style", "head", "title"];

/// The text of an HTML fragment.
pub(super) fn to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        decode_entities(&rest[..open], &mut out);
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            // An unclosed `<` is not a tag: keep it as text.
            decode_entities(&rest[open..], &mut out);
            rest = "";
            break;
        };
        let name = tag_name(&after[..close]);
        rest = &after[close + 1..];
        if BLOCK_TAGS.contains(&name.as_str()) && !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        let is_closing = after.starts_with('/');
        if !is_closing && HIDDEN_TAGS.contains(&name.as_str()) {
            rest = skip_past_closing(rest, &name);
        }
    }
    decode_entities(rest, &mut out);
    tidy_lines(&out)
}

/// The lower-case name of the tag inside `<…>`: `p` for `/p`, `br` for `br/`.
fn tag_name(inside: &str) -> String {
    inside
        .trim_start_matches('/')
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// What follows `</name>` in `rest`, or nothing when it never closes.
///
/// Scans forward once, without copying, so a body full of `<script>` tags
/// still costs linear time.
fn skip_past_closing<'a>(rest: &'a str, name: &str) -> &'a str {
    let mut from = 0;
    while let Some(found) = rest.get(from..).and_then(|tail| tail.find("</")) {
        let after = &rest[from + found + 2..];
        let names_it = after
            .as_bytes()
            .get(..name.len())
            .is_some_and(|b| b.eq_ignore_ascii_case(name.as_bytes()));
        if names_it {
            return after.find('>').map_or("", |end| &after[end + 1..]);
        }
        from += found + 2;
    }
    ""
}

/// Appends `text` with `&amp;`-style entities decoded; unknown ones stay.
fn decode_entities(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        // Entity names are short: look no further than that for the `;`, so a
        // run of bare `&`s costs linear time.
        let end = after.bytes().take(MAX_ENTITY_LEN + 1).position(|b| b == b';');
        let entity = end.and_then(|end| Some((decode(&after[..end])?, end)));
        match entity {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

/// The character an entity name (between `&` and `;`) stands for.
fn decode(name: &str) -> Option<char> {
    let named = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '\u{2013}',
        "mdash" => '\u{2014}',
        "hellip" => '\u{2026}',
        "lsquo" => '\u{2018}',
        "rsquo" => '\u{2019}',
        "ldquo" => '\u{201C}',
        "rdquo" => '\u{201D}',
        "copy" => '\u{A9}',
        "reg" => '\u{AE}',
        "euro" => '\u{20AC}',
        _ => {
            let code = match name.strip_prefix('#')? {
                hex if hex.starts_with(['x', 'X']) => u32::from_str_radix(&hex[1..], 16).ok()?,
                dec => dec.parse().ok()?,
            };
            return char::from_u32(code).filter(|c| *c != '\0');
        }
    };
    Some(named)
}

/// Trailing spaces off each line, at most one blank line in a row, no
/// blank lines at either end.
fn tidy_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines().map(str::trim_end) {
        if line.trim().is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        out.push_str(line);
        blank_run = 0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_become_lines() {
        let html = "<p>Hi there,</p><p>My invoice #4821 shows the wrong amount.<br>Can you check?</p>";
        assert_eq!(
            to_text(html),
            "Hi there,\nMy invoice #4821 shows the wrong amount.\nCan you check?"
        );
    }

    #[test]
    fn entities_are_decoded_and_unknown_ones_kept() {
        assert_eq!(
            to_text("<p>Tom &amp; Jerry &lt;3 &#39;x&#x27; &mdash; &nbsp;ok</p>"),
            "Tom & Jerry <3 'x' \u{2014}  ok"
        );
        assert_eq!(to_text("&bogus; &copy;"), "&bogus; \u{A9}");
        assert_eq!(to_text("AT&T & co; &#0; &#xZZ;"), "AT&T & co; &#0; &#xZZ;");
    }

    #[test]
    fn scripts_and_styles_are_dropped() {
        let html = "<style>p{color:red}</style><p>Visible</p><SCRIPT type=x>alert('no')</script >after";
        assert_eq!(to_text(html), "Visible\nafter");
        assert_eq!(to_text("<p>a</p><script>never closed"), "a");
    }

    #[test]
    fn malformed_markup_keeps_the_text() {
        assert_eq!(to_text("2 < 3 and more"), "2 < 3 and more");
        assert_eq!(to_text("<p>a"), "a");
        assert_eq!(to_text("<><</>>é"), ">é");
        assert_eq!(to_text(""), "");
        assert_eq!(to_text("plain text, no tags"), "plain text, no tags");
    }

    #[test]
    fn pathological_bodies_take_linear_time() {
        // Quadratic scanning would make each of these run for minutes.
        let ampersands = "&".repeat(1 << 20);
        assert_eq!(to_text(&ampersands).len(), 1 << 20);
        let scripts = "<script>x</script>".repeat(50_000);
        assert_eq!(to_text(&scripts), "");
        let unclosed = "<script>".repeat(100_000);
        assert_eq!(to_text(&unclosed), "");
        let opens = "<".repeat(1 << 20);
        assert_eq!(to_text(&opens).len(), 1 << 20);
    }

    #[test]
    fn blank_lines_collapse() {
        assert_eq!(to_text("<div>a</div>\n\n\n<div>  </div><div>b</div>\n"), "a\n\nb");
    }
}
