//! `/v1/integrations`: the account's helpdesk integrations. Each names the
//! agent its tickets go to, has its own inbound URL
//! (`/webhooks/in/{id}`), an inbound signing secret, and optionally
//! reply-back settings.
//!
//! Secrets (the inbound secret, vendor credentials, the Standard Webhooks
//! reply secret) are sealed with AES-256-GCM under the configured master
//! keys, bound to the account and integration, before they reach the
//! database. A secret is shown once: in the answer that created it (the
//! create, or a rotation), never again.
//!
//! An integration's `status` is `active`, `disabled` (its reply endpoint
//! is gone), or `broken` with `reason: "secret_unreadable"` when its
//! secret no longer opens under the configured master keys
//! ([`bounty_integrations::status`]); a delivery to a broken integration
//! answers 503 `secret_unreadable`, never a 500.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bounty_core::{AccountId, DeliveryId, IntegrationId, IntegrationName, SealPurpose};
use bounty_integrations::{IntegrationKind, Keyring, ReplySettingsIn, check_given_secret, generate_secret};
use bounty_store::{DeliveryRecord, Integration, NewIntegration};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::pagination::ListParams;
use crate::routes::path_id;
use crate::state::AppState;

/// Longest rotation grace period, in hours.
const MAX_GRACE_HOURS: u32 = 168;

/// A new integration.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationIn {
    /// `zendesk`, `intercom`, `chatwoot` or `standard`.
    pub kind: String,
    /// A label: 1-100 characters once trimmed, no control characters.
    pub name: String,
    /// The agent tickets go to: its id (`agt_…`) or name.
    pub agent: String,
    /// The inbound signing secret, when the helpdesk made it (Zendesk's
    /// webhook secret, Intercom's client secret, Chatwoot's webhook
    /// secret). Without it Bounty generates one, returned once.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub secret: Option<secrecy::SecretString>,
    /// Where replies go. Zendesk: `base_url`, `email`, `api_token`.
    /// Intercom: `access_token`, `admin_id` (`base_url` optional).
    /// Chatwoot: `base_url`, `api_access_token`, `account_id`. Standard:
    /// `callback_url`, and `secret` when the receiver made it (else Bounty
    /// signs replies with a secret it returns once).
    /// Without it nothing is posted back.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub reply: Option<ReplySettingsIn>,
}

/// Rotation of the inbound secret.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    /// The new secret, when the helpdesk made it; else one is generated.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub secret: Option<secrecy::SecretString>,
    /// How long the old secret is still accepted, 0-168 hours (default 24).
    #[serde(default)]
    pub grace_hours: Option<u32>,
}

/// An integration.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntegrationOut {
    pub id: IntegrationId,
    pub kind: String,
    pub name: String,
    pub agent_id: bounty_core::AgentId,
    /// Where the helpdesk sends its webhooks, relative to this server.
    pub inbound_url: String,
    /// `active`; `disabled` when the reply endpoint answered 410 Gone
    /// (deliveries are still taken); `broken` when no delivery can be
    /// verified, because the inbound secret does not open under the
    /// configured master keys.
    pub status: String,
    /// Why the status is not `active`: `secret_unreadable` or
    /// `secrets_not_configured` when broken, the reply endpoint's answer
    /// when disabled.
    pub reason: Option<String>,
    /// Why the reply endpoint was disabled, when it was.
    pub disabled_reason: Option<String>,
    /// Where replies go (no credentials), or `null` when none are posted.
    pub reply_url: Option<String>,
    /// Deliveries refused for their signature, and the last one's code.
    pub rejected_deliveries: i64,
    pub last_rejected_at: Option<DateTime<Utc>>,
    pub last_rejected_code: Option<String>,
    /// Until when the previous secret is accepted, during a rotation.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// `false` when made through a `bk_test_` key: its tickets become
    /// test-mode tasks, never billed live.
    pub livemode: bool,
    /// The inbound signing secret: only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Standard Webhooks replies are signed with this: only on create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_secret: Option<String>,
}

/// One page of integrations, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntegrationList {
    pub data: Vec<IntegrationOut>,
    pub next_cursor: Option<String>,
}

/// An accepted delivery.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryOut {
    pub id: DeliveryId,
    /// `created`, `customer_replied`, `solved`, `reopened`, `satisfaction_rated`.
    pub event: String,
    pub ticket: String,
    /// `task_created`, `task_exists`, `signal_applied`,
    /// `signal_not_applicable`, `recorded` or `message_added`.
    pub result: String,
    pub reason: Option<String>,
    pub task_id: Option<bounty_core::TaskId>,
    pub received_at: DateTime<Utc>,
}

/// One page of deliveries, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    pub data: Vec<DeliveryOut>,
    pub next_cursor: Option<String>,
}

impl From<DeliveryRecord> for DeliveryOut {
    fn from(d: DeliveryRecord) -> Self {
        DeliveryOut {
            id: d.id,
            event: d.event.to_string(),
            ticket: d.external_ticket,
            result: d.result.as_str().to_owned(),
            reason: d.reason,
            task_id: d.task_id,
            received_at: d.received_at,
        }
    }
}

/// The configured master keys, or 503 naming the setting.
pub(crate) fn keyring(state: &AppState) -> Result<&Keyring, ApiError> {
    state.keyring.as_deref().ok_or(ApiError::SecretsNotConfigured)
}

/// Seals `plaintext` as the `purpose` secret of integration `id`.
fn seal(
    keys: &Keyring,
    account: AccountId,
    id: IntegrationId,
    purpose: SealPurpose,
    plaintext: &[u8],
) -> Result<String, ApiError> {
    keys.seal_for(account, id, purpose, plaintext)
        .map_err(|e| ApiError::Internal(format!("sealing a secret: {e}")))
}

fn out(i: Integration, state: &AppState) -> IntegrationOut {
    let reply_url = bounty_integrations::status::reply_url(state.keyring.as_deref(), &i);
    let status = bounty_integrations::status::status(&i, state.keyring.as_deref());
    IntegrationOut {
        inbound_url: format!("/webhooks/in/{}", i.id),
        id: i.id,
        kind: i.kind.as_str().to_owned(),
        name: i.name,
        agent_id: i.agent_id,
        status: status.as_str().to_owned(),
        reason: status.reason(),
        disabled_reason: i.disabled_reason,
        reply_url,
        rejected_deliveries: i.rejected_count,
        last_rejected_at: i.last_rejected_at,
        last_rejected_code: i.last_rejected_code,
        previous_secret_expires_at: i.previous_secret_expires_at,
        created_at: i.created_at,
        livemode: i.mode.livemode(),
        secret: None,
        reply_secret: None,
    }
}

fn inbound_secret(kind: IntegrationKind, given: Option<&secrecy::SecretString>) -> Result<String, ApiError> {
    match given {
        Some(s) => check_given_secret(kind, s.expose_secret()).map_err(|m| ApiError::validation("secret", m)),
        None => generate_secret(kind)
            .map(|s| s.expose_secret().to_owned())
            .map_err(|e| ApiError::Internal(format!("generating a secret: {e}"))),
    }
}

/// Creates an integration. The answer carries the inbound secret (and, for
/// Standard Webhooks replies, the reply secret) once.
#[utoipa::path(
    post,
    path = "/v1/integrations",
    tag = "integrations",
    security(("api_key" = [])),
    request_body = IntegrationIn,
    responses(
        (status = 201, body = IntegrationOut),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 422, description = "`unknown_agent`, or `validation_failed` naming the field (`kind`, `reply.email`, …)", body = ErrorBody),
        (status = 503, description = "`secrets_not_configured`: no master key to seal secrets with", body = ErrorBody),
    )
)]
pub async fn create_integration(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<IntegrationIn>,
) -> ApiResult<(StatusCode, Json<IntegrationOut>)> {
    let keys = keyring(&state)?;
    let kind: IntegrationKind =
        body.kind
            .parse()
            .map_err(|e: bounty_integrations::kind::UnknownIntegrationKind| {
                ApiError::validation("kind", e.to_string())
            })?;
    let name = IntegrationName::parse(&body.name).map_err(|e| ApiError::validation("name", e.to_string()))?;
    let agent = bounty_agents::submit::resolve_agent(&state.store, auth.account_id, &body.agent)
        .await?
        .ok_or_else(|| ApiError::UnknownAgent {
            agent: body.agent.clone(),
        })?;
    let secret = inbound_secret(kind, body.secret.as_ref())?;
    // A Standard reply secret is generated (and shown once) unless given.
    let reply_secret = match (&body.reply, kind) {
        (Some(reply), IntegrationKind::Standard) if reply.secret.is_none() => {
            Some(inbound_secret(kind, None)?)
        }
        _ => None,
    };
    let reply = body
        .reply
        .as_ref()
        .map(|r| r.validate(kind, reply_secret.as_deref().unwrap_or_default()))
        .transpose()
        .map_err(|e| ApiError::validation(e.field, e.problem))?;
    let id = IntegrationId::new();
    let reply_sealed = match &reply {
        Some(settings) => {
            let json = serde_json::to_vec(settings).map_err(|e| ApiError::Internal(e.to_string()))?;
            Some(seal(keys, auth.account_id, id, SealPurpose::Reply, &json)?)
        }
        None => None,
    };
    let new = NewIntegration {
        id,
        kind,
        name,
        agent_id: agent.id,
        secret_sealed: seal(keys, auth.account_id, id, SealPurpose::Inbound, secret.as_bytes())?,
        reply_sealed,
        mode: auth.mode,
    };
    let created = state.store.create_integration(auth.account_id, &new).await?;
    tracing::info!(integration.id = %created.id, kind = kind.as_str(), "integration created");
    let mut shown = out(created, &state);
    shown.secret = Some(secret);
    shown.reply_secret = reply_secret;
    Ok((StatusCode::CREATED, Json(shown)))
}

/// Lists the account's integrations, newest first.
#[utoipa::path(
    get,
    path = "/v1/integrations",
    tag = "integrations",
    security(("api_key" = [])),
    params(ListParams),
    responses(
        (status = 200, body = IntegrationList),
        (status = 400, description = "A bad `limit` or `cursor`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn list_integrations(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<IntegrationList>> {
    let (limit, cursor) = params.parse::<IntegrationId>()?;
    let page = state
        .store
        .list_integrations(auth.account_id, limit, cursor)
        .await?;
    Ok(Json(IntegrationList {
        data: page.items.into_iter().map(|i| out(i, &state)).collect(),
        next_cursor: page.next_cursor,
    }))
}

async fn find(state: &AppState, auth: &Auth, id: &str) -> Result<Integration, ApiError> {
    let parsed: IntegrationId = path_id("integration", id)?;
    state
        .store
        .get_integration(auth.account_id, parsed)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            kind: "integration",
            id: id.to_owned(),
        })
}

/// Shows one integration (never its secrets).
#[utoipa::path(
    get,
    path = "/v1/integrations/{id}",
    tag = "integrations",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The integration's id, `int_…`")),
    responses(
        (status = 200, body = IntegrationOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such integration in this account", body = ErrorBody),
    )
)]
pub async fn get_integration(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<IntegrationOut>> {
    let integration = find(&state, &auth, &id).await?;
    Ok(Json(out(integration, &state)))
}

/// Deletes an integration: its inbound URL answers 404 from now on.
#[utoipa::path(
    delete,
    path = "/v1/integrations/{id}",
    tag = "integrations",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The integration's id, `int_…`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such integration in this account", body = ErrorBody),
    )
)]
pub async fn delete_integration(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let parsed: IntegrationId = path_id("integration", &id)?;
    if state.store.delete_integration(auth.account_id, parsed).await? {
        tracing::info!(integration.id = %parsed, "integration deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound {
            kind: "integration",
            id,
        })
    }
}

/// Rotates the inbound secret. The old one is still accepted for
/// `grace_hours` (default 24), so the helpdesk can be switched over
/// without losing a delivery. The new secret is in this answer only.
#[utoipa::path(
    post,
    path = "/v1/integrations/{id}/rotate-secret",
    tag = "integrations",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The integration's id, `int_…`")),
    request_body = RotateIn,
    responses(
        (status = 200, body = IntegrationOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such integration in this account", body = ErrorBody),
        (status = 422, description = "`validation_failed` naming `secret` or `grace_hours`", body = ErrorBody),
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RotateIn>,
) -> ApiResult<Json<IntegrationOut>> {
    let keys = keyring(&state)?;
    let integration = find(&state, &auth, &id).await?;
    let kind = integration.kind;
    let grace = body.grace_hours.unwrap_or(24);
    if grace > MAX_GRACE_HOURS {
        return Err(ApiError::validation("grace_hours", "must be 0 to 168"));
    }
    let secret = inbound_secret(kind, body.secret.as_ref())?;
    let sealed = seal(
        keys,
        integration.account_id,
        integration.id,
        SealPurpose::Inbound,
        secret.as_bytes(),
    )?;
    let until = state.store.now() + chrono::Duration::hours(i64::from(grace));
    let rotated = state
        .store
        .rotate_integration_secret(auth.account_id, integration.id, &sealed, until)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            kind: "integration",
            id: id.clone(),
        })?;
    tracing::info!(integration.id = %rotated.id, grace_hours = grace, "integration secret rotated");
    let mut shown = out(rotated, &state);
    shown.secret = Some(secret);
    Ok(Json(shown))
}

/// What re-enabling did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnabledOut {
    pub integration: IntegrationOut,
    /// Replies that were parked while it was off, queued again oldest first.
    pub replies_queued: u64,
    /// The helpdesk answered the test ping (`false` when it was on already,
    /// has no reply-back, or the ping was skipped).
    pub pinged: bool,
}

/// `POST /v1/integrations/{id}/enable`'s optional body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnableIn {
    /// Ping the helpdesk first and stay off if it does not answer 2xx
    /// (default `true`).
    #[serde(default = "yes")]
    pub ping: bool,
}

fn yes() -> bool {
    true
}

/// Turns a disabled integration's replies back on (after a 410 from the
/// helpdesk, say) and sends the replies parked meanwhile, oldest first.
/// First it pings the helpdesk with the integration's reply credentials
/// (Zendesk `GET /api/v2/users/me.json`, Intercom `GET /me`, Chatwoot
/// `GET /api/v1/accounts/{id}/conversations/meta`, a signed `ping` to a
/// Standard Webhooks callback); if that fails it stays off (422
/// `integration_ping_failed`), unless the body is `{"ping": false}`.
/// Enabling one that is on changes nothing.
#[utoipa::path(
    post,
    path = "/v1/integrations/{id}/enable",
    tag = "integrations",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The integration's id, `int_…`")),
    request_body(content = Option<EnableIn>, description = "Optional: `{\"ping\": false}` skips the test ping"),
    responses(
        (status = 200, body = EnabledOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such integration in this account", body = ErrorBody),
        (status = 422, description = "`integration_ping_failed`: the helpdesk did not answer the test ping", body = ErrorBody),
    )
)]
pub async fn enable_integration(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<EnabledOut>> {
    let options: EnableIn = if body.iter().all(u8::is_ascii_whitespace) {
        EnableIn { ping: true }
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::InvalidRequest {
            message: format!("the body must be {{\"ping\": true|false}} or empty: {e}"),
            param: Some("ping".to_owned()),
        })?
    };
    let integration = find(&state, &auth, &id).await?;
    let http = bounty_integrations::reply::http_client()
        .map_err(|e| ApiError::Internal(format!("cannot build the helpdesk HTTP client: {e}")))?;
    let not_found = || ApiError::NotFound {
        kind: "integration",
        id: id.clone(),
    };
    use bounty_integrations::reenable::EnableError;
    let enabled = bounty_integrations::reenable::enable_integration(
        &state.store,
        state.keyring.as_deref(),
        &http,
        auth.account_id,
        integration.id,
        options.ping,
    )
    .await
    .map_err(|e| match e {
        EnableError::NotFound => not_found(),
        EnableError::PingFailed(why) => ApiError::PingFailed {
            message: why.to_string(),
        },
        EnableError::NoKeys => ApiError::SecretsNotConfigured,
        EnableError::Unreadable(_) => ApiError::SecretUnreadable {
            integration: integration.id.to_string(),
        },
        EnableError::Store(e) => e.into(),
    })?;
    let integration = find(&state, &auth, &id).await?;
    Ok(Json(EnabledOut {
        integration: out(integration, &state),
        replies_queued: enabled.replies_queued,
        pinged: enabled.pinged,
    }))
}

/// The integration's accepted deliveries, newest first, with what each did.
/// Deliveries refused for their signature are only counted, on the
/// integration.
#[utoipa::path(
    get,
    path = "/v1/integrations/{id}/deliveries",
    tag = "integrations",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The integration's id, `int_…`"), ListParams),
    responses(
        (status = 200, body = DeliveryList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such integration in this account", body = ErrorBody),
    )
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<DeliveryList>> {
    let integration = find(&state, &auth, &id).await?;
    let (limit, cursor) = params.parse::<DeliveryId>()?;
    let page = state
        .store
        .list_deliveries(auth.account_id, integration.id, limit, cursor)
        .await?;
    Ok(Json(DeliveryList {
        data: page.items.into_iter().map(DeliveryOut::from).collect(),
        next_cursor: page.next_cursor,
    }))
}
