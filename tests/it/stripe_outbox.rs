//! The outbox sender against a fake Stripe that speaks Stripe's wire
//! format: the catalogue `bounty stripe setup` makes, customers and their
//! subscriptions, meter events exactly once per charge, reversals
//! cancelled inside 24 h and credited after; through Stripe errors,
//! "accepted but we never heard", and senders that crash at fail points
//! between Stripe accepting a row and the row being marked sent. After
//! each chaos run, reconciliation finds no difference.

use std::sync::Arc;
use std::time::Duration;

use bounty_billing::catalog::{CatalogError, Step, setup as stripe_setup};
use bounty_billing::outbox::{Sender, SenderConfig};
use bounty_billing::reconcile::reconcile;
use bounty_billing::stripe::StripeClient;
use bounty_billing::testing::{FakeStripe, Fault};
use bounty_core::ManualClock;
use bounty_core::outcome::Signal;
use bounty_core::plan::Plan;

use crate::support::billing::{account_with_agent, store_test_policy};
use crate::support::stripe::{
    assert_reconciled, charge_one, client, config_of, drain, outcome_ids, sender, setup,
};
use crate::support::{Backend, TestApp};

backend_tests!(
    charges_become_meter_events_and_reopens_cancel_them,
    exactly_one_meter_event_per_charge_through_faults_and_crashes,
    a_permanent_stripe_error_parks_the_row,
    setup_is_idempotent_and_refuses_a_meter_that_does_not_fit,
    subscriptions_wait_for_setup_and_use_the_plan_price,
    a_reversal_after_24_hours_credits_the_customer_balance,
    test_mode_charges_reach_only_the_test_mode_sender,
    attempts_count_real_failures_only_and_a_stopping_sender_gives_its_claims_back,
    the_operator_hears_once_when_stripe_has_failed_for_15_minutes,
    no_row_is_stuck_behind_a_saved_500,
);

async fn charges_become_meter_events_and_reopens_cancel_them(backend: Backend) {
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn(backend).await;
    let (account, agent) = setup(&app, &fake).await;
    charge_one(&app.store, account, agent, 0).await;
    let sender = sender(&app.store, &fake);
    drain(&sender, &app.store).await;
    let events = fake.meter_events();
    assert_eq!(events.len(), 1);
    let charge = app
        .store
        .transfers(account, None, Some(bounty_core::ledger::TransferKind::Charge))
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
    bounty_billing::settle::apply_signal(
        &app.store,
        account,
        outcome.id,
        Signal::Reopened,
        bounty_core::Actor::Worker,
    )
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

/// Seeded runs with random faults: Stripe's 429, 500, delays and
/// "applied it but answered 500", and fail points that crash the sender
/// before it sends a row, after Stripe accepted it but before the row is
/// marked sent, and after recording. A crashed sender is replaced by a new
/// one ("a restart") once the dead one's leases expire. Some charges are
/// reopened, so cancellations go through the same chaos. At the end the
/// fake has exactly one meter event per charge identifier, Stripe's active
/// total equals the ledger's, and reconciliation finds no difference.
async fn exactly_one_meter_event_per_charge_through_faults_and_crashes(backend: Backend) {
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn(backend).await;
    let (account, agent) = setup(&app, &fake).await;
    // Crash points are armed for this test's senders only.
    let prefix = format!("chaos-{backend:?}");
    let restart = || sender(&app.store, &fake).with_failpoints(prefix.clone());
    let mut sender = restart();
    let runs = if backend == Backend::Sqlite { 200 } else { 100 };
    let mut seed: u64 = 0x5eed;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut crashes = 0;
    for n in 0..runs {
        charge_one(&app.store, account, agent, n).await;
        if next() % 5 == 0 {
            // Reopen a random earlier outcome: a reversal to cancel.
            let ids = outcome_ids(&app.store, account).await;
            let pick = ids[(next() % ids.len() as u64) as usize];
            let _ = bounty_billing::settle::apply_signal(
                &app.store,
                account,
                pick,
                Signal::Reopened,
                bounty_core::Actor::Worker,
            )
            .await;
        }
        match next() % 9 {
            0 => fake.push_fault(Fault::Status(429, None)),
            1 => fake.push_fault(Fault::Status(500, None)),
            2 => fake.push_fault(Fault::DropAfterCommit),
            3 => fake.push_fault(Fault::Delay(Duration::from_millis(5))),
            4 => fail::cfg(format!("{prefix}::before_send"), "1*panic").unwrap(),
            5 | 6 => fail::cfg(format!("{prefix}::after_send"), "1*panic").unwrap(),
            7 => fail::cfg(format!("{prefix}::after_record"), "1*panic").unwrap(),
            _ => {}
        }
        let running = sender.clone();
        match tokio::spawn(async move { running.drain_once().await }).await {
            Ok(drained) => {
                drained.unwrap();
            }
            Err(crash) => {
                assert!(crash.is_panic(), "{crash}");
                crashes += 1;
                // The process is gone; a new one starts once the dead
                // one's leases have expired.
                tokio::time::sleep(Duration::from_millis(120)).await;
                sender = restart();
            }
        }
    }
    for point in ["before_send", "after_send", "after_record"] {
        fail::remove(format!("{prefix}::{point}"));
    }
    assert!(crashes > runs / 10, "the fail points fired ({crashes} crashes)");
    drain(&sender, &app.store).await;
    let charges = app
        .store
        .transfers(account, None, Some(bounty_core::ledger::TransferKind::Charge))
        .await
        .unwrap();
    assert_eq!(charges.len(), runs);
    let events = fake.meter_events();
    let mut ids: Vec<&str> = events.iter().map(|e| e.identifier.as_str()).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "an identifier was sent twice");
    assert_eq!(events.len(), runs, "one meter event per charge");
    let reversed: i64 = app
        .store
        .transfers(
            account,
            None,
            Some(bounty_core::ledger::TransferKind::Reversal(
                bounty_core::ledger::BaseKind::Charge,
            )),
        )
        .await
        .unwrap()
        .iter()
        .map(|t| t.amount)
        .sum();
    let ledger: i64 = charges.iter().map(|t| t.amount).sum::<i64>() - reversed;
    assert!(reversed > 0, "some charges were reversed");
    assert_eq!(
        fake.active_value_by_customer().values().sum::<i64>(),
        ledger,
        "Stripe agrees with the ledger"
    );
    let stats = app.store.outbox_stats().await.unwrap();
    assert_eq!((stats.pending, stats.failed), (0, 0));
    assert_reconciled(&app.store, &fake).await;
}

async fn a_permanent_stripe_error_parks_the_row(backend: Backend) {
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn(backend).await;
    let (account, agent) = setup(&app, &fake).await;
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
        .admin_list_outbox(
            Some(bounty_core::outbox::OutboxStatus::Failed),
            bounty_core::PageLimit::new(10).unwrap(),
            None,
        )
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

async fn setup_is_idempotent_and_refuses_a_meter_that_does_not_fit(backend: Backend) {
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn(backend).await;
    let price = Plan::default_value_plan().price_per_cu;
    let first = stripe_setup(&client(&fake), &app.store, &price).await.unwrap();
    assert!(matches!(first.meter, Step::Created(_)), "{first:?}");
    assert!(matches!(first.product, Step::Created(_)), "{first:?}");
    assert!(matches!(first.price, Step::Created(_)), "{first:?}");
    assert_eq!(first.lookup_key, "bounty_cu_usd_1000000");
    let second = stripe_setup(&client(&fake), &app.store, &price).await.unwrap();
    assert_eq!(second.meter, Step::Found(first.meter.id().to_owned()));
    assert_eq!(second.product, Step::Found(first.product.id().to_owned()));
    assert_eq!(second.price, Step::Found(first.price.id().to_owned()));
    assert_eq!(
        second.gateway_meter,
        Step::Found(first.gateway_meter.id().to_owned())
    );
    assert_eq!(
        second.gateway_price,
        Step::Found(first.gateway_price.id().to_owned())
    );
    // Two of each: outcomes' compute units, and gateway calls at cost plus.
    assert_eq!(
        (fake.meters().len(), fake.products().len(), fake.prices().len()),
        (2, 2, 2)
    );
    let gateway_meter = &fake.meters()[1];
    assert_eq!(gateway_meter["event_name"], "bounty_gateway_cost_plus");
    assert_eq!(gateway_meter["default_aggregation"]["formula"], "sum");
    // Its values are micros: one micro-dollar is 0.0001 cent.
    let gateway_price = &fake.prices()[1];
    assert_eq!(gateway_price["recurring"]["meter"], gateway_meter["id"]);
    assert_eq!(gateway_price["unit_amount_decimal"], "0.0001");
    assert_eq!(gateway_price["lookup_key"], "bounty_gateway_usd");
    let meter = &fake.meters()[0];
    assert_eq!(meter["event_name"], "bounty_compute_units");
    assert_eq!(meter["default_aggregation"]["formula"], "sum");
    assert_eq!(
        meter["customer_mapping"]["event_payload_key"],
        "stripe_customer_id"
    );
    let stripe_price = &fake.prices()[0];
    assert_eq!(stripe_price["recurring"]["meter"], meter["id"]);
    assert_eq!(stripe_price["recurring"]["usage_type"], "metered");
    // 1.00 USD per CU is 0.1 cent per milli-CU.
    assert_eq!(stripe_price["unit_amount_decimal"], "0.1");
    assert_eq!(stripe_price["currency"], "usd");
    // The catalogue is kept for every process.
    let catalog = app.store.catalog().await.unwrap();
    assert_eq!(catalog.len(), 6, "{catalog:?}");
    // Every write carried an idempotency key.
    assert!(
        fake.requests()
            .iter()
            .filter(|r| r.method == "POST")
            .all(|r| r.idempotency_key.is_some())
    );

    // Someone made a meter of that name by hand, counting events: setup
    // says what does not fit and creates nothing.
    let other = FakeStripe::start().await;
    other.add_meter("bounty_compute_units", "count", "value");
    let other_app = TestApp::spawn(backend).await;
    let err = stripe_setup(&client(&other), &other_app.store, &price)
        .await
        .unwrap_err();
    match &err {
        CatalogError::Mismatch(message) => {
            assert!(message.contains("default_aggregation.formula"), "{message}");
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert!(other.products().is_empty() && other.prices().is_empty());
}

async fn subscriptions_wait_for_setup_and_use_the_plan_price(backend: Backend) {
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn(backend).await;
    let (account, _) = account_with_agent(&app.store, store_test_policy()).await;
    // A second account on another price.
    let (pricier, _) = account_with_agent(&app.store, store_test_policy()).await;
    let mut plan = Plan::default_value_plan();
    plan.price_per_cu = bounty_core::Money::from_micros(2_500_000, bounty_core::Currency::USD);
    app.store.set_plan(pricier, &plan).await.unwrap();
    let sender = sender(&app.store, &fake);
    // Before setup: customers are made, subscriptions wait.
    for _ in 0..3 {
        sender.drain_once().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(fake.subscriptions().is_empty());
    let waiting = app.store.outbox_of(account).await.unwrap();
    let sub = waiting
        .iter()
        .find(|o| o.kind == bounty_core::outbox::OutboxKind::StripeSubscription)
        .unwrap();
    assert_eq!(sub.status, bounty_core::outbox::OutboxStatus::Pending);
    assert!(
        sub.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("bounty stripe setup"),
        "{sub:?}"
    );
    // Setup finds both accounts already queued: nothing more to queue.
    let report = stripe_setup(
        &client(&fake),
        &app.store,
        &Plan::default_value_plan().price_per_cu,
    )
    .await
    .unwrap();
    assert_eq!((report.subscriptions_queued, report.items_queued), (0, 0));
    drain(&sender, &app.store).await;
    let subs = fake.subscriptions();
    assert_eq!(subs.len(), 2);
    for (acct, lookup) in [
        (account, "bounty_cu_usd_1000000"),
        (pricier, "bounty_cu_usd_2500000"),
    ] {
        let ids = app.store.stripe_ids(acct).await.unwrap();
        let sub = subs
            .iter()
            .find(|s| s["id"].as_str() == ids.subscription.as_deref())
            .unwrap_or_else(|| panic!("no subscription stored for {acct}: {ids:?}"));
        assert_eq!(sub["customer"].as_str(), ids.customer.as_deref());
        assert_eq!(sub["metadata"]["account_id"], acct.to_string());
        assert_eq!(sub["items"]["data"][0]["price"]["lookup_key"], lookup);
        // And the gateway's cost-plus price, added to it.
        assert_eq!(
            sub["items"]["data"][1]["price"]["lookup_key"],
            "bounty_gateway_usd"
        );
    }
    // 2.50 USD per CU: 0.25 cent per milli-CU, made when first needed.
    let pricy = fake
        .prices()
        .into_iter()
        .find(|p| p["lookup_key"] == "bounty_cu_usd_2500000")
        .unwrap();
    assert_eq!(pricy["unit_amount_decimal"], "0.25");
    // Accounts made before subscriptions existed are queued by setup, once.
    let (late, _) = account_with_agent(&app.store, store_test_policy()).await;
    let rows = app.store.outbox_of(late).await.unwrap();
    let row = rows
        .iter()
        .find(|o| o.kind == bounty_core::outbox::OutboxKind::StripeSubscription)
        .unwrap();
    drain(&sender, &app.store).await;
    assert_eq!(app.store.outbox_of(late).await.unwrap().len(), rows.len());
    assert!(
        app.store.stripe_ids(late).await.unwrap().subscription.is_some(),
        "{row:?}"
    );
    assert_eq!(app.store.enqueue_missing_subscriptions().await.unwrap(), 0);
}

/// A goodwill reversal 25 hours after the charge: past Stripe's 24 h
/// cancellation window, so the usage stays on the meter and the money is
/// credited to the customer's balance instead; reconciliation agrees.
async fn a_reversal_after_24_hours_credits_the_customer_balance(backend: Backend) {
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn(backend).await;
    let (account, agent) = setup(&app, &fake).await;
    // The customer and subscription first, on real time.
    drain(&sender(&app.store, &fake), &app.store).await;
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let store = app.store_with_clock(clock.clone()).await;
    charge_one(&store, account, agent, 0).await;
    charge_one(&store, account, agent, 1).await;
    let sender = sender(&store, &fake);
    drain(&sender, &store).await;
    assert_eq!(fake.meter_events().len(), 2);
    let ids = outcome_ids(&store, account).await;
    // One reversed at once (cancelled), one a day and an hour later (credited).
    bounty_billing::settle::goodwill_reversal(
        &store,
        account,
        ids[0],
        bounty_core::Actor::operator("test").unwrap(),
        "test",
    )
    .await
    .unwrap();
    drain(&sender, &store).await;
    clock.advance(chrono::Duration::hours(25));
    bounty_billing::settle::goodwill_reversal(
        &store,
        account,
        ids[1],
        bounty_core::Actor::operator("test").unwrap(),
        "test",
    )
    .await
    .unwrap();
    drain(&sender, &store).await;
    let events = fake.meter_events();
    assert_eq!(events.iter().filter(|e| e.cancelled).count(), 1);
    let credits = fake.balance_transactions();
    assert_eq!(credits.len(), 1, "{credits:?}");
    // 1 CU at 1.00 USD: 100 cents back.
    assert_eq!(credits[0]["amount"], -100);
    assert_eq!(credits[0]["currency"], "usd");
    assert_eq!(
        credits[0]["customer"].as_str(),
        app.store.stripe_ids(account).await.unwrap().customer.as_deref()
    );
    let reversals: Vec<_> = store
        .outbox_of(account)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.kind == bounty_core::outbox::OutboxKind::MeterEventReversal)
        .collect();
    let mut how: Vec<_> = reversals.iter().map(|o| o.sent_as.clone().unwrap()).collect();
    how.sort();
    assert_eq!(how, vec!["cancel", "credit"]);
    // The credited charge still counts on both sides.
    let today = store.now().date_naive();
    let report = reconcile(
        &client(&fake),
        &store,
        today - chrono::Days::new(2),
        today + chrono::Days::new(1),
    )
    .await
    .unwrap();
    assert_eq!(report.differences().count(), 0, "{report:?}");
    let metered: i64 = report.days.iter().map(|d| d.ledger_milli).sum();
    let credited: i64 = report.days.iter().map(|d| d.credited_milli).sum();
    assert_eq!((metered, credited), (1000, 1000));
}

/// A test-mode charge (a `bk_test_` key's) never reaches the live Stripe
/// account: the live sender sends only the live charge, and a test-mode
/// sender (its own Stripe, as `stripe.test_secret_key` would give) sends
/// the test one, to the account's test-mode customer made for it.
async fn test_mode_charges_reach_only_the_test_mode_sender(backend: Backend) {
    let live_stripe = FakeStripe::start().await;
    let test_stripe = FakeStripe::start().await;
    let app = TestApp::spawn(backend).await;
    let (account, agent) = setup(&app, &live_stripe).await;
    charge_one(&app.store, account, agent, 0).await;
    let new = bounty_store::NewTask {
        agent_id: agent,
        agent_version: 1,
        input: bounty_core::TaskInput {
            body: "a test-mode ticket".into(),
            ..Default::default()
        },
        external_ref: None,
        idempotency: None,
        max_attempts: 1,
        mode: bounty_core::ApiKeyMode::Test,
    };
    app.store.create_task(account, &new).await.unwrap();
    let claimed = app
        .store
        .claim_tasks("test", 1, Duration::from_secs(3600))
        .await
        .unwrap()
        .pop()
        .unwrap();
    let end = bounty_store::AttemptEnd::Completed(bounty_store::TaskOutput {
        handoff: None,
        text: "done".into(),
        errors: None,
        model: "m".into(),
        transcript: serde_json::json!([]),
        decision: bounty_core::Decision::Pass,
        verdicts: Vec::new(),
        cache: None,
    });
    assert!(
        bounty_agents::finish::finish_attempt(&app.store, &claimed, &end, &[])
            .await
            .unwrap()
    );
    let charges = app
        .store
        .transfers(account, None, Some(bounty_core::ledger::TransferKind::Charge))
        .await
        .unwrap();
    assert_eq!(charges.len(), 2, "one live and one test charge");

    drain(&sender(&app.store, &live_stripe), &app.store).await;
    let live_events = live_stripe.meter_events();
    assert_eq!(live_events.len(), 1, "only the live charge: {live_events:?}");

    let test_sender = sender(&app.store, &test_stripe).test_mode();
    for _ in 0..200 {
        test_sender.drain_once().await.unwrap();
        let pending = app
            .store
            .outbox_of(account)
            .await
            .unwrap()
            .into_iter()
            .filter(|o| {
                o.mode == bounty_core::ApiKeyMode::Test
                    && o.status == bounty_core::outbox::OutboxStatus::Pending
            })
            .count();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let test_events = test_stripe.meter_events();
    assert_eq!(test_events.len(), 1, "{test_events:?}");
    assert_ne!(test_events[0].identifier, live_events[0].identifier);
    assert!(
        charges
            .iter()
            .any(|c| c.id.to_string() == test_events[0].identifier),
        "the test charge's own event"
    );
    assert_ne!(
        test_events[0].stripe_customer_id, live_events[0].stripe_customer_id,
        "a customer of Stripe's test mode, not the live one"
    );
}

/// `attempts` counts sends that failed: not a claim (lost to a crash, or
/// given back by a stopping sender) and not a deferral (waiting for
/// `bounty stripe setup`). So a crash or a long wait never shortens the
/// backoff of the next real failure, and a stopping sender's rows are due
/// again at once instead of after the lease.
async fn attempts_count_real_failures_only_and_a_stopping_sender_gives_its_claims_back(backend: Backend) {
    use bounty_core::ApiKeyMode;
    use bounty_core::outbox::OutboxKind;
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn(backend).await;
    let (account, _) = app.create_account("Acme").await;
    let lease = Duration::from_millis(150);
    // Claimed, then lost to a crash: due again after the lease, no try
    // counted.
    let claimed = app.store.claim_outbox(ApiKeyMode::Live, 10, lease).await.unwrap();
    assert_eq!(claimed.len(), 3);
    assert!(
        app.store
            .claim_outbox(ApiKeyMode::Live, 10, lease)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(lease + Duration::from_millis(50)).await;
    let again = app.store.claim_outbox(ApiKeyMode::Live, 10, lease).await.unwrap();
    assert_eq!(again.len(), 3);
    assert!(again.iter().all(|c| c.item.attempts == 0), "{again:?}");
    // Given back (a stopping sender): due again at once.
    let ids: Vec<_> = again.iter().map(|c| c.item.id).collect();
    app.store.outbox_release(&ids).await.unwrap();
    assert_eq!(
        app.store
            .claim_outbox(ApiKeyMode::Live, 10, lease)
            .await
            .unwrap()
            .len(),
        3
    );
    app.store.outbox_release(&ids).await.unwrap();
    // A sender told to stop before it starts sends nothing and leaves
    // nothing claimed.
    let sender = sender(&app.store, &fake);
    let cancel = tokio_util::sync::CancellationToken::new();
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), sender.clone().run(cancel))
        .await
        .expect("a cancelled sender returns");
    assert!(fake.requests().is_empty());
    assert_eq!(
        app.store
            .claim_outbox(ApiKeyMode::Live, 10, lease)
            .await
            .unwrap()
            .len(),
        3
    );
    app.store.outbox_release(&ids).await.unwrap();
    // One real failure (Stripe 500 on the customer), then deferrals
    // (no setup yet) many times over.
    fake.push_fault(Fault::Status(500, None));
    for _ in 0..6 {
        sender.drain_once().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rows = app.store.outbox_of(account).await.unwrap();
    let row = |kind: OutboxKind| rows.iter().find(|o| o.kind == kind).unwrap();
    let customer = row(OutboxKind::StripeCustomer);
    assert_eq!(customer.status, bounty_core::outbox::OutboxStatus::Sent);
    assert_eq!(customer.attempts, 1, "{customer:?}");
    for kind in [OutboxKind::StripeSubscription, OutboxKind::StripeSubscriptionItem] {
        let waiting = row(kind);
        assert_eq!(waiting.status, bounty_core::outbox::OutboxStatus::Pending);
        assert!(
            waiting
                .last_error
                .as_deref()
                .unwrap_or_default()
                .contains("waiting for"),
            "{waiting:?}"
        );
        assert_eq!(waiting.attempts, 0, "a deferral is not a try: {waiting:?}");
    }
}

async fn the_operator_hears_once_when_stripe_has_failed_for_15_minutes(backend: Backend) {
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn(backend).await;
    app.create_account("Acme").await;
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let store = app.store_with_clock(clock.clone()).await;
    let told = || async {
        store
            .list_notifications(None, false, bounty_core::PageLimit::new(50).unwrap(), None)
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|n| n.kind == "stripe.failing")
            .collect::<Vec<_>>()
    };
    let sender = sender(&store, &fake);
    let step = |minutes: i64| {
        clock.advance(chrono::Duration::minutes(minutes));
        sender.drain_once()
    };
    // Stripe answers 500 to every send (the account's customer) for 17
    // minutes; its subscription rows wait on the customer meanwhile.
    for _ in 0..4 {
        fake.push_fault(Fault::Status(500, None));
    }
    step(0).await.unwrap();
    step(10).await.unwrap();
    assert!(told().await.is_empty(), "10 minutes of failures: not yet");
    step(6).await.unwrap();
    let notices = told().await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].title.contains("16 minutes"), "{:?}", notices[0]);
    assert!(notices[0].body.contains("500"), "{:?}", notices[0]);
    assert_eq!(notices[0].account_id, None, "the operator's");
    // Still failing: not told again.
    step(1).await.unwrap();
    assert_eq!(told().await.len(), 1);
    // Stripe is back: the streak ends; a new one 16 minutes long is told.
    step(1).await.unwrap();
    assert!(fake.requests().iter().any(|r| r.path == "/v1/customers"));
    app.create_account("Globex").await;
    fake.push_fault(Fault::Status(503, None));
    fake.push_fault(Fault::Status(503, None));
    step(1).await.unwrap();
    step(16).await.unwrap();
    assert_eq!(told().await.len(), 2);
}

/// Stripe saves a 500 for an idempotency key and replays it for 24 hours.
/// A meter event's retry goes under a fresh key (its identifier stops a
/// second event), so it is never held; any other row is parked after
/// `SAVED_500_TRIES` with a reason that names the operator's action, and
/// `--new-key` sends it again under a fresh key.
async fn no_row_is_stuck_behind_a_saved_500(backend: Backend) {
    use bounty_core::outbox::{OutboxKind, OutboxStatus};
    let fake = FakeStripe::start().await;
    let app = TestApp::spawn(backend).await;
    // The customer's first request fails with a saved 500 (not applied):
    // every retry under its key gets the same 500 back.
    let (account, agent) = setup(&app, &fake).await;
    fake.push_fault(Fault::Saved500 { applied: false });
    let sender = sender(&app.store, &fake);
    let customer = || async {
        app.store
            .outbox_of(account)
            .await
            .unwrap()
            .into_iter()
            .find(|o| o.kind == OutboxKind::StripeCustomer)
            .unwrap()
    };
    for _ in 0..200 {
        sender.drain_once().await.unwrap();
        if customer().await.status == OutboxStatus::Failed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let parked = customer().await;
    assert_eq!(parked.status, OutboxStatus::Failed, "{parked:?}");
    assert_eq!(parked.attempts, bounty_billing::outbox::SAVED_500_TRIES);
    let reason = parked.last_error.clone().unwrap_or_default();
    assert!(
        reason.contains("saves a 500") && reason.contains("--new-key"),
        "{reason}"
    );
    let customers = |fake: &FakeStripe| {
        fake.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/v1/customers")
            .map(|r| r.idempotency_key.clone().unwrap_or_default())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(customers(&fake).len(), 1, "one key, replayed");
    // The operator's action: a fresh key, tries from zero.
    assert!(app.store.admin_retry_outbox_new_key(parked.id).await.unwrap());
    drain(&sender, &app.store).await;
    let sent = customer().await;
    assert_eq!(sent.status, OutboxStatus::Sent, "{sent:?}");
    assert_eq!(customers(&fake).len(), 2, "the retry went under a fresh key");

    // Meter events: a saved 500, applied or not, never holds one, and
    // Stripe ends with one event per charge.
    for (n, applied) in [(0, false), (1, true)] {
        fake.push_fault(Fault::Saved500 { applied });
        charge_one(&app.store, account, agent, n).await;
        drain(&sender, &app.store).await;
    }
    let events = fake.meter_events();
    assert_eq!(events.len(), 2, "{events:?}");
    let identifiers: std::collections::BTreeSet<_> = events.iter().map(|e| e.identifier.clone()).collect();
    assert_eq!(identifiers.len(), 2);
    let stats = app.store.outbox_stats().await.unwrap();
    assert_eq!((stats.pending, stats.failed), (0, 0));
}
