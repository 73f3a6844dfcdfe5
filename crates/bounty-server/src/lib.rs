//! Bounty's HTTP edge: the REST API, health, metrics and OpenAPI.
//!
//! This is the only crate that knows HTTP. A handler parses its input into
//! typed values (see [`extract`]), authenticates (see [`auth`]), calls the
//! store, and maps the result; every failure becomes an [`ApiError`] with
//! a stable code. [`app`] assembles the router and middleware; [`serve`]
//! runs it until a shutdown signal, then lets in-flight requests finish
//! within a grace period.

pub mod auth;
pub mod error;
pub mod extract;
pub mod gateway;
pub mod metrics;
pub mod middleware;
pub mod routes;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, ApiResult};
pub use state::{AppState, Limits};

use middleware::REQUEST_ID;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Bounty API",
        description = "Outcome-billed agents: run agents on tickets, verify outcomes, bill only resolved work. \
                       Authenticate with `Authorization: Bearer bk_live_…`. Errors are \
                       `{\"error\": {\"code\", \"message\", \"param\"?}}` with a stable `code`.",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "account", description = "The account an API key belongs to"),
        (name = "api-keys", description = "Create, list and revoke API keys"),
        (name = "agents", description = "Agents: instructions, model route, output schema; versioned"),
        (name = "tasks", description = "Submit work to an agent and follow it"),
        (name = "models", description = "The models agents can use"),
        (name = "outcomes", description = "What each task came to: verdict receipts, charges, signals"),
        (name = "billing", description = "Usage, margins, prepaid credits, plan and spending cap"),
        (name = "knowledge", description = "Knowledge sources: documents chunked for agents' retrieval, and keyword search"),
        (name = "byok", description = "Bring your own key: the account's own OpenAI-compatible endpoint and key"),
        (name = "health", description = "Liveness, readiness and metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("bk_live_…")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "operator_key",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("bk_op_…")
                    .build(),
            ),
        );
    }
}

/// The routes and their OpenAPI document, built from one declaration.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::health::metrics))
        .routes(routes!(routes::account::get_account))
        .routes(routes!(
            routes::api_keys::create_api_key,
            routes::api_keys::list_api_keys
        ))
        .routes(routes!(
            routes::api_keys::get_api_key,
            routes::api_keys::revoke_api_key
        ))
        .routes(routes!(routes::agents::create_agent, routes::agents::list_agents))
        .routes(routes!(routes::agents::get_agent, routes::agents::update_agent))
        .routes(routes!(routes::tasks::create_task, routes::tasks::list_tasks))
        .routes(routes!(routes::tasks::get_task))
        .routes(routes!(routes::tasks::post_task_message))
        .routes(routes!(routes::tasks::report_outcome))
        .routes(routes!(routes::models::list_models))
        .routes(routes!(routes::openai::chat_completions))
        .routes(routes!(routes::openai::embeddings))
        .routes(routes!(routes::openai::list_models))
        .routes(routes!(routes::openai::get_model))
        .routes(routes!(
            routes::gateway_limits::put_limits,
            routes::gateway_limits::get_limits
        ))
        .routes(routes!(routes::gateway_charges::list_charges))
        .routes(routes!(
            routes::webhooks::create_endpoint,
            routes::webhooks::list_endpoints
        ))
        .routes(routes!(
            routes::webhooks::get_endpoint,
            routes::webhooks::update_endpoint,
            routes::webhooks::delete_endpoint
        ))
        .routes(routes!(routes::webhooks::rotate_secret))
        .routes(routes!(routes::webhooks::list_attempts))
        .routes(routes!(routes::webhooks::resend))
        .routes(routes!(routes::webhooks::list_events))
        .routes(routes!(routes::webhooks::get_event))
        .routes(routes!(routes::outcomes::list_outcomes))
        .routes(routes!(routes::outcomes::get_outcome))
        .routes(routes!(routes::outcomes::post_signal))
        .routes(routes!(routes::billing::usage))
        .routes(routes!(routes::billing::get_credits))
        .routes(routes!(routes::billing::grant_credits))
        .routes(routes!(routes::billing::get_billing))
        .routes(routes!(
            routes::byok::put_byok,
            routes::byok::get_byok,
            routes::byok::delete_byok
        ))
        .routes(routes!(routes::invoices::list_invoices))
        .routes(routes!(routes::stripe_webhooks::stripe_webhook))
        .routes(routes!(
            routes::integrations::create_integration,
            routes::integrations::list_integrations
        ))
        .routes(routes!(
            routes::integrations::get_integration,
            routes::integrations::delete_integration
        ))
        .routes(routes!(routes::integrations::rotate_secret))
        .routes(routes!(routes::integrations::enable_integration))
        .routes(routes!(routes::integrations::list_deliveries))
        .routes(routes!(routes::helpdesk_webhooks::helpdesk_webhook))
        .routes(routes!(routes::ops::list_accounts))
        .routes(routes!(routes::ops::get_account))
        .routes(routes!(routes::exports::charges))
        .routes(routes!(routes::disputes::create_dispute))
        .routes(routes!(routes::disputes::list_disputes))
        .routes(routes!(routes::disputes::get_dispute))
        .routes(routes!(routes::disputes::get_evidence))
        .routes(routes!(routes::ops::list_disputes))
        .routes(routes!(routes::ops::accept_dispute))
        .routes(routes!(routes::ops::reject_dispute))
        .routes(routes!(routes::ops::get_dispute_evidence))
        .routes(routes!(
            routes::knowledge::create_knowledge,
            routes::knowledge::list_knowledge
        ))
        .routes(routes!(
            routes::knowledge::get_knowledge,
            routes::knowledge::delete_knowledge
        ))
        .routes(routes!(routes::knowledge::upload_documents))
        .routes(routes!(routes::knowledge::search_knowledge))
        .split_for_parts()
}

/// The whole application: routes, `/openapi.json`, fallbacks and middleware.
pub fn app(state: AppState) -> Router {
    let (routes, openapi) = api();
    let openapi = Arc::new(openapi);
    let body_limit = state.limits.body_limit_bytes;
    routes
        // The dashboard's pages, under the same middleware.
        .merge(bounty_web::router(state.web.clone()))
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let openapi = Arc::clone(&openapi);
                async move { axum::Json(openapi).into_response() }
            }),
        )
        .route_layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(middleware::record_route))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    middleware::timeout,
                )),
        )
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(middleware::sanitize_request_id))
                .layer(SetRequestIdLayer::new(
                    REQUEST_ID,
                    middleware::MakeBountyRequestId,
                ))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                    let request_id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        // A one-time link's token stays out of the log.
                        path = %bounty_web::loggable_path(req.uri().path()),
                        request.id = %request_id,
                        account.id = tracing::field::Empty,
                        key.id = tracing::field::Empty,
                    )
                }))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    middleware::track_metrics,
                )),
        )
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then stops
/// accepting connections and waits up to `grace` for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    let signalled = shutdown.clone();
    // Nagle's algorithm held back small writes (a streamed completion's
    // events) until the client's delayed ACK: +40 ms to the first token.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
        }
    });
    // The peer address reaches handlers (the dashboard's login rate limit).
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { signalled.cancelled().await });
    tokio::select! {
        result = server => result,
        () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "grace period over; closing remaining connections");
            Ok(())
        }
    }
}
