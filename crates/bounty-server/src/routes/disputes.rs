//! Disputes: a customer contests a charged outcome
//! (`POST /v1/outcomes/{id}/disputes`), follows it (`GET /v1/disputes`,
//! `GET /v1/disputes/{id}`), and downloads its evidence pack
//! (`GET /v1/disputes/{id}/evidence`), the same file the operator decides
//! on, with its SHA-256. The decision is the operator's (`routes::ops`) or
//! the plan's dispute policy's.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bounty_billing::disputes::{DisputeError, DisputeRequest, MAX_COMMENT_CHARS, open_dispute};
use bounty_core::dispute::DisputeReason;
use bounty_core::{AccountId, Actor, DisputeId, OutcomeId};
use bounty_store::Dispute;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::pagination::ListParams;
use crate::routes::path_id;
use crate::state::AppState;

/// A dispute of a charged outcome.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DisputeOut {
    pub id: DisputeId,
    pub outcome_id: OutcomeId,
    /// `open`, `accepted` (the charge is reversed) or `rejected` (it stands).
    pub status: String,
    /// `not_resolved`, `wrong_answer`, `duplicate` or `other`.
    pub reason: String,
    pub comment: Option<String>,
    /// SHA-256 (hex) of the evidence pack: check the download against it.
    pub evidence_sha256: String,
    /// Who decided: `operator` or `dispute_policy` (the plan's policy
    /// accepted it at once); `null` while open.
    pub decided_by: Option<String>,
    /// Why the operator decided so; a rejection always says.
    pub decision_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub livemode: bool,
}

impl DisputeOut {
    /// The dispute as its account sees it: who decided by role, never by
    /// the operator's name.
    pub fn of(d: Dispute) -> Self {
        let decided_by = d.decided_by.map(|a| match a {
            Actor::DisputePolicy => "dispute_policy".to_owned(),
            _ => "operator".to_owned(),
        });
        DisputeOut {
            id: d.id,
            outcome_id: d.outcome_id,
            status: d.status.to_string(),
            reason: d.reason.to_string(),
            comment: d.comment,
            evidence_sha256: d.evidence_sha256,
            decided_by,
            decision_reason: d.decision_reason,
            created_at: d.created_at,
            decided_at: d.decided_at,
            livemode: d.mode.livemode(),
        }
    }
}

/// One page of disputes, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DisputeList {
    pub data: Vec<DisputeOut>,
    pub next_cursor: Option<String>,
}

/// A dispute to open.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputeIn {
    /// `not_resolved`, `wrong_answer`, `duplicate` or `other`.
    pub reason: String,
    /// What happened, in the customer's words (at most 2000 characters).
    pub comment: Option<String>,
}

impl From<DisputeError> for ApiError {
    fn from(e: DisputeError) -> Self {
        let refused = |code, e: &DisputeError| ApiError::DisputeRefused {
            code,
            message: e.to_string(),
        };
        match e {
            DisputeError::OutcomeNotFound => ApiError::NotFound {
                kind: "outcome",
                id: String::new(),
            },
            DisputeError::NotFound => ApiError::NotFound {
                kind: "dispute",
                id: String::new(),
            },
            DisputeError::NotDisputable(_) => refused("outcome_not_disputable", &e),
            DisputeError::AlreadyDisputed(_) => refused("dispute_exists", &e),
            DisputeError::AlreadyDecided(_) => refused("dispute_decided", &e),
            DisputeError::ReasonRequired => ApiError::validation("reason", "a rejection needs a reason"),
            DisputeError::Store(e) => e.into(),
        }
    }
}

/// Contests a charged outcome. The answer says whether the plan's dispute
/// policy accepted it at once (`accepted`: the charge is reversed) or it
/// waits for the operator (`open`). One dispute per outcome.
#[utoipa::path(
    post,
    path = "/v1/outcomes/{id}/disputes",
    tag = "disputes",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The outcome's id, `out_…`")),
    request_body = DisputeIn,
    responses(
        (status = 201, body = DisputeOut),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such outcome in this account", body = ErrorBody),
        (status = 409, description = "`outcome_not_disputable`: not charged (resolved); `dispute_exists`: disputed already", body = ErrorBody),
        (status = 422, description = "An unknown `reason` or a comment over 2000 characters", body = ErrorBody),
    )
)]
pub async fn create_dispute(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DisputeIn>,
) -> ApiResult<Response> {
    let oid: OutcomeId = path_id("outcome", &id)?;
    let reason: DisputeReason = body
        .reason
        .parse()
        .map_err(|e: bounty_core::stored_enum::BadName| ApiError::validation("reason", e.to_string()))?;
    let comment = body.comment.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if comment.is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS) {
        return Err(ApiError::validation(
            "comment",
            format!("must be at most {MAX_COMMENT_CHARS} characters"),
        ));
    }
    let not_found = || ApiError::NotFound {
        kind: "outcome",
        id: id.clone(),
    };
    match state.store.get_outcome(auth.account_id, oid).await? {
        Some(o) if o.mode == auth.mode => {}
        _ => return Err(not_found()),
    }
    let request = DisputeRequest {
        reason,
        comment,
        actor: Actor::ApiKey(auth.key_id),
    };
    let dispute = open_dispute(&state.store, auth.account_id, oid, &request)
        .await
        .map_err(|e| match e {
            DisputeError::OutcomeNotFound => not_found(),
            e => e.into(),
        })?;
    tracing::info!(dispute.id = %dispute.id, outcome.id = %oid, status = %dispute.status, "dispute opened");
    Ok((StatusCode::CREATED, Json(DisputeOut::of(dispute))).into_response())
}

/// One of the key's disputes (of its mode), or a 404.
async fn own_dispute(state: &AppState, auth: &Auth, id: &str) -> ApiResult<Dispute> {
    let did: DisputeId = path_id("dispute", id)?;
    match state.store.get_dispute(auth.account_id, did).await? {
        Some(d) if d.mode == auth.mode => Ok(d),
        _ => Err(ApiError::NotFound {
            kind: "dispute",
            id: id.to_owned(),
        }),
    }
}

/// The account's disputes, newest first.
#[utoipa::path(
    get,
    path = "/v1/disputes",
    tag = "disputes",
    security(("api_key" = [])),
    params(ListParams),
    responses(
        (status = 200, body = DisputeList),
        (status = 400, description = "A bad `limit` or `cursor`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn list_disputes(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<DisputeList>> {
    let (limit, cursor) = params.parse::<DisputeId>()?;
    let page = state
        .store
        .list_disputes(auth.account_id, auth.mode, limit, cursor)
        .await?;
    Ok(Json(DisputeList {
        data: page.items.into_iter().map(DisputeOut::of).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One dispute: its status and, once decided, who decided and why.
#[utoipa::path(
    get,
    path = "/v1/disputes/{id}",
    tag = "disputes",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The dispute's id, `dsp_…`")),
    responses(
        (status = 200, body = DisputeOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such dispute in this account", body = ErrorBody),
    )
)]
pub async fn get_dispute(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<DisputeOut>> {
    Ok(Json(DisputeOut::of(own_dispute(&state, &auth, &id).await?)))
}

/// The evidence pack as a file: the stored bytes, whose SHA-256 is the
/// dispute's `evidence_sha256` (also sent as `x-evidence-sha256`).
pub fn evidence_file(id: DisputeId, evidence: String, sha256: &str) -> ApiResult<Response> {
    let mut r = evidence.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let disposition = format!("attachment; filename=\"dispute-{id}-evidence.json\"");
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    h.insert(
        "x-evidence-sha256",
        HeaderValue::from_str(sha256).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(r)
}

/// Reads and serves a dispute's evidence pack.
pub async fn serve_evidence(state: &AppState, account: AccountId, id: DisputeId) -> ApiResult<Response> {
    let (evidence, sha256) =
        state
            .store
            .dispute_evidence(account, id)
            .await?
            .ok_or_else(|| ApiError::NotFound {
                kind: "dispute",
                id: id.to_string(),
            })?;
    evidence_file(id, evidence, &sha256)
}

/// The dispute's evidence pack, fixed when it opened: the outcome and its
/// policy, the task's input, output and transcript, every receipt event
/// with its verdicts, signals and inputs hash, the rating and the ledger
/// transfers. Its SHA-256 is `x-evidence-sha256` and the dispute's
/// `evidence_sha256`.
#[utoipa::path(
    get,
    path = "/v1/disputes/{id}/evidence",
    tag = "disputes",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The dispute's id, `dsp_…`")),
    responses(
        (status = 200, content_type = "application/json", description = "The evidence pack, as a download"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such dispute in this account", body = ErrorBody),
    )
)]
pub async fn get_evidence(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let dispute = own_dispute(&state, &auth, &id).await?;
    serve_evidence(&state, auth.account_id, dispute.id).await
}
