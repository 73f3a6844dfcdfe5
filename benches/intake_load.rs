//! Intake under load: signed helpdesk webhooks accepted per second by the
//! real server, beside what the database does with the same work and no
//! HTTP.
//!
//! For each backend (SQLite always; Postgres when `BENCH_DATABASE_URL`
//! names a server where the user may CREATE DATABASE) a fresh database,
//! one account and agent, and two integrations made through the API: a
//! Standard Webhooks one and a Zendesk one. The worker is off.
//!
//! - **Deliveries.** Made and signed before the clock starts, a fresh set
//!   for every run: each a new ticket (`ticket.created`, Zendesk's
//!   `zen:event-type:ticket.created`) with its own delivery id, the two
//!   vendors alternating, and `--duplicates` percent (default 10) resends
//!   of an earlier delivery of the run (same id, same body: the helpdesk's
//!   retry), which must come back `duplicate` and make nothing.
//! - **Bounty.** Closed loops at `--concurrency` (default 16,64) for
//!   `--seconds` (default 5), then open loops at `--rates` per second
//!   (default 250,500; latency from the scheduled send, so queueing shows).
//!   Each request: the HTTP request, the integration (cached), the
//!   signature, the parse, then its share of a grouped transaction (the
//!   account and agent read, the task insert, the delivery's record:
//!   for the batch's new tickets together, one statement each; alone
//!   under a savepoint for the rest), answered once it is committed.
//! - **Baseline: the same transaction, no HTTP.** `intake::take` with group commit off
//!   called directly by as many concurrent tasks, one transaction and one
//!   commit a delivery: what the database gives one commit per request,
//!   on Bounty's own tables and indexes.
//! - **Bare two inserts.** Two rows into two tables with a primary key and
//!   nothing else, one commit each: the database's floor per commit.
//!
//! Every run is checked: each accepted new ticket has exactly one task,
//! each duplicate none, and the tasks count matches the new deliveries.
//! It prints accepted/s, p50/p99/p999, and the ratio to the baseline.
//!
//! - **API intake.** `POST /v1/tasks` by the same closed loops: each
//!   request a new task under its own `Idempotency-Key`, 10% replays of
//!   an earlier one (answered with its task, `Idempotent-Replayed`).
//! - **Requests per commit.** How many requests each grouped commit
//!   carried, and the share of them written set-wise (a batch's new
//!   tickets in one task insert and one delivery insert), from the
//!   store's own count ([`Store::group_stats`]).
//! - **Search indexing.** `--search-index off` drops the task search index
//!   (Postgres's trigram index, SQLite's FTS5 insert trigger) before the
//!   runs: what indexing in the intake transaction costs.
//! - **Round trips.** 40 new deliveries and then their 40 resends, one at a
//!   time, with sqlx's statement events counted: the statements a request
//!   sends the database inside its transaction (sqlx does not log BEGIN
//!   and COMMIT; a grouped request's share of those is 1/batch). Then 64
//!   new deliveries sent at once: each one's share of the statements of
//!   the batches they share.
//!
//! Run: `cargo bench --bench intake_load [-- --seconds 5 --concurrency 16,64
//! --rates 250,500 --duplicates 10 --group on|off --batchers 2
//! --max-batch 64 --search-index on|off --server-threads 1
//! --backends sqlite,postgres]` (add `BENCH_DATABASE_URL=postgres://…` for Postgres).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bounty_core::{AccountId, ApiKeyMode, ApiKeySecret};
use bounty_integrations::{Delivery, IntegrationKind, sign};
use bounty_server::{AppState, Limits};
use bounty_store::Store;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[allow(dead_code)] // the shared setup's task and store helpers are not used here
mod common;
use common::{BenchDb, arg, store_at, tenant};

fn list(name: &str, default: &str) -> Vec<usize> {
    arg(name, default)
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{name} takes numbers: {default}"))
        })
        .collect()
}

/// One signed delivery, ready to send.
#[derive(Clone)]
struct Shot {
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Which delivery it is (a resend has its original's).
    key: usize,
}

/// An integration made through the API: its inbound URL and secret.
struct Inbound {
    kind: IntegrationKind,
    url: String,
    secret: String,
}

/// `n` requests, `dup` percent of them resends of an earlier one (every
/// `100 / dup`-th), the others `fresh(k)` for k = 0, 1, 2, ….
fn with_resends(n: usize, dup: usize, mut fresh: impl FnMut(usize) -> Shot) -> Vec<Shot> {
    let mut out: Vec<Shot> = Vec::with_capacity(n);
    let mut made = 0usize;
    for i in 0..n {
        if dup > 0 && i > 0 && i % (100 / dup.min(100)) == 0 {
            let again = out[(i * 7919) % out.len()].clone();
            out.push(again);
            continue;
        }
        out.push(fresh(made));
        made += 1;
    }
    out
}

/// `n` deliveries, alternating vendors, `dup` percent of them resends.
fn shots(inbound: &[Inbound], n: usize, dup: usize, run: &str) -> Vec<Shot> {
    let now = chrono::Utc::now();
    with_resends(n, dup, |fresh| {
        let key = fresh;
        let target = &inbound[fresh % inbound.len()];
        let ticket = format!("{run}-{fresh}");
        let delivery_id = format!("{run}-d{fresh}");
        let body = match target.kind {
            IntegrationKind::Zendesk => json!({
                "account_id": 22129848,
                "detail": {
                    "id": ticket, "subject": "Charged twice", "status": "NEW",
                    "description": "I was charged twice for my order. Could you refund the duplicate?",
                    "requester_id": "8447388090494", "created_at": now.to_rfc3339(),
                    "updated_at": now.to_rfc3339(), "via": {"channel": "web_form"}
                },
                "event": {},
                "id": delivery_id,
                "subject": format!("zen:ticket:{ticket}"),
                "time": now.to_rfc3339(),
                "type": "zen:event-type:ticket.created",
                "zendesk_event_version": "2022-11-06"
            }),
            _ => json!({
                "type": "ticket.created",
                "timestamp": now.to_rfc3339(),
                "data": {"ticket_id": ticket, "subject": "Refund", "body": "Where is my refund?"}
            }),
        };
        let body = body.to_string().into_bytes();
        let headers = sign(
            target.kind,
            target.secret.as_bytes(),
            &body,
            &Delivery {
                id: &delivery_id,
                timestamp: now,
            },
        )
        .expect("sign");
        Shot {
            url: target.url.clone(),
            headers,
            body,
            key,
        }
    })
}

/// `n` `POST /v1/tasks` requests, each with its own `Idempotency-Key`,
/// `dup` percent of them resends of an earlier one (the same key and
/// body: answered with the first task, `Idempotent-Replayed: true`).
fn api_shots(base: &str, key: &str, n: usize, dup: usize, run: &str) -> Vec<Shot> {
    with_resends(n, dup, |fresh| {
        let body = json!({
            "agent": "bench",
            "input": {"subject": "Refund", "body": format!("Where is my refund? Order {run}-{fresh}.")},
            "external_ref": format!("{run}-{fresh}"),
        });
        Shot {
            url: format!("{base}/v1/tasks"),
            headers: vec![
                ("authorization".into(), format!("Bearer {key}")),
                ("idempotency-key".into(), format!("{run}-{fresh}")),
            ],
            body: body.to_string().into_bytes(),
            key: fresh,
        }
    })
}

/// The server under test, in process on its own runtime and threads.
struct Server {
    base: String,
    key: String,
    account: AccountId,
    store: Store,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start(url: String, group: bounty_store::GroupCommit, threads: usize) -> Server {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let thread = std::thread::Builder::new()
        .name("bounty".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let store = store_at(&url, 16).await.with_group_commit(group);
                let (account, _) = tenant(&store, "Intake bench", "m").await;
                let key = ApiKeySecret::generate(ApiKeyMode::Live);
                store
                    .create_api_key(account, &bounty_core::KeyName::parse("load").unwrap(), &key)
                    .await
                    .expect("key")
                    .expect("the account exists");
                let keyring = bounty_integrations::Keyring::new(
                    "k1".parse().expect("key id"),
                    bounty_integrations::SealKey::generate().expect("random"),
                );
                let state = AppState::new(store.clone(), Limits::default()).with_keyring(Some(keyring));
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let base = format!("http://{}", listener.local_addr().unwrap());
                ready_tx
                    .send((base, key.secret.expose().to_owned(), account, store))
                    .expect("ready");
                let _ =
                    bounty_server::serve(listener, bounty_server::app(state), stop, Duration::from_secs(5))
                        .await;
            });
        })
        .expect("thread");
    let (base, key, account, store) = ready_rx.recv().expect("server started");
    Server {
        base,
        key,
        account,
        store,
        shutdown,
        thread: Some(thread),
    }
}

/// What one run measured.
#[derive(Default)]
struct Run {
    /// The deliveries answered, each once (a resend and its original race:
    /// either may be the one recorded new, never both).
    keys: std::collections::BTreeSet<usize>,
    latency: Vec<Duration>,
    new: usize,
    duplicates: usize,
    errors: usize,
    first_error: Option<String>,
    wall: Duration,
}

impl Run {
    /// One answer: `Ok((new, key))` or the error.
    fn record(&mut self, result: Result<(bool, usize), String>, latency: Duration) {
        match result {
            Ok((new, key)) => {
                self.latency.push(latency);
                self.keys.insert(key);
                if new {
                    self.new += 1;
                } else {
                    self.duplicates += 1;
                }
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn absorb(&mut self, other: Run) {
        self.keys.extend(other.keys);
        self.latency.extend(other.latency);
        self.new += other.new;
        self.duplicates += other.duplicates;
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
    }

    fn rate(&self) -> f64 {
        (self.new + self.duplicates) as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    fn at(&self, q: f64) -> f64 {
        let mut v = self.latency.clone();
        v.sort();
        if v.is_empty() {
            return 0.0;
        }
        v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3
    }
}

async fn send(client: &reqwest::Client, shot: &Shot) -> Result<bool, String> {
    let mut request = client
        .post(&shot.url)
        .header("content-type", "application/json")
        .body(shot.body.clone());
    for (name, value) in &shot.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let replayed = response.headers().contains_key("idempotent-replayed");
    let answer: Value = response.json().await.map_err(|e| e.to_string())?;
    // A new delivery is 202; a resend answers its first delivery's body
    // with 200. An API task is 202, its replay 202 with
    // `Idempotent-Replayed`.
    match status.as_u16() {
        202 => Ok(!replayed),
        200 => Ok(false),
        _ => Err(format!("{status}: {answer}")),
    }
}

/// `concurrency` clients for `seconds`, each running `job(i)` for the
/// next `i` as soon as its last is done; `job` answers `None` when there
/// is no `i`th piece of work.
async fn clients<F, Fut>(concurrency: usize, seconds: f64, job: F) -> Run
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Option<Result<(bool, usize), String>>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (next, job) = (next.clone(), job.clone());
        set.spawn(async move {
            let mut run = Run::default();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                let Some(result) = job(i).await else { break };
                run.record(result, sent.elapsed());
            }
            run
        });
    }
    let mut all = Run::default();
    while let Some(r) = set.join_next().await {
        all.absorb(r.expect("client"));
    }
    all.wall = start.elapsed();
    all
}

/// Bounty at `concurrency` closed-loop clients.
async fn closed_loop(shots: Arc<Vec<Shot>>, concurrency: usize, seconds: f64) -> Run {
    let client = reqwest::Client::new();
    let run = clients(concurrency, seconds, move |i| {
        let (shots, client) = (shots.clone(), client.clone());
        async move {
            let shot = shots.get(i)?;
            Some(send(&client, shot).await.map(|new| (new, shot.key)))
        }
    })
    .await;
    assert_eq!(
        run.new,
        run.keys.len(),
        "each delivery made one task, its resends none"
    );
    run
}

/// `rate` shots a second for `seconds`, each sent at its scheduled time
/// whatever the answers before it; latency from the scheduled time.
async fn open_loop(shots: Arc<Vec<Shot>>, rate: f64, seconds: f64) -> Run {
    let n = ((rate * seconds) as usize).min(shots.len());
    let client = reqwest::Client::new();
    let start = Instant::now() + Duration::from_millis(5);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let (shots, client) = (shots.clone(), client.clone());
        set.spawn(async move { (send(&client, &shots[i]).await, due.elapsed(), shots[i].key) });
    }
    let mut run = Run::default();
    while let Some(r) = set.join_next().await {
        let (result, latency, key) = r.expect("client");
        run.record(result.map(|new| (new, key)), latency);
    }
    run.wall = start.elapsed();
    assert_eq!(
        run.new,
        run.keys.len(),
        "each delivery made one task, its resends none"
    );
    run
}

/// The baseline: `intake::take` with group commit off (verified
/// deliveries, parsed before the clock) by `concurrency` tasks, one
/// transaction and one commit a delivery: intake's own statements,
/// without HTTP or group commit.
async fn baseline(
    store: &Store,
    account: AccountId,
    inbound: &[Inbound],
    concurrency: usize,
    seconds: f64,
) -> Run {
    let integrations = store
        .list_integrations(account, bounty_core::PageLimit::new(10).unwrap(), None)
        .await
        .expect("integrations")
        .items;
    let mut prepared = Vec::new();
    let run_id = format!("b{}", bounty_core::id::new_ulid());
    for shot in shots(inbound, (concurrency * 4000).min(60_000), 0, &run_id) {
        let integration = integrations
            .iter()
            .find(|i| shot.url.ends_with(&i.id.to_string()))
            .expect("integration");
        let kind = integration.kind;
        let bounty_integrations::Parsed::Event(event) =
            bounty_integrations::parse(kind, &shot.body).expect("parse")
        else {
            panic!("a ticket event")
        };
        let id = shot
            .headers
            .iter()
            .find(|(n, _)| n.contains("id"))
            .map(|(_, v)| v.clone());
        let verified = bounty_integrations::Verified {
            delivery_id: id,
            secret_index: 0,
            signed_at: None,
        };
        prepared.push((
            integration.clone(),
            bounty_integrations::VerifiedDelivery::new(event, &verified, &shot.body),
        ));
    }
    let prepared = Arc::new(prepared);
    // One transaction and one commit a delivery.
    let store = store.clone().with_group_commit(bounty_store::GroupCommit {
        enabled: false,
        ..Default::default()
    });
    clients(concurrency, seconds, move |i| {
        let (prepared, store) = (prepared.clone(), store.clone());
        async move {
            let (integration, delivery) = prepared.get(i)?;
            let taken = bounty_integrations::intake::take(&store, integration, delivery.clone(), 3).await;
            Some(taken.map(|_| (true, i)).map_err(|e| e.to_string()))
        }
    })
    .await
}

/// Two rows into two bare tables, one commit each, by `concurrency` tasks.
async fn bare(url: &str, concurrency: usize, seconds: f64) -> Run {
    macro_rules! bare_on {
        ($pool:expr) => {{
            let pool = $pool;
            for sql in [
                "create table if not exists bench_bare_a (id text primary key, body text not null)",
                "create table if not exists bench_bare_b (id text primary key, a text not null)",
            ] {
                sqlx::query(sql).execute(&pool).await.expect("bare tables");
            }
            let run_id = bounty_core::id::new_ulid().to_string();
            let run = clients(concurrency, seconds, {
                let pool = pool.clone();
                move |i| {
                    let (pool, id) = (pool.clone(), format!("{run_id}-{i}"));
                    async move {
                        let mut tx = pool.begin().await.expect("begin");
                        sqlx::query("insert into bench_bare_a (id, body) values ($1, $2)")
                            .bind(&id)
                            .bind("{\"type\":\"ticket.created\"}")
                            .execute(&mut *tx)
                            .await
                            .expect("insert a");
                        sqlx::query("insert into bench_bare_b (id, a) values ($1, $1)")
                            .bind(&id)
                            .execute(&mut *tx)
                            .await
                            .expect("insert b");
                        tx.commit().await.expect("commit");
                        Some(Ok((true, i)))
                    }
                }
            })
            .await;
            pool.close().await;
            run
        }};
    }
    let max = u32::try_from(concurrency).unwrap_or(16).min(16);
    if url.starts_with("postgres") {
        bare_on!(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(max)
                .connect(url)
                .await
                .expect("connect")
        )
    } else {
        use std::str::FromStr as _;
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .expect("sqlite url")
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        bare_on!(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(max)
                .connect_with(options)
                .await
                .expect("connect")
        )
    }
}

/// Takes task search out of the intake transaction: Postgres's trigram
/// index on the input, SQLite's FTS5 insert trigger.
async fn drop_search_index(url: &str) {
    use sqlx::Connection as _;
    let sql = "drop index if exists tasks_input_trgm_idx";
    if url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::query(sql).execute(&mut conn).await.expect("drop the index");
    } else {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect");
        sqlx::query("drop trigger if exists tasks_search_insert")
            .execute(&mut conn)
            .await
            .expect("drop the trigger");
    }
    println!("search indexing is off: the task search index is dropped for these runs");
}

/// Tasks of `account`, counted in the database.
async fn count_tasks(url: &str, account: AccountId) -> i64 {
    let store = store_at(url, 1).await;
    let mut n = 0i64;
    let mut cursor = None;
    loop {
        let page = store
            .list_tasks(
                account,
                &Default::default(),
                bounty_core::PageLimit::new(100).expect("limit"),
                cursor,
            )
            .await
            .expect("tasks");
        n += page.items.len() as i64;
        match page.next_cursor {
            Some(next) => cursor = Some(next.parse().expect("a task cursor")),
            None => break,
        }
    }
    store.close().await;
    n
}

fn line(name: &str, run: &Run, base: Option<f64>, per_commit: Option<(f64, f64)>) {
    let ratio = base.map_or_else(String::new, |b| format!("{:.2}×", run.rate() / b));
    let (per_commit, set) = per_commit.map_or_else(
        || (String::new(), String::new()),
        |(n, set)| (format!("{n:.1}"), format!("{:.0}%", set * 100.0)),
    );
    println!(
        "{name:>34} {:>10.0} {:>9.1} {:>9.1} {:>9.1} {:>8} {:>8} {:>9} {:>5}",
        run.rate(),
        run.at(0.5),
        run.at(0.99),
        run.at(0.999),
        run.errors,
        ratio,
        per_commit,
        set
    );
    if let Some(e) = &run.first_error {
        println!("{:>34} first error: {e}", "");
    }
}

/// Requests per grouped commit while `run` ran, and the share of them
/// written set-wise.
async fn grouped<F: std::future::Future<Output = Run>>(store: &Store, run: F) -> (Run, Option<(f64, f64)>) {
    let before = store.group_stats();
    let run = run.await;
    let after = store.group_stats();
    let (batches, units) = (after.batches - before.batches, after.units - before.units);
    let set = (after.set_units - before.set_units) as f64 / units.max(1) as f64;
    let per_commit = (batches > 0).then(|| (units as f64 / batches as f64, set));
    (run, per_commit)
}

/// Statements the database is sent, counted from sqlx's own statement
/// events (`sqlx::query`) while [`COUNTING`] is on.
static STATEMENTS: AtomicUsize = AtomicUsize::new(0);
static COUNTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

struct CountStatements;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountStatements {
    fn register_callsite(&self, meta: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        match meta.target().starts_with("sqlx::query") {
            // Asked at each event, so that counting costs nothing while off.
            true => tracing::subscriber::Interest::sometimes(),
            false => tracing::subscriber::Interest::never(),
        }
    }

    fn enabled(&self, meta: &tracing::Metadata<'_>, _: tracing_subscriber::layer::Context<'_, S>) -> bool {
        meta.target().starts_with("sqlx::query") && COUNTING.load(Ordering::Relaxed)
    }

    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Statements a new delivery and a resend each cost, sent one at a time
/// (nothing to group): the request's round trips to the database.
async fn round_trips(inbound: &[Inbound], run: &str) -> (f64, f64, f64) {
    let client = reqwest::Client::new();
    let set = shots(inbound, 40, 0, run);
    let per = |n: usize| n as f64 / set.len() as f64;
    STATEMENTS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    for shot in &set {
        assert_eq!(send(&client, shot).await, Ok(true), "a new delivery");
    }
    let new = per(STATEMENTS.swap(0, Ordering::Relaxed));
    for shot in &set {
        assert_eq!(send(&client, shot).await, Ok(false), "a resend");
    }
    let resend = per(STATEMENTS.swap(0, Ordering::Relaxed));
    // The same count with 64 new deliveries sent at once: their share of
    // the batches' statements.
    let at_once = shots(inbound, 64, 0, &format!("{run}-together"));
    STATEMENTS.store(0, Ordering::Relaxed);
    let sends: Vec<_> = at_once
        .into_iter()
        .map(|shot| {
            let client = client.clone();
            tokio::spawn(async move { send(&client, &shot).await })
        })
        .collect();
    for sent in sends {
        assert_eq!(sent.await.expect("a send"), Ok(true), "a new delivery");
    }
    let together = STATEMENTS.swap(0, Ordering::Relaxed) as f64 / 64.0;
    COUNTING.store(false, Ordering::Relaxed);
    (new, resend, together)
}

/// Every new delivery has exactly one task; duplicates none.
async fn check(url: &str, account: AccountId, news: usize) {
    let tasks = count_tasks(url, account).await;
    assert_eq!(
        tasks as usize, news,
        "every accepted new ticket has exactly one task"
    );
}

async fn bench_backend(label: &str, url: &str, args: &Args) {
    let server = start(url.to_owned(), args.group, args.server_threads);
    if !args.search_index {
        drop_search_index(url).await;
    }
    let client = reqwest::Client::new();
    let mut inbound = Vec::new();
    for kind in [IntegrationKind::Standard, IntegrationKind::Zendesk] {
        let made: Value = client
            .post(format!("{}/v1/integrations", server.base))
            .bearer_auth(&server.key)
            .json(&json!({"kind": kind.as_str(), "name": format!("{kind}"), "agent": "bench"}))
            .send()
            .await
            .expect("integration")
            .json()
            .await
            .expect("integration json");
        let url = made["inbound_url"]
            .as_str()
            .unwrap_or_else(|| panic!("no inbound_url: {made}"));
        inbound.push(Inbound {
            kind,
            url: format!("{}{url}", server.base),
            secret: made["secret"].as_str().expect("secret").to_owned(),
        });
    }
    println!(
        "\n{label}: accepted/s, latency ms (p50 / p99 / p999), errors, ratio to the baseline at the same concurrency, requests per commit, share written set-wise"
    );
    println!(
        "{:>34} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>5}",
        "", "/s", "p50", "p99", "p999", "errors", "ratio", "/commit", "set"
    );
    let mut news = 0usize;
    let mut run_no = 0usize;
    for &c in &args.concurrency {
        run_no += 1;
        let base = baseline(&server.store, server.account, &inbound, c, args.seconds).await;
        news += base.new;
        line(
            &format!("baseline: one commit each, c={c}"),
            &base,
            None,
            Some((1.0, 0.0)),
        );
        let bare = bare(url, c, args.seconds).await;
        line(&format!("bare two inserts, c={c}"), &bare, None, Some((1.0, 0.0)));
        let set = Arc::new(shots(&inbound, 200_000, args.duplicates, &format!("c{run_no}")));
        let (run, per_commit) = grouped(&server.store, closed_loop(set, c, args.seconds)).await;
        news += run.new;
        line(
            &format!("bounty, closed loop c={c}"),
            &run,
            Some(base.rate()),
            per_commit,
        );
        let set = Arc::new(api_shots(
            &server.base,
            &server.key,
            200_000,
            args.duplicates,
            &format!("a{run_no}"),
        ));
        let (run, per_commit) = grouped(&server.store, closed_loop(set, c, args.seconds)).await;
        news += run.new;
        line(&format!("POST /v1/tasks, c={c}"), &run, None, per_commit);
    }
    for &rate in &args.rates {
        run_no += 1;
        let set = Arc::new(shots(
            &inbound,
            (rate as f64 * args.seconds) as usize + 1,
            args.duplicates,
            &format!("r{run_no}"),
        ));
        let (run, per_commit) = grouped(&server.store, open_loop(set, rate as f64, args.seconds)).await;
        news += run.new;
        line(&format!("bounty, open loop {rate}/s"), &run, None, per_commit);
    }
    let (new, resend, together) = round_trips(&inbound, "rt").await;
    news += 40 + 64;
    println!(
        "{:>34} {new:.1} statements a new delivery, {resend:.1} a resend, in its transaction (one at a time; BEGIN and COMMIT not counted); {together:.2} a new delivery when 64 arrive at once",
        "round trips:"
    );
    check(url, server.account, news).await;
    println!(
        "{:>34} every accepted new ticket has exactly one task ({news}), every resend none",
        "checked:"
    );
}

struct Args {
    group: bounty_store::GroupCommit,
    /// Which backends run (`--backends sqlite,postgres`).
    backends: Vec<String>,
    /// The server runtime's worker threads (`bounty serve` has one per
    /// core; 1 leaves the other core to the database and the load).
    server_threads: usize,
    /// Keep the task search index in the intake transaction (`on`), or
    /// drop it before the runs (`off`): what indexing costs intake.
    search_index: bool,
    seconds: f64,
    concurrency: Vec<usize>,
    rates: Vec<usize>,
    duplicates: usize,
}

fn main() {
    use tracing_subscriber::layer::SubscriberExt as _;
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(CountStatements))
        .expect("the statement counter");
    let defaults = bounty_store::GroupCommit::default();
    let args = Args {
        group: bounty_store::GroupCommit {
            enabled: arg("--group", "on") != "off",
            batchers: arg("--batchers", &defaults.batchers.to_string())
                .parse()
                .expect("--batchers N"),
            max_batch: arg("--max-batch", &defaults.max_batch.to_string())
                .parse()
                .expect("--max-batch N"),
        },
        search_index: arg("--search-index", "on") != "off",
        server_threads: arg("--server-threads", "1").parse().expect("--server-threads N"),
        backends: arg("--backends", "sqlite,postgres")
            .split(',')
            .map(|b| match b {
                "sqlite" | "postgres" => b.to_owned(),
                other => panic!("--backends takes sqlite,postgres; not {other:?}"),
            })
            .collect(),
        seconds: arg("--seconds", "5").parse().expect("--seconds N"),
        concurrency: list("--concurrency", "16,64"),
        rates: list("--rates", "250,500"),
        duplicates: arg("--duplicates", "10").parse().expect("--duplicates N"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "intake load: {} s a run, {}% resends, the server on its own runtime ({} worker threads), the load generator on another; {:?}",
            args.seconds, args.duplicates, args.server_threads, args.group
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite = format!("sqlite://{}", dir.path().join("intake.db").display());
        if args.backends.iter().any(|b| b == "sqlite") {
            bench_backend("SQLite (WAL, synchronous=NORMAL)", &sqlite, &args).await;
        }
        if !args.backends.iter().any(|b| b == "postgres") {
            return;
        }
        if let Ok(admin) = std::env::var("BENCH_DATABASE_URL") {
            let db = BenchDb::create(&admin, "bounty_intake").await;
            bench_backend("Postgres (the server's own fsync settings)", &db.url.clone(), &args).await;
            db.drop_database().await;
        } else {
            println!("\nPostgres skipped: set BENCH_DATABASE_URL to a server where the user may CREATE DATABASE");
        }
    });
}
