//! Liveness, readiness, metrics and the OpenAPI document.
//!
//! `/healthz` answers as long as the process serves HTTP. `/readyz` also
//! asks the database, with a short timeout, so a load balancer stops
//! sending traffic while the database is away and resumes when it is back
//! (the pool reconnects by itself).

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde::Serialize;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// A health answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthOut {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = HealthOut)))]
pub async fn healthz() -> Json<HealthOut> {
    Json(HealthOut { status: "ok" })
}

/// The process is up and its database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, body = HealthOut),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<HealthOut>> {
    match tokio::time::timeout(state.limits.readiness_timeout, state.store.ping()).await {
        Ok(Ok(())) => Ok(Json(HealthOut { status: "ready" })),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(ApiError::DatabaseUnavailable),
    }
}

/// Request counts and latency histograms in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
}
