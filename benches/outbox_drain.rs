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
//! **Stripe as it is on a bad day** (`--latency-ms 250`): every request
//! the fake answers waits that long, and the mix of issue 20's crash
//! harness is scripted in: 10% 500s, 5% 429s, 5% "applied but answered
//! 500". Then one sender (`--concurrency` rows at once, default 32):
//! - drains `--events` meter events: events/s;
//! - keeps pace with charges made at `--rate` per second (default 8) for
//!   `--seconds` (default 30): the delay from each charge's outbox row to
//!   its meter event reaching Stripe (the row's `sent_at`), p50/p99/max.
//!   Checked: one meter event per charge in the fake.
//!
//! Run: `BENCH_DATABASE_URL=postgres://… cargo bench --bench outbox_drain
//! [-- --events 1000 --runs 3 --senders 1,4 --latency-ms 250 --concurrency 32 --rate 8 --seconds 30]`.

use std::time::{Duration, Instant};

use bounty_billing::outbox::{Sender, SenderConfig};
use bounty_billing::stripe::{StripeClient, StripeConfig};
use bounty_billing::testing::{FakeStripe, Fault};

mod common;
use common::{BenchDb, arg, new_task, tenant};

/// Scripts `n` requests' answers: the fault mix, or else `latency`.
fn script(fake: &FakeStripe, n: usize, latency: Duration, seed: &mut u64) {
    for _ in 0..n {
        // xorshift64*: a fixed, seeded sequence.
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        let roll = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) % 100;
        fake.push_fault(match roll {
            0..10 => Fault::Status(500, None),
            10..15 => Fault::Status(429, None),
            15..20 => Fault::DropAfterCommit,
            _ => Fault::Delay(latency),
        });
    }
}

/// A fresh bench database with one account whose customer, subscription
/// and gateway-price rows are already sent: the rows measured are meter
/// events only.
async fn prepared(
    admin: &str,
) -> (
    BenchDb,
    bounty_store::Store,
    bounty_core::AccountId,
    bounty_core::AgentId,
) {
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
    (bench_db, store, account, agent)
}

/// One resolved task of `account`, through the real finish path: its
/// charge and the charge's meter-event row.
async fn charge(
    store: &bounty_store::Store,
    account: bounty_core::AccountId,
    agent: bounty_core::AgentId,
    i: usize,
) {
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
    let end = common::resolved();
    bounty_agents::finish::finish_attempt(store, &claimed, &end, &[])
        .await
        .unwrap();
}

fn sender(store: &bounty_store::Store, fake: &FakeStripe, concurrency: usize) -> Sender {
    let mut client_config = StripeConfig::new(FakeStripe::SECRET_KEY.to_owned().into());
    client_config.base_url = fake.base_url();
    client_config.timeout = Duration::from_secs(10);
    let config = SenderConfig {
        // One claim a wave: the batch is what is sent at once.
        batch: u32::try_from(concurrency).unwrap_or(32),
        poll_interval: Duration::from_millis(5),
        concurrency,
        ..SenderConfig::default()
    };
    Sender::new(store.clone(), StripeClient::new(client_config).unwrap(), config)
}

/// Events/s over the whole drain, and until 95% of the rows were sent
/// (before the last ones' backoff after repeated faults).
async fn run_once(
    admin: &str,
    fake: &FakeStripe,
    events: usize,
    senders: usize,
    concurrency: usize,
) -> (f64, f64) {
    let (bench_db, store, account, agent) = prepared(admin).await;
    for i in 0..events {
        charge(&store, account, agent, i).await;
    }
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let mut handles = Vec::new();
    for _ in 0..senders {
        let sender = sender(&store, fake, concurrency);
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            // Until nothing is pending: rows backed off after a fault are
            // not due at once.
            loop {
                if sender.drain_once().await.unwrap() == 0 {
                    if store.outbox_stats().await.unwrap().pending == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
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
    assert_eq!(
        fake.meter_events().len() % events.max(1),
        0,
        "one meter event per charge"
    );
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&bench_db.url)
        .await
        .unwrap();
    let (p95,): (chrono::DateTime<chrono::Utc>,) = sqlx::query_as(
        "select percentile_disc(0.95) within group (order by sent_at) from outbox where kind = 'meter_event'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    drop(db);
    store.close().await;
    bench_db.drop_database().await;
    let to_95 = (p95 - started_at).num_microseconds().unwrap_or(1) as f64 / 1e6;
    (
        events as f64 / elapsed.as_secs_f64(),
        0.95 * events as f64 / to_95,
    )
}

/// Charges made at `rate` per second for `seconds` while one sender runs:
/// each charge's delay from its outbox row to Stripe, in ms, sorted.
async fn keep_pace(admin: &str, fake: &FakeStripe, rate: f64, seconds: u64, concurrency: usize) -> Vec<f64> {
    let (bench_db, store, account, agent) = prepared(admin).await;
    let before = fake.meter_events().len();
    let sender = sender(&store, fake, concurrency);
    let cancel = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(sender.run(cancel.clone()));
    let total = (rate * seconds as f64) as usize;
    let started = Instant::now();
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        charge(&store, account, agent, i).await;
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while store.outbox_stats().await.unwrap().pending > 0 {
        assert!(Instant::now() < deadline, "the outbox did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    running.await.unwrap();
    assert_eq!(
        fake.meter_events().len() - before,
        total,
        "one meter event per charge"
    );
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&bench_db.url)
        .await
        .unwrap();
    let rows: Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("select created_at, sent_at from outbox where kind = 'meter_event'")
            .fetch_all(&mut db)
            .await
            .unwrap();
    let mut delays: Vec<f64> = rows
        .iter()
        .map(|(made, sent)| (*sent - *made).num_microseconds().unwrap_or(0) as f64 / 1e3)
        .collect();
    delays.sort_by(f64::total_cmp);
    drop(db);
    store.close().await;
    bench_db.drop_database().await;
    delays
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
    let latency_ms: u64 = arg("--latency-ms", "0").parse().expect("--latency-ms N");
    let concurrency: usize = arg("--concurrency", "32").parse().expect("--concurrency N");
    let rate: f64 = arg("--rate", "8").parse().expect("--rate N");
    let seconds: u64 = arg("--seconds", "30").parse().expect("--seconds N");
    rt.block_on(async {
        let latency = Duration::from_millis(latency_ms);
        let faulty = latency_ms > 0;
        println!(
            "outbox drain on Postgres to the fake Stripe: {events} meter events per run, {runs} runs, {concurrency} rows at once per sender{}",
            if faulty {
                format!(", {latency_ms} ms a request, 10% 500 / 5% 429 / 5% applied-then-500")
            } else {
                String::new()
            }
        );
        println!(
            "{:>8} {:>15} {:>20} {:>16} {:>22}",
            "senders", "median events/s", "runs", "µs per event", "to 95% sent, events/s"
        );
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for &n in &senders {
            let mut rates = Vec::new();
            let mut to_95 = Vec::new();
            for _ in 0..runs {
                let fake = FakeStripe::start().await;
                if faulty {
                    script(&fake, events * 2, latency, &mut seed);
                }
                let (all, most) = run_once(&admin, &fake, events, n, concurrency).await;
                rates.push(all);
                to_95.push(most);
            }
            rates.sort_by(f64::total_cmp);
            to_95.sort_by(f64::total_cmp);
            let median = rates[rates.len() / 2];
            println!(
                "{n:>8} {median:>15.0} {:>20} {:>16.0} {:>22}",
                format!("{:.0}..{:.0}", rates[0], rates[rates.len() - 1]),
                1e6 / median,
                format!("{:.0} ({:.0}..{:.0})", to_95[to_95.len() / 2], to_95[0], to_95[to_95.len() - 1])
            );
        }
        if !faulty {
            return;
        }
        println!("\ncharge to Stripe, one sender, charges at {rate}/s for {seconds} s (ms; per run p50 / p99 / max)");
        for _ in 0..runs {
            let fake = FakeStripe::start().await;
            script(&fake, (rate * seconds as f64) as usize * 2, latency, &mut seed);
            let delays = keep_pace(&admin, &fake, rate, seconds, concurrency).await;
            let at = |q: f64| delays[((delays.len() as f64 - 1.0) * q).round() as usize];
            println!("{:>10.0} {:>10.0} {:>10.0}", at(0.5), at(0.99), delays[delays.len() - 1]);
        }
    });
}
