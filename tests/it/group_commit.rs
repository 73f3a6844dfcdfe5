//! Group commit ([`Store::grouped`]): units that arrive together share a
//! transaction, each under its own savepoint; a refused or failing unit
//! leaves nothing and fails no neighbour; a unit is answered only once its
//! batch is committed, and a failed commit answers every kept unit of it
//! with an error and keeps none of their rows.

use std::sync::Arc;

use bounty_core::{AccountId, ApiKeyMode, IntegrationId, IntegrationKind, IntegrationName, SystemClock};
use bounty_store::{
    Grouped, NewDelivery, NewIntegration, Store, StoreError, delivery_by_dedupe_key, insert_delivery,
};

use crate::support::billing::{account_with_agent, store_test_policy};
use crate::support::{Backend, TestDatabase};

backend_tests!(units_share_commits_and_a_refused_or_failing_unit_leaves_nothing_of_itself);

mod postgres_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_answers_every_kept_unit_with_an_error_and_keeps_none() {
        super::a_failed_commit_answers_every_kept_unit_with_an_error_and_keeps_none().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deadlock_between_batches_runs_the_unit_again_after_its_batch_commits() {
        super::a_deadlock_between_batches_runs_the_unit_again_after_its_batch_commits().await
    }
}

/// What each unit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Inserts its delivery and keeps it.
    Keep,
    /// Inserts its delivery, then asks for it to be rolled back.
    Discard,
    /// Inserts its delivery, then fails (a delivery for an integration
    /// that does not exist: a foreign key refuses it).
    Fail,
}

fn plan(i: usize) -> Plan {
    match i % 10 {
        3 => Plan::Fail,
        6 => Plan::Discard,
        _ => Plan::Keep,
    }
}

async fn setup(backend: Backend) -> (TestDatabase, Store, AccountId, IntegrationId) {
    let db = TestDatabase::create(backend).await;
    let store = crate::support::migrated_store(&db, Arc::new(SystemClock)).await;
    let (account, agent) = account_with_agent(&store, store_test_policy()).await;
    let integration = store
        .create_integration(
            account,
            &NewIntegration {
                id: IntegrationId::new(),
                kind: IntegrationKind::Standard,
                name: IntegrationName::parse("desk").unwrap(),
                agent_id: agent,
                secret_sealed: "sealed".into(),
                reply_sealed: None,
                mode: ApiKeyMode::Live,
            },
        )
        .await
        .unwrap();
    (db, store, account, integration.id)
}

/// Runs `unit` for each `i` at once: what each was answered.
async fn run_all(
    store: &Store,
    account: AccountId,
    integration: IntegrationId,
    n: usize,
    ticket: impl Fn(usize) -> String,
) -> Vec<Result<Option<bool>, StoreError>> {
    let mut units = Vec::new();
    for i in 0..n {
        let (store, ticket) = (store.clone(), ticket(i));
        units.push(tokio::spawn(async move {
            let now = store.now();
            store
                .grouped(move |tx| {
                    let ticket = ticket.clone();
                    Box::pin(async move {
                        let key = format!("k{i}");
                        let new = NewDelivery {
                            dedupe_key: &key,
                            event: bounty_core::TicketEventName::Created,
                            external_ticket: &ticket,
                        };
                        let inserted = insert_delivery(tx, account, integration, new, now).await?;
                        match plan(i) {
                            Plan::Keep => Ok(Grouped::Keep(Some(inserted.is_some()))),
                            Plan::Discard => Ok(Grouped::Discard(None)),
                            Plan::Fail => {
                                insert_delivery(tx, account, IntegrationId::new(), new, now).await?;
                                Ok(Grouped::Keep(Some(true)))
                            }
                        }
                    })
                })
                .await
        }));
    }
    let mut answers = Vec::new();
    for unit in units {
        answers.push(unit.await.expect("a unit's task"));
    }
    answers
}

/// Whether delivery `k{i}` is in the database, read in a transaction of
/// its own.
async fn stored(store: &Store, account: AccountId, integration: IntegrationId, i: usize) -> bool {
    store
        .transact(move |tx| {
            Box::pin(async move {
                let found = delivery_by_dedupe_key(tx, account, integration, &format!("k{i}")).await?;
                Ok::<_, StoreError>(Grouped::Discard(found.is_some()))
            })
        })
        .await
        .unwrap()
}

async fn units_share_commits_and_a_refused_or_failing_unit_leaves_nothing_of_itself(backend: Backend) {
    let (_db, store, account, integration) = setup(backend).await;
    let n = 200;
    let before = store.group_stats();
    let answers = run_all(&store, account, integration, n, |i| format!("T-{i}")).await;
    let after = store.group_stats();
    for (i, answer) in answers.iter().enumerate() {
        match plan(i) {
            Plan::Keep => assert!(
                matches!(answer, Ok(Some(true))),
                "unit {i} kept its delivery: {answer:?}"
            ),
            Plan::Discard => assert!(matches!(answer, Ok(None)), "unit {i}: {answer:?}"),
            // Postgres names the constraint; SQLite's foreign key error
            // does not.
            Plan::Fail => assert!(
                matches!(
                    answer,
                    Err(StoreError::Constraint { .. } | StoreError::Database(_))
                ),
                "unit {i} failed on the foreign key: {answer:?}"
            ),
        }
        // Answered, a kept unit's row is there; a refused or failed one
        // left nothing, not even the delivery it inserted first.
        assert_eq!(
            stored(&store, account, integration, i).await,
            plan(i) == Plan::Keep,
            "unit {i} ({:?})",
            plan(i)
        );
    }
    let (units, batches) = (after.units - before.units, after.batches - before.batches);
    assert_eq!(units, n as u64, "every unit ran in a batch");
    assert!(
        batches < units,
        "units that arrived together shared commits: {units} units in {batches} batches"
    );
}

/// A deferred unique constraint fails the commit, not a statement: every
/// unit of a batch with two deliveries of one ticket ran, and the commit
/// refuses them all.
async fn a_failed_commit_answers_every_kept_unit_with_an_error_and_keeps_none() {
    let (db, store, account, integration) = setup(Backend::Postgres).await;
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(db.url())
        .await
        .unwrap();
    sqlx::query(
        "alter table integration_deliveries add constraint one_delivery_per_ticket
         unique (external_ticket) deferrable initially deferred",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let n = 100;
    // Two units per ticket: the pair fails its commit when it lands in
    // one batch.
    let answers = run_all(&store, account, integration, n, |i| format!("T-{}", i / 2)).await;
    let mut refused_commits = 0;
    for (i, answer) in answers.iter().enumerate() {
        let kept = stored(&store, account, integration, i).await;
        match (plan(i), answer) {
            (Plan::Keep, Ok(Some(true))) => assert!(kept, "unit {i} was answered, so its row is durable"),
            (Plan::Keep, Ok(Some(false))) => panic!("unit {i}: its key is its own"),
            (Plan::Keep, Err(e)) => {
                assert!(!kept, "unit {i} was refused ({e}), so nothing of it is there");
                refused_commits += 1;
            }
            (_, _) => assert!(!kept, "unit {i} ({:?}): {answer:?}", plan(i)),
        }
    }
    assert!(
        refused_commits > 0,
        "some pair shared a batch and failed its commit"
    );
}

/// Two units on two batchers take the same two keys in opposite orders,
/// each waiting a moment between them: Postgres finds the deadlock and
/// cancels one statement. That unit is rolled back to its savepoint and
/// run again once its batch committed; it then finds both keys taken.
/// Both are answered, neither with an error.
async fn a_deadlock_between_batches_runs_the_unit_again_after_its_batch_commits() {
    let (_db, store, account, integration) = setup(Backend::Postgres).await;
    let both = |first: &'static str, second: &'static str| {
        let store = store.clone();
        async move {
            let now = store.now();
            // Consecutive units without a key go to consecutive batchers.
            store
                .grouped(move |tx| {
                    Box::pin(async move {
                        let mut taken = Vec::new();
                        for (n, key) in [first, second].into_iter().enumerate() {
                            if n == 1 {
                                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                            }
                            let new = NewDelivery {
                                dedupe_key: key,
                                event: bounty_core::TicketEventName::Created,
                                external_ticket: key,
                            };
                            taken.push(
                                insert_delivery(tx, account, integration, new, now)
                                    .await?
                                    .is_some(),
                            );
                        }
                        Ok::<_, StoreError>(Grouped::Keep(taken))
                    })
                })
                .await
        }
    };
    let before = store.group_stats();
    let (one, two) = tokio::join!(both("x", "y"), both("y", "x"));
    let after = store.group_stats();
    assert_eq!(
        after.units - before.units,
        3,
        "two units, one of them run twice: each in a batch of its own batcher, then again"
    );
    let (one, two) = (one.expect("answered"), two.expect("answered"));
    // One unit took both keys; the other, run again after the deadlock,
    // found both taken.
    let mut answers = [one, two];
    answers.sort();
    assert_eq!(answers, [vec![false, false], vec![true, true]]);
}
