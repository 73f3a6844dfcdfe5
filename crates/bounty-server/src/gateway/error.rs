//! OpenAI's error shape, for the gateway's routes:
//! `{"error": {"message", "type", "param", "code"}}` with OpenAI's status
//! codes, so that OpenAI's clients raise the exception they would raise
//! against OpenAI (401 `AuthenticationError`, 404 `NotFoundError`, 429
//! `RateLimitError` retried after `Retry-After`, and so on).

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bounty_models::ProviderError;
use serde_json::json;

use crate::error::ApiError;

/// An error in OpenAI's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiError {
    pub status: StatusCode,
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `rate_limit_error`, …
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
    pub retry_after: Option<Duration>,
}

impl OpenAiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: Option<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        OpenAiError {
            status,
            message: message.into(),
            kind,
            param: None,
            code,
            retry_after: None,
        }
    }

    /// 400: a field of the request is wrong.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        OpenAiError {
            param: Some(param.into()),
            ..OpenAiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", None, message)
        }
    }

    /// 400 with a Bounty code (`task_required`, `agent_not_found`, …).
    pub fn bounty(code: &'static str, param: Option<&str>, message: impl Into<String>) -> Self {
        OpenAiError {
            param: param.map(str::to_owned),
            ..OpenAiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some(code),
                message,
            )
        }
    }

    /// 404 `model_not_found`.
    pub fn model_not_found(model: &str) -> Self {
        OpenAiError {
            param: Some("model".to_owned()),
            ..OpenAiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("model_not_found"),
                format!("The model `{model}` does not exist or you do not have access to it."),
            )
        }
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(code: &'static str, message: impl Into<String>, retry_after: Duration) -> Self {
        OpenAiError {
            retry_after: Some(retry_after),
            ..OpenAiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                Some(code),
                message,
            )
        }
    }

    /// 500: ours, not the client's; the cause is logged, not shown.
    pub fn internal() -> Self {
        OpenAiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            Some("internal_error"),
            "The server had an error while processing your request. Retry, or contact support with the request id.",
        )
    }

    /// What a provider's failure means to the client, after the route's
    /// retries and fallbacks: its own request's fault (4xx), the
    /// provider's (5xx, 502/504 for an unreachable or slow upstream), or a
    /// rate limit (429, with the provider's `Retry-After`).
    pub fn from_provider(error: &ProviderError) -> Self {
        let message = error.to_string();
        match error {
            ProviderError::Rejected { status, message } if (400..500).contains(status) => OpenAiError::new(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
                "invalid_request_error",
                Some("upstream_rejected"),
                message.clone(),
            ),
            ProviderError::Rejected { .. } | ProviderError::ContextOverflow { .. } => OpenAiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some(error.code()),
                message,
            ),
            ProviderError::RateLimited { retry_after, .. } => OpenAiError {
                retry_after: Some(retry_after.unwrap_or(Duration::from_secs(1))),
                ..OpenAiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    Some("upstream_rate_limited"),
                    message,
                )
            },
            ProviderError::Timeout(_) => OpenAiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                Some("upstream_timeout"),
                message,
            ),
            ProviderError::Server { .. } | ProviderError::Malformed(_) | ProviderError::Unreachable(_) => {
                OpenAiError::new(
                    StatusCode::BAD_GATEWAY,
                    "api_error",
                    Some("upstream_error"),
                    message,
                )
            }
            ProviderError::NotConfigured(_) => OpenAiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("model_not_found"),
                message,
            ),
            ProviderError::ByokKeyMissing(_)
            | ProviderError::ByokKeyRejected { .. }
            | ProviderError::AddressRefused(_) => OpenAiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some(error.code()),
                message,
            ),
            ProviderError::Local(_) | ProviderError::ToolUnavailable(_) | ProviderError::ToolRefused(_) => {
                OpenAiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    Some(error.code()),
                    message,
                )
            }
        }
    }

    /// The body, as JSON.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl From<ApiError> for OpenAiError {
    /// Bounty's own errors on a gateway route (authentication, the
    /// database), in OpenAI's shape.
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::MissingApiKey => OpenAiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                Some("missing_api_key"),
                "You didn't provide an API key. Send your Bounty key as `Authorization: Bearer bk_…`.",
            ),
            ApiError::InvalidApiKey => OpenAiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                Some("invalid_api_key"),
                "Incorrect API key provided. Use a Bounty API key (`bk_live_…` or `bk_test_…`).",
            ),
            other => {
                let response = other.into_response();
                if response.status().is_server_error() {
                    OpenAiError::internal()
                } else {
                    OpenAiError::new(
                        response.status(),
                        "invalid_request_error",
                        None,
                        "The request was refused.",
                    )
                }
            }
        }
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(after) = self.retry_after {
            // Whole seconds, rounded up: never invite a retry too early.
            let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
