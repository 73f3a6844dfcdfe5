//! `GET /ops/health`: what needs the operator's eye, every account
//! together:
//! - the outbox by kind (Stripe's customers, subscriptions, meter events
//!   and reversals, and helpdesk replies): waiting, parked and the oldest
//!   waiting;
//! - Stripe's webhook events by outcome;
//! - the integrations refusing deliveries;
//! - the task queue and the workers' pace.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use crate::auth::CurrentOperator;
use crate::error::WebError;
use crate::format::{time, time_or_dash};
use crate::layout::{Chrome, render};
use crate::state::WebState;

struct OutboxRow {
    kind: String,
    pending: i64,
    failed: i64,
    oldest: String,
    /// Waiting over an hour, or anything parked.
    warn: bool,
}

struct RefusedRow {
    account: String,
    integration: String,
    name: String,
    refused: i64,
    last: String,
    code: String,
}

#[derive(Template)]
#[template(path = "ops_health.html")]
struct HealthPage {
    chrome: Chrome,
    outbox: Vec<OutboxRow>,
    stripe_events: Vec<(String, i64)>,
    refused: Vec<RefusedRow>,
    queued: i64,
    running: i64,
    oldest_due: String,
    finished_last_hour: i64,
    last_finished: String,
}

pub(crate) async fn page(State(state): State<WebState>, op: CurrentOperator) -> Result<Response, WebError> {
    let now = state.store.now();
    let outbox = state
        .store
        .admin_outbox_health()
        .await?
        .into_iter()
        .map(|h| OutboxRow {
            kind: h.kind.to_string(),
            pending: h.pending,
            failed: h.failed,
            warn: h.failed > 0
                || h.oldest_pending
                    .is_some_and(|t| now - t > chrono::Duration::hours(1)),
            oldest: h.oldest_pending.map_or_else(
                || "—".to_owned(),
                |t| format!("{} ({} min ago)", time(t), (now - t).num_minutes().max(0)),
            ),
        })
        .collect();
    let refused = state
        .store
        .admin_refused_deliveries(50)
        .await?
        .into_iter()
        .map(|r| RefusedRow {
            account: r.account_id.to_string(),
            integration: r.integration_id.to_string(),
            name: r.name,
            refused: r.refused,
            last: time_or_dash(r.last_refused_at),
            code: r.last_code.unwrap_or_default(),
        })
        .collect();
    let work = state
        .store
        .admin_worker_activity(now - chrono::Duration::hours(1))
        .await?;
    render(&HealthPage {
        chrome: Chrome::for_operator(&op, "Health", "health"),
        outbox,
        stripe_events: state.store.stripe_event_counts().await?,
        refused,
        queued: work.queued,
        running: work.running,
        oldest_due: time_or_dash(work.oldest_due),
        finished_last_hour: work.finished_recently,
        last_finished: time_or_dash(work.last_finished_at),
    })
}
