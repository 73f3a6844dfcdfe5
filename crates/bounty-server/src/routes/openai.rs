//! The OpenAI-compatible gateway: `POST /v1/chat/completions` (streaming
//! and not), `POST /v1/embeddings`, `GET /v1/models` and
//! `GET /v1/models/{model}`, in OpenAI's wire format, errors included.
//!
//! A Bounty API key is the client's key. A request names a gateway model
//! (`model`), whose route of configured models is tried in order
//! ([`crate::gateway`]). Remote models get the request as the client
//! wrote it (`bounty_models::passthrough`); local ones run it through
//! llama.cpp (`bounty_models::openai_wire`).
//!
//! **Attribution.** `Bounty-Task: <id>` (or `metadata.bounty_task`) makes
//! the call part of the customer's task `<id>`, for the agent named by
//! `Bounty-Agent` (or `metadata.bounty_agent`; by default the account's
//! agent named `gateway`). Both keys are taken out of `metadata` before the
//! request goes upstream. A call that names no task follows the plan's
//! `gateway.unattributed` rule: `refuse` (400 `task_required`, the
//! default), `cost_plus` or `free`.
//!
//! **Cost.** Each call is priced from the usage the provider reported
//! (cached and reasoning tokens at their own rates,
//! `bounty_models::price`); a stream is asked for its usage
//! (`stream_options.include_usage`, its last chunk dropped when the client
//! did not ask for it). When a provider reports none, Bounty counts: about
//! four bytes a token for the prompt, one token per streamed delta or four
//! bytes a token of the answer, and the call is flagged `usage_counted`.
//! The provider's own `usage.cost`, when present, is never read.
//!
//! Every call, failures included, is recorded behind the response
//! ([`crate::gateway::Recorder`]) and answered with its id in
//! `Bounty-Call-Id`.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bounty_agents::gateway_task::{DEFAULT_GATEWAY_AGENT, check_reference};
use bounty_core::verdict::Decision;
use bounty_core::{AgentId, GatewayCallId, GatewayTerms, Money, Unattributed};
use bounty_models::{ByokKey, CallRecord, Model, ProviderError, Usage, openai_wire, price};
use bounty_store::gateway::{GatewayBilling, NewGatewayCall};
use bounty_store::gateway_budget::{ACCOUNT_SCOPE, GatewayLimit, Reservation};
use bounty_store::{NewModelCall, TaskError, byok_sealing_aad};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::gateway::error::OpenAiError;
use crate::state::AppState;

type GatewayResult<T> = Result<T, OpenAiError>;

/// A request that passed every check before the model is called.
struct Prepared {
    auth: Auth,
    body: Value,
    model: String,
    route: Vec<String>,
    task_ref: Option<String>,
    agent: Option<AgentId>,
    billing: GatewayBilling,
    terms: Option<GatewayTerms>,
    byok: Option<ByokKey>,
    /// The exact-match cache key, when the gateway model caches.
    cache_key: Option<String>,
    /// The call's hold on the budgets that limit it, if any do.
    reservation: Option<Reservation>,
    /// Tokens used, and what the operator's models cost, so far.
    spent: std::sync::Mutex<(i64, i64)>,
    store: bounty_store::Store,
}

impl Drop for Prepared {
    /// The request is over (for a stream, its last event): its real use
    /// replaces its reservation, off the response path.
    fn drop(&mut self) {
        let Some(reservation) = self.reservation.take() else {
            return;
        };
        let (tokens, spend) = *self.spent.lock().unwrap_or_else(|e| e.into_inner());
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.commit_gateway(&reservation, tokens, spend).await {
                tracing::warn!(error = %e, "could not commit a gateway call's budget use; its reservation will expire");
            }
        });
    }
}

impl Prepared {
    fn object(&self) -> &Map<String, Value> {
        self.body
            .as_object()
            .unwrap_or_else(|| unreachable!("checked in prepare"))
    }
}

/// Creates a chat completion, OpenAI's `POST /v1/chat/completions`.
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "gateway",
    security(("api_key" = [])),
    request_body(content = Object, description = "OpenAI's chat completion request; `model` names a gateway model"),
    params(
        ("Bounty-Task" = Option<String>, Header, description = "The customer's id of the task this call belongs to"),
        ("Bounty-Agent" = Option<String>, Header, description = "The agent (id or name) whose task it is; default: the agent named `gateway`"),
    ),
    responses(
        (status = 200, description = "OpenAI's `chat.completion`, or `text/event-stream` of `chat.completion.chunk` with `stream: true`", body = Object),
        (status = 400, description = "OpenAI error: a bad field (`param`), `task_required`, `agent_not_found`, `agent_required`", body = Object),
        (status = 401, description = "OpenAI error `invalid_api_key`", body = Object),
        (status = 404, description = "OpenAI error `model_not_found`", body = Object),
        (status = 429, description = "OpenAI error, with `Retry-After`", body = Object),
        (status = 502, description = "OpenAI error `upstream_error`", body = Object),
        (status = 504, description = "OpenAI error `upstream_timeout`", body = Object),
    )
)]
pub async fn chat_completions(
    State(state): State<AppState>,
    auth: Result<Auth, ApiError>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match chat(state, auth, headers, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn chat(
    state: AppState,
    auth: Result<Auth, ApiError>,
    headers: HeaderMap,
    body: Bytes,
) -> GatewayResult<Response> {
    let mut prepared = prepare(&state, auth, &headers, &body, "chat").await?;
    let object = prepared.object();
    if object.get("messages").and_then(Value::as_array).is_none() {
        return Err(OpenAiError::invalid(
            "messages",
            "`messages` is required: an array of messages.",
        ));
    }
    let stream = match object.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(OpenAiError::invalid("stream", "`stream` must be a boolean.")),
    };
    reserve(&state, &mut prepared, None).await?;
    if stream {
        stream_chat(state, prepared).await
    } else {
        complete_chat(state, prepared).await
    }
}

/// Reads and checks what every gateway request shares: the key, the JSON
/// body, the model, attribution, the plan's rule and the BYOK key.
async fn prepare(
    state: &AppState,
    auth: Result<Auth, ApiError>,
    headers: &HeaderMap,
    body: &[u8],
    endpoint: &'static str,
) -> GatewayResult<Prepared> {
    let auth = auth.map_err(OpenAiError::from)?;
    let mut body: Value = serde_json::from_slice(body).map_err(|e| {
        OpenAiError::invalid(
            "body",
            format!("We could not parse the JSON body of your request: {e}. The body must be a JSON object."),
        )
    })?;
    let Some(object) = body.as_object_mut() else {
        return Err(OpenAiError::invalid("body", "The body must be a JSON object."));
    };
    let model = match object.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => {
            return Err(OpenAiError::invalid(
                "model",
                "You must provide a model parameter.",
            ));
        }
    };
    let route = state
        .gateway
        .route(&model)
        .ok_or_else(|| OpenAiError::model_not_found(&model))?
        .to_vec();
    let (task_ref, agent_given) = attribution(headers, object)?;
    let (billing, terms) = match &task_ref {
        Some(_) => (GatewayBilling::Task, None),
        None => {
            let plan = state.store.plan(auth.account_id).await.map_err(internal)?;
            let terms = plan.gateway;
            match terms.map(|t| t.unattributed).unwrap_or_default() {
                Unattributed::Refuse => {
                    return Err(OpenAiError::bounty(
                        "task_required",
                        Some("Bounty-Task"),
                        "This account's plan bills gateway calls by task: send `Bounty-Task: <your task id>` \
                         (or `metadata.bounty_task`) with every call.",
                    ));
                }
                Unattributed::CostPlus => (GatewayBilling::CostPlus, terms),
                Unattributed::Free => (GatewayBilling::Free, terms),
            }
        }
    };
    let agent = match (&task_ref, agent_given) {
        (None, _) => None,
        (Some(_), Some(given)) => Some(resolve_agent(state, &auth, &given).await?.ok_or_else(|| {
            OpenAiError::bounty(
                "agent_not_found",
                Some("Bounty-Agent"),
                format!("This account has no agent {given:?} (Bounty-Agent takes an agent's id or name)."),
            )
        })?),
        (Some(_), None) => Some(resolve_agent(state, &auth, DEFAULT_GATEWAY_AGENT).await?.ok_or_else(|| {
            OpenAiError::bounty(
                "agent_required",
                Some("Bounty-Agent"),
                format!(
                    "A call with Bounty-Task belongs to an agent's task: send `Bounty-Agent: <agent id or name>`, \
                     or create an agent named {DEFAULT_GATEWAY_AGENT:?} (its verification policy decides the outcome)."
                ),
            )
        })?),
    };
    let byok = byok_key(state, &auth, &route).await?;
    Ok(Prepared {
        auth,
        body,
        model,
        route,
        task_ref,
        agent,
        billing,
        terms,
        byok,
        cache_key: None,
        reservation: None,
        spent: std::sync::Mutex::new((0, 0)),
        store: state.store.clone(),
    })
    .map(|mut prepared: Prepared| {
        if state.gateway.caches(&prepared.model) {
            prepared.cache_key = Some(cache_key(&prepared, endpoint));
        }
        prepared
    })
}

/// The request's exact-match cache key, for a gateway model that caches:
/// the SHA-256 of the account, the mode, the endpoint, the model and the
/// request with every key sorted, less what cannot change the answer
/// (`stream`, `stream_options`, `metadata`, `user`). Everything else is in
/// it: messages, tools, `response_format`, temperature, seed, `n`, …
fn cache_key(prepared: &Prepared, endpoint: &str) -> String {
    let mut request = prepared.object().clone();
    for key in ["stream", "stream_options", "metadata", "user"] {
        request.remove(key);
    }
    let mut hasher = Sha256::new();
    for part in [
        prepared.auth.account_id.to_string().as_str(),
        prepared.auth.mode.as_str(),
        endpoint,
        prepared.model.as_str(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.update(canonical(&Value::Object(request)).as_bytes());
    hex::encode(hasher.finalize())
}

/// JSON with every object's keys sorted, whatever order they came in.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// A cached answer to this request, when its model caches and one of the
/// account's tasks that made it was resolved.
async fn cached(state: &AppState, prepared: &Prepared) -> GatewayResult<Option<Value>> {
    let Some(key) = &prepared.cache_key else {
        return Ok(None);
    };
    let found = state
        .store
        .gateway_cached(prepared.auth.account_id, prepared.auth.mode, key)
        .await
        .map_err(internal)?;
    Ok(found.and_then(|text| serde_json::from_str(&text).ok()))
}

fn record_cache_hit(
    state: &AppState,
    prepared: &Prepared,
    endpoint: &'static str,
    streamed: bool,
) -> GatewayCallId {
    record(
        state,
        prepared,
        endpoint,
        Done {
            served: String::new(),
            model: None,
            usage: Usage::default(),
            usage_counted: false,
            latency: Duration::ZERO,
            error: None,
            streamed,
            cache_hit: true,
            cache: None,
            verdict: None,
        },
    )
}

/// How long a reservation outlives a holder that never commits it.
const RESERVATION_HOLD: Duration = Duration::from_secs(600);

/// Reserves the call against the budgets that limit its account and key
/// (`bounty_store::gateway_budget`), after every other check: a request
/// refused for another reason uses no budget. A limit reached is OpenAI's
/// 429 with `Retry-After`.
async fn reserve(
    state: &AppState,
    prepared: &mut Prepared,
    completion_tokens: Option<u64>,
) -> GatewayResult<()> {
    let limits = state
        .gateway
        .limits(prepared.auth.account_id)
        .await
        .map_err(internal)?;
    let key_scope = prepared.auth.key_id.to_string();
    let applicable: Vec<GatewayLimit> = limits
        .iter()
        .filter(|l| l.scope == ACCOUNT_SCOPE || l.scope == key_scope)
        .cloned()
        .collect();
    if applicable.is_empty() {
        return Ok(());
    }
    let object = prepared.object();
    let prompt = object
        .get("messages")
        .or_else(|| object.get("input"))
        .map_or(0, |m| m.to_string().len());
    let first = prepared.route.iter().find_map(|m| state.models.get(m));
    let completion = completion_tokens.unwrap_or_else(|| {
        let asked = object
            .get("max_completion_tokens")
            .or_else(|| object.get("max_tokens"))
            .and_then(Value::as_u64);
        asked.unwrap_or_else(|| first.map_or(256, |m| u64::from(m.defaults().max_tokens)))
    });
    let estimate = Usage::tokens(counted_tokens(prompt), completion);
    let tokens = i64::try_from(estimate.prompt_tokens + estimate.completion_tokens).unwrap_or(i64::MAX);
    // The operator's spend: the first model of ours on the route.
    let spend = prepared
        .route
        .iter()
        .filter_map(|m| state.models.get(m))
        .find(|m| !m.is_byok())
        .map(|m| price::cost(m.price(), estimate, Duration::ZERO).micros);
    match state
        .store
        .reserve_gateway(
            prepared.auth.account_id,
            &applicable,
            tokens,
            spend,
            RESERVATION_HOLD,
        )
        .await
        .map_err(internal)?
    {
        Ok(reservation) => {
            prepared.reservation = Some(reservation);
            Ok(())
        }
        Err(refused) => {
            let whose = if refused.scope == ACCOUNT_SCOPE {
                "this account's".to_owned()
            } else {
                format!("this API key's ({})", refused.scope)
            };
            let message = format!(
                "Rate limit reached: {whose} {} limit. Retry after {} s.",
                refused.limit.replace('_', " "),
                refused.retry_after.as_secs().max(1)
            );
            let mut error = OpenAiError::rate_limited(
                if refused.limit == "monthly_spend" {
                    "budget_exceeded"
                } else {
                    "rate_limit_exceeded"
                },
                message,
                refused.retry_after,
            );
            if refused.limit == "monthly_spend" {
                error.kind = "insufficient_quota";
            }
            Err(error)
        }
    }
}

/// `Bounty-Task` and `Bounty-Agent`, from the headers or the body's
/// `metadata` (taken out of it: providers refuse keys they do not know).
fn attribution(
    headers: &HeaderMap,
    object: &mut Map<String, Value>,
) -> GatewayResult<(Option<String>, Option<String>)> {
    let header = |name: &'static str| -> GatewayResult<Option<String>> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map(|s| s.trim().to_owned())
                    .map_err(|_| OpenAiError::invalid(name, format!("`{name}` must be visible ASCII text.")))
            })
            .transpose()
    };
    let mut task = header("bounty-task")?;
    let mut agent = header("bounty-agent")?;
    if let Some(Value::Object(metadata)) = object.get_mut("metadata") {
        let mut take = |key: &str| -> GatewayResult<Option<String>> {
            match metadata.remove(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(OpenAiError::invalid(
                    format!("metadata.{key}"),
                    format!("`metadata.{key}` must be a string."),
                )),
            }
        };
        let (meta_task, meta_agent) = (take("bounty_task")?, take("bounty_agent")?);
        if metadata.is_empty() {
            object.remove("metadata");
        }
        task = task.or(meta_task);
        agent = agent.or(meta_agent);
    }
    if let Some(task) = &task {
        check_reference(task)
            .map_err(|m| OpenAiError::invalid("Bounty-Task", format!("`Bounty-Task` {m}.")))?;
    }
    Ok((task, agent))
}

async fn resolve_agent(state: &AppState, auth: &Auth, given: &str) -> GatewayResult<Option<AgentId>> {
    if let Some(known) = state.gateway.cached_agent(auth.account_id, given) {
        return Ok(known);
    }
    let agent = bounty_agents::submit::resolve_agent(&state.store, auth.account_id, given)
        .await
        .map_err(internal)?
        .map(|a| a.id);
    state.gateway.cache_agent(auth.account_id, given, agent);
    Ok(agent)
}

/// The account's own key, when the route has a BYOK model and the account
/// set one (without one, those models fail `byok_key_missing` and the
/// route goes on).
async fn byok_key(state: &AppState, auth: &Auth, route: &[String]) -> GatewayResult<Option<ByokKey>> {
    if !route
        .iter()
        .any(|m| state.models.get(m).is_some_and(|m| m.is_byok()))
    {
        return Ok(None);
    }
    let Some(record) = state.store.byok(auth.account_id).await.map_err(internal)? else {
        return Ok(None);
    };
    let Some(keys) = state.keyring.as_deref() else {
        tracing::warn!(
            "a gateway route has a BYOK model, but no master keys are configured to open keys with"
        );
        return Ok(None);
    };
    Ok(keys
        .open_text(&record.sealed_key, byok_sealing_aad(auth.account_id).as_bytes())
        .map(|key| ByokKey {
            base_url: record.base_url,
            api_key: key.into(),
        }))
}

fn internal(e: impl std::fmt::Display) -> OpenAiError {
    tracing::error!(error = %e, "gateway request failed");
    OpenAiError::internal()
}

/// Whether the next model of the route may succeed where this one failed:
/// not when the provider refused the request itself (a 4xx).
fn falls_back(error: &ProviderError) -> bool {
    !matches!(error, ProviderError::Rejected { .. })
}

/// One finished call, to record.
struct Done {
    served: String,
    model: Option<std::sync::Arc<Model>>,
    usage: Usage,
    usage_counted: bool,
    latency: Duration,
    error: Option<ProviderError>,
    streamed: bool,
    /// Served from the exact-match cache: no provider was called.
    cache_hit: bool,
    /// The answer to keep as a cache candidate (a cached model's answer
    /// to a task's call).
    cache: Option<String>,
    /// A cascade step's verdict, when the verifier checked the answer.
    verdict: Option<Decision>,
}

fn record(state: &AppState, prepared: &Prepared, endpoint: &'static str, done: Done) -> GatewayCallId {
    record_as(state, prepared, endpoint, done, GatewayCallId::new())
}

/// [`record`] under an id chosen before (a stream's, sent in its headers).
fn record_as(
    state: &AppState,
    prepared: &Prepared,
    endpoint: &'static str,
    done: Done,
    id: GatewayCallId,
) -> GatewayCallId {
    let usd = bounty_core::Currency::USD;
    let cost = match &done.model {
        Some(m) => price::cost(
            m.price(),
            done.usage,
            cost_time(m, done.latency, done.error.is_some()),
        ),
        None => Money::zero(usd),
    };
    let byok = done.model.as_ref().is_some_and(|m| m.is_byok());
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let call = NewModelCall {
        model: done.served,
        provider: done.model.as_ref().map(|m| m.provider().as_str().to_owned()),
        prompt_tokens: clamp(done.usage.prompt_tokens),
        completion_tokens: clamp(done.usage.completion_tokens),
        cached_tokens: clamp(done.usage.cached_tokens),
        reasoning_tokens: clamp(done.usage.reasoning_tokens),
        latency_us: i64::try_from(done.latency.as_micros()).unwrap_or(i64::MAX),
        cost,
        cache_hit: done.cache_hit,
        byok,
        error: done.error.as_ref().map(|e| TaskError {
            code: e.code().to_owned(),
            message: e.to_string(),
        }),
        verdict: done.verdict,
        shadow: false,
    };
    let cache = match (&prepared.cache_key, &prepared.task_ref, done.cache) {
        (Some(key), Some(_), Some(response)) if done.error.is_none() => Some((key.clone(), response)),
        _ => None,
    };
    let flags = CallFlags {
        usage_counted: done.usage_counted,
        streamed: done.streamed,
        judge: false,
    };
    submit(state, prepared, endpoint, id, call, flags, cache);
    id
}

/// How a recorded call was made.
#[derive(Clone, Copy)]
struct CallFlags {
    usage_counted: bool,
    streamed: bool,
    /// A judge verifier's call, checking a cascade step's answer.
    judge: bool,
}

/// Records the calls a cascade's judges made to check one answer: the
/// operator's inference, spent on the client's request.
fn record_judge_calls(state: &AppState, prepared: &Prepared, endpoint: &'static str, calls: &[CallRecord]) {
    let flags = CallFlags {
        usage_counted: false,
        streamed: false,
        judge: true,
    };
    for call in calls {
        let call = bounty_agents::worker::to_new_call(call);
        submit(state, prepared, endpoint, GatewayCallId::new(), call, flags, None);
    }
}

/// Counts a priced call against the request's budgets and hands it to the
/// recorder, with its cost-plus charge.
fn submit(
    state: &AppState,
    prepared: &Prepared,
    endpoint: &'static str,
    id: GatewayCallId,
    call: NewModelCall,
    flags: CallFlags,
    cache: Option<(String, String)>,
) {
    let cost = call.cost;
    let charge = match (prepared.billing, prepared.terms) {
        // The customer's own key: the cost is theirs already.
        (GatewayBilling::CostPlus, Some(terms)) if !call.byok => terms.cost_plus(cost),
        _ => Money::zero(cost.currency),
    };
    {
        let mut spent = prepared.spent.lock().unwrap_or_else(|e| e.into_inner());
        spent.0 = spent
            .0
            .saturating_add(call.prompt_tokens.saturating_add(call.completion_tokens));
        if !call.byok {
            spent.1 = spent.1.saturating_add(cost.micros);
        }
    }
    state.gateway.recorder().record(NewGatewayCall {
        id,
        account: prepared.auth.account_id,
        mode: prepared.auth.mode,
        api_key: prepared.auth.key_id.to_string(),
        task_ref: prepared.task_ref.clone(),
        agent: prepared.agent,
        endpoint,
        judge: flags.judge,
        model: prepared.model.clone(),
        call,
        usage_counted: flags.usage_counted,
        streamed: flags.streamed,
        billing: prepared.billing,
        charge,
        at: state.store.now(),
        cache,
    });
}

/// The wall time a call is priced by: a local model's whole time, failed
/// or not (the hardware was busy); a failed remote call's none (no tokens).
fn cost_time(model: &Model, latency: Duration, failed: bool) -> Duration {
    match model.provider() {
        bounty_models::ProviderKind::Llama => latency,
        bounty_models::ProviderKind::Openai if failed => Duration::ZERO,
        bounty_models::ProviderKind::Openai => latency,
    }
}

/// Tokens Bounty counts when a provider reports none: about four bytes a
/// token, rounded up.
fn counted_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

fn with_call_id(mut response: Response, id: GatewayCallId) -> Response {
    if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert("bounty-call-id", value);
    }
    response
}

fn completion_id() -> String {
    let id = GatewayCallId::new().to_string();
    format!("chatcmpl-{}", id.trim_start_matches("gwc_").to_lowercase())
}

/// A JSON answer of one model: the body, its usage, and whether Bounty
/// counted that usage itself.
type JsonAnswer = (Value, Usage, bool);

/// What a walk of the route answered: the body, the call that made it,
/// and for a cascade the step (from 1) and its verdict, when checked.
struct Answered {
    body: Value,
    id: GatewayCallId,
    step: usize,
    verdict: Option<Decision>,
}

/// A non-streaming request: the cached answer, or the route's
/// ([`walk_route`]), as JSON.
async fn through_route<F, Fut>(
    state: &AppState,
    prepared: &Prepared,
    endpoint: &'static str,
    call: F,
) -> GatewayResult<Response>
where
    F: FnMut(std::sync::Arc<Model>) -> Fut,
    Fut: std::future::Future<Output = GatewayResult<Result<JsonAnswer, ProviderError>>>,
{
    if let Some(body) = cached(state, prepared).await? {
        let id = record_cache_hit(state, prepared, endpoint, false);
        return Ok(with_call_id(Json(body).into_response(), id));
    }
    let answered = walk_route(state, prepared, endpoint, call).await?;
    let response = with_call_id(Json(answered.body).into_response(), answered.id);
    Ok(with_cascade(
        state,
        prepared,
        response,
        answered.step,
        answered.verdict,
    ))
}

/// Walks the route: each model in turn until one answers (`call`),
/// recording every call; a failure the next model cannot fix (the
/// provider refused the request) ends the walk.
///
/// **A cascade** (a chat model with a verifier): each answer but the last
/// model's is checked, and one the verifier rejects is recorded with its
/// verdict and escalated to the next model. When no later model answers,
/// the last rejected answer is served: a checked answer beats an error.
async fn walk_route<F, Fut>(
    state: &AppState,
    prepared: &Prepared,
    endpoint: &'static str,
    mut call: F,
) -> GatewayResult<Answered>
where
    F: FnMut(std::sync::Arc<Model>) -> Fut,
    Fut: std::future::Future<Output = GatewayResult<Result<JsonAnswer, ProviderError>>>,
{
    let verifier = match endpoint {
        "chat" => state.gateway.verifier(&prepared.model).cloned(),
        _ => None,
    };
    let mut rejected: Option<Answered> = None;
    let mut last = ProviderError::NotConfigured("the gateway model's route is empty".to_owned());
    let steps = prepared.route.len();
    for (i, name) in prepared.route.iter().enumerate() {
        let Some(model) = state.models.get(name).cloned() else {
            last = ProviderError::NotConfigured(format!("model {name:?} is not configured"));
            continue;
        };
        let started = Instant::now();
        let result = call(std::sync::Arc::clone(&model)).await?;
        let latency = started.elapsed();
        match result {
            Ok((body, usage, usage_counted)) => {
                let verdict = match &verifier {
                    Some(policy) if i + 1 < steps => {
                        let router = bounty_models::Router::new(std::sync::Arc::clone(&state.models));
                        let run =
                            crate::gateway::cascade::check(policy, prepared.object(), &body, &router).await;
                        record_judge_calls(state, prepared, endpoint, &run.judge_calls);
                        Some(match run.decision {
                            Decision::Pass => Decision::Pass,
                            Decision::Fail | Decision::Pending => Decision::Fail,
                        })
                    }
                    _ => None,
                };
                let accepted = verdict != Some(Decision::Fail);
                let done = Done {
                    served: name.clone(),
                    model: Some(model),
                    usage,
                    usage_counted,
                    latency,
                    error: None,
                    streamed: false,
                    cache_hit: false,
                    cache: match &prepared.cache_key {
                        Some(_) if accepted => Some(body.to_string()),
                        _ => None,
                    },
                    verdict,
                };
                let id = record(state, prepared, endpoint, done);
                let answered = Answered {
                    body,
                    id,
                    step: i + 1,
                    verdict,
                };
                if accepted {
                    return Ok(answered);
                }
                tracing::debug!(model = %name, step = i + 1, "the cascade's verifier rejected the answer; escalating");
                rejected = Some(answered);
            }
            Err(error) => {
                record_failure(state, prepared, endpoint, name, model, latency, &error, false);
                if !falls_back(&error) {
                    return rejected.ok_or_else(|| OpenAiError::from_provider(&error));
                }
                last = error;
            }
        }
    }
    rejected.ok_or_else(|| OpenAiError::from_provider(&last))
}

/// A cascade's answer says which step gave it (`Bounty-Cascade-Step`,
/// from 1) and, when it was checked, the verdict (`Bounty-Verdict`).
fn with_cascade(
    state: &AppState,
    prepared: &Prepared,
    mut response: Response,
    step: usize,
    verdict: Option<Decision>,
) -> Response {
    if state.gateway.verifier(&prepared.model).is_none() {
        return response;
    }
    let headers = response.headers_mut();
    headers.insert("bounty-cascade-step", HeaderValue::from(step));
    if let Some(verdict) = verdict {
        headers.insert("bounty-verdict", HeaderValue::from_static(verdict.as_str()));
    }
    response
}

async fn complete_chat(state: AppState, prepared: Prepared) -> GatewayResult<Response> {
    let prepared = &prepared;
    through_route(&state, prepared, "chat", |model| {
        chat_call(prepared, &prepared.body, model)
    })
    .await
}

/// One model's JSON answer to `body` (the request, or a cascade's
/// non-streaming copy of it): upstream as written, or through llama.cpp.
async fn chat_call(
    prepared: &Prepared,
    body: &Value,
    model: std::sync::Arc<Model>,
) -> GatewayResult<Result<JsonAnswer, ProviderError>> {
    Ok(
        match model
            .passthrough_json("chat/completions", body, prepared.byok.as_ref())
            .await
        {
            Some(result) => result.map(|reply| {
                let counted = reply.usage.is_none();
                let usage = reply.usage.unwrap_or_else(|| count_completion(body, &reply.body));
                (reply.body, usage, counted)
            }),
            None => local_chat(&model, prepared).await.map(|(generation, id)| {
                let created = chrono::Utc::now().timestamp();
                let body = openai_wire::completion(&id, created, &prepared.model, &generation);
                (body, generation.usage, false)
            }),
        },
    )
}

/// A streamed request to a cascade: an answer cannot be taken back once
/// streamed, so each step is asked without streaming, checked, and the
/// accepted answer is sent as one stream of chunks (usage last when the
/// client asked for it).
async fn stream_verified(state: AppState, prepared: Prepared, wants_usage: bool) -> GatewayResult<Response> {
    let mut body = prepared.body.clone();
    if let Some(object) = body.as_object_mut() {
        object.remove("stream");
        object.remove("stream_options");
    }
    let prepared = &prepared;
    let body = &body;
    let answered = walk_route(&state, prepared, "chat", |model| chat_call(prepared, body, model)).await?;
    let Some(generation) = openai_wire::generation_of(&answered.body) else {
        return Err(internal("a cascade's answer has no message to stream"));
    };
    let completion = answered.body["id"]
        .as_str()
        .map_or_else(completion_id, str::to_owned);
    let created = answered.body["created"]
        .as_i64()
        .unwrap_or_else(|| chrono::Utc::now().timestamp());
    let events = openai_wire::chunks(&completion, created, &prepared.model, &generation, wants_usage);
    let response = with_call_id(sse_response(Body::from(sse_text(events))), answered.id);
    Ok(with_cascade(
        &state,
        prepared,
        response,
        answered.step,
        answered.verdict,
    ))
}

#[allow(clippy::too_many_arguments)]
fn record_failure(
    state: &AppState,
    prepared: &Prepared,
    endpoint: &'static str,
    name: &str,
    model: std::sync::Arc<Model>,
    latency: Duration,
    error: &ProviderError,
    streamed: bool,
) {
    tracing::warn!(model = %name, code = error.code(), %error, "gateway call failed");
    record(
        state,
        prepared,
        endpoint,
        Done {
            served: name.to_owned(),
            model: Some(model),
            usage: Usage::default(),
            usage_counted: false,
            latency,
            error: Some(error.clone()),
            streamed,
            cache_hit: false,
            cache: None,
            verdict: None,
        },
    );
}

/// The usage of a response that reported none, counted.
fn count_completion(request: &Value, response: &Value) -> Usage {
    let prompt = request.get("messages").map_or(0, |m| m.to_string().len());
    let answer = response
        .pointer("/choices/0/message")
        .map_or(0, |m| m.to_string().len());
    Usage::tokens(counted_tokens(prompt), counted_tokens(answer))
}

/// A local model's answer to an OpenAI request, and its completion id.
async fn local_chat(
    model: &Model,
    prepared: &Prepared,
) -> Result<(bounty_models::Generation, String), ProviderError> {
    let request = openai_wire::generate_request(prepared.object(), model.defaults()).map_err(|e| {
        ProviderError::Rejected {
            status: 400,
            message: format!("{}: {}", e.param, e.message),
        }
    })?;
    let generation = model.generate(request).await?;
    Ok((generation, completion_id()))
}

/// `events` as server-sent events, then `data: [DONE]`.
fn sse_text(events: Vec<Value>) -> String {
    let mut text = String::new();
    for event in events {
        text.push_str("data: ");
        text.push_str(&event.to_string());
        text.push_str("\n\n");
    }
    text.push_str("data: [DONE]\n\n");
    text
}

fn sse_response(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn stream_chat(state: AppState, prepared: Prepared) -> GatewayResult<Response> {
    let wants_usage = prepared
        .object()
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // The usage is asked for whatever the client asked: it is the price.
    let mut upstream = prepared.body.clone();
    if let Some(object) = upstream.as_object_mut() {
        let options = object
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        if options.is_null() {
            *options = Value::Object(Map::new());
        }
        if let Some(options) = options.as_object_mut() {
            options.insert("include_usage".to_owned(), Value::Bool(true));
        } else {
            return Err(OpenAiError::invalid(
                "stream_options",
                "`stream_options` must be an object.",
            ));
        }
    }
    if let Some(body) = cached(&state, &prepared).await?
        && let Some(generation) = openai_wire::generation_of(&body)
    {
        let id = record_cache_hit(&state, &prepared, "chat", true);
        let completion = body["id"].as_str().map_or_else(completion_id, str::to_owned);
        let created = body["created"]
            .as_i64()
            .unwrap_or_else(|| chrono::Utc::now().timestamp());
        let events = openai_wire::chunks(&completion, created, &prepared.model, &generation, wants_usage);
        return Ok(with_call_id(sse_response(Body::from(sse_text(events))), id));
    }
    if state.gateway.verifier(&prepared.model).is_some() {
        return stream_verified(state, prepared, wants_usage).await;
    }
    let mut last = ProviderError::NotConfigured("the gateway model's route is empty".to_owned());
    for name in prepared.route.clone() {
        let name = &name;
        let Some(model) = state.models.get(name).cloned() else {
            last = ProviderError::NotConfigured(format!("model {name:?} is not configured"));
            continue;
        };
        let started = Instant::now();
        match model
            .passthrough_stream("chat/completions", &upstream, prepared.byok.as_ref())
            .await
        {
            Some(Ok(response)) => {
                let id = GatewayCallId::new();
                let (sender, receiver) = mpsc::channel::<Bytes>(64);
                let forward = Forward {
                    state: state.clone(),
                    prepared,
                    served: name.clone(),
                    model,
                    started,
                    wants_usage,
                    id,
                };
                tokio::spawn(forward.run(response, sender));
                let body = futures_util::stream::unfold(receiver, |mut r| async move {
                    r.recv().await.map(|bytes| (Ok::<_, Infallible>(bytes), r))
                });
                return Ok(with_call_id(sse_response(Body::from_stream(body)), id));
            }
            Some(Err(error)) => {
                let latency = started.elapsed();
                record_failure(&state, &prepared, "chat", name, model, latency, &error, true);
                if !falls_back(&error) {
                    return Err(OpenAiError::from_provider(&error));
                }
                last = error;
            }
            None => match local_chat(&model, &prepared).await {
                Ok((generation, completion)) => {
                    let latency = started.elapsed();
                    let created = chrono::Utc::now().timestamp();
                    let mut text = String::new();
                    for chunk in
                        openai_wire::chunks(&completion, created, &prepared.model, &generation, wants_usage)
                    {
                        text.push_str("data: ");
                        text.push_str(&chunk.to_string());
                        text.push_str("\n\n");
                    }
                    text.push_str("data: [DONE]\n\n");
                    let id = record(
                        &state,
                        &prepared,
                        "chat",
                        Done {
                            served: name.clone(),
                            model: Some(model),
                            usage: generation.usage,
                            usage_counted: false,
                            latency,
                            error: None,
                            streamed: true,
                            cache_hit: false,
                            cache: None,
                            verdict: None,
                        },
                    );
                    return Ok(with_call_id(sse_response(Body::from(text)), id));
                }
                Err(error) => {
                    let latency = started.elapsed();
                    record_failure(&state, &prepared, "chat", name, model, latency, &error, true);
                    if !falls_back(&error) {
                        return Err(OpenAiError::from_provider(&error));
                    }
                    last = error;
                }
            },
        }
    }
    Err(OpenAiError::from_provider(&last))
}

/// Forwards a provider's event stream to the client as it comes, reading
/// the usage off it, and records the call when it ends (the client
/// leaving included: the provider billed what it generated).
struct Forward {
    state: AppState,
    prepared: Prepared,
    served: String,
    model: std::sync::Arc<Model>,
    started: Instant,
    wants_usage: bool,
    id: GatewayCallId,
}

impl Forward {
    async fn run(self, mut response: reqwest::Response, sender: mpsc::Sender<Bytes>) {
        let mut pending: Vec<u8> = Vec::new();
        let mut usage: Option<Usage> = None;
        let mut deltas: u64 = 0;
        let mut error: Option<ProviderError> = None;
        let mut client_left = false;
        'read: loop {
            match response.chunk().await {
                Ok(Some(bytes)) => {
                    pending.extend(bytes.iter().filter(|b| **b != b'\r'));
                    let mut out: Vec<u8> = Vec::with_capacity(pending.len());
                    while let Some(end) = find_event_end(&pending) {
                        let event: Vec<u8> = pending.drain(..end + 2).collect();
                        if self.keep(&event, &mut usage, &mut deltas) {
                            out.extend_from_slice(&event);
                        }
                    }
                    if !out.is_empty() && sender.send(Bytes::from(out)).await.is_err() {
                        client_left = true;
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(if e.is_timeout() {
                        ProviderError::Timeout(self.started.elapsed())
                    } else {
                        ProviderError::Unreachable(format!("the stream broke: {}", e.without_url()))
                    });
                    break;
                }
            }
        }
        if !pending.is_empty() && !client_left {
            let _ = sender.send(Bytes::from(pending)).await;
        }
        let latency = self.started.elapsed();
        let (usage, usage_counted) = match usage {
            Some(u) => (u, false),
            None => {
                let prompt = self
                    .prepared
                    .object()
                    .get("messages")
                    .map_or(0, |m| m.to_string().len());
                (Usage::tokens(counted_tokens(prompt), deltas), true)
            }
        };
        if client_left {
            tracing::info!(call = %self.id, "the client left a gateway stream; recording what was generated");
        }
        let done = Done {
            served: self.served.clone(),
            model: Some(std::sync::Arc::clone(&self.model)),
            usage,
            usage_counted,
            latency,
            error,
            streamed: true,
            cache_hit: false,
            cache: None,
            verdict: None,
        };
        // Recorded before the stream ends for the client: a client that
        // read to the end and then reports its task finds the call.
        record_as(&self.state, &self.prepared, "chat", done, self.id);
        drop(sender);
    }

    /// Reads one event; whether it goes to the client. The usage-only
    /// last chunk is dropped when the client did not ask for usage.
    fn keep(&self, event: &[u8], usage: &mut Option<Usage>, deltas: &mut u64) -> bool {
        let Ok(text) = std::str::from_utf8(event) else {
            return true;
        };
        let Some(data) = text.lines().find_map(|l| l.strip_prefix("data:")).map(str::trim) else {
            return true;
        };
        if data == "[DONE]" {
            return true;
        }
        if data.contains("\"usage\"")
            && let Ok(chunk) = serde_json::from_str::<Value>(data)
            && let Some(found) = chunk.get("usage").and_then(bounty_models::passthrough::usage_of)
        {
            *usage = Some(found);
            let no_choices = chunk
                .get("choices")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
            return self.wants_usage || !no_choices;
        }
        let content = data.contains("\"content\":\"") && !data.contains("\"content\":\"\"");
        if content || data.contains("\"arguments\":\"") {
            *deltas += 1;
        }
        true
    }
}

fn find_event_end(buffer: &[u8]) -> Option<usize> {
    buffer.windows(2).position(|w| w == b"\n\n")
}

/// Creates embeddings, OpenAI's `POST /v1/embeddings`.
#[utoipa::path(
    post,
    path = "/v1/embeddings",
    tag = "gateway",
    security(("api_key" = [])),
    request_body(content = Object, description = "OpenAI's embeddings request; `model` names a gateway model"),
    responses(
        (status = 200, description = "OpenAI's embedding list", body = Object),
        (status = 400, description = "OpenAI error", body = Object),
        (status = 401, description = "OpenAI error `invalid_api_key`", body = Object),
        (status = 404, description = "OpenAI error `model_not_found`", body = Object),
    )
)]
pub async fn embeddings(
    State(state): State<AppState>,
    auth: Result<Auth, ApiError>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match embed(state, auth, headers, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

fn embedding_inputs(object: &Map<String, Value>) -> GatewayResult<Vec<String>> {
    let bad = || {
        OpenAiError::invalid(
            "input",
            "`input` must be a string or an array of strings (token arrays are not supported by local models).",
        )
    };
    match object.get("input") {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

async fn embed(
    state: AppState,
    auth: Result<Auth, ApiError>,
    headers: HeaderMap,
    body: Bytes,
) -> GatewayResult<Response> {
    let mut prepared = prepare(&state, auth, &headers, &body, "embeddings").await?;
    let object = prepared.object();
    if object.get("input").is_none() {
        return Err(OpenAiError::invalid("input", "`input` is required."));
    }
    let base64 = match object.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(f)) if f == "float" => false,
        Some(Value::String(f)) if f == "base64" => true,
        Some(_) => {
            return Err(OpenAiError::invalid(
                "encoding_format",
                "`encoding_format` must be `float` or `base64`.",
            ));
        }
    };
    reserve(&state, &mut prepared, Some(0)).await?;
    let prepared = &prepared;
    through_route(&state, prepared, "embeddings", |model| async move {
        Ok(match model
            .passthrough_json("embeddings", &prepared.body, prepared.byok.as_ref())
            .await
        {
            Some(result) => result.map(|reply| {
                let counted = reply.usage.is_none();
                let usage = reply.usage.unwrap_or_else(|| {
                    let input = prepared.object().get("input").map_or(0, |i| i.to_string().len());
                    Usage::tokens(counted_tokens(input), 0)
                });
                (reply.body, usage, counted)
            }),
            None => {
                let inputs = embedding_inputs(prepared.object())?;
                let tokens = counted_tokens(inputs.iter().map(String::len).sum());
                model.embed(inputs).await.map(|vectors| {
                    let data: Vec<Value> = vectors
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": vector_json(&v, base64)}))
                        .collect();
                    let body = json!({
                        "object": "list",
                        "data": data,
                        "model": prepared.model,
                        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                    });
                    (body, Usage::tokens(tokens, 0), true)
                })
            }
        })
    })
    .await
}

/// A vector as OpenAI sends it: numbers, or (`encoding_format: base64`)
/// the little-endian `f32` bytes in base64.
fn vector_json(v: &[f32], base64: bool) -> Value {
    if base64 {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
    } else {
        json!(v)
    }
}

/// Lists the models this key may use, OpenAI's `GET /v1/models`.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "gateway",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "OpenAI's model list: `{object: \"list\", data: [{id, object: \"model\", created, owned_by}]}`", body = Object),
        (status = 401, description = "OpenAI error `invalid_api_key`", body = Object),
    )
)]
pub async fn list_models(State(state): State<AppState>, auth: Result<Auth, ApiError>) -> Response {
    match models_of(&state, auth).await {
        Ok(data) => Json(json!({"object": "list", "data": data})).into_response(),
        Err(e) => e.into_response(),
    }
}

/// One model, OpenAI's `GET /v1/models/{model}`.
#[utoipa::path(
    get,
    path = "/v1/models/{model}",
    tag = "gateway",
    security(("api_key" = [])),
    params(("model" = String, Path, description = "A gateway model name")),
    responses(
        (status = 200, description = "OpenAI's model object", body = Object),
        (status = 401, description = "OpenAI error `invalid_api_key`", body = Object),
        (status = 404, description = "OpenAI error `model_not_found`", body = Object),
    )
)]
pub async fn get_model(
    State(state): State<AppState>,
    auth: Result<Auth, ApiError>,
    Path(model): Path<String>,
) -> Response {
    match models_of(&state, auth).await {
        Ok(data) => match data.into_iter().find(|m| m["id"] == model.as_str()) {
            Some(found) => Json(found).into_response(),
            None => OpenAiError::model_not_found(&model).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// The gateway models the key's account can call: every one, except
/// those whose route is all BYOK models when the account has no key.
async fn models_of(state: &AppState, auth: Result<Auth, ApiError>) -> GatewayResult<Vec<Value>> {
    let auth = auth.map_err(OpenAiError::from)?;
    let has_byok = state
        .store
        .byok(auth.account_id)
        .await
        .map_err(internal)?
        .is_some();
    let created = state.gateway.started();
    Ok(state
        .gateway
        .models()
        .filter(|(_, route)| {
            has_byok
                || route
                    .iter()
                    .any(|m| state.models.get(m).is_some_and(|m| !m.is_byok()))
        })
        .map(|(name, _)| json!({"id": name, "object": "model", "created": created, "owned_by": "bounty"}))
        .collect())
}

/// `StatusCode` of an error, for tests of this module.
#[cfg(test)]
fn status(e: &OpenAiError) -> axum::http::StatusCode {
    e.status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribution_comes_from_headers_or_metadata_and_leaves_metadata_clean() {
        let mut headers = HeaderMap::new();
        let mut body =
            json!({"model": "m", "metadata": {"bounty_task": "T-1", "bounty_agent": "support", "user": "u"}});
        let object = body.as_object_mut().unwrap();
        let (task, agent) = attribution(&headers, object).unwrap();
        assert_eq!(
            (task.as_deref(), agent.as_deref()),
            (Some("T-1"), Some("support"))
        );
        assert_eq!(object["metadata"], json!({"user": "u"}));

        let mut only = json!({"model": "m", "metadata": {"bounty_task": "T-2"}});
        let object = only.as_object_mut().unwrap();
        headers.insert("bounty-task", HeaderValue::from_static("T-9"));
        let (task, _) = attribution(&headers, object).unwrap();
        assert_eq!(task.as_deref(), Some("T-9"), "the header wins");
        assert!(object.get("metadata").is_none(), "an emptied metadata is removed");

        let mut bad = json!({"metadata": {"bounty_task": 7}});
        let e = attribution(&HeaderMap::new(), bad.as_object_mut().unwrap()).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("metadata.bounty_task"));
        assert_eq!(status(&e), axum::http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn provider_failures_map_to_openai_statuses() {
        let e = OpenAiError::from_provider(&ProviderError::RateLimited {
            retry_after: Some(Duration::from_millis(1500)),
            message: "slow down".into(),
        });
        assert_eq!(e.status, axum::http::StatusCode::TOO_MANY_REQUESTS);
        let response = e.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let e = OpenAiError::from_provider(&ProviderError::Server {
            status: 500,
            message: "boom".into(),
        });
        assert_eq!(
            (e.status, e.code),
            (axum::http::StatusCode::BAD_GATEWAY, Some("upstream_error"))
        );
        let e = OpenAiError::from_provider(&ProviderError::Timeout(Duration::from_secs(1)));
        assert_eq!(e.status, axum::http::StatusCode::GATEWAY_TIMEOUT);
        let e = OpenAiError::from_provider(&ProviderError::Rejected {
            status: 404,
            message: "no such model".into(),
        });
        assert_eq!(e.status, axum::http::StatusCode::NOT_FOUND);
        assert_eq!(e.body()["error"]["type"], "invalid_request_error");
    }

    #[test]
    fn base64_vectors_are_little_endian_f32() {
        let v = vector_json(&[1.0, -2.5], true);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        assert_eq!(bytes.len(), 8);
        assert_eq!(f32::from_le_bytes(bytes[4..8].try_into().unwrap()), -2.5);
    }
}
