//! Queue throughput: tasks/s claimed, run on an instant model, verified,
//! charged and completed on Postgres by 1, 2 and 4 real `bounty worker`
//! processes.
//!
//! For each worker count it creates a fresh database on the server that
//! `BENCH_DATABASE_URL` names (the user must be allowed to CREATE
//! DATABASE), queues `--tasks` tasks through the store, then starts the
//! worker processes (release build of this workspace's binary) against an
//! in-process OpenAI-compatible fake that answers at once. Throughput is
//! measured from the database's own timestamps, first claim to last
//! completion, so process start-up does not count. Each task is a full
//! pipeline run: claim with lease, agent load, prompt build, an HTTP model
//! call, model-call record, fenced completion.
//!
//! **What events cost** (`--events off,0,1,4`): one worker, run after
//! run interleaved, with `webhooks.events = false` (no event written: the
//! baseline), then events on with 0, 1 and 4 webhook endpoints per account
//! (each endpoint adds a delivery row per event; no sender runs, so this
//! is the cost of writing them). The ratio is tasks/s against `off`.
//!
//! Run: `BENCH_DATABASE_URL=postgres://… cargo bench --bench queue_throughput
//! [-- --tasks 2000 --accounts 16 --concurrency 8 --runs 3 --workers 1,2,4 --events off,0,1,4]`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bounty_models::testing::openai::FakeOpenAi;
use sqlx::Connection;

mod common;
use common::{BenchDb, new_task, tenant};

const BIN: &str = env!("CARGO_BIN_EXE_bounty");

struct Args {
    tasks: usize,
    accounts: usize,
    concurrency: u32,
    runs: usize,
    workers: Vec<usize>,
    /// Events settings to compare (`off`, or endpoints per account).
    events: Vec<Option<usize>>,
}

fn parse_args() -> Args {
    let mut args = Args {
        tasks: 2000,
        accounts: 16,
        concurrency: 8,
        runs: 3,
        workers: vec![1, 2, 4],
        events: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value =
            |name: &str| -> String { it.next().unwrap_or_else(|| panic!("{name} needs a value")) };
        match a.as_str() {
            "--tasks" => args.tasks = value("--tasks").parse().expect("--tasks N"),
            "--accounts" => args.accounts = value("--accounts").parse().expect("--accounts N"),
            "--concurrency" => args.concurrency = value("--concurrency").parse().expect("--concurrency N"),
            "--runs" => args.runs = value("--runs").parse().expect("--runs N"),
            "--events" => {
                args.events = value("--events")
                    .split(',')
                    .map(|n| match n {
                        "off" => None,
                        n => Some(n.parse().expect("--events off,0,1,4")),
                    })
                    .collect()
            }
            "--workers" => {
                args.workers = value("--workers")
                    .split(',')
                    .map(|n| n.parse().expect("--workers 1,2,4"))
                    .collect()
            }
            _ => {}
        }
    }
    args
}

/// One run: `events` is `None` for `webhooks.events = false`, else the
/// webhook endpoints each account has.
async fn run_once(admin: &str, fake: &FakeOpenAi, workers: usize, args: &Args, events: Option<usize>) -> f64 {
    let bench_db = BenchDb::create(admin, "bounty_qbench").await;
    let url = bench_db.url.clone();
    let store = bench_db.store(8).await;
    // Tasks of several tenants, as in production: one account's charges
    // serialise on its billing lock.
    let mut tenants = Vec::new();
    for a in 0..args.accounts.max(1) {
        let (account, agent) = tenant(&store, &format!("Bench {a}"), "instant").await;
        for e in 0..events.unwrap_or(0) {
            // Never opened: no sender runs here.
            store
                .create_webhook_endpoint(
                    account,
                    &bounty_store::webhooks::NewWebhookEndpoint {
                        id: bounty_core::WebhookEndpointId::new(),
                        mode: bounty_core::ApiKeyMode::Live,
                        url: format!("https://erp{e}.example.com/hook"),
                        description: None,
                        event_types: Vec::new(),
                        secret_sealed: "unused".to_owned(),
                    },
                )
                .await
                .unwrap();
        }
        tenants.push((account, agent));
    }
    for i in 0..args.tasks {
        let (account, agent) = tenants[i % tenants.len()];
        store
            .create_task(account, &new_task(agent, format!("ticket {i}"), 3))
            .await
            .unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bounty.toml"),
        format!(
            "[log]\nlevel = \"warn\"\n\n[webhooks]\nevents = {}\n\n[worker]\nin_serve = false\nconcurrency = {}\n\
             lease_ms = 60000\npoll_interval_ms = 20\n\n[models.instant]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\n\
             max_retries = 0\nprice = {{ input_per_million = \"0.15\", output_per_million = \"0.60\" }}\n",
            events.is_some(),
            args.concurrency,
            fake.base_url()
        ),
    )
    .unwrap();
    let mut children: Vec<Child> = (0..workers)
        .map(|_| {
            Command::new(BIN)
                .current_dir(dir.path())
                .env_remove("DATABASE_URL")
                .env_remove("RUST_LOG")
                .args(["--database-url", &url, "worker"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn bounty worker")
        })
        .collect();
    let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (done,): (i64,) = sqlx::query_as("select count(*) from tasks where status = 'completed'")
            .fetch_one(&mut db)
            .await
            .unwrap();
        if done as usize == args.tasks {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tasks did not complete in time ({done}/{})",
            args.tasks
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for c in &mut children {
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
    }
    for c in &mut children {
        let _ = c.wait();
    }
    let (first, last): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("select min(started_at), max(finished_at) from tasks")
            .fetch_one(&mut db)
            .await
            .unwrap();
    let (twice,): (i64,) = sqlx::query_as("select count(*) from tasks where attempts <> 1")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(twice, 0, "every task ran exactly once");
    let (charged,): (i64,) = sqlx::query_as("select count(*) from ledger_transfers where kind = 'charge'")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(
        charged as usize, args.tasks,
        "every task was verified, resolved and charged once"
    );
    let (written,): (i64,) = sqlx::query_as("select count(*) from events where type = 'task.completed'")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let expected = if events.is_some() { args.tasks } else { 0 };
    assert_eq!(
        written as usize, expected,
        "one task.completed per task, or none when events are off"
    );
    store.close().await;
    db.close().await.unwrap();
    bench_db.drop_database().await;
    let secs = (last - first).num_microseconds().unwrap_or(1) as f64 / 1e6;
    args.tasks as f64 / secs
}

fn main() {
    let args = parse_args();
    let Ok(admin) = std::env::var("BENCH_DATABASE_URL") else {
        println!(
            "queue_throughput skipped: set BENCH_DATABASE_URL to a Postgres server where the user may CREATE DATABASE"
        );
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fake = FakeOpenAi::start().await;
        fake.set_recording(false);
        let mut baseline = None;
        println!(
            "queue throughput on Postgres: {} tasks of {} accounts per run, {} runs, worker concurrency {}, instant model",
            args.tasks, args.accounts, args.runs, args.concurrency
        );
        println!(
            "{:>8} {:>14} {:>22} {:>10}",
            "workers", "median tasks/s", "runs", "vs 1"
        );
        for &workers in &args.workers {
            let mut rates = Vec::new();
            for _ in 0..args.runs {
                rates.push(run_once(&admin, &fake, workers, &args, Some(0)).await);
            }
            rates.sort_by(f64::total_cmp);
            let median = rates[rates.len() / 2];
            let base = *baseline.get_or_insert(median);
            println!(
                "{workers:>8} {median:>14.0} {:>22} {:>9.2}x",
                format!("{:.0}..{:.0}", rates[0], rates[rates.len() - 1]),
                median / base
            );
        }
        if args.events.is_empty() {
            return;
        }
        println!("\nwhat writing events costs: 1 worker, the settings interleaved run by run");
        let mut by: Vec<Vec<f64>> = vec![Vec::new(); args.events.len()];
        for _ in 0..args.runs {
            for (i, events) in args.events.iter().enumerate() {
                by[i].push(run_once(&admin, &fake, 1, &args, *events).await);
            }
        }
        let median = |v: &Vec<f64>| {
            let mut v = v.clone();
            v.sort_by(f64::total_cmp);
            (v[v.len() / 2], v[0], v[v.len() - 1])
        };
        let base = median(&by[0]).0;
        println!("{:>22} {:>14} {:>22} {:>10}", "events", "median tasks/s", "runs", "vs first");
        for (i, events) in args.events.iter().enumerate() {
            let (m, lo, hi) = median(&by[i]);
            let name = match events {
                None => "off".to_owned(),
                Some(n) => format!("on, {n} endpoint(s)"),
            };
            println!("{name:>22} {m:>14.0} {:>22} {:>9.3}x", format!("{lo:.0}..{hi:.0}"), m / base);
        }
    });
}
