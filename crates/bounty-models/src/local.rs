//! Local inference: llama.cpp in this process, through `llama-cpp-2`.
//!
//! A [`LocalModel`] loads its GGUF once and shares it (read-only) between
//! `parallel` dedicated OS threads. Each thread owns one `LlamaContext`
//! (KV cache and compute buffers), created on that thread and reused for
//! every request it serves; the KV cache is cleared at the start of each
//! request. Requests reach the threads through one channel, and answers come
//! back through a tokio oneshot, so the async runtime never blocks on
//! inference and tokio's blocking pool is never tied up by it.
//!
//! llama.cpp facts this module depends on (`llama-cpp-2` 0.1.160):
//!
//! - `LlamaBackend::init()` succeeds once per process; the backend lives in
//!   a process-wide `OnceLock` here and is never freed.
//! - Creating contexts from one model concurrently is unsound (llama.cpp
//!   mutates the model while doing it), so context creation is serialised.
//! - `LlamaModel::load_from_file` `debug_assert!`s that the file exists, so
//!   the file is checked first: a bad path must be an error, not a panic.
//! - `LlamaSampler::sample` already accepts the sampled token into the
//!   chain (grammar included); calling `accept` again aborts on grammars.
//! - llama.cpp rounds the context up to a multiple of 256; errors report
//!   the context actually allocated.
//! - Pooled embeddings are computed per micro-batch, so the embeddings
//!   context takes a whole batch of texts in one micro-batch
//!   (`n_ubatch = n_ctx`), one sequence id per text, with a unified KV
//!   cache (otherwise llama.cpp gives each sequence `n_ctx / n_seq_max`
//!   cells); see [`embed`].
//! - GGUFs converted from llama2.c (stories260K) carry no chat template;
//!   those, and templates llama.cpp cannot apply, fall back to ChatML.
//!
//! llama.cpp's own log lines go to `tracing` under the target
//! `llama-cpp-2` (model loading is chatty at `info`; filter it with
//! `llama-cpp-2=warn`).
//!
//! A model loaded with [`LocalModel::load_embedder`] (an `[embeddings.NAME]`
//! table) serves embeddings only: its threads create no generation context.

mod embed;

use std::num::NonZeroU32;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::{LlamaCppError, LogOptions, json_schema_to_grammar, send_logs_to_tracing};
use tokio::sync::oneshot;

use crate::config::LocalModelConfig;
use crate::embedding_config::{LocalEmbeddingConfig, Pooling};
use crate::error::ProviderError;
use crate::tool_grammar;
use crate::types::{FinishReason, GenerateRequest, Generation, Message, Role, Timings, Usage};

/// Context size used when the configuration says 0 ("the model's"): the
/// training context, capped here because a KV cache for a 128K training
/// context would take gigabytes per inference thread.
const DEFAULT_CONTEXT_CAP: u32 = 4096;

/// llama.cpp's context granularity (`GGML_PAD(n_ctx, 256)`).
const CONTEXT_PADDING: u32 = 256;

/// Most tokens decoded in one call during prompt processing.
const MAX_BATCH: u32 = 2048;

/// Texts in one embeddings decode of a generation model.
const DEFAULT_EMBEDDING_BATCH: u32 = 16;

/// Template applied when the GGUF has none, or one llama.cpp cannot apply.
const FALLBACK_TEMPLATE: &str = "chatml";

/// The llama.cpp backend: initialised once per process, never freed.
static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();

/// Serialises `LlamaModel::new_context` (see the module docs).
static NEW_CONTEXT: Mutex<()> = Mutex::new(());

fn backend() -> Result<&'static LlamaBackend, ProviderError> {
    BACKEND
        .get_or_init(|| {
            send_logs_to_tracing(LogOptions::default());
            match LlamaBackend::init() {
                Ok(backend) => Ok(backend),
                // Someone else in this process initialised llama.cpp: it is
                // ready, and `LlamaBackend` is only the proof of that.
                Err(LlamaCppError::BackendAlreadyInitialized) => Ok(LlamaBackend {}),
                Err(e) => Err(e.to_string()),
            }
        })
        .as_ref()
        .map_err(|e| ProviderError::Local(format!("cannot initialise llama.cpp: {e}")))
}

/// A GGUF loaded into llama.cpp, served by dedicated inference threads.
///
/// Dropping it stops the threads: a generation in progress stops at its
/// next token.
pub struct LocalModel {
    shared: Arc<Shared>,
    /// Requests to the inference threads; `None` once dropping.
    jobs: Option<mpsc::Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

/// What every inference thread reads.
struct Shared {
    name: String,
    model: LlamaModel,
    template: LlamaChatTemplate,
    template_name: &'static str,
    n_ctx: u32,
    threads: i32,
    batch_threads: i32,
    /// Whether the threads generate; an embedding model's do not.
    generates: bool,
    /// How the threads embed.
    embedding: EmbeddingSetup,
    /// Set when the model is dropped: threads abandon their work.
    closing: AtomicBool,
}

/// How a model's embeddings context pools and batches.
#[derive(Debug, Clone, Copy)]
struct EmbeddingSetup {
    pooling: Pooling,
    /// Most texts in one decode (sequences of the context).
    batch: u32,
}

/// What [`LocalModel::start`] needs, from either kind of table.
struct Setup<'a> {
    path: &'a Path,
    context_size: u32,
    threads: u32,
    batch_threads: u32,
    gpu_layers: u32,
    parallel: u32,
    generates: bool,
    embedding: EmbeddingSetup,
}

type Reply<T> = oneshot::Sender<Result<T, ProviderError>>;

enum Job {
    Generate {
        request: GenerateRequest,
        reply: Reply<Generation>,
    },
    Embed {
        texts: Vec<String>,
        reply: Reply<Vec<Vec<f32>>>,
    },
}

fn local(what: &str, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Local(format!("{what}: {e}"))
}

impl LocalModel {
    /// Loads the GGUF and starts `config.parallel` inference threads, each
    /// with its own context. Blocking: call it from a blocking thread.
    #[tracing::instrument(skip_all, fields(model = name))]
    pub fn load(name: &str, config: &LocalModelConfig) -> Result<LocalModel, ProviderError> {
        let threads = config.effective_threads();
        LocalModel::start(
            name,
            &Setup {
                path: &config.path,
                context_size: config.context_size,
                threads,
                batch_threads: config.batch_threads.unwrap_or(threads),
                gpu_layers: config.gpu_layers,
                parallel: config.parallel,
                generates: true,
                embedding: EmbeddingSetup {
                    pooling: Pooling::Mean,
                    batch: DEFAULT_EMBEDDING_BATCH,
                },
            },
        )
    }

    /// Loads an embedding model: `config.parallel` threads, each with one
    /// embeddings context of the configured pooling, and none for
    /// generation. Blocking: call it from a blocking thread.
    #[tracing::instrument(skip_all, fields(model = name))]
    pub fn load_embedder(name: &str, config: &LocalEmbeddingConfig) -> Result<LocalModel, ProviderError> {
        let threads = config.effective_threads();
        LocalModel::start(
            name,
            &Setup {
                path: &config.path,
                context_size: config.context_size,
                threads,
                batch_threads: threads,
                gpu_layers: config.gpu_layers,
                parallel: config.parallel,
                generates: false,
                embedding: EmbeddingSetup {
                    pooling: config.pooling,
                    batch: config.batch.clamp(1, crate::embedding_config::MAX_LOCAL_BATCH),
                },
            },
        )
    }

    fn start(name: &str, config: &Setup<'_>) -> Result<LocalModel, ProviderError> {
        let backend = backend()?;
        check_file(config.path)?;

        let started = Instant::now();
        let params = LlamaModelParams::default().with_n_gpu_layers(config.gpu_layers);
        let model = LlamaModel::load_from_file(backend, config.path, &params).map_err(|e| {
            ProviderError::Local(format!("llama.cpp cannot load {}: {e}", config.path.display()))
        })?;

        let (template, template_name) = chat_template(&model)?;
        // llama.cpp rounds the context up to a multiple of 256 itself; doing
        // it here keeps the embeddings micro-batch the size of the context.
        let n_ctx = match config.context_size {
            0 => model.n_ctx_train().min(DEFAULT_CONTEXT_CAP),
            n => n,
        }
        .clamp(1, u32::MAX - CONTEXT_PADDING)
        .next_multiple_of(CONTEXT_PADDING);
        // Each inference thread runs its own OpenMP team: more OpenMP
        // threads than cores makes them sleep at every sync point (up to 4×
        // slower), so by default the cores are shared among `parallel`.
        let threads = config.threads.max(1);
        let batch_threads = config.batch_threads.max(1);
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            model,
            template,
            template_name,
            n_ctx,
            threads: i32::try_from(threads).unwrap_or(i32::MAX),
            batch_threads: i32::try_from(batch_threads).unwrap_or(i32::MAX),
            generates: config.generates,
            embedding: config.embedding,
            closing: AtomicBool::new(false),
        });

        let (jobs, queue) = mpsc::channel();
        let queue = Arc::new(Mutex::new(queue));
        let parallel = config.parallel.max(1);
        let (ready_tx, ready) = mpsc::channel();
        let mut model = LocalModel {
            shared: shared.clone(),
            jobs: Some(jobs),
            workers: Vec::new(),
        };
        for i in 0..parallel {
            let (shared, queue, ready) = (shared.clone(), queue.clone(), ready_tx.clone());
            let worker = std::thread::Builder::new()
                .name(format!("llama-{i}-{}", name.replace('\0', "")))
                .spawn(move || worker(&shared, &queue, ready))
                .map_err(|e| local("cannot start an inference thread", e))?;
            model.workers.push(worker);
        }
        drop(ready_tx);
        for _ in 0..parallel {
            // A thread that dies before answering closes its sender: `recv`
            // fails once all of them are gone.
            ready
                .recv()
                .map_err(|_| ProviderError::Local("an inference thread failed to start".into()))??;
        }

        tracing::info!(
            path = %config.path.display(),
            n_ctx,
            threads,
            batch_threads,
            parallel,
            gpu_layers = config.gpu_layers,
            template = template_name,
            generates = config.generates,
            pooling = config.embedding.pooling.as_str(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "local model loaded"
        );
        Ok(model)
    }

    /// Generates a completion on one of the inference threads.
    #[tracing::instrument(skip_all, fields(model = %self.shared.name))]
    pub async fn generate(&self, request: GenerateRequest) -> Result<Generation, ProviderError> {
        let started = Instant::now();
        // Tools become a grammar over one step (see `tool_grammar`).
        let tooled =
            (!request.tools.is_empty()).then(|| (request.messages.clone(), request.json_schema.is_some()));
        let request = tool_grammar::prepare(request);
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Generate { request, reply })?;
        let mut generation = answer.await.map_err(|_| stopped())??;
        if let Some((history, has_answer_schema)) = tooled {
            tool_grammar::finish(&mut generation, &history, has_answer_schema)?;
        }
        generation.latency = started.elapsed();
        tracing::debug!(
            prompt_tokens = generation.usage.prompt_tokens,
            completion_tokens = generation.usage.completion_tokens,
            finish_reason = ?generation.finish_reason,
            latency_ms = generation.latency.as_millis() as u64,
            "local generation"
        );
        Ok(generation)
    }

    /// Embeds each text as a unit-length vector, in order: mean pooling
    /// for a generation model, the configured pooling for one loaded with
    /// [`LocalModel::load_embedder`]. Texts are decoded several at a time
    /// (one sequence each); a text longer than the context keeps its first
    /// `n_ctx` tokens (see [`embed`]).
    #[tracing::instrument(skip_all, fields(model = %self.shared.name, texts = texts.len()))]
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, ProviderError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Embed { texts, reply })?;
        answer.await.map_err(|_| stopped())?
    }

    fn submit(&self, job: Job) -> Result<(), ProviderError> {
        self.jobs
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())
    }

    /// The context length the model was trained with.
    pub fn n_ctx_train(&self) -> u32 {
        self.shared.model.n_ctx_train()
    }

    /// Width of the model's embeddings.
    pub fn n_embd(&self) -> usize {
        usize::try_from(self.shared.model.n_embd_out()).unwrap_or(0)
    }

    /// Tokens of context each inference thread has: the most tokens an
    /// embedded text keeps.
    pub fn n_ctx(&self) -> u32 {
        self.shared.n_ctx
    }

    /// Tokens in the vocabulary.
    pub fn n_vocab(&self) -> i32 {
        self.shared.model.n_vocab()
    }

    /// Parameters in the model.
    pub fn n_params(&self) -> u64 {
        self.shared.model.n_params()
    }

    /// Which chat template builds prompts: `"gguf"` (the model's own) or
    /// `"chatml (fallback)"`.
    pub fn chat_template_name(&self) -> &str {
        self.shared.template_name
    }
}

impl Drop for LocalModel {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Relaxed);
        // Closing the channel ends the threads' loops.
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn stopped() -> ProviderError {
    ProviderError::Local("the inference threads have stopped".into())
}

/// A file llama.cpp cannot read must be an error (see the module docs).
fn check_file(path: &Path) -> Result<(), ProviderError> {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .map_err(|e| ProviderError::Local(format!("cannot read {}: {e}", path.display())))?;
    if &magic != b"GGUF" {
        return Err(ProviderError::Local(format!(
            "{} is not a GGUF file",
            path.display()
        )));
    }
    Ok(())
}

/// The GGUF's chat template when llama.cpp can apply it, else ChatML.
fn chat_template(model: &LlamaModel) -> Result<(LlamaChatTemplate, &'static str), ProviderError> {
    if let Ok(template) = model.chat_template(None) {
        let probe =
            LlamaChatMessage::new("user".into(), "hi".into()).map_err(|e| local("chat template", e))?;
        if model.apply_chat_template(&template, &[probe], true).is_ok() {
            return Ok((template, "gguf"));
        }
        tracing::warn!("the GGUF's chat template is not one llama.cpp can apply; using ChatML");
    }
    let fallback = LlamaChatTemplate::new(FALLBACK_TEMPLATE).map_err(|e| local("chat template", e))?;
    Ok((fallback, "chatml (fallback)"))
}

impl Shared {
    fn context_params(&self) -> LlamaContextParams {
        LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(self.n_ctx))
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.batch_threads)
    }

    fn new_context(&self, params: LlamaContextParams) -> Result<LlamaContext<'_>, ProviderError> {
        let backend = backend()?;
        let _serialised = NEW_CONTEXT.lock().unwrap_or_else(PoisonError::into_inner);
        self.model
            .new_context(backend, params)
            .map_err(|e| local("cannot create a llama.cpp context", e))
    }

    fn prompt(&self, messages: &[Message]) -> Result<String, ProviderError> {
        let chat = messages
            .iter()
            .map(|m| {
                // Templates know no `tool` role; `tool_grammar::prepare`
                // has already rewritten tool turns, this is the fallback.
                let role = if m.role == Role::Tool { Role::User } else { m.role };
                LlamaChatMessage::new(role.as_str().to_owned(), m.content.clone())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ProviderError::Local("a message contains a NUL character".into()))?;
        self.model
            .apply_chat_template(&self.template, &chat, true)
            .map_err(|e| local("chat template failed", e))
    }

    fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }
}

/// One inference thread: creates its context, reports whether that worked,
/// then serves jobs until the channel closes.
fn worker(
    shared: &Shared,
    queue: &Mutex<mpsc::Receiver<Job>>,
    ready: mpsc::Sender<Result<(), ProviderError>>,
) {
    // A generation model makes its embeddings context on first use; an
    // embedding model makes it now, and no generation context at all.
    let contexts = if shared.generates {
        Generator::new(shared).map(|g| (Some(g), None))
    } else {
        embed::EmbeddingContext::new(shared).map(|e| (None, Some(e)))
    };
    let (mut generator, mut embedder) = match contexts {
        Ok(contexts) => contexts,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    drop(ready);

    loop {
        // The lock is held only while waiting: whoever holds it takes the
        // next job, the others queue behind it.
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else { break };
        match job {
            Job::Generate { request, reply } => {
                if reply.is_closed() {
                    continue;
                }
                let cancelled = || shared.closing() || reply.is_closed();
                let result = match generator.as_mut() {
                    Some(generator) => guard(|| generator.generate(&request, &cancelled)),
                    None => Err(ProviderError::Local(format!(
                        "{} is an embedding model: it does not generate",
                        shared.name
                    ))),
                };
                let _ = reply.send(result);
            }
            Job::Embed { texts, reply } => {
                if reply.is_closed() {
                    continue;
                }
                let cancelled = || shared.closing() || reply.is_closed();
                let result = guard(|| {
                    if embedder.is_none() {
                        embedder = Some(embed::EmbeddingContext::new(shared)?);
                    }
                    embedder
                        .as_mut()
                        .expect("created above")
                        .embed(&texts, &cancelled)
                });
                let _ = reply.send(result);
            }
        }
    }
    tracing::debug!(model = %shared.name, "inference thread stopped");
}

/// Runs a job, turning a panic (a bug in us or in the bindings) into an
/// error so the thread keeps serving. Every job starts from a cleared KV
/// cache, so nothing half-done leaks into the next one.
fn guard<T>(job: impl FnOnce() -> Result<T, ProviderError>) -> Result<T, ProviderError> {
    catch_unwind(AssertUnwindSafe(job)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        tracing::error!(error = %message, "inference job panicked");
        Err(ProviderError::Local(format!("inference failed: {message}")))
    })
}

fn cancelled_error() -> ProviderError {
    ProviderError::Local("generation cancelled".into())
}

/// An inference thread's generation state, reused across requests.
struct Generator<'m> {
    shared: &'m Shared,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    /// Tokens decoded per call while processing the prompt.
    n_batch: usize,
    /// The prompt's tokens (buffer reused across requests).
    tokens: Vec<LlamaToken>,
}

impl<'m> Generator<'m> {
    fn new(shared: &'m Shared) -> Result<Self, ProviderError> {
        let params = shared.context_params().with_n_batch(shared.n_ctx.min(MAX_BATCH));
        let ctx = shared.new_context(params)?;
        let n_batch = ctx.n_batch().max(1) as usize;
        Ok(Generator {
            shared,
            ctx,
            batch: LlamaBatch::new(n_batch, 1),
            n_batch,
            tokens: Vec::new(),
        })
    }

    fn generate(
        &mut self,
        request: &GenerateRequest,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Generation, ProviderError> {
        let shared = self.shared;
        let model = &shared.model;
        let vocab = model.vocab();
        let prompt = shared.prompt(&request.messages)?;
        self.tokens.clear();
        vocab.tokenize_into(prompt.as_bytes(), &mut self.tokens, true, true);
        // A template that writes BOS itself, plus the tokenizer's own BOS.
        let bos = vocab.bos();
        if self.tokens.len() >= 2 && self.tokens[0] == bos && self.tokens[1] == bos {
            self.tokens.remove(0);
        }

        let n_prompt = self.tokens.len();
        let n_ctx = self.ctx.n_ctx() as usize;
        if n_prompt == 0 {
            return Err(ProviderError::Local("the prompt is empty".into()));
        }
        if n_prompt > n_ctx {
            return Err(ProviderError::ContextOverflow {
                prompt_tokens: n_prompt as u64,
                context: n_ctx as u64,
            });
        }
        let mut sampler = sampler(model, request)?;
        let mut usage = Usage::tokens(n_prompt as u64, 0);
        let max_tokens = u64::from(request.max_tokens);
        if max_tokens == 0 {
            return Ok(Generation {
                text: String::new(),
                tool_calls: Vec::new(),
                usage,
                latency: Duration::ZERO,
                finish_reason: FinishReason::Length,
                timings: Some(Timings {
                    prompt: Duration::ZERO,
                    generation: Duration::ZERO,
                }),
            });
        }

        // Prefill: the prompt in chunks of `n_batch`, logits for its last
        // token only.
        self.ctx.clear_kv_cache();
        let prefill = Instant::now();
        for (c, chunk) in self.tokens.chunks(self.n_batch).enumerate() {
            if cancelled() {
                return Err(cancelled_error());
            }
            self.batch.clear();
            let first = c * self.n_batch;
            for (i, &token) in chunk.iter().enumerate() {
                let pos = first + i;
                self.batch
                    .add(token, pos as i32, &[0], pos + 1 == n_prompt)
                    .map_err(|e| local("batch", e))?;
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| local("prompt decoding failed", e))?;
        }
        let prompt_time = prefill.elapsed();

        // Decode one token per step, reusing the batch.
        let decoding = Instant::now();
        let mut text = Vec::with_capacity((request.max_tokens as usize).saturating_mul(4).min(1 << 16));
        let mut n_past = n_prompt;
        let finish_reason = loop {
            // `sample` also accepts the token into the chain (no `accept`).
            let token = sampler.sample(&self.ctx, self.batch.n_tokens() - 1);
            if vocab.is_eog(token) {
                break FinishReason::Stop;
            }
            usage.completion_tokens += 1;
            vocab.token_to_piece_into(token, &mut text, false, None);
            if usage.completion_tokens >= max_tokens || n_past >= n_ctx {
                break FinishReason::Length;
            }
            if cancelled() {
                return Err(cancelled_error());
            }
            self.batch.clear();
            self.batch
                .add(token, n_past as i32, &[0], true)
                .map_err(|e| local("batch", e))?;
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| local("decoding failed", e))?;
            n_past += 1;
        };
        let generation_time = decoding.elapsed();

        Ok(Generation {
            tool_calls: Vec::new(),
            text: String::from_utf8(text)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            usage,
            latency: prompt_time + generation_time,
            finish_reason,
            timings: Some(Timings {
                prompt: prompt_time,
                generation: generation_time,
            }),
        })
    }
}

/// Greedy at temperature 0, else temperature + seeded sampling; behind a
/// JSON-schema grammar when the request asks for one.
fn sampler(model: &LlamaModel, request: &GenerateRequest) -> Result<LlamaSampler, ProviderError> {
    let mut chain = Vec::with_capacity(3);
    if let Some(schema) = &request.json_schema {
        let grammar = json_schema_to_grammar(&schema.to_string()).map_err(|e| {
            ProviderError::Local(format!(
                "json_schema is not a schema llama.cpp can turn into a grammar ({e})"
            ))
        })?;
        chain.push(
            LlamaSampler::grammar(model, &grammar, "root")
                .map_err(|e| local("the grammar of json_schema is invalid", e))?,
        );
    }
    if request.temperature > 0.0 {
        chain.push(LlamaSampler::temp(request.temperature));
        chain.push(LlamaSampler::dist(request.seed));
    } else {
        chain.push(LlamaSampler::greedy());
    }
    Ok(LlamaSampler::chain(chain, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_foreign_file_is_an_error() {
        let missing = Path::new("/nonexistent/bounty/model.gguf");
        assert!(matches!(check_file(missing), Err(ProviderError::Local(_))));
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        assert!(matches!(check_file(&manifest), Err(ProviderError::Local(m)) if m.contains("not a GGUF")));
    }
}
