//! `POST /webhooks/in/{integration_id}`: a helpdesk's webhook.
//!
//! In order: the integration named by the URL (404 if none), its sealed
//! secrets opened (503 `secret_unreadable` when the master key that sealed
//! them is no longer configured: the integration is `broken`), the signature verified on the raw body bytes (401 and
//! nothing stored but a counter on the integration if it fails), the body
//! parsed into a ticket event (202 `ignored` for event types Bounty does
//! not act on), then handed to [`bounty_integrations::intake::take`],
//! which records and applies it exactly once: a new ticket becomes a task
//! (202), a solved/reopened/satisfaction event becomes a signal for the
//! ticket's outcome (200). A duplicate or replay answers 200 with the
//! first answer and does nothing again. This module only renders the
//! typed [`IntakeResult`] as JSON and a status code.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bounty_core::{IntegrationId, Timestamp};
use bounty_integrations::Zeroizing;
use bounty_integrations::intake::{self, Answer, IntakeError, IntakeResult, VerifiedDelivery};
use bounty_integrations::{Parsed, SignatureError, Verified};
use bounty_store::Integration;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::RawBody;
use crate::routes::integrations::keyring;
use crate::routes::path_id;
use crate::state::AppState;

/// axum's headers as the verifier reads them.
struct HeaderView<'a>(&'a HeaderMap);

impl bounty_integrations::Headers for HeaderView<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Receives a helpdesk webhook for one integration.
#[utoipa::path(
    post,
    path = "/webhooks/in/{integration_id}",
    tag = "integrations",
    params(("integration_id" = String, Path, description = "The integration's id, `int_…`")),
    request_body(content = Object, description = "The vendor's webhook payload, signed the vendor's way"),
    responses(
        (status = 200, description = "A signal applied or recorded, or a duplicate (the first answer again)", body = Object),
        (status = 202, description = "A new ticket queued as a task, or an event type that is `ignored`", body = Object),
        (status = 400, description = "`invalid_payload`: verified, but not a payload of this vendor (`param` names the field)", body = ErrorBody),
        (status = 401, description = "`invalid_signature`: nothing is stored", body = ErrorBody),
        (status = 402, description = "`budget_exhausted` or `account_suspended`: nothing is stored, the helpdesk may retry", body = ErrorBody),
        (status = 404, description = "No such integration", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 503, description = "`secrets_not_configured`, or `secret_unreadable`: the integration is broken (its secret does not open under the configured master keys)", body = ErrorBody),
    )
)]
pub async fn helpdesk_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let parsed: IntegrationId = path_id("integration", &id)?;
    let not_found = || ApiError::NotFound {
        kind: "integration",
        id: id.clone(),
    };
    // Read through the store's cache (a few seconds at most; this
    // process's own changes drop it at once).
    let mut integration = state
        .store
        .inbound_integration(parsed)
        .await?
        .ok_or_else(not_found)?;
    let now = state.store.now();
    let secrets = inbound_secrets(&state, &integration, now)?;
    let verified = match check(&integration, &headers, &body, &secrets, now) {
        Ok(verified) => verified,
        Err(refused) => {
            // The cached secret may predate a rotation made by another
            // process: the integration is read again, and the delivery
            // checked again when it changed.
            let fresh = state
                .store
                .inbound_integration_fresh(parsed)
                .await?
                .ok_or_else(not_found)?;
            let refused = match fresh == integration {
                true => refused,
                false => {
                    integration = fresh;
                    let secrets = inbound_secrets(&state, &integration, now)?;
                    match check(&integration, &headers, &body, &secrets, now) {
                        Ok(verified) => return take(&state, &integration, verified, &body).await,
                        Err(refused) => refused,
                    }
                }
            };
            return Err(refuse(&state, &integration, refused).await);
        }
    };
    take(&state, &integration, verified, &body).await
}

/// Parses a verified delivery and hands it to intake; renders the result.
async fn take(
    state: &AppState,
    integration: &Integration,
    verified: Verified,
    body: &[u8],
) -> ApiResult<Response> {
    let label = integration.kind.as_str();
    let event = match bounty_integrations::parse(integration.kind, body) {
        Ok(Parsed::Event(event)) => event,
        Ok(Parsed::Ignored { event_type, reason }) => {
            state.metrics.count_delivery(label, "ignored");
            tracing::debug!(integration.id = %integration.id, event_type, reason, "helpdesk event ignored");
            let answer = serde_json::json!({"status": "ignored", "event_type": event_type, "reason": reason});
            return Ok((StatusCode::ACCEPTED, Json(answer)).into_response());
        }
        Err(e) => {
            state.metrics.count_delivery(label, "invalid");
            return Err(ApiError::InvalidPayload {
                code: e.code(),
                message: e.to_string(),
                param: e.path().map(str::to_owned),
            });
        }
    };
    let delivery = VerifiedDelivery::new(event, &verified, body);
    let result = intake::take(&state.store, integration, delivery, state.task_max_attempts)
        .await
        .map_err(|e| match e {
            IntakeError::Refused(e) => ApiError::from(e),
            IntakeError::MissingAgent(_) => ApiError::Internal(e.to_string()),
            IntakeError::Store(e) => e.into(),
        })?;
    let label = integration.kind.as_str();
    match &result {
        IntakeResult::Duplicate { .. } => state.metrics.count_delivery(label, "duplicate"),
        IntakeResult::BudgetExhausted { .. } => {}
        accepted => {
            state.metrics.count_delivery(label, "accepted");
            let answer = accepted.answer();
            tracing::info!(
                integration.id = %integration.id,
                event = answer.as_ref().map(|a| a.event.as_str()),
                task.id = ?answer.as_ref().and_then(|a| a.task_id),
                "helpdesk delivery accepted"
            );
        }
    }
    // A new task, a conversation's new turn, or a reopen that resumed one:
    // a worker may have work now.
    if matches!(
        result,
        IntakeResult::TaskCreated { .. }
            | IntakeResult::MessageAdded { .. }
            | IntakeResult::SignalApplied { .. }
    ) {
        state.task_wake.notify_one();
    }
    let (status, body) = answer(&result)?;
    Ok((status, Json(body)).into_response())
}

/// The integration's inbound secrets, opened (see
/// [`bounty_integrations::status::open_inbound_secrets`]); 503
/// `secret_unreadable` when the current one does not open.
fn inbound_secrets(
    state: &AppState,
    integration: &Integration,
    now: Timestamp,
) -> Result<Vec<Zeroizing<Vec<u8>>>, ApiError> {
    let keys = keyring(state)?;
    bounty_integrations::status::open_inbound_secrets(keys, integration, now).map_err(|e| {
        // The key that sealed it is gone: the integration is `broken` (the
        // API shows it so), and the helpdesk keeps retrying until mended.
        tracing::error!(integration.id = %integration.id, code = e.code(), "the inbound secret does not open under the configured master keys");
        state.metrics.count_delivery(integration.kind.as_str(), "broken");
        ApiError::SecretUnreadable {
            integration: integration.id.to_string(),
        }
    })
}

/// Checks the delivery's signature with `secrets`.
fn check(
    integration: &Integration,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Zeroizing<Vec<u8>>],
    now: Timestamp,
) -> Result<Verified, SignatureError> {
    let secret_refs: Vec<&[u8]> = secrets.iter().map(|s| s.as_slice()).collect();
    bounty_integrations::verify(integration.kind, &HeaderView(headers), body, &secret_refs, now)
}

/// The answer to a delivery whose signature failed: the refusal is
/// counted on the integration, and nothing else of the delivery is kept.
async fn refuse(state: &AppState, integration: &Integration, e: SignatureError) -> ApiError {
    let label = integration.kind.as_str();
    match e {
        SignatureError::NoSecrets | SignatureError::InvalidSecret { .. } => {
            ApiError::Internal(format!("integration {} secret: {e}", integration.id))
        }
        e => {
            // No payload is logged or kept: only the code, and a counter.
            tracing::warn!(integration.id = %integration.id, kind = label, code = e.code(), "helpdesk webhook refused");
            state.metrics.count_delivery(label, "rejected");
            if let Err(stored) = state
                .store
                .record_rejected_delivery(integration.id, e.code())
                .await
            {
                return stored.into();
            }
            ApiError::WebhookSignature {
                reason: e.code(),
                header: e.header(),
            }
        }
    }
}

/// The HTTP answer of an intake result: 202 with the answer when the
/// delivery made a task, 200 with it otherwise (a duplicate answers its
/// first delivery's), 402 when the cap leaves no room.
fn answer(result: &IntakeResult) -> ApiResult<(StatusCode, serde_json::Value)> {
    if let IntakeResult::BudgetExhausted {
        cap_micros,
        committed_micros,
    } = *result
    {
        return Err(ApiError::BudgetExhausted {
            cap_micros,
            committed_micros,
        });
    }
    let Some(answer) = result.answer() else {
        return Err(ApiError::Internal(
            "an accepted delivery has no answer".to_owned(),
        ));
    };
    // A ticket that has its task already answers 200 with it: one ticket
    // is one task.
    let status = match result {
        IntakeResult::TaskCreated { .. } => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    Ok((status, body(&answer)))
}

/// The answer's JSON: `status`, `delivery_id`, `event`, `result`, and
/// `task_id` and `reason` when there are.
fn body(answer: &Answer) -> serde_json::Value {
    let mut body = serde_json::json!({
        "status": "accepted",
        "delivery_id": answer.delivery_id.to_string(),
        "event": answer.event.as_str(),
        "result": answer.result.as_str(),
    });
    if let Some(task) = answer.task_id {
        body["task_id"] = serde_json::json!(task.to_string());
    }
    if let Some(reason) = &answer.reason {
        body["reason"] = serde_json::json!(reason);
    }
    body
}

#[cfg(test)]
mod tests {
    use bounty_core::{DeliveryId, DeliveryResult, OutcomeId, OutcomeStatus, TaskId};
    use bounty_integrations::intake::DeliveryReceipt;
    use bounty_store::DeliveryRecord;

    use super::*;

    fn receipt(event: &str) -> DeliveryReceipt {
        DeliveryReceipt {
            delivery: DeliveryId::new(),
            event: event.parse().expect("a ticket event name"),
        }
    }

    #[test]
    fn a_new_task_is_202_and_everything_else_accepted_is_200() {
        let r = receipt("created");
        let task = TaskId::new();
        let (status, body) = answer(&IntakeResult::TaskCreated {
            receipt: r.clone(),
            task,
        })
        .unwrap();
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(
            body,
            serde_json::json!({
                "status": "accepted",
                "delivery_id": r.delivery.to_string(),
                "event": "created",
                "result": "task_created",
                "task_id": task.to_string(),
            })
        );
        let (status, body) = answer(&IntakeResult::TaskExists {
            receipt: r.clone(),
            task,
        })
        .unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["result"], "task_exists");
        assert_eq!(body["task_id"], task.to_string());
        assert_eq!(body["reason"], format!("the ticket already has task {task}"));

        let outcome = OutcomeId::new();
        let (status, body) = answer(&IntakeResult::SignalApplied {
            receipt: receipt("solved"),
            outcome,
            status: OutcomeStatus::Resolved,
        })
        .unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (&body["result"], &body["reason"]),
            (
                &serde_json::json!("signal_applied"),
                &serde_json::json!(format!("outcome {outcome} is now resolved"))
            )
        );
        assert!(body.get("task_id").is_none(), "{body}");
        let (_, body) = answer(&IntakeResult::Recorded {
            receipt: receipt("customer_replied"),
            why: None,
        })
        .unwrap();
        assert_eq!(body["result"], "recorded");
        assert!(body.get("reason").is_none(), "{body}");
    }

    #[test]
    fn a_duplicate_answers_its_first_delivery_and_the_cap_is_402() {
        let task = TaskId::new();
        let first = DeliveryRecord {
            id: DeliveryId::new(),
            event: bounty_core::TicketEventName::Created,
            external_ticket: "T-1".into(),
            result: DeliveryResult::TaskCreated,
            reason: None,
            task_id: Some(task),
            received_at: chrono::Utc::now(),
        };
        let (status, body) = answer(&IntakeResult::Duplicate { first: first.clone() }).unwrap();
        // The first answered 202; its duplicate answers the same body with 200.
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["delivery_id"], first.id.to_string());
        assert_eq!(body["result"], "task_created");
        assert_eq!(body["task_id"], task.to_string());
        let refused = answer(&IntakeResult::BudgetExhausted {
            cap_micros: 3,
            committed_micros: 3,
        });
        assert!(matches!(
            refused,
            Err(ApiError::BudgetExhausted {
                cap_micros: 3,
                committed_micros: 3
            })
        ));
    }
}
