//! Cross-cutting request handling: request ids, timeouts, metrics.
//!
//! The stack, outermost first:
//!
//! 1. a request id (`x-request-id`, `req_…`, or the caller's own) is set,
//!    put on the tracing span and echoed on the response;
//! 2. metrics time the whole request and count it by route and status;
//! 3. inside the router, for matched routes only, the route template is
//!    recorded for metrics and the request timeout applies.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bounty_core::RequestId;
use tower_http::request_id::{MakeRequestId, RequestId as TowerRequestId};

use crate::error::ApiError;
use crate::state::AppState;

/// Mints `req_…` ids for requests that arrive without one.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeBountyRequestId;

impl MakeRequestId for MakeBountyRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<TowerRequestId> {
        HeaderValue::from_str(&RequestId::new().to_string())
            .ok()
            .map(TowerRequestId::new)
    }
}

/// The longest caller-supplied `x-request-id` kept.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Outermost: drops a caller's `x-request-id` that is too long or not
/// plain visible ASCII, so that logs only ever carry sane ids; one of
/// ours is minted in its place.
pub async fn sanitize_request_id(mut req: Request, next: Next) -> Response {
    let bad = req
        .headers()
        .get(REQUEST_ID)
        .is_some_and(|v| v.len() > MAX_REQUEST_ID_LEN || !v.as_bytes().iter().all(|b| b.is_ascii_graphic()));
    if bad {
        req.headers_mut().remove(REQUEST_ID);
    }
    next.run(req).await
}

/// The request id header.
pub const REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// The route template a response was produced by, for metrics.
#[derive(Debug, Clone)]
struct RouteLabel(String);

/// Inside the router: notes the matched route on the response.
pub async fn record_route(matched: MatchedPath, req: Request, next: Next) -> Response {
    let label = RouteLabel(matched.as_str().to_owned());
    let mut response = next.run(req).await;
    response.extensions_mut().insert(label);
    response
}

/// Inside the router: answers 503 `request_timeout` past the limit.
pub async fn timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // The gateway's model calls are bounded by each model's own
    // `request_timeout_ms` and retries: a long completion is not cut off
    // (and would not be answered in OpenAI's shape) by the server's limit.
    if matches!(req.uri().path(), "/v1/chat/completions" | "/v1/embeddings") {
        return next.run(req).await;
    }
    let limit = state.limits.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout {
            limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
        }
        .into_response(),
    }
}

/// Around the router: counts and times every request.
pub async fn track_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let started = Instant::now();
    let response = next.run(req).await;
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map_or("unmatched", |r| r.0.as_str());
    state.metrics.observe(
        method.as_str(),
        route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
