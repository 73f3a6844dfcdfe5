//! `POST /webhooks/stripe`: Stripe's events, verified on the raw body and
//! applied exactly once. Account status and invoices follow them.
//!
//! A bad or missing `Stripe-Signature` answers 400 and stores nothing; so
//! does a body over the limit (413, as on `/v1`). A verified event holding
//! a NUL character in any string is refused (422 naming the field), since
//! Postgres could not store it. A verified event is recorded by id in the transaction of its effect, so
//! a redelivery answers 200 `duplicate` and changes nothing. Types we do
//! not act on answer 200 `ignored` and are counted.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use bounty_billing::stripe_events::{self, BadEvent, EventReceipt};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{RawBody, nul_error};
use crate::state::AppState;

/// Stripe's signature tolerance.
pub const TOLERANCE_SECS: i64 = 300;

/// What happened to a delivered event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookOut {
    /// `handled`, `ignored` or `duplicate`.
    pub status: &'static str,
}

/// Receives a Stripe event.
#[utoipa::path(
    post,
    path = "/webhooks/stripe",
    tag = "billing",
    request_body(content = Object, description = "A Stripe event, signed in `Stripe-Signature`"),
    responses(
        (status = 200, body = WebhookOut),
        (status = 400, description = "`invalid_signature` or `malformed_json`; nothing is stored", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a string of the event holds a NUL character (`param` names it)", body = ErrorBody),
        (status = 503, description = "Stripe webhooks are not configured (`stripe.webhook_secrets`)", body = ErrorBody),
    )
)]
pub async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<WebhookOut>> {
    if state.stripe_webhook_secrets.is_empty() {
        return Err(ApiError::WebhooksNotConfigured);
    }
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let secrets: Vec<&str> = state
        .stripe_webhook_secrets
        .iter()
        .map(|s| s.expose_secret())
        .collect();
    let now = state.store.now().timestamp();
    if let Err(e) = bounty_billing::signature::verify(header, &body, &secrets, now, TOLERANCE_SECS) {
        tracing::warn!(code = e.code(), "Stripe webhook refused: bad signature");
        return Err(ApiError::InvalidSignature(e.to_string()));
    }
    let event: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    if let Some(field) = bounty_core::text::nul_path(&event) {
        return Err(nul_error(field));
    }
    let event = stripe_events::parse(&event).map_err(|e| {
        let (BadEvent::Missing(field) | BadEvent::Invalid(field)) = e;
        ApiError::InvalidRequest {
            message: e.to_string(),
            param: Some(field.to_owned()),
        }
    })?;
    let status = match stripe_events::receive(&state.store, &event).await? {
        EventReceipt::Handled => "handled",
        EventReceipt::Ignored => "ignored",
        EventReceipt::Duplicate => "duplicate",
    };
    tracing::info!(event.id = %event.id, event.type = %event.kind, status, "Stripe event received");
    Ok(Json(WebhookOut { status }))
}
