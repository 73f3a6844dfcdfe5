//! Property test of the billing core, on both backends: random sequences of
//! tasks (verified pass, fail or pending), failures, signals, goodwill
//! reversals, window lapses and credit grants, where any step may crash
//! part-way (its future is dropped mid-transaction). After every sequence:
//!
//! - every outcome's net charge is its CU if resolved and zero otherwise:
//!   no outcome is charged twice, a failed or reopened-in-window outcome
//!   is never charged;
//! - money charged matches the metered CU at the plan's price;
//! - the prepaid balance never goes below zero and equals grants minus
//!   draws;
//! - every finished task has exactly one outcome, and no unfinished task
//!   has one (a crash leaves all of a step or none of it);
//! - Σ debits = Σ credits in every unit;
//! - the daily usage rollup sums exactly the decided outcomes, over whole
//!   days and over a period that starts and ends inside a day.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bounty_core::ledger::{BaseKind, TransferKind};
use bounty_core::outcome::Signal;
use bounty_core::{
    AccountId, ComputeUnits, Decision, ManualClock, PageLimit, TaskStatus, VerificationPolicy,
};
use bounty_store::{AttemptEnd, DatabaseOptions, Store, TaskError, TaskFilter};
use proptest::prelude::*;

use crate::support::billing::{account_with_agent, answered, queue_and_claim};
use crate::support::{Backend, TestDatabase};

#[derive(Debug, Clone)]
enum Op {
    /// A task whose verifiers decide `decision`.
    Run(Decision),
    /// A task that fails.
    Fail,
    Signal(usize, Signal),
    Goodwill(usize),
    /// Hours pass, then the sweep lapses due windows.
    Lapse(u32),
    Grant(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let decision = prop_oneof![
        Just(Decision::Pass),
        Just(Decision::Fail),
        Just(Decision::Pending)
    ];
    let signal = prop_oneof![
        Just(Signal::Solved),
        Just(Signal::Reopened),
        Just(Signal::CustomerConfirmed),
        (1u8..=5).prop_map(|score| Signal::Csat { score }),
    ];
    prop_oneof![
        4 => decision.prop_map(Op::Run),
        1 => Just(Op::Fail),
        3 => (0usize..8, signal).prop_map(|(i, s)| Op::Signal(i, s)),
        1 => (0usize..8).prop_map(Op::Goodwill),
        1 => (1u32..100).prop_map(Op::Lapse),
        1 => (1i64..2500).prop_map(Op::Grant),
    ]
}

/// Runs `fut`, or drops it part-way after `crash` microseconds.
async fn maybe_crash<T>(crash: Option<u64>, fut: impl std::future::Future<Output = T>) -> Option<T> {
    match crash {
        None => Some(fut.await),
        Some(us) => tokio::time::timeout(Duration::from_micros(us), fut).await.ok(),
    }
}

async fn run(backend: Backend, ops: Vec<(Op, Option<u64>)>) {
    let db = TestDatabase::create(backend).await;
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let store = Store::connect(
        &DatabaseOptions {
            url: db.url().to_owned(),
            max_connections: 4,
            acquire_timeout: Duration::from_secs(10),
            sqlite_busy_timeout: Duration::from_secs(10),
        },
        clock.clone(),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    // An `external` verifier: the random signals apply inside the window.
    let policy = VerificationPolicy {
        verifiers: vec![bounty_core::VerifierSpec::External(
            bounty_core::verification::ExternalSpec {},
        )],
        window_hours: 72,
        goodwill_days: 2,
        ..Default::default()
    };
    let (account, agent) = account_with_agent(&store, policy).await;
    let mut outcomes = Vec::new();
    for (i, (op, crash)) in ops.into_iter().enumerate() {
        match op {
            Op::Run(_) | Op::Fail => {
                let claimed = queue_and_claim(&store, account, agent, format!("task {i}")).await;
                let end = match op {
                    Op::Run(decision) => answered("done", decision),
                    _ => AttemptEnd::Failed(TaskError {
                        code: "x".into(),
                        message: "failed".into(),
                    }),
                };
                if maybe_crash(
                    crash,
                    bounty_agents::finish::finish_attempt(&store, &claimed, &end, &[]),
                )
                .await
                .is_some()
                    && let Some(o) = store.outcome_of_task(account, claimed.task.id).await.unwrap()
                {
                    outcomes.push(o.id);
                }
            }
            Op::Signal(n, signal) => {
                if let Some(id) = outcomes.get(n % outcomes.len().max(1)) {
                    let _ = maybe_crash(
                        crash,
                        bounty_billing::settle::apply_signal(
                            &store,
                            account,
                            *id,
                            signal,
                            bounty_core::Actor::Worker,
                        ),
                    )
                    .await;
                }
            }
            Op::Goodwill(n) => {
                if let Some(id) = outcomes.get(n % outcomes.len().max(1)) {
                    let _ = maybe_crash(
                        crash,
                        bounty_billing::settle::goodwill_reversal(
                            &store,
                            account,
                            *id,
                            bounty_core::Actor::operator("test").unwrap(),
                            "test",
                        ),
                    )
                    .await;
                }
            }
            Op::Lapse(hours) => {
                clock.advance(chrono::Duration::hours(i64::from(hours)));
                let _ = maybe_crash(crash, bounty_billing::settle::lapse_outcomes(&store, 100)).await;
            }
            Op::Grant(milli) => {
                let _ = maybe_crash(
                    crash,
                    store.grant_credits(
                        account,
                        bounty_core::ApiKeyMode::Live,
                        ComputeUnits::from_milli(milli),
                        None,
                    ),
                )
                .await;
            }
        }
    }
    check(&store, account).await;
    store.close().await;
}

async fn check(store: &Store, account: AccountId) {
    // The rollup is written in each deciding transaction; a crash must
    // leave it equal to what the outcomes themselves sum to.
    let now = store.now();
    let (from, to) = (
        now - chrono::Duration::days(400),
        now + chrono::Duration::days(400),
    );
    let key = |b: &bounty_store::UsageBucket| {
        (
            b.day,
            b.agent_id.to_string(),
            b.status.as_str(),
            b.amount.currency.to_string(),
            b.inference_cost.currency.to_string(),
        )
    };
    let mut rolled = store
        .usage(account, bounty_core::ApiKeyMode::Live, from, to)
        .await
        .unwrap();
    let mut scanned = store
        .usage_scan(account, bounty_core::ApiKeyMode::Live, from, to)
        .await
        .unwrap();
    rolled.sort_by_key(key);
    scanned.sort_by_key(key);
    assert_eq!(rolled, scanned, "the usage rollup disagrees with the outcomes");
    let transfers = store.transfers(account, None, None).await.unwrap();
    // Σ debits = Σ credits per unit, over every ledger account.
    let mut per_unit: HashMap<(String, String), i64> = HashMap::new();
    for t in &transfers {
        *per_unit
            .entry((t.unit.as_str().to_owned(), t.credit.as_str().to_owned()))
            .or_default() += t.amount;
        *per_unit
            .entry((t.unit.as_str().to_owned(), t.debit.as_str().to_owned()))
            .or_default() -= t.amount;
    }
    let mut sums: HashMap<String, i64> = HashMap::new();
    for ((unit, _), v) in &per_unit {
        *sums.entry(unit.clone()).or_default() += v;
    }
    assert!(sums.values().all(|v| *v == 0), "unbalanced ledger: {sums:?}");
    // Credits: never below zero; grants minus draws (plus returned draws).
    let credits = per_unit
        .get(&("mCU".to_owned(), "credits".to_owned()))
        .copied()
        .unwrap_or(0);
    assert!(credits >= 0, "credit balance below zero: {credits}");
    let info = store
        .billing_info(account, bounty_core::ApiKeyMode::Live)
        .await
        .unwrap();
    assert_eq!(info.credit_balance.milli(), credits);
    // Per outcome: net CU is its CU when resolved, else zero.
    let page = store
        .list_outcomes(account, &Default::default(), PageLimit::new(100).unwrap(), None)
        .await
        .unwrap();
    for o in &page.items {
        let mine: Vec<_> = transfers.iter().filter(|t| t.outcome_id == Some(o.id)).collect();
        let mut kinds: Vec<&str> = mine.iter().map(|t| t.kind.as_str()).collect();
        kinds.sort();
        let before = kinds.len();
        kinds.dedup();
        assert_eq!(before, kinds.len(), "a kind twice for {}: {mine:?}", o.id);
        let net = |unit: &str| -> i64 {
            mine.iter()
                .filter(|t| t.unit.as_str() == unit)
                .map(|t| {
                    if t.kind.base().is_none() {
                        -t.amount
                    } else {
                        t.amount
                    }
                })
                .sum()
        };
        let expected = if o.status.charged() { o.cu.milli() } else { 0 };
        assert_eq!(
            net("mCU"),
            expected,
            "outcome {} ({}) net CU: {mine:?}",
            o.id,
            o.status
        );
        let metered: i64 = mine
            .iter()
            .filter(|t| t.kind == TransferKind::Charge || t.kind == TransferKind::Reversal(BaseKind::Charge))
            .map(|t| {
                if t.kind.base().is_none() {
                    -t.amount
                } else {
                    t.amount
                }
            })
            .sum();
        // Default plan: 1.000000 USD per CU, so 1 mCU = 1000 micros.
        assert_eq!(net("USD"), metered * 1000, "outcome {} money vs metered CU", o.id);
    }
    // The outbox agrees with the ledger: one meter event per charge, one
    // reversal per reversed charge, each with the transfer's amount.
    let outbox = store.outbox_of(account).await.unwrap();
    for t in transfers.iter().filter(|t| t.kind == TransferKind::Charge) {
        let events: Vec<_> = outbox
            .iter()
            .filter(|o| {
                o.kind == bounty_core::outbox::OutboxKind::MeterEvent
                    && o.payload["identifier"] == t.id.to_string()
            })
            .collect();
        assert_eq!(
            events.len(),
            1,
            "charge {} has {} meter events",
            t.id,
            events.len()
        );
        assert_eq!(events[0].payload["value"], t.amount);
    }
    for t in transfers
        .iter()
        .filter(|t| t.kind == TransferKind::Reversal(BaseKind::Charge))
    {
        let original = t.reverses_id.expect("a reversal names its original").to_string();
        let events: Vec<_> = outbox
            .iter()
            .filter(|o| {
                o.kind == bounty_core::outbox::OutboxKind::MeterEventReversal
                    && o.payload["identifier"] == original
            })
            .collect();
        assert_eq!(
            events.len(),
            1,
            "reversal {} has {} outbox rows",
            t.id,
            events.len()
        );
    }
    let metered = transfers
        .iter()
        .filter(|t| t.kind == TransferKind::Charge)
        .count();
    assert_eq!(
        outbox
            .iter()
            .filter(|o| o.kind == bounty_core::outbox::OutboxKind::MeterEvent)
            .count(),
        metered,
        "no orphan meter events"
    );
    // Finished tasks have exactly one outcome; unfinished ones none, but
    // for a later turn of a conversation (a reopen resumed it), which
    // keeps the outcome its first turn opened.
    let tasks = store
        .list_tasks(
            account,
            &TaskFilter::default(),
            PageLimit::new(100).unwrap(),
            None,
        )
        .await
        .unwrap();
    for t in &tasks.items {
        let has = page.items.iter().filter(|o| o.task_id == t.id).count();
        let finished = matches!(t.status, TaskStatus::Completed | TaskStatus::Failed);
        let allowed = match (finished, t.turn > 1) {
            (true, _) => has == 1,
            (false, true) => has <= 1,
            (false, false) => has == 0,
        };
        assert!(
            allowed,
            "task {} is {} on turn {} with {has} outcomes",
            t.id, t.status, t.turn
        );
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 10,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn ops() -> impl Strategy<Value = Vec<(Op, Option<u64>)>> {
    proptest::collection::vec((op(), proptest::option::weighted(0.2, 0u64..4000)), 1..16)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sqlite_ledger_invariants_hold_through_crashes(ops in ops()) {
        tokio::runtime::Runtime::new().unwrap().block_on(run(Backend::Sqlite, ops));
    }

    #[test]
    fn postgres_ledger_invariants_hold_through_crashes(ops in ops()) {
        tokio::runtime::Runtime::new().unwrap().block_on(run(Backend::Postgres, ops));
    }
}
