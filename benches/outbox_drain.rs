//! Outbox drain rate: meter events per second sent to a wire-format fake
//! Stripe, by 1 and 4 concurrent senders on Postgres.
//!
//! Each run creates a fresh database on the server `BENCH_DATABASE_URL`
//! names, resolves `--events` outcomes through the store's real path (so
//! each has a charge transfer and its outbox row), gives the account its
//! Stripe customer, then starts the senders and times the drain until no
//! row is pending. Every row is a real HTTPS-less HTTP request through
//! async-stripe to the fake (form encoding, idempotency key, JSON answer)
//! plus the lease claim and the "sent" write.
//!
//! Run: `BENCH_DATABASE_URL=postgres://… cargo bench --bench outbox_drain
//! [-- --events 1000 --runs 3 --senders 1,4]`.

use std::time::{Duration, Instant};

use bounty_billing::outbox::{Sender, SenderConfig};
use bounty_billing::stripe::{StripeClient, StripeConfig};
use bounty_billing::testing::FakeStripe;
use bounty_core::Decision;
use bounty_store::{AttemptEnd, TaskOutput};

mod common;
use common::{BenchDb, new_task, tenant};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

async fn run_once(admin: &str, fake: &FakeStripe, events: usize, senders: usize) -> f64 {
    let bench_db = BenchDb::create(admin, "bounty_obench").await;
    let store = bench_db.store(16).await;
    let (account, agent) = tenant(&store, "Bench", "m").await;
    // The account's customer, subscription and gateway-price rows go
    // first, so every meter event has its customer; the drain measured is
    // meter events only.
    for claim in store
        .claim_outbox(bounty_core::ApiKeyMode::Live, 3, Duration::from_secs(60))
        .await
        .unwrap()
    {
        let object = match claim.item.kind.as_str() {
            "stripe_customer" => "cus_bench",
            "stripe_subscription" => "sub_bench",
            _ => "si_bench",
        };
        let delivered = bounty_store::Delivered {
            object_id: Some(object.to_owned()),
            sent_as: None,
        };
        store.outbox_sent(claim.item.id, &delivered).await.unwrap();
    }
    for i in 0..events {
        store
            .create_task(account, &new_task(agent, format!("t{i}"), 1))
            .await
            .unwrap();
        let claimed = store
            .claim_tasks("bench", 1, Duration::from_secs(60))
            .await
            .unwrap()
            .pop()
            .unwrap();
        let end = AttemptEnd::Completed(TaskOutput {
            handoff: None,
            text: "ok".into(),
            errors: None,
            model: "m".into(),
            transcript: serde_json::json!([]),
            decision: Decision::Pass,
            verdicts: Vec::new(),
            cache: None,
        });
        bounty_agents::finish::finish_attempt(&store, &claimed, &end, &[])
            .await
            .unwrap();
    }
    let mut client_config = StripeConfig::new(FakeStripe::SECRET_KEY.to_owned().into());
    client_config.base_url = fake.base_url();
    let config = SenderConfig {
        batch: 16,
        poll_interval: Duration::from_millis(5),
        ..SenderConfig::default()
    };
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..senders {
        let sender = Sender::new(
            store.clone(),
            StripeClient::new(client_config.clone()).unwrap(),
            config.clone(),
        );
        handles.push(tokio::spawn(async move {
            loop {
                if sender.drain_once().await.unwrap() == 0 {
                    break;
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let elapsed = started.elapsed();
    let stats = store.outbox_stats().await.unwrap();
    assert_eq!((stats.pending, stats.failed), (0, 0), "the outbox drained");
    store.close().await;
    bench_db.drop_database().await;
    events as f64 / elapsed.as_secs_f64()
}

fn main() {
    let Ok(admin) = std::env::var("BENCH_DATABASE_URL") else {
        println!(
            "outbox_drain skipped: set BENCH_DATABASE_URL to a Postgres server where the user may CREATE DATABASE"
        );
        return;
    };
    let events: usize = arg("--events", "1000").parse().expect("--events N");
    let runs: usize = arg("--runs", "3").parse().expect("--runs N");
    let senders: Vec<usize> = arg("--senders", "1,4")
        .split(',')
        .map(|s| s.parse().expect("--senders 1,4"))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fake = FakeStripe::start().await;
        println!("outbox drain on Postgres to the fake Stripe: {events} meter events per run, {runs} runs");
        println!(
            "{:>8} {:>15} {:>20} {:>16}",
            "senders", "median events/s", "runs", "µs per event"
        );
        for &n in &senders {
            let mut rates = Vec::new();
            for _ in 0..runs {
                rates.push(run_once(&admin, &fake, events, n).await);
            }
            rates.sort_by(f64::total_cmp);
            let median = rates[rates.len() / 2];
            println!(
                "{n:>8} {median:>15.0} {:>20} {:>16.0}",
                format!("{:.0}..{:.0}", rates[0], rates[rates.len() - 1]),
                1e6 / median
            );
        }
    });
}
