//! Margin workload: inference cost per resolved outcome with a cascade and
//! the verified-answer cache, against a frontier-only baseline, on a
//! replayable support queue.
//!
//! The queue: `--distinct` tickets with a difficulty mix (60% easy, 25%
//! medium, 12% hard, 3% that no model solves), replayed as `--tasks` tasks
//! in which some tickets recur: each task is, with probability
//! `--repeat-share`, one of the `--popular` most common tickets (sent again
//! with its case and spacing changed), and otherwise any ticket at random.
//! The stream comes from `--seed`, so a run can be replayed exactly;
//! `--save FILE` writes it as JSONL.
//!
//! The models are simulated, and say so: both are OpenAI-compatible
//! endpoints of the wire-format fake (`Behavior::Skilled`), priced per
//! token like real ones. `cheap` (0.15 / 0.60 USD per million input /
//! output tokens) answers easy tickets only; `frontier` (2.50 / 10.00)
//! answers everything but the unsolvable. A wrong or missing answer says
//! "I am not sure", which the agent's rules verifier rejects. Token counts
//! are word counts of the real prompt the worker builds.
//!
//! Each run has two accounts on one fresh SQLite database, served by the
//! real worker (claim, route, verify, outcome, charge) with concurrency 1
//! so the order, and so the cache's hits, are the same every replay:
//!
//! - *baseline*: route `[frontier]`, no cascade, no cache;
//! - *cascade*: route `[cheap, frontier]` as a cascade, no cache (to show
//!   the two levers apart);
//! - *margin*: the same cascade, with the cache.
//!
//! It reports, per run and as the median over `--runs` seeds, the
//! inference cost per resolved outcome of each, its ratio, and the
//! resolution rates. Targets (issue 8): at least 30% lower cost per
//! resolved outcome at no less than 98% of the baseline's resolution rate;
//! it exits 1 when the median misses them, unless `--no-fail`.
//!
//! Run: `cargo bench --bench margin_workload [-- --tasks 1000 --distinct 5000
//! --popular 50 --repeat-share 0.25 --runs 5 --seed 1 --save FILE --no-fail]`.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bounty_agents::{Worker, WorkerConfig};
use bounty_core::{
    AccountId, AccountName, AgentId, AgentName, ApiKeyMode, ApiKeySecret, KeyName, ModelRoute, OutcomeType,
    RoutingPolicy, SystemClock, TaskInput,
};
use bounty_models::testing::openai::{Behavior, FakeOpenAi};
use bounty_models::{ModelConfig, ModelRegistry, Router};
use bounty_store::{AgentSpec, DatabaseOptions, NewTask, Store};
use serde_json::json;
use tokio_util::sync::CancellationToken;

struct Args {
    tasks: usize,
    distinct: usize,
    popular: usize,
    repeat_share: f64,
    runs: u64,
    seed: u64,
    save: Option<String>,
    fail: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        tasks: 1000,
        distinct: 5000,
        popular: 50,
        repeat_share: 0.25,
        runs: 5,
        seed: 1,
        save: None,
        fail: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match a.as_str() {
            "--tasks" => args.tasks = value("--tasks").parse().expect("--tasks N"),
            "--distinct" => args.distinct = value("--distinct").parse().expect("--distinct N"),
            "--popular" => args.popular = value("--popular").parse().expect("--popular N"),
            "--repeat-share" => {
                args.repeat_share = value("--repeat-share").parse().expect("--repeat-share 0..1")
            }
            "--runs" => args.runs = value("--runs").parse().expect("--runs N"),
            "--seed" => args.seed = value("--seed").parse().expect("--seed N"),
            "--save" => args.save = Some(value("--save")),
            "--no-fail" => args.fail = false,
            "--bench" => {}
            other => panic!("unknown argument {other:?}"),
        }
    }
    assert!(
        args.popular >= 1 && args.popular <= args.distinct,
        "--popular within --distinct"
    );
    args
}

/// xorshift64*: the workload's draws, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One ticket of the queue.
#[derive(Clone, serde::Serialize)]
struct Ticket {
    id: usize,
    difficulty: u8,
    subject: String,
    body: String,
}

const FILLER: &str = "I ordered it three weeks ago and have written twice already. The tracking page \
has not changed since the parcel left the warehouse, and the courier's phone line only plays a \
recording. I would like to know what happened and what you will do about it, please.";

fn tickets(rng: &mut Rng, distinct: usize) -> Vec<Ticket> {
    (0..distinct)
        .map(|id| {
            let u = rng.unit();
            let difficulty = match u {
                u if u < 0.60 => 1,
                u if u < 0.85 => 2,
                u if u < 0.97 => 3,
                _ => 4,
            };
            Ticket {
                id,
                difficulty,
                subject: format!("Order {id} question"),
                body: format!("{FILLER} difficulty: {difficulty} answer: W{id}"),
            }
        })
        .collect()
}

/// The task stream: indices into the tickets, and whether the copy is
/// recased and respaced (a repeat as a customer would type it again).
fn stream(rng: &mut Rng, args: &Args, tickets: &[Ticket]) -> Vec<(usize, bool)> {
    (0..args.tasks)
        .map(|_| {
            if rng.unit() < args.repeat_share {
                (rng.below(args.popular), rng.unit() < 0.5)
            } else {
                (rng.below(tickets.len()), false)
            }
        })
        .collect()
}

fn input(t: &Ticket, variant: bool) -> TaskInput {
    let (subject, body) = if variant {
        (
            format!("  {}", t.subject.to_uppercase()),
            t.body.replace(". ", ".  "),
        )
    } else {
        (t.subject.clone(), t.body.clone())
    };
    TaskInput {
        subject,
        body,
        ..Default::default()
    }
}

const INSTRUCTIONS: &str = "You are the support agent of an online shop. Read the customer's \
ticket and answer it in one short paragraph: say what happened, what we will do, and when. Be \
polite and specific. Never invent an order status you cannot see. If you do not know the answer, \
say that you are not sure, so that a person can take over. Do not ask the customer to repeat \
information that is already in the ticket.";

fn model(url: &str, wire: &str, input: &str, output: &str) -> ModelConfig {
    serde_json::from_value(json!({
        "provider": "openai",
        "base_url": url,
        "model": wire,
        "api_key": "sk-bench",
        "max_retries": 0,
        "request_timeout_ms": 10_000,
        "price": {"input_per_million": input, "output_per_million": output},
    }))
    .expect("model config")
}

async fn agent(store: &Store, name: &str, route: &[&str], routing: RoutingPolicy) -> (AccountId, AgentId) {
    let (account, _) = store
        .create_account(
            &AccountName::parse(name).unwrap(),
            &KeyName::parse("bench").unwrap(),
            &ApiKeySecret::generate(ApiKeyMode::Live),
        )
        .await
        .unwrap();
    let policy = serde_json::from_value(json!({
        "verifiers": [{"kind": "rules", "non_empty": true, "forbidden_phrases": ["not sure"]}]
    }))
    .unwrap();
    let agent = store
        .create_agent(
            account.id,
            &AgentSpec {
                name: AgentName::parse("support").unwrap(),
                instructions: INSTRUCTIONS.to_owned(),
                model_route: ModelRoute::parse(route.iter().map(|m| (*m).to_owned()).collect()).unwrap(),
                output_schema: None,
                outcome_type: OutcomeType::parse("ticket.resolved").unwrap(),
                verifier_policy: policy,
                params: Default::default(),
                routing,
                tools: Vec::new(),
                knowledge: Vec::new(),
                max_steps: bounty_store::DEFAULT_MAX_STEPS,
                handoff: false,
            },
        )
        .await
        .unwrap();
    (account.id, agent.id)
}

/// What one variant did with the stream.
#[derive(Clone, Copy, Default)]
struct Result {
    decided: i64,
    resolved: i64,
    cost_micros: i64,
    cache_hits: i64,
    cheap_calls: u64,
    frontier_calls: u64,
}

impl Result {
    fn cost_per_resolved(&self) -> f64 {
        self.cost_micros as f64 / self.resolved.max(1) as f64
    }

    fn resolution(&self) -> f64 {
        self.resolved as f64 / self.decided.max(1) as f64
    }
}

async fn play(
    store: &Store,
    router: &Router,
    account: AccountId,
    agent: AgentId,
    tickets: &[Ticket],
    stream: &[(usize, bool)],
) -> Result {
    for &(i, variant) in stream {
        let new = NewTask {
            agent_id: agent,
            agent_version: 1,
            input: input(&tickets[i], variant),
            external_ref: None,
            idempotency: None,
            max_attempts: 1,
            mode: bounty_core::ApiKeyMode::Live,
        };
        store.create_task(account, &new).await.unwrap();
    }
    let config = WorkerConfig {
        id: WorkerConfig::default_id(),
        concurrency: 1,
        lease: Duration::from_secs(30),
        poll_interval: Duration::from_millis(5),
        retry_base: Duration::from_millis(10),
        retry_max: Duration::from_millis(50),
        shutdown_grace: Duration::from_secs(5),
        gateway_bill_interval: Duration::from_millis(200),
    };
    let cancel = CancellationToken::new();
    let worker = tokio::spawn(Worker::new(store.clone(), router.clone(), config).run(cancel.clone()));
    let far = (
        chrono::DateTime::UNIX_EPOCH,
        store.now() + chrono::Duration::days(1),
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    let buckets = loop {
        let buckets = store
            .usage(account, bounty_core::ApiKeyMode::Live, far.0, far.1)
            .await
            .unwrap();
        let decided: i64 = buckets.iter().map(|b| b.outcomes).sum();
        if decided as usize == stream.len() {
            break buckets;
        }
        assert!(
            Instant::now() < deadline,
            "the stream did not finish: {decided} of {}",
            stream.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    cancel.cancel();
    worker.await.unwrap();
    let mut r = Result::default();
    for b in &buckets {
        r.decided += b.outcomes;
        if b.status == bounty_core::outcome::OutcomeStatus::Resolved {
            r.resolved += b.outcomes;
        }
        r.cost_micros += b.inference_cost.micros;
    }
    let today = store.now().date_naive();
    r.cache_hits = store.cache_summary(account, today, today).await.unwrap().hits;
    let rates = store.model_pass_rates(account, agent).await.unwrap();
    r.cheap_calls = rates.get("cheap").map_or(0, |m| m.live.tried);
    r.frontier_calls = rates.get("frontier").map_or(0, |m| m.live.tried);
    r
}

async fn run(args: &Args, seed: u64) -> (Result, Result, Result) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let tickets = tickets(&mut rng, args.distinct);
    let stream = stream(&mut rng, args, &tickets);
    if let Some(path) = &args.save {
        let mut f = std::io::BufWriter::new(std::fs::File::create(format!("{path}.{seed}")).unwrap());
        for &(i, variant) in &stream {
            let t = &tickets[i];
            writeln!(
                f,
                "{}",
                json!({"ticket": t.id, "difficulty": t.difficulty, "input": input(t, variant)})
            )
            .unwrap();
        }
    }
    let fake = FakeOpenAi::start().await;
    fake.set_recording(false);
    fake.set_default(Behavior::Skilled(BTreeMap::from([
        ("cheap-llm".to_owned(), 1),
        ("frontier-llm".to_owned(), 3),
    ])));
    let url = fake.base_url();
    let models = BTreeMap::from([
        ("cheap".to_owned(), model(&url, "cheap-llm", "0.15", "0.60")),
        (
            "frontier".to_owned(),
            model(&url, "frontier-llm", "2.50", "10.00"),
        ),
    ]);
    let router = Router::new(Arc::new(ModelRegistry::from_config(&models).expect("registry")));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(
        &DatabaseOptions {
            url: format!("sqlite://{}", dir.path().join("margin.db").display()),
            max_connections: 4,
            acquire_timeout: Duration::from_secs(30),
            sqlite_busy_timeout: Duration::from_secs(5),
        },
        Arc::new(SystemClock),
    )
    .await
    .expect("connect");
    store.migrate().await.expect("migrate");
    let routing = |v| serde_json::from_value::<RoutingPolicy>(v).unwrap();
    let cascade = routing(json!({"cascade": {"max_steps": 2}}));
    let margin = routing(json!({"cascade": {"max_steps": 2}, "cache": {"ttl_hours": 168}}));
    let mut results = Vec::new();
    for (name, route, routing) in [
        ("Baseline", &["frontier"][..], RoutingPolicy::default()),
        ("Cascade", &["cheap", "frontier"][..], cascade),
        ("Margin", &["cheap", "frontier"][..], margin),
    ] {
        let (account, agent) = agent(&store, name, route, routing).await;
        results.push(play(&store, &router, account, agent, &tickets, &stream).await);
    }
    store.close().await;
    (results[0], results[1], results[2])
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "margin_workload: {} tasks over {} tickets ({} popular, repeat share {}), {} runs from seed {}; \
         simulated models on the OpenAI-wire fake: cheap solves difficulty 1, frontier 1-3 (4 is unsolvable)",
        args.tasks, args.distinct, args.popular, args.repeat_share, args.runs, args.seed
    );
    println!(
        "{:>4} {:>10} {:>10} {:>10} {:>9} {:>10} {:>10} {:>9} {:>6} {:>7} {:>7} {:>8}",
        "seed",
        "base µ$/res",
        "casc µ$/res",
        "c+c µ$/res",
        "ratio",
        "base res%",
        "c+c res%",
        "res ratio",
        "hits",
        "cheap",
        "front.",
        "secs"
    );
    let (mut ratios, mut res_ratios, mut base_cpr, mut casc_cpr) = (vec![], vec![], vec![], vec![]);
    let mut cascade_ratios = vec![];
    for seed in args.seed..args.seed + args.runs {
        let started = Instant::now();
        let (b, c, m) = rt.block_on(run(&args, seed));
        let ratio = m.cost_per_resolved() / b.cost_per_resolved();
        let res_ratio = m.resolution() / b.resolution();
        cascade_ratios.push(c.cost_per_resolved() / b.cost_per_resolved());
        println!(
            "{seed:>4} {:>10.2} {:>10.2} {:>10.2} {:>9.3} {:>9.2}% {:>9.2}% {:>9.4} {:>6} {:>7} {:>7} {:>8.1}",
            b.cost_per_resolved(),
            c.cost_per_resolved(),
            m.cost_per_resolved(),
            ratio,
            b.resolution() * 100.0,
            m.resolution() * 100.0,
            res_ratio,
            m.cache_hits,
            m.cheap_calls,
            m.frontier_calls,
            started.elapsed().as_secs_f64()
        );
        ratios.push(ratio);
        res_ratios.push(res_ratio);
        base_cpr.push(b.cost_per_resolved());
        casc_cpr.push(m.cost_per_resolved());
    }
    let (ratio, res_ratio) = (median(ratios), median(res_ratios));
    println!(
        "median: cost per resolved outcome {:.2} µ$ (baseline) vs {:.2} µ$ (cascade + cache): {:.1}% lower \
         (ratio {:.3}; the cascade alone {:.3}); resolution rate ratio {:.4}",
        median(base_cpr),
        median(casc_cpr),
        (1.0 - ratio) * 100.0,
        ratio,
        median(cascade_ratios),
        res_ratio
    );
    let met = ratio <= 0.70 && res_ratio >= 0.98;
    println!(
        "target (≥ 30% lower at ≥ 98% of the baseline's resolution rate): {}",
        if met { "met" } else { "NOT met" }
    );
    if !met && args.fail {
        std::process::exit(1);
    }
}
