//! `/v1/api-keys`: create, list, show and revoke the account's keys.
//!
//! The full key appears in exactly one response: the `201` of its
//! creation. Every other view shows its prefix only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bounty_core::{ApiKeyId, ApiKeyMode, ApiKeySecret, KeyName};
use bounty_store::ApiKey;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::pagination::ListParams;
use crate::state::AppState;

/// A new key's settings; every field is optional.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIn {
    /// A label, 1 to 100 characters (default `default`).
    pub name: Option<String>,
    /// `live` (default) or `test`.
    pub mode: Option<ApiKeyMode>,
}

/// An API key, without its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyOut {
    /// Its id.
    pub id: ApiKeyId,
    /// Its label.
    pub name: String,
    /// `live` or `test`.
    pub mode: ApiKeyMode,
    /// The key's first characters, to recognise it by.
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; `null` while it is active.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyOut {
    fn from(k: ApiKey) -> Self {
        ApiKeyOut {
            id: k.id,
            name: k.name,
            mode: k.mode,
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A key just created, with its secret: shown this once, never again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyCreatedOut {
    /// The key.
    #[serde(flatten)]
    pub key: ApiKeyOut,
    /// The full key. Store it now: it cannot be shown again.
    pub secret: String,
}

/// One page of keys, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyList {
    /// The keys of this page.
    pub data: Vec<ApiKeyOut>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Creates a key for the caller's account.
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "api-keys",
    security(("api_key" = [])),
    request_body(content = ApiKeyIn, description = "Optional; an empty body takes the defaults"),
    responses(
        (status = 201, body = ApiKeyCreatedOut),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 422, description = "A value is not acceptable", body = ErrorBody),
    )
)]
pub async fn create_api_key(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<ApiKeyIn>,
) -> ApiResult<(StatusCode, Json<ApiKeyCreatedOut>)> {
    let name = KeyName::parse(body.name.as_deref().unwrap_or("default"))
        .map_err(|e| ApiError::validation("name", e.to_string()))?;
    let new_key = ApiKeySecret::generate(body.mode.unwrap_or(ApiKeyMode::Live));
    let key = state
        .store
        .create_api_key(auth.account_id, &name, &new_key)
        .await?
        .ok_or_else(|| {
            ApiError::Internal(format!("account {} of a valid key is missing", auth.account_id))
        })?;
    tracing::info!(key.id = %key.id, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyCreatedOut {
            key: key.into(),
            secret: new_key.secret.expose().to_owned(),
        }),
    ))
}

/// Lists the caller's keys, revoked ones included, newest first.
#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "api-keys",
    security(("api_key" = [])),
    params(ListParams),
    responses(
        (status = 200, body = ApiKeyList),
        (status = 400, description = "A bad `limit` or `cursor`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn list_api_keys(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<ApiKeyList>> {
    let (limit, cursor) = params.parse::<ApiKeyId>()?;
    let page = state.store.list_api_keys(auth.account_id, limit, cursor).await?;
    Ok(Json(ApiKeyList {
        data: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Shows one of the caller's keys.
#[utoipa::path(
    get,
    path = "/v1/api-keys/{id}",
    tag = "api-keys",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The key's id, `key_…`")),
    responses(
        (status = 200, body = ApiKeyOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such key in this account", body = ErrorBody),
    )
)]
pub async fn get_api_key(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKeyOut>> {
    let key_id = parse_key_id(&id)?;
    let key = state.store.get_api_key(auth.account_id, key_id).await?;
    key.map(|k| Json(k.into()))
        .ok_or(ApiError::NotFound { kind: "API key", id })
}

/// Revokes one of the caller's keys; it stops working at once. Revoking a
/// revoked key changes nothing and answers the same.
#[utoipa::path(
    delete,
    path = "/v1/api-keys/{id}",
    tag = "api-keys",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The key's id, `key_…`")),
    responses(
        (status = 200, body = ApiKeyOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such key in this account", body = ErrorBody),
    )
)]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKeyOut>> {
    let key_id = parse_key_id(&id)?;
    let key = state.store.revoke_api_key(auth.account_id, key_id).await?;
    let key = key.ok_or(ApiError::NotFound { kind: "API key", id })?;
    tracing::info!(key.id = %key.id, "API key revoked");
    Ok(Json(key.into()))
}

/// A malformed id names no key of this account: 404, like a missing one.
fn parse_key_id(id: &str) -> Result<ApiKeyId, ApiError> {
    crate::routes::path_id("API key", id)
}
