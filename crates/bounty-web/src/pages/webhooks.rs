//! `GET /webhooks` and `GET /webhooks/{id}`: the account's webhook
//! endpoints in the current mode, each with its recent delivery tries;
//! an owner or member re-enables or disables one, and sends an event
//! again. Endpoints are made (with their secret, shown once) and rotated
//! through the API (`/v1/webhook-endpoints`).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use bounty_core::{EventId, PageLimit, WebhookEndpointId};
use bounty_store::webhooks::{EndpointChange, WebhookEndpoint};
use serde::Deserialize;

use crate::auth::{CurrentUser, SignedForm};
use crate::error::WebError;
use crate::format::{time, time_or_dash};
use crate::layout::{Chrome, render};
use crate::state::WebState;

struct EndpointRow {
    id: String,
    url: String,
    types: String,
    enabled: bool,
    reason: String,
    failing_since: String,
}

fn row(e: &WebhookEndpoint) -> EndpointRow {
    EndpointRow {
        id: e.id.to_string(),
        url: e.url.clone(),
        types: if e.event_types.is_empty() {
            "every event".to_owned()
        } else {
            e.event_types.join(", ")
        },
        enabled: e.enabled,
        reason: e.disabled_reason.clone().unwrap_or_default(),
        failing_since: time_or_dash(e.failing_since),
    }
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct ListPage {
    chrome: Chrome,
    endpoints: Vec<EndpointRow>,
}

struct AttemptRow {
    at: String,
    event: String,
    status: String,
    latency: i64,
    detail: String,
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct DetailPage {
    chrome: Chrome,
    endpoint: EndpointRow,
    attempts: Vec<AttemptRow>,
    can_act: bool,
    csrf: String,
    notice: String,
}

pub(crate) async fn list(State(state): State<WebState>, user: CurrentUser) -> Result<Response, WebError> {
    let page = state
        .store
        .list_webhook_endpoints(
            user.account(),
            user.mode(),
            PageLimit::new(100).unwrap_or_default(),
            None,
        )
        .await?;
    render(&ListPage {
        chrome: Chrome::for_user(&user, "Webhooks", "webhooks"),
        endpoints: page.items.iter().map(row).collect(),
    })
}

async fn find(state: &WebState, user: &CurrentUser, id: &str) -> Result<WebhookEndpoint, WebError> {
    let id: WebhookEndpointId = id.parse().map_err(|_| WebError::NotFound)?;
    state
        .store
        .get_webhook_endpoint(user.account(), user.mode(), id)
        .await?
        .ok_or(WebError::NotFound)
}

async fn detail(
    state: &WebState,
    user: &CurrentUser,
    id: &str,
    notice: String,
) -> Result<Response, WebError> {
    let e = find(state, user, id).await?;
    let attempts = state
        .store
        .webhook_attempts(user.account(), e.id, PageLimit::new(25).unwrap_or_default(), None)
        .await?
        .items
        .into_iter()
        .map(|a| AttemptRow {
            at: time(a.created_at),
            event: a.event_id.to_string(),
            status: a.status.map_or_else(|| "no answer".to_owned(), |s| s.to_string()),
            latency: a.latency_ms,
            detail: a.error.or(a.response).unwrap_or_default(),
        })
        .collect();
    render(&DetailPage {
        chrome: Chrome::for_user(user, format!("Webhook endpoint {}", e.id), "webhooks"),
        endpoint: row(&e),
        attempts,
        can_act: user.session.role != bounty_store::UserRole::Viewer,
        csrf: user.session.csrf_secret.clone(),
        notice,
    })
}

pub(crate) async fn show(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    detail(&state, &user, &id, String::new()).await
}

/// `enabled=true|false`.
#[derive(Debug, Deserialize)]
pub(crate) struct EnableForm {
    enabled: bool,
}

/// `POST /webhooks/{id}/enabled`: re-enable (clearing its failure record)
/// or disable the endpoint.
pub(crate) async fn set_enabled(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user, form }: SignedForm<EnableForm>,
) -> Result<Response, WebError> {
    let e = find(&state, &user, &id).await?;
    let change = EndpointChange {
        enabled: Some(form.enabled),
        ..EndpointChange::default()
    };
    state
        .store
        .update_webhook_endpoint(user.account(), user.mode(), e.id, &change)
        .await?;
    tracing::info!(account.id = %user.account(), webhook_endpoint.id = %e.id, enabled = form.enabled, "dashboard: webhook endpoint changed");
    Ok(Redirect::to(&format!("/webhooks/{}", e.id)).into_response())
}

/// `event=evt_…`.
#[derive(Debug, Deserialize)]
pub(crate) struct ResendForm {
    event: String,
}

/// `POST /webhooks/{id}/resend`: send an event to the endpoint again.
pub(crate) async fn resend(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user, form }: SignedForm<ResendForm>,
) -> Result<Response, WebError> {
    let e = find(&state, &user, &id).await?;
    let notice = match form.event.trim().parse::<EventId>() {
        Ok(event)
            if state
                .store
                .resend_event(user.account(), user.mode(), e.id, event)
                .await? =>
        {
            format!("Event {event} is queued to this endpoint again.")
        }
        _ => format!("{:?} is not an event of this account.", form.event.trim()),
    };
    detail(&state, &user, &id, notice).await
}
