//! What an OpenAI-compatible gateway adds: Bounty beside the LiteLLM proxy.
//!
//! One run, one fake upstream, one load, three targets:
//!
//! - **direct:** the load generator calls the fake upstream itself;
//! - **bounty:** the real Bounty server in process (SQLite), with the fake
//!   configured as the remote model `upstream`: `POST /v1/chat/completions`
//!   with a Bounty key and a `Bounty-Task` header (a new task every ten
//!   calls), so every call is authenticated, routed, priced and recorded;
//! - **litellm:** the LiteLLM proxy (`pip3 install 'litellm[proxy]'`) as a
//!   child process, configured as its docs say, in front of the same fake.
//!
//! For each target it measures the maximum throughput (closed loop, a few
//! concurrencies, the best kept), then non-streaming latency in an open
//! loop at 20, 500 and 2,000 requests/s, then time to first token of
//! streamed completions at 20 and 500 requests/s. A target whose maximum is
//! below a rate is not run at it: LiteLLM reaches about a hundred
//! requests/s here, so 20/s is the rate all three are compared at. Open-loop latency is measured from each request's
//! scheduled send time, so a target that queues cannot hide it
//! (coordinated omission). The summary prints p50/p99/p99.9, what Bounty
//! and LiteLLM add over direct at p50 and p99, the maxima and their ratio,
//! beside the targets.
//!
//! The machine has two cores, so the pieces are kept apart: the upstream
//! runs on one thread, Bounty on a one-worker runtime (plus SQLite's
//! connection threads), the load generator on a one-worker runtime fed by a
//! dispatcher thread that only sleeps, and LiteLLM in its own process with
//! its default single worker. They still share two cores: every figure
//! includes the cost of the generator and the upstream, the same for all
//! three targets, and "added" is the difference.
//!
//! Run: `cargo bench --bench gateway_overhead -- [--quick] [--duration
//! SECS] [--no-litellm] [--self-test]`. `--duration` is the length of each
//! open-loop run (default 10 s, 3 s with `--quick`). `--self-test` runs a
//! second or so of everything and checks the answers: the wire format,
//! usage present, streams ending in `[DONE]` with a usage chunk, embeddings
//! and model lists, and exactly one upstream call per request. It exits
//! non-zero when a check fails. `--bounty-nodelay` (a diagnostic) serves
//! Bounty's app behind a listener that sets `TCP_NODELAY`, which
//! `bounty_server::serve` does not: without it a streamed event written
//! after the response headers waits for the client's delayed ACK (~40 ms).

#[path = "gateway_overhead/bounty.rs"]
mod bounty;
#[allow(dead_code)] // the shared setup's Postgres helpers are not used here
mod common;
#[path = "gateway_overhead/litellm.rs"]
mod litellm;
#[path = "gateway_overhead/load.rs"]
mod load;
#[path = "gateway_overhead/report.rs"]
mod report;
#[path = "gateway_overhead/upstream.rs"]
mod upstream;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use load::{Mode, Run, Target};
use report::{Cell, Saturation};
use tokio::runtime::Handle;

struct Args {
    quick: bool,
    duration: Option<f64>,
    no_litellm: bool,
    self_test: bool,
    bounty_nodelay: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        quick: false,
        duration: None,
        no_litellm: false,
        self_test: false,
        bounty_nodelay: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--no-litellm" => args.no_litellm = true,
            "--self-test" => args.self_test = true,
            "--bounty-nodelay" => args.bounty_nodelay = true,
            "--duration" => {
                let v = it.next().and_then(|v| v.parse::<f64>().ok());
                match v {
                    Some(secs) if secs > 0.0 => args.duration = Some(secs),
                    _ => panic!("--duration needs a positive number of seconds"),
                }
            }
            // `cargo bench` passes `--bench`; ignore what is not ours.
            _ => {}
        }
    }
    args
}

/// How long and how hard each part runs.
struct Plan {
    /// Each open-loop run.
    duration: Duration,
    /// Each closed-loop run.
    saturation: Duration,
    /// Unrecorded closed-loop run per target before measuring.
    warmup: Duration,
    concurrencies: Vec<usize>,
    /// Interleaved slices each open-loop run is cut into.
    rounds: usize,
    chat_rates: Vec<f64>,
    stream_rates: Vec<f64>,
}

impl Plan {
    fn new(args: &Args) -> Plan {
        if args.self_test {
            let secs = args.duration.unwrap_or(1.0);
            return Plan {
                duration: Duration::from_secs_f64(secs),
                saturation: Duration::from_secs_f64(secs),
                warmup: Duration::from_millis(300),
                concurrencies: vec![8],
                rounds: 1,
                chat_rates: vec![20.0, 500.0],
                stream_rates: vec![20.0],
            };
        }
        let secs = args.duration.unwrap_or(if args.quick { 3.0 } else { 10.0 });
        Plan {
            duration: Duration::from_secs_f64(secs),
            saturation: Duration::from_secs_f64(secs / 2.0),
            warmup: Duration::from_secs(1),
            concurrencies: if args.quick { vec![32] } else { vec![8, 32, 128] },
            rounds: if args.quick { 2 } else { 4 },
            chat_rates: vec![20.0, 500.0, 2_000.0],
            stream_rates: vec![20.0, 500.0],
        }
    }
}

/// Checks one target answers a chat completion and a stream (and, in the
/// self-test, embeddings and the model list), each reaching the upstream
/// exactly once.
fn check(rt: &Handle, target: &Target, calls: &upstream::Calls, full: bool) -> Result<(), String> {
    let before = calls.chat_total();
    rt.block_on(target.call(Mode::Chat, 0))
        .map_err(|e| format!("chat completion: {e}"))?;
    rt.block_on(target.call(Mode::Stream, 0))
        .map_err(|e| format!("streamed completion: {e}"))?;
    let reached = calls.chat_total() - before;
    if reached != 2 {
        return Err(format!("2 completions reached the upstream {reached} times"));
    }
    if full {
        rt.block_on(target.embeddings())
            .map_err(|e| format!("embeddings: {e}"))?;
        rt.block_on(target.models()).map_err(|e| format!("models: {e}"))?;
    }
    Ok(())
}

/// Runs `f`, and checks each request it sent reached the upstream once.
fn counted(calls: &upstream::Calls, failures: &mut Vec<String>, what: &str, f: impl FnOnce() -> Run) -> Run {
    let before = calls.chat_total();
    let run = f();
    let reached = calls.chat_total() - before;
    if run.errors == 0 && reached != run.sent as u64 {
        failures.push(format!(
            "{what}: {} requests reached the upstream {reached} times",
            run.sent
        ));
    }
    if run.errors > 0 {
        failures.push(format!(
            "{what}: {} of {} requests failed, first: {}",
            run.errors,
            run.sent,
            run.first_error.as_deref().unwrap_or("?")
        ));
    }
    if run.shed > 0 {
        failures.push(format!("{what}: {} requests shed, rate not sustained", run.shed));
    }
    run
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() -> ExitCode {
    let args = parse_args();
    let plan = Plan::new(&args);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "gateway_overhead: {cores} CPUs, load average {} at start{}",
        load_average(),
        if args.self_test { ", self-test" } else { "" }
    );
    println!(
        "  layout: upstream fake on 1 thread; Bounty on a 1-worker runtime (+ SQLite threads); load generator on a \
         1-worker runtime + a sleeping dispatcher thread; LiteLLM in its own process (1 uvicorn worker, its default). \
         All share the {cores} cores."
    );

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("loadgen")
        .enable_all()
        .build()
        .expect("load generator runtime");
    let rt = client_rt.handle().clone();

    let upstream = upstream::start();
    let bounty = bounty::start(&upstream.base_url, args.bounty_nodelay);
    if args.bounty_nodelay {
        println!(
            "bounty: --bounty-nodelay: served by axum::serve with TCP_NODELAY, not by bounty_server::serve (a diagnostic)"
        );
    }
    let proxy = if args.no_litellm {
        println!("litellm: skipped (--no-litellm)");
        None
    } else {
        match litellm::find() {
            None => {
                println!(
                    "litellm: skipped, not installed. Install it with `pip3 install 'litellm[proxy]'` (measured with 1.108.7)."
                );
                None
            }
            Some(exe) => {
                println!(
                    "litellm: starting {}, waiting for /health/liveliness",
                    exe.display()
                );
                match litellm::start(&rt, &exe, &upstream.base_url) {
                    Ok(p) => {
                        println!("litellm: live at {} ({})", p.base, p.version);
                        Some(p)
                    }
                    Err(e) => {
                        println!("litellm: skipped, it did not start: {e}");
                        None
                    }
                }
            }
        }
    };

    let mut all = vec![
        Arc::new(Target::new("direct", upstream.base_url.clone(), "sk-fake".into())),
        Arc::new(Target::new("bounty", bounty.base.clone(), bounty.key.clone())),
    ];
    if let Some(p) = &proxy {
        all.push(Arc::new(Target::new("litellm", p.base.clone(), p.key.clone())));
    }

    let mut failures = Vec::new();
    let mut targets = Vec::new();
    for target in all {
        match check(&rt, &target, &upstream.calls, args.self_test) {
            Ok(()) => {
                println!("{}: answers at {}", target.name, target.base);
                targets.push(target);
            }
            Err(e) => {
                println!("{}: NOT measured, check failed: {e}", target.name);
                failures.push(format!("{}: {e}", target.name));
            }
        }
    }
    if !targets.iter().any(|t| t.name == "direct") {
        println!("the upstream fake itself fails; nothing to compare");
        return ExitCode::FAILURE;
    }

    for target in &targets {
        load::closed_loop(&rt, target, Mode::Chat, 4, plan.warmup);
    }

    println!();
    println!(
        "maximum throughput (closed loop, non-streaming, {:?} per concurrency)",
        plan.saturation
    );
    let mut maxima = Vec::new();
    for target in &targets {
        let mut best: Option<Saturation> = None;
        for &c in &plan.concurrencies {
            let what = format!("{} closed loop x{c}", target.name);
            let run = counted(&upstream.calls, &mut failures, &what, || {
                load::closed_loop(&rt, target, Mode::Chat, c, plan.saturation)
            });
            println!(
                "  {:<8} concurrency {c:>4}: {:>8.0} req/s ({} errors)",
                target.name,
                run.throughput(),
                run.errors
            );
            if best
                .as_ref()
                .is_none_or(|b| run.throughput() > b.run.throughput())
            {
                best = Some(Saturation {
                    target: target.name,
                    concurrency: c,
                    run,
                });
            }
        }
        maxima.extend(best);
    }
    let max_of = |name: &str| {
        maxima
            .iter()
            .find(|s| s.target == name)
            .map_or(0.0, |s| s.run.throughput())
    };

    let mut cells = Vec::new();
    for (mode, rates) in [(Mode::Chat, &plan.chat_rates), (Mode::Stream, &plan.stream_rates)] {
        println!();
        println!(
            "open loop, {}, {:?} per target and rate in {} interleaved rounds",
            if mode == Mode::Chat {
                "non-streaming"
            } else {
                "streaming"
            },
            plan.duration,
            plan.rounds
        );
        for &rate in rates.iter() {
            let mut runs: Vec<(&Arc<Target>, Run)> = Vec::new();
            for target in &targets {
                let max = max_of(target.name);
                if max < rate * 1.05 {
                    println!(
                        "  {:<8} {rate:>6.0}/s: not run, its maximum is {max:.0} req/s",
                        target.name
                    );
                    cells.push(Cell::skipped(target.name, mode, rate, max));
                } else {
                    runs.push((target, Run::default()));
                }
            }
            // Interleaved rounds, each starting with another target, so
            // drift in the machine hits all targets alike.
            let slice = plan.duration.div_f64(plan.rounds as f64);
            for round in 0..plan.rounds {
                let n = runs.len();
                for k in 0..n {
                    let (target, total) = &mut runs[(k + round) % n];
                    let what = format!("{} {mode:?} at {rate}/s", target.name);
                    let run = counted(&upstream.calls, &mut failures, &what, || {
                        load::open_loop(&rt, target, mode, rate, slice)
                    });
                    total.absorb(run);
                }
            }
            for (target, run) in runs {
                println!(
                    "  {:<8} {rate:>6.0}/s: {} sent, {} errors, {} shed",
                    target.name, run.sent, run.errors, run.shed
                );
                cells.push(Cell::ran(target.name, mode, rate, run));
            }
        }
    }

    println!();
    report::print(&cells, &maxima, cores, &load_average());

    drop(proxy);
    drop(bounty);
    if failures.is_empty() {
        if args.self_test {
            println!("self-test: all checks passed");
        }
        return ExitCode::SUCCESS;
    }
    println!();
    println!("problems ({}):", failures.len());
    for f in &failures {
        println!("  - {f}");
    }
    if args.self_test {
        println!("self-test: FAILED");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
