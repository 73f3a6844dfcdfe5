//! A customer's disputes in the dashboard: `POST /tasks/{id}/dispute`
//! contests the task's charge (owners only), and
//! `GET /disputes/{id}/evidence.json` downloads the evidence pack the
//! operator decides on, byte for byte, with its SHA-256. The dispute's
//! status, and the operator's reason, show on the task's page.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use bounty_billing::disputes::{DisputeError, DisputeRequest, MAX_COMMENT_CHARS, open_dispute};
use bounty_core::dispute::DisputeReason;
use bounty_core::{Actor, DisputeId, TaskId};
use serde::Deserialize;

use crate::auth::{CurrentUser, SignedForm};
use crate::error::WebError;
use crate::state::WebState;

#[derive(Deserialize)]
pub(crate) struct DisputeForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    comment: String,
}

/// What a refused dispute says on a page.
pub(crate) fn refusal(e: DisputeError) -> WebError {
    match e {
        DisputeError::OutcomeNotFound | DisputeError::NotFound => WebError::NotFound,
        DisputeError::Store(e) => e.into(),
        e @ (DisputeError::NotDisputable(_)
        | DisputeError::AlreadyDisputed(_)
        | DisputeError::AlreadyDecided(_)
        | DisputeError::ReasonRequired) => WebError::BadRequest(format!("{}.", capitalized(&e.to_string()))),
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// `POST /tasks/{id}/dispute`: contests the task's charge.
pub(crate) async fn create(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user, form }: SignedForm<DisputeForm>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let task: TaskId = id.parse().map_err(|_| WebError::NotFound)?;
    let account = user.account();
    let outcome = state
        .store
        .outcome_of_task(account, task)
        .await?
        .filter(|o| o.mode == user.mode())
        .ok_or(WebError::NotFound)?;
    let reason: DisputeReason = form
        .reason
        .parse()
        .map_err(|e: bounty_core::stored_enum::BadName| WebError::BadRequest(format!("Reason: {e}.")))?;
    let comment = Some(form.comment.trim()).filter(|c| !c.is_empty());
    if comment.is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS) {
        return Err(WebError::BadRequest(format!(
            "The comment may be at most {MAX_COMMENT_CHARS} characters."
        )));
    }
    let request = DisputeRequest {
        reason,
        comment,
        actor: Actor::User(user.session.user_id),
    };
    let dispute = open_dispute(&state.store, account, outcome.id, &request)
        .await
        .map_err(refusal)?;
    tracing::info!(dispute.id = %dispute.id, outcome.id = %outcome.id, status = %dispute.status, "dashboard: dispute opened");
    Ok(Redirect::to(&format!("/tasks/{task}#dispute")).into_response())
}

/// The account's dispute `id`'s stored evidence pack, as a download.
pub(crate) async fn evidence_download(
    state: &WebState,
    account: bounty_core::AccountId,
    id: DisputeId,
) -> Result<Response, WebError> {
    let (evidence, sha256) = state
        .store
        .dispute_evidence(account, id)
        .await?
        .ok_or(WebError::NotFound)?;
    let mut r = evidence.into_response();
    let h = r.headers_mut();
    let value = |v: &str| HeaderValue::from_str(v).map_err(|e| WebError::Internal(e.to_string()));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(
        header::CONTENT_DISPOSITION,
        value(&format!("attachment; filename=\"dispute-{id}-evidence.json\""))?,
    );
    h.insert("x-evidence-sha256", value(&sha256)?);
    Ok(r)
}

/// `GET /disputes/{id}/evidence.json`: the dispute's evidence pack.
pub(crate) async fn evidence(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id: DisputeId = id.parse().map_err(|_| WebError::NotFound)?;
    let account = user.account();
    state
        .store
        .get_dispute(account, id)
        .await?
        .filter(|d| d.mode == user.mode())
        .ok_or(WebError::NotFound)?;
    evidence_download(&state, account, id).await
}
