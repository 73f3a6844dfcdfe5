//! Typed reads of JSON fields that know their own path.
//!
//! Vendor payloads are read through [`At`], a JSON value paired with the
//! dotted path it was reached by, so every failure names the exact field
//! (`data.item.source.author.email`, `data.tags[3]`) and the vendor parsers
//! read as a list of the fields they use. The limits of [`super`] are
//! enforced here, once: text is truncated, identifiers are bounded, NULs
//! are removed. Paths are built only from the keys the parsers ask for and
//! array indexes, never from keys found in the payload, so an error can be
//! logged as is.

use bounty_core::clock::Timestamp;
use chrono::DateTime;
use serde_json::{Map, Value};

use super::{MAX_ID_BYTES, MAX_SHORT_TEXT_BYTES, MAX_TAGS, MAX_TEXT_BYTES, MAX_URL_BYTES, ParseError};

/// A JSON value found at `path`.
#[derive(Debug, Clone)]
pub(super) struct At<'a> {
    value: &'a Value,
    /// Dotted path from the root; empty for the root itself.
    path: String,
}

impl<'a> At<'a> {
    /// The root of a body, which must be an object.
    pub(super) fn root(value: &'a Value) -> Result<Self, ParseError> {
        let root = At {
            value,
            path: String::new(),
        };
        root.object()?;
        Ok(root)
    }

    /// The path as errors show it: `$` for the root.
    fn shown_path(&self) -> &str {
        if self.path.is_empty() { "$" } else { &self.path }
    }

    fn joined(&self, dotted: &str) -> String {
        if self.path.is_empty() {
            dotted.to_owned()
        } else {
            format!("{}.{dotted}", self.path)
        }
    }

    /// An [`ParseError::InvalidField`] about this value.
    pub(super) fn invalid(&self, reason: &'static str) -> ParseError {
        ParseError::InvalidField {
            path: self.shown_path().to_owned(),
            reason,
        }
    }

    fn object(&self) -> Result<&'a Map<String, Value>, ParseError> {
        self.value
            .as_object()
            .ok_or_else(|| self.invalid("expected an object"))
    }

    /// The value at `dotted` (`"a.b.c"`) below this object, or `None` when
    /// it, or an object on the way to it, is absent or null. A non-object
    /// on the way is an error.
    pub(super) fn get(&self, dotted: &str) -> Result<Option<At<'a>>, ParseError> {
        let mut at = self.clone();
        for key in dotted.split('.') {
            match at.object()?.get(key) {
                None | Some(Value::Null) => return Ok(None),
                Some(value) => {
                    at = At {
                        value,
                        path: at.joined(key),
                    }
                }
            }
        }
        Ok(Some(at))
    }

    /// The value at `dotted`, which must be there.
    pub(super) fn req(&self, dotted: &str) -> Result<At<'a>, ParseError> {
        self.get(dotted)?.ok_or_else(|| ParseError::MissingField {
            path: self.joined(dotted),
        })
    }

    /// `read` applied to the value at `dotted`, if there is one.
    pub(super) fn opt<T>(
        &self,
        dotted: &str,
        read: impl FnOnce(&At<'a>) -> Result<T, ParseError>,
    ) -> Result<Option<T>, ParseError> {
        self.get(dotted)?.map(|at| read(&at)).transpose()
    }

    /// Whether this value is a JSON object.
    pub(super) fn is_object(&self) -> bool {
        self.value.is_object()
    }

    /// The string itself, unbounded: for comparisons, never for storage.
    pub(super) fn str(&self) -> Result<&'a str, ParseError> {
        self.value
            .as_str()
            .ok_or_else(|| self.invalid("expected a string"))
    }

    /// An identifier: a non-blank string, or a non-negative integer written
    /// as its digits. Bounded by [`MAX_ID_BYTES`], never truncated.
    pub(super) fn id(&self) -> Result<String, ParseError> {
        match self.value {
            Value::String(s) => {
                let s = s.trim();
                if s.is_empty() {
                    Err(self.invalid("expected a non-empty id"))
                } else if s.len() > MAX_ID_BYTES {
                    Err(self.invalid("id longer than 256 bytes"))
                } else if s.contains('\0') {
                    Err(self.invalid("id contains a NUL character"))
                } else {
                    Ok(s.to_owned())
                }
            }
            Value::Number(n) => match n.as_u64() {
                Some(n) => Ok(n.to_string()),
                None => Err(self.invalid("expected a non-negative integer id")),
            },
            _ => Err(self.invalid("expected a string or integer id")),
        }
    }

    /// An integer.
    pub(super) fn integer(&self) -> Result<i64, ParseError> {
        self.value
            .as_i64()
            .ok_or_else(|| self.invalid("expected an integer"))
    }

    /// A boolean.
    pub(super) fn bool(&self) -> Result<bool, ParseError> {
        self.value
            .as_bool()
            .ok_or_else(|| self.invalid("expected a boolean"))
    }

    /// The items of an array, each with its `[i]` path.
    pub(super) fn items(&self) -> Result<Vec<At<'a>>, ParseError> {
        let items = self
            .value
            .as_array()
            .ok_or_else(|| self.invalid("expected an array"))?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, value)| At {
                value,
                path: format!("{}[{i}]", self.shown_path()),
            })
            .collect())
    }

    /// Message text: truncated to [`MAX_TEXT_BYTES`], NULs removed.
    pub(super) fn text(&self) -> Result<String, ParseError> {
        Ok(clean(self.str()?, MAX_TEXT_BYTES))
    }

    /// Message text sent as HTML, reduced to plain text, then as [`At::text`].
    pub(super) fn html_text(&self) -> Result<String, ParseError> {
        Ok(clean(&super::html::to_text(self.str()?), MAX_TEXT_BYTES))
    }

    /// A display line sent as HTML, reduced to plain text, then as [`At::short`].
    pub(super) fn html_short(&self) -> Result<Option<String>, ParseError> {
        let text = clean(super::html::to_text(self.str()?).trim(), MAX_SHORT_TEXT_BYTES);
        Ok((!text.is_empty()).then_some(text))
    }

    /// Display text: trimmed, truncated to [`MAX_SHORT_TEXT_BYTES`], NULs
    /// removed; `None` when blank.
    pub(super) fn short(&self) -> Result<Option<String>, ParseError> {
        let text = clean(self.str()?.trim(), MAX_SHORT_TEXT_BYTES);
        Ok((!text.is_empty()).then_some(text))
    }

    /// An email address: trimmed, bounded, `None` when blank. Its syntax is
    /// the vendor's business; we only store and show it.
    pub(super) fn email(&self) -> Result<Option<String>, ParseError> {
        let email = self.str()?.trim();
        if email.len() > MAX_ID_BYTES {
            return Err(self.invalid("email longer than 256 bytes"));
        }
        if email.contains('\0') {
            return Err(self.invalid("email contains a NUL character"));
        }
        Ok((!email.is_empty()).then(|| email.to_owned()))
    }

    /// An `http(s)://` URL of at most [`MAX_URL_BYTES`].
    pub(super) fn url(&self) -> Result<String, ParseError> {
        let url = self.str()?.trim();
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(self.invalid("expected an http(s) URL"));
        }
        if url.len() > MAX_URL_BYTES || url.contains(char::is_whitespace) || url.contains('\0') {
            return Err(self.invalid("URL too long or not a single token"));
        }
        Ok(url.to_owned())
    }

    /// An array of tag strings: the first [`MAX_TAGS`], each as [`At::short`],
    /// blanks dropped.
    pub(super) fn tags(&self) -> Result<Vec<String>, ParseError> {
        let mut tags = Vec::new();
        for item in self.items()?.into_iter().take(MAX_TAGS) {
            tags.extend(item.short()?);
        }
        Ok(tags)
    }

    /// An RFC 3339 timestamp string.
    pub(super) fn rfc3339(&self) -> Result<Timestamp, ParseError> {
        let parsed = DateTime::parse_from_rfc3339(self.str()?)
            .map_err(|_| self.invalid("expected an RFC 3339 timestamp"))?;
        Ok(parsed.to_utc())
    }

    /// Integer unix seconds.
    pub(super) fn unix_seconds(&self) -> Result<Timestamp, ParseError> {
        let seconds = self
            .value
            .as_i64()
            .ok_or_else(|| self.invalid("expected unix seconds"))?;
        DateTime::from_timestamp(seconds, 0).ok_or_else(|| self.invalid("timestamp out of range"))
    }

    /// Either form a vendor mixes: unix seconds (an integer, or a number
    /// with a fraction, which is dropped) or an RFC 3339 string.
    pub(super) fn timestamp(&self) -> Result<Timestamp, ParseError> {
        match self.value {
            Value::String(_) => self.rfc3339(),
            Value::Number(n) => {
                // A fractional second is no money: truncating is exact enough,
                // and `as` saturates instead of wrapping on absurd values.
                let seconds = n
                    .as_i64()
                    .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.trunc() as i64));
                seconds
                    .and_then(|s| DateTime::from_timestamp(s, 0))
                    .ok_or_else(|| self.invalid("timestamp out of range"))
            }
            _ => Err(self.invalid("expected unix seconds or an RFC 3339 timestamp")),
        }
    }
}

/// `s` without NULs, cut to at most `limit` bytes at a character boundary.
fn clean(s: &str, limit: usize) -> String {
    let cut = truncate(s, limit);
    if cut.contains('\0') {
        cut.replace('\0', "")
    } else {
        cut
    }
}

/// `s` cut to at most `limit` bytes at a character boundary.
pub(super) fn truncate(s: &str, limit: usize) -> String {
    s[..s.floor_char_boundary(limit)].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_name_the_field_that_failed() {
        let value = json!({"a": {"b": [1, "x", {"c": true}]}, "n": null});
        let root = At::root(&value).unwrap();
        let missing = root.req("a.z.c").unwrap_err();
        assert_eq!(missing, ParseError::MissingField { path: "a.z.c".into() });
        assert_eq!(root.req("n").unwrap_err().path(), Some("n"));
        let items = root.req("a.b").unwrap().items().unwrap();
        assert_eq!(items[1].integer().unwrap_err().path(), Some("a.b[1]"));
        assert_eq!(items[2].req("c").unwrap().bool(), Ok(true));
        assert_eq!(items[0].get("c").unwrap_err().path(), Some("a.b[0]"));
        let not_object = json!([1]);
        assert_eq!(At::root(&not_object).unwrap_err().path(), Some("$"));
    }

    #[test]
    fn ids_are_bounded_not_truncated() {
        let ok = json!({
            "s": " 123 ", "n": 8447388090494_u64, "neg": -1, "f": 1.5, "e": "",
            "l": "x".repeat(257), "z": "a\u{0}b",
        });
        let root = At::root(&ok).unwrap();
        assert_eq!(root.req("s").unwrap().id().unwrap(), "123");
        assert_eq!(root.req("n").unwrap().id().unwrap(), "8447388090494");
        for bad in ["neg", "f", "e", "l", "z"] {
            assert_eq!(
                root.req(bad).unwrap().id().unwrap_err().code(),
                "invalid_field",
                "{bad}"
            );
        }
    }

    #[test]
    fn text_is_truncated_at_a_char_boundary_and_loses_nuls() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(clean("a\u{0}b", 10), "ab");
        let long = json!({"t": "é".repeat(MAX_TEXT_BYTES)});
        let text = At::root(&long).unwrap().req("t").unwrap().text().unwrap();
        assert_eq!(text.len(), MAX_TEXT_BYTES);
        let blank = json!({"t": "   "});
        assert_eq!(At::root(&blank).unwrap().req("t").unwrap().short().unwrap(), None);
    }

    #[test]
    fn timestamps_in_either_form() {
        let value = json!({
            "i": 1_796_162_400, "f": 1_796_162_400.75, "s": "2026-12-01T22:00:00Z", "huge": 1e300, "b": true,
        });
        let root = At::root(&value).unwrap();
        let expected = DateTime::from_timestamp(1_796_162_400, 0).unwrap();
        for key in ["i", "f", "s"] {
            assert_eq!(root.req(key).unwrap().timestamp().unwrap(), expected, "{key}");
        }
        assert!(root.req("huge").unwrap().timestamp().is_err());
        assert!(root.req("b").unwrap().timestamp().is_err());
        assert!(root.req("f").unwrap().unix_seconds().is_err());
    }

    #[test]
    fn urls_must_be_http() {
        let value = json!({
            "ok": "https://acme.zendesk.com/agent/tickets/1",
            "js": "javascript:alert(1)",
            "sp": "https://a b",
        });
        let root = At::root(&value).unwrap();
        assert!(root.req("ok").unwrap().url().is_ok());
        assert!(root.req("js").unwrap().url().is_err());
        assert!(root.req("sp").unwrap().url().is_err());
    }
}
