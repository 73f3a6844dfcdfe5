//! The outbox sender against a fake Stripe that speaks Stripe's wire
//! format: customers, meter events exactly once per charge, reversals
//! cancelled; through Stripe errors, "accepted but we never heard", and
//! senders that crash between sending and recording.

use std::time::Duration;

use bounty_billing::outbox::{Sender, SenderConfig};
use bounty_billing::stripe::{StripeClient, StripeConfig};
use bounty_billing::testing::{FakeStripe, Fault};
use bounty_core::outcome::Signal;
use bounty_core::{AccountId, Decision};
use bounty_store::{AttemptEnd, Store, TaskOutput};

use crate::support::billing::{account_with_agent, queue_and_claim};
use crate::support::{Backend, TestApp};

backend_tests!(
    charges_become_meter_events_and_reopens_cancel_them,
    exactly_one_meter_event_per_charge_through_faults_and_crashes,
    a_permanent_stripe_error_parks_the_row,
);

fn sender(store: &Store, fake: &FakeStripe) -> Sender {
    let config = SenderConfig {
        batch: 8,
        lease: Duration::from_millis(200),
        poll_interval: Duration::from_millis(20),
        retry_base: Duration::from_millis(1),
        retry_max: Duration::from_millis(5),
        customer_wait: Duration::from_millis(1),
    };
    Sender::new(
        store.clone(),
        StripeClient::new(config_of(fake.base_url())).unwrap(),
        config,
    )
}

fn config_of(base_url: String) -> StripeConfig {
    let mut c = StripeConfig::new(FakeStripe::SECRET_KEY.to_owned().into());
    c.base_url = base_url;
    c.timeout = Duration::from_secs(2);
    c
}

/// Resolves (charges) a new task of `account` through the store's real
/// finish path.
async fn charge_one(store: &Store, account: AccountId, agent: bounty_core::AgentId, n: usize) {
    let claimed = queue_and_claim(store, account, agent, format!("ticket {n}")).await;
    let end = AttemptEnd::Completed(TaskOutput {
        text: "done".into(),
        errors: None,
        model: "m".into(),
        transcript: serde_json::json!([]),
        decision: Decision::Pass,
        verdicts: Vec::new(),
    });
    assert!(store.finish_attempt(&claimed, &end, &[]).await.unwrap());
}

async fn setup(app: &TestApp) -> (AccountId, bounty_core::AgentId) {
    account_with_agent(&app.store, Default::default()).await
}

/// Drains until nothing is due (sleeping past leases and backoffs).
async fn drain(sender: &Sender, store: &Store) {
    for _ in 0..400 {
        sender.drain_once().await.unwrap();
        if store.outbox_stats().await.unwrap().pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stuck = store
        .admin_list_outbox(Some("pending"), bounty_core::PageLimit::new(10).unwrap(), None)
        .await
        .unwrap();
    panic!("the outbox did not drain: {:?}", stuck.items);
}

async fn charges_become_meter_events_and_reopens_cancel_them(backend: Backend) {
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn(backend).await;
    let (account, agent) = setup(&app).await;
    charge_one(&app.store, account, agent, 0).await;
    let sender = sender(&app.store, &fake);
    drain(&sender, &app.store).await;
    let events = fake.meter_events();
    assert_eq!(events.len(), 1);
    let charge = app
        .store
        .transfers(account, None, Some("charge"))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(events[0].identifier, charge.id.to_string());
    assert_eq!(events[0].value, 1000, "milli-CU");
    assert_eq!(events[0].event_name, "bounty_compute_units");
    assert!(events[0].stripe_customer_id.starts_with("cus_"));
    // Every request carried our idempotency key.
    assert!(
        fake.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .all(|r| r.idempotency_key.is_some())
    );
    // A reopen inside the window cancels the meter event.
    let outcome = app
        .store
        .list_outcomes(
            account,
            &Default::default(),
            bounty_core::PageLimit::new(10).unwrap(),
            None,
        )
        .await
        .unwrap()
        .items
        .pop()
        .unwrap();
    app.store
        .apply_signal(account, outcome.id, Signal::Reopened)
        .await
        .unwrap();
    drain(&sender, &app.store).await;
    let events = fake.meter_events();
    assert_eq!(events.len(), 1);
    assert!(events[0].cancelled, "the reversal cancelled it in Stripe");
    assert_eq!(fake.active_value_by_customer().values().sum::<i64>(), 0);
    let stats = app.store.outbox_stats().await.unwrap();
    assert_eq!((stats.pending, stats.failed), (0, 0));
}

/// Seeded runs with random faults (429, 500, delays, "Stripe applied it
/// but answered 500") and senders that crash between sending a row and
/// recording it: the fake ends with exactly one meter event per charge,
/// and its values add up to the ledger's metered CU.
async fn exactly_one_meter_event_per_charge_through_faults_and_crashes(backend: Backend) {
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn(backend).await;
    let (account, agent) = setup(&app).await;
    let sender = sender(&app.store, &fake);
    let runs = if backend == Backend::Sqlite { 200 } else { 100 };
    let mut seed: u64 = 0x5eed;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for n in 0..runs {
        charge_one(&app.store, account, agent, n).await;
        match next() % 6 {
            0 => fake.push_fault(Fault::Status(429, None)),
            1 => fake.push_fault(Fault::Status(500, None)),
            2 => fake.push_fault(Fault::DropAfterCommit),
            3 => fake.push_fault(Fault::Delay(Duration::from_millis(5))),
            _ => {}
        }
        if next() % 3 == 0 {
            // A sender sends, then dies before recording: the lease
            // expires and another sender resends with the same key.
            for claim in app
                .store
                .claim_outbox(8, Duration::from_millis(50))
                .await
                .unwrap()
            {
                let _ = sender.send(&claim).await;
            }
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        sender.drain_once().await.unwrap();
    }
    drain(&sender, &app.store).await;
    let charges = app.store.transfers(account, None, Some("charge")).await.unwrap();
    assert_eq!(charges.len(), runs);
    let events = fake.meter_events();
    let mut ids: Vec<&str> = events.iter().map(|e| e.identifier.as_str()).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "an identifier was sent twice");
    assert_eq!(events.len(), runs, "one meter event per charge");
    let ledger: i64 = charges.iter().map(|t| t.amount).sum();
    assert_eq!(
        fake.active_value_by_customer().values().sum::<i64>(),
        ledger,
        "Stripe agrees with the ledger"
    );
    let stats = app.store.outbox_stats().await.unwrap();
    assert_eq!((stats.pending, stats.failed), (0, 0));
}

async fn a_permanent_stripe_error_parks_the_row(backend: Backend) {
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn(backend).await;
    let (account, agent) = setup(&app).await;
    charge_one(&app.store, account, agent, 0).await;
    // A wrong key: Stripe answers 401 to everything.
    let mut config = config_of(fake.base_url());
    config.secret_key = "sk_test_wrong".to_owned().into();
    let bad = Sender::new(
        app.store.clone(),
        StripeClient::new(config).unwrap(),
        SenderConfig {
            customer_wait: Duration::from_millis(1),
            ..SenderConfig::default()
        },
    );
    bad.drain_once().await.unwrap();
    let stats = app.store.outbox_stats().await.unwrap();
    assert_eq!(stats.failed, 1, "the customer row is parked");
    let failed = app
        .store
        .admin_list_outbox(Some("failed"), bounty_core::PageLimit::new(10).unwrap(), None)
        .await
        .unwrap()
        .items;
    assert!(
        failed[0].last_error.as_deref().unwrap().contains("401"),
        "{failed:?}"
    );
    // The operator fixes the key and retries: everything goes through.
    assert!(app.store.admin_retry_outbox(failed[0].id).await.unwrap());
    let good = sender(&app.store, &fake);
    drain(&good, &app.store).await;
    assert_eq!(fake.meter_events().len(), 1);
}
