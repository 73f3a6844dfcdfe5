//! `/v1/catalog/models`: the models configured on this deployment, which
//! agents' routes may name, with their providers and prices.
//!
//! This listing was at `/v1/models` until the OpenAI-compatible gateway
//! took that path for OpenAI's own shape (`routes::openai`).

use axum::Json;
use axum::extract::State;
use bounty_models::ProviderKind;
use bounty_models::config::{GenerationDefaults, Price};
use serde::Serialize;

use crate::auth::Auth;
use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;

/// A configured model and its price.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelOut {
    pub name: String,
    /// `llama` (local llama.cpp) or `openai` (an OpenAI-compatible endpoint).
    #[schema(value_type = String)]
    pub provider: ProviderKind,
    /// The endpoint's own name for the model (remote only).
    pub remote_model: Option<String>,
    /// Price: `{per: "million_tokens", input, output}`,
    /// `{per: "cpu_second", rate, threads}` or `{per: "gpu_second", rate}`;
    /// amounts are `{micros, currency}`.
    #[schema(value_type = Object)]
    pub price: Price,
    #[schema(value_type = Object)]
    pub defaults: GenerationDefaults,
}

/// The list of models.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelList {
    pub data: Vec<ModelOut>,
}

/// Lists the configured models, by name.
#[utoipa::path(
    get,
    path = "/v1/catalog/models",
    tag = "models",
    security(("api_key" = [])),
    responses(
        (status = 200, body = ModelList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn list_models(State(state): State<AppState>, _auth: Auth) -> ApiResult<Json<ModelList>> {
    let data = state
        .models
        .iter()
        .map(|m| {
            let info = m.info();
            ModelOut {
                name: info.name,
                provider: info.provider,
                remote_model: info.remote_model,
                price: info.price,
                defaults: info.defaults,
            }
        })
        .collect();
    Ok(Json(ModelList { data }))
}
