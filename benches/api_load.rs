//! Load harness for the authenticated read path: `GET /v1/account`.
//!
//! Runs the real server in-process on `127.0.0.1:0` over a fresh SQLite
//! file (and over Postgres when `BENCH_DATABASE_URL` names a database it
//! may use), then drives it from `--clients` concurrent keep-alive
//! connections for a fixed number of requests. Every request does the full
//! work of a real one: key shape check, SHA-256, indexed key lookup, the
//! account read, JSON encoding, metrics and tracing.
//!
//! Run: `cargo bench --bench api_load` (optionally `-- --requests 20000
//! --clients 32`). It prints requests/s and latency percentiles; record
//! the medians of several runs in docs/PERFORMANCE.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bounty_core::{AccountName, ApiKeyMode, ApiKeySecret, KeyName, SystemClock};
use bounty_server::{AppState, Limits};
use bounty_store::{DatabaseOptions, Store};
use tokio_util::sync::CancellationToken;

struct Args {
    requests: usize,
    clients: usize,
    runs: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        requests: 10_000,
        clients: 16,
        runs: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match a.as_str() {
            "--requests" => args.requests = value("--requests"),
            "--clients" => args.clients = value("--clients"),
            "--runs" => args.runs = value("--runs"),
            // `cargo bench` passes `--bench`; ignore what is not ours.
            _ => {}
        }
    }
    args
}

async fn run_backend(label: &str, url: String, args: &Args) {
    let store = Store::connect(
        &DatabaseOptions {
            url,
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
            sqlite_busy_timeout: Duration::from_secs(5),
        },
        Arc::new(SystemClock),
    )
    .await
    .expect("connect");
    store.migrate().await.expect("migrate");
    let key = ApiKeySecret::generate(ApiKeyMode::Live);
    store
        .create_account(
            &AccountName::parse("Bench").unwrap(),
            &KeyName::parse("bench").unwrap(),
            &key,
        )
        .await
        .expect("account");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1/account", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(bounty_server::serve(
        listener,
        bounty_server::app(AppState::new(store, Limits::default())),
        shutdown.clone(),
        Duration::from_secs(5),
    ));
    let secret = Arc::new(key.secret.expose().to_owned());

    let mut throughputs = Vec::new();
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for run in 0..=args.runs {
        let per_client = args.requests / args.clients;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..args.clients {
            let (base, secret) = (base.clone(), Arc::clone(&secret));
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut latencies = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let t = Instant::now();
                    let resp = client
                        .get(&base)
                        .bearer_auth(secret.as_str())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 200);
                    resp.bytes().await.unwrap();
                    latencies.push(t.elapsed());
                }
                latencies
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let elapsed = started.elapsed();
        all.sort();
        let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
        if run == 0 {
            continue; // warm-up
        }
        throughputs.push(all.len() as f64 / elapsed.as_secs_f64());
        p50s.push(pct(0.50));
        p99s.push(pct(0.99));
    }
    shutdown.cancel();
    let _ = server.await;
    throughputs.sort_by(f64::total_cmp);
    p50s.sort();
    p99s.sort();
    let mid = args.runs / 2;
    println!(
        "{label:<9} GET /v1/account  {} requests x {} runs, {} clients:  median {:.0} req/s  (runs {:.0}..{:.0}),  p50 {:?},  p99 {:?}",
        args.requests,
        args.runs,
        args.clients,
        throughputs[mid],
        throughputs[0],
        throughputs[throughputs.len() - 1],
        p50s[mid],
        p99s[mid],
    );
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        run_backend("sqlite", sqlite, &args).await;
        match std::env::var("BENCH_DATABASE_URL") {
            Ok(url) => run_backend("postgres", url, &args).await,
            Err(_) => {
                println!("postgres  skipped: set BENCH_DATABASE_URL to a database the bench may write to")
            }
        }
    });
}
