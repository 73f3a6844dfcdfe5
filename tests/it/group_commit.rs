//! Group commit ([`Store::grouped`]): units that arrive together share a
//! transaction, each under its own savepoint; a refused or failing unit
//! leaves nothing and fails no neighbour; a unit is answered only once its
//! batch is committed, and a failed commit answers every kept unit of it
//! with an error and keeps none of their rows.

use std::sync::Arc;

use bounty_agents::submit::{self, AgentRef, Source, SubmitError, Submitted, TaskRequest};
use bounty_core::{
    AccountId, AccountStatus, ApiKeyMode, DeliveryResult, IntegrationId, IntegrationKind, IntegrationName,
    SystemClock, TaskId, TaskInput,
};
use bounty_integrations::intake::{self, IntakeError, IntakeResult, VerifiedDelivery};
use bounty_integrations::{NewTicket, TicketEvent, TicketEventKind, TicketRef};
use bounty_store::{
    GroupCommit, Grouped, Idempotency, IntakeTicket, Integration, NewDelivery, NewIntegration, Store,
    StoreError, delivery_by_dedupe_key, insert_delivery, task_of_ticket,
};

use crate::support::billing::{account_with_agent, store_test_policy};
use crate::support::{Backend, TestDatabase};

backend_tests!(
    units_share_commits_and_a_refused_or_failing_unit_leaves_nothing_of_itself,
    new_tickets_arriving_together_are_written_set_wise_with_the_answers_they_get_alone,
    api_tasks_arriving_together_are_inserted_set_wise_and_a_replayed_key_answers_its_first_task
);

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
    let (account, integration) = desk(&store).await;
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
    // Batchers side by side (the default is one).
    let store = store.with_group_commit(GroupCommit {
        enabled: true,
        batchers: 4,
        max_batch: 64,
    });
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

/// A store whose writes all queue on one batcher.
async fn one_batcher(backend: Backend) -> (TestDatabase, Store) {
    let db = TestDatabase::create(backend).await;
    let store = crate::support::migrated_store(&db, Arc::new(SystemClock))
        .await
        .with_group_commit(GroupCommit {
            enabled: true,
            batchers: 1,
            max_batch: 64,
        });
    (db, store)
}

/// An integration on a new account of its own.
async fn desk(store: &Store) -> (AccountId, Integration) {
    let (account, agent) = account_with_agent(store, store_test_policy()).await;
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
    (account, integration)
}

/// A new ticket's verified delivery.
fn new_ticket(ticket: &str, dedupe_key: &str) -> VerifiedDelivery {
    VerifiedDelivery {
        dedupe_key: dedupe_key.to_owned(),
        event: TicketEvent {
            kind: TicketEventKind::Created(NewTicket {
                subject: Some("Refund".into()),
                body: format!("Where is the refund of {ticket}?"),
                ..NewTicket::default()
            }),
            vendor_event_id: None,
            ticket: TicketRef {
                external_id: ticket.to_owned(),
                url: None,
            },
            occurred_at: None,
        },
    }
}

/// Takes every delivery at once, while a first unit holds the one
/// batcher: they all wait, and run as the next batch.
async fn in_one_batch(
    store: &Store,
    deliveries: Vec<(Integration, VerifiedDelivery)>,
) -> Vec<Result<IntakeResult, IntakeError>> {
    let takes = deliveries.into_iter().map(|(integration, delivery)| {
        let store = store.clone();
        async move { intake::take(&store, &integration, delivery, 3).await }
    });
    all_in_one_batch(store, takes).await
}

/// Runs every future at once, while a first unit holds the one batcher:
/// what they queue waits, and runs as the next batch.
async fn all_in_one_batch<T: Send + 'static>(
    store: &Store,
    work: impl IntoIterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let hold = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .grouped(|_tx| {
                    Box::pin(async {
                        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
                        Ok::<_, StoreError>(Grouped::Keep(()))
                    })
                })
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let takes: Vec<_> = work.into_iter().map(tokio::spawn).collect();
    hold.await.unwrap().unwrap();
    let mut answers = Vec::new();
    for take in takes {
        answers.push(take.await.unwrap());
    }
    answers
}

async fn task_of(
    store: &Store,
    account: AccountId,
    integration: IntegrationId,
    ticket: &str,
) -> Option<TaskId> {
    let ticket = ticket.to_owned();
    store
        .transact(move |tx| {
            let ticket = ticket.clone();
            Box::pin(async move {
                let intake = IntakeTicket {
                    integration,
                    ticket: &ticket,
                };
                Ok::<_, StoreError>(Grouped::Discard(task_of_ticket(tx, account, intake).await?))
            })
        })
        .await
        .unwrap()
}

/// New tickets in one batch are written by one task insert and one
/// delivery insert; what the set cannot write plainly runs alone and is
/// answered as it would be alone: a copy of a delivery in the same batch
/// (a duplicate of the first), a capped account's ticket (its budget held
/// under the lock), a suspended account's (refused, nothing kept). A
/// resend of a recorded delivery is answered in the set with the first
/// record. Two new tickets of one batch with one dedupe key undo the set,
/// and every ticket of it runs alone.
async fn new_tickets_arriving_together_are_written_set_wise_with_the_answers_they_get_alone(
    backend: Backend,
) {
    let (_db, store) = one_batcher(backend).await;
    let (plain, plain_desk) = desk(&store).await;
    let (capped, capped_desk) = desk(&store).await;
    store.set_cap(capped, Some(1_000_000_000), &[]).await.unwrap();
    let (suspended, suspended_desk) = desk(&store).await;
    let mut tx = store.begin().await.unwrap();
    bounty_store::stripe_events::set_account_status(&mut tx, suspended, AccountStatus::Suspended, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut batch = Vec::new();
    for i in 0..20 {
        batch.push((
            plain_desk.clone(),
            new_ticket(&format!("P-{i}"), &format!("d-P-{i}")),
        ));
    }
    // Copies of P-0 and P-1, sent again in the same batch.
    batch.push((plain_desk.clone(), new_ticket("P-0", "d-P-0")));
    batch.push((plain_desk.clone(), new_ticket("P-1", "d-P-1")));
    for i in 0..5 {
        batch.push((
            capped_desk.clone(),
            new_ticket(&format!("C-{i}"), &format!("d-C-{i}")),
        ));
    }
    for i in 0..2 {
        batch.push((
            suspended_desk.clone(),
            new_ticket(&format!("S-{i}"), &format!("d-S-{i}")),
        ));
    }
    let before = store.group_stats();
    let answers = in_one_batch(&store, batch).await;
    let after = store.group_stats();
    assert_eq!(
        after.set_units - before.set_units,
        20,
        "the plain account's 20 new tickets were written together; the rest ran alone"
    );
    assert_eq!(
        after.batches - before.batches,
        2,
        "the holding unit's batch, then all of them"
    );

    // P-0 and P-1 and their copies: they reached the batcher in either
    // order, and whichever came first made the task.
    let mut answers = answers;
    for n in 0..2 {
        if matches!(answers[n], Ok(IntakeResult::Duplicate { .. })) {
            answers.swap(n, 20 + n);
        }
    }
    let mut created = std::collections::BTreeMap::new();
    for (i, answer) in answers[..20].iter().enumerate() {
        let Ok(IntakeResult::TaskCreated { receipt, task }) = answer else {
            panic!("P-{i}: {answer:?}");
        };
        assert_eq!(
            task_of(&store, plain, plain_desk.id, &format!("P-{i}")).await,
            Some(*task)
        );
        let record = store
            .transact({
                let key = format!("d-P-{i}");
                let integration = plain_desk.id;
                move |tx| {
                    let key = key.clone();
                    Box::pin(async move {
                        Ok::<_, StoreError>(Grouped::Discard(
                            delivery_by_dedupe_key(tx, plain, integration, &key).await?,
                        ))
                    })
                }
            })
            .await
            .unwrap()
            .expect("the delivery is recorded");
        assert_eq!(record.id, receipt.delivery);
        assert_eq!(record.result, DeliveryResult::TaskCreated);
        assert_eq!(record.task_id, Some(*task));
        created.insert(i, (receipt.delivery, *task));
    }
    for (n, answer) in answers[20..22].iter().enumerate() {
        let Ok(IntakeResult::Duplicate { first }) = answer else {
            panic!("the copy of P-{n}: {answer:?}");
        };
        assert_eq!((first.id, first.task_id), (created[&n].0, Some(created[&n].1)));
    }
    for (i, answer) in answers[22..27].iter().enumerate() {
        let Ok(IntakeResult::TaskCreated { task, .. }) = answer else {
            panic!("C-{i}: {answer:?}");
        };
        assert_eq!(
            task_of(&store, capped, capped_desk.id, &format!("C-{i}")).await,
            Some(*task)
        );
    }
    for (i, answer) in answers[27..].iter().enumerate() {
        assert!(
            matches!(answer, Err(IntakeError::Refused(SubmitError::AccountSuspended))),
            "S-{i}: {answer:?}"
        );
        assert_eq!(
            task_of(&store, suspended, suspended_desk.id, &format!("S-{i}")).await,
            None
        );
    }

    // A new ticket whose delivery reuses P-2's recorded dedupe key is
    // answered in the set with P-2's record, and keeps no task.
    let batch = vec![
        (plain_desk.clone(), new_ticket("P-X", "d-P-2")),
        (plain_desk.clone(), new_ticket("P-3", "d-P-3")),
        (plain_desk.clone(), new_ticket("R-0", "d-R-0")),
        (suspended_desk.clone(), new_ticket("S-0", "d-S-0")),
    ];
    let before = store.group_stats();
    let answers = in_one_batch(&store, batch).await;
    let after = store.group_stats();
    assert_eq!(after.set_units - before.set_units, 3, "all but the refused one");
    for (answer, n) in answers[..2].iter().zip([2, 3]) {
        let Ok(IntakeResult::Duplicate { first }) = answer else {
            panic!("the resend of d-P-{n}: {answer:?}");
        };
        assert_eq!(
            (first.id, first.task_id),
            (created[&n].0, Some(created[&n].1)),
            "answered with P-{n}'s record"
        );
    }
    assert_eq!(
        task_of(&store, plain, plain_desk.id, "P-X").await,
        None,
        "P-X kept no task"
    );
    assert!(
        matches!(answers[2], Ok(IntakeResult::TaskCreated { .. })),
        "{:?}",
        answers[2]
    );
    assert!(
        matches!(
            answers[3],
            Err(IntakeError::Refused(SubmitError::AccountSuspended))
        ),
        "a suspended account's resend is refused as it is alone: {:?}",
        answers[3]
    );

    // Two new tickets of one batch with the same new dedupe key: the
    // second's delivery cannot be recorded, so the set is undone and each
    // runs alone. Whichever came first makes its task; the other answers
    // its record and keeps no task.
    let mut batch = vec![
        (plain_desk.clone(), new_ticket("X-0", "d-X")),
        (plain_desk.clone(), new_ticket("X-1", "d-X")),
    ];
    for i in 0..3 {
        batch.push((
            plain_desk.clone(),
            new_ticket(&format!("Q-{i}"), &format!("d-Q-{i}")),
        ));
    }
    let before = store.group_stats();
    let mut answers = in_one_batch(&store, batch).await;
    let after = store.group_stats();
    assert_eq!(after.set_units - before.set_units, 0, "the set was undone");
    if matches!(answers[0], Ok(IntakeResult::Duplicate { .. })) {
        answers.swap(0, 1);
    }
    let (Ok(IntakeResult::TaskCreated { receipt, task }), Ok(IntakeResult::Duplicate { first })) =
        (&answers[0], &answers[1])
    else {
        panic!("X-0, X-1: {:?}", &answers[..2]);
    };
    assert_eq!((first.id, first.task_id), (receipt.delivery, Some(*task)));
    let kept = [
        task_of(&store, plain, plain_desk.id, "X-0").await,
        task_of(&store, plain, plain_desk.id, "X-1").await,
    ];
    assert_eq!(
        kept.iter().filter(|t| t.is_some()).count(),
        1,
        "one task between them: {kept:?}"
    );
    for (i, answer) in answers[2..].iter().enumerate() {
        let Ok(IntakeResult::TaskCreated { task, .. }) = answer else {
            panic!("Q-{i}: {answer:?}");
        };
        assert_eq!(
            task_of(&store, plain, plain_desk.id, &format!("Q-{i}")).await,
            Some(*task)
        );
    }
}

/// `POST /v1/tasks` arriving together: one admission read and one insert
/// for the batch. A second request with a key already used in the batch
/// runs alone and is answered with the first task (a replay); a capped
/// account's task runs alone and reserves under its cap.
async fn api_tasks_arriving_together_are_inserted_set_wise_and_a_replayed_key_answers_its_first_task(
    backend: Backend,
) {
    let (_db, store) = one_batcher(backend).await;
    let (plain, _) = account_with_agent(&store, store_test_policy()).await;
    let (capped, _) = account_with_agent(&store, store_test_policy()).await;
    store.set_cap(capped, Some(1_000_000_000), &[]).await.unwrap();
    let request = |key: Option<String>, body: String| TaskRequest {
        agent: AgentRef::Given("support".into()),
        input: TaskInput {
            body,
            ..TaskInput::default()
        },
        external_ref: None,
        source: Source::Api {
            idempotency: key.map(|key| Idempotency {
                request_hash: format!("hash-{key}"),
                key,
            }),
        },
        mode: ApiKeyMode::Live,
        max_attempts: 3,
    };
    let mut sends = Vec::new();
    for i in 0..12 {
        sends.push((plain, request(Some(format!("k{i}")), format!("task {i}"))));
    }
    for i in 0..3 {
        sends.push((plain, request(None, format!("unkeyed {i}"))));
    }
    sends.push((plain, request(Some("k0".into()), "task 0".into())));
    sends.push((capped, request(Some("c0".into()), "capped".into())));
    let before = store.group_stats();
    let work = sends.into_iter().map(|(account, request)| {
        let store = store.clone();
        async move { submit::submit_task(&store, account, request).await }
    });
    let answers = all_in_one_batch(&store, work).await;
    let after = store.group_stats();
    assert_eq!(
        after.set_units - before.set_units,
        15,
        "the 15 new tasks of the plain account were inserted together"
    );
    let task = |answer: &Result<Submitted, SubmitError>| match answer {
        Ok(Submitted::Queued(task) | Submitted::Replayed(task)) => task.id,
        other => panic!("{other:?}"),
    };
    let first = task(&answers[0]);
    // k0 and its replay reached the batcher in either order: one made the
    // task, the other was answered with it.
    assert_eq!(task(&answers[15]), first, "the replay answers k0's task");
    assert_eq!(
        [&answers[0], &answers[15]]
            .iter()
            .filter(|a| matches!(a, Ok(Submitted::Replayed(_))))
            .count(),
        1
    );
    let mut ids: Vec<TaskId> = answers[..15].iter().map(task).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 15, "one task per key, and per unkeyed request");
    assert!(
        matches!(answers[16], Ok(Submitted::Queued(_))),
        "{:?}",
        answers[16]
    );
    for (account, count) in [(plain, 15), (capped, 1)] {
        let page = store
            .list_tasks(
                account,
                &Default::default(),
                bounty_core::PageLimit::new(100).unwrap(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(page.items.len(), count);
    }
}
