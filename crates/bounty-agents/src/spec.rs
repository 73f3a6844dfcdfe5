//! An agent's definition, checked: the one set of checks behind the API's
//! `POST`/`PATCH /v1/agents` and the dashboard's agent form.
//!
//! Each part of an [`bounty_store::AgentSpec`] has its check here, which
//! turns what a client or a person wrote into the typed part or an
//! [`AgentSpecError`] naming the field. The API stops at the first error
//! and maps it to its codes (`unknown_model`, `validation_failed`); the
//! form runs them all and shows every error at once. Where model names
//! come from is the caller's ([`KnownModels`]): the server's model
//! registry, or the dashboard's configured list.

use std::collections::BTreeMap;

use bounty_core::tool::{
    HANDOFF_TOOL, MAX_TIMEOUT_MS, MAX_TOOLS, MIN_TIMEOUT_MS, TemplatePart, template_parts,
};
use bounty_core::{
    AccountId, AgentName, GenerationParams, KnowledgeSourceId, ModelRoute, OutcomeType, RoutingPolicy,
    ToolHeader, ToolSpec, VerificationPolicy,
};
use bounty_models::ModelRegistry;
use bounty_store::{Store, StoreError};

use crate::OutputSchema;

/// Most characters of an agent's `instructions`.
pub const MAX_INSTRUCTIONS_CHARS: usize = 32_000;
/// The outcome type of an agent that names none.
pub const DEFAULT_OUTCOME_TYPE: &str = "ticket.resolved";
/// Tool calls per turn: at most this many.
pub const MAX_STEPS: u32 = 16;
/// Most knowledge sources one agent searches.
pub const MAX_KNOWLEDGE_SOURCES: usize = 16;
/// Most characters of a tool's description.
pub const MAX_TOOL_DESCRIPTION_CHARS: usize = 1024;
/// Most bytes of a tool's parameters schema, as compact JSON.
pub const MAX_TOOL_PARAMETERS_BYTES: usize = 16 * 1024;
/// Most bytes of a tool's URL template.
pub const MAX_TOOL_URL_BYTES: usize = 2048;
/// Most headers of one tool.
pub const MAX_TOOL_HEADERS: usize = 16;
/// Most bytes of one header value.
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;
/// Headers a tool may not set: the client sets them (`Host`,
/// `Content-Length`), or Bounty does (`Idempotency-Key`, from the task and
/// step).
pub const RESERVED_HEADERS: [&str; 3] = ["host", "content-length", "idempotency-key"];

/// The model names an agent may use.
pub trait KnownModels {
    /// Whether `name` is a configured model.
    fn knows(&self, name: &str) -> bool;
}

impl KnownModels for ModelRegistry {
    fn knows(&self, name: &str) -> bool {
        self.contains(name)
    }
}

/// A refused part of an agent's definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentSpecError {
    /// `field` names a model that is not configured (`model_route[1]`,
    /// `routing.shadow.model`).
    #[error("`{field}` names no configured model ({model:?})")]
    UnknownModel { field: String, model: String },
    /// Any other refused value.
    #[error("`{field}` {message}")]
    Invalid { field: String, message: String },
}

impl AgentSpecError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AgentSpecError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The field at fault, as the API names it (`verifier_policy.verifiers[0].model`).
    pub fn field(&self) -> &str {
        match self {
            AgentSpecError::UnknownModel { field, .. } | AgentSpecError::Invalid { field, .. } => field,
        }
    }
}

/// The agent's name: a slug that cannot look like an id.
pub fn name(raw: &str) -> Result<AgentName, AgentSpecError> {
    AgentName::parse(raw).map_err(|e| AgentSpecError::invalid("name", e.to_string()))
}

/// The system prompt, at most [`MAX_INSTRUCTIONS_CHARS`].
pub fn instructions(raw: &str) -> Result<String, AgentSpecError> {
    if raw.chars().count() > MAX_INSTRUCTIONS_CHARS {
        return Err(AgentSpecError::invalid(
            "instructions",
            format!("must be at most {MAX_INSTRUCTIONS_CHARS} characters"),
        ));
    }
    Ok(raw.to_owned())
}

/// The model route: configured models, tried in order.
pub fn model_route(names: Vec<String>, models: &dyn KnownModels) -> Result<ModelRoute, AgentSpecError> {
    if let Some((i, model)) = names.iter().enumerate().find(|(_, n)| !models.knows(n)) {
        return Err(AgentSpecError::UnknownModel {
            field: format!("model_route[{i}]"),
            model: model.clone(),
        });
    }
    ModelRoute::parse(names).map_err(|e| AgentSpecError::invalid("model_route", e.to_string()))
}

/// An output JSON Schema: no NUL character (Postgres cannot store one),
/// and it compiles.
pub fn output_schema(value: serde_json::Value) -> Result<serde_json::Value, AgentSpecError> {
    if let Some(path) = bounty_core::text::nul_path(&value) {
        return Err(AgentSpecError::invalid(
            "output_schema",
            format!("must not contain a NUL character (at `{path}`)"),
        ));
    }
    OutputSchema::compile(&value).map_err(|e| AgentSpecError::invalid("output_schema", e))?;
    Ok(value)
}

/// What a resolved task counts as.
pub fn outcome_type(raw: &str) -> Result<OutcomeType, AgentSpecError> {
    OutcomeType::parse(raw).map_err(|e| AgentSpecError::invalid("outcome_type", e.to_string()))
}

/// The verification policy ([`crate::verify::validate_policy`]): a judge
/// naming an unconfigured model is `Invalid` at
/// `verifier_policy.verifiers[i].model`, as the API has always answered.
/// The first of [`verifier_policy_errors`].
pub fn verifier_policy(
    policy: VerificationPolicy,
    models: &dyn KnownModels,
) -> Result<VerificationPolicy, AgentSpecError> {
    match verifier_policy_errors(&policy, models).into_iter().next() {
        Some(e) => Err(e),
        None => Ok(policy),
    }
}

/// Every refused part of the verification policy, in the order
/// [`verifier_policy`] checks them (it answers the first): how the
/// dashboard's policy form shows them all at once. Empty: accepted.
pub fn verifier_policy_errors(policy: &VerificationPolicy, models: &dyn KnownModels) -> Vec<AgentSpecError> {
    crate::verify::policy_problems(policy, models)
        .into_iter()
        .map(|(field, message)| AgentSpecError::Invalid { field, message })
        .collect()
}

/// Generation parameters within their bounds.
pub fn params(p: GenerationParams) -> Result<GenerationParams, AgentSpecError> {
    p.validate()
        .map_err(|(field, e)| AgentSpecError::invalid(format!("params.{field}"), e.to_string()))?;
    Ok(p)
}

/// The routing policy; its shadow model must be configured.
pub fn routing(r: RoutingPolicy, models: &dyn KnownModels) -> Result<RoutingPolicy, AgentSpecError> {
    r.validate()
        .map_err(|e| AgentSpecError::invalid(e.field, e.message))?;
    if let Some(shadow) = &r.shadow
        && !models.knows(&shadow.model)
    {
        return Err(AgentSpecError::UnknownModel {
            field: "routing.shadow.model".to_owned(),
            model: shadow.model.clone(),
        });
    }
    Ok(r)
}

/// Tool calls per turn before the agent must answer: 1 to [`MAX_STEPS`].
pub fn max_steps(n: u32) -> Result<u32, AgentSpecError> {
    if !(1..=MAX_STEPS).contains(&n) {
        return Err(AgentSpecError::invalid(
            "max_steps",
            format!("must be 1 to {MAX_STEPS}"),
        ));
    }
    Ok(n)
}

/// Why [`knowledge`] refused a list: a field, or the store.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeListError {
    #[error(transparent)]
    Field(#[from] AgentSpecError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The knowledge sources an agent may search: ids (`ks_…`) of sources of
/// `account`, each once, at most [`MAX_KNOWLEDGE_SOURCES`]. Another
/// account's source reads as no source (`knowledge[i]`), never as
/// someone else's.
pub async fn knowledge(
    store: &Store,
    account: AccountId,
    raw: &[String],
) -> Result<Vec<KnowledgeSourceId>, KnowledgeListError> {
    if raw.len() > MAX_KNOWLEDGE_SOURCES {
        return Err(AgentSpecError::invalid(
            "knowledge",
            format!("must name at most {MAX_KNOWLEDGE_SOURCES} sources"),
        )
        .into());
    }
    let mut ids: Vec<KnowledgeSourceId> = Vec::with_capacity(raw.len());
    for (i, text) in raw.iter().enumerate() {
        let field = format!("knowledge[{i}]");
        let id: KnowledgeSourceId = text
            .parse()
            .map_err(|e| AgentSpecError::invalid(&field, format!("is not a knowledge source id: {e}")))?;
        if let Some(j) = ids.iter().position(|seen| *seen == id) {
            return Err(AgentSpecError::invalid(field, format!("repeats knowledge[{j}]")).into());
        }
        if store.get_knowledge_source(account, id).await?.is_none() {
            return Err(AgentSpecError::invalid(field, "names no knowledge source of this account").into());
        }
        ids.push(id);
    }
    Ok(ids)
}

/// An agent's HTTP tools, each checked ([`tool`]), their names unique and
/// at most [`MAX_TOOLS`]. Header values may be plain (about to be
/// sealed), sealed (carried over) or `Keep` (see [`keep_sealed`]).
pub fn tools(tools: Vec<ToolSpec>) -> Result<Vec<ToolSpec>, AgentSpecError> {
    if tools.len() > MAX_TOOLS {
        return Err(AgentSpecError::invalid(
            "tools",
            format!("must hold at most {MAX_TOOLS} tools"),
        ));
    }
    let mut checked: Vec<ToolSpec> = Vec::with_capacity(tools.len());
    for (i, t) in tools.into_iter().enumerate() {
        let t = tool(i, t)?;
        if let Some(j) = checked.iter().position(|c| c.name == t.name) {
            return Err(AgentSpecError::invalid(
                format!("tools[{i}].name"),
                format!("repeats tools[{j}].name ({:?})", t.name),
            ));
        }
        checked.push(t);
    }
    Ok(checked)
}

/// One tool, the `i`th of the agent. Every error names its field:
/// `tools[1].url`, `tools[0].headers.Authorization`.
pub fn tool(i: usize, t: ToolSpec) -> Result<ToolSpec, AgentSpecError> {
    let at = |f: &str| format!("tools[{i}].{f}");
    tool_name(&t.name).map_err(|m| AgentSpecError::invalid(at("name"), m))?;
    let chars = t.description.chars().count();
    if chars == 0 || chars > MAX_TOOL_DESCRIPTION_CHARS || t.description.trim().is_empty() {
        return Err(AgentSpecError::invalid(
            at("description"),
            format!("must be 1 to {MAX_TOOL_DESCRIPTION_CHARS} characters, not all blank"),
        ));
    }
    if bounty_core::text::has_nul(&t.description) {
        return Err(AgentSpecError::invalid(at("description"), NUL));
    }
    let properties =
        tool_parameters(&t.parameters).map_err(|m| AgentSpecError::invalid(at("parameters"), m))?;
    tool_url(&t.url, &properties).map_err(|m| AgentSpecError::invalid(at("url"), m))?;
    tool_headers(&t.headers, &at("headers"))?;
    if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&t.timeout_ms) {
        return Err(AgentSpecError::invalid(
            at("timeout_ms"),
            format!("must be {MIN_TIMEOUT_MS} to {MAX_TIMEOUT_MS}"),
        ));
    }
    Ok(t)
}

const NUL: &str = "must not contain a NUL character";

fn tool_name(name: &str) -> Result<(), String> {
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err("must be 1 to 64 characters of A-Z, a-z, 0-9, `_` or `-`".to_owned());
    }
    if name.eq_ignore_ascii_case(HANDOFF_TOOL) {
        return Err(format!("`{HANDOFF_TOOL}` is the built-in hand-off tool's name"));
    }
    Ok(())
}

/// What a tool's schema says of its arguments: each property, and
/// whether it is required.
type Properties = BTreeMap<String, bool>;

fn tool_parameters(schema: &serde_json::Value) -> Result<Properties, String> {
    if let Some(path) = bounty_core::text::nul_path(schema) {
        return Err(format!("{NUL} (at `{path}`)"));
    }
    let bytes = serde_json::to_vec(schema).map_or(usize::MAX, |v| v.len());
    if bytes > MAX_TOOL_PARAMETERS_BYTES {
        return Err(format!(
            "must be at most {MAX_TOOL_PARAMETERS_BYTES} bytes of JSON"
        ));
    }
    if schema.get("type").and_then(|t| t.as_str()) != Some("object") {
        return Err(r#"must be a JSON Schema with "type": "object""#.to_owned());
    }
    crate::OutputSchema::compile(schema)?;
    let required: Vec<&str> = schema
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    Ok(schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| {
            p.keys()
                .map(|k| (k.clone(), required.contains(&k.as_str())))
                .collect()
        })
        .unwrap_or_default())
}

fn tool_url(url: &str, properties: &Properties) -> Result<(), String> {
    if bounty_core::text::has_nul(url) {
        return Err(NUL.to_owned());
    }
    if url.len() > MAX_TOOL_URL_BYTES {
        return Err(format!("must be at most {MAX_TOOL_URL_BYTES} bytes"));
    }
    let parts = template_parts(url)?;
    // Placeholders fill the path and the query only: the host is fixed
    // when the tool is saved, and checked against the outbound policy.
    let authority_end = url
        .split_once("://")
        .map(|(scheme, rest)| scheme.len() + 3 + rest.find(['/', '?', '#']).unwrap_or(rest.len()))
        .unwrap_or(0);
    if url[..authority_end].contains('{') {
        return Err("may hold placeholders in its path and query only, not in its scheme or host".to_owned());
    }
    let mut sample = String::with_capacity(url.len());
    for part in &parts {
        match part {
            TemplatePart::Literal(text) => sample.push_str(text),
            TemplatePart::Placeholder(name) => match properties.get(*name) {
                None => {
                    return Err(format!(
                        "has the placeholder `{{{name}}}`, which is not a property of `parameters`"
                    ));
                }
                Some(false) => {
                    return Err(format!(
                        "has the placeholder `{{{name}}}`, which `parameters` does not list in `required`"
                    ));
                }
                Some(true) => sample.push('x'),
            },
        }
    }
    let parsed = bounty_outbound::Url::parse(&sample).map_err(|e| format!("is not an absolute URL: {e}"))?;
    if parsed.fragment().is_some() {
        return Err("must not have a fragment (`#…`)".to_owned());
    }
    // Its form only (http or https, no credentials, a host): whether the
    // host may be reached is the outbound policy's, at save and at call.
    bounty_outbound::check_literal(&parsed, true).map_err(|e| e.to_string())
}

/// Whether `name` is an HTTP token (RFC 9110's `tchar`s).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn tool_headers(headers: &BTreeMap<String, ToolHeader>, at: &str) -> Result<(), AgentSpecError> {
    if headers.len() > MAX_TOOL_HEADERS {
        return Err(AgentSpecError::invalid(
            at,
            format!("must hold at most {MAX_TOOL_HEADERS} headers"),
        ));
    }
    let mut seen: Vec<String> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let field = format!("{at}.{}", name.replace('\0', "\\u0000"));
        if !is_token(name) || name.len() > 256 {
            return Err(AgentSpecError::invalid(
                field,
                "is not a valid HTTP header name (1 to 256 token characters)",
            ));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(AgentSpecError::invalid(field, "is set by Bounty, not by a tool"));
        }
        if seen.contains(&lower) {
            return Err(AgentSpecError::invalid(
                field,
                "repeats another header's name (names are case-insensitive)",
            ));
        }
        seen.push(lower);
        match value {
            ToolHeader::Plain(v) => {
                let visible = v.bytes().all(|b| (0x20..=0x7e).contains(&b));
                if v.is_empty() || v.len() > MAX_HEADER_VALUE_BYTES || !visible {
                    // The message never repeats the value: it is a secret.
                    return Err(AgentSpecError::invalid(
                        field,
                        format!("must be 1 to {MAX_HEADER_VALUE_BYTES} bytes of visible ASCII or spaces"),
                    ));
                }
            }
            ToolHeader::Sealed(_) | ToolHeader::Keep => {}
        }
    }
    Ok(())
}

/// Resolves every [`ToolHeader::Keep`] of `tools` to the sealed value the
/// same tool's same header has in `current` (the agent's current
/// version): how a client that read `"[sealed]"` sends it back unchanged.
/// A `Keep` with nothing to keep (a new agent, a new tool or header, a
/// renamed tool) is refused, naming the header; so is one whose tool now
/// calls another origin (scheme, host or port), so that a stored secret
/// can only be sent where it was sent before.
pub fn keep_sealed(mut tools: Vec<ToolSpec>, current: &[ToolSpec]) -> Result<Vec<ToolSpec>, AgentSpecError> {
    for (i, t) in tools.iter_mut().enumerate() {
        let before = current.iter().find(|c| c.name == t.name);
        let origin = t.origin().to_owned();
        let tool_name = t.name.clone();
        for (name, value) in t.headers.iter_mut() {
            if *value != ToolHeader::Keep {
                continue;
            }
            match before.and_then(|c| c.headers.get(name).map(|h| (c, h))) {
                Some((c, _)) if !c.origin().eq_ignore_ascii_case(&origin) => {
                    // A stored secret is never sent somewhere new on the
                    // strength of "[sealed]" alone: whoever moves the tool
                    // sends the value again.
                    return Err(AgentSpecError::invalid(
                        format!("tools[{i}].headers.{name}"),
                        format!(
                            "is {:?}, but tool {:?} now calls {} instead of {}: send the value again",
                            bounty_core::tool::SEALED_MARKER,
                            tool_name,
                            origin,
                            c.origin()
                        ),
                    ));
                }
                Some((_, sealed @ ToolHeader::Sealed(_))) => *value = sealed.clone(),
                _ => {
                    return Err(AgentSpecError::invalid(
                        format!("tools[{i}].headers.{name}"),
                        format!(
                            "is {:?}, which keeps a stored value, but tool {:?} has no such header stored",
                            bounty_core::tool::SEALED_MARKER,
                            tool_name
                        ),
                    ));
                }
            }
        }
    }
    Ok(tools)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Only(&'static [&'static str]);

    impl KnownModels for Only {
        fn knows(&self, name: &str) -> bool {
            self.0.contains(&name)
        }
    }

    #[test]
    fn an_unknown_model_names_its_place_in_the_route() {
        let models = Only(&["small", "large"]);
        let route = model_route(vec!["small".into(), "large".into()], &models).unwrap();
        assert_eq!(route.names(), ["small", "large"]);
        assert_eq!(
            model_route(vec!["small".into(), "huge".into()], &models),
            Err(AgentSpecError::UnknownModel {
                field: "model_route[1]".into(),
                model: "huge".into()
            })
        );
        assert_eq!(model_route(vec![], &models).unwrap_err().field(), "model_route");
    }

    #[test]
    fn each_check_names_its_field() {
        let models = Only(&["small"]);
        assert_eq!(name("Not A Name").unwrap_err().field(), "name");
        assert!(instructions(&"x".repeat(MAX_INSTRUCTIONS_CHARS)).is_ok());
        assert_eq!(
            instructions(&"x".repeat(MAX_INSTRUCTIONS_CHARS + 1))
                .unwrap_err()
                .field(),
            "instructions"
        );
        assert_eq!(
            outcome_type(DEFAULT_OUTCOME_TYPE).unwrap().as_str(),
            "ticket.resolved"
        );
        let nul = serde_json::json!({"type": "object", "title": "\u{0}"});
        let e = output_schema(nul).unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
        assert_eq!(
            output_schema(serde_json::json!([1])).unwrap_err().field(),
            "output_schema"
        );
        let judge: VerificationPolicy = serde_json::from_value(serde_json::json!({
            "verifiers": [{"kind": "judge", "model": "huge", "rubric": "ok?"}]
        }))
        .unwrap();
        assert_eq!(
            verifier_policy(judge, &models),
            Err(AgentSpecError::Invalid {
                field: "verifier_policy.verifiers[0].model".into(),
                message: "names no configured model (\"huge\")".into()
            })
        );
        assert!(verifier_policy(VerificationPolicy::default(), &models).is_ok());
    }

    fn a_tool() -> ToolSpec {
        ToolSpec {
            name: "lookup_order".into(),
            description: "Looks an order up.".into(),
            parameters: serde_json::json!({
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"]
            }),
            method: bounty_core::ToolMethod::Get,
            url: "https://shop.example/orders/{order_id}?expand=items".into(),
            headers: BTreeMap::from([("Authorization".to_owned(), ToolHeader::Plain("Bearer t0k".into()))]),
            timeout_ms: bounty_core::tool::DEFAULT_TIMEOUT_MS,
            side_effects: false,
        }
    }

    #[test]
    fn tool_checks_name_their_field_and_never_echo_a_header_value() {
        assert!(tools(vec![a_tool()]).is_ok());
        let field = |t: ToolSpec| tools(vec![a_tool(), t]).unwrap_err().field().to_owned();
        let mut t = a_tool();
        assert_eq!(field(t.clone()), "tools[1].name", "a repeated name");
        t.name = "HandOff".into();
        assert_eq!(
            field(t.clone()),
            "tools[1].name",
            "the reserved name, in any case"
        );
        t.name = "other".into();
        t.url = "https://shop.example/{order_id}#frag".into();
        assert_eq!(field(t.clone()), "tools[1].url");
        t.url = "https://shop.example/orders/{order_id}".into();
        t.headers = BTreeMap::from([
            ("X-Key".to_owned(), ToolHeader::Plain("a".into())),
            ("x-key".to_owned(), ToolHeader::Plain("b".into())),
        ]);
        assert_eq!(
            field(t.clone()),
            "tools[1].headers.x-key",
            "names are case-insensitive"
        );
        t.headers = BTreeMap::from([("X-Key".to_owned(), ToolHeader::Plain("t0k\u{1}".into()))]);
        let e = tools(vec![t.clone()]).unwrap_err();
        assert_eq!(e.field(), "tools[0].headers.X-Key");
        assert!(!e.to_string().contains("t0k"), "{e}");
        t.headers = BTreeMap::new();
        t.description = "\u{0}".into();
        assert_eq!(field(t.clone()), "tools[1].description");
        assert_eq!(max_steps(0).unwrap_err().field(), "max_steps");
        assert_eq!(max_steps(MAX_STEPS), Ok(MAX_STEPS));
    }

    #[test]
    fn keep_takes_the_same_tools_same_header_or_is_refused() {
        let mut stored = a_tool();
        stored.headers =
            BTreeMap::from([("Authorization".to_owned(), ToolHeader::Sealed("v1.k1.abc".into()))]);
        let mut sent = a_tool();
        sent.headers = BTreeMap::from([("Authorization".to_owned(), ToolHeader::Keep)]);
        let kept = keep_sealed(vec![sent.clone()], std::slice::from_ref(&stored)).unwrap();
        assert_eq!(
            kept[0].headers["Authorization"],
            ToolHeader::Sealed("v1.k1.abc".into())
        );
        // Nothing stored, another header, or a renamed tool: refused.
        assert_eq!(
            keep_sealed(vec![sent.clone()], &[]).unwrap_err().field(),
            "tools[0].headers.Authorization"
        );
        let mut renamed = sent.clone();
        renamed.name = "find_order".into();
        assert!(keep_sealed(vec![renamed], std::slice::from_ref(&stored)).is_err());
        let mut other = sent.clone();
        other.headers = BTreeMap::from([("X-Other".to_owned(), ToolHeader::Keep)]);
        assert!(keep_sealed(vec![other], std::slice::from_ref(&stored)).is_err());
        // A new path keeps it; a new host or port does not.
        let mut moved = sent.clone();
        moved.url = "https://SHOP.example/v2/orders/{order_id}".into();
        assert!(keep_sealed(vec![moved.clone()], std::slice::from_ref(&stored)).is_ok());
        moved.url = "https://attacker.example/orders/{order_id}".into();
        let e = keep_sealed(vec![moved.clone()], std::slice::from_ref(&stored)).unwrap_err();
        assert_eq!(e.field(), "tools[0].headers.Authorization");
        assert!(e.to_string().contains("send the value again"), "{e}");
        moved.url = "https://shop.example:8443/orders/{order_id}".into();
        assert!(keep_sealed(vec![moved], &[stored]).is_err());
    }
}
