//! Local generation tokens/s: our llama provider against a minimal decode
//! loop written straight on llama.cpp's C API, for the same GGUF, threads
//! and token counts. `scripts/bench-llama.sh` runs this bench and llama.cpp's
//! own `llama-bench` on the same files and prints the ratios.
//!
//! Two variants, per model:
//!
//! - **provider:** `LocalModel::load` + `LocalModel::generate`, timed by the
//!   provider's own `Timings` (prefill, then decoding). The prompt is a chat
//!   message whose templated form tokenizes to exactly `pp` tokens (searched
//!   with `max_tokens = 0` requests, which tokenize without decoding).
//! - **raw:** `llama_cpp_sys_2` only, the pattern of llama.cpp's `simple`
//!   example: `llama_batch_get_one` for the prompt, then sample, then decode
//!   one token per step. Same context size, batch size, threads and sampler
//!   as the provider, so the difference is our wrapper's overhead alone.
//!
//! Token counts are the same everywhere: `pp` prompt tokens, then `tg`
//! decoding steps at depth `pp` (llama-bench: `-p pp -n 0` and
//! `-p 0 -n tg -d pp`). A decoding step is one `llama_decode` of one token;
//! the provider is asked for `tg + 1` tokens because it samples once more
//! than it decodes (the last sampled token is never decoded), so tg t/s =
//! `tg / timings.generation` = `(completion_tokens - 1) / timings.generation`.
//! The raw loop does the same (`tg + 1` samples, `tg` decodes) and never
//! stops at end-of-generation. If a greedy provider run would stop early
//! (stories260K can), temperature sampling with the first seed that runs the
//! full length is used instead, by both variants.
//!
//! Models: `BENCH_GGUF`, else `../shared/models/stories260K.gguf` when the
//! machine has it, else (or with `BENCH_GGUF=generated`) a generated 64-wide
//! 2-layer random-weight llama; plus
//! (unless `BENCH_LARGE=0`) a generated 512-wide 8-layer one (~26M
//! parameters, F32), where per-token overhead matters less. Generated models
//! are written (deterministically) under `BENCH_MODEL_DIR` (default
//! `target/bench-llama/models`), so llama-bench can read the same bytes.
//! A random-weight tiny llama never emits end-of-generation (see
//! `bounty_models::testing::gguf`).
//!
//! `pp` is clamped so that `pp + tg` fits the model's training context.
//! Every measured run happens in a fresh process of its own (this binary,
//! re-run with one job), after one warm-up run in that process, so that
//! each variant has the machine and its OpenMP threads to itself, as
//! llama-bench does; the two variants alternate rep by rep, and the medians
//! over reps are reported. Planning (clamping, fitting the prompt, choosing
//! the sampler) loads the provider with one thread in the parent process.
//!
//! Run: `cargo bench --bench llama_tokens`. Environment: `BENCH_GGUF`,
//! `BENCH_THREADS` (default: all cores), `BENCH_PP` (512), `BENCH_TG` (128),
//! `BENCH_REPS` (5), `BENCH_LARGE` (1), `BENCH_MODEL_DIR`, `BENCH_PARALLEL`
//! (the provider's `parallel`, default 1), `BENCH_PLAN_ONLY` (1: write the
//! models and print the plan, measure nothing). Besides the human summary,
//! the plan and every result are printed as `BENCH_JSON {…}` lines.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use bounty_models::local::LocalModel;
use bounty_models::testing::gguf::{TinyLlama, stories260k};
use bounty_models::{GenerateRequest, LocalModelConfig, Message, ProviderError, Role};
use llama_cpp_sys_2 as sys;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// llama.cpp's context granularity; the provider rounds up to it too.
const CONTEXT_PADDING: u32 = 256;
/// The provider's largest prompt batch.
const MAX_BATCH: u32 = 2048;
/// Seeds tried for temperature sampling when greedy decoding stops early.
const SEEDS: u32 = 32;

fn env_or<T: FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a valid value")),
        _ => default,
    }
}

struct Settings {
    threads: u32,
    pp: u32,
    tg: u32,
    reps: usize,
    large: bool,
    parallel: u32,
    plan_only: bool,
    model_dir: PathBuf,
}

impl Settings {
    fn from_env() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let model_dir = std::env::var_os("BENCH_MODEL_DIR").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-llama/models"),
            PathBuf::from,
        );
        Settings {
            threads: env_or("BENCH_THREADS", cores).max(1),
            pp: env_or("BENCH_PP", 512u32).max(1),
            tg: env_or("BENCH_TG", 128u32).max(1),
            reps: env_or("BENCH_REPS", 5usize).max(1),
            large: env_or("BENCH_LARGE", 1u8) != 0,
            parallel: env_or("BENCH_PARALLEL", 1u32).max(1),
            plan_only: env_or("BENCH_PLAN_ONLY", 0u8) != 0,
            model_dir,
        }
    }
}

/// One GGUF to measure.
struct Subject {
    name: String,
    path: PathBuf,
}

/// Writes a generated model, deterministically, under the model folder.
fn generated(settings: &Settings, name: &str, shape: TinyLlama) -> Subject {
    std::fs::create_dir_all(&settings.model_dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", settings.model_dir.display()));
    let path = settings.model_dir.join(format!("{name}.gguf"));
    shape
        .write(&path)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    Subject {
        name: name.to_owned(),
        path,
    }
}

fn subjects(settings: &Settings) -> Vec<Subject> {
    let mut subjects = Vec::new();
    let named = std::env::var_os("BENCH_GGUF").filter(|p| !p.is_empty());
    let found = match named {
        // What a machine without `../shared` runs.
        Some(p) if p == "generated" => None,
        Some(p) => Some(PathBuf::from(p)),
        None => stories260k(),
    };
    match found {
        Some(path) => {
            let name = path
                .file_stem()
                .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
            let path = path.canonicalize().unwrap_or(path);
            subjects.push(Subject { name, path });
        }
        None => subjects.push(generated(
            settings,
            "tiny-llama-64x2",
            TinyLlama {
                n_ctx_train: 2048,
                ..TinyLlama::default()
            },
        )),
    }
    if settings.large {
        subjects.push(generated(
            settings,
            "tiny-llama-512x8",
            TinyLlama {
                seed: 1,
                n_embd: 512,
                n_ff: 1536,
                n_layer: 8,
                n_head: 8,
                n_head_kv: 4,
                n_ctx_train: 2048,
                chat_template: None,
            },
        ));
    }
    subjects
}

/// The provider's context size for a configured `context_size`.
fn padded_context(context_size: u32) -> u32 {
    context_size.max(1).next_multiple_of(CONTEXT_PADDING)
}

/// How both variants sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
enum Sampling {
    Greedy,
    Temperature { temp: f32, seed: u32 },
}

impl Sampling {
    fn describe(self) -> String {
        match self {
            Sampling::Greedy => "greedy".into(),
            Sampling::Temperature { temp, seed } => format!("temp {temp} + dist(seed {seed})"),
        }
    }
}

fn median(samples: &[f64]) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn rate(tokens: u64, time: Duration) -> f64 {
    tokens as f64 / time.as_secs_f64().max(1e-12)
}

/// One timed run: prompt tokens and time, decoding steps and time.
#[derive(Clone, Copy, Debug)]
struct Run {
    prompt_tokens: u64,
    prompt: Duration,
    decodes: u64,
    generation: Duration,
}

// ---------------------------------------------------------------------------
// Our provider.

struct Provider {
    model: LocalModel,
    runtime: tokio::runtime::Runtime,
}

impl Provider {
    fn load(subject: &Subject, context_size: u32, threads: u32, parallel: u32) -> Provider {
        // Through serde, as the configuration file does, so that fields
        // added later with defaults keep this bench compiling.
        let config: LocalModelConfig = serde_json::from_value(json!({
            "path": subject.path,
            "context_size": context_size,
            "threads": threads,
            "batch_threads": threads,
            "gpu_layers": 0,
            "parallel": parallel,
            "price": { "per_cpu_second": "0" },
        }))
        .expect("a valid local model configuration");
        let model = LocalModel::load(&subject.name, &config)
            .unwrap_or_else(|e| panic!("cannot load {}: {e}", subject.path.display()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        Provider { model, runtime }
    }

    fn generate(&self, prompt: &str, max_tokens: u32, sampling: Sampling) -> bounty_models::Generation {
        self.try_generate(prompt, max_tokens, sampling)
            .unwrap_or_else(|e| panic!("generation failed: {e}"))
    }

    fn try_generate(
        &self,
        prompt: &str,
        max_tokens: u32,
        sampling: Sampling,
    ) -> Result<bounty_models::Generation, ProviderError> {
        let (temperature, seed) = match sampling {
            Sampling::Greedy => (0.0, 0),
            Sampling::Temperature { temp, seed } => (temp, seed),
        };
        let request = GenerateRequest {
            messages: vec![Message::new(Role::User, prompt)],
            max_tokens,
            temperature,
            seed,
            json_schema: None,
            tools: Vec::new(),
        };
        self.runtime.block_on(self.model.generate(request))
    }

    /// Prompt tokens of a message after the chat template (no decoding),
    /// also when they overflow the context.
    fn count(&self, prompt: &str) -> u64 {
        match self.try_generate(prompt, 0, Sampling::Greedy) {
            Ok(g) => g.usage.prompt_tokens,
            Err(ProviderError::ContextOverflow { prompt_tokens, .. }) => prompt_tokens,
            Err(e) => panic!("tokenization failed: {e}"),
        }
    }

    /// A message whose templated prompt is `target` tokens long, or as
    /// close below as the tokenizer allows; with its real count.
    fn fit_prompt(&self, target: u64) -> (String, u64) {
        const UNIT: &str = " the";
        let text = |n: usize| UNIT.repeat(n).trim_start().to_owned();
        let base = self.count("");
        if base >= target {
            return (String::new(), base);
        }
        // Smallest repetition count reaching the target (the count grows
        // with the text, by at least one token per repetition).
        let (mut lo, mut hi) = (0usize, target as usize);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.count(&text(mid)) >= target {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let n = lo;
        if self.count(&text(n)) == target {
            return (text(n), target);
        }
        // Overshot: one repetition less, plus a short filler.
        let shorter = text(n.saturating_sub(1));
        for filler in [" a", ".", ",", "a", "!", " x", " yes", " no"] {
            let candidate = format!("{shorter}{filler}");
            if self.count(&candidate) == target {
                return (candidate, target);
            }
        }
        let count = self.count(&shorter);
        (shorter, count)
    }

    fn run(&self, prompt: &str, tg: u32, sampling: Sampling) -> Run {
        let g = self.generate(prompt, tg + 1, sampling);
        let timings = g.timings.expect("local generations report timings");
        Run {
            prompt_tokens: g.usage.prompt_tokens,
            prompt: timings.prompt,
            decodes: g.usage.completion_tokens.saturating_sub(1),
            generation: timings.generation,
        }
    }
}

// ---------------------------------------------------------------------------
// The raw loop on llama.cpp's C API.

/// A model and context made with `llama_cpp_sys_2` alone, in a process
/// where the provider is never loaded (see [`Job`]).
struct Raw {
    model: *mut sys::llama_model,
    ctx: *mut sys::llama_context,
    n_vocab: i32,
    bos: Option<sys::llama_token>,
}

/// Drops llama.cpp's log lines.
unsafe extern "C" fn quiet(_: sys::ggml_log_level, _: *const std::ffi::c_char, _: *mut std::ffi::c_void) {}

impl Raw {
    /// `llama_backend_init`, once per process. Only for processes that never
    /// load the provider: `LocalModel::load` initialises the backend itself
    /// through `llama-cpp-2`, whose guard knows nothing of this call.
    fn init_backend() {
        static INIT: std::sync::Once = std::sync::Once::new();
        // SAFETY: called once, before any other llama.cpp call here.
        INIT.call_once(|| unsafe {
            sys::llama_log_set(Some(quiet), std::ptr::null_mut());
            sys::llama_backend_init();
        });
    }

    fn load(path: &Path, n_ctx: u32, threads: u32) -> Raw {
        let c_path = CString::new(path.to_string_lossy().as_bytes()).expect("a path without NUL");
        // SAFETY: plain llama.cpp C calls on pointers it returned, checked
        // for null; the backend is initialised (`init_backend`).
        unsafe {
            let mut mparams = sys::llama_model_default_params();
            mparams.n_gpu_layers = 0;
            let model = sys::llama_model_load_from_file(c_path.as_ptr(), mparams);
            assert!(!model.is_null(), "llama.cpp cannot load {}", path.display());
            let mut cparams = sys::llama_context_default_params();
            cparams.n_ctx = n_ctx;
            cparams.n_batch = n_ctx.min(MAX_BATCH);
            let threads = i32::try_from(threads).unwrap_or(i32::MAX);
            cparams.n_threads = threads;
            cparams.n_threads_batch = threads;
            let ctx = sys::llama_init_from_model(model, cparams);
            assert!(!ctx.is_null(), "llama.cpp cannot create a context");
            let vocab = sys::llama_model_get_vocab(model);
            let n_vocab = sys::llama_vocab_n_tokens(vocab);
            let bos = sys::llama_vocab_get_add_bos(vocab).then(|| sys::llama_vocab_bos(vocab));
            Raw {
                model,
                ctx,
                n_vocab,
                bos,
            }
        }
    }

    fn sampler(sampling: Sampling) -> *mut sys::llama_sampler {
        // SAFETY: the chain takes ownership of the samplers added to it.
        unsafe {
            let mut params = sys::llama_sampler_chain_default_params();
            params.no_perf = true;
            let chain = sys::llama_sampler_chain_init(params);
            match sampling {
                Sampling::Greedy => sys::llama_sampler_chain_add(chain, sys::llama_sampler_init_greedy()),
                Sampling::Temperature { temp, seed } => {
                    sys::llama_sampler_chain_add(chain, sys::llama_sampler_init_temp(temp));
                    sys::llama_sampler_chain_add(chain, sys::llama_sampler_init_dist(seed));
                }
            }
            chain
        }
    }

    /// `pp` prompt tokens (BOS, then llama-bench-style pseudo-random ids),
    /// then `tg` steps of sample + decode; `tg + 1` samples in all, as the
    /// provider does.
    fn run(&mut self, pp: u32, tg: u32, sampling: Sampling) -> Run {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut tokens: Vec<sys::llama_token> = (0..pp)
            .map(|i| match (i, self.bos) {
                (0, Some(bos)) => bos,
                _ => {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    ((state >> 33) % self.n_vocab as u64) as sys::llama_token
                }
            })
            .collect();
        let n_batch = {
            // SAFETY: a live context.
            let n = unsafe { sys::llama_n_batch(self.ctx) };
            n.max(1) as usize
        };
        let sampler = Raw::sampler(sampling);
        // SAFETY: the context, sampler and token buffers outlive the calls;
        // `llama_batch_get_one` only borrows the tokens.
        unsafe {
            sys::llama_memory_clear(sys::llama_get_memory(self.ctx), true);

            let prefill = Instant::now();
            for chunk in tokens.chunks_mut(n_batch) {
                let batch = sys::llama_batch_get_one(chunk.as_mut_ptr(), chunk.len() as i32);
                assert_eq!(sys::llama_decode(self.ctx, batch), 0, "prompt decoding failed");
            }
            let prompt = prefill.elapsed();

            let decoding = Instant::now();
            let mut steps = 0u64;
            loop {
                let mut token = sys::llama_sampler_sample(sampler, self.ctx, -1);
                if steps == u64::from(tg) {
                    break;
                }
                let batch = sys::llama_batch_get_one(&mut token, 1);
                assert_eq!(sys::llama_decode(self.ctx, batch), 0, "decoding failed");
                steps += 1;
            }
            let generation = decoding.elapsed();
            sys::llama_sampler_free(sampler);
            Run {
                prompt_tokens: u64::from(pp),
                prompt,
                decodes: steps,
                generation,
            }
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: created in `load`, freed once, context before model.
        unsafe {
            sys::llama_free(self.ctx);
            sys::llama_model_free(self.model);
        }
    }
}

// ---------------------------------------------------------------------------

/// Per-variant samples, in tokens/s.
#[derive(Default)]
struct Samples {
    pp: Vec<f64>,
    tg: Vec<f64>,
    prompt_tokens: Vec<u64>,
    decodes: Vec<u64>,
}

impl Samples {
    fn push(&mut self, run: Run) {
        self.pp.push(rate(run.prompt_tokens, run.prompt));
        self.tg.push(rate(run.decodes, run.generation));
        self.prompt_tokens.push(run.prompt_tokens);
        self.decodes.push(run.decodes);
    }
}

fn emit(value: &Value) {
    println!("BENCH_JSON {value}");
}

/// One measured run in a fresh process: each variant runs alone, as
/// llama-bench does. (In one process, the provider's inference thread and
/// the raw loop's thread would each own an OpenMP team; more OpenMP threads
/// than cores makes libgomp throttle its spin-waits, which slows decoding
/// of small models several times.)
#[derive(Serialize, Deserialize)]
struct Job {
    variant: String,
    path: PathBuf,
    name: String,
    pp: u32,
    tg: u32,
    context_size: u32,
    threads: u32,
    parallel: u32,
    sampling: Sampling,
    prompt: String,
}

/// Environment variable that makes this binary run one [`Job`].
const CHILD: &str = "BENCH_LLAMA_TOKENS_JOB";

/// Runs a job in a child process: a warm-up run, then the measured one.
fn spawn(job: &Job) -> Run {
    let exe = std::env::current_exe().expect("the bench's own path");
    let output = std::process::Command::new(exe)
        .env(CHILD, serde_json::to_string(job).expect("a job serializes"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("the bench can run itself");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} run of {} failed ({}): {stdout}",
        job.variant,
        job.name,
        output.status
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH_RUN "))
        .unwrap_or_else(|| panic!("the {} run printed no result: {stdout}", job.variant));
    let v: Value = serde_json::from_str(line).expect("a JSON result");
    let field = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("no {k} in {line}"));
    Run {
        prompt_tokens: field("prompt_tokens"),
        prompt: Duration::from_nanos(field("prompt_ns")),
        decodes: field("decodes"),
        generation: Duration::from_nanos(field("generation_ns")),
    }
}

/// The child's side of [`spawn`].
fn child(job: &Job) {
    let measure = |run: &mut dyn FnMut() -> Run| {
        let _warm_up = run();
        run()
    };
    let subject = Subject {
        name: job.name.clone(),
        path: job.path.clone(),
    };
    let run = match job.variant.as_str() {
        "provider" => {
            let provider = Provider::load(&subject, job.context_size, job.threads, job.parallel);
            measure(&mut || provider.run(&job.prompt, job.tg, job.sampling))
        }
        "raw" => {
            Raw::init_backend();
            let mut raw = Raw::load(&job.path, padded_context(job.context_size), job.threads);
            measure(&mut || raw.run(job.pp, job.tg, job.sampling))
        }
        other => panic!("unknown variant {other}"),
    };
    println!(
        "BENCH_RUN {}",
        json!({
            "prompt_tokens": run.prompt_tokens,
            "prompt_ns": run.prompt.as_nanos() as u64,
            "decodes": run.decodes,
            "generation_ns": run.generation.as_nanos() as u64,
        })
    );
}

fn bench(subject: &Subject, settings: &Settings) {
    let tg = settings.tg;
    // Plan with one thread (no OpenMP team in this process). Load with room
    // for the requested counts, then clamp `pp` to the training context
    // (and reload with the context that fits).
    let mut context_size = settings.pp + tg;
    let mut provider = Provider::load(subject, context_size, 1, 1);
    let n_ctx_train = provider.model.n_ctx_train();
    assert!(
        n_ctx_train > tg,
        "{}: BENCH_TG={tg} does not fit the {n_ctx_train}-token training context",
        subject.name
    );
    let mut pp = settings.pp;
    if pp + tg > n_ctx_train {
        pp = n_ctx_train - tg;
        context_size = pp + tg;
        drop(provider);
        provider = Provider::load(subject, context_size, 1, 1);
    }
    let n_ctx = padded_context(context_size);

    let (prompt, prompt_tokens) = provider.fit_prompt(u64::from(pp));
    if prompt_tokens != u64::from(pp) {
        eprintln!(
            "{}: no message templates to exactly {pp} tokens; using {prompt_tokens} for every variant",
            subject.name
        );
        pp = u32::try_from(prompt_tokens).expect("a prompt that fits the context");
    }

    // Greedy when it runs the full length, else the first seed that does.
    let full = u64::from(tg);
    let sampling = std::iter::once(Sampling::Greedy)
        .chain((0..SEEDS).map(|seed| Sampling::Temperature { temp: 1.0, seed }))
        .find(|&s| provider.run(&prompt, tg, s).decodes == full)
        .unwrap_or_else(|| panic!("{}: every sampler stopped before {tg} tokens", subject.name));
    let (n_params, template) = (
        provider.model.n_params(),
        provider.model.chat_template_name().to_owned(),
    );
    drop(provider);

    println!(
        "\n{}: {} ({n_params} parameters, n_ctx_train {n_ctx_train}, template {template})",
        subject.name,
        subject.path.display(),
    );
    println!(
        "  pp {pp} tokens, tg {tg} decoding steps at depth {pp}, {} threads, n_ctx {n_ctx}, n_batch {}, sampler {}, provider parallel {}, {} reps (one process each)",
        settings.threads,
        n_ctx.min(MAX_BATCH),
        sampling.describe(),
        settings.parallel,
        settings.reps
    );
    emit(&json!({
        "kind": "model",
        "model": subject.name,
        "path": subject.path,
        "n_params": n_params,
        "n_ctx_train": n_ctx_train,
        "n_ctx": n_ctx,
        "pp": pp,
        "tg": tg,
        "threads": settings.threads,
        "parallel": settings.parallel,
        "reps": settings.reps,
        "sampler": sampling.describe(),
        "template": template,
    }));

    if settings.plan_only {
        return;
    }
    let job = |variant: &str| Job {
        variant: variant.to_owned(),
        path: subject.path.clone(),
        name: subject.name.clone(),
        pp,
        tg,
        context_size,
        threads: settings.threads,
        parallel: settings.parallel,
        sampling,
        prompt: prompt.clone(),
    };
    let (ours_job, raw_job) = (job("provider"), job("raw"));
    let (mut ours, mut theirs) = (Samples::default(), Samples::default());
    for rep in 0..settings.reps {
        // Alternate which goes first, so drift hits both alike.
        if rep % 2 == 0 {
            ours.push(spawn(&ours_job));
            theirs.push(spawn(&raw_job));
        } else {
            theirs.push(spawn(&raw_job));
            ours.push(spawn(&ours_job));
        }
    }
    for (variant, samples) in [("provider", &ours), ("raw", &theirs)] {
        let short = samples
            .prompt_tokens
            .iter()
            .zip(&samples.decodes)
            .any(|(&p, &d)| p != u64::from(pp) || d != full);
        if short {
            eprintln!(
                "{}/{variant}: token counts varied: prompt {:?}, decodes {:?}",
                subject.name, samples.prompt_tokens, samples.decodes
            );
        }
        let (pp_tps, tg_tps) = (median(&samples.pp), median(&samples.tg));
        println!("  {variant:<9} pp {pp_tps:>10.1} t/s   tg {tg_tps:>10.1} t/s");
        emit(&json!({
            "kind": "result",
            "model": subject.name,
            "variant": variant,
            "pp": pp,
            "tg": tg,
            "threads": settings.threads,
            "pp_tps": pp_tps,
            "tg_tps": tg_tps,
            "pp_tps_samples": samples.pp,
            "tg_tps_samples": samples.tg,
            "prompt_tokens": samples.prompt_tokens,
            "decodes": samples.decodes,
        }));
    }
    let (pp_ratio, tg_ratio) = (
        median(&ours.pp) / median(&theirs.pp),
        median(&ours.tg) / median(&theirs.tg),
    );
    println!("  provider / raw: pp {pp_ratio:.3}, tg {tg_ratio:.3}");
}

fn main() {
    if let Some(job) = std::env::var_os(CHILD) {
        let job: Job = serde_json::from_str(&job.to_string_lossy()).expect("a valid job");
        child(&job);
        return;
    }
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let settings = Settings::from_env();
    for subject in subjects(&settings) {
        bench(&subject, &settings);
    }
}
