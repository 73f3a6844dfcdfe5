//! `/api-keys`: list the account's keys with when each was last used,
//! create one (its secret shown once, on the page the creating POST
//! answers, never stored), and revoke one. Creating and revoking are for
//! owners; members see the list.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use bounty_core::{ApiKeyId, ApiKeyMode, ApiKeySecret, KeyName, PageLimit};
use serde::Deserialize;

use crate::auth::{CurrentUser, SignedForm};
use crate::error::WebError;
use crate::format::{time, time_or_dash};
use crate::layout::{Chrome, render};
use crate::pages::login::NoFields;
use crate::pages::{WebQuery, present};
use crate::state::WebState;

/// Keys per page.
const PAGE_SIZE: u32 = 50;

struct KeyRow {
    id: String,
    name: String,
    mode: &'static str,
    prefix: String,
    created: String,
    last_used: String,
    revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "api_keys.html")]
struct KeysPage {
    chrome: Chrome,
    /// The session's CSRF secret, for the create and revoke forms.
    csrf: String,
    owner: bool,
    keys: Vec<KeyRow>,
    next_href: Option<String>,
    error: Option<String>,
    name: String,
}

#[derive(Template)]
#[template(path = "api_key_created.html")]
struct CreatedPage {
    chrome: Chrome,
    name: String,
    mode: &'static str,
    secret: String,
}

#[derive(Deserialize)]
pub(crate) struct KeysQuery {
    cursor: Option<String>,
}

async fn keys_page(
    state: &WebState,
    user: &CurrentUser,
    cursor: Option<ApiKeyId>,
    error: Option<String>,
    name: String,
) -> Result<Response, WebError> {
    let limit = PageLimit::new(PAGE_SIZE).map_err(|e| WebError::Internal(e.to_string()))?;
    let page = state.store.list_api_keys(user.account(), limit, cursor).await?;
    let keys = page
        .items
        .into_iter()
        .map(|k| KeyRow {
            id: k.id.to_string(),
            name: k.name,
            mode: k.mode.as_str(),
            prefix: k.prefix,
            created: time(k.created_at),
            last_used: time_or_dash(k.last_used_at),
            revoked: k.revoked_at.map(time),
        })
        .collect();
    let page = KeysPage {
        chrome: Chrome::for_user(user, "API keys", "api-keys"),
        csrf: user.session.csrf_secret.clone(),
        owner: user.require_owner().is_ok(),
        keys,
        next_href: page.next_cursor.map(|c| format!("/api-keys?cursor={c}")),
        error,
        name,
    };
    render(&page)
}

/// `GET /api-keys`.
pub(crate) async fn list(
    State(state): State<WebState>,
    user: CurrentUser,
    WebQuery(q): WebQuery<KeysQuery>,
) -> Result<Response, WebError> {
    let cursor = present(&q.cursor)
        .map(|c| {
            c.parse::<ApiKeyId>()
                .map_err(|_| WebError::BadRequest("`cursor` is not a key id.".into()))
        })
        .transpose()?;
    keys_page(&state, &user, cursor, None, String::new()).await
}

#[derive(Deserialize)]
pub(crate) struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mode: String,
}

/// `POST /api-keys`: creates a key and shows its secret, once.
pub(crate) async fn create(
    State(state): State<WebState>,
    SignedForm { user, form }: SignedForm<CreateForm>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let name = match KeyName::parse(&form.name) {
        Ok(n) => n,
        Err(e) => {
            let mut r = keys_page(&state, &user, None, Some(format!("Name: {e}.")), form.name).await?;
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(r);
        }
    };
    let mode = match form.mode.as_str() {
        "test" => ApiKeyMode::Test,
        "live" | "" => ApiKeyMode::Live,
        _ => return Err(WebError::BadRequest("`mode` must be live or test.".into())),
    };
    let key = ApiKeySecret::generate(mode);
    state
        .store
        .create_api_key(user.account(), &name, &key)
        .await?
        .ok_or(WebError::NotFound)?;
    let page = CreatedPage {
        chrome: Chrome::for_user(&user, "API key created", "api-keys"),
        name: name.as_str().to_owned(),
        mode: mode.as_str(),
        secret: key.secret.expose().to_owned(),
    };
    let mut r = render(&page)?;
    // The secret is on this page only: keep it out of every cache.
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `POST /api-keys/{id}/revoke`: revokes one of the account's keys.
pub(crate) async fn revoke(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user, .. }: SignedForm<NoFields>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let id: ApiKeyId = id.parse().map_err(|_| WebError::NotFound)?;
    state
        .store
        .revoke_api_key(user.account(), id)
        .await?
        .ok_or(WebError::NotFound)?;
    tracing::info!(account.id = %user.account(), key.id = %id, "dashboard: API key revoked");
    Ok(Redirect::to("/api-keys").into_response())
}
