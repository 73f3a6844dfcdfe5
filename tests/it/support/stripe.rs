//! Fixtures for tests against the fake Stripe: a sender with short
//! leases and backoffs, a tenant after `bounty stripe setup`, charges
//! through the real finish path, and draining the outbox.

use std::time::Duration;

use bounty_billing::catalog::setup as stripe_setup;
use bounty_billing::outbox::{Sender, SenderConfig};
use bounty_billing::reconcile::reconcile;
use bounty_billing::stripe::{StripeClient, StripeConfig};
use bounty_billing::testing::FakeStripe;
use bounty_core::plan::Plan;
use bounty_core::{AccountId, Decision, OutcomeId, PageLimit};
use bounty_store::Store;

use crate::support::TestApp;
use crate::support::billing::{account_with_agent, answered, queue_and_claim};

pub fn sender(store: &Store, fake: &FakeStripe) -> Sender {
    let config = SenderConfig {
        batch: 8,
        lease: Duration::from_millis(100),
        poll_interval: Duration::from_millis(20),
        retry_base: Duration::from_millis(1),
        retry_max: Duration::from_millis(5),
        customer_wait: Duration::from_millis(1),
        setup_wait: Duration::from_millis(1),
        failing_notice_after: Duration::from_secs(15 * 60),
        concurrency: 8,
    };
    Sender::new(
        store.clone(),
        StripeClient::new(config_of(fake.base_url())).unwrap(),
        config,
    )
}

pub fn config_of(base_url: String) -> StripeConfig {
    let mut c = StripeConfig::new(FakeStripe::SECRET_KEY.to_owned().into());
    c.base_url = base_url;
    c.timeout = Duration::from_secs(2);
    c
}

/// Resolves (charges) a new task of `account` through the store's real
/// finish path.
pub async fn charge_one(store: &Store, account: AccountId, agent: bounty_core::AgentId, n: usize) {
    let claimed = queue_and_claim(store, account, agent, format!("ticket {n}")).await;
    let end = answered("done", Decision::Pass);
    assert!(
        bounty_agents::finish::finish_attempt(store, &claimed, &end, &[])
            .await
            .unwrap()
    );
}

pub fn client(fake: &FakeStripe) -> StripeClient {
    StripeClient::new(config_of(fake.base_url())).unwrap()
}

/// An account with an agent whose policy awaits the helpdesk (so its
/// reopens apply inside the window), after `bounty stripe setup` against
/// the fake.
pub async fn setup(app: &TestApp, fake: &FakeStripe) -> (AccountId, bounty_core::AgentId) {
    // The default policy awaits the helpdesk, so reopens apply inside the
    // (72-hour) window.
    let policy = bounty_core::VerificationPolicy {
        window_hours: 72,
        ..Default::default()
    };
    let tenant = account_with_agent(&app.store, policy).await;
    stripe_setup(
        &client(fake),
        &app.store,
        &Plan::default_value_plan().price_per_cu,
    )
    .await
    .unwrap();
    tenant
}

pub async fn outcome_ids(store: &Store, account: AccountId) -> Vec<OutcomeId> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_outcomes(account, &Default::default(), PageLimit::new(100).unwrap(), after)
            .await
            .unwrap();
        ids.extend(page.items.iter().map(|o| o.id));
        match page.next_cursor {
            Some(c) => after = Some(c.parse().unwrap()),
            None => return ids,
        }
    }
}

/// Reconciles today (and tomorrow, should the run cross midnight) and
/// asserts that the ledger and Stripe agree.
pub async fn assert_reconciled(store: &Store, fake: &FakeStripe) {
    let today = store.now().date_naive();
    let report = reconcile(
        &client(fake),
        store,
        today.pred_opt().unwrap(),
        today.succ_opt().unwrap().succ_opt().unwrap(),
    )
    .await
    .unwrap();
    assert!(!report.days.is_empty(), "reconcile compared nothing");
    let differences: Vec<_> = report.differences().collect();
    assert!(
        differences.is_empty(),
        "ledger and Stripe differ: {differences:?}"
    );
}

/// Drains until nothing is due (sleeping past leases and backoffs).
pub async fn drain(sender: &Sender, store: &Store) {
    for _ in 0..400 {
        sender.drain_once().await.unwrap();
        if store.outbox_stats().await.unwrap().pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stuck = store
        .admin_list_outbox(
            Some(bounty_core::outbox::OutboxStatus::Pending),
            bounty_core::PageLimit::new(10).unwrap(),
            None,
        )
        .await
        .unwrap();
    panic!("the outbox did not drain: {:?}", stuck.items);
}
