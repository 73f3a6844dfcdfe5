//! `POST /webhooks/in/{integration_id}`: a helpdesk's webhook.
//!
//! In order: the integration named by the URL (404 if none), its sealed
//! secrets opened (503 `secret_unreadable` when the master key that sealed
//! them is no longer configured: the integration is `broken`), the signature verified on the raw body bytes (401 and
//! nothing stored but a counter on the integration if it fails), the body
//! parsed into a ticket event (202 `ignored` for event types Bounty does
//! not act on), then recorded and applied exactly once: a new ticket
//! becomes a task (202), a solved/reopened/satisfaction event becomes a
//! signal for the ticket's outcome (200). A duplicate or replay answers
//! 200 with the first answer and does nothing again.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bounty_core::outcome::Signal;
use bounty_core::{IntegrationId, TaskInput};
use bounty_integrations::{IntegrationKind, Parsed, TicketEvent, TicketEventKind};
use bounty_store::{Delivery, DeliveryEffect, Intake, Integration, NewTask};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::RawBody;
use crate::routes::integrations::{aad, keyring};
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
    let integration = state
        .store
        .inbound_integration(parsed)
        .await?
        .ok_or(ApiError::NotFound {
            kind: "integration",
            id,
        })?;
    let kind: IntegrationKind = integration
        .kind
        .parse()
        .map_err(|e| ApiError::Internal(format!("stored integration kind: {e}")))?;
    let label = kind.as_str();
    let keys = keyring(&state)?;
    let now = state.store.now();
    let current = bounty_integrations::status::open_inbound(keys, &integration).map_err(|e| {
        // The key that sealed it is gone: the integration is `broken` (the
        // API shows it so), and the helpdesk keeps retrying until mended.
        tracing::error!(integration.id = %integration.id, code = e.code(), "the inbound secret does not open under the configured master keys");
        state.metrics.count_delivery(label, "broken");
        ApiError::SecretUnreadable {
            integration: integration.id.to_string(),
        }
    })?;
    let mut secrets = vec![current];
    if let (Some(previous), Some(until)) = (
        &integration.previous_secret_sealed,
        integration.previous_secret_expires_at,
    ) && until > now
    {
        match keys.open(previous, aad(&integration, "inbound").as_bytes()) {
            Ok(secret) => secrets.push(secret),
            // The current secret still verifies; only the grace is lost.
            Err(e) => {
                tracing::warn!(integration.id = %integration.id, code = e.code(), "the previous inbound secret does not open; only the current one is accepted")
            }
        }
    }
    let secret_refs: Vec<&[u8]> = secrets.iter().map(|s| s.as_slice()).collect();
    let verified = match bounty_integrations::verify(kind, &HeaderView(&headers), &body, &secret_refs, now) {
        Ok(v) => v,
        Err(
            e @ (bounty_integrations::SignatureError::NoSecrets
            | bounty_integrations::SignatureError::InvalidSecret { .. }),
        ) => {
            return Err(ApiError::Internal(format!(
                "integration {} secret: {e}",
                integration.id
            )));
        }
        Err(e) => {
            // No payload is logged or kept: only the code, and a counter.
            tracing::warn!(integration.id = %integration.id, kind = label, code = e.code(), "helpdesk webhook refused");
            state.metrics.count_delivery(label, "rejected");
            state
                .store
                .record_rejected_delivery(integration.id, e.code())
                .await?;
            return Err(ApiError::WebhookSignature {
                reason: e.code(),
                header: e.header(),
            });
        }
    };
    let event = match bounty_integrations::parse(kind, &body) {
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
    let dedupe_key = event
        .vendor_event_id
        .clone()
        .or(verified.delivery_id.clone())
        .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(&body))));
    let effect = effect(&state, &integration, kind, &event).await?;
    let delivery = Delivery {
        dedupe_key,
        event: event.kind.name().to_owned(),
        external_ticket: event.ticket.external_id.clone(),
        effect,
    };
    match state
        .store
        .intake_delivery(&integration, &delivery, bounty_billing::settle::settle_signal_in)
        .await?
    {
        Intake::New {
            response,
            task,
            task_created,
        } => {
            state.metrics.count_delivery(label, "accepted");
            tracing::info!(integration.id = %integration.id, event = %delivery.event, task.id = ?task, "helpdesk delivery accepted");
            // A ticket that has its task already answers 200 with it:
            // one ticket is one task.
            if task_created {
                state.task_wake.notify_one();
                return Ok((StatusCode::ACCEPTED, Json(response)).into_response());
            }
            Ok((StatusCode::OK, Json(response)).into_response())
        }
        Intake::Duplicate { response } => {
            state.metrics.count_delivery(label, "duplicate");
            Ok((StatusCode::OK, Json(response)).into_response())
        }
        Intake::BudgetExhausted {
            cap_micros,
            committed_micros,
        } => Err(ApiError::BudgetExhausted {
            cap_micros,
            committed_micros,
        }),
    }
}

/// What a ticket event does.
async fn effect(
    state: &AppState,
    integration: &Integration,
    kind: IntegrationKind,
    event: &TicketEvent,
) -> Result<DeliveryEffect, ApiError> {
    Ok(match &event.kind {
        TicketEventKind::Created(ticket) => {
            if state.store.account_status(integration.account_id).await?
                == Some(bounty_core::AccountStatus::Suspended)
            {
                return Err(ApiError::AccountSuspended);
            }
            let Some(agent) = state
                .store
                .get_agent(integration.account_id, integration.agent_id, None)
                .await?
            else {
                return Err(ApiError::Internal(format!(
                    "integration {} names a missing agent",
                    integration.id
                )));
            };
            let mut metadata = serde_json::Map::new();
            metadata.insert("source".into(), kind.as_str().into());
            metadata.insert("integration_id".into(), integration.id.to_string().into());
            metadata.insert("ticket_id".into(), event.ticket.external_id.clone().into());
            if let Some(url) = &event.ticket.url {
                metadata.insert("ticket_url".into(), url.clone().into());
            }
            if !ticket.tags.is_empty() {
                metadata.insert("tags".into(), ticket.tags.clone().into());
            }
            let customer = &ticket.customer;
            let clip =
                |s: &Option<String>, n: usize| s.as_ref().map(|v| v.chars().take(n).collect::<String>());
            let body = match (ticket.body.trim().is_empty(), &ticket.subject) {
                (false, _) => ticket.body.clone(),
                (true, Some(subject)) if !subject.trim().is_empty() => subject.clone(),
                _ => "(the ticket has no text)".to_owned(),
            };
            let input = TaskInput {
                subject: clip(&ticket.subject, TaskInput::MAX_SUBJECT_CHARS).unwrap_or_default(),
                body: body.chars().take(TaskInput::MAX_BODY_CHARS).collect(),
                customer: (customer.email.is_some()
                    || customer.name.is_some()
                    || customer.external_id.is_some())
                .then(|| bounty_core::task::Customer {
                    id: clip(&customer.external_id, TaskInput::MAX_CUSTOMER_FIELD_CHARS),
                    email: clip(&customer.email, TaskInput::MAX_CUSTOMER_FIELD_CHARS),
                    name: clip(&customer.name, TaskInput::MAX_CUSTOMER_FIELD_CHARS),
                }),
                metadata,
            };
            DeliveryEffect::CreateTask(Box::new(NewTask {
                agent_id: agent.id,
                agent_version: agent.current_version,
                input,
                external_ref: Some(event.ticket.external_id.clone()),
                idempotency: None,
                max_attempts: state.task_max_attempts,
                // The integration's mode: a test integration's tickets are
                // test-mode tasks.
                mode: integration.mode,
            }))
        }
        TicketEventKind::Solved => DeliveryEffect::Signal(Signal::Solved),
        TicketEventKind::Reopened => DeliveryEffect::Signal(Signal::Reopened),
        TicketEventKind::SatisfactionRated { score, .. } => {
            // 0..100 onto the 1..5 scale the verification policy reads.
            let five = 1 + (u32::from(score.percent()) * 4 + 50) / 100;
            DeliveryEffect::Signal(Signal::Csat {
                score: u8::try_from(five).unwrap_or(5),
            })
        }
        TicketEventKind::CustomerReplied { .. } => DeliveryEffect::Record,
    })
}
