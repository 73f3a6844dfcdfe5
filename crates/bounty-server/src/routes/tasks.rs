//! `/v1/tasks`: submit work to an agent, and follow it.
//!
//! `POST` hands the task to [`bounty_agents::submit::submit_task`] (the
//! path every source of tasks takes: account status, input policy, agent,
//! the insert) and maps its typed result; the task is committed to the
//! durable queue before the `202`. Input that breaks a bound is refused
//! with `422 validation_failed` naming the field.
//! With an `Idempotency-Key` header, a retried request (same key, same
//! body) gets the task the first one created; the key reused with a
//! different body is refused with `422 idempotency_mismatch`. A unique key
//! in the database decides between concurrent identical requests.
//!
//! `POST /v1/tasks/{id}/messages` is the customer's next message in the
//! task's conversation ([`bounty_agents::conversation::post_message`]):
//! appended for the turn that will read it, or continuing an answer that
//! waits as a new turn; a closed conversation answers
//! `409 conversation_closed`. It honours `Idempotency-Key` the same way
//! (one message per key and task).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bounty_agents::conversation::{CustomerMessage, MessageError, Taken, post_message};
use bounty_agents::submit::{
    AgentRef, Source, SubmitError, Submitted, TaskRequest, resolve_agent, submit_task,
};
use bounty_core::conversation::MessageSource;
use bounty_core::{Actor, AgentId, Decision, TaskId, TaskInput, TaskStatus};
use bounty_store::{ConversationMessage, Idempotency, ModelCall, Task, TaskAttempt, TaskFilter};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::pagination::{ListParams, parse_time};
use crate::routes::path_id;
use crate::state::AppState;

/// The header that makes `POST /v1/tasks` safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on a response that replays an earlier request's task.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// A task to run.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskIn {
    /// The agent: its id (`agt_…`) or its name. The task runs the agent's
    /// current version.
    pub agent: String,
    /// What to work on.
    pub input: TaskInput,
    /// Your own reference (a ticket id), shown back; up to 255 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

/// The agent and version a task runs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskAgent {
    pub id: AgentId,
    pub version: i32,
}

/// What the agent produced.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskOutputOut {
    /// The text as the model wrote it.
    pub text: String,
    /// The text parsed as JSON, when it is JSON.
    #[schema(value_type = Option<Object>)]
    pub json: Option<serde_json::Value>,
    /// The model that wrote it.
    pub model: String,
    /// Violations of the agent's output schema: `null` without a schema,
    /// empty when the output matches.
    pub schema_errors: Option<Vec<String>>,
}

/// Why the last attempt (or the task) failed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskErrorOut {
    /// Stable code, e.g. `provider_timeout`.
    pub code: String,
    pub message: String,
}

/// A task. The list shows the summary; `GET /v1/tasks/{id}` adds the
/// transcript, the attempts, every model call and the usage.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskOut {
    pub id: TaskId,
    pub agent: TaskAgent,
    pub status: TaskStatus,
    pub input: TaskInput,
    pub external_ref: Option<String>,
    /// The conversation's turn the task is on: 1, and one more each time
    /// a customer's message continued it.
    pub turn: i32,
    /// Attempts started so far, over every turn.
    pub attempts: i32,
    pub max_attempts: i32,
    /// When a queued task becomes due (after a retry backoff).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub output: Option<TaskOutputOut>,
    /// The last error; on a failed task, why it failed.
    pub error: Option<TaskErrorOut>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `false` for a test-mode task (made through a `bk_test_` key): its
    /// outcome is rated in the test book and never billed live.
    pub livemode: bool,
    #[serde(flatten)]
    #[schema(inline)]
    pub detail: Option<TaskDetail>,
}

/// The parts of a task only its own page shows.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskDetail {
    /// The chat of the last turn: system prompt, the ticket, the
    /// conversation, and the answer.
    #[schema(value_type = Option<Vec<Object>>)]
    pub transcript: Option<serde_json::Value>,
    /// The conversation after the ticket (its `input`, the first customer
    /// message), oldest first: later customer messages and each turn's
    /// answer.
    pub messages: Vec<MessageOut>,
    /// Every attempt, in order.
    pub attempt_history: Vec<AttemptOut>,
    /// Every model call, in order, failed ones included.
    pub model_calls: Vec<ModelCallOut>,
    /// Every tool call the agent made, in order: the steps of its turns.
    pub tool_calls: Vec<ToolCallOut>,
    /// Totals of the model calls.
    pub usage: UsageOut,
    /// What the task came to, once it finished: see `GET /v1/outcomes/{id}`.
    pub outcome: Option<TaskOutcomeOut>,
}

/// One tool call of the agent: what it sent, what came back (redacted:
/// no secret of the tool is ever shown) and how long it took.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ToolCallOut {
    pub attempt: i32,
    /// The conversation's turn.
    pub turn: i32,
    /// Order within the attempt.
    pub seq: i32,
    pub tool: String,
    /// The arguments as the model wrote them (JSON text).
    pub arguments: String,
    /// The HTTP status; `null` when no answer came.
    pub status: Option<u16>,
    /// `ok`, `client_error`, `down`, `refused` or `handoff`.
    pub outcome: String,
    pub latency_ms: f64,
    /// The response, redacted and truncated.
    #[schema(value_type = Object)]
    pub response: serde_json::Value,
    /// The `Idempotency-Key` sent with a side-effecting call.
    pub idempotency_key: Option<String>,
    /// On the last call of a step: Bounty's own time in that step (from
    /// the model's answer to the next model request, less the tools').
    pub step_overhead_ms: Option<f64>,
    pub created_at: DateTime<Utc>,
}

impl From<bounty_store::ToolCallRecord> for ToolCallOut {
    fn from(r: bounty_store::ToolCallRecord) -> Self {
        ToolCallOut {
            attempt: r.attempt,
            turn: r.call.turn,
            seq: r.seq,
            tool: r.call.tool,
            arguments: r.call.arguments,
            status: r.call.status,
            outcome: r.call.outcome.as_str().to_owned(),
            latency_ms: r.call.latency_us as f64 / 1000.0,
            response: r.call.response,
            idempotency_key: r.call.idempotency_key,
            step_overhead_ms: r.call.step_overhead_us.map(|us| us as f64 / 1000.0),
            created_at: r.created_at,
        }
    }
}

/// One message of a task's conversation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageOut {
    /// Its number within the task, in the order messages were written.
    pub seq: i32,
    /// The turn that answers it (a customer's) or that wrote it (the
    /// agent's).
    pub turn: i32,
    /// `customer` or `agent`.
    pub role: String,
    pub body: String,
    /// `api`, `helpdesk` or `agent`.
    pub source: String,
    pub created_at: DateTime<Utc>,
}

impl From<ConversationMessage> for MessageOut {
    fn from(m: ConversationMessage) -> Self {
        MessageOut {
            seq: m.seq,
            turn: m.turn,
            role: m.role.as_str().to_owned(),
            body: m.body,
            source: m.source.as_str().to_owned(),
            created_at: m.created_at,
        }
    }
}

/// A customer's next message in a task's conversation.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageIn {
    /// The message, 1 to 32,000 characters (not only whitespace, no NUL).
    pub body: String,
}

/// A task's outcome, in brief.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskOutcomeOut {
    pub id: String,
    /// `verifying`, `provisional`, `resolved`, `failed` or `reversed`.
    pub status: String,
    /// CU charged, as a decimal string.
    pub cu: String,
}

/// One attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptOut {
    pub attempt: i32,
    pub worker: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `completed`, `failed`, `retry` or `lease_expired`; `null` while running.
    pub outcome: Option<String>,
    pub error: Option<TaskErrorOut>,
}

/// One model call.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelCallOut {
    pub id: String,
    pub attempt: i32,
    pub model: String,
    /// `llama` or `openai`; `null` when the model is not configured.
    pub provider: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Of `prompt_tokens`, those the provider read from its prompt cache.
    pub cached_tokens: i64,
    /// Of `completion_tokens`, the model's hidden reasoning.
    pub reasoning_tokens: i64,
    /// A call the customer's own agent made through the gateway (attempt
    /// 0 of a gateway task), before Bounty verified the reported answer.
    pub gateway: bool,
    pub latency_ms: f64,
    /// What a call on the account's own key (BYOK) cost the account, which
    /// pays its provider; absent for every other call, whose cost is ours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub byok_cost: Option<CostOut>,
    /// Served from the verified-answer cache.
    pub cache_hit: bool,
    pub byok: bool,
    /// For a call that produced an answer: what the verifiers decided
    /// about it (`pass`, `fail`, `pending`). A cascade has one per step.
    pub verdict: Option<Decision>,
    /// A shadow student's call: not part of the task's cost or outcome.
    pub shadow: bool,
    pub error: Option<TaskErrorOut>,
    pub created_at: DateTime<Utc>,
}

/// An amount the account paid its own provider.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CostOut {
    pub micros: i64,
    pub currency: String,
}

/// Totals over a task's model calls.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct UsageOut {
    pub model_calls: usize,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Milliseconds spent in the agent's tools, every attempt (an effort
    /// plan's tool time).
    pub tool_ms: u64,
    /// What calls on the account's own key (BYOK) cost the account, in
    /// micros per currency; absent when there were none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub byok_cost_micros: BTreeMap<String, i64>,
}

/// One page of tasks, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskList {
    pub data: Vec<TaskOut>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Filters and paging of `GET /v1/tasks`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskListParams {
    /// `queued`, `running`, `completed` or `failed`.
    pub status: Option<String>,
    /// An agent's id or name.
    pub agent: Option<String>,
    /// Created at or after this time (RFC 3339).
    pub created_from: Option<String>,
    /// Created before this time (RFC 3339).
    pub created_to: Option<String>,
    /// How many tasks to return, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn error_out(e: bounty_store::TaskError) -> TaskErrorOut {
    TaskErrorOut {
        code: e.code,
        message: e.message,
    }
}

impl TaskOut {
    fn summary(t: Task) -> Self {
        let output = t.output.map(|text| TaskOutputOut {
            json: serde_json::from_str(text.trim()).ok(),
            text,
            model: t.output_model.unwrap_or_default(),
            schema_errors: t.output_errors,
        });
        TaskOut {
            id: t.id,
            agent: TaskAgent {
                id: t.agent_id,
                version: t.agent_version,
            },
            status: t.status,
            input: t.input,
            external_ref: t.external_ref,
            turn: t.turn,
            attempts: t.attempts,
            max_attempts: t.max_attempts,
            next_attempt_at: (t.status == TaskStatus::Queued).then_some(t.run_at),
            output,
            error: t.last_error.map(error_out),
            created_at: t.created_at,
            updated_at: t.updated_at,
            started_at: t.started_at,
            finished_at: t.finished_at,
            livemode: t.mode.livemode(),
            detail: None,
        }
    }

    fn detailed(
        t: Task,
        messages: Vec<ConversationMessage>,
        attempts: Vec<TaskAttempt>,
        calls: Vec<ModelCall>,
        tools: Vec<bounty_store::ToolCallRecord>,
        outcome: Option<bounty_store::Outcome>,
    ) -> Self {
        let transcript = t.transcript.clone();
        let mut usage = UsageOut {
            model_calls: calls.iter().filter(|c| !c.call.shadow).count(),
            ..Default::default()
        };
        for c in calls.iter().filter(|c| !c.call.shadow) {
            usage.prompt_tokens = usage.prompt_tokens.saturating_add(c.call.prompt_tokens);
            usage.completion_tokens = usage.completion_tokens.saturating_add(c.call.completion_tokens);
            if c.call.byok {
                let sum = usage
                    .byok_cost_micros
                    .entry(c.call.cost.currency.to_string())
                    .or_insert(0);
                *sum = sum.saturating_add(c.call.cost.micros);
            }
        }
        usage.tool_ms = tools
            .iter()
            .map(|c| u64::try_from(c.call.latency_us).unwrap_or(0))
            .sum::<u64>()
            .div_ceil(1000);
        let mut out = TaskOut::summary(t);
        out.detail = Some(TaskDetail {
            transcript,
            tool_calls: tools.into_iter().map(Into::into).collect(),
            messages: messages.into_iter().map(MessageOut::from).collect(),
            attempt_history: attempts
                .into_iter()
                .map(|a| AttemptOut {
                    attempt: a.attempt,
                    worker: a.worker,
                    started_at: a.started_at,
                    finished_at: a.finished_at,
                    outcome: a.outcome.map(|o| o.to_string()),
                    error: a.error.map(error_out),
                })
                .collect(),
            model_calls: calls
                .into_iter()
                .map(|c| ModelCallOut {
                    id: c.id.to_string(),
                    attempt: c.attempt,
                    model: c.call.model,
                    provider: c.call.provider,
                    prompt_tokens: c.call.prompt_tokens,
                    completion_tokens: c.call.completion_tokens,
                    cached_tokens: c.call.cached_tokens,
                    reasoning_tokens: c.call.reasoning_tokens,
                    gateway: c.attempt == bounty_store::gateway::GATEWAY_ATTEMPT,
                    latency_ms: c.call.latency_us as f64 / 1000.0,
                    byok_cost: c.call.byok.then(|| CostOut {
                        micros: c.call.cost.micros,
                        currency: c.call.cost.currency.to_string(),
                    }),
                    cache_hit: c.call.cache_hit,
                    byok: c.call.byok,
                    verdict: c.call.verdict,
                    shadow: c.call.shadow,
                    error: c.call.error.map(error_out),
                    created_at: c.created_at,
                })
                .collect(),
            usage,
            outcome: outcome.map(|o| TaskOutcomeOut {
                id: o.id.to_string(),
                status: o.status.as_str().to_owned(),
                cu: if o.status.charged() {
                    o.cu.decimal()
                } else {
                    "0.000".to_owned()
                },
            }),
        });
        out
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let bad = |message: &str| ApiError::InvalidRequest {
        message: format!("`Idempotency-Key` {message}"),
        param: Some("Idempotency-Key".to_owned()),
    };
    let key = value.to_str().map_err(|_| bad("must be printable ASCII"))?;
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(bad("must be 1 to 255 characters"));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("must be printable ASCII without spaces"));
    }
    Ok(Some(key.to_owned()))
}

/// The request's `Idempotency-Key`, with the SHA-256 of the request it
/// came with.
fn idempotency(headers: &HeaderMap, body: &impl Serialize) -> Result<Option<Idempotency>, ApiError> {
    Ok(idempotency_key(headers)?.map(|key| Idempotency {
        key,
        request_hash: hex::encode(Sha256::digest(
            serde_json::to_vec(body).expect("a parsed request serializes"),
        )),
    }))
}

/// `202` with the task; `Idempotent-Replayed: true` when an earlier
/// request with the same key made it.
fn accepted(task: Task, replayed: bool) -> Response {
    let mut response = (StatusCode::ACCEPTED, Json(TaskOut::summary(task))).into_response();
    if replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// Queues a task for an agent. The task is committed before the `202`.
#[utoipa::path(
    post,
    path = "/v1/tasks",
    tag = "tasks",
    security(("api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key and body return the same task")),
    request_body = TaskIn,
    responses(
        (status = 202, body = TaskOut, description = "Queued (or, with `Idempotent-Replayed: true`, the task of an earlier identical request)"),
        (status = 400, description = "Malformed JSON, an unknown or missing field, or a bad `Idempotency-Key`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 402, description = "`budget_exhausted`: the monthly spending cap is reached; `account_suspended`: Stripe suspended the subscription", body = ErrorBody),
        (status = 422, description = "`unknown_agent`, `idempotency_mismatch`, or `validation_failed` naming the field", body = ErrorBody),
    )
)]
pub async fn create_task(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TaskIn>,
) -> ApiResult<Response> {
    let idempotency = idempotency(&headers, &body)?;
    let request = TaskRequest {
        agent: AgentRef::Given(body.agent),
        input: body.input,
        external_ref: body.external_ref,
        source: Source::Api { idempotency },
        mode: auth.mode,
        max_attempts: state.task_max_attempts,
    };
    match submit_task(&state.store, auth.account_id, request).await {
        Ok(Submitted::Queued(task)) => {
            tracing::info!(task.id = %task.id, agent.id = %task.agent_id, "task queued");
            state.task_wake.notify_one();
            Ok(accepted(task, false))
        }
        Ok(Submitted::Replayed(task)) => Ok(accepted(task, true)),
        Ok(Submitted::TicketHasTask(task)) => Err(ApiError::Internal(format!(
            "an API task answered the ticket task {task}"
        ))),
        Err(e @ SubmitError::BudgetExhausted { .. }) => {
            tracing::info!("task refused: the monthly spending cap is reached");
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// A gateway task's outcome, as the customer reports it.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeReportIn {
    /// The final answer the customer's agent gave: what the agent's
    /// verification policy judges.
    pub output: String,
    /// What the task answered (the ticket or request), which verifiers
    /// such as a judge read beside the answer.
    pub input: TaskInput,
    /// The agent (id or name) whose task it is; default: the agent the
    /// calls named with `Bounty-Agent`, else the agent named `gateway`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// Reports the outcome of a task whose calls went through the
/// OpenAI-compatible gateway with `Bounty-Task: {id}`. The task is made,
/// with every call recorded for it so far (each with its cost), and
/// queued: the agent's verification policy decides the answer exactly as
/// for an agent Bounty runs, and a resolved outcome is charged once. The
/// same report again answers the same task (`200`); another answer for a
/// reported task is refused.
#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/outcome",
    tag = "tasks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "Your id of the task: the `Bounty-Task` its gateway calls carried")),
    request_body = OutcomeReportIn,
    responses(
        (status = 201, body = TaskOut, description = "The task, queued for verification"),
        (status = 200, body = TaskOut, description = "The same report was made before: its task"),
        (status = 400, description = "Malformed JSON or an unknown or missing field", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 402, description = "`budget_exhausted` or `account_suspended`", body = ErrorBody),
        (status = 409, description = "`outcome_already_reported`: reported before with another answer", body = ErrorBody),
        (status = 422, description = "`unknown_agent` (none named, and no agent called `gateway`), or `validation_failed` naming the field", body = ErrorBody),
    )
)]
pub async fn report_outcome(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<OutcomeReportIn>,
) -> ApiResult<Response> {
    use bounty_agents::gateway_task::{Report, ReportError, Reported, report_outcome};
    // Every call the client saw answered is recorded before the task is
    // made from them.
    state.gateway.flush().await;
    let report = Report {
        reference: id,
        agent: body.agent,
        input: body.input,
        output: body.output,
        mode: auth.mode,
        max_attempts: state.task_max_attempts,
    };
    match report_outcome(&state.store, auth.account_id, report).await {
        Ok(Reported::New { task, calls }) => {
            tracing::info!(task.id = %task.id, calls, "gateway task reported");
            state.task_wake.notify_one();
            Ok((StatusCode::CREATED, Json(TaskOut::summary(task))).into_response())
        }
        Ok(Reported::Repeated(task)) => Ok((StatusCode::OK, Json(TaskOut::summary(task))).into_response()),
        Err(ReportError::AlreadyReported { reference, task }) => {
            Err(ApiError::OutcomeAlreadyReported(format!(
                "the outcome of {reference:?} was reported before with another answer (task {})",
                task.id
            )))
        }
        Err(ReportError::Submit(e)) => Err(e.into()),
    }
}

/// Lists the account's tasks, newest first, filtered by status, agent and
/// creation time.
#[utoipa::path(
    get,
    path = "/v1/tasks",
    tag = "tasks",
    security(("api_key" = [])),
    params(TaskListParams),
    responses(
        (status = 200, body = TaskList),
        (status = 400, description = "A bad filter, `limit` or `cursor`, named in `param`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 422, description = "`unknown_agent`", body = ErrorBody),
    )
)]
pub async fn list_tasks(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<TaskListParams>,
) -> ApiResult<Json<TaskList>> {
    let (limit, cursor) = ListParams {
        limit: q.limit,
        cursor: q.cursor.clone(),
    }
    .parse::<TaskId>()?;
    let bad = |param: &str, message: String| ApiError::InvalidRequest {
        message,
        param: Some(param.to_owned()),
    };
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.parse::<TaskStatus>()
                .map_err(|e| bad("status", format!("`status`: {e}")))
        })
        .transpose()?;
    let created_from = parse_time("created_from", q.created_from.as_deref())?;
    let created_to = parse_time("created_to", q.created_to.as_deref())?;
    let agent_id = match q.agent.as_deref() {
        None => None,
        Some(a) => Some(
            resolve_agent(&state.store, auth.account_id, a)
                .await?
                .ok_or_else(|| ApiError::UnknownAgent { agent: a.to_owned() })?
                .id,
        ),
    };
    let filter = TaskFilter {
        mode: auth.mode,
        status,
        agent_id,
        created_from,
        created_to,
        search: None,
        outcome_statuses: Vec::new(),
    };
    let page = state
        .store
        .list_tasks(auth.account_id, &filter, limit, cursor)
        .await?;
    Ok(Json(TaskList {
        data: page.items.into_iter().map(TaskOut::summary).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Shows a task with its transcript, attempts, model calls and usage.
#[utoipa::path(
    get,
    path = "/v1/tasks/{id}",
    tag = "tasks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The task's id, `task_…`")),
    responses(
        (status = 200, body = TaskOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such task in this account", body = ErrorBody),
    )
)]
pub async fn get_task(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<TaskOut>> {
    let task_id: TaskId = path_id("task", &id)?;
    let task = state
        .store
        .get_task(auth.account_id, task_id)
        .await?
        // Another mode's object is not there for this key (as in Stripe).
        .filter(|t| t.mode == auth.mode)
        .ok_or(ApiError::NotFound { kind: "task", id })?;
    let messages = state.store.conversation(auth.account_id, task_id).await?;
    let attempts = state.store.task_attempts(auth.account_id, task_id).await?;
    let calls = state.store.model_calls(auth.account_id, task_id).await?;
    let outcome = state.store.outcome_of_task(auth.account_id, task_id).await?;
    let tools = state.store.tool_calls(auth.account_id, task_id).await?;
    Ok(Json(TaskOut::detailed(
        task, messages, attempts, calls, tools, outcome,
    )))
}

/// Adds the customer's next message to a task's conversation. While a
/// turn is queued or running, the message waits for the turn that will
/// read it; when the agent's answer waits for the customer (outcome
/// `provisional`), the conversation continues: the outcome goes back to
/// `verifying` and a new turn is queued. The conversation is charged once,
/// when it is resolved. Committed before the `202`.
#[utoipa::path(
    post,
    path = "/v1/tasks/{id}/messages",
    tag = "tasks",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "The task's id, `task_…`"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to retry: the same key and body add one message"),
    ),
    request_body = MessageIn,
    responses(
        (status = 202, body = TaskOut, description = "Added (or, with `Idempotent-Replayed: true`, added by an earlier identical request): the task as it now stands"),
        (status = 400, description = "Malformed JSON, an unknown or missing field, or a bad `Idempotency-Key`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such task in this account", body = ErrorBody),
        (status = 409, description = "`conversation_closed`: the task's outcome is resolved, failed, reversed or escalated", body = ErrorBody),
        (status = 422, description = "`validation_failed` naming `body`, or `idempotency_mismatch`", body = ErrorBody),
    )
)]
pub async fn post_task_message(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MessageIn>,
) -> ApiResult<Response> {
    let task_id: TaskId = path_id("task", &id)?;
    let idempotency = idempotency(&headers, &body)?;
    let not_found = || ApiError::NotFound {
        kind: "task",
        id: id.clone(),
    };
    // Another mode's task is not there for this key (as in Stripe).
    match state.store.get_task(auth.account_id, task_id).await? {
        Some(t) if t.mode == auth.mode => {}
        _ => return Err(not_found()),
    }
    let message = CustomerMessage {
        body: &body.body,
        source: MessageSource::Api,
        actor: Actor::ApiKey(auth.key_id),
        idempotency,
    };
    let taken = post_message(&state.store, auth.account_id, task_id, &message)
        .await
        .map_err(|e| match e {
            MessageError::NotFound => not_found(),
            MessageError::Invalid(message) => ApiError::validation("body", message),
            MessageError::Closed(m) => ApiError::ConversationClosed(m),
            MessageError::IdempotencyMismatch => ApiError::IdempotencyMismatch,
            MessageError::Store(e) => e.into(),
        })?;
    let replayed = matches!(taken, Taken::Replayed { .. });
    if let Taken::Continued { task, .. } = &taken {
        tracing::info!(task.id = %task.id, turn = task.turn, "conversation continued");
        state.task_wake.notify_one();
    }
    let task = match taken {
        Taken::Appended { task, .. } | Taken::Continued { task, .. } | Taken::Replayed { task, .. } => task,
        Taken::Closed { why, .. } => return Err(ApiError::ConversationClosed(why)),
    };
    Ok(accepted(task, replayed))
}
