//! `[models.NAME]` tables: what a model is, where it runs and what it costs.
//!
//! ```toml
//! [models.tiny]
//! provider = "llama"
//! path = "models/stories260K.gguf"
//! threads = 2
//! price = { per_cpu_second = "0.0001" }      # USD per CPU-second
//!
//! [models.gpt-small]
//! provider = "openai"
//! base_url = "https://api.openai.com/v1"
//! model = "gpt-4o-mini"
//! api_key = "sk-…"                            # secret: never logged
//! price = { input_per_million = "0.15", output_per_million = "0.60" }
//! ```

use std::fmt;
use std::io::Read;
use std::path::PathBuf;

use bounty_core::{Currency, Money};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// One declared model.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case")]
pub enum ModelConfig {
    /// llama.cpp, in process.
    Llama(LocalModelConfig),
    /// An OpenAI-compatible endpoint.
    Openai(RemoteModelConfig),
}

/// Defaults of a generation; an agent may override them.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerationDefaults {
    pub max_tokens: u32,
    pub temperature: f32,
    pub seed: u32,
}

impl Default for GenerationDefaults {
    fn default() -> Self {
        GenerationDefaults {
            max_tokens: 256,
            temperature: 0.0,
            seed: 0,
        }
    }
}

/// `provider = "llama"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalModelConfig {
    /// Path of a GGUF file.
    pub path: PathBuf,
    /// Context size in tokens; 0 takes the model's training context.
    #[serde(default)]
    pub context_size: u32,
    /// Threads for generation; default: the cores divided among `parallel`.
    #[serde(default)]
    pub threads: Option<u32>,
    /// Threads for prompt processing; default: `threads`.
    #[serde(default)]
    pub batch_threads: Option<u32>,
    /// Layers offloaded to a GPU (needs a GPU build of llama.cpp).
    #[serde(default)]
    pub gpu_layers: u32,
    /// Inference threads, each with its own context: how many generations
    /// run at once on this model.
    #[serde(default = "one")]
    pub parallel: u32,
    /// Generation defaults.
    #[serde(default)]
    pub defaults: GenerationDefaults,
    /// Amortised cost of the hardware.
    pub price: LocalPrice,
}

pub(crate) fn one() -> u32 {
    1
}

/// `provider = "openai"`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteModelConfig {
    /// Base URL of the API, e.g. `https://api.openai.com/v1`. Not used
    /// (and may be left out) with `byok`.
    #[serde(default)]
    pub base_url: String,
    /// Bring your own key: every call goes to the calling account's own
    /// endpoint with its own key (`PUT /v1/byok`), flagged BYOK, its cost
    /// paid by the customer. `base_url` and `api_key` here are then not
    /// used; an account without a key cannot use the model.
    #[serde(default)]
    pub byok: bool,
    /// The model name the endpoint knows.
    pub model: String,
    /// Bearer key. Secret: never logged, never returned.
    #[serde(default)]
    pub api_key: Option<SecretString>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Longest one attempt may take.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Retries after the first attempt, on 429, 5xx, timeouts and
    /// connection errors.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Base of the jittered exponential backoff, in ms.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Cap of one backoff (and of an honoured `Retry-After`), in ms.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Generation defaults.
    #[serde(default)]
    pub defaults: GenerationDefaults,
    /// Price per million tokens.
    pub price: RemotePrice,
}

pub(crate) fn default_connect_timeout_ms() -> u64 {
    5_000
}
pub(crate) fn default_request_timeout_ms() -> u64 {
    60_000
}
pub(crate) fn default_max_retries() -> u32 {
    3
}
pub(crate) fn default_retry_base_ms() -> u64 {
    250
}
pub(crate) fn default_retry_max_ms() -> u64 {
    20_000
}

impl fmt::Debug for RemoteModelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteModelConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("max_retries", &self.max_retries)
            .field("retry_base_ms", &self.retry_base_ms)
            .field("retry_max_ms", &self.retry_max_ms)
            .field("defaults", &self.defaults)
            .field("price", &self.price)
            .finish()
    }
}

/// Price of a remote model: decimal strings in `currency` per million
/// tokens, parsed exactly (no floats).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemotePrice {
    pub input_per_million: String,
    pub output_per_million: String,
    /// Prompt tokens the provider read from its prompt cache
    /// (`usage.prompt_tokens_details.cached_tokens`); default: the input
    /// price.
    #[serde(default)]
    pub cached_input_per_million: Option<String>,
    /// Hidden reasoning tokens
    /// (`usage.completion_tokens_details.reasoning_tokens`); default: the
    /// output price.
    #[serde(default)]
    pub reasoning_per_million: Option<String>,
    #[serde(default = "usd")]
    pub currency: String,
}

/// Price of a local model: amortised cost of one CPU-second (wall time ×
/// threads) or one GPU-second (wall time), as a decimal string.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalPrice {
    #[serde(default)]
    pub per_cpu_second: Option<String>,
    #[serde(default)]
    pub per_gpu_second: Option<String>,
    #[serde(default = "usd")]
    pub currency: String,
}

fn usd() -> String {
    "USD".to_owned()
}

/// A validated price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "per", rename_all = "snake_case")]
pub enum Price {
    /// Remote: per million tokens, with the provider's cached-prompt and
    /// reasoning rates (equal to `input` and `output` when the price book
    /// sets none).
    MillionTokens {
        input: Money,
        output: Money,
        cached_input: Money,
        reasoning: Money,
    },
    /// Local on CPU: per CPU-second.
    CpuSecond { rate: Money, threads: u32 },
    /// Local on GPU: per GPU-second.
    GpuSecond { rate: Money },
}

impl Price {
    pub fn currency(&self) -> Currency {
        match self {
            Price::MillionTokens { input, .. } => input.currency,
            Price::CpuSecond { rate, .. } | Price::GpuSecond { rate } => rate.currency,
        }
    }
}

fn parse_money(model: &str, key: &'static str, amount: &str, currency: &str) -> Result<Money, ConfigError> {
    let currency: Currency = currency
        .parse()
        .map_err(|e| ConfigError::new(model, "price.currency", format!("{e}")))?;
    let money = Money::parse_decimal(amount, currency)
        .map_err(|e| ConfigError::new(model, key, format!("{amount:?}: {e}")))?;
    if money.micros < 0 {
        return Err(ConfigError::new(model, key, "must not be negative"));
    }
    Ok(money)
}

/// Threads used when none are configured: every core.
pub fn default_threads() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

impl LocalModelConfig {
    /// Generation threads: as configured, else the cores divided among
    /// `parallel` (so the OpenMP teams never outnumber the cores).
    pub fn effective_threads(&self) -> u32 {
        self.threads
            .unwrap_or_else(|| (default_threads() / self.parallel.max(1)).max(1))
            .max(1)
    }

    /// Validates the file (present, readable, GGUF magic) and the numbers.
    /// Cheap: the model is not loaded.
    pub fn validate(&self, name: &str) -> Result<Price, ConfigError> {
        check_gguf(name, &self.path)?;
        if self.parallel == 0 {
            return Err(ConfigError::new(name, "parallel", "must be at least 1"));
        }
        if self.threads == Some(0) {
            return Err(ConfigError::new(name, "threads", "must be at least 1"));
        }
        if self.batch_threads == Some(0) {
            return Err(ConfigError::new(name, "batch_threads", "must be at least 1"));
        }
        check_defaults(name, &self.defaults)?;
        match (&self.price.per_cpu_second, &self.price.per_gpu_second) {
            (Some(cpu), None) => Ok(Price::CpuSecond {
                rate: parse_money(name, "price.per_cpu_second", cpu, &self.price.currency)?,
                threads: self.effective_threads(),
            }),
            (None, Some(gpu)) => Ok(Price::GpuSecond {
                rate: parse_money(name, "price.per_gpu_second", gpu, &self.price.currency)?,
            }),
            _ => Err(ConfigError::new(
                name,
                "price",
                "set exactly one of per_cpu_second and per_gpu_second",
            )),
        }
    }
}

impl RemoteModelConfig {
    /// Validates the URL, the numbers and the price.
    pub fn validate(&self, name: &str) -> Result<Price, ConfigError> {
        let url = self.base_url.trim();
        if self.byok && (!url.is_empty() || self.api_key.is_some()) {
            return Err(ConfigError::new(
                name,
                if url.is_empty() { "api_key" } else { "base_url" },
                "a byok model calls each account's own endpoint with its own key: leave base_url and api_key out",
            ));
        }
        if self.byok {
            // Checked when an account sets its endpoint (PUT /v1/byok).
        } else if !(url.starts_with("http://") || url.starts_with("https://"))
            || url.len() <= "https://".len()
        {
            return Err(ConfigError::new(
                name,
                "base_url",
                format!("{url:?} is not an http(s) URL"),
            ));
        }
        if self.model.trim().is_empty() {
            return Err(ConfigError::new(name, "model", "must not be empty"));
        }
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::new(name, "request_timeout_ms", "must be at least 1"));
        }
        if self.connect_timeout_ms == 0 {
            return Err(ConfigError::new(name, "connect_timeout_ms", "must be at least 1"));
        }
        check_defaults(name, &self.defaults)?;
        let money = |key: &'static str, amount: &str| parse_money(name, key, amount, &self.price.currency);
        let input = money("price.input_per_million", &self.price.input_per_million)?;
        let output = money("price.output_per_million", &self.price.output_per_million)?;
        Ok(Price::MillionTokens {
            input,
            output,
            cached_input: match &self.price.cached_input_per_million {
                Some(amount) => money("price.cached_input_per_million", amount)?,
                None => input,
            },
            reasoning: match &self.price.reasoning_per_million {
                Some(amount) => money("price.reasoning_per_million", amount)?,
                None => output,
            },
        })
    }
}

fn check_defaults(name: &str, d: &GenerationDefaults) -> Result<(), ConfigError> {
    if d.max_tokens == 0 {
        return Err(ConfigError::new(
            name,
            "defaults.max_tokens",
            "must be at least 1",
        ));
    }
    if !(d.temperature.is_finite() && (0.0..=2.0).contains(&d.temperature)) {
        return Err(ConfigError::new(
            name,
            "defaults.temperature",
            "must be between 0 and 2",
        ));
    }
    Ok(())
}

/// A model file must exist, be readable and start with the GGUF magic.
pub fn check_gguf(name: &str, path: &std::path::Path) -> Result<(), ConfigError> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| ConfigError::new(name, "path", format!("cannot open {}: {e}", path.display())))?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic)
        .map_err(|_| ConfigError::new(name, "path", format!("{} is not a GGUF file", path.display())))?;
    if &magic != b"GGUF" {
        return Err(ConfigError::new(
            name,
            "path",
            format!("{} is not a GGUF file", path.display()),
        ));
    }
    Ok(())
}

/// Model names: what agents' routes refer to.
pub fn check_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            name,
            "name",
            "model names are 1-64 characters of letters, digits and - _ . : /",
        ))
    }
}
