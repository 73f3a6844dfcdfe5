//! `/v1/agents`: create, list, show and update the account's agents.
//!
//! Every field is checked by [`bounty_agents::spec`], the checks the
//! dashboard's agent form runs too; the first refused field answers
//! (`unknown_model` or `validation_failed`, naming it). An update never
//! edits a version: it adds one and makes it current.
//! Tasks record the version they ran, and `GET /v1/agents/{id}?version=N`
//! shows any past version.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bounty_agents::spec;
use bounty_core::{AgentId, GenerationParams, RoutingPolicy, VerificationPolicy};
use bounty_models::ModelRegistry;
use bounty_store::{Agent, AgentPatch, AgentSpec, StoreError};
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
    let spec = AgentSpec {
        name: spec::name(&body.name)?,
        instructions: spec::instructions(&body.instructions)?,
        model_route: spec::model_route(body.model_route, models)?,
        output_schema: body.output_schema.map(spec::output_schema).transpose()?,
        outcome_type: spec::outcome_type(body.outcome_type.as_deref().unwrap_or(spec::DEFAULT_OUTCOME_TYPE))?,
        verifier_policy: spec::verifier_policy(body.verifier_policy.unwrap_or_default(), models)?,
        params: spec::params(body.params.unwrap_or_default())?,
        routing: spec::routing(body.routing.unwrap_or_default(), models)?,
    };
    let agent = state
        .store
        .create_agent(auth.account_id, &spec)
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

fn parse_agent_id(id: &str) -> Result<AgentId, ApiError> {
    crate::routes::path_id("agent", id)
}
