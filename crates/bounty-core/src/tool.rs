//! An agent's HTTP tools: what a tool is, how its URL template reads, and
//! what its secret header values are bound to when sealed.
//!
//! A tool is an HTTP call an agent may make while it works a task (look up
//! an order, issue a refund). The model sees its `name`, `description` and
//! `parameters` (a JSON Schema of the arguments); Bounty makes the call:
//! the arguments fill the URL template's `{placeholders}`, and the rest go
//! in the query string (`GET`, `DELETE`) or a JSON body.
//!
//! Header values are secrets (an API token, most often). They reach the
//! store only sealed ([`ToolHeader::Sealed`], bound to [`tool_header_aad`]),
//! are opened only to make a call, and never appear in `Debug` output.
//! The checks of a definition live in `bounty_agents::spec`, beside the
//! other checks of an agent; this module holds the types and the parts of
//! those rules that need no I/O and no schema compiler.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{AccountId, AgentId};

/// Most tools one agent has.
pub const MAX_TOOLS: usize = 16;
/// The name of the built-in hand-off tool, which no tool may take.
pub const HANDOFF_TOOL: &str = "handoff";
/// A tool's timeout when its definition names none, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;
/// The shortest timeout a tool may have, in milliseconds.
pub const MIN_TIMEOUT_MS: u32 = 100;
/// The longest timeout a tool may have, in milliseconds.
pub const MAX_TIMEOUT_MS: u32 = 30_000;
/// What a header value shows as in every response, and what a client
/// sends back in an update to keep the stored value.
pub const SEALED_MARKER: &str = "[sealed]";

/// A tool's HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ToolMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl ToolMethod {
    /// Every method, in the order the API documents them.
    pub const ALL: [ToolMethod; 5] = [
        ToolMethod::Get,
        ToolMethod::Post,
        ToolMethod::Put,
        ToolMethod::Patch,
        ToolMethod::Delete,
    ];

    /// The method as HTTP spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolMethod::Get => "GET",
            ToolMethod::Post => "POST",
            ToolMethod::Put => "PUT",
            ToolMethod::Patch => "PATCH",
            ToolMethod::Delete => "DELETE",
        }
    }

    /// Whether arguments left after the URL template go in a JSON body
    /// (`POST`, `PUT`, `PATCH`) rather than the query string.
    pub fn sends_body(self) -> bool {
        matches!(self, ToolMethod::Post | ToolMethod::Put | ToolMethod::Patch)
    }

    /// The method named `raw`, in upper case (`GET`).
    pub fn parse(raw: &str) -> Option<ToolMethod> {
        ToolMethod::ALL.into_iter().find(|m| m.as_str() == raw)
    }
}

impl fmt::Display for ToolMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header value of a tool. The store holds only [`ToolHeader::Sealed`];
/// the other forms live between the API edge and the store, or inside one
/// call.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolHeader {
    /// Sealed with the master keys (`v1.<key id>.<…>`), bound to
    /// [`tool_header_aad`].
    Sealed(String),
    /// The value itself: as a client wrote it, before sealing, or opened
    /// for a call.
    Plain(String),
    /// [`SEALED_MARKER`] in an update: keep the stored value of this
    /// tool's header.
    Keep,
}

impl fmt::Debug for ToolHeader {
    /// Never shows a value, sealed or not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ToolHeader::Sealed(_) => "Sealed(<redacted>)",
            ToolHeader::Plain(_) => "Plain(<redacted>)",
            ToolHeader::Keep => "Keep",
        })
    }
}

fn default_timeout_ms() -> u32 {
    DEFAULT_TIMEOUT_MS
}

/// One HTTP tool of an agent, as stored in its version (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// What the model calls it: `^[a-zA-Z0-9_-]{1,64}$`, unique in the
    /// agent, never [`HANDOFF_TOOL`].
    pub name: String,
    /// What it does and when to use it, for the model: 1 to 1024
    /// characters.
    pub description: String,
    /// A JSON Schema (`"type": "object"`) of the arguments.
    pub parameters: serde_json::Value,
    pub method: ToolMethod,
    /// An absolute http(s) URL whose path and query may hold
    /// `{placeholders}`, each a required property of `parameters`:
    /// `https://shop.example/orders/{order_id}`.
    pub url: String,
    /// Headers sent with every call, by name.
    #[serde(default)]
    pub headers: BTreeMap<String, ToolHeader>,
    /// The call's own time limit, within the outbound policy's.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u32,
    /// Whether a call changes something (a refund): such calls carry an
    /// `Idempotency-Key` that is the same when a step is retried.
    #[serde(default)]
    pub side_effects: bool,
}

impl ToolSpec {
    /// The URL template's origin as written: the scheme and the authority
    /// (`https://shop.example:8443`), where its header values are sent.
    pub fn origin(&self) -> &str {
        let Some((scheme, rest)) = self.url.split_once("://") else {
            return "";
        };
        let authority = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        &self.url[..scheme.len() + 3 + authority]
    }

    /// The host of the URL template (its authority without credentials or
    /// port), for display; empty when the template has none.
    pub fn host(&self) -> &str {
        let rest = self.url.split_once("://").map_or("", |(_, rest)| rest);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority.rsplit('@').next().unwrap_or_default();
        if let Some(v6) = host_port.strip_prefix('[') {
            return v6.split(']').next().unwrap_or_default();
        }
        host_port.split(':').next().unwrap_or_default()
    }
}

/// The associated data a tool's header value is sealed with: the account,
/// the agent, the tool and the header. A sealed value copied into another
/// account, agent, tool or header does not open. Versions of one agent
/// share it, so a new version carries the sealed value over as it is.
pub fn tool_header_aad(account: AccountId, agent: AgentId, tool: &str, header: &str) -> String {
    format!("{account}/{agent}/tools/{tool}/headers/{header}")
}

/// One part of a URL template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplatePart<'a> {
    /// Text copied as it is.
    Literal(&'a str),
    /// `{name}`: an argument, percent-encoded.
    Placeholder(&'a str),
}

/// A URL template split into its parts. A placeholder is `{name}` with
/// `name` of `A-Z a-z 0-9 _ -`, 1 to 64 characters; a brace outside one is
/// refused (with the reason), so a template reads one way only.
pub fn template_parts(template: &str) -> Result<Vec<TemplatePart<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err("has a `}` without its `{`".to_owned());
        }
        if open > 0 {
            parts.push(TemplatePart::Literal(&rest[..open]));
        }
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or("has a `{` without its `}`")?;
        let name = &after[..close];
        let valid = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(format!(
                "has a placeholder `{{{}}}` that is not 1 to 64 characters of A-Z, a-z, 0-9, `_` or `-`",
                name.chars().take(64).collect::<String>()
            ));
        }
        parts.push(TemplatePart::Placeholder(name));
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Literal(rest));
    }
    Ok(parts)
}

/// Whether `b` may stand unencoded in a filled placeholder: RFC 3986's
/// unreserved characters. Everything else is percent-encoded, which is
/// safe in a path segment and in a query alike.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `value` percent-encoded for a URL template's placeholder: every byte
/// but the unreserved ones, so a value can never add a path segment
/// (`/`), a query (`?`) or a fragment (`#`). `None` for `.` and `..`:
/// as a whole segment the URL parser resolves them (encoded too, as
/// `%2E%2E`), which would let an argument climb the path.
pub fn encode_placeholder(value: &str) -> Option<String> {
    if value == "." || value == ".." {
        return None;
    }
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_into_literals_and_placeholders() {
        assert_eq!(
            template_parts("https://shop.example/orders/{order_id}/items?x={item-2}").unwrap(),
            vec![
                TemplatePart::Literal("https://shop.example/orders/"),
                TemplatePart::Placeholder("order_id"),
                TemplatePart::Literal("/items?x="),
                TemplatePart::Placeholder("item-2"),
            ]
        );
        assert_eq!(
            template_parts("https://a.example/").unwrap(),
            vec![TemplatePart::Literal("https://a.example/")]
        );
        for bad in [
            "https://a.example/{",
            "https://a.example/}",
            "https://a.example/{}",
            "https://a.example/{a b}",
            "https://a.example/{{a}}",
        ] {
            assert!(template_parts(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn placeholders_are_encoded_as_one_segment() {
        let enc = |v: &str| encode_placeholder(v).unwrap();
        assert_eq!(enc("A-1_b.c~"), "A-1_b.c~");
        assert_eq!(enc("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
        assert_eq!(enc("..."), "...");
        assert_eq!(enc("é"), "%C3%A9");
        assert_eq!(enc("%2F"), "%252F");
        assert_eq!(encode_placeholder(".."), None);
        assert_eq!(encode_placeholder("."), None);
    }

    #[test]
    fn the_host_is_read_from_the_template() {
        let tool = |url: &str| ToolSpec {
            name: "t".into(),
            description: "d".into(),
            parameters: serde_json::json!({"type": "object"}),
            method: ToolMethod::Get,
            url: url.into(),
            headers: BTreeMap::new(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            side_effects: false,
        };
        assert_eq!(tool("https://shop.example:8443/o/{id}").host(), "shop.example");
        assert_eq!(tool("http://[::1]:80/x").host(), "::1");
        assert_eq!(tool("https://u@h.example?q=1").host(), "h.example");
        assert_eq!(tool("nonsense").host(), "");
        assert_eq!(
            tool("https://shop.example:8443/o/{id}").origin(),
            "https://shop.example:8443"
        );
        assert_eq!(tool("http://h.example?q=1").origin(), "http://h.example");
        assert_eq!(tool("nonsense").origin(), "");
    }

    #[test]
    fn stored_form_and_defaults() {
        let spec: ToolSpec = serde_json::from_value(serde_json::json!({
            "name": "lookup", "description": "d", "parameters": {"type": "object"},
            "method": "GET", "url": "https://a.example/",
            "headers": {"Authorization": {"sealed": "v1.k1.xyz"}}
        }))
        .unwrap();
        assert_eq!(spec.timeout_ms, DEFAULT_TIMEOUT_MS);
        assert!(!spec.side_effects);
        assert_eq!(
            spec.headers["Authorization"],
            ToolHeader::Sealed("v1.k1.xyz".into())
        );
        assert!(!format!("{spec:?}").contains("v1.k1.xyz"));
        assert!(!format!("{:?}", ToolHeader::Plain("tok".into())).contains("tok"));
        assert_eq!(ToolMethod::parse("PATCH"), Some(ToolMethod::Patch));
        assert_eq!(ToolMethod::parse("get"), None);
        let a = AccountId::new();
        let g = AgentId::new();
        assert_ne!(tool_header_aad(a, g, "t", "A"), tool_header_aad(a, g, "t", "B"));
        assert_ne!(tool_header_aad(a, g, "t", "A"), tool_header_aad(a, g, "u", "A"));
    }
}
