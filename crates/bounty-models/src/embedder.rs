//! [`Embedder`]: one `[embeddings.NAME]` model, turning texts into unit
//! vectors for retrieval.
//!
//! Whatever the provider, [`Embedder::embed`] keeps these promises:
//!
//! - one vector per text, in the order of the texts;
//! - every vector has unit length (L2-normalised here, whatever the
//!   provider sends), so cosine similarity is a dot product and scores from
//!   different calls compare;
//! - every vector of one embedder has the same width: the configured
//!   `dimensions`, else the local model's width, else the width of the
//!   first answer; a vector of another width is an error
//!   ([`EmbedError::Dimensions`]), never stored;
//! - an empty text is refused before anything is sent
//!   ([`EmbedError::EmptyText`]).
//!
//! Local models (llama.cpp) load once, on first use or [`Embedder::load`],
//! on a blocking thread, and run on their own inference threads; see
//! [`crate::local`] for batching and truncation. Remote models send
//! `POST {base_url}/embeddings` in OpenAI's wire format, at most `batch`
//! texts per request, one request after another, through the same client,
//! retries and error mapping as remote generation ([`crate::remote`]).

use std::sync::{Arc, OnceLock};

use tokio::sync::OnceCell;

use crate::config::check_name;
use crate::embedding_config::{EmbeddingConfig, LocalEmbeddingConfig};
use crate::error::{ConfigError, ProviderError};
use crate::local::LocalModel;
use crate::remote::RemoteModel;
use crate::types::ProviderKind;

/// One configured embedding model.
pub struct Embedder {
    name: String,
    backend: Backend,
    /// Width of every vector, once known.
    dimensions: OnceLock<usize>,
}

enum Backend {
    Local {
        config: LocalEmbeddingConfig,
        loaded: OnceCell<Arc<LocalModel>>,
    },
    Remote {
        /// Boxed: far larger than the local variant.
        model: Box<RemoteModel>,
        /// Sent as `dimensions` when set.
        dimensions: Option<u32>,
        /// Most texts per request.
        batch: usize,
    },
}

/// Embedding failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmbedError {
    /// Text number `index` (from 0) is the empty string.
    #[error("text {index} is empty: there is nothing to embed")]
    EmptyText { index: usize },
    /// The model answered vectors of another width than this embedder's.
    #[error("the embedder returned a vector of {got} dimensions where {expected} were expected")]
    Dimensions { expected: usize, got: usize },
    /// The model answered a vector with a NaN or infinite component.
    #[error("the embedder returned a vector with a NaN or infinite component")]
    NonFinite,
    /// The provider failed: unreachable, 401, 429, 5xx, a local failure…
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl EmbedError {
    /// Stable code, as [`ProviderError::code`] for provider failures.
    pub fn code(&self) -> &'static str {
        match self {
            EmbedError::EmptyText { .. } => "embed_empty_text",
            EmbedError::Dimensions { .. } => "embed_dimension_mismatch",
            EmbedError::NonFinite => "embed_non_finite",
            EmbedError::Provider(e) => e.code(),
        }
    }

    /// Whether trying again later may succeed: only provider failures
    /// that [`ProviderError::is_transient`] says so.
    pub fn is_transient(&self) -> bool {
        match self {
            EmbedError::Provider(e) => e.is_transient(),
            _ => false,
        }
    }
}

impl Embedder {
    /// Validates the configuration (files exist and are GGUF, URLs parse)
    /// without loading or calling anything.
    pub fn from_config(name: &str, config: &EmbeddingConfig) -> Result<Embedder, ConfigError> {
        let in_section = |e: ConfigError| ConfigError::embedding(name, e.key, e.message);
        check_name(name).map_err(in_section)?;
        let (backend, dimensions) = match config {
            EmbeddingConfig::Llama(local) => {
                local.validate(name)?;
                (
                    Backend::Local {
                        config: local.clone(),
                        loaded: OnceCell::new(),
                    },
                    OnceLock::new(),
                )
            }
            EmbeddingConfig::Openai(remote) => {
                remote.validate(name)?;
                let model = Box::new(RemoteModel::new(name, &remote.endpoint()).map_err(in_section)?);
                let known = OnceLock::new();
                if let Some(d) = remote.dimensions {
                    let _ = known.set(d as usize);
                }
                (
                    Backend::Remote {
                        model,
                        dimensions: remote.dimensions,
                        batch: remote.batch.max(1) as usize,
                    },
                    known,
                )
            }
        };
        Ok(Embedder {
            name: name.to_owned(),
            backend,
            dimensions,
        })
    }

    /// The name in configuration (`[embeddings.NAME]`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn provider(&self) -> ProviderKind {
        match self.backend {
            Backend::Local { .. } => ProviderKind::Llama,
            Backend::Remote { .. } => ProviderKind::Openai,
        }
    }

    /// Width of every vector: known from the configuration (`dimensions`),
    /// once a local model is loaded, or once a remote one has answered.
    pub fn dimensions(&self) -> Option<usize> {
        self.dimensions.get().copied()
    }

    /// Loads a local model now (on a blocking thread) instead of at its
    /// first call. A no-op for remote models.
    pub async fn load(&self) -> Result<(), EmbedError> {
        if let Backend::Local { config, loaded } = &self.backend {
            let model = loaded
                .get_or_try_init(|| async {
                    let (name, config) = (self.name.clone(), config.clone());
                    tokio::task::spawn_blocking(move || {
                        LocalModel::load_embedder(&name, &config).map(Arc::new)
                    })
                    .await
                    .map_err(|e| ProviderError::Local(format!("model loader thread failed: {e}")))?
                })
                .await?;
            let _ = self.dimensions.set(model.n_embd());
        }
        Ok(())
    }

    /// One unit vector per text, in order (see the module docs).
    #[tracing::instrument(skip_all, fields(embedder = %self.name, texts = texts.len()))]
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if let Some(index) = texts.iter().position(String::is_empty) {
            return Err(EmbedError::EmptyText { index });
        }
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let vectors = match &self.backend {
            Backend::Local { loaded, .. } => {
                self.load().await?;
                let model = loaded
                    .get()
                    .ok_or_else(|| ProviderError::Local("the embedding model is not loaded".into()))?;
                model.embed(texts.to_vec()).await?
            }
            Backend::Remote {
                model,
                dimensions,
                batch,
            } => {
                let mut out = Vec::with_capacity(texts.len());
                for chunk in texts.chunks(*batch) {
                    let answered = model.embed_with(chunk.to_vec(), *dimensions).await?;
                    for vector in answered {
                        if vector.iter().any(|x| !x.is_finite()) {
                            return Err(EmbedError::NonFinite);
                        }
                        out.push(bounty_core::vector::normalized(&vector));
                    }
                }
                out
            }
        };
        self.check_widths(&vectors)?;
        Ok(vectors)
    }

    /// Every vector has this embedder's width, learnt from the first
    /// vector when it was not known yet.
    fn check_widths(&self, vectors: &[Vec<f32>]) -> Result<(), EmbedError> {
        let Some(first) = vectors.first() else {
            return Ok(());
        };
        if first.is_empty() {
            return Err(ProviderError::Malformed("an embedding with no components".into()).into());
        }
        let expected = *self.dimensions.get_or_init(|| first.len());
        match vectors.iter().find(|v| v.len() != expected) {
            Some(v) => Err(EmbedError::Dimensions {
                expected,
                got: v.len(),
            }),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("Embedder");
        out.field("name", &self.name)
            .field("dimensions", &self.dimensions.get());
        match &self.backend {
            Backend::Local { config, .. } => out.field("local", config),
            Backend::Remote { model, .. } => out.field("remote", model),
        };
        out.finish()
    }
}
