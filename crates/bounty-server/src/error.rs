//! The one error type at the HTTP edge.
//!
//! Every failure a client can see is an [`ApiError`] variant. Each variant
//! has a fixed status and a stable machine `code` (written in its doc
//! comment), and a message meant for the client. Causes that are ours, not
//! the client's (a database error, a bug), are logged with the request's
//! span and never shown: the client gets the code and the request id.
//!
//! The wire shape is `{"error": {"code": "…", "message": "…", "param": "…"}}`,
//! with `param` present when one input field is to blame.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bounty_store::StoreError;
use serde::Serialize;

/// An error as the client sees it.
#[derive(Debug)]
pub enum ApiError {
    /// 400 `malformed_json`: the body is not valid JSON.
    MalformedJson(String),
    /// 400 `invalid_request`: a field is unknown, missing or of the wrong
    /// type, in the body or the query string.
    InvalidRequest {
        /// What is wrong.
        message: String,
        /// The field at fault, when there is one.
        param: Option<String>,
    },
    /// 401 `missing_api_key`: no `Authorization: Bearer` header.
    MissingApiKey,
    /// 401 `invalid_api_key`: the key is malformed, unknown or revoked.
    InvalidApiKey,
    /// 404 `not_found`: no such object in this account (another account's
    /// object is indistinguishable from a missing one).
    NotFound {
        /// The kind of object (`API key`).
        kind: &'static str,
        /// The id as the client gave it.
        id: String,
    },
    /// 404 `route_not_found`: no such endpoint.
    RouteNotFound,
    /// 405 `method_not_allowed`: the endpoint exists, not with this method.
    MethodNotAllowed,
    /// 409 `conflict`: a unique constraint refused the write.
    Conflict(String),
    /// 413 `payload_too_large`: the body is over the configured limit.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 415 `unsupported_media_type`: a body that is not `application/json`.
    UnsupportedMediaType,
    /// 422 `validation_failed`: well-formed, but a value is not acceptable.
    Validation {
        /// The field at fault.
        param: String,
        /// Why its value is refused.
        message: String,
    },
    /// 422 `unknown_model`: a model route names a model that is not
    /// configured.
    UnknownModel {
        /// The field at fault (`model_route[1]`).
        param: String,
        /// The model name.
        model: String,
    },
    /// 422 `outbound_address_refused`: a URL the customer gives is, or
    /// resolves to, an address Bounty may not call (loopback, private,
    /// link-local, cloud metadata, …).
    OutboundRefused {
        /// The field at fault (`base_url`, `tools[0].url`).
        param: String,
        /// The refusal: the host, the address and its class.
        refusal: String,
    },
    /// 422 `integration_ping_failed`: a disabled integration's helpdesk did
    /// not answer the test ping, so it stays off (send `{"ping": false}`
    /// to turn it on anyway).
    PingFailed {
        /// What the helpdesk answered.
        message: String,
    },
    /// 422 `unknown_agent`: a task names an agent the account does not have.
    UnknownAgent {
        /// The agent as given.
        agent: String,
    },
    /// 422 `unsupported_kind`: a knowledge source of a kind this server
    /// does not index (`urls`, until URL fetching lands), or documents sent
    /// to a source that does not take uploads.
    UnsupportedKind {
        /// Why, for the client.
        message: String,
    },
    /// 422 `idempotency_mismatch`: an `Idempotency-Key` was used before
    /// with a different request.
    IdempotencyMismatch,
    /// 402 `budget_exhausted`: the account's monthly spending cap leaves no
    /// room for another task.
    BudgetExhausted {
        /// The cap, in micros.
        cap_micros: i64,
        /// Charged this month plus reserved for running tasks, in micros.
        committed_micros: i64,
    },
    /// 400 `invalid_signature`: a webhook's signature does not verify.
    InvalidSignature(String),
    /// 503 `webhooks_not_configured`: no signing secret is configured.
    WebhooksNotConfigured,
    /// 402 `account_suspended`: Stripe suspended the account's
    /// subscription; new tasks are refused, running work finishes.
    AccountSuspended,
    /// 403 `live_key_cannot_grant`: credits are granted through the API by
    /// test-mode keys only.
    LiveKeyCannotGrant,
    /// 409 `outcome_transition_refused`: the event does not apply to the
    /// outcome in its current state.
    TransitionRefused(String),
    /// 409 `conversation_closed`: a message to a task whose conversation
    /// is over (its outcome is resolved, failed, reversed or escalated).
    ConversationClosed(String),
    /// 409 `signal_not_applicable`: a ticket-source signal for an outcome
    /// whose policy has no `external` verifier, or whose window is over.
    /// The refusal is recorded on the receipt; nothing changes.
    SignalNotApplicable(String),
    /// 409 `outcome_already_reported`: a gateway task's outcome was
    /// reported before with another answer.
    OutcomeAlreadyReported(String),
    /// 409: a dispute that cannot be opened or decided, by its code:
    /// `outcome_not_disputable` (not a charged outcome), `dispute_exists`
    /// (the outcome has one), `dispute_decided` (decided already).
    DisputeRefused { code: &'static str, message: String },
    /// 403 `operator_only`: an operator's decision (a goodwill reversal),
    /// which no customer key may make.
    OperatorOnly {
        /// What was refused, for the message.
        action: &'static str,
    },
    /// 409 `agent_name_taken`: the account already has an agent of that name.
    AgentNameTaken {
        /// The name.
        name: String,
    },
    /// 503 `database_unavailable`: the database cannot be reached; retry.
    DatabaseUnavailable,
    /// 401 `invalid_signature`: a helpdesk webhook's signature does not
    /// verify; `reason` is the verifier's code (`no_matching_signature`,
    /// `timestamp_out_of_tolerance`, `missing_header`, …).
    WebhookSignature {
        reason: &'static str,
        header: Option<&'static str>,
    },
    /// 400 `invalid_payload`: a verified webhook body that is not a payload
    /// of its vendor; `param` names the field.
    InvalidPayload {
        code: &'static str,
        message: String,
        param: Option<String>,
    },
    /// 503 `secrets_not_configured`: no master key (`secrets.master_keys`)
    /// to seal or open integration secrets with.
    SecretsNotConfigured,
    /// 503 `secret_unreadable`: the integration's inbound secret does not
    /// open under the configured master keys (the key that sealed it is no
    /// longer configured), so no delivery can be verified. The integration
    /// shows `status: "broken"`; restoring the key or rotating the secret
    /// mends it, and the helpdesk's retries then go through.
    SecretUnreadable {
        /// The integration, `int_…`.
        integration: String,
    },
    /// 503 `stripe_unavailable`: Stripe could not be reached or refused the
    /// call (the cause is logged); retry.
    StripeUnavailable,
    /// 503 `request_timeout`: the request took longer than the limit.
    Timeout {
        /// The limit in milliseconds.
        limit_ms: u64,
    },
    /// 500 `internal_error`: our fault. The cause goes to the log only.
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// One error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_api_key`.
    pub code: &'static str,
    /// Human-readable explanation for the developer.
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) | ApiError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::MissingApiKey | ApiError::InvalidApiKey => StatusCode::UNAUTHORIZED,
            ApiError::NotFound { .. } | ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation { .. }
            | ApiError::UnknownModel { .. }
            | ApiError::UnknownAgent { .. }
            | ApiError::UnsupportedKind { .. }
            | ApiError::OutboundRefused { .. }
            | ApiError::PingFailed { .. }
            | ApiError::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::AgentNameTaken { .. }
            | ApiError::TransitionRefused(_)
            | ApiError::ConversationClosed(_)
            | ApiError::SignalNotApplicable(_)
            | ApiError::OutcomeAlreadyReported(_)
            | ApiError::DisputeRefused { .. } => StatusCode::CONFLICT,
            ApiError::OperatorOnly { .. } => StatusCode::FORBIDDEN,
            ApiError::BudgetExhausted { .. } => StatusCode::PAYMENT_REQUIRED,
            ApiError::LiveKeyCannotGrant => StatusCode::FORBIDDEN,
            ApiError::InvalidSignature(_) => StatusCode::BAD_REQUEST,
            ApiError::WebhooksNotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::AccountSuspended => StatusCode::PAYMENT_REQUIRED,
            ApiError::WebhookSignature { .. } => StatusCode::UNAUTHORIZED,
            ApiError::InvalidPayload { .. } => StatusCode::BAD_REQUEST,
            ApiError::DatabaseUnavailable
            | ApiError::StripeUnavailable
            | ApiError::SecretsNotConfigured
            | ApiError::SecretUnreadable { .. }
            | ApiError::Timeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::InvalidRequest { .. } => "invalid_request",
            ApiError::MissingApiKey => "missing_api_key",
            ApiError::InvalidApiKey => "invalid_api_key",
            ApiError::NotFound { .. } => "not_found",
            ApiError::RouteNotFound => "route_not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Validation { .. } => "validation_failed",
            ApiError::UnknownModel { .. } => "unknown_model",
            ApiError::UnknownAgent { .. } => "unknown_agent",
            ApiError::UnsupportedKind { .. } => "unsupported_kind",
            ApiError::OutboundRefused { .. } => "outbound_address_refused",
            ApiError::PingFailed { .. } => "integration_ping_failed",
            ApiError::IdempotencyMismatch => "idempotency_mismatch",
            ApiError::AgentNameTaken { .. } => "agent_name_taken",
            ApiError::BudgetExhausted { .. } => "budget_exhausted",
            ApiError::LiveKeyCannotGrant => "live_key_cannot_grant",
            ApiError::InvalidSignature(_) => "invalid_signature",
            ApiError::WebhooksNotConfigured => "webhooks_not_configured",
            ApiError::AccountSuspended => "account_suspended",
            ApiError::TransitionRefused(_) => "outcome_transition_refused",
            ApiError::SignalNotApplicable(_) => "signal_not_applicable",
            ApiError::OutcomeAlreadyReported(_) => "outcome_already_reported",
            ApiError::ConversationClosed(_) => "conversation_closed",
            ApiError::DisputeRefused { code, .. } => code,
            ApiError::OperatorOnly { .. } => "operator_only",
            ApiError::DatabaseUnavailable => "database_unavailable",
            ApiError::StripeUnavailable => "stripe_unavailable",
            ApiError::WebhookSignature { .. } => "invalid_signature",
            ApiError::InvalidPayload { .. } => "invalid_payload",
            ApiError::SecretsNotConfigured => "secrets_not_configured",
            ApiError::SecretUnreadable { .. } => "secret_unreadable",
            ApiError::Timeout { .. } => "request_timeout",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn detail(&self) -> ErrorDetail {
        let (message, param) = match self {
            ApiError::MalformedJson(m) => (format!("the body is not valid JSON: {m}"), None),
            ApiError::InvalidRequest { message, param } => (message.clone(), param.clone()),
            ApiError::MissingApiKey => (
                "no API key: send `Authorization: Bearer bk_live_…`".to_owned(),
                None,
            ),
            ApiError::InvalidApiKey => ("the API key is malformed, unknown or revoked".to_owned(), None),
            ApiError::NotFound { kind, id } => (format!("no {kind} `{id}`"), None),
            ApiError::RouteNotFound => ("no such endpoint; see /openapi.json".to_owned(), None),
            ApiError::MethodNotAllowed => ("this endpoint does not accept that method".to_owned(), None),
            ApiError::Conflict(m) => (m.clone(), None),
            ApiError::PayloadTooLarge { limit } => (format!("the body is larger than {limit} bytes"), None),
            ApiError::UnsupportedMediaType => (
                "send the body as JSON with `Content-Type: application/json`".to_owned(),
                None,
            ),
            ApiError::Validation { param, message } => (format!("`{param}` {message}"), Some(param.clone())),
            ApiError::UnknownModel { param, model } => (
                format!("`{param}` names model `{model}`, which is not configured; see GET /v1/models"),
                Some(param.clone()),
            ),
            ApiError::OutboundRefused { param, refusal } => (
                format!("`{param}` must be a public address: {refusal}"),
                Some(param.clone()),
            ),
            ApiError::PingFailed { message } => (
                format!(
                    "the helpdesk did not answer the test ping ({message}), so the integration stays off; fix its \
                     reply settings, or send {{\"ping\": false}} to turn it on anyway"
                ),
                Some("ping".to_owned()),
            ),
            ApiError::UnknownAgent { agent } => (
                format!("`agent` names no agent `{agent}` of this account"),
                Some("agent".to_owned()),
            ),
            ApiError::UnsupportedKind { message } => (message.clone(), Some("kind".to_owned())),
            ApiError::IdempotencyMismatch => (
                "this `Idempotency-Key` was already used with a different request; use a new key".to_owned(),
                Some("Idempotency-Key".to_owned()),
            ),
            ApiError::BudgetExhausted {
                cap_micros,
                committed_micros,
            } => (
                format!(
                    "the monthly spending cap ({cap_micros} micros) is reached: {committed_micros} micros are \
                     charged or reserved this month; raise the cap or wait for the next month"
                ),
                None,
            ),
            ApiError::TransitionRefused(m) => (m.clone(), None),
            ApiError::SignalNotApplicable(m) => (m.clone(), None),
            ApiError::OutcomeAlreadyReported(m) => (m.clone(), None),
            ApiError::ConversationClosed(m) => (m.clone(), None),
            ApiError::DisputeRefused { message, .. } => (message.clone(), None),
            ApiError::OperatorOnly { action } => (
                format!(
                    "{action} is an operator's decision (`bounty outcomes reverse`), not an API key's; a customer \
                     contests a charge through the helpdesk's `reopened` inside the window"
                ),
                Some("kind".to_owned()),
            ),
            ApiError::InvalidSignature(m) => (format!("the `Stripe-Signature` does not verify: {m}"), None),
            ApiError::WebhooksNotConfigured => (
                "Stripe webhooks are not configured (`stripe.webhook_secrets`)".to_owned(),
                None,
            ),
            ApiError::AccountSuspended => (
                "the account's subscription is suspended; new tasks are refused until billing is settled"
                    .to_owned(),
                None,
            ),
            ApiError::LiveKeyCannotGrant => (
                "live credits are granted by the operator (`bounty credits grant`); only test-mode keys may \
                 grant credits through the API"
                    .to_owned(),
                None,
            ),
            ApiError::AgentNameTaken { name } => (
                format!("an agent named `{name}` already exists"),
                Some("name".to_owned()),
            ),
            ApiError::DatabaseUnavailable => {
                ("the database is unavailable; retry with backoff".to_owned(), None)
            }
            ApiError::StripeUnavailable => ("Stripe is unavailable; retry with backoff".to_owned(), None),
            ApiError::WebhookSignature { reason, header } => (
                match header {
                    Some(h) => format!("the webhook signature does not verify ({reason}, header `{h}`)"),
                    None => format!("the webhook signature does not verify ({reason})"),
                },
                header.map(|h| (*h).to_owned()),
            ),
            ApiError::InvalidPayload { code, message, param } => {
                (format!("the payload is not usable ({code}): {message}"), param.clone())
            }
            ApiError::SecretsNotConfigured => (
                "no master key to seal secrets with: set secrets.master_keys (`bounty secrets new-key` makes one)"
                    .to_owned(),
                None,
            ),
            ApiError::SecretUnreadable { integration } => (
                format!(
                    "integration `{integration}` is broken: its signing secret does not open under this server's \
                     master keys (secrets.master_keys); restore the key that sealed it, or rotate the secret"
                ),
                None,
            ),
            ApiError::Timeout { limit_ms } => (format!("the request took longer than {limit_ms} ms"), None),
            ApiError::Internal(_) => ("an internal error occurred; it has been logged".to_owned(), None),
        };
        ErrorDetail {
            code: self.code(),
            message,
            param,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Internal(cause) => tracing::error!(error.cause = %cause, "internal error"),
            ApiError::DatabaseUnavailable => tracing::warn!("database unavailable"),
            _ => {}
        }
        let mut response = (status, Json(ErrorBody { error: self.detail() })).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Every 503 is transient: tell clients when to come back.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => {
                tracing::warn!(error.cause = %cause, "database unavailable");
                ApiError::DatabaseUnavailable
            }
            StoreError::Constraint { constraint, .. } => ApiError::Conflict(format!(
                "the write conflicts with an existing object ({constraint})"
            )),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<bounty_agents::SubmitError> for ApiError {
    fn from(e: bounty_agents::SubmitError) -> Self {
        use bounty_agents::SubmitError;
        match e {
            SubmitError::AccountSuspended => ApiError::AccountSuspended,
            SubmitError::UnknownAgent { agent } => ApiError::UnknownAgent { agent },
            SubmitError::Invalid { field, message } => ApiError::validation(field, message),
            SubmitError::IdempotencyMismatch => ApiError::IdempotencyMismatch,
            SubmitError::BudgetExhausted {
                cap_micros,
                committed_micros,
            } => ApiError::BudgetExhausted {
                cap_micros,
                committed_micros,
            },
            SubmitError::Store(e) => e.into(),
        }
    }
}

impl From<bounty_agents::spec::AgentSpecError> for ApiError {
    fn from(e: bounty_agents::spec::AgentSpecError) -> Self {
        use bounty_agents::spec::AgentSpecError;
        match e {
            AgentSpecError::UnknownModel { field, model } => ApiError::UnknownModel { param: field, model },
            AgentSpecError::Invalid { field, message } => ApiError::validation(field, message),
        }
    }
}

impl ApiError {
    /// A 422 naming `param`.
    pub fn validation(param: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation {
            param: param.into(),
            message: message.into(),
        }
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
