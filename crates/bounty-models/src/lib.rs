//! Inference for Bounty.
//!
//! - [`local`]: llama.cpp through `llama-cpp-2`, loaded once per process and
//!   run on dedicated threads off the async runtime.
//! - [`remote`]: any OpenAI-compatible endpoint through `async-openai`, with
//!   timeouts and jittered retries that honour `Retry-After`.
//! - [`registry`]: the models declared in configuration, by name.
//! - [`embedder`]: embedding models (`[embeddings.NAME]`, local or remote)
//!   that turn texts into unit vectors for retrieval.
//! - [`price`]: what one call costs, in integer micros.
//! - [`router`]: walks an agent's route, falling back on provider errors, and
//!   returns a record of every call it made.

pub mod config;
pub mod embedder;
pub mod embedding_config;
pub mod error;
pub mod local;
pub mod openai_wire;
pub mod passthrough;
pub mod price;
pub mod registry;
pub mod remote;
pub mod router;
pub mod types;

#[cfg(feature = "test-support")]
pub mod testing;
pub mod tiny_gguf;
pub mod tool_grammar;

pub use config::{LocalModelConfig, ModelConfig, RemoteModelConfig};
pub use embedder::{EmbedError, Embedder};
pub use embedding_config::{EmbeddingConfig, LocalEmbeddingConfig, Pooling, RemoteEmbeddingConfig};
pub use error::{ConfigError, ProviderError};
pub use registry::{Model, ModelRegistry};
pub use router::{CallRecord, RouteResult, Router};
pub use types::{
    ByokKey, FinishReason, GenerateRequest, Generation, Message, ProviderKind, Role, Timings, ToolCall,
    ToolDefinition, Usage,
};
