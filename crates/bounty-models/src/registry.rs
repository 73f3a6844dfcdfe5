//! The models declared in configuration, by name: `[models.NAME]`, which
//! generate, and `[embeddings.NAME]`, which embed ([`Embedder`]). The two
//! tables are separate namespaces.

use std::collections::BTreeMap;
use std::sync::Arc;

use bounty_outbound::{OutboundError, OutboundPolicy};
use serde::Serialize;
use tokio::sync::OnceCell;

use crate::config::{
    GenerationDefaults, LocalModelConfig, ModelConfig, Price, RemoteModelConfig, check_name,
};
use crate::embedder::Embedder;
use crate::embedding_config::EmbeddingConfig;
use crate::error::{ConfigError, ProviderError};
use crate::local::LocalModel;
use crate::passthrough::JsonReply;
use crate::remote::RemoteModel;
use crate::types::{ByokKey, GenerateRequest, Generation, ProviderKind};

/// One usable model.
pub struct Model {
    name: String,
    price: Price,
    defaults: GenerationDefaults,
    backend: Backend,
}

enum Backend {
    /// Loaded on first use (or [`Model::load`]), once per process.
    Local {
        config: LocalModelConfig,
        loaded: OnceCell<Arc<LocalModel>>,
    },
    Remote(RemoteModel),
    /// A remote model called on each account's own endpoint and key,
    /// through a client that keeps to `outbound` (the endpoint is the
    /// customer's: see `bounty_outbound`).
    Byok {
        config: RemoteModelConfig,
        outbound: OutboundPolicy,
    },
}

/// What `bounty models list` and `GET /v1/models` show of a model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub provider: ProviderKind,
    /// GGUF path (local) or base URL (remote). Never a key.
    pub location: String,
    /// The endpoint's model name (remote only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_model: Option<String>,
    pub price: Price,
    pub defaults: GenerationDefaults,
}

impl Model {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn provider(&self) -> ProviderKind {
        match self.backend {
            Backend::Local { .. } => ProviderKind::Llama,
            Backend::Remote(_) | Backend::Byok { .. } => ProviderKind::Openai,
        }
    }

    pub fn price(&self) -> &Price {
        &self.price
    }

    pub fn defaults(&self) -> GenerationDefaults {
        self.defaults
    }

    pub fn info(&self) -> ModelInfo {
        let (location, remote_model) = match &self.backend {
            Backend::Local { config, .. } => (config.path.display().to_string(), None),
            Backend::Remote(remote) => (remote.base_url().to_owned(), Some(remote.model().to_owned())),
            Backend::Byok { config, .. } => (
                "the account's own endpoint (byok)".to_owned(),
                Some(config.model.clone()),
            ),
        };
        ModelInfo {
            name: self.name.clone(),
            provider: self.provider(),
            location,
            remote_model,
            price: self.price,
            defaults: self.defaults,
        }
    }

    /// Loads a local model now (on a blocking thread) instead of at its
    /// first call. A no-op for remote models.
    pub async fn load(&self) -> Result<(), ProviderError> {
        if let Backend::Local { .. } = self.backend {
            self.local().await?;
        }
        Ok(())
    }

    async fn local(&self) -> Result<&Arc<LocalModel>, ProviderError> {
        let Backend::Local { config, loaded } = &self.backend else {
            unreachable!("local() is only called on local models")
        };
        loaded
            .get_or_try_init(|| async {
                let (name, config) = (self.name.clone(), config.clone());
                tokio::task::spawn_blocking(move || LocalModel::load(&name, &config).map(Arc::new))
                    .await
                    .map_err(|e| ProviderError::Local(format!("model loader thread failed: {e}")))?
            })
            .await
    }

    /// Generates a completion.
    /// Whether calls go to the calling account's own endpoint and key.
    pub fn is_byok(&self) -> bool {
        matches!(self.backend, Backend::Byok { .. })
    }

    pub async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
        self.generate_with(request, None).await
    }

    /// Generates; a BYOK model calls `byok`'s endpoint with its key, and
    /// without one fails (`byok_key_missing`, permanent).
    pub async fn generate_with(
        &self,
        request: GenerateRequest,
        byok: Option<&ByokKey>,
    ) -> Result<Generation, ProviderError> {
        match &self.backend {
            Backend::Local { .. } => self.local().await?.generate(request).await,
            Backend::Remote(remote) => remote.generate(request).await,
            Backend::Byok { config, outbound } => {
                let remote = self.byok_remote(config, outbound, byok)?;
                remote.generate(request).await.map_err(byok_error)
            }
        }
    }

    /// The account's own endpoint for a BYOK model, through the guarded
    /// client.
    fn byok_remote(
        &self,
        config: &RemoteModelConfig,
        outbound: &OutboundPolicy,
        byok: Option<&ByokKey>,
    ) -> Result<RemoteModel, ProviderError> {
        let Some(key) = byok else {
            return Err(ProviderError::ByokKeyMissing(self.name.clone()));
        };
        // An IP-literal host never reaches the guarded resolver.
        if let Ok(url) = reqwest::Url::parse(key.base_url.trim()) {
            bounty_outbound::check_literal(&url, outbound.allow_private).map_err(|e| match e {
                OutboundError::Refused { .. } => ProviderError::AddressRefused(e.to_string()),
                other => ProviderError::Rejected {
                    status: 400,
                    message: format!("the account's endpoint: {other}"),
                },
            })?;
        }
        let own = RemoteModelConfig {
            base_url: key.base_url.clone(),
            api_key: Some(key.api_key.clone()),
            byok: false,
            ..config.clone()
        };
        RemoteModel::guarded(&self.name, &own, outbound).map_err(|e| ProviderError::Rejected {
            status: 400,
            message: format!("the account's endpoint: {e}"),
        })
    }

    /// The gateway's non-streaming pass-through of an OpenAI request body
    /// to `path` (`chat/completions`, `embeddings`) of a remote model, or
    /// of the account's own endpoint for a BYOK model. `None` for a local
    /// model, which the gateway runs through [`Model::generate`].
    pub async fn passthrough_json(
        &self,
        path: &str,
        body: &serde_json::Value,
        byok: Option<&ByokKey>,
    ) -> Option<Result<JsonReply, ProviderError>> {
        Some(match &self.backend {
            Backend::Local { .. } => return None,
            Backend::Remote(remote) => remote.passthrough_json(path, body).await,
            Backend::Byok { config, outbound } => match self.byok_remote(config, outbound, byok) {
                Ok(remote) => remote.passthrough_json(path, body).await.map_err(byok_error),
                Err(e) => Err(e),
            },
        })
    }

    /// [`Model::passthrough_json`] for a streaming request: the 2xx
    /// response whose body is the endpoint's server-sent events.
    pub async fn passthrough_stream(
        &self,
        path: &str,
        body: &serde_json::Value,
        byok: Option<&ByokKey>,
    ) -> Option<Result<reqwest::Response, ProviderError>> {
        Some(match &self.backend {
            Backend::Local { .. } => return None,
            Backend::Remote(remote) => remote.passthrough_stream(path, body).await,
            Backend::Byok { config, outbound } => match self.byok_remote(config, outbound, byok) {
                Ok(remote) => remote.passthrough_stream(path, body).await.map_err(byok_error),
                Err(e) => Err(e),
            },
        })
    }

    /// Embeds `texts` with this model (a BYOK model cannot: no account).
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, ProviderError> {
        match &self.backend {
            Backend::Local { .. } => self.local().await?.embed(texts).await,
            Backend::Remote(remote) => remote.embed(texts).await,
            Backend::Byok { .. } => Err(ProviderError::ByokKeyMissing(self.name.clone())),
        }
    }
}

/// A 401 or 403 from the account's own endpoint is its key's fault.
fn byok_error(e: ProviderError) -> ProviderError {
    match e {
        ProviderError::Rejected {
            status: status @ (401 | 403),
            message,
        } => ProviderError::ByokKeyRejected { status, message },
        other => other,
    }
}

/// Every declared model, by name.
#[derive(Clone, Default)]
pub struct ModelRegistry {
    models: BTreeMap<String, Arc<Model>>,
    embedders: BTreeMap<String, Arc<Embedder>>,
}

impl ModelRegistry {
    /// Validates every model (files exist and are GGUF, URLs and prices
    /// parse) without loading any. BYOK models keep to the default
    /// outbound policy: public addresses only.
    pub fn from_config(models: &BTreeMap<String, ModelConfig>) -> Result<Self, ConfigError> {
        ModelRegistry::from_config_with(models, OutboundPolicy::default())
    }

    /// [`ModelRegistry::from_config`], with BYOK models calling accounts'
    /// endpoints under `outbound` (`tools.allow_private` sets its
    /// `allow_private`).
    pub fn from_config_with(
        models: &BTreeMap<String, ModelConfig>,
        outbound: OutboundPolicy,
    ) -> Result<Self, ConfigError> {
        let mut out = BTreeMap::new();
        for (name, config) in models {
            check_name(name)?;
            let model = match config {
                ModelConfig::Llama(local) => Model {
                    name: name.clone(),
                    price: local.validate(name)?,
                    defaults: local.defaults,
                    backend: Backend::Local {
                        config: local.clone(),
                        loaded: OnceCell::new(),
                    },
                },
                ModelConfig::Openai(remote) => Model {
                    name: name.clone(),
                    price: remote.validate(name)?,
                    defaults: remote.defaults,
                    backend: if remote.byok {
                        Backend::Byok {
                            config: remote.clone(),
                            outbound,
                        }
                    } else {
                        Backend::Remote(RemoteModel::new(name, remote)?)
                    },
                },
            };
            out.insert(name.clone(), Arc::new(model));
        }
        Ok(ModelRegistry {
            models: out,
            embedders: BTreeMap::new(),
        })
    }

    /// Adds the `[embeddings.NAME]` models, validated like
    /// [`ModelRegistry::from_config`]'s (nothing loaded, nothing called).
    pub fn with_embeddings(
        mut self,
        embeddings: &BTreeMap<String, EmbeddingConfig>,
    ) -> Result<Self, ConfigError> {
        for (name, config) in embeddings {
            self.embedders
                .insert(name.clone(), Arc::new(Embedder::from_config(name, config)?));
        }
        Ok(self)
    }

    /// The embedding model declared as `[embeddings.NAME]`.
    pub fn embedder(&self, name: &str) -> Option<&Arc<Embedder>> {
        self.embedders.get(name)
    }

    /// Every embedding model, by name.
    pub fn embedders(&self) -> impl Iterator<Item = &Arc<Embedder>> {
        self.embedders.values()
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Model>> {
        self.models.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.models.contains_key(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Model>> {
        self.models.values()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }
}
