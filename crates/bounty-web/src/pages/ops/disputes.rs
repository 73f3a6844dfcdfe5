//! `GET /ops/disputes`: the dispute queue (`?status=open` by default) with
//! each dispute's account, outcome, reason and comment, its evidence pack,
//! and accept and reject forms; `POST /ops/disputes/{id}/accept|reject`
//! decide through `bounty_billing::disputes` (a rejection needs a reason,
//! which the customer reads); `GET /ops/disputes/{id}/evidence.json` is the
//! same file the customer downloads.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use bounty_billing::disputes::{Decision, decide_dispute};
use bounty_core::dispute::DisputeStatus;
use bounty_core::{Actor, DisputeId, PageLimit};
use serde::Deserialize;

use crate::auth::{CurrentOperator, SignedForm};
use crate::error::WebError;
use crate::format::time;
use crate::layout::{Chrome, render};
use crate::pages::disputes::{evidence_download, refusal};
use crate::pages::{WebQuery, present};
use crate::state::WebState;

#[derive(Deserialize)]
pub(crate) struct QueueQuery {
    status: Option<String>,
}

struct DisputeRow {
    id: String,
    account: String,
    account_name: String,
    outcome: String,
    reason: String,
    comment: String,
    opened: String,
    opened_by: String,
    status: String,
    decided: String,
    open: bool,
}

#[derive(Template)]
#[template(path = "ops_disputes.html")]
struct QueuePage {
    chrome: Chrome,
    status: String,
    csrf: String,
    disputes: Vec<DisputeRow>,
}

pub(crate) async fn queue(
    State(state): State<WebState>,
    op: CurrentOperator,
    WebQuery(q): WebQuery<QueueQuery>,
) -> Result<Response, WebError> {
    let status = match present(&q.status) {
        None => Some(DisputeStatus::Open),
        Some("all") => None,
        Some(raw) => Some(
            raw.parse::<DisputeStatus>()
                .map_err(|e| WebError::BadRequest(format!("Status: {e}.")))?,
        ),
    };
    let limit = PageLimit::new(100).map_err(|e| WebError::Internal(e.to_string()))?;
    let page = state.store.admin_list_disputes(status, limit, None).await?;
    let mut disputes = Vec::with_capacity(page.items.len());
    for d in page.items {
        let account_name = state
            .store
            .get_account(d.account_id)
            .await?
            .map_or_else(|| d.account_id.to_string(), |a| a.name);
        disputes.push(DisputeRow {
            id: d.id.to_string(),
            account: d.account_id.to_string(),
            account_name,
            outcome: d.outcome_id.to_string(),
            reason: d.reason.to_string(),
            comment: d.comment.unwrap_or_default(),
            opened: time(d.created_at),
            opened_by: d.opened_by.describe(),
            status: d.status.to_string(),
            decided: match (&d.decided_by, d.decided_at) {
                (Some(by), Some(at)) => format!(
                    "by {} at {}{}",
                    by.describe(),
                    time(at),
                    d.decision_reason.map(|r| format!(": {r}")).unwrap_or_default()
                ),
                _ => String::new(),
            },
            open: d.status == DisputeStatus::Open,
        });
    }
    render(&QueuePage {
        chrome: Chrome::for_operator(&op, "Disputes", "disputes"),
        status: status.map_or("all", |s| s.as_str()).to_owned(),
        csrf: op.session.csrf_secret.clone(),
        disputes,
    })
}

#[derive(Deserialize)]
pub(crate) struct DecisionForm {
    #[serde(default)]
    reason: String,
}

async fn decide(
    state: WebState,
    id: String,
    op: CurrentOperator,
    form: DecisionForm,
    decision: Decision,
) -> Result<Response, WebError> {
    let id: DisputeId = id.parse().map_err(|_| WebError::NotFound)?;
    let account = state
        .store
        .admin_dispute_account(id)
        .await?
        .ok_or(WebError::NotFound)?;
    let email = op.session.email.as_str();
    let actor =
        Actor::operator(email).unwrap_or_else(|_| Actor::Operator(op.session.operator_id.to_string()));
    let reason = Some(form.reason.trim()).filter(|r| !r.is_empty());
    let dispute = decide_dispute(&state.store, account, id, decision, &actor, reason)
        .await
        .map_err(refusal)?;
    tracing::info!(dispute.id = %id, status = %dispute.status, "console: dispute decided");
    Ok(Redirect::to("/ops/disputes").into_response())
}

/// `POST /ops/disputes/{id}/accept`.
pub(crate) async fn accept(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user, form }: SignedForm<DecisionForm, CurrentOperator>,
) -> Result<Response, WebError> {
    decide(state, id, user, form, Decision::Accept).await
}

/// `POST /ops/disputes/{id}/reject`.
pub(crate) async fn reject(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user, form }: SignedForm<DecisionForm, CurrentOperator>,
) -> Result<Response, WebError> {
    decide(state, id, user, form, Decision::Reject).await
}

/// `GET /ops/disputes/{id}/evidence.json`.
pub(crate) async fn evidence(
    State(state): State<WebState>,
    _op: CurrentOperator,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id: DisputeId = id.parse().map_err(|_| WebError::NotFound)?;
    let account = state
        .store
        .admin_dispute_account(id)
        .await?
        .ok_or(WebError::NotFound)?;
    evidence_download(&state, account, id).await
}
