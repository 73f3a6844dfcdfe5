//! API key authentication.
//!
//! [`Auth`] is an extractor: a handler that takes one is reachable only with
//! a valid, unrevoked key, and gets the key's account to scope every query
//! by. The key's shape is checked before the database is asked, and the
//! key itself never reaches a log: only its id and account do.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use bounty_core::{AccountId, ApiKeyId, ApiKeyMode, ApiKeySecret};

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy)]
pub struct Auth {
    /// The account the key belongs to.
    pub account_id: AccountId,
    /// The key that authenticated the request.
    pub key_id: ApiKeyId,
    /// Live or test.
    pub mode: ApiKeyMode,
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).ok_or(ApiError::MissingApiKey)?;
        let value = header.to_str().map_err(|_| ApiError::InvalidApiKey)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(ApiError::InvalidApiKey)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::InvalidApiKey);
        }
        let (secret, _) = ApiKeySecret::parse(token.trim()).map_err(|_| ApiError::InvalidApiKey)?;
        let key = state
            .store
            .authenticate(&secret.hash())
            .await?
            .ok_or(ApiError::InvalidApiKey)?;
        let span = tracing::Span::current();
        span.record("account.id", tracing::field::display(key.account_id));
        span.record("key.id", tracing::field::display(key.key_id));
        // "Last used" is bookkeeping: failing to record it must not fail
        // the request it describes.
        if let Err(e) = state.store.touch_api_key(&key).await {
            tracing::warn!(error = %e, "could not record API key use");
        }
        Ok(Auth {
            account_id: key.account_id,
            key_id: key.key_id,
            mode: key.mode,
        })
    }
}
