//! What our remote provider adds to a model call's latency.
//!
//! Two paths hit the same in-process fake OpenAI server
//! (`bounty_models::testing::openai::FakeOpenAi`, an instant model) at the
//! same open-loop rate:
//!
//! - **baseline:** a plain reqwest POST of the equivalent chat-completion
//!   body, reading the whole answer;
//! - **router:** `Router::generate` over a one-model route. That covers
//!   building the async-openai request, our transport, the retry loop,
//!   decoding the typed answer, and pricing the call.
//!
//! Requests start on a fixed schedule (`BENCH_RATE` per second), whatever
//! the answers do, and each one's latency is measured from its own start.
//! The two paths run in interleaved slices, alternating which goes first,
//! so drift in the machine hits both alike. The summary prints p50, p90,
//! p99 and max for each path, the rate each achieved, and what the router
//! adds at p50 and p99. The target is under 1 ms added at p99.
//!
//! Run: `cargo bench --bench router_overhead`. Environment:
//! `BENCH_SECONDS` (per path, default 10), `BENCH_RATE` (requests/s,
//! default 2000), `BENCH_ROUNDS` (slices per path, default 5).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bounty_models::router::Overrides;
use bounty_models::testing::openai::FakeOpenAi;
use bounty_models::{Message, ModelConfig, ModelRegistry, Role, Router};
use serde_json::json;
use tokio::task::JoinSet;

/// Distinct tickets, so the fake's per-prompt bookkeeping sees real keys.
const PROMPTS: usize = 64;
const SYSTEM: &str = "You are a support agent. Answer in one short paragraph.";
const KEY: &str = "sk-bench-0123456789";

struct Settings {
    seconds: f64,
    rate: f64,
    rounds: usize,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Baseline,
    Router,
}

impl Path {
    fn label(self) -> &'static str {
        match self {
            Path::Baseline => "baseline (reqwest)",
            Path::Router => "router (ours)",
        }
    }
}

/// What both paths need; shared by every request task.
struct Bench {
    http: reqwest::Client,
    url: String,
    router: Router,
    route: Vec<String>,
    prompts: Vec<String>,
}

impl Bench {
    /// One request; `true` when it succeeded.
    async fn call(&self, path: Path, i: usize) -> bool {
        let ticket = &self.prompts[i % PROMPTS];
        match path {
            Path::Baseline => {
                // What the router sends for a model with default settings.
                let body = json!({
                    "messages": [
                        { "role": "system", "content": SYSTEM },
                        { "role": "user", "content": ticket },
                    ],
                    "model": "bench-model",
                    "max_tokens": 256,
                    "seed": 0,
                    "temperature": 0.0,
                });
                let Ok(response) = self
                    .http
                    .post(&self.url)
                    .bearer_auth(KEY)
                    .json(&body)
                    .send()
                    .await
                else {
                    return false;
                };
                response.status().is_success() && response.bytes().await.is_ok()
            }
            Path::Router => {
                let messages = [
                    Message::new(Role::System, SYSTEM),
                    Message::new(Role::User, ticket.as_str()),
                ];
                let routed = self
                    .router
                    .generate(&self.route, &messages, Overrides::default(), None)
                    .await;
                routed.result.is_ok()
            }
        }
    }
}

#[derive(Default)]
struct Samples {
    latencies: Vec<Duration>,
    errors: usize,
    sent: usize,
    busy: Duration,
}

/// Starts `rate × duration` requests on a fixed schedule and waits for all.
async fn slice(bench: &Arc<Bench>, path: Path, rate: f64, duration: Duration, out: &mut Samples) {
    let n = (rate * duration.as_secs_f64()).round() as usize;
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let at = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(at.into()).await;
        let bench = bench.clone();
        tasks.spawn(async move {
            let began = Instant::now();
            let ok = bench.call(path, i).await;
            (began.elapsed(), ok)
        });
        // Reap finished tasks as we go, so the set stays small.
        while let Some(done) = tasks.try_join_next() {
            record(out, done);
        }
    }
    while let Some(done) = tasks.join_next().await {
        record(out, done);
    }
    out.sent += n;
    out.busy += start.elapsed();
}

fn record(out: &mut Samples, done: Result<(Duration, bool), tokio::task::JoinError>) {
    match done {
        Ok((latency, true)) => out.latencies.push(latency),
        _ => out.errors += 1,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn signed_ms(ours: Duration, base: Duration) -> String {
    let delta = ours.as_secs_f64() - base.as_secs_f64();
    format!("{:+.3}", delta * 1e3)
}

#[tokio::main]
async fn main() {
    let settings = Settings {
        seconds: env_or("BENCH_SECONDS", 10.0),
        rate: env_or("BENCH_RATE", 2_000.0),
        rounds: env_or("BENCH_ROUNDS", 5usize).max(1),
    };
    let fake = FakeOpenAi::start().await;
    fake.set_recording(false);

    let config = json!({
        "provider": "openai",
        "base_url": fake.base_url(),
        "model": "bench-model",
        "api_key": KEY,
        "max_retries": 0,
        "request_timeout_ms": 10_000,
        "price": { "input_per_million": "0.15", "output_per_million": "0.60" },
    });
    let models: BTreeMap<String, ModelConfig> = BTreeMap::from([(
        "bench".to_owned(),
        serde_json::from_value(config).expect("model config"),
    )]);
    let registry = ModelRegistry::from_config(&models).expect("registry");
    let bench = Arc::new(Bench {
        http: reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("reqwest client"),
        url: format!("{}/chat/completions", fake.base_url()),
        router: Router::new(Arc::new(registry)),
        route: vec!["bench".to_owned()],
        prompts: (0..PROMPTS)
            .map(|i| format!("Ticket {i}: my order has not arrived."))
            .collect(),
    });

    println!(
        "router_overhead: {} req/s open loop, {:.1} s per path in {} interleaved rounds, {} CPUs",
        settings.rate,
        settings.seconds,
        settings.rounds,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    );

    // Warm-up: connections, allocator, caches. Not recorded.
    let warm = Duration::from_millis(500);
    for path in [Path::Baseline, Path::Router] {
        slice(&bench, path, settings.rate, warm, &mut Samples::default()).await;
    }

    let per_slice = Duration::from_secs_f64(settings.seconds / settings.rounds as f64);
    let mut baseline = Samples::default();
    let mut router = Samples::default();
    for round in 0..settings.rounds {
        let order = if round % 2 == 0 {
            [Path::Baseline, Path::Router]
        } else {
            [Path::Router, Path::Baseline]
        };
        for path in order {
            let out = if path == Path::Baseline {
                &mut baseline
            } else {
                &mut router
            };
            slice(&bench, path, settings.rate, per_slice, out).await;
        }
    }

    println!();
    println!(
        "{:<20} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "path", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let mut stats = Vec::new();
    for (path, samples) in [(Path::Baseline, &mut baseline), (Path::Router, &mut router)] {
        samples.latencies.sort_unstable();
        let s = &samples.latencies;
        let (p50, p90, p99) = (percentile(s, 50.0), percentile(s, 90.0), percentile(s, 99.0));
        let max = s.last().copied().unwrap_or_default();
        let achieved = samples.sent as f64 / samples.busy.as_secs_f64();
        println!(
            "{:<20} {:>9} {:>7} {:>9.0} {:>9} {:>9} {:>9} {:>9}",
            path.label(),
            samples.sent,
            samples.errors,
            achieved,
            ms(p50),
            ms(p90),
            ms(p99),
            ms(max)
        );
        stats.push((p50, p99));
    }
    let (base, ours) = (stats[0], stats[1]);
    let added_p99 = ours.1.as_secs_f64() - base.1.as_secs_f64();
    println!();
    println!(
        "added by the router: p50 {} ms, p99 {} ms",
        signed_ms(ours.0, base.0),
        signed_ms(ours.1, base.1)
    );
    println!(
        "target p99 added < 1 ms: {}",
        if added_p99 < 1e-3 { "met" } else { "NOT met" }
    );
    if baseline.errors + router.errors > 0 {
        println!("warning: {} requests failed", baseline.errors + router.errors);
    }
}
