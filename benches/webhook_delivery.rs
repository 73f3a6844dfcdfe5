//! Events out on Postgres: webhook deliveries per second to a local
//! receiver by 1 and 4 senders, and what writing a finished task's events
//! adds to finishing it.
//!
//! Each run makes a fresh database on the server `BENCH_DATABASE_URL`
//! names (the user must be allowed to CREATE DATABASE).
//!
//! - **Delivery.** One account with one endpoint (every type) on a local
//!   axum receiver answering 200. `--events` events are written through
//!   `emit_event` (one outbox row each), then 1 or 4 `WebhookSender`s drain
//!   them: each delivery opens the sealed secret, signs the event (Standard
//!   Webhooks), POSTs it through the guarded client, records the attempt and
//!   marks the row sent. Checked: the receiver got every event once.
//! - **Finishing.** `--tasks` tasks are finished through the real finish
//!   path (`bounty_agents::finish::finish_attempt`: outcome, charge, ledger,
//!   meter event, and its events) with events off (`webhooks.events =
//!   false`: the baseline), and on with 0, 1 and 4 endpoints, interleaved
//!   run by run. With 0 endpoints the events are still written (three rows
//!   a resolved task); each endpoint adds one outbox row per event. The
//!   ratio is tasks/s against events off. Separately, the time of one
//!   transaction writing a resolved task's three events is measured alone.
//!
//! Run: `BENCH_DATABASE_URL=postgres://… cargo bench --bench webhook_delivery
//! [-- --events 1000 --tasks 500 --runs 3]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bounty_core::event::{EventType, webhook_secret_aad};
use bounty_core::{AccountId, AgentId, ApiKeyMode, WebhookEndpointId};
use bounty_integrations::webhooks::{WebhookSender, WebhookSenderConfig};
use bounty_integrations::{IntegrationKind, Keyring, SealKey, generate_secret};
use bounty_store::Store;
use bounty_store::webhooks::{NewWebhookEndpoint, emit_event};
use secrecy::ExposeSecret;

mod common;
use common::{BenchDb, arg, new_task, tenant};

fn keyring() -> Keyring {
    Keyring::new("k1".parse().unwrap(), SealKey::generate().unwrap())
}

async fn endpoint(store: &Store, keys: &Keyring, account: AccountId, url: &str) {
    let id = WebhookEndpointId::new();
    let secret = generate_secret(IntegrationKind::Standard).unwrap();
    let sealed = keys
        .seal(
            secret.expose_secret().as_bytes(),
            webhook_secret_aad(account, id).as_bytes(),
        )
        .unwrap();
    store
        .create_webhook_endpoint(
            account,
            &NewWebhookEndpoint {
                id,
                mode: ApiKeyMode::Live,
                url: url.to_owned(),
                description: None,
                event_types: Vec::new(),
                secret_sealed: sealed,
            },
        )
        .await
        .unwrap();
}

/// A receiver answering 200 to every POST; counts them.
async fn receiver() -> (Arc<AtomicUsize>, String) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (count, url)
}

async fn deliver_once(admin: &str, events: usize, senders: usize) -> f64 {
    let db = BenchDb::create(admin, "bounty_whbench").await;
    let store = db.store(16).await;
    let keys = keyring();
    let (account, _) = tenant(&store, "Bench", "m").await;
    let (count, url) = receiver().await;
    endpoint(&store, &keys, account, &url).await;
    for chunk in 0..events.div_ceil(100) {
        let mut tx = store.begin().await.unwrap();
        for i in 0..100.min(events - chunk * 100) {
            let object = serde_json::json!({"object": "task", "n": chunk * 100 + i});
            emit_event(
                &mut tx,
                account,
                ApiKeyMode::Live,
                EventType::TaskCompleted,
                object,
                store.now(),
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let keys = Arc::new(keys);
    let config = WebhookSenderConfig {
        batch: 32,
        poll_interval: Duration::from_millis(5),
        allow_private: true,
        ..WebhookSenderConfig::default()
    };
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..senders {
        let sender = WebhookSender::new(store.clone(), keys.clone(), config.clone()).unwrap();
        handles.push(tokio::spawn(async move {
            while sender.drain_once().await.unwrap() > 0 {}
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let elapsed = started.elapsed();
    assert_eq!(
        count.load(Ordering::Relaxed),
        events,
        "every event delivered once"
    );
    store.close().await;
    db.drop_database().await;
    events as f64 / elapsed.as_secs_f64()
}

async fn finish_tasks(store: &Store, account: AccountId, agent: AgentId, tasks: usize) -> f64 {
    let mut claimed_all = Vec::with_capacity(tasks);
    for i in 0..tasks {
        store
            .create_task(account, &new_task(agent, format!("t{i}"), 1))
            .await
            .unwrap();
    }
    while claimed_all.len() < tasks {
        let batch = store
            .claim_tasks("bench", 64, Duration::from_secs(600))
            .await
            .unwrap();
        assert!(!batch.is_empty());
        claimed_all.extend(batch);
    }
    let end = common::resolved();
    let started = Instant::now();
    for claimed in &claimed_all {
        assert!(
            bounty_agents::finish::finish_attempt(store, claimed, &end, &[])
                .await
                .unwrap()
        );
    }
    tasks as f64 / started.elapsed().as_secs_f64()
}

/// Tasks/s finishing `tasks` tasks: `endpoints` `None` with events off,
/// else events on with that many endpoints.
async fn finish_once(admin: &str, tasks: usize, endpoints: Option<usize>) -> f64 {
    let db = BenchDb::create(admin, "bounty_whfinish").await;
    let store = db.store(16).await.with_events(endpoints.is_some());
    let keys = keyring();
    let (account, agent) = tenant(&store, "Bench", "m").await;
    for _ in 0..endpoints.unwrap_or(0) {
        endpoint(&store, &keys, account, "https://erp.example.com/hook").await;
    }
    let rate = finish_tasks(&store, account, agent, tasks).await;
    store.close().await;
    db.drop_database().await;
    rate
}

/// Microseconds of one transaction writing a resolved task's three events
/// (no endpoint), median of `n`.
async fn events_alone(admin: &str, n: usize) -> f64 {
    let db = BenchDb::create(admin, "bounty_whevents").await;
    let store = db.store(4).await;
    let (account, _) = tenant(&store, "Bench", "m").await;
    let mut with = Vec::with_capacity(n);
    let mut without = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let tx = store.begin().await.unwrap();
        tx.commit().await.unwrap();
        without.push(started.elapsed().as_secs_f64());
        let started = Instant::now();
        let mut tx = store.begin().await.unwrap();
        for kind in [
            EventType::ChargeCreated,
            EventType::OutcomeResolved,
            EventType::TaskCompleted,
        ] {
            emit_event(
                &mut tx,
                account,
                ApiKeyMode::Live,
                kind,
                serde_json::json!({"id": "x"}),
                store.now(),
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        with.push(started.elapsed().as_secs_f64());
    }
    with.sort_by(f64::total_cmp);
    without.sort_by(f64::total_cmp);
    store.close().await;
    db.drop_database().await;
    (with[n / 2] - without[n / 2]) * 1e6
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let Ok(admin) = std::env::var("BENCH_DATABASE_URL") else {
        println!(
            "webhook_delivery skipped: set BENCH_DATABASE_URL to a Postgres server where the user may CREATE DATABASE"
        );
        return;
    };
    let events: usize = arg("--events", "1000").parse().expect("--events N");
    let tasks: usize = arg("--tasks", "500").parse().expect("--tasks N");
    let runs: usize = arg("--runs", "3").parse().expect("--runs N");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("webhook deliveries on Postgres to a local receiver: {events} events per run, {runs} runs");
        println!("{:>8} {:>17} {:>20}", "senders", "median events/s", "runs");
        for senders in [1, 4] {
            let mut rates = Vec::new();
            for _ in 0..runs {
                rates.push(deliver_once(&admin, events, senders).await);
            }
            let (m, lo, hi) = median(rates);
            println!("{senders:>8} {m:>17.0} {:>20}", format!("{lo:.0}..{hi:.0}"));
        }
        println!("\nfinishing {tasks} resolved tasks through the real finish path, by endpoints of the account");
        let settings = [None, Some(0), Some(1), Some(4)];
        let mut by: Vec<Vec<f64>> = vec![Vec::new(); settings.len()];
        for _ in 0..runs {
            for (i, endpoints) in settings.into_iter().enumerate() {
                by[i].push(finish_once(&admin, tasks, endpoints).await);
            }
        }
        let base = median(by[0].clone()).0;
        println!("{:>22} {:>16} {:>20} {:>14}", "events", "median tasks/s", "runs", "vs off");
        for (i, endpoints) in settings.into_iter().enumerate() {
            let (m, lo, hi) = median(by[i].clone());
            let name = match endpoints {
                None => "off".to_owned(),
                Some(n) => format!("on, {n} endpoint(s)"),
            };
            println!("{name:>22} {m:>16.0} {:>20} {:>13.3}×", format!("{lo:.0}..{hi:.0}"), m / base);
        }
        let alone = events_alone(&admin, 300).await;
        println!(
            "\na resolved task's three events, written alone in one transaction: {alone:.0} µs more than an empty \
             transaction (median of 300); a finish takes {:.0} µs with events off ({:.1}%)",
            1e6 / base,
            alone / (1e6 / base) * 100.0
        );
    });
}
