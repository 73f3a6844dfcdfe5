//! The gateway's pass-through: an OpenAI request sent on to a remote model
//! as the client wrote it.
//!
//! An agent Bounty runs speaks to its models through async-openai's typed
//! requests ([`crate::remote`]). A client of the gateway is different: it
//! may use any parameter of the API (`top_p`, `logit_bias`, `stop`,
//! `parallel_tool_calls`, `reasoning_effort`, fields added next month),
//! and a typed round trip would drop what the types do not know. So the
//! gateway forwards the request body itself, with one change: `model`
//! becomes the endpoint's own name for the model. The response is read as
//! JSON (non-streaming) or handed back as the endpoint's server-sent
//! events (streaming), and its `usage` is read for the price.
//!
//! The same transport rules apply as for agents' calls: the model's HTTP
//! client (timeouts, the guarded resolver under BYOK), the same retry loop
//! (429, 5xx, timeouts and connection errors; `Retry-After` honoured), and
//! the same error classification. A stream is retried only until its
//! response headers arrive: once the endpoint has answered 2xx, its events
//! go to the client as they come.

use serde_json::Value;

use crate::error::ProviderError;
use crate::remote::{HttpFailure, RemoteModel};
use crate::types::Usage;

/// What a non-streaming call answered.
#[derive(Debug, Clone)]
pub struct JsonReply {
    /// The endpoint's response, as it sent it.
    pub body: Value,
    /// Its `usage`, when it sent one.
    pub usage: Option<Usage>,
}

impl RemoteModel {
    /// Sends `body` to `{base_url}/{path}` and returns the JSON answer,
    /// retried as the module docs describe.
    pub async fn passthrough_json(&self, path: &str, body: &Value) -> Result<JsonReply, ProviderError> {
        let body = self.rename_model(body);
        let (this, body) = (self, &body);
        let value = self
            .with_retries("gateway", || async move {
                let response = this.post_json(path, body).send().await?;
                if !response.status().is_success() {
                    let failure = HttpFailure::read(response).await?;
                    return Err(async_openai::error::OpenAIError::Boxed(Box::new(failure)));
                }
                let bytes = response.bytes().await?;
                serde_json::from_slice::<Value>(&bytes).map_err(|e| {
                    async_openai::error::OpenAIError::JSONDeserialize(
                        e,
                        String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
                    )
                })
            })
            .await?;
        if !value.is_object() {
            return Err(ProviderError::Malformed(
                "the response is not a JSON object".to_owned(),
            ));
        }
        let usage = value.get("usage").and_then(usage_of);
        Ok(JsonReply { body: value, usage })
    }

    /// Sends a streaming `body` and returns the 2xx response whose body is
    /// the endpoint's server-sent events. Retried until headers arrive.
    pub async fn passthrough_stream(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<reqwest::Response, ProviderError> {
        let body = self.rename_model(body);
        let (this, body) = (self, &body);
        self.with_retries("gateway_stream", || async move {
            let response = this.post_json(path, body).send().await?;
            if response.status().is_success() {
                Ok(response)
            } else {
                let failure = HttpFailure::read(response).await?;
                Err(async_openai::error::OpenAIError::Boxed(Box::new(failure)))
            }
        })
        .await
    }

    fn rename_model(&self, body: &Value) -> Value {
        let mut body = body.clone();
        if let Some(object) = body.as_object_mut() {
            object.insert("model".to_owned(), Value::String(self.model().to_owned()));
        }
        body
    }
}

/// An OpenAI `usage` object: `prompt_tokens`, `completion_tokens`, and the
/// details `prompt_tokens_details.cached_tokens` and
/// `completion_tokens_details.reasoning_tokens`. Embeddings' usage has no
/// `completion_tokens` (0). `None` when it is not an object with a
/// `prompt_tokens` count.
pub fn usage_of(usage: &Value) -> Option<Usage> {
    let count = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let prompt_tokens = usage.get("prompt_tokens")?.as_u64()?;
    Some(Usage {
        prompt_tokens,
        completion_tokens: count(usage.get("completion_tokens")),
        cached_tokens: count(usage.pointer("/prompt_tokens_details/cached_tokens")),
        reasoning_tokens: count(usage.pointer("/completion_tokens_details/reasoning_tokens")),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn usage_reads_the_details_and_tolerates_their_absence() {
        let full = json!({
            "prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160,
            "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 30}
        });
        assert_eq!(
            usage_of(&full),
            Some(Usage {
                prompt_tokens: 120,
                completion_tokens: 40,
                cached_tokens: 100,
                reasoning_tokens: 30
            })
        );
        assert_eq!(
            usage_of(&json!({"prompt_tokens": 7, "total_tokens": 7})),
            Some(Usage::tokens(7, 0))
        );
        assert_eq!(
            usage_of(&json!({"prompt_tokens": 7, "prompt_tokens_details": null})),
            Some(Usage::tokens(7, 0))
        );
        assert_eq!(usage_of(&json!(null)), None);
        assert_eq!(usage_of(&json!({"completion_tokens": 3})), None);
        assert_eq!(usage_of(&json!({"prompt_tokens": -1})), None);
    }
}
