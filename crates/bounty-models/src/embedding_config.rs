//! `[embeddings.NAME]` tables: models that turn text into vectors for
//! retrieval.
//!
//! They are a table of their own, beside `[models.NAME]`, because they are
//! not models an agent's route may name: they never generate, and an
//! embedding model is chosen by the knowledge it indexes, not by a route.
//! The keys follow `[models.NAME]`'s where they mean the same thing.
//!
//! ```toml
//! [embeddings.local]
//! provider = "llama"
//! path = "models/bge-small-en-v1.5-q8_0.gguf"
//! pooling = "cls"                             # mean (default), cls or last
//! threads = 2
//! batch = 16                                  # texts decoded together
//!
//! [embeddings.openai]
//! provider = "openai"
//! base_url = "https://api.openai.com/v1"
//! model = "text-embedding-3-small"
//! dimensions = 512                            # optional, sent to the endpoint
//! api_key = "sk-…"                            # secret: never logged
//! ```
//!
//! Neither carries a price yet: retrieval is not a billed model call.

use std::fmt;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::{GenerationDefaults, RemoteModelConfig, RemotePrice, check_gguf};
use crate::error::ConfigError;

/// Most texts one local decode may hold: llama.cpp's `LLAMA_MAX_SEQ`.
pub const MAX_LOCAL_BATCH: u32 = 256;

/// Most inputs one `/embeddings` request may carry: OpenAI's limit.
pub const MAX_REMOTE_BATCH: u32 = 2048;

/// One declared embedding model.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum EmbeddingConfig {
    /// A GGUF run by llama.cpp in process, with pooling.
    Llama(LocalEmbeddingConfig),
    /// An OpenAI-compatible `/embeddings` endpoint.
    Openai(RemoteEmbeddingConfig),
}

/// How llama.cpp pools the token vectors of a text into one vector. Use
/// what the model was trained with: its model card says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The average of every token's vector (most sentence-transformers).
    #[default]
    Mean,
    /// The first token's vector (BERT-style models such as BGE).
    Cls,
    /// The last token's vector (decoder models such as Qwen3-Embedding).
    Last,
}

impl Pooling {
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Last => "last",
        }
    }
}

/// `provider = "llama"` under `[embeddings.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalEmbeddingConfig {
    /// Path of a GGUF file.
    pub path: PathBuf,
    /// How token vectors become one vector.
    #[serde(default)]
    pub pooling: Pooling,
    /// Context in tokens, which is also the most tokens one decode holds: a
    /// longer text keeps its first `context_size` tokens. 0 takes the
    /// model's training context, capped at 4096.
    #[serde(default)]
    pub context_size: u32,
    /// Threads; default: the cores divided among `parallel`.
    #[serde(default)]
    pub threads: Option<u32>,
    /// Layers offloaded to a GPU (needs a GPU build of llama.cpp).
    #[serde(default)]
    pub gpu_layers: u32,
    /// Inference threads, each with its own context.
    #[serde(default = "crate::config::one")]
    pub parallel: u32,
    /// Most texts decoded together, one sequence each (their tokens
    /// together within `context_size`). 1 to 256.
    #[serde(default = "default_local_batch")]
    pub batch: u32,
}

fn default_local_batch() -> u32 {
    16
}

/// `provider = "openai"` under `[embeddings.NAME]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteEmbeddingConfig {
    /// Base URL of the API, e.g. `https://api.openai.com/v1`; requests go
    /// to `{base_url}/embeddings`.
    pub base_url: String,
    /// The model name the endpoint knows.
    pub model: String,
    /// Bearer key. Secret: never logged, never returned.
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// Output dimensions to ask for (models that support shortening, such
    /// as `text-embedding-3-*`); every answer must then have them.
    #[serde(default)]
    pub dimensions: Option<u32>,
    /// Most texts per request; more are sent as several requests, in
    /// order. 1 to 2048.
    #[serde(default = "default_remote_batch")]
    pub batch: u32,
    #[serde(default = "crate::config::default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Longest one attempt may take.
    #[serde(default = "crate::config::default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Retries after the first attempt, on 429, 5xx, timeouts and
    /// connection errors.
    #[serde(default = "crate::config::default_max_retries")]
    pub max_retries: u32,
    /// Base of the jittered exponential backoff, in ms.
    #[serde(default = "crate::config::default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Cap of one backoff (and of an honoured `Retry-After`), in ms.
    #[serde(default = "crate::config::default_retry_max_ms")]
    pub retry_max_ms: u64,
}

fn default_remote_batch() -> u32 {
    64
}

impl fmt::Debug for RemoteEmbeddingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteEmbeddingConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("dimensions", &self.dimensions)
            .field("batch", &self.batch)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("max_retries", &self.max_retries)
            .field("retry_base_ms", &self.retry_base_ms)
            .field("retry_max_ms", &self.retry_max_ms)
            .finish()
    }
}

impl LocalEmbeddingConfig {
    /// Threads: as configured, else the cores divided among `parallel`.
    pub fn effective_threads(&self) -> u32 {
        self.threads
            .unwrap_or_else(|| (crate::config::default_threads() / self.parallel.max(1)).max(1))
            .max(1)
    }

    /// Validates the file (present, readable, GGUF magic) and the numbers.
    /// Cheap: the model is not loaded.
    pub fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let bad = |key, message: &str| ConfigError::embedding(name, key, message);
        check_gguf(name, &self.path).map_err(|e| ConfigError::embedding(name, "path", e.message))?;
        if self.parallel == 0 {
            return Err(bad("parallel", "must be at least 1"));
        }
        if self.threads == Some(0) {
            return Err(bad("threads", "must be at least 1"));
        }
        if !(1..=MAX_LOCAL_BATCH).contains(&self.batch) {
            return Err(bad("batch", "must be between 1 and 256"));
        }
        Ok(())
    }
}

impl RemoteEmbeddingConfig {
    /// Validates the URL and the numbers.
    pub fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let bad = |key, message: String| ConfigError::embedding(name, key, message);
        let url = self.base_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "https://".len() {
            return Err(bad("base_url", format!("{url:?} is not an http(s) URL")));
        }
        if self.model.trim().is_empty() {
            return Err(bad("model", "must not be empty".into()));
        }
        if self.dimensions == Some(0) {
            return Err(bad("dimensions", "must be at least 1".into()));
        }
        if !(1..=MAX_REMOTE_BATCH).contains(&self.batch) {
            return Err(bad("batch", "must be between 1 and 2048".into()));
        }
        if self.request_timeout_ms == 0 {
            return Err(bad("request_timeout_ms", "must be at least 1".into()));
        }
        if self.connect_timeout_ms == 0 {
            return Err(bad("connect_timeout_ms", "must be at least 1".into()));
        }
        Ok(())
    }

    /// The endpoint settings in the shape `RemoteModel` is built from. The
    /// generation-only fields (defaults, price) are never read on the
    /// embeddings path, so they are left at zero.
    pub(crate) fn endpoint(&self) -> RemoteModelConfig {
        RemoteModelConfig {
            base_url: self.base_url.clone(),
            byok: false,
            model: self.model.clone(),
            api_key: self.api_key.clone(),
            connect_timeout_ms: self.connect_timeout_ms,
            request_timeout_ms: self.request_timeout_ms,
            max_retries: self.max_retries,
            retry_base_ms: self.retry_base_ms,
            retry_max_ms: self.retry_max_ms,
            defaults: GenerationDefaults::default(),
            price: RemotePrice {
                input_per_million: "0".into(),
                output_per_million: "0".into(),
                cached_input_per_million: None,
                reasoning_per_million: None,
                currency: "USD".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: serde_json::Value) -> Result<EmbeddingConfig, serde_json::Error> {
        serde_json::from_value(value)
    }

    #[test]
    fn local_defaults_and_pooling() {
        let config =
            parse(serde_json::json!({ "provider": "llama", "path": "m.gguf", "pooling": "cls" })).unwrap();
        let EmbeddingConfig::Llama(local) = config else {
            panic!("a llama config")
        };
        assert_eq!(local.pooling, Pooling::Cls);
        assert_eq!((local.batch, local.parallel, local.context_size), (16, 1, 0));
        assert!(
            parse(serde_json::json!({ "provider": "llama", "path": "m.gguf", "pooling": "rank" })).is_err()
        );
        assert!(parse(serde_json::json!({ "provider": "llama", "path": "m.gguf", "price": {} })).is_err());
    }

    #[test]
    fn remote_validation_names_the_key_and_hides_the_key() {
        let remote = |tweak: serde_json::Value| {
            let mut v = serde_json::json!({
                "base_url": "http://127.0.0.1:9/v1", "model": "e", "api_key": "sk-hidden"
            });
            for (k, x) in tweak.as_object().unwrap() {
                v[k] = x.clone();
            }
            serde_json::from_value::<RemoteEmbeddingConfig>(v).unwrap()
        };
        assert!(remote(serde_json::json!({})).validate("e").is_ok());
        let err = remote(serde_json::json!({ "batch": 0 }))
            .validate("e")
            .unwrap_err();
        assert_eq!(err.to_string(), "embeddings.e.batch: must be between 1 and 2048");
        assert_eq!(
            remote(serde_json::json!({ "dimensions": 0 }))
                .validate("e")
                .unwrap_err()
                .key,
            "dimensions"
        );
        assert_eq!(
            remote(serde_json::json!({ "base_url": "ftp://x" }))
                .validate("e")
                .unwrap_err()
                .key,
            "base_url"
        );
        assert!(!format!("{:?}", remote(serde_json::json!({}))).contains("sk-hidden"));
    }

    #[test]
    fn a_local_file_that_is_not_gguf_is_refused() {
        let config = LocalEmbeddingConfig {
            path: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
            pooling: Pooling::Mean,
            context_size: 0,
            threads: None,
            gpu_layers: 0,
            parallel: 1,
            batch: 16,
        };
        let err = config.validate("e").unwrap_err();
        assert_eq!((err.section, err.key), ("embeddings", "path"));
    }
}
