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
    /// Readiness details (on `/readyz`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<ReadyDetail>,
}

/// What `/readyz` knows beyond "the database answers".
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadyDetail {
    /// `stripe` when Stripe is configured; `ledger_only` when it is not:
    /// charges are recorded in the ledger and their meter events wait in
    /// the outbox; nothing is lost.
    pub billing: &'static str,
    /// Outbox rows waiting to be sent.
    pub outbox_pending: i64,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = HealthOut)))]
pub async fn healthz() -> Json<HealthOut> {
    Json(HealthOut {
        status: "ok",
        detail: None,
    })
}

/// The process is up and its database answers; the detail says how
/// billing runs and how much waits in the outbox.
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
    match tokio::time::timeout(state.limits.readiness_timeout, state.store.outbox_stats()).await {
        Ok(Ok(stats)) => Ok(Json(HealthOut {
            status: "ready",
            detail: Some(ReadyDetail {
                billing: if state.stripe.is_some() {
                    "stripe"
                } else {
                    "ledger_only"
                },
                outbox_pending: stats.pending,
            }),
        })),
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
    let mut body = state.metrics.render();
    // Outbox gauges: read from the database, skipped when it is away.
    if let Ok(Ok(stats)) =
        tokio::time::timeout(state.limits.readiness_timeout, state.store.outbox_stats()).await
    {
        let age = stats
            .oldest_pending
            .map(|t| (state.store.now() - t).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        body.push_str(&format!(
            "# HELP bounty_outbox_pending Outbox rows waiting to be sent.\n\
             # TYPE bounty_outbox_pending gauge\n\
             bounty_outbox_pending {}\n\
             # HELP bounty_outbox_failed Outbox rows parked after a permanent error.\n\
             # TYPE bounty_outbox_failed gauge\n\
             bounty_outbox_failed {}\n\
             # HELP bounty_outbox_oldest_pending_age_seconds Age of the oldest pending outbox row.\n\
             # TYPE bounty_outbox_oldest_pending_age_seconds gauge\n\
             bounty_outbox_oldest_pending_age_seconds {age:.3}\n",
            stats.pending, stats.failed
        ));
    }
    // Verified-answer cache, every account together.
    if let Ok(Ok(cache)) =
        tokio::time::timeout(state.limits.readiness_timeout, state.store.cache_totals()).await
    {
        body.push_str(&format!(
            "# HELP bounty_answer_cache_lookups_total Verified-answer cache lookups by workers.\n\
             # TYPE bounty_answer_cache_lookups_total counter\n\
             bounty_answer_cache_lookups_total {}\n\
             # HELP bounty_answer_cache_hits_total Lookups served from the cache (the answer passed verification again).\n\
             # TYPE bounty_answer_cache_hits_total counter\n\
             bounty_answer_cache_hits_total {}\n\
             # HELP bounty_answer_cache_saved_micros_total Inference cost the hits saved, in micros, by currency.\n\
             # TYPE bounty_answer_cache_saved_micros_total counter\n",
            cache.lookups, cache.hits
        ));
        for (currency, micros) in &cache.saved_micros {
            body.push_str(&format!(
                "bounty_answer_cache_saved_micros_total{{currency=\"{currency}\"}} {micros}\n"
            ));
        }
    }
    if let Ok(Ok(counts)) =
        tokio::time::timeout(state.limits.readiness_timeout, state.store.stripe_event_counts()).await
    {
        body.push_str(
            "# HELP bounty_stripe_events_total Stripe webhook events received, by outcome (handled, ignored).\n\
             # TYPE bounty_stripe_events_total counter\n",
        );
        for (outcome, n) in counts {
            body.push_str(&format!(
                "bounty_stripe_events_total{{outcome=\"{outcome}\"}} {n}\n"
            ));
        }
    }
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
