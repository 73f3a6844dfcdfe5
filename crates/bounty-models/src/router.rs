//! Walks an agent's model route in order, falling back to the next model on
//! a provider error, and returns a record of every call it made.
//!
//! A model's text is stored (the task's output, the transcript), and
//! Postgres `text` refuses the NUL character, which a remote model (a
//! customer's own endpoint, under BYOK) or a local model's byte tokens may
//! produce: it is dropped here, once, for every caller.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bounty_core::Money;

use crate::error::ProviderError;
use crate::price;
use crate::registry::ModelRegistry;
use crate::types::{ByokKey, GenerateRequest, Generation, Message, ProviderKind, ToolDefinition, Usage};

/// Per-request overrides of a model's generation defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Overrides {
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub seed: Option<u32>,
}

/// One model call, successful or not, as it is recorded on the task.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    pub model: String,
    /// `None` when the model is no longer configured.
    pub provider: Option<ProviderKind>,
    pub usage: Usage,
    pub latency: Duration,
    pub cost: Money,
    pub error: Option<ProviderError>,
    /// Served from the verified-answer cache (not yet built: always false).
    pub cache_hit: bool,
    /// Made on the account's own endpoint and key: its cost is the
    /// customer's, not ours.
    pub byok: bool,
}

/// The answer of the first model that succeeded.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    pub model: String,
    pub generation: Generation,
}

/// What a route produced: an answer or the last error, plus every call.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteResult {
    pub result: Result<Routed, ProviderError>,
    pub calls: Vec<CallRecord>,
}

/// The router.
#[derive(Clone)]
pub struct Router {
    registry: Arc<ModelRegistry>,
}

impl Router {
    pub fn new(registry: Arc<ModelRegistry>) -> Self {
        Router { registry }
    }

    pub fn registry(&self) -> &ModelRegistry {
        &self.registry
    }

    /// Tries each model of `route` in order until one answers.
    pub async fn generate(
        &self,
        route: &[String],
        messages: &[Message],
        overrides: Overrides,
        json_schema: Option<&serde_json::Value>,
    ) -> RouteResult {
        self.generate_with(route, messages, overrides, json_schema, None)
            .await
    }

    /// [`Router::generate`] for an account with its own key: BYOK models
    /// call `byok`'s endpoint with it, and their calls are flagged `byok`.
    pub async fn generate_with(
        &self,
        route: &[String],
        messages: &[Message],
        overrides: Overrides,
        json_schema: Option<&serde_json::Value>,
        byok: Option<&ByokKey>,
    ) -> RouteResult {
        self.generate_tools(route, messages, overrides, json_schema, &[], byok)
            .await
    }

    /// [`Router::generate_with`] offering `tools`: the answer may be
    /// [`crate::Generation::tool_calls`] instead of text.
    pub async fn generate_tools(
        &self,
        route: &[String],
        messages: &[Message],
        overrides: Overrides,
        json_schema: Option<&serde_json::Value>,
        tools: &[ToolDefinition],
        byok: Option<&ByokKey>,
    ) -> RouteResult {
        let mut calls = Vec::with_capacity(route.len().min(4));
        let mut last_error = ProviderError::NotConfigured("the model route is empty".to_owned());
        for name in route {
            let Some(model) = self.registry.get(name) else {
                let error = ProviderError::NotConfigured(format!("model {name:?} is not configured"));
                tracing::warn!(model = %name, "route names a model that is not configured; skipping it");
                calls.push(CallRecord {
                    model: name.clone(),
                    provider: None,
                    usage: Usage::default(),
                    latency: Duration::ZERO,
                    cost: Money::zero(bounty_core::Currency::USD),
                    error: Some(error.clone()),
                    cache_hit: false,
                    byok: false,
                });
                last_error = error;
                continue;
            };
            let defaults = model.defaults();
            let request = GenerateRequest {
                messages: messages.to_vec(),
                max_tokens: overrides.max_tokens.unwrap_or(defaults.max_tokens),
                temperature: overrides.temperature.unwrap_or(defaults.temperature),
                seed: overrides.seed.unwrap_or(defaults.seed),
                json_schema: json_schema.cloned(),
                tools: tools.to_vec(),
            };
            let started = Instant::now();
            let outcome = model.generate_with(request, byok).await;
            let latency = started.elapsed();
            match outcome {
                Ok(mut generation) => {
                    if generation.text.contains('\0') {
                        generation.text = generation.text.replace('\0', "");
                    }
                    calls.push(CallRecord {
                        model: name.clone(),
                        provider: Some(model.provider()),
                        usage: generation.usage,
                        latency,
                        cost: price::cost(model.price(), generation.usage, latency),
                        error: None,
                        cache_hit: false,
                        byok: model.is_byok(),
                    });
                    return RouteResult {
                        result: Ok(Routed {
                            model: name.clone(),
                            generation,
                        }),
                        calls,
                    };
                }
                Err(error) => {
                    tracing::warn!(model = %name, code = error.code(), %error, "model call failed; trying the next model of the route");
                    calls.push(CallRecord {
                        model: name.clone(),
                        provider: Some(model.provider()),
                        usage: Usage::default(),
                        latency,
                        cost: price::cost(
                            model.price(),
                            Usage::default(),
                            latency_for_cost(model.provider(), latency),
                        ),
                        error: Some(error.clone()),
                        cache_hit: false,
                        byok: model.is_byok(),
                    });
                    last_error = error;
                }
            }
        }
        RouteResult {
            result: Err(last_error),
            calls,
        }
    }
}

/// A failed remote call costs nothing (no tokens); a failed local call
/// still used the hardware for its wall time.
fn latency_for_cost(provider: ProviderKind, latency: Duration) -> Duration {
    match provider {
        ProviderKind::Llama => latency,
        ProviderKind::Openai => Duration::ZERO,
    }
}
