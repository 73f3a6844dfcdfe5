//! API key authentication.
//!
//! [`Auth`] is an extractor: a handler that takes one is reachable only with
//! a valid, unrevoked key, and gets the key's account to scope every query
//! by. The key's shape is checked before the database is asked, and the
//! key itself never reaches a log: only its id and account do.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use bounty_core::{AccountId, ApiKeyId, ApiKeyMode, ApiKeySecret, OperatorId, OperatorKeyId};

use crate::error::ApiError;
use crate::state::AppState;

/// An operator's request to `/v1/ops/*`, made with a `bk_op_` key.
///
/// To anyone else the operator's routes do not exist: no key, a customer's
/// key or anything that is not an operator key is answered 404
/// `route_not_found`, as for any unknown path. An operator-shaped key that
/// is unknown or revoked is a 401.
#[derive(Debug, Clone, Copy)]
pub struct OperatorAuth {
    pub operator_id: OperatorId,
    pub key_id: OperatorKeyId,
}

impl FromRequestParts<AppState> for OperatorAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).map_err(|_| ApiError::RouteNotFound)?;
        let secret = ApiKeySecret::parse_operator(token).map_err(|_| ApiError::RouteNotFound)?;
        let (operator_id, key_id) = state
            .store
            .authenticate_operator(&secret.hash())
            .await?
            .ok_or(ApiError::InvalidApiKey)?;
        tracing::Span::current().record("key.id", tracing::field::display(key_id));
        Ok(OperatorAuth { operator_id, key_id })
    }
}

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

/// The bearer token of the request.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts.headers.get(AUTHORIZATION).ok_or(ApiError::MissingApiKey)?;
    let value = header.to_str().map_err(|_| ApiError::InvalidApiKey)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(ApiError::InvalidApiKey)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::InvalidApiKey);
    }
    Ok(token.trim())
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let (secret, _) = ApiKeySecret::parse(bearer(parts)?).map_err(|_| ApiError::InvalidApiKey)?;
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
