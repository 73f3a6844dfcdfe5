//! Page-speed harness for the dashboard: server time of every page for an
//! account with 100,000 tasks (issue 7: each page under 100 ms).
//!
//! It seeds one account (`--tasks`, default 100,000) and a few other
//! tenants (`--other-tenants` × `--other-tasks`, so every query must
//! filter by account) on a fresh SQLite file, and on a fresh Postgres
//! database too when `BENCH_DATABASE_URL` names a server where the user may
//! CREATE DATABASE. Then it serves the real application
//! (`bounty_server::app`, which merges `bounty_web::router` under the
//! server's middleware) on `127.0.0.1:0`, logs in once through `POST
//! /login`, and requests each page `--runs` times in a row after
//! `--warmup` requests. It prints median, p95 and max per page, both as
//! the client saw it (loopback round trip, body read) and as the server
//! spent it: an outermost layer times every request from its arrival to
//! its finished response (session lookup, queries, template, every
//! middleware) and returns that in a header. It exits 1 when a page's
//! server median is over 100 ms, unless `--no-fail`.
//!
//! Seeding. The store's real paths write every shape: each tenant's first
//! tasks (a resolved one, one its verifier failed, one whose attempt
//! failed) go through `create_task`, `claim_tasks` and `finish_attempt`,
//! and so do `--real` more tasks of the main account before the bulk and
//! `--real` after it, timed, to show what the full path costs on an empty
//! and on a full ledger. The bulk between them is copied from those
//! template rows in batched SQL against the migrated schema: for each new
//! task, every row the real path wrote (task, attempt, model call,
//! outcome, receipt event, ledger transfers, meter-event outbox row) is
//! inserted again with new ids, new timestamps and the ticket number in
//! its text, and every other column as the store wrote it. Ids are ULIDs
//! whose time part is the row's creation time, so `order by id` is
//! creation order as in production. All the main account's tasks fall in
//! the overview's default period (this month), its worst case.
//!
//! Time is a manual clock: "now" is 2026-05-28, so the overview's period
//! is May 1–28.
//!
//! A page is requested `--runs` times, or fewer (but at least 10) once
//! `--page-seconds` have passed, so a slow page cannot stretch the run.
//!
//! Run: `cargo bench --bench dashboard_pages [-- --runs 50 --warmup 5
//! --page-seconds 8 --tasks 100000 --other-tenants 3 --other-tasks 5000
//! --real 100 --no-fail --keep]`; `--keep` leaves the seeded databases
//! behind (their names are printed) for EXPLAIN by hand. Record the
//! figures in docs/PERFORMANCE.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use bounty_core::{
    AccountId, AgentId, ApiKeyMode, ApiKeySecret, Clock, Decision, KeyName, ManualClock, ModelCallId,
    OutboxId, OutcomeId, PageLimit, TaskId, TaskInput, TaskStatus, Timestamp, TransferId, VerifierVerdict,
};
use bounty_server::{AppState, Limits};
use bounty_store::{
    AttemptEnd, DatabaseOptions, Email, Inserted, NewModelCall, NewTask, Store, TaskError, TaskFilter,
    TaskOutput, UserRole,
};
use chrono::{TimeZone, Utc};
use sqlx::{Connection, QueryBuilder};
use tokio_util::sync::CancellationToken;

#[allow(dead_code)] // the shared setup's SystemClock store is not used here
mod common;

/// The header the timing layer answers with: microseconds in the server.
const SERVER_TIME: &str = "x-bench-server-us";
/// The requirement: a page's server median under this many ms.
const TARGET_MS: f64 = 100.0;
const EMAIL: &str = "owner@bench.test";
const PASSWORD: &str = "bench password 1234";
/// Tasks queued (never claimed) at the end: the rarest status.
const QUEUED: usize = 5;
/// Runs every page gets, whatever `--page-seconds` says.
const MIN_RUNS: usize = 10;
/// The longest warm-up of one page.
const WARMUP_BUDGET: Duration = Duration::from_secs(2);
/// Rows per multi-row insert of the id map.
const BATCH: usize = 1000;
/// What the task page says of an uncharged outcome (bounty-web's).
const NO_CHARGE: &str = "No charge — not resolved";

struct Args {
    runs: usize,
    warmup: usize,
    /// Stop measuring a page after this long, once it has `MIN_RUNS`.
    page_seconds: f64,
    /// Keep the seeded SQLite file and Postgres database, to query by hand.
    keep: bool,
    tasks: usize,
    other_tenants: usize,
    other_tasks: usize,
    real: usize,
    fail: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        runs: 50,
        warmup: 5,
        page_seconds: 8.0,
        keep: false,
        tasks: 100_000,
        other_tenants: 3,
        other_tasks: 5_000,
        real: 100,
        fail: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match a.as_str() {
            "--page-seconds" => args.page_seconds = value("--page-seconds") as f64,
            "--keep" => args.keep = true,
            "--runs" => args.runs = value("--runs").max(1),
            "--warmup" => args.warmup = value("--warmup"),
            "--tasks" => args.tasks = value("--tasks"),
            "--other-tenants" => args.other_tenants = value("--other-tenants"),
            "--other-tasks" => args.other_tasks = value("--other-tasks"),
            "--real" => args.real = value("--real"),
            "--no-fail" => args.fail = false,
            // `cargo bench` passes `--bench`; ignore what is not ours.
            _ => {}
        }
    }
    // Phase B needs a resolved task for the detail page, and the bulk one
    // of each kind.
    assert!(args.real >= 1, "--real must be at least 1");
    let fixed = 3 + 2 * args.real + QUEUED + 20;
    assert!(
        args.tasks >= fixed,
        "--tasks must be at least {fixed} (templates, two --real samples, queued tasks, 20 bulk)"
    );
    args
}

fn at(y: i32, mo: u32, d: u32, h: u32) -> Timestamp {
    Utc.with_ymd_and_hms(y, mo, d, h, 0, 0)
        .single()
        .expect("a valid time")
}

// ------------------------------------------------------------ real path ---

/// The three ways a task ends, as the worker records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The verifier passed: resolved and charged.
    Resolved,
    /// The agent answered, the verifier failed it: no charge.
    Rejected,
    /// The attempt failed: failed outcome, no charge.
    Failed,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Resolved, Kind::Rejected, Kind::Failed];

    /// 85% resolved, 5% rejected by the verifier, 10% failed.
    fn of(i: usize) -> Kind {
        match i % 20 {
            0 | 1 => Kind::Failed,
            2 => Kind::Rejected,
            _ => Kind::Resolved,
        }
    }
}

/// The ticket text; the bulk copies replace `{n}` with its own number.
fn input(n: &str) -> TaskInput {
    TaskInput {
        subject: format!("Refund for order #{n}"),
        body: format!("Order #{n} arrived damaged. Please refund it to my card."),
        ..Default::default()
    }
}

fn end_of(kind: Kind, n: &str) -> AttemptEnd {
    let reply = "Your refund is on its way; it reaches your card in 3 to 5 days.";
    let completed = |decision: Decision, reason: &str| {
        AttemptEnd::Completed(TaskOutput {
            handoff: None,
            text: reply.into(),
            errors: None,
            model: "small-model-q4".into(),
            transcript: serde_json::json!([
                {"role": "system", "content": "Answer the ticket."},
                {"role": "user", "content": format!("Refund for order #{n}")},
                {"role": "assistant", "content": reply}
            ]),
            decision,
            verdicts: vec![VerifierVerdict {
                verifier: "rules".into(),
                version: "rules/1".into(),
                decision,
                reason: reason.into(),
                inputs_hash: "0".repeat(64),
                confidence: None,
            }],
            cache: None,
        })
    };
    match kind {
        Kind::Resolved => completed(Decision::Pass, "the reply names the refund"),
        Kind::Rejected => completed(Decision::Fail, "the reply does not name the order"),
        Kind::Failed => AttemptEnd::Failed(TaskError {
            code: "provider_error".into(),
            message: "the model was unreachable".into(),
        }),
    }
}

fn call() -> NewModelCall {
    NewModelCall {
        model: "small-model-q4".into(),
        provider: Some("local".into()),
        prompt_tokens: 420,
        completion_tokens: 96,
        cached_tokens: 0,
        reasoning_tokens: 0,
        latency_us: 310_000,
        cost: bounty_core::Money::from_micros(2_500, bounty_core::Currency::USD),
        cache_hit: false,
        byok: false,
        error: None,
        verdict: None,
        shadow: false,
    }
}

/// Time spent in each step of the real path, summed over tasks.
#[derive(Default)]
struct PathTime {
    tasks: usize,
    create: Duration,
    claim: Duration,
    finish: Duration,
}

impl PathTime {
    fn total(&self) -> Duration {
        self.create + self.claim + self.finish
    }

    fn per_task_ms(&self, d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0 / self.tasks.max(1) as f64
    }

    fn describe(&self) -> String {
        format!(
            "{} tasks in {:.1} s: {:.2} ms/task (create {:.2}, claim {:.2}, finish {:.2})",
            self.tasks,
            self.total().as_secs_f64(),
            self.per_task_ms(self.total()),
            self.per_task_ms(self.create),
            self.per_task_ms(self.claim),
            self.per_task_ms(self.finish),
        )
    }
}

/// One task through `create_task`, `claim_tasks` and `finish_attempt`.
async fn real_task(
    store: &Store,
    (account, agent): (AccountId, AgentId),
    kind: Kind,
    n: &str,
    time: &mut PathTime,
) -> TaskId {
    let t = Instant::now();
    let new = NewTask {
        agent_id: agent,
        agent_version: 1,
        input: input(n),
        external_ref: None,
        idempotency: None,
        max_attempts: 1,
        mode: bounty_core::ApiKeyMode::Live,
    };
    let id = match store.create_task(account, &new).await.expect("create task") {
        Inserted::New(task) => task.id,
        other => panic!("not created: {other:?}"),
    };
    time.create += t.elapsed();
    let t = Instant::now();
    let claimed = store
        .claim_tasks("bench-worker", 1, Duration::from_secs(3600))
        .await
        .expect("claim")
        .pop()
        .expect("the new task is due");
    assert_eq!(claimed.task.id, id, "only the new task is due");
    time.claim += t.elapsed();
    let t = Instant::now();
    assert!(
        bounty_agents::finish::finish_attempt(store, &claimed, &end_of(kind, n), &[call()])
            .await
            .expect("finish")
    );
    time.finish += t.elapsed();
    time.tasks += 1;
    id
}

// ----------------------------------------------------------------- bulk ---

/// A task written by the real path, whose rows the bulk copies.
struct Template {
    account: AccountId,
    task: TaskId,
    outcome: OutcomeId,
    kind: Kind,
    window: chrono::Duration,
    goodwill: chrono::Duration,
}

/// Checks that every timestamp the template's rows hold is its creation
/// time (the clock stands still during a real-path task), so replacing
/// them all with one new time keeps the rows consistent; and reads its
/// outcome's windows.
async fn template(store: &Store, account: AccountId, task: TaskId, kind: Kind) -> Template {
    let t = store.get_task(account, task).await.unwrap().unwrap();
    let o = store.outcome_of_task(account, task).await.unwrap().unwrap();
    let times = [
        Some(t.run_at),
        Some(t.updated_at),
        t.started_at,
        t.finished_at,
        Some(o.created_at),
        Some(o.updated_at),
        o.decided_at,
    ];
    assert!(
        times.iter().all(|x| *x == Some(t.created_at)),
        "template {task}: {times:?}"
    );
    assert_eq!(store.model_calls(account, task).await.unwrap().len(), 1);
    assert_eq!(store.task_attempts(account, task).await.unwrap().len(), 1);
    let mut kinds: Vec<String> = store
        .transfers(account, Some(o.id), None)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.kind.as_str().to_owned())
        .collect();
    kinds.sort();
    let expected: &[&str] = match kind {
        Kind::Resolved => &["charge", "charge_money"],
        Kind::Rejected | Kind::Failed => &[],
    };
    assert_eq!(kinds, expected, "template {task} ({kind:?}): ledger kinds");
    Template {
        account,
        task,
        outcome: o.id,
        kind,
        window: o.window_ends_at - t.created_at,
        goodwill: o.goodwill_ends_at - t.created_at,
    }
}

/// One bulk task: which template it copies, and its new ids and time.
struct MapRow {
    n: String,
    tpl_task: String,
    tpl_outcome: String,
    task: String,
    outcome: String,
    call: String,
    charge: String,
    money: String,
    outbox: String,
    t: Timestamp,
    window_end: Timestamp,
    goodwill_end: Timestamp,
}

/// xorshift64*: the ULIDs' random parts, reproducible run to run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A ULID minted at `t`.
    fn ulid(&mut self, t: Timestamp) -> ulid::Ulid {
        let random = (u128::from(self.next()) << 64 | u128::from(self.next())) & ((1 << 80) - 1);
        ulid::Ulid::from_parts(t.timestamp_millis() as u64, random)
    }
}

/// The bench's own connection for the bulk copy, on the store's database.
enum Bulk {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

macro_rules! on_bulk {
    ($bulk:expr, $c:ident => $body:expr) => {
        match $bulk {
            Bulk::Sqlite($c) => $body,
            Bulk::Postgres($c) => $body,
        }
    };
}

/// Copies of the template rows, one statement per table, from the id map
/// `bench_map`. Every column not named here is the template's, as the
/// store wrote it.
const COPIES: [(&str, &str); 8] = [
    (
        "tasks",
        "insert into tasks (id, account_id, agent_id, agent_version, status, input, external_ref,
             idempotency_key, request_hash, attempts, max_attempts, run_at, lease_token, lease_owner,
             lease_expires_at, output, output_errors, output_model, transcript, last_error_code,
             last_error_message, created_at, updated_at, started_at, finished_at, integration_id)
         select m.task_id, t.account_id, t.agent_id, t.agent_version, t.status, replace(t.input, '{n}', m.n),
             t.external_ref, t.idempotency_key, t.request_hash, t.attempts, t.max_attempts, m.t, t.lease_token,
             t.lease_owner, t.lease_expires_at, t.output, t.output_errors, t.output_model,
             replace(t.transcript, '{n}', m.n), t.last_error_code, t.last_error_message, m.t, m.t, m.t, m.t,
             t.integration_id
         from bench_map m join tasks t on t.id = m.tpl_task",
    ),
    (
        "task_attempts",
        "insert into task_attempts (task_id, attempt, account_id, worker, started_at, finished_at, outcome,
             error_code, error_message)
         select m.task_id, a.attempt, a.account_id, a.worker, m.t, m.t, a.outcome, a.error_code, a.error_message
         from bench_map m join task_attempts a on a.task_id = m.tpl_task",
    ),
    (
        "model_calls",
        "insert into model_calls (id, account_id, task_id, attempt, seq, model, provider, prompt_tokens,
             completion_tokens, latency_us, cost_micros, currency, cache_hit, byok, error_code, error_message,
             created_at)
         select m.call_id, c.account_id, m.task_id, c.attempt, c.seq, c.model, c.provider, c.prompt_tokens,
             c.completion_tokens, c.latency_us, c.cost_micros, c.currency, c.cache_hit, c.byok, c.error_code,
             c.error_message, m.t
         from bench_map m join model_calls c on c.task_id = m.tpl_task",
    ),
    (
        "outcomes",
        "insert into outcomes (id, account_id, task_id, agent_id, agent_version, outcome_type, status, policy,
             policy_hash, window_ends_at, goodwill_ends_at, rating, cu_milli, amount_micros, currency,
             inference_cost_micros, inference_currency, created_at, updated_at, decided_at)
         select m.outcome_id, o.account_id, m.task_id, o.agent_id, o.agent_version, o.outcome_type, o.status,
             o.policy, o.policy_hash, m.window_end, m.goodwill_end, o.rating, o.cu_milli, o.amount_micros,
             o.currency, o.inference_cost_micros, o.inference_currency, m.t, m.t, m.t
         from bench_map m join outcomes o on o.id = m.tpl_outcome",
    ),
    (
        "outcome_events",
        "insert into outcome_events (outcome_id, seq, account_id, event, from_status, to_status, effect,
             verdicts, signal, policy_version, policy_hash, inputs_hash, reason, created_at)
         select m.outcome_id, e.seq, e.account_id, e.event, e.from_status, e.to_status, e.effect, e.verdicts,
             e.signal, e.policy_version, e.policy_hash, e.inputs_hash, e.reason, m.t
         from bench_map m join outcome_events e on e.outcome_id = m.tpl_outcome",
    ),
    (
        "ledger_transfers",
        "insert into ledger_transfers (id, account_id, debit, credit, amount, unit, kind, outcome_id,
             reverses_id, memo, created_at)
         select case l.kind when 'charge' then m.charge_id else m.money_id end, l.account_id, l.debit,
             l.credit, l.amount, l.unit, l.kind, m.outcome_id, l.reverses_id, l.memo, m.t
         from bench_map m join ledger_transfers l on l.outcome_id = m.tpl_outcome",
    ),
    (
        "outbox",
        "insert into outbox (id, account_id, kind, transfer_id, payload, idempotency_key, status, attempts,
             next_attempt_at, last_error, created_at, sent_at, lease_until, sent_as)
         select m.outbox_id, x.account_id, x.kind, m.charge_id, replace(x.payload, x.transfer_id, m.charge_id),
             replace(x.idempotency_key, x.transfer_id, m.charge_id), x.status, x.attempts, m.t, x.last_error,
             m.t, x.sent_at, x.lease_until, x.sent_as
         from bench_map m
         join ledger_transfers l on l.outcome_id = m.tpl_outcome and l.kind = 'charge'
         join outbox x on x.transfer_id = l.id",
    ),
    ("(map)", "drop table bench_map"),
];

/// Inserts `rows` copies of the templates in one transaction; returns the
/// rows written per table.
async fn bulk_copy(bulk: &mut Bulk, rows: &[MapRow]) -> Vec<(&'static str, u64)> {
    let time = if matches!(bulk, Bulk::Sqlite(_)) {
        "text"
    } else {
        "timestamptz"
    };
    let create = format!(
        "create temp table bench_map (n text, tpl_task text, tpl_outcome text, task_id text, outcome_id text,
             call_id text, charge_id text, money_id text, outbox_id text, t {time}, window_end {time},
             goodwill_end {time})"
    );
    let mut written = Vec::new();
    on_bulk!(bulk, c => {
        let mut tx = c.begin().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(create)).execute(&mut *tx).await.unwrap();
        for chunk in rows.chunks(BATCH) {
            let mut q = QueryBuilder::new(
                "insert into bench_map (n, tpl_task, tpl_outcome, task_id, outcome_id, call_id, charge_id,
                     money_id, outbox_id, t, window_end, goodwill_end) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.n.clone())
                    .push_bind(r.tpl_task.clone())
                    .push_bind(r.tpl_outcome.clone())
                    .push_bind(r.task.clone())
                    .push_bind(r.outcome.clone())
                    .push_bind(r.call.clone())
                    .push_bind(r.charge.clone())
                    .push_bind(r.money.clone())
                    .push_bind(r.outbox.clone())
                    .push_bind(r.t)
                    .push_bind(r.window_end)
                    .push_bind(r.goodwill_end);
            });
            q.build().execute(&mut *tx).await.unwrap();
        }
        for (table, sql) in COPIES {
            let done = sqlx::query(sql).execute(&mut *tx).await.unwrap();
            written.push((table, done.rows_affected()));
        }
        tx.commit().await.unwrap();
    });
    written
}

async fn scalar_i64(bulk: &mut Bulk, sql: &'static str, a: &str) -> i64 {
    on_bulk!(bulk, c => {
        let (v,): (i64,) = sqlx::query_as(sql).bind(a.to_owned()).fetch_one(&mut *c).await.unwrap();
        v
    })
}

// --------------------------------------------------------------- seeding ---

/// What the pages need from the seed.
struct Seeded {
    account: AccountId,
    /// The main tenant's agent: its policy history page.
    agent: bounty_core::AgentId,
    /// A resolved task written by the real path: its page has a receipt.
    detail: TaskId,
    /// A resolved bulk task, checked to render like a real one.
    bulk_detail: TaskId,
    /// The task nine tenths of the way from the newest: the deep page's
    /// cursor.
    deep_cursor: String,
    tasks: i64,
    other_tasks: i64,
}

async fn seed(store: &Store, clock: &ManualClock, bulk: &mut Bulk, args: &Args) -> Seeded {
    let started = Instant::now();
    // Phase A, the real path on an empty database: the tenants, each
    // one's three templates, and a sample of the main account's tasks.
    clock.set(at(2026, 5, 28, 9));
    let main = common::tenant(store, "Bench", "small").await;
    let mut tenants = vec![main];
    for i in 0..args.other_tenants {
        tenants.push(common::tenant(store, &format!("Other {i}"), "small").await);
    }
    let mut warmup_path = PathTime::default();
    let mut templates: Vec<Vec<Template>> = Vec::new();
    for &tenant in &tenants {
        let mut own = Vec::new();
        for kind in Kind::ALL {
            let id = real_task(store, tenant, kind, "{n}", &mut warmup_path).await;
            own.push(template(store, tenant.0, id, kind).await);
            clock.advance(chrono::Duration::seconds(1));
        }
        templates.push(own);
    }
    let mut before = PathTime::default();
    for i in 0..args.real {
        real_task(store, main, Kind::of(i), &format!("A{i}"), &mut before).await;
        clock.advance(chrono::Duration::seconds(1));
    }
    let real_before = started.elapsed();

    // The bulk: copies of the templates from May 1 to 08:00 on May 28,
    // every tenant's interleaved in time.
    let t_bulk = Instant::now();
    let main_bulk = args.tasks - 3 - 2 * args.real - QUEUED;
    let (from, to) = (at(2026, 5, 1, 0), at(2026, 5, 28, 8));
    let span = (to - from).num_microseconds().expect("a month fits");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut rows = Vec::with_capacity(main_bulk + args.other_tenants * args.other_tasks);
    for (k, own) in templates.iter().enumerate() {
        let count = if k == 0 { main_bulk } else { args.other_tasks };
        for i in 0..count {
            let kind = Kind::of(i);
            let tpl = own
                .iter()
                .find(|t| t.kind == kind)
                .expect("a template of each kind");
            let offset = span * i as i64 / count.max(1) as i64 + k as i64;
            let t = from + chrono::Duration::microseconds(offset);
            rows.push(MapRow {
                n: format!("{}{i}", if k == 0 { "" } else { "X" }),
                tpl_task: tpl.task.to_string(),
                tpl_outcome: tpl.outcome.to_string(),
                task: TaskId::from_ulid(rng.ulid(t)).to_string(),
                outcome: OutcomeId::from_ulid(rng.ulid(t)).to_string(),
                call: ModelCallId::from_ulid(rng.ulid(t)).to_string(),
                charge: TransferId::from_ulid(rng.ulid(t)).to_string(),
                money: TransferId::from_ulid(rng.ulid(t)).to_string(),
                outbox: OutboxId::from_ulid(rng.ulid(t)).to_string(),
                t,
                window_end: t + tpl.window,
                goodwill_end: t + tpl.goodwill,
            });
            debug_assert_eq!(tpl.account, tenants[k].0);
        }
    }
    rows.sort_by_key(|r| r.t);
    let bulk_detail = rows
        .iter()
        .rev()
        .find(|r| r.tpl_task == templates[0][0].task.to_string())
        .map(|r| r.task.parse().expect("a task id"))
        .expect("a resolved bulk task");
    let written = bulk_copy(bulk, &rows).await;
    // The copies went around the store, so its daily usage rollup is
    // summed from them once; Phase B then keeps it as the worker does.
    for &(tenant, _) in &tenants {
        store.rebuild_usage_days(tenant).await.unwrap();
    }
    if let Bulk::Postgres(c) = bulk {
        // What autovacuum would do soon after such a load.
        sqlx::query("analyze").execute(&mut *c).await.unwrap();
    }
    let bulk_time = t_bulk.elapsed();

    // Phase B, the real path again on the full ledger; then the few
    // queued tasks, keys and invoices.
    let t_after = Instant::now();
    clock.set(at(2026, 5, 28, 10));
    let mut after = PathTime::default();
    let mut detail = None;
    for i in 0..args.real {
        let kind = Kind::of(i + 3);
        let id = real_task(store, main, kind, &format!("B{i}"), &mut after).await;
        if kind == Kind::Resolved {
            detail = Some(id);
        }
        clock.advance(chrono::Duration::seconds(1));
    }
    let real_after = t_after.elapsed();
    clock.set(at(2026, 5, 28, 10) + chrono::Duration::minutes(30));
    for i in 0..QUEUED {
        let new = NewTask {
            agent_id: main.1,
            agent_version: 1,
            input: input(&format!("Q{i}")),
            external_ref: None,
            idempotency: None,
            max_attempts: 1,
            mode: bounty_core::ApiKeyMode::Live,
        };
        assert!(matches!(
            store.create_task(main.0, &new).await.unwrap(),
            Inserted::New(_)
        ));
    }
    for i in 0..30 {
        store
            .create_api_key(
                main.0,
                &KeyName::parse(&format!("key {i}")).unwrap(),
                &ApiKeySecret::generate(if i % 3 == 0 {
                    ApiKeyMode::Test
                } else {
                    ApiKeyMode::Live
                }),
            )
            .await
            .unwrap()
            .expect("the account exists");
    }
    let invoices: Vec<bounty_store::StripeInvoice> = (0..24)
        .map(|i| {
            serde_json::json!({
                "id": format!("in_bench_{i:04}"),
                "status": if i == 0 { "open" } else { "paid" },
                "currency": "usd",
                "amount_due": 1_250_000 + i,
                "amount_paid": if i == 0 { 0 } else { 1_250_000 + i },
                "total": 1_250_000 + i,
                "period_start": 1_717_200_000 + i * 2_592_000,
                "period_end": 1_719_792_000 + i * 2_592_000,
                "hosted_invoice_url": format!("https://invoice.stripe.com/i/in_bench_{i:04}"),
            })
        })
        .map(|i| bounty_billing::stripe_events::parse_invoice(&i).unwrap())
        .collect();
    store.upsert_invoices(main.0, &invoices).await.unwrap();
    let hash = bounty_web::PasswordHasher::default().hash(PASSWORD).unwrap();
    store
        .create_user(main.0, &Email::parse(EMAIL).unwrap(), &hash, UserRole::Owner)
        .await
        .unwrap()
        .expect("the account exists");
    // The operator, who signs in to the console at /ops.
    store
        .create_operator(&Email::parse(EMAIL).unwrap(), &hash)
        .await
        .unwrap()
        .expect("a new operator");
    clock.set(at(2026, 5, 28, 11));

    let account = main.0.to_string();
    let deep = args.tasks as i64 * 9 / 10;
    let deep_cursor = on_bulk!(bulk, c => {
        let (id,): (String,) = sqlx::query_as(
            "select id from tasks where account_id = $1 order by id desc limit 1 offset $2",
        )
        .bind(account.clone())
        .bind(deep)
        .fetch_one(&mut *c)
        .await
        .unwrap();
        id
    });
    let tasks = scalar_i64(bulk, "select count(*) from tasks where account_id = $1", &account).await;
    let other_tasks = scalar_i64(
        bulk,
        "select count(*) from tasks where account_id <> $1",
        &account,
    )
    .await;
    assert_eq!(tasks as usize, args.tasks, "the main account's tasks");
    let ledger = scalar_i64(
        bulk,
        "select count(*) from ledger_transfers where account_id = $1",
        &account,
    )
    .await;
    println!(
        "  seeded in {:.1} s: {} tasks of the account ({} ledger transfers), {} of {} other tenants",
        started.elapsed().as_secs_f64(),
        tasks,
        ledger,
        other_tasks,
        args.other_tenants
    );
    println!(
        "    real path, empty database:  {} templates, then {}",
        warmup_path.tasks,
        before.describe()
    );
    println!(
        "    bulk copy of the templates: {} tasks in {:.1} s; rows: {}",
        rows.len(),
        bulk_time.as_secs_f64(),
        written
            .iter()
            .filter(|(t, _)| !t.starts_with('('))
            .map(|(t, n)| format!("{t} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("    real path, full ledger:     {}", after.describe());
    println!(
        "    (phases: real {:.1} s, bulk {:.1} s, real {:.1} s)",
        real_before.as_secs_f64(),
        bulk_time.as_secs_f64(),
        real_after.as_secs_f64()
    );
    Seeded {
        account: main.0,
        agent: main.1,
        detail: detail.expect("a resolved task in phase B"),
        bulk_detail,
        deep_cursor,
        tasks,
        other_tasks,
    }
}

// ------------------------------------------------------------- measuring ---

/// The outermost layer: the time from a request's arrival to its finished
/// response, in a header.
async fn server_timing(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut r = next.run(req).await;
    let us = started.elapsed().as_micros().to_string();
    if let Ok(v) = HeaderValue::from_str(&us) {
        r.headers_mut().insert(SERVER_TIME, v);
    }
    r
}

/// A form value, percent-encoded.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of cookie `name` among the response's `Set-Cookie` headers.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Logs in through the form; returns the session cookie's value.
/// Signs in through the customer's `/login` or the console's `/ops/login`
/// form; the session cookie as a `Cookie` header value.
async fn login(client: &reqwest::Client, base: &str, path: &str, session_cookie: &str) -> String {
    let form = client.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let csrf_cookie = set_cookie(&form, "bounty_login_csrf").expect("a login CSRF cookie");
    let body = form.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).expect("a csrf input") + marker.len();
    let csrf = &body[start..start + body[start..].find('"').expect("a closing quote")];
    let r = client
        .post(format!("{base}{path}"))
        .header("cookie", format!("bounty_login_csrf={csrf_cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email={}&password={}&csrf={}",
            enc(EMAIL),
            enc(PASSWORD),
            enc(csrf)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "login at {path}");
    let value = set_cookie(&r, session_cookie).expect("a session cookie");
    format!("{session_cookie}={value}")
}

/// One page's timings.
struct Timing {
    name: String,
    /// Round trips as the client saw them, sorted.
    client: Vec<Duration>,
    /// Time in the server, sorted.
    server: Vec<Duration>,
    bytes: usize,
}

fn median(v: &[Duration]) -> Duration {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

/// Nearest rank.
fn p95(v: &[Duration]) -> Duration {
    v[((v.len() as f64 * 0.95).ceil() as usize).clamp(1, v.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn measure(client: &reqwest::Client, cookie: &str, url: &str, name: &str, args: &Args) -> Timing {
    let get = || async {
        let t = Instant::now();
        let r = client.get(url).header("cookie", cookie).send().await.unwrap();
        let status = r.status();
        let server: u64 = r
            .headers()
            .get(SERVER_TIME)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .expect("the timing header");
        let body = r.bytes().await.unwrap();
        assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&body));
        (t.elapsed(), Duration::from_micros(server), body.len())
    };
    let started = Instant::now();
    for _ in 0..args.warmup {
        get().await;
        if started.elapsed() > WARMUP_BUDGET {
            break;
        }
    }
    let mut timing = Timing {
        name: name.to_owned(),
        client: Vec::with_capacity(args.runs),
        server: Vec::with_capacity(args.runs),
        bytes: 0,
    };
    let started = Instant::now();
    let budget = Duration::from_secs_f64(args.page_seconds);
    for i in 0..args.runs {
        if i >= MIN_RUNS && started.elapsed() > budget {
            break;
        }
        let (c, s, bytes) = get().await;
        timing.client.push(c);
        timing.server.push(s);
        timing.bytes = bytes;
    }
    timing.client.sort();
    timing.server.sort();
    timing
}

/// Seeds, serves and measures one backend; returns the pages over target.
async fn run_backend(label: &str, url: String, args: &Args) -> Vec<String> {
    println!("{label}:");
    let clock = Arc::new(ManualClock::new(at(2026, 5, 28, 9)));
    let store = Store::connect(
        &DatabaseOptions {
            url: url.clone(),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(30),
            sqlite_busy_timeout: Duration::from_secs(30),
        },
        clock.clone() as Arc<dyn Clock>,
    )
    .await
    .expect("connect");
    store.migrate().await.expect("migrate");
    let mut bulk = if url.starts_with("sqlite:") {
        use std::str::FromStr;
        let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .unwrap()
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        Bulk::Sqlite(sqlx::SqliteConnection::connect_with(&opts).await.unwrap())
    } else {
        Bulk::Postgres(sqlx::PgConnection::connect(&url).await.unwrap())
    };
    let s = seed(&store, &clock, &mut bulk, args).await;
    on_bulk!(bulk, c => c.close().await.unwrap());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = bounty_server::app(AppState::new(store.clone(), Limits::default()))
        .layer(axum::middleware::from_fn(server_timing));
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(bounty_server::serve(
        listener,
        app,
        shutdown.clone(),
        Duration::from_secs(5),
    ));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = login(&client, &base, "/login", bounty_web::SESSION_COOKIE).await;
    let ops_cookie = login(&client, &base, "/ops/login", bounty_web::OPS_SESSION_COOKIE).await;

    // A bulk task's page renders like a real one's.
    for id in [s.detail, s.bulk_detail] {
        let r = client
            .get(format!("{base}/tasks/{id}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body = r.text().await.unwrap();
        assert!(body.contains("the reply names the refund"), "{id}: the verdict");
        assert!(!body.contains(NO_CHARGE), "{id}: charged");
    }

    let pages: Vec<(String, String)> = vec![
        ("overview, this month (/)".into(), "/".into()),
        ("tasks, first page".into(), "/tasks".into()),
        ("tasks, status=failed (10%)".into(), "/tasks?status=failed".into()),
        (
            format!("tasks, status=queued ({QUEUED} tasks)"),
            "/tasks?status=queued".into(),
        ),
        (
            "tasks, search, 1 match".into(),
            format!("/tasks?q=%23{}", rare_ticket(args)),
        ),
        ("tasks, search, all match".into(), "/tasks?q=refund".into()),
        (
            format!("tasks, cursor {} deep", args.tasks * 9 / 10),
            format!("/tasks?cursor={}", s.deep_cursor),
        ),
        ("task detail, with receipt".into(), format!("/tasks/{}", s.detail)),
        ("usage by day, this month".into(), "/usage".into()),
        (
            "usage by agent, this month".into(),
            "/usage?group_by=agent".into(),
        ),
        ("agents".into(), "/agents".into()),
        ("api keys (31)".into(), "/api-keys".into()),
        ("invoices (24)".into(), "/invoices".into()),
        ("billing".into(), "/billing".into()),
        ("tasks, charge=charged".into(), "/tasks?charge=charged".into()),
        ("tasks, charge=reversed".into(), "/tasks?charge=reversed".into()),
        (
            "agent policy history".into(),
            format!("/agents/{}/policy", s.agent),
        ),
        (
            "charges export, 2 days (CSV)".into(),
            "/charges.csv?from=2026-05-10&to=2026-05-11".into(),
        ),
    ];
    // The operator's console: every account, one account, margins,
    // disputes and health.
    let console: Vec<(String, String)> = vec![
        ("console: accounts (/ops)".into(), "/ops".into()),
        (
            "console: the account".into(),
            format!("/ops/accounts/{}", s.account),
        ),
        ("console: margins".into(), "/ops/margins".into()),
        ("console: disputes".into(), "/ops/disputes".into()),
        ("console: health".into(), "/ops/health".into()),
    ];
    let started = Instant::now();
    let mut timings = Vec::new();
    for (name, path) in &pages {
        timings.push(measure(&client, &cookie, &format!("{base}{path}"), name, args).await);
    }
    for (name, path) in &console {
        timings.push(measure(&client, &ops_cookie, &format!("{base}{path}"), name, args).await);
    }
    let took = started.elapsed();
    let calls = store_calls(&store, &s, args).await;
    shutdown.cancel();
    let _ = server.await;
    store.close().await;

    println!(
        "  account {} with {} tasks ({} other tenants' tasks); up to {} runs per page ({} s budget, \
         at least {}) after up to {} warm-up, sequential",
        s.account,
        s.tasks,
        s.other_tasks,
        args.runs,
        args.page_seconds,
        MIN_RUNS.min(args.runs),
        args.warmup
    );
    println!(
        "  {:<32} {:>8} {:>8} {:>8}   {:>8} {:>8} {:>8} {:>5} {:>6}",
        "page", "server", "p95", "max", "client", "p95", "max", "runs", "KiB"
    );
    let mut over = Vec::new();
    for t in &timings {
        let m = ms(median(&t.server));
        let flag = if m > TARGET_MS { "  OVER 100 ms" } else { "" };
        println!(
            "  {:<32} {:>8.2} {:>8.2} {:>8.2}   {:>8.2} {:>8.2} {:>8.2} {:>5} {:>6.1}{flag}",
            t.name,
            m,
            ms(p95(&t.server)),
            ms(*t.server.last().unwrap()),
            ms(median(&t.client)),
            ms(p95(&t.client)),
            ms(*t.client.last().unwrap()),
            t.server.len(),
            t.bytes as f64 / 1024.0,
        );
        if m > TARGET_MS {
            over.push(format!("{label}: {}", t.name));
        }
    }
    println!(
        "  (ms; server = arrival to finished response inside the server; client = loopback round trip; measuring took {:.1} s)",
        took.as_secs_f64()
    );
    println!(
        "  store calls alone, median of 5 (the queries behind the heavier pages): {}",
        calls.join("; ")
    );
    over
}

/// A bulk ticket number whose `#<n>` only one task's text holds: no other
/// ticket number starts with its digits.
fn rare_ticket(args: &Args) -> usize {
    let bulk = args.tasks - 3 - 2 * args.real - QUEUED;
    bulk / 2 + 1
}

/// Times the store calls behind the heavier pages on their own, so a
/// slow page can be told apart from a slow query.
async fn store_calls(store: &Store, s: &Seeded, args: &Args) -> Vec<String> {
    macro_rules! median_of_5 {
        ($call:expr) => {{
            let mut times = Vec::new();
            let mut out = None;
            for _ in 0..5 {
                let t = Instant::now();
                out = Some($call.await.expect("store call"));
                times.push(t.elapsed());
            }
            times.sort();
            (times[2], out.expect("five calls"))
        }};
    }
    let a = s.account;
    let limit = PageLimit::new(25).unwrap();
    let queued = TaskFilter {
        status: Some(TaskStatus::Queued),
        ..Default::default()
    };
    let deep: TaskId = s.deep_cursor.parse().unwrap();
    let month = (at(2026, 5, 1, 0), at(2026, 5, 29, 0));
    let (usage, buckets) = median_of_5!(store.usage(a, bounty_core::ApiKeyMode::Live, month.0, month.1));
    let (scan, scanned) = median_of_5!(store.usage_scan(a, bounty_core::ApiKeyMode::Live, month.0, month.1));
    assert_eq!(buckets, scanned, "the rollup sums what the outcomes hold");
    let outcomes: i64 = buckets.iter().map(|b| b.outcomes).sum();
    let (by_status, _) = median_of_5!(store.list_tasks(a, &queued, limit, None));
    let (deep_page, _) = median_of_5!(store.list_tasks(a, &TaskFilter::default(), limit, Some(deep)));
    let search = TaskFilter {
        search: Some(format!("#{}", rare_ticket(args))),
        ..Default::default()
    };
    let (searched, found) = median_of_5!(store.list_tasks(a, &search, limit, None));
    assert_eq!(found.items.len(), 1, "the rare ticket number matches one task");
    let (billing, _) = median_of_5!(store.billing_info(a, bounty_core::ApiKeyMode::Live));
    vec![
        format!(
            "usage(this month) {:.1} ms ({} buckets of {outcomes} outcomes); the same summed from outcomes {:.1} ms",
            ms(usage),
            buckets.len(),
            ms(scan)
        ),
        format!("list_tasks(status=queued) {:.1} ms", ms(by_status)),
        format!("list_tasks(deep cursor) {:.1} ms", ms(deep_page)),
        format!("list_tasks(search, 1 match) {:.1} ms", ms(searched)),
        format!("billing_info {:.1} ms", ms(billing)),
    ]
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let over = rt.block_on(async {
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bench.db");
        let mut over = run_backend("sqlite", format!("sqlite://{}", file.display()), &args).await;
        if args.keep {
            let _ = dir.keep();
            println!("kept the SQLite database: {}", file.display());
        }
        match std::env::var("BENCH_DATABASE_URL") {
            Ok(admin) => {
                let db = common::BenchDb::create(&admin, "bounty_dashbench").await;
                over.extend(run_backend("postgres", db.url.clone(), &args).await);
                if args.keep {
                    let name = db.url.rsplit('/').next().unwrap_or_default();
                    let name = name.split('?').next().unwrap_or_default();
                    println!("kept the Postgres database: {name}");
                } else {
                    db.drop_database().await;
                }
            }
            Err(_) => println!(
                "postgres skipped: set BENCH_DATABASE_URL to a server where the user may CREATE DATABASE"
            ),
        }
        println!("total {:.1} s", started.elapsed().as_secs_f64());
        over
    });
    if over.is_empty() {
        println!("every page's server median is under {TARGET_MS} ms");
    } else {
        println!("over {TARGET_MS} ms (server median): {}", over.join("; "));
        if args.fail {
            std::process::exit(1);
        }
    }
}
