//! `/v1/byok`: the account's own OpenAI-compatible endpoint and key, for
//! the models configured with `byok = true`.
//!
//! The key is sealed with the master keys before it reaches the store
//! (bound to `{account}/byok/api_key`, so a sealed key copied to another
//! account does not open), is never logged, and is never returned: the
//! answers show its last four characters. Calls on it are flagged BYOK,
//! and their cost is the customer's, not ours.
//!
//! The endpoint is the customer's, so it follows the outbound rule
//! (`bounty_outbound`): no loopback, private, link-local or metadata
//! address after DNS resolution, unless `tools.allow_private`. `PUT`
//! checks it to answer early (422 `outbound_address_refused` naming
//! `base_url`); the BYOK model client checks again at every call, on the
//! addresses it connects to, which is the guarantee.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bounty_outbound::{OutboundError, OutboundPolicy, Url};
use bounty_store::{ByokRecord, byok_sealing_aad};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::routes::integrations::keyring;
use crate::state::AppState;

/// The longest key accepted, in bytes.
const MAX_KEY_BYTES: usize = 512;

/// The account's own endpoint and key.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ByokIn {
    /// The endpoint's base URL, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The bearer key. Stored sealed; never returned.
    pub api_key: String,
}

impl std::fmt::Debug for ByokIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByokIn")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

/// What the account's BYOK settings show: never the key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ByokOut {
    pub base_url: String,
    /// The key's last four characters, as `…abcd`.
    pub key_hint: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ByokRecord> for ByokOut {
    fn from(r: ByokRecord) -> Self {
        ByokOut {
            base_url: r.base_url,
            key_hint: format!("…{}", r.key_hint),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// An http(s) URL without credentials, query or fragment (the same check
/// as a helpdesk's reply URL); trailing slashes trimmed.
fn base_url(raw: &str) -> Result<String, ApiError> {
    bounty_integrations::settings::check_url("base_url", raw)
        .map_err(|e| ApiError::validation("base_url", e.problem))
}

/// How long `PUT` waits for the endpoint's name to resolve.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Refuses an endpoint that is, or resolves to, an address Bounty may not
/// call. A name that does not resolve now, or not within
/// [`RESOLVE_TIMEOUT`], is accepted: it reaches nothing today, and the
/// BYOK client checks whatever it resolves to at each call.
/// `param` is the field the URL came in (`base_url`, `tools[0].url`).
pub(crate) async fn public_endpoint(
    outbound: &OutboundPolicy,
    url: &str,
    param: &str,
) -> Result<(), ApiError> {
    let parsed = Url::parse(url).map_err(|e| ApiError::validation(param, format!("is not a URL: {e}")))?;
    let policy = OutboundPolicy {
        timeout: RESOLVE_TIMEOUT,
        ..*outbound
    };
    match policy.check_url(&parsed).await {
        Ok(()) | Err(OutboundError::Unresolved { .. } | OutboundError::Timeout { .. }) => Ok(()),
        Err(refused @ OutboundError::Refused { .. }) => Err(ApiError::OutboundRefused {
            param: param.to_owned(),
            refusal: refused.to_string(),
        }),
        Err(other) => Err(ApiError::validation(param, format!("is not acceptable: {other}"))),
    }
}

fn api_key(raw: &str) -> Result<&str, ApiError> {
    let key = raw.trim();
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(ApiError::validation(
            "api_key",
            format!("must be 1 to {MAX_KEY_BYTES} bytes"),
        ));
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::validation(
            "api_key",
            "must not contain spaces or control characters",
        ));
    }
    Ok(key)
}

/// Sets (or replaces) the account's own endpoint and key.
#[utoipa::path(
    put,
    path = "/v1/byok",
    tag = "byok",
    security(("api_key" = [])),
    request_body = ByokIn,
    responses(
        (status = 200, body = ByokOut),
        (status = 400, description = "Malformed JSON, or an unknown or missing field", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 422, description = "`validation_failed` naming `base_url` or `api_key`; `outbound_address_refused` naming `base_url`: it is, or resolves to, a loopback, private, link-local or metadata address", body = ErrorBody),
        (status = 503, description = "`secrets_not_configured`: no master keys to seal the key with", body = ErrorBody),
    )
)]
pub async fn put_byok(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<ByokIn>,
) -> ApiResult<Json<ByokOut>> {
    let url = base_url(&body.base_url)?;
    let key = api_key(&body.api_key)?;
    public_endpoint(&state.outbound, &url, "base_url").await?;
    let keys = keyring(&state)?;
    let sealed = keys
        .seal(key.as_bytes(), byok_sealing_aad(auth.account_id).as_bytes())
        .map_err(|e| ApiError::Internal(format!("sealing a BYOK key: {e}")))?;
    let hint: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let record = state
        .store
        .set_byok(auth.account_id, &url, &sealed, &hint)
        .await?;
    tracing::info!(account.id = %auth.account_id, "BYOK key set");
    Ok(Json(record.into()))
}

/// The account's own endpoint and the key's last four characters.
#[utoipa::path(
    get,
    path = "/v1/byok",
    tag = "byok",
    security(("api_key" = [])),
    responses(
        (status = 200, body = ByokOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No key is set", body = ErrorBody),
    )
)]
pub async fn get_byok(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<ByokOut>> {
    state
        .store
        .byok(auth.account_id)
        .await?
        .map(|r| Json(r.into()))
        .ok_or(ApiError::NotFound {
            kind: "BYOK key",
            id: "byok".to_owned(),
        })
}

/// Removes the account's own key: its BYOK models then fail their tasks,
/// uncharged, until a key is set again.
#[utoipa::path(
    delete,
    path = "/v1/byok",
    tag = "byok",
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No key is set", body = ErrorBody),
    )
)]
pub async fn delete_byok(State(state): State<AppState>, auth: Auth) -> ApiResult<StatusCode> {
    if state.store.delete_byok(auth.account_id).await? {
        tracing::info!(account.id = %auth.account_id, "BYOK key removed");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound {
            kind: "BYOK key",
            id: "byok".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_plain_http_urls() {
        assert_eq!(
            base_url("https://api.example.com/v1/").unwrap(),
            "https://api.example.com/v1"
        );
        for bad in [
            "",
            "ftp://x/v1",
            "https://u:p@x/v1",
            "https://x/v1?k=1",
            "not a url",
            "https:///v1",
        ] {
            assert!(base_url(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn endpoints_on_our_own_network_are_refused() {
        let strict = OutboundPolicy::default();
        for bad in [
            "http://127.0.0.1:8080/v1",
            "http://169.254.169.254",
            "http://localhost:9/v1",
            "http://[::1]",
            "https://10.1.2.3/v1",
            "http://[::ffff:192.168.0.1]",
        ] {
            match public_endpoint(&strict, bad, "base_url").await {
                Err(e) if matches!(&e, ApiError::OutboundRefused { param, .. } if param == "base_url") => {
                    assert_eq!(e.code(), "outbound_address_refused");
                    assert_eq!(e.status(), 422);
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        // Public, or not resolvable today (checked again at each call).
        for ok in ["https://1.1.1.1/v1", "https://llm.acme.invalid/v1"] {
            assert!(public_endpoint(&strict, ok, "base_url").await.is_ok(), "{ok}");
        }
        let open = OutboundPolicy {
            allow_private: true,
            ..strict
        };
        for ok in [
            "http://127.0.0.1:8080/v1",
            "http://localhost:9/v1",
            "http://[::1]",
        ] {
            assert!(public_endpoint(&open, ok, "base_url").await.is_ok(), "{ok}");
        }
    }

    #[test]
    fn keys_are_bounded_and_printable() {
        assert_eq!(api_key(" sk-abc ").unwrap(), "sk-abc");
        assert!(api_key("").is_err());
        assert!(api_key("sk a").is_err());
        assert!(api_key(&"k".repeat(513)).is_err());
    }
}
