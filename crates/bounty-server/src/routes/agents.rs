//! `/v1/agents`: create, list, show and update the account's agents.
//!
//! Every field is checked by [`bounty_agents::spec`], the checks the
//! dashboard's agent form runs too; the first refused field answers
//! (`unknown_model` or `validation_failed`, naming it). An update never
//! edits a version: it adds one and makes it current.
//! Tasks record the version they ran, and `GET /v1/agents/{id}?version=N`
//! shows any past version.
//!
//! # Tools and their secrets
//!
//! An agent's `tools` are HTTP calls it may make. Their header values are
//! secrets: sealed with the master keys before they reach the store (bound
//! to account, agent, tool and header, [`tool_header_aad`]), and shown in
//! every response as `"[sealed]"`. An update that sends `"[sealed]"` back
//! for a header keeps the stored value of that tool's header, so a client
//! can round-trip `GET` → `PATCH`. A tool's host is checked against the
//! outbound policy when it is saved (`outbound_address_refused`), and again
//! at every call.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bounty_agents::spec;
use bounty_core::tool::{DEFAULT_TIMEOUT_MS, SEALED_MARKER, TemplatePart, template_parts, tool_header_aad};
use bounty_core::{
    AccountId, AgentId, GenerationParams, KnowledgeSourceId, RoutingPolicy, ToolHeader, ToolMethod, ToolSpec,
    VerificationPolicy,
};
use bounty_models::ModelRegistry;
use bounty_store::{Agent, AgentPatch, AgentSpec, DEFAULT_MAX_STEPS, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::pagination::ListParams;
use crate::state::AppState;

/// A new agent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentIn {
    /// Unique in the account: 1-64 of `a-z 0-9 - _`. Tasks may name the
    /// agent by it.
    pub name: String,
    /// The system prompt.
    pub instructions: String,
    /// Model names from `GET /v1/models`, tried in order: a model that
    /// fails falls back to the next.
    pub model_route: Vec<String>,
    /// A JSON Schema the output must match. Local models are constrained
    /// to it while sampling; remote ones are asked for it.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<serde_json::Value>,
    /// What a resolved task counts as (default `ticket.resolved`).
    #[serde(default)]
    pub outcome_type: Option<String>,
    /// How the output is verified: `{"mode": "all_of" | "any_of" |
    /// "first_decisive", "verifiers": [{"kind": "rules" | "judge" |
    /// "external", …}], "window_hours": 72, "lapse_decision": "pass",
    /// "csat_threshold": 4, "goodwill_days": 0}`, with at least one
    /// verifier: an empty `verifiers` is refused (nothing is billed
    /// unverified). Default: the assumed resolution, `rules {non_empty}`
    /// then `external`, `window_hours` 24, `lapse_decision` `pass`: charged
    /// once the ticket is solved, or not reopened within the window.
    #[serde(default)]
    pub verifier_policy: Option<VerificationPolicy>,
    /// Overrides of the models' generation defaults.
    #[serde(default)]
    pub params: Option<GenerationParams>,
    /// How the route is spent: `{"cascade": {"max_steps", "min_confidence",
    /// "pass_rate_floor_bp", "min_samples"}, "cache": {"ttl_hours"},
    /// "shadow": {"model", "share_bp"}}`, each part optional. With a
    /// cascade, the route's models are tried cheapest first and a rejected
    /// output escalates to the next; with a cache, answers whose outcome
    /// was verified resolved are served again (and verified again) for the
    /// same request. Default: none.
    #[serde(default)]
    pub routing: Option<RoutingPolicy>,
    /// HTTP tools the agent may call (at most 16). Default: none.
    #[serde(default)]
    pub tools: Option<Vec<ToolIn>>,
    /// Knowledge sources (`ks_…`) of this account the agent may search
    /// (at most 16). Default: none.
    #[serde(default)]
    pub knowledge: Option<Vec<String>>,
    /// Tool calls per turn before the agent must answer: 1 to 16 (default
    /// 4).
    #[serde(default)]
    pub max_steps: Option<u32>,
    /// Offer the built-in `handoff` tool, and end as `escalated` (never
    /// charged) instead of failed when verification fails after the last
    /// cascade step. Default `false`.
    #[serde(default)]
    pub handoff: Option<bool>,
}

/// One HTTP tool, as a client writes it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolIn {
    /// What the model calls it: 1-64 of `A-Z a-z 0-9 _ -`, unique in the
    /// agent; `handoff` is reserved.
    pub name: String,
    /// What it does and when to use it, for the model (1-1024 characters).
    pub description: String,
    /// A JSON Schema of the arguments, `"type": "object"`, at most 16 KiB.
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`. Arguments not used by the
    /// URL go in the query string (`GET`, `DELETE`) or a JSON body.
    pub method: String,
    /// An absolute http(s) URL; its path and query may hold
    /// `{placeholders}`, each a required property of `parameters`, filled
    /// percent-encoded: `https://shop.example/orders/{order_id}`. Its host
    /// must be a public address.
    pub url: String,
    /// Headers sent with every call (`Authorization`, …). Values are
    /// secrets: sealed at rest and shown as `"[sealed]"`; in an update,
    /// `"[sealed]"` keeps the stored value. `Host`, `Content-Length` and
    /// `Idempotency-Key` are Bounty's.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// 100 to 30000 (default 10000).
    #[serde(default)]
    pub timeout_ms: Option<u32>,
    /// Whether a call changes something (a refund): it then carries an
    /// `Idempotency-Key` derived from the task and step, the same when the
    /// step is retried. Default `false`.
    #[serde(default)]
    pub side_effects: bool,
}

/// One HTTP tool, as shown: header values never are.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ToolOut {
    pub name: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
    pub method: String,
    pub url: String,
    /// Every header's name, its value always `"[sealed]"`.
    pub headers: BTreeMap<String, String>,
    pub timeout_ms: u32,
    pub side_effects: bool,
}

impl From<ToolSpec> for ToolOut {
    fn from(t: ToolSpec) -> Self {
        ToolOut {
            headers: t
                .headers
                .into_keys()
                .map(|name| (name, SEALED_MARKER.to_owned()))
                .collect(),
            name: t.name,
            description: t.description,
            parameters: t.parameters,
            method: t.method.as_str().to_owned(),
            url: t.url,
            timeout_ms: t.timeout_ms,
            side_effects: t.side_effects,
        }
    }
}

/// Changes to an agent; absent fields keep their value. `output_schema:
/// null` removes the schema.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPatchIn {
    pub name: Option<String>,
    pub instructions: Option<String>,
    pub model_route: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<Option<serde_json::Value>>,
    pub outcome_type: Option<String>,
    pub verifier_policy: Option<VerificationPolicy>,
    pub params: Option<GenerationParams>,
    pub routing: Option<RoutingPolicy>,
    /// Replaces the whole list; a header value of `"[sealed]"` keeps the
    /// stored value of that tool's header.
    pub tools: Option<Vec<ToolIn>>,
    pub knowledge: Option<Vec<String>>,
    pub max_steps: Option<u32>,
    pub handoff: Option<bool>,
}

/// A field that is present, even as `null`, is `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// One version of an agent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentOut {
    pub id: AgentId,
    pub name: String,
    /// The version shown.
    pub version: i32,
    /// The version new tasks run.
    pub current_version: i32,
    pub instructions: String,
    pub model_route: Vec<String>,
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<serde_json::Value>,
    pub outcome_type: String,
    pub verifier_policy: VerificationPolicy,
    pub params: GenerationParams,
    pub routing: RoutingPolicy,
    pub tools: Vec<ToolOut>,
    pub knowledge: Vec<KnowledgeSourceId>,
    pub max_steps: u32,
    pub handoff: bool,
    /// When the agent was created.
    pub created_at: DateTime<Utc>,
    /// When this version was created.
    pub version_created_at: DateTime<Utc>,
}

impl From<Agent> for AgentOut {
    fn from(a: Agent) -> Self {
        AgentOut {
            id: a.id,
            name: a.name,
            version: a.version,
            current_version: a.current_version,
            instructions: a.instructions,
            model_route: a.model_route,
            output_schema: a.output_schema,
            outcome_type: a.outcome_type.to_string(),
            verifier_policy: a.verifier_policy,
            params: a.params,
            routing: a.routing,
            tools: a.tools.into_iter().map(Into::into).collect(),
            knowledge: a.knowledge,
            max_steps: a.max_steps,
            handoff: a.handoff,
            created_at: a.created_at,
            version_created_at: a.version_created_at,
        }
    }
}

/// One page of agents, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentList {
    pub data: Vec<AgentOut>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `?version=` of `GET /v1/agents/{id}`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AgentVersionParams {
    /// A past version to show; default the current one.
    pub version: Option<i32>,
}

fn name_taken(e: StoreError, name: &str) -> ApiError {
    match e {
        StoreError::Constraint { constraint, .. } if constraint == "agents_account_id_name_key" => {
            ApiError::AgentNameTaken {
                name: name.to_owned(),
            }
        }
        other => other.into(),
    }
}

/// Creates an agent at version 1.
#[utoipa::path(
    post,
    path = "/v1/agents",
    tag = "agents",
    security(("api_key" = [])),
    request_body = AgentIn,
    responses(
        (status = 201, body = AgentOut),
        (status = 400, description = "Malformed JSON, or an unknown or missing field", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 409, description = "`agent_name_taken`", body = ErrorBody),
        (status = 422, description = "`unknown_model`, or `validation_failed` naming the field", body = ErrorBody),
    )
)]
pub async fn create_agent(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<AgentIn>,
) -> ApiResult<(StatusCode, Json<AgentOut>)> {
    let models: &ModelRegistry = &state.models;
    let id = AgentId::new();
    let tools = match body.tools {
        Some(raw) => tools_in(&state, auth.account_id, id, raw, &[]).await?,
        None => Vec::new(),
    };
    let knowledge = match &body.knowledge {
        Some(raw) => knowledge_in(&state, auth.account_id, raw).await?,
        None => Vec::new(),
    };
    let spec = AgentSpec {
        name: spec::name(&body.name)?,
        instructions: spec::instructions(&body.instructions)?,
        model_route: spec::model_route(body.model_route, models)?,
        output_schema: body.output_schema.map(spec::output_schema).transpose()?,
        outcome_type: spec::outcome_type(body.outcome_type.as_deref().unwrap_or(spec::DEFAULT_OUTCOME_TYPE))?,
        verifier_policy: spec::verifier_policy(body.verifier_policy.unwrap_or_default(), models)?,
        params: spec::params(body.params.unwrap_or_default())?,
        routing: spec::routing(body.routing.unwrap_or_default(), models)?,
        tools,
        knowledge,
        max_steps: spec::max_steps(body.max_steps.unwrap_or(DEFAULT_MAX_STEPS))?,
        handoff: body.handoff.unwrap_or(false),
    };
    let agent = state
        .store
        .create_agent_with_id(auth.account_id, id, &spec)
        .await
        .map_err(|e| name_taken(e, spec.name.as_str()))?;
    tracing::info!(agent.id = %agent.id, "agent created");
    Ok((StatusCode::CREATED, Json(agent.into())))
}

/// Lists the account's agents at their current versions, newest first.
#[utoipa::path(
    get,
    path = "/v1/agents",
    tag = "agents",
    security(("api_key" = [])),
    params(ListParams),
    responses(
        (status = 200, body = AgentList),
        (status = 400, description = "A bad `limit` or `cursor`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn list_agents(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<AgentList>> {
    let (limit, cursor) = params.parse::<AgentId>()?;
    let page = state.store.list_agents(auth.account_id, limit, cursor).await?;
    Ok(Json(AgentList {
        data: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Shows an agent: its current version, or `?version=N`.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}",
    tag = "agents",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The agent's id, `agt_…`"), AgentVersionParams),
    responses(
        (status = 200, body = AgentOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such agent (or version) in this account", body = ErrorBody),
    )
)]
pub async fn get_agent(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<AgentVersionParams>,
) -> ApiResult<Json<AgentOut>> {
    let agent_id = parse_agent_id(&id)?;
    let agent = state
        .store
        .get_agent(auth.account_id, agent_id, query.version)
        .await?;
    agent
        .map(|a| Json(a.into()))
        .ok_or(ApiError::NotFound { kind: "agent", id })
}

/// Updates an agent: adds a version made of the current one with the given
/// fields changed, and makes it current. Running and queued tasks keep the
/// version they were created with.
#[utoipa::path(
    patch,
    path = "/v1/agents/{id}",
    tag = "agents",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The agent's id, `agt_…`")),
    request_body = AgentPatchIn,
    responses(
        (status = 200, body = AgentOut),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such agent in this account", body = ErrorBody),
        (status = 409, description = "`agent_name_taken`", body = ErrorBody),
        (status = 422, description = "`unknown_model`, or `validation_failed` naming the field", body = ErrorBody),
    )
)]
pub async fn update_agent(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AgentPatchIn>,
) -> ApiResult<Json<AgentOut>> {
    let agent_id = parse_agent_id(&id)?;
    let models: &ModelRegistry = &state.models;
    let tools = match body.tools {
        Some(raw) => {
            // The current tools, for `"[sealed]"` values to keep. An update
            // racing this one can only make a kept value one version older:
            // sealed values are bound to the agent, not to a version.
            let current = state
                .store
                .get_agent(auth.account_id, agent_id, None)
                .await?
                .ok_or_else(|| ApiError::NotFound {
                    kind: "agent",
                    id: id.clone(),
                })?;
            Some(tools_in(&state, auth.account_id, agent_id, raw, &current.tools).await?)
        }
        None => None,
    };
    let knowledge = match &body.knowledge {
        Some(raw) => Some(knowledge_in(&state, auth.account_id, raw).await?),
        None => None,
    };
    let patch = AgentPatch {
        name: body.name.as_deref().map(spec::name).transpose()?,
        instructions: body.instructions.as_deref().map(spec::instructions).transpose()?,
        model_route: body
            .model_route
            .map(|r| spec::model_route(r, models))
            .transpose()?,
        output_schema: match body.output_schema {
            None => None,
            Some(None) => Some(None),
            Some(Some(value)) => Some(Some(spec::output_schema(value)?)),
        },
        outcome_type: body.outcome_type.as_deref().map(spec::outcome_type).transpose()?,
        verifier_policy: body
            .verifier_policy
            .map(|p| spec::verifier_policy(p, models))
            .transpose()?,
        params: body.params.map(spec::params).transpose()?,
        routing: body.routing.map(|r| spec::routing(r, models)).transpose()?,
        tools,
        knowledge,
        max_steps: body.max_steps.map(spec::max_steps).transpose()?,
        handoff: body.handoff,
    };
    let new_name = patch
        .name
        .as_ref()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    let agent = state
        .store
        .update_agent(auth.account_id, agent_id, &patch)
        .await
        .map_err(|e| name_taken(e, &new_name))?
        .ok_or(ApiError::NotFound { kind: "agent", id })?;
    tracing::info!(agent.id = %agent.id, version = agent.version, "agent updated");
    Ok(Json(agent.into()))
}

/// The knowledge sources an agent names, each a source of the account.
async fn knowledge_in(
    state: &AppState,
    account: AccountId,
    raw: &[String],
) -> Result<Vec<KnowledgeSourceId>, ApiError> {
    spec::knowledge(&state.store, account, raw)
        .await
        .map_err(|e| match e {
            spec::KnowledgeListError::Field(e) => e.into(),
            spec::KnowledgeListError::Store(e) => e.into(),
        })
}

/// Tools as a client wrote them, made ready to store: each checked
/// ([`spec::tools`]), `"[sealed]"` values resolved against `current`, each
/// host checked against the outbound policy, and each new header value
/// sealed for agent `agent`.
async fn tools_in(
    state: &AppState,
    account: AccountId,
    agent: AgentId,
    raw: Vec<ToolIn>,
    current: &[ToolSpec],
) -> Result<Vec<ToolSpec>, ApiError> {
    let mut tools = Vec::with_capacity(raw.len());
    for (i, t) in raw.into_iter().enumerate() {
        let method = ToolMethod::parse(&t.method).ok_or_else(|| {
            ApiError::validation(
                format!("tools[{i}].method"),
                "must be one of GET, POST, PUT, PATCH, DELETE",
            )
        })?;
        tools.push(ToolSpec {
            name: t.name,
            description: t.description,
            parameters: t.parameters,
            method,
            url: t.url,
            headers: t
                .headers
                .into_iter()
                .map(|(name, value)| {
                    let value = if value == SEALED_MARKER {
                        ToolHeader::Keep
                    } else {
                        ToolHeader::Plain(value)
                    };
                    (name, value)
                })
                .collect(),
            timeout_ms: t.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
            side_effects: t.side_effects,
        });
    }
    let tools = spec::keep_sealed(spec::tools(tools)?, current)?;
    for (i, t) in tools.iter().enumerate() {
        crate::routes::byok::public_endpoint(
            &state.outbound,
            &sample_url(&t.url),
            &format!("tools[{i}].url"),
        )
        .await?;
    }
    if tools
        .iter()
        .all(|t| t.headers.values().all(|h| !matches!(h, ToolHeader::Plain(_))))
    {
        return Ok(tools);
    }
    let keys = crate::routes::integrations::keyring(state)?;
    tools
        .into_iter()
        .map(|mut t| {
            for (name, value) in t.headers.iter_mut() {
                if let ToolHeader::Plain(plain) = value {
                    let aad = tool_header_aad(account, agent, &t.name, name);
                    let sealed = keys
                        .seal(plain.as_bytes(), aad.as_bytes())
                        .map_err(|e| ApiError::Internal(format!("sealing a tool header: {e}")))?;
                    *value = ToolHeader::Sealed(sealed);
                }
            }
            Ok(t)
        })
        .collect()
}

/// A checked URL template with each placeholder filled with `x`: its host
/// is what the outbound policy judges.
fn sample_url(template: &str) -> String {
    template_parts(template)
        .map(|parts| {
            parts
                .into_iter()
                .map(|p| match p {
                    TemplatePart::Literal(text) => text,
                    TemplatePart::Placeholder(_) => "x",
                })
                .collect()
        })
        .unwrap_or_else(|_| template.to_owned())
}

fn parse_agent_id(id: &str) -> Result<AgentId, ApiError> {
    crate::routes::path_id("agent", id)
}
