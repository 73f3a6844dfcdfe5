//! `/v1/gateway/limits`: the budgets of the account's gateway calls, for
//! the whole account or one API key (a virtual key): requests and tokens
//! per minute, and inference spend per calendar month on the operator's
//! models (a BYOK call costs the operator nothing and never counts). A
//! call past a limit is answered OpenAI's 429 with `Retry-After`.

use axum::Json;
use axum::extract::State;
use bounty_core::{ApiKeyId, Money};
use bounty_store::gateway_budget::{ACCOUNT_SCOPE, GatewayLimit};
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

/// The limits of one scope; a missing or null limit is no limit.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayLimitIn {
    /// An API key of the account (`key_…`): the limits are that key's.
    /// Without it, they are the whole account's.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub api_key: Option<ApiKeyId>,
    #[serde(default)]
    pub requests_per_minute: Option<i64>,
    #[serde(default)]
    pub tokens_per_minute: Option<i64>,
    /// `{micros, currency}`: spend per calendar month (UTC).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub monthly_spend: Option<Money>,
}

/// The limits of one scope.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GatewayLimitOut {
    /// `account`, or the API key (`key_…`) they limit.
    pub scope: String,
    pub requests_per_minute: Option<i64>,
    pub tokens_per_minute: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub monthly_spend: Option<Money>,
}

/// Every limit of the account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GatewayLimitList {
    pub data: Vec<GatewayLimitOut>,
}

fn out(limit: GatewayLimit) -> GatewayLimitOut {
    GatewayLimitOut {
        scope: limit.scope,
        requests_per_minute: limit.requests_per_minute,
        tokens_per_minute: limit.tokens_per_minute,
        monthly_spend: limit.monthly_spend,
    }
}

/// Sets the limits of the account, or of one of its API keys (all null:
/// removes them). They apply to this process's next call at once, and to
/// other processes' within 5 seconds.
#[utoipa::path(
    put,
    path = "/v1/gateway/limits",
    tag = "gateway",
    security(("api_key" = [])),
    request_body = GatewayLimitIn,
    responses(
        (status = 200, body = GatewayLimitList, description = "Every limit of the account, after the change"),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "`api_key` is not a key of this account", body = ErrorBody),
        (status = 422, description = "`validation_failed` naming a negative limit", body = ErrorBody),
    )
)]
pub async fn put_limits(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<GatewayLimitIn>,
) -> ApiResult<Json<GatewayLimitList>> {
    for (param, value) in [
        ("requests_per_minute", body.requests_per_minute),
        ("tokens_per_minute", body.tokens_per_minute),
        ("monthly_spend.micros", body.monthly_spend.map(|m| m.micros)),
    ] {
        if value.is_some_and(|v| v < 0) {
            return Err(ApiError::Validation {
                param: param.to_owned(),
                message: "must not be negative".to_owned(),
            });
        }
    }
    let scope = match body.api_key {
        Some(id) => {
            // Another account's key is no key of this one: 404.
            if state.store.get_api_key(auth.account_id, id).await?.is_none() {
                return Err(ApiError::NotFound {
                    kind: "API key",
                    id: id.to_string(),
                });
            }
            id.to_string()
        }
        None => ACCOUNT_SCOPE.to_owned(),
    };
    let limit = GatewayLimit {
        scope,
        requests_per_minute: body.requests_per_minute,
        tokens_per_minute: body.tokens_per_minute,
        monthly_spend: body.monthly_spend,
    };
    state.store.set_gateway_limit(auth.account_id, &limit).await?;
    state.gateway.forget_limits(auth.account_id);
    list(&state, &auth).await
}

/// Lists the account's limits: its own and its keys'.
#[utoipa::path(
    get,
    path = "/v1/gateway/limits",
    tag = "gateway",
    security(("api_key" = [])),
    responses(
        (status = 200, body = GatewayLimitList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn get_limits(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<GatewayLimitList>> {
    list(&state, &auth).await
}

async fn list(state: &AppState, auth: &Auth) -> ApiResult<Json<GatewayLimitList>> {
    let limits = state.store.gateway_limits(auth.account_id).await?;
    Ok(Json(GatewayLimitList {
        data: limits.into_iter().map(out).collect(),
    }))
}
