//! `GET /v1/account`: the account the API key belongs to.

use axum::Json;
use axum::extract::State;
use bounty_core::AccountId;
use bounty_store::Account;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// An account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountOut {
    /// Its id.
    pub id: AccountId,
    /// Its display name.
    pub name: String,
    /// When it was created (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
}

impl From<Account> for AccountOut {
    fn from(a: Account) -> Self {
        AccountOut {
            id: a.id,
            name: a.name,
            created_at: a.created_at,
        }
    }
}

/// The caller's account.
#[utoipa::path(
    get,
    path = "/v1/account",
    tag = "account",
    security(("api_key" = [])),
    responses(
        (status = 200, body = AccountOut),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn get_account(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<AccountOut>> {
    let account = state
        .store
        .get_account(auth.account_id)
        .await?
        // The key was valid a moment ago; its account vanishing is ours to explain.
        .ok_or_else(|| {
            ApiError::Internal(format!("account {} of a valid key is missing", auth.account_id))
        })?;
    Ok(Json(account.into()))
}
