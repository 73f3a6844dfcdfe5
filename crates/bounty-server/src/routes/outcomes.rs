//! `/v1/outcomes`: what each task came to, with its verdict receipt, and
//! the resolution signals that confirm or reopen it.

use axum::Json;
use axum::extract::{Path, State};
use bounty_billing::settle::OutcomeError;
use bounty_core::outcome::{OutcomeStatus, Signal};
use bounty_core::plan::RatingReceipt;
use bounty_core::{Actor, AgentId, OutcomeId, TaskId, VerifierVerdict};
use bounty_store::{Outcome, OutcomeEventRecord, OutcomeFilter, Transfer};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::pagination::{ListParams, parse_time};
use crate::routes::path_id;
use crate::state::AppState;

/// An outcome: its status and what it was charged. What it cost us to
/// produce is the operator's business, never the customer's.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutcomeOut {
    pub id: OutcomeId,
    pub task_id: TaskId,
    pub agent: OutcomeAgent,
    pub outcome_type: String,
    /// `verifying`, `provisional`, `resolved`, `failed` or `reversed`.
    #[schema(value_type = String)]
    pub status: OutcomeStatus,
    /// Until when the ticket source may still confirm or reopen it.
    pub window_ends_at: DateTime<Utc>,
    /// Compute units charged, as a decimal string (`"1.000"`); `"0.000"`
    /// unless resolved.
    pub cu: String,
    /// Money charged (before prepaid credits), in micros of `currency`.
    pub amount_micros: i64,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    /// `false` for a test-mode outcome (made through a `bk_test_` key):
    /// rated in the test book, never billed live.
    pub livemode: bool,
    #[serde(flatten)]
    #[schema(inline)]
    pub receipt: Option<Receipt>,
}

/// The agent version an outcome was verified under.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutcomeAgent {
    pub id: AgentId,
    pub version: i32,
}

/// What a customer can audit and dispute: every event with its evidence,
/// the rating and the ledger transfers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    /// SHA-256 of the verification policy the outcome was judged under.
    pub policy_hash: String,
    pub events: Vec<EventOut>,
    /// The rating: inputs, formula and result (only when charged).
    #[schema(value_type = Option<Object>)]
    pub rating: Option<RatingReceipt>,
    pub transfers: Vec<TransferOut>,
    /// "No charge — not resolved" when nothing is charged.
    pub charge_summary: String,
    /// The agent's tool calls for this task, in order, redacted: what it
    /// did to resolve it (a refund issued, an order looked up).
    pub steps: Vec<crate::routes::tasks::ToolCallOut>,
}

/// One event of the receipt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventOut {
    pub seq: i32,
    /// `verified`, `signal`, `signal_refused`, `window_lapsed`,
    /// `goodwill_reversal` or `task_failed`.
    pub event: String,
    pub from_status: Option<String>,
    pub to_status: String,
    /// `none`, `charge` or `reverse`.
    pub effect: String,
    pub verdicts: Option<Vec<VerifierVerdict>>,
    #[schema(value_type = Option<Object>)]
    pub signal: Option<serde_json::Value>,
    /// The agent version whose policy applied.
    pub policy_version: i32,
    pub inputs_hash: String,
    pub reason: String,
    /// Who made it: `api_key:key_…`, `integration:int_…`,
    /// `operator:<name>`, `worker` or `window`; `null` for events recorded
    /// before actors were.
    pub actor: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One ledger transfer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransferOut {
    pub id: String,
    pub kind: String,
    pub debit: String,
    pub credit: String,
    pub amount: i64,
    /// `mCU` (milli compute units) or a currency (micros).
    pub unit: String,
    pub reverses: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Transfer> for TransferOut {
    fn from(t: Transfer) -> Self {
        TransferOut {
            id: t.id.to_string(),
            kind: t.kind.as_str().to_owned(),
            debit: t.debit.as_str().to_owned(),
            credit: t.credit.as_str().to_owned(),
            amount: t.amount,
            unit: t.unit.as_str().to_owned(),
            reverses: t.reverses_id.map(|r| r.to_string()),
            created_at: t.created_at,
        }
    }
}

impl From<OutcomeEventRecord> for EventOut {
    fn from(e: OutcomeEventRecord) -> Self {
        EventOut {
            seq: e.seq,
            event: e.event.to_string(),
            from_status: e.from_status.map(|s| s.to_string()),
            to_status: e.to_status.to_string(),
            effect: e.effect.to_string(),
            verdicts: e.verdicts,
            signal: e.signal,
            policy_version: e.policy_version,
            inputs_hash: e.inputs_hash,
            reason: e.reason,
            actor: e.actor.map(|a| a.to_string()),
            created_at: e.created_at,
        }
    }
}

impl OutcomeOut {
    pub(crate) fn summary(o: Outcome) -> Self {
        let charged = o.status == OutcomeStatus::Resolved;
        OutcomeOut {
            id: o.id,
            task_id: o.task_id,
            agent: OutcomeAgent {
                id: o.agent_id,
                version: o.agent_version,
            },
            outcome_type: o.outcome_type.as_str().to_owned(),
            status: o.status,
            window_ends_at: o.window_ends_at,
            cu: if charged {
                o.cu.decimal()
            } else {
                "0.000".to_owned()
            },
            amount_micros: if charged { o.amount.micros } else { 0 },
            currency: o.amount.currency.to_string(),
            created_at: o.created_at,
            decided_at: o.decided_at,
            livemode: o.mode.livemode(),
            receipt: None,
        }
    }
}

/// One page of outcomes, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutcomeList {
    pub data: Vec<OutcomeOut>,
    pub next_cursor: Option<String>,
}

/// Filters and paging of `GET /v1/outcomes`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OutcomeListParams {
    /// `verifying`, `provisional`, `resolved`, `failed` or `reversed`.
    pub status: Option<String>,
    /// An agent id (`agt_…`).
    pub agent: Option<String>,
    /// Created at or after (RFC 3339).
    pub created_from: Option<String>,
    /// Created before (RFC 3339).
    pub created_to: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Lists the account's outcomes, newest first.
#[utoipa::path(
    get,
    path = "/v1/outcomes",
    tag = "outcomes",
    security(("api_key" = [])),
    params(OutcomeListParams),
    responses(
        (status = 200, body = OutcomeList),
        (status = 400, description = "A bad filter, `limit` or `cursor`, named in `param`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn list_outcomes(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<OutcomeListParams>,
) -> ApiResult<Json<OutcomeList>> {
    let (limit, cursor) = ListParams {
        limit: q.limit,
        cursor: q.cursor.clone(),
    }
    .parse::<OutcomeId>()?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.parse::<OutcomeStatus>().map_err(|e| ApiError::InvalidRequest {
                message: format!("`status`: {e}"),
                param: Some("status".to_owned()),
            })
        })
        .transpose()?;
    // An agent id that does not parse names no agent: nothing matches.
    let agent_id = match q.agent.as_deref().map(str::parse::<AgentId>) {
        Some(Err(_)) => {
            return Ok(Json(OutcomeList {
                data: Vec::new(),
                next_cursor: None,
            }));
        }
        other => other.and_then(Result::ok),
    };
    let filter = OutcomeFilter {
        mode: auth.mode,
        status,
        agent_id,
        created_from: parse_time("created_from", q.created_from.as_deref())?,
        created_to: parse_time("created_to", q.created_to.as_deref())?,
    };
    let page = state
        .store
        .list_outcomes(auth.account_id, &filter, limit, cursor)
        .await?;
    Ok(Json(OutcomeList {
        data: page.items.into_iter().map(OutcomeOut::summary).collect(),
        next_cursor: page.next_cursor,
    }))
}

pub(crate) async fn receipt_of(state: &AppState, auth: &Auth, outcome: Outcome) -> ApiResult<OutcomeOut> {
    let events = state.store.outcome_events(auth.account_id, outcome.id).await?;
    let transfers = state
        .store
        .transfers(auth.account_id, Some(outcome.id), None)
        .await?;
    let steps = state.store.tool_calls(auth.account_id, outcome.task_id).await?;
    let rating = outcome.rating.clone();
    let policy_hash = outcome.policy_hash.clone();
    let mut out = OutcomeOut::summary(outcome);
    let charge_summary = if out.status == OutcomeStatus::Resolved {
        match &rating {
            Some(r) => format!("Charged {}: {}", r.cu, r.formula),
            None => "Resolved".to_owned(),
        }
    } else if out.status == OutcomeStatus::Reversed {
        "No charge — reversed".to_owned()
    } else if out.status == OutcomeStatus::Escalated {
        "No charge — handed to a person".to_owned()
    } else {
        "No charge — not resolved".to_owned()
    };
    out.receipt = Some(Receipt {
        policy_hash,
        events: events.into_iter().map(Into::into).collect(),
        rating,
        transfers: transfers.into_iter().map(Into::into).collect(),
        charge_summary,
        steps: steps.into_iter().map(Into::into).collect(),
    });
    Ok(out)
}

/// Shows an outcome with its receipt: the verdict chain, the rating
/// (inputs, formula, result), the ledger transfers, inference cost and
/// margin.
#[utoipa::path(
    get,
    path = "/v1/outcomes/{id}",
    tag = "outcomes",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The outcome's id, `out_…`")),
    responses(
        (status = 200, body = OutcomeOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such outcome in this account", body = ErrorBody),
    )
)]
pub async fn get_outcome(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<OutcomeOut>> {
    let oid: OutcomeId = path_id("outcome", &id)?;
    let outcome = state
        .store
        .get_outcome(auth.account_id, oid)
        .await?
        // Another mode's object is not there for this key (as in Stripe).
        .filter(|o| o.mode == auth.mode)
        .ok_or(ApiError::NotFound { kind: "outcome", id })?;
    Ok(Json(receipt_of(&state, &auth, outcome).await?))
}

/// A resolution signal from the ticket source.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalIn {
    /// `solved`, `reopened`, `customer_confirmed`, `csat` (with `score`
    /// 1 to 5) or `escalated` (the ticket was handed to a person: the
    /// outcome ends `escalated`, never charged). (`goodwill_reversal` is an operator's decision, made with
    /// `bounty outcomes reverse`: an API key gets 403 `operator_only`.)
    pub kind: String,
    pub score: Option<u8>,
}

/// Records a resolution signal and applies it: a provisional outcome is
/// resolved (and charged), failed or escalated; a resolved one reopened
/// or escalated inside its window is not resolved any more, and its charge
/// is reversed (a reopen also resumes the conversation: its task is queued
/// for a new turn, worked for free). A signal applies only to an
/// outcome whose policy has an `external` verifier, inside its window;
/// otherwise it is refused (409 `signal_not_applicable`) and the refusal
/// is recorded on the receipt.
#[utoipa::path(
    post,
    path = "/v1/outcomes/{id}/signals",
    tag = "outcomes",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The outcome's id, `out_…`")),
    request_body = SignalIn,
    responses(
        (status = 200, body = OutcomeOut, description = "The outcome after the signal, with its receipt"),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "`operator_only`: a goodwill reversal is an operator's decision", body = ErrorBody),
        (status = 404, description = "No such outcome in this account", body = ErrorBody),
        (status = 409, description = "`signal_not_applicable`: the policy has no `external` verifier or the window is over (recorded); `outcome_transition_refused`: not applicable in the outcome's state", body = ErrorBody),
        (status = 422, description = "An unknown `kind` or a bad `score`", body = ErrorBody),
    )
)]
pub async fn post_signal(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SignalIn>,
) -> ApiResult<Json<OutcomeOut>> {
    let oid: OutcomeId = path_id("outcome", &id)?;
    let signal = match (body.kind.as_str(), body.score) {
        ("solved", None) => Signal::Solved,
        ("reopened", None) => Signal::Reopened,
        ("customer_confirmed", None) => Signal::CustomerConfirmed,
        ("escalated", None) => Signal::Escalated,
        ("csat", Some(score)) if (1..=5).contains(&score) => Signal::Csat { score },
        ("csat", _) => return Err(ApiError::validation("score", "must be 1 to 5 with `csat`")),
        ("goodwill_reversal", _) => {
            // A customer's key never reverses its own charge.
            tracing::warn!(outcome.id = %oid, "goodwill reversal refused: an API key is not an operator");
            return Err(ApiError::OperatorOnly {
                action: "a goodwill reversal",
            });
        }
        ("solved" | "reopened" | "customer_confirmed" | "escalated", Some(_)) => {
            return Err(ApiError::validation("score", "is only for `csat`"));
        }
        (other, _) => {
            return Err(ApiError::validation(
                "kind",
                format!(
                    "`{other}` is not a signal; use solved, reopened, customer_confirmed, csat or escalated"
                ),
            ));
        }
    };
    let not_found = || ApiError::NotFound {
        kind: "outcome",
        id: id.clone(),
    };
    // Another mode's outcome is not there for this key.
    match state.store.get_outcome(auth.account_id, oid).await? {
        Some(o) if o.mode == auth.mode => {}
        _ => return Err(not_found()),
    }
    let applied = bounty_billing::settle::apply_signal(
        &state.store,
        auth.account_id,
        oid,
        signal,
        Actor::ApiKey(auth.key_id),
    )
    .await
    .map_err(|e| match e {
        OutcomeError::NotFound => not_found(),
        OutcomeError::NotAllowed(m) => ApiError::TransitionRefused(m),
        OutcomeError::NotApplicable(m) => ApiError::SignalNotApplicable(m),
        OutcomeError::Store(e) => e.into(),
    })?;
    tracing::info!(outcome.id = %oid, from = %applied.from, to = %applied.outcome.status, "outcome signal applied");
    if applied.resumed {
        // A reopen resumed the conversation: its next turn is due now.
        state.task_wake.notify_one();
    }
    Ok(Json(receipt_of(&state, &auth, applied.outcome).await?))
}
