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
//! Run: `BENCH_DATABASE_URL=postgres://… cargo bench --bench queue_throughput
//! [-- --tasks 2000 --accounts 16 --concurrency 8 --runs 3 --workers 1,2,4]`.

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
}

fn parse_args() -> Args {
    let mut args = Args {
        tasks: 2000,
        accounts: 16,
        concurrency: 8,
        runs: 3,
        workers: vec![1, 2, 4],
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

async fn run_once(admin: &str, fake: &FakeOpenAi, workers: usize, args: &Args) -> f64 {
    let bench_db = BenchDb::create(admin, "bounty_qbench").await;
    let url = bench_db.url.clone();
    let store = bench_db.store(8).await;
    // Tasks of several tenants, as in production: one account's charges
    // serialise on its billing lock.
    let mut tenants = Vec::new();
    for a in 0..args.accounts.max(1) {
        tenants.push(tenant(&store, &format!("Bench {a}"), "instant").await);
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
            "[log]\nlevel = \"warn\"\n\n[worker]\nin_serve = false\nconcurrency = {}\nlease_ms = 60000\n\
             poll_interval_ms = 20\n\n[models.instant]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\n\
             max_retries = 0\nprice = {{ input_per_million = \"0.15\", output_per_million = \"0.60\" }}\n",
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
                rates.push(run_once(&admin, &fake, workers, &args).await);
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
    });
}
