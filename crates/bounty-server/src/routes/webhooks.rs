//! `/v1/webhook-endpoints` and `/v1/events`: where an account's events
//! are delivered, and the events themselves.
//!
//! An endpoint is a URL (http or https, reaching no loopback, private,
//! link-local or metadata address unless `webhooks.allow_private`), the
//! event types it subscribes to (none or `*`: all), and a Standard
//! Webhooks `whsec_` secret, shown once when the endpoint is made and once
//! per rotation, and sealed at rest. A rotation keeps the previous secret
//! signing beside the new one for 24 hours, so the receiver can switch
//! without missing a delivery. A key's mode picks the book: a test key
//! sees and makes test endpoints, which receive test events only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bounty_core::event::{EventType, webhook_secret_aad};
use bounty_core::{EventId, WebhookEndpointId};
use bounty_integrations::{IntegrationKind, generate_secret};
use bounty_store::webhooks::{EndpointChange, NewWebhookEndpoint, WebhookAttempt, WebhookEndpoint};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::integrations::keyring;
use crate::routes::pagination::ListParams;
use crate::routes::path_id;
use crate::state::AppState;

/// How long a rotated-out secret keeps signing.
const ROTATION_OVERLAP_HOURS: i64 = 24;
/// The longest URL accepted.
const MAX_URL_BYTES: usize = 2048;
/// The most event types one endpoint lists.
const MAX_TYPES: usize = 32;

/// A new endpoint.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointIn {
    /// Where events are POSTed: `https://…` (or `http://…`).
    pub url: String,
    /// The event types to deliver (`charge.created`, …); empty, missing
    /// or `["*"]`: every type.
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A change to an endpoint: each field given is set.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
    /// `true` re-enables an endpoint disabled by a 410 or by failing for
    /// five days; `false` disables it (its deliveries wait parked).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// An endpoint as the API shows it: never its secret, except `secret` on
/// creation and rotation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointOut {
    pub id: String,
    pub object: &'static str,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTime<Utc>>,
    pub livemode: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The `whsec_…` signing secret: only in the answer that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn out(e: WebhookEndpoint, secret: Option<String>) -> EndpointOut {
    EndpointOut {
        id: e.id.to_string(),
        object: "webhook_endpoint",
        url: e.url,
        description: e.description,
        event_types: e.event_types,
        enabled: e.enabled,
        disabled_reason: e.disabled_reason,
        failing_since: e.failing_since,
        livemode: e.mode.livemode(),
        created_at: e.created_at,
        updated_at: e.updated_at,
        secret,
    }
}

/// A page of endpoints.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointList {
    pub data: Vec<EndpointOut>,
    pub next_cursor: Option<String>,
}

/// The URL, checked: http(s), a host, no credentials, at most 2 KiB, and
/// (unless `webhooks.allow_private`) no address Bounty may not call.
async fn checked_url(state: &AppState, raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_URL_BYTES {
        return Err(ApiError::validation(
            "url",
            format!("must be 1 to {MAX_URL_BYTES} bytes"),
        ));
    }
    let url = bounty_outbound::Url::parse(raw)
        .map_err(|e| ApiError::validation("url", format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::validation(
            "url",
            format!("must be an http or https URL, not {}:", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::validation("url", "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::validation("url", "must not carry credentials"));
    }
    crate::routes::byok::public_endpoint(&state.webhooks_outbound, url.as_str(), "url").await?;
    Ok(url.to_string())
}

/// The event types, checked: each a known type or `*`; `*` alone means all.
fn checked_types(types: Vec<String>) -> Result<Vec<String>, ApiError> {
    if types.len() > MAX_TYPES {
        return Err(ApiError::validation(
            "event_types",
            format!("must list at most {MAX_TYPES} types"),
        ));
    }
    for (i, t) in types.iter().enumerate() {
        if t != "*" && t.parse::<EventType>().is_err() {
            let known: Vec<&str> = EventType::ALL.iter().map(|k| k.as_str()).collect();
            return Err(ApiError::validation(
                format!("event_types[{i}]"),
                format!(
                    "{t:?} is not an event type; use one of {} or \"*\"",
                    known.join(", ")
                ),
            ));
        }
    }
    if types.iter().any(|t| t == "*") {
        return Ok(Vec::new());
    }
    let mut types = types;
    types.sort();
    types.dedup();
    Ok(types)
}

fn checked_description(d: Option<String>) -> Result<Option<String>, ApiError> {
    match d.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty()) {
        Some(d) if d.chars().count() > 200 => Err(ApiError::validation(
            "description",
            "must be at most 200 characters",
        )),
        other => Ok(other),
    }
}

/// A fresh secret, sealed for the endpoint; the secret and its seal.
fn new_secret(state: &AppState, auth: &Auth, id: WebhookEndpointId) -> Result<(String, String), ApiError> {
    let keyring = keyring(state)?;
    let secret = generate_secret(IntegrationKind::Standard).map_err(|e| ApiError::Internal(e.to_string()))?;
    let plain = secret.expose_secret().to_owned();
    let sealed = keyring
        .seal(
            plain.as_bytes(),
            webhook_secret_aad(auth.account_id, id).as_bytes(),
        )
        .map_err(|e| ApiError::Internal(format!("sealing the secret: {e}")))?;
    Ok((plain, sealed))
}

async fn find(state: &AppState, auth: &Auth, id: &str) -> Result<WebhookEndpoint, ApiError> {
    let parsed: WebhookEndpointId = path_id("webhook endpoint", id)?;
    state
        .store
        .get_webhook_endpoint(auth.account_id, auth.mode, parsed)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            kind: "webhook endpoint",
            id: id.to_owned(),
        })
}

/// Creates an endpoint; the answer holds its secret, once.
#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints",
    tag = "webhooks",
    security(("api_key" = [])),
    request_body = EndpointIn,
    responses(
        (status = 201, body = EndpointOut, description = "Made; `secret` is shown this once"),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 409, description = "`conflict`: the account has 16 endpoints in this mode already", body = ErrorBody),
        (status = 422, description = "`validation_failed` naming `url`, `event_types[i]` or `description`; `outbound_address_refused` naming `url`", body = ErrorBody),
        (status = 503, description = "`secrets_not_configured`: no master key to seal the secret", body = ErrorBody),
    )
)]
pub async fn create_endpoint(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<EndpointIn>,
) -> ApiResult<(StatusCode, Json<EndpointOut>)> {
    keyring(&state)?;
    let url = checked_url(&state, &body.url).await?;
    let event_types = checked_types(body.event_types)?;
    let description = checked_description(body.description)?;
    let max = bounty_store::webhooks::MAX_ENDPOINTS;
    if state
        .store
        .count_webhook_endpoints(auth.account_id, auth.mode)
        .await?
        >= max
    {
        return Err(ApiError::Conflict(format!(
            "this account has {max} webhook endpoints in {} mode, the most it may have; delete one first",
            auth.mode
        )));
    }
    let id = WebhookEndpointId::new();
    let (secret, sealed) = new_secret(&state, &auth, id)?;
    let endpoint = state
        .store
        .create_webhook_endpoint(
            auth.account_id,
            &NewWebhookEndpoint {
                id,
                mode: auth.mode,
                url,
                description,
                event_types,
                secret_sealed: sealed,
            },
        )
        .await?;
    tracing::info!(webhook_endpoint.id = %id, "webhook endpoint created");
    Ok((StatusCode::CREATED, Json(out(endpoint, Some(secret)))))
}

/// The key's book's endpoints, newest first.
#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints",
    tag = "webhooks",
    security(("api_key" = [])),
    params(ListParams),
    responses(
        (status = 200, body = EndpointList),
        (status = 400, description = "A bad `limit` or `cursor`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn list_endpoints(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<EndpointList>> {
    let (limit, cursor) = params.parse::<WebhookEndpointId>()?;
    let page = state
        .store
        .list_webhook_endpoints(auth.account_id, auth.mode, limit, cursor)
        .await?;
    Ok(Json(EndpointList {
        data: page.items.into_iter().map(|e| out(e, None)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One endpoint.
#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id, `we_…`")),
    responses(
        (status = 200, body = EndpointOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this account", body = ErrorBody),
    )
)]
pub async fn get_endpoint(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<EndpointOut>> {
    Ok(Json(out(find(&state, &auth, &id).await?, None)))
}

/// Changes an endpoint. `enabled: true` re-enables one that was disabled.
#[utoipa::path(
    patch,
    path = "/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id, `we_…`")),
    request_body = EndpointPatch,
    responses(
        (status = 200, body = EndpointOut),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this account", body = ErrorBody),
        (status = 422, description = "`validation_failed` or `outbound_address_refused` naming the field", body = ErrorBody),
    )
)]
pub async fn update_endpoint(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EndpointPatch>,
) -> ApiResult<Json<EndpointOut>> {
    let current = find(&state, &auth, &id).await?;
    let change = EndpointChange {
        url: match body.url {
            Some(u) => Some(checked_url(&state, &u).await?),
            None => None,
        },
        description: match body.description {
            Some(d) => Some(checked_description(Some(d))?),
            None => None,
        },
        event_types: body.event_types.map(checked_types).transpose()?,
        enabled: body.enabled,
    };
    let endpoint = state
        .store
        .update_webhook_endpoint(auth.account_id, auth.mode, current.id, &change)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            kind: "webhook endpoint",
            id: id.clone(),
        })?;
    tracing::info!(webhook_endpoint.id = %current.id, enabled = endpoint.enabled, "webhook endpoint changed");
    Ok(Json(out(endpoint, None)))
}

/// Deletes an endpoint; its deliveries still waiting are dropped (parked).
#[utoipa::path(
    delete,
    path = "/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id, `we_…`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this account", body = ErrorBody),
    )
)]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let parsed: WebhookEndpointId = path_id("webhook endpoint", &id)?;
    if state
        .store
        .delete_webhook_endpoint(auth.account_id, auth.mode, parsed)
        .await?
    {
        tracing::info!(webhook_endpoint.id = %parsed, "webhook endpoint deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound {
            kind: "webhook endpoint",
            id,
        })
    }
}

/// Rotates the signing secret: the answer holds the new one, once. The
/// previous one keeps signing beside it for 24 hours (each delivery then
/// carries both signatures).
#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints/{id}/rotate-secret",
    tag = "webhooks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id, `we_…`")),
    responses(
        (status = 200, body = EndpointOut, description = "Rotated; `secret` is the new one, shown this once"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this account", body = ErrorBody),
        (status = 503, description = "`secrets_not_configured`", body = ErrorBody),
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<EndpointOut>> {
    let current = find(&state, &auth, &id).await?;
    let (secret, sealed) = new_secret(&state, &auth, current.id)?;
    let until = state.store.now() + chrono::Duration::hours(ROTATION_OVERLAP_HOURS);
    let endpoint = state
        .store
        .rotate_webhook_secret(auth.account_id, auth.mode, current.id, &sealed, until)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            kind: "webhook endpoint",
            id: id.clone(),
        })?;
    tracing::info!(webhook_endpoint.id = %current.id, "webhook secret rotated");
    Ok(Json(out(endpoint, Some(secret))))
}

/// One delivery try.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptOut {
    pub id: String,
    pub event_id: String,
    /// The endpoint's HTTP status; null when no answer came.
    pub status: Option<i32>,
    pub latency_ms: i64,
    /// The start of the endpoint's answer (at most 1 KiB).
    pub response: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A page of tries, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptList {
    pub data: Vec<AttemptOut>,
    pub next_cursor: Option<String>,
}

fn attempt_out(a: WebhookAttempt) -> AttemptOut {
    AttemptOut {
        id: a.id.to_string(),
        event_id: a.event_id.to_string(),
        status: a.status,
        latency_ms: a.latency_ms,
        response: a.response,
        error: a.error,
        created_at: a.created_at,
    }
}

/// The endpoint's delivery tries, newest first.
#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints/{id}/attempts",
    tag = "webhooks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id, `we_…`"), ListParams),
    responses(
        (status = 200, body = AttemptList),
        (status = 400, description = "A bad `limit` or `cursor`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint in this account", body = ErrorBody),
    )
)]
pub async fn list_attempts(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<AttemptList>> {
    let endpoint = find(&state, &auth, &id).await?;
    let (limit, cursor) = params.parse::<bounty_core::WebhookAttemptId>()?;
    let page = state
        .store
        .webhook_attempts(auth.account_id, endpoint.id, limit, cursor)
        .await?;
    Ok(Json(AttemptList {
        data: page.items.into_iter().map(attempt_out).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// An event to send again.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendIn {
    pub event_id: String,
}

/// Queues an event to the endpoint again, under the same `webhook-id`
/// (the receiver's dedupe key).
#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints/{id}/resend",
    tag = "webhooks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The endpoint's id, `we_…`")),
    request_body = ResendIn,
    responses(
        (status = 202, description = "Queued"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such endpoint or event in this account", body = ErrorBody),
    )
)]
pub async fn resend(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ResendIn>,
) -> ApiResult<StatusCode> {
    let endpoint = find(&state, &auth, &id).await?;
    let event: EventId = path_id("event", &body.event_id)?;
    if state
        .store
        .resend_event(auth.account_id, auth.mode, endpoint.id, event)
        .await?
    {
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(ApiError::NotFound {
            kind: "event",
            id: body.event_id,
        })
    }
}

/// `GET /v1/events` parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// One event type only.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A page of events, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventList {
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<bounty_core::event::Event>,
    pub next_cursor: Option<String>,
}

/// The key's book's events of the last 30 days, newest first: what an
/// endpoint received, to catch up after an outage.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "webhooks",
    security(("api_key" = [])),
    params(EventParams),
    responses(
        (status = 200, body = EventList),
        (status = 400, description = "A bad `type`, `limit` or `cursor`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn list_events(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<EventParams>,
) -> ApiResult<Json<EventList>> {
    let (limit, cursor) = ListParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .parse::<EventId>()?;
    let kind = params
        .kind
        .map(|k| {
            k.parse::<EventType>().map_err(|e| ApiError::InvalidRequest {
                message: format!("`type` {e}"),
                param: Some("type".to_owned()),
            })
        })
        .transpose()?;
    let page = state
        .store
        .list_events(auth.account_id, auth.mode, kind, limit, cursor)
        .await?;
    Ok(Json(EventList {
        data: page.items.iter().map(|e| e.to_event()).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One event.
#[utoipa::path(
    get,
    path = "/v1/events/{id}",
    tag = "webhooks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The event's id, `evt_…`")),
    responses(
        (status = 200, body = Object),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such event in this account", body = ErrorBody),
    )
)]
pub async fn get_event(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<bounty_core::event::Event>> {
    let parsed: EventId = path_id("event", &id)?;
    let event = state
        .store
        .get_event(auth.account_id, Some(auth.mode), parsed)
        .await?
        .ok_or(ApiError::NotFound { kind: "event", id })?;
    Ok(Json(event.to_event()))
}
